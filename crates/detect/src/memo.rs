//! A small per-thread memo of what the rules found in one part: the same user agents,
//! referers, hosts, header names, methods and common paths come back on line after line
//! of a log (and request after request at the proxy), and a part's findings depend only
//! on the engine and the part itself (where, name, value). Exclusions depend on the
//! request's path, so the memo keeps the raw hits and the engine still applies
//! exclusions per request.
//!
//! Direct-mapped and bounded: [`SLOTS`] slots per thread, a value longer than
//! [`MAX_VALUE`] is never kept, a new entry replaces whatever shared its slot; so the
//! memory is bounded and a miss costs one hash. An entry is only used when its part is
//! equal (the whole key is compared, not only the hash) and it was filled by the same
//! engine (a reloaded engine starts afresh).

use std::cell::RefCell;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::request::{Location, Part};

/// Slots per thread (a power of two).
const SLOTS: usize = 4096;

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
    location: Location,
    name: String,
    value: String,
    hits: Vec<Hit>,
}

thread_local! {
    static MEMO: RefCell<Vec<Option<Entry>>> = const { RefCell::new(Vec::new()) };
}

/// The slot of a part; `None` when the part is not worth keeping.
pub(crate) fn slot(part: &Part) -> Option<usize> {
    if part.value.len() > MAX_VALUE || part.name.len() > MAX_VALUE {
        return None;
    }
    let mut h = DefaultHasher::new();
    part.location.hash(&mut h);
    part.name.hash(&mut h);
    part.value.hash(&mut h);
    Some((h.finish() as usize) & (SLOTS - 1))
}

/// Calls `f` with the hits engine `engine` recorded for an equal part, if kept.
pub(crate) fn with_hits<R>(
    engine: u64,
    slot: usize,
    part: &Part,
    f: impl FnOnce(&[Hit]) -> R,
) -> Option<R> {
    MEMO.with(|m| {
        let m = m.try_borrow().ok()?;
        match m.get(slot)? {
            Some(e)
                if e.engine == engine
                    && e.location == part.location
                    && e.name == part.name
                    && e.value == part.value =>
            {
                Some(f(&e.hits))
            }
            _ => None,
        }
    })
}

/// Keeps a part's hits in its slot (replacing what was there).
pub(crate) fn keep(engine: u64, slot: usize, part: &Part, hits: Vec<Hit>) {
    MEMO.with(|m| {
        let Ok(mut m) = m.try_borrow_mut() else {
            return;
        };
        if m.len() != SLOTS {
            m.clear();
            m.resize_with(SLOTS, || None);
        }
        if let Some(s) = m.get_mut(slot) {
            match s {
                // Reuse the entry's buffers: no allocation once the slot is warm.
                Some(e) => {
                    e.engine = engine;
                    e.location = part.location;
                    e.name.clone_from(&part.name);
                    e.value.clone_from(&part.value);
                    e.hits = hits;
                }
                None => {
                    *s = Some(Entry {
                        engine,
                        location: part.location,
                        name: part.name.clone(),
                        value: part.value.clone(),
                        hits,
                    });
                }
            }
        }
    });
}
