//! A small per-thread memo of what the rules found in one part: the same user agents,
//! referers, hosts, header names, methods and common paths come back on line after line
//! of a log (and request after request at the proxy), and a part's findings depend only
//! on the engine and the part itself (where, name, value). Exclusions depend on the
//! request's path, so the memo keeps the raw hits and the engine still applies
//! exclusions per request.
//!
//! Direct-mapped and bounded: [`SLOTS`] slots per thread for parts the rules found
//! nothing in and [`FOUND_SLOTS`] more for parts with a hit, a value longer than
//! [`MAX_VALUE`] is never kept, a new entry replaces whatever shared its slot in its
//! own table; so the memory is bounded and a miss costs one hash and two slot reads.
//! An entry is only used when its part is equal (the whole key is compared, not only
//! the hash) and it was filled by the same engine (a reloaded engine starts afresh).
//!
//! Why two tables: in the generated 1M-line log 2.5% of the parts have a hit; in one
//! table the benign parts evicted those before they came back, and they are the
//! dearest to evaluate again (a regex `find` and the evidence copied per hit, on top
//! of the scans). Kept apart, 43k fewer of them are evaluated again over that log
//! (docs/BENCHMARKS.md, engine11). A part's hits depend only on the engine and the
//! part, so an equal part always goes to the same table: looking in both never finds
//! two answers.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};

use crate::request::{Location, Part};

/// Slots per thread for parts with no hit (a power of two).
const SLOTS: usize = 4096;

/// Slots per thread for parts with at least one hit (a power of two, at most
/// [`SLOTS`]: its slot is the low bits of the benign slot).
const FOUND_SLOTS: usize = 4096;

/// Longest value kept (bytes); longer parts are evaluated every time.
pub(crate) const MAX_VALUE: usize = 512;

/// One rule hit in a part, as the engine records it: the rule's index, the value after
/// its transformations and the matched text, both already capped.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub rule: usize,
    pub decoded: String,
    pub matched: String,
}

#[derive(Debug)]
struct Entry {
    engine: u64,
    /// The part's whole slot hash: most parts that share a slot with another differ
    /// here, so they are told apart without comparing their texts.
    hash: u64,
    location: Location,
    name: String,
    value: String,
    hits: Vec<Hit>,
}

thread_local! {
    static MEMO: RefCell<Table> = const {
        RefCell::new(Table {
            plain: Vec::new(),
            found: Vec::new(),
        })
    };
}

/// Where a part may be kept: its slot and its whole hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    slot: usize,
    hash: u64,
}

/// The part's key; `None` when the part is not worth keeping.
pub(crate) fn key(part: &Part) -> Option<Key> {
    if part.value.len() > MAX_VALUE || part.name.len() > MAX_VALUE {
        return None;
    }
    let mut h = SlotHasher::default();
    part.location.hash(&mut h);
    part.name.hash(&mut h);
    part.value.hash(&mut h);
    let hash = h.finish();
    Some(Key {
        slot: (hash as usize) & (SLOTS - 1),
        hash,
    })
}

/// The calling thread's memo, borrowed for a whole request: a thread-local access
/// and a `RefCell` borrow per part cost about as much as comparing the part did.
#[derive(Debug)]
pub(crate) struct Table {
    /// Parts the rules found nothing in, [`SLOTS`] once used.
    plain: Vec<Option<Entry>>,
    /// Parts with at least one hit, [`FOUND_SLOTS`] once used.
    found: Vec<Option<Entry>>,
}

/// Calls `f` with this thread's memo; `None` when it is already borrowed (a nested
/// inspection, which nothing does: it then simply runs without the memo).
pub(crate) fn with_table<R>(f: impl FnOnce(Option<&mut Table>) -> R) -> R {
    MEMO.with(|m| match m.try_borrow_mut() {
        Ok(mut table) => f(Some(&mut table)),
        Err(_) => f(None),
    })
}

impl Entry {
    /// Whether this entry is `part`'s, recorded by engine `engine`.
    fn is(&self, engine: u64, key: Key, part: &Part) -> bool {
        self.hash == key.hash
            && self.engine == engine
            && self.location == part.location
            && self.name == part.name
            && self.value == part.value
    }
}

impl Table {
    /// The hits engine `engine` recorded for an equal part, if kept.
    pub(crate) fn hits(&self, engine: u64, key: Key, part: &Part) -> Option<&[Hit]> {
        // An entry with the part's whole hash in this table is the part, but for a
        // collision or another engine's entry, and the part is then not looked for
        // in the other table: at worst a miss, evaluated again. Written so, the lookup
        // costs ~110 instructions a generated line less than with that fallback.
        if let Some(Some(e)) = self.plain.get(key.slot)
            && e.hash == key.hash
        {
            return (e.engine == engine
                && e.location == part.location
                && e.name == part.name
                && e.value == part.value)
                .then_some(&e.hits[..]);
        }
        self.found_hits(engine, key, part)
    }

    /// [`Table::hits`] in the table of parts with hits: looked in after the other
    /// (most parts have none), and out of line so that the first lookup, made for
    /// nearly every part, stays small.
    #[inline(never)]
    fn found_hits(&self, engine: u64, key: Key, part: &Part) -> Option<&[Hit]> {
        match self.found.get(key.slot & (FOUND_SLOTS - 1))? {
            Some(e) if e.is(engine, key, part) => Some(&e.hits),
            _ => None,
        }
    }

    /// Keeps a part's hits in its slot of the table for parts like it (with or
    /// without hits), replacing what was there.
    pub(crate) fn keep(&mut self, engine: u64, key: Key, part: &Part, hits: Vec<Hit>) {
        let (table, size, slot) = if hits.is_empty() {
            (&mut self.plain, SLOTS, key.slot)
        } else {
            (&mut self.found, FOUND_SLOTS, key.slot & (FOUND_SLOTS - 1))
        };
        if table.len() != size {
            table.clear();
            table.resize_with(size, || None);
        }
        if let Some(s) = table.get_mut(slot) {
            match s {
                // Reuse the entry's buffers: no allocation once the slot is warm.
                Some(e) => {
                    e.engine = engine;
                    e.hash = key.hash;
                    e.location = part.location;
                    e.name.clone_from(&part.name);
                    e.value.clone_from(&part.value);
                    e.hits = hits;
                }
                None => {
                    *s = Some(Entry {
                        engine,
                        hash: key.hash,
                        location: part.location,
                        name: part.name.clone(),
                        value: part.value.clone(),
                        hits,
                    });
                }
            }
        }
    }
}

/// The slot hash: a multiply-rotate over 8-byte words (the FxHash step). A slot only
/// picks where a part may be kept (the whole key is compared before an entry is
/// used), so the hash needs to spread ordinary values, not resist chosen collisions
/// (colliding parts only evict each other: the cost of a miss, never a wrong answer);
/// SipHash cost as much as a memo hit saves on short values.
#[derive(Default)]
struct SlotHasher(u64);

impl SlotHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for SlotHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Whole words as arrays (no `copy_from_slice`: the build without LTO left it a
        // call per word, 1.6 million of them in a 17k-line log); the same words.
        let (words, rest) = bytes.as_chunks::<8>();
        for w in words {
            self.add(u64::from_le_bytes(*w));
        }
        if !rest.is_empty() {
            self.add(tail_word(rest));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // Fold the high bits in: the slot is taken from the low ones.
        self.0 ^ (self.0 >> 29)
    }
}

/// The last 1 to 7 bytes of a hashed text as one word: the word the bytes give copied
/// into a zeroed `[u8; 8]` and read little endian (the slots stay where they were), but
/// read as a 4-, 2- and 1-byte load as the length's bits say: that copy was a call to
/// `memcpy` for every name and value hashed (two a part, ~10 parts a log line).
fn tail_word(rest: &[u8]) -> u64 {
    let mut word = 0u64;
    let mut at = 0;
    if rest.len() & 4 != 0
        && let Some(&[a, b, c, d]) = rest.get(..4)
    {
        word = u64::from(u32::from_le_bytes([a, b, c, d]));
        at = 4;
    }
    if rest.len() & 2 != 0
        && let Some(&[a, b]) = rest.get(at..at + 2)
    {
        word |= u64::from(u16::from_le_bytes([a, b])) << (8 * at);
        at += 2;
    }
    if rest.len() & 1 != 0
        && let Some(&a) = rest.get(at)
    {
        word |= u64::from(a) << (8 * at);
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash as it was written before: the remainder copied into a zeroed word.
    fn reference(bytes: &[u8]) -> u64 {
        let mut h = SlotHasher::default();
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            if let Some(head) = w.get_mut(..rest.len()) {
                head.copy_from_slice(rest);
            }
            h.add(u64::from_le_bytes(w));
        }
        h.finish()
    }

    fn part(location: Location, name: &str, value: &str) -> Part {
        Part {
            location,
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn a_kept_part_is_found_by_an_equal_part_only() {
        let ua = part(Location::HeaderValue, "user-agent", "curl/8.5");
        let hit = Hit {
            rule: 7,
            decoded: "curl/8.5".into(),
            matched: "curl".into(),
        };
        with_table(|table| {
            let t = table.expect("the memo is free");
            let k = key(&ua).expect("short parts are kept");
            t.keep(1, k, &ua, vec![hit.clone()]);
            let found = t
                .hits(1, k, &ua)
                .map(|h| h.iter().map(|h| h.rule).collect());
            assert_eq!(found, Some(vec![7]));
            assert!(t.hits(2, k, &ua).is_none(), "another engine");
            for other in [
                part(Location::OtherHeaderValue, "user-agent", "curl/8.5"),
                part(Location::HeaderValue, "referer", "curl/8.5"),
                part(Location::HeaderValue, "user-agent", "curl/8.6"),
            ] {
                let ko = key(&other).expect("kept");
                assert!(t.hits(1, ko, &other).is_none(), "{other:?}");
                // Even looked up under the kept part's key: the texts are compared.
                assert!(t.hits(1, k, &other).is_none(), "{other:?}");
            }
            // Borrowed for the whole request: a nested use runs without the memo.
            assert!(with_table(|inner| inner.is_none()));
        });
        let long = part(Location::QueryArgValue, "q", &"a".repeat(MAX_VALUE + 1));
        assert!(key(&long).is_none(), "long values are not kept");
    }

    #[test]
    fn parts_without_hits_do_not_evict_a_part_with_hits() -> Result<(), String> {
        let attack = part(Location::QueryArgValue, "q", "1' or '1'='1");
        let hit = Hit {
            rule: 3,
            decoded: "1' or '1'='1".into(),
            matched: "' or '1'='1".into(),
        };
        let ak = key(&attack).ok_or("kept")?;
        with_table(|table| {
            let t = table.ok_or("the memo is free")?;
            t.keep(9, ak, &attack, vec![hit]);
            // Benign parts in every slot, then four in the attack's very slot.
            let mut benign = Vec::new();
            for i in 0..2 * SLOTS {
                let p = part(Location::QueryArgValue, "q", &format!("page {i}"));
                let k = key(&p).ok_or("kept")?;
                t.keep(9, k, &p, Vec::new());
            }
            for i in 0..4u64 {
                let p = part(Location::QueryArgValue, "q", &format!("shared {i}"));
                let k = Key {
                    slot: ak.slot,
                    hash: ak.hash ^ (i + 1),
                };
                t.keep(9, k, &p, Vec::new());
                benign.push((k, p));
            }
            let found = t
                .hits(9, ak, &attack)
                .map(|h| h.iter().map(|h| h.rule).collect());
            if found != Some(vec![3]) {
                return Err(format!("the attack part was evicted: {found:?}"));
            }
            // The last benign part of the shared slot is there too, with no hit; an
            // earlier one it replaced is not.
            let (last_k, last) = benign.get(3).ok_or("four shared")?;
            if t.hits(9, *last_k, last).map(<[Hit]>::len) != Some(0) {
                return Err("the benign part kept in the shared slot is missing".into());
            }
            let (first_k, first) = benign.first().ok_or("four shared")?;
            if t.hits(9, *first_k, first).is_some() {
                return Err("a replaced benign entry answered".into());
            }
            // A second part with hits in the same slot replaces the first one.
            let other = part(Location::QueryArgValue, "id", "<script>");
            let ok = Key {
                slot: ak.slot,
                hash: ak.hash ^ 0xff,
            };
            t.keep(
                9,
                ok,
                &other,
                vec![Hit {
                    rule: 4,
                    decoded: "<script>".into(),
                    matched: "<script>".into(),
                }],
            );
            if t.hits(9, ak, &attack).is_some() {
                return Err("two parts with hits shared one slot".into());
            }
            Ok(())
        })
    }

    #[test]
    fn the_remainder_word_is_the_zero_padded_little_endian_one() -> Result<(), String> {
        // Every length up to three words, bytes of every value (high bits included).
        let data: Vec<u8> = (0..24u32).map(|i| (i * 37 + 200) as u8).collect();
        for len in 0..=data.len() {
            let bytes = data.get(..len).ok_or("length")?;
            let mut h = SlotHasher::default();
            h.write(bytes);
            if h.finish() != reference(bytes) {
                return Err(format!("hash differs at length {len}"));
            }
        }
        Ok(())
    }
}
