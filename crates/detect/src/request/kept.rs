//! The request parse's buffers, kept per thread from one request to the next.
//!
//! A parse fills a list of parts, each with a name and a value `String`; building them
//! new for every request cost about four allocations per argument and as many frees. A
//! dropped [`super::ParsedRequest`] gives its parts back here, and the next parse on the
//! same thread clears and refills them, so a warm thread's parse of a request like the
//! last ones allocates (almost) nothing. What a thread keeps is bounded (parts, bytes,
//! and the size of any one buffer), so one large request does not pin its memory.

use std::cell::RefCell;

use super::{Location, Part};

/// Most parts a thread keeps for reuse.
const KEEP_PARTS: usize = 512;
/// Most bytes of string capacity a thread's kept parts hold together.
const KEEP_BYTES: usize = 64 * 1024;
/// Largest single buffer kept; a longer body or value is freed as before.
const KEEP_ONE: usize = 16 * 1024;
/// Largest part list kept (in parts): a full parse's `MAX_PARTS` and its anomalies.
const KEEP_LIST: usize = 2 * super::MAX_PARTS + 64;

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// Cleared parts ready to be refilled, the next one to use last.
#[derive(Default)]
pub(super) struct Spare {
    parts: Vec<Part>,
    /// The last body part, kept apart: the parse fills it before the arguments read
    /// from it but lists it after them, so taken from `parts` it would take another
    /// part's buffer and leave its own to a part of another size.
    body: Option<Part>,
    /// Bytes of string capacity `parts` and `body` hold.
    held: usize,
}

impl Spare {
    /// An empty part for `location`: a kept one when there is one (its buffers keep
    /// their capacity), else a new one.
    pub(super) fn part(&mut self, location: Location) -> Part {
        match self.parts.pop() {
            Some(mut part) => {
                self.held = self.held.saturating_sub(capacity(&part));
                part.location = location;
                part.name.clear();
                part.value.clear();
                part
            }
            None => Part {
                location,
                name: String::new(),
                value: String::new(),
            },
        }
    }

    /// An empty body part: the kept body part when there is one.
    pub(super) fn body(&mut self) -> Part {
        match self.body.take() {
            Some(mut part) => {
                self.held = self.held.saturating_sub(capacity(&part));
                part.name.clear();
                part.value.clear();
                part
            }
            None => self.part(Location::Body),
        }
    }

    /// Keeps all of `parts` at once (emptying it), as [`Spare::keep`] of each in reverse
    /// would, when that would keep every one of them: none is a body part, each has
    /// capacity within [`KEEP_ONE`], all of them fit [`KEEP_BYTES`] and [`KEEP_PARTS`]
    /// with what is kept already. Otherwise nothing is taken and `false` says so. A
    /// parse of an ordinary request meets this case, and the parts are moved in one
    /// `extend` instead of each through `keep`'s checks (~65 instructions a part, 29
    /// parts a benign GET: docs/BENCHMARKS.md, `proxy9`).
    fn keep_all(&mut self, parts: &mut Vec<Part>) -> bool {
        if self.parts.len() + parts.len() > KEEP_PARTS {
            return false;
        }
        let mut held = self.held;
        for part in parts.iter() {
            let cap = capacity(part);
            held += cap;
            if cap == 0 || cap > KEEP_ONE || held > KEEP_BYTES || part.location == Location::Body {
                return false;
            }
        }
        self.parts.extend(parts.drain(..).rev());
        self.held = held;
        true
    }

    /// Keeps `part` for reuse if it fits the bounds; otherwise it is dropped.
    fn keep(&mut self, part: Part) {
        let cap = capacity(&part);
        if cap == 0 || cap > KEEP_ONE || self.held + cap > KEEP_BYTES {
            return;
        }
        if part.location == Location::Body {
            if self.body.is_none() {
                self.held += cap;
                self.body = Some(part);
            }
        } else if self.parts.len() < KEEP_PARTS {
            self.held += cap;
            self.parts.push(part);
        }
    }
}

fn capacity(part: &Part) -> usize {
    part.name.capacity() + part.value.capacity()
}

/// Working buffers of one parse (decoded names and values, the lowercased header name
/// and content type), reused from request to request.
#[derive(Default)]
pub(super) struct Scratch {
    /// Percent-decoding's bytes.
    pub(super) bytes: Vec<u8>,
    /// A decoded argument name or path segment.
    pub(super) name: String,
    /// A decoded argument value.
    pub(super) value: String,
    /// The current header's lowercased name.
    pub(super) lname: String,
    /// The lowercased `Content-Type`.
    pub(super) content_type: String,
}

impl Scratch {
    /// Drops any buffer grown past what is kept.
    fn bounded(mut self) -> Self {
        for s in [
            &mut self.name,
            &mut self.value,
            &mut self.lname,
            &mut self.content_type,
        ] {
            if s.capacity() > KEEP_ONE {
                *s = String::new();
            }
        }
        if self.bytes.capacity() > KEEP_ONE {
            self.bytes = Vec::new();
        }
        self
    }
}

/// What a thread keeps between parses.
#[derive(Default)]
pub(super) struct Kept {
    /// Parts to refill.
    pub(super) spare: Spare,
    /// An emptied part list, kept for its capacity.
    pub(super) list: Vec<Part>,
    /// An emptied decoded-path buffer.
    pub(super) path: String,
    /// The parse's working buffers.
    pub(super) scratch: Scratch,
}

impl Kept {
    /// What this thread keeps (all empty on its first parse, or if the thread's store
    /// is gone or in use).
    pub(super) fn take() -> Kept {
        KEPT.try_with(|k| {
            k.try_borrow_mut()
                .map(|mut k| std::mem::take(&mut *k))
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }

    /// Gives back what a parse did not hand on (its unused parts and working buffers).
    pub(super) fn put(spare: Spare, scratch: Scratch) {
        let scratch = scratch.bounded();
        let _ = KEPT.try_with(|k| {
            if let Ok(mut k) = k.try_borrow_mut() {
                k.spare = spare;
                k.scratch = scratch;
            }
        });
    }

    /// Takes back a dropped parse's parts and path, within the bounds.
    pub(super) fn recycle(mut parts: Vec<Part>, path: String) {
        let _ = KEPT.try_with(|k| {
            let Ok(mut k) = k.try_borrow_mut() else {
                return;
            };
            let k = &mut *k;
            // In reverse, so the next parse takes them in the order they were filled:
            // a part meets the same role (and size) in a request like this one.
            if !k.spare.keep_all(&mut parts) {
                for part in parts.drain(..).rev() {
                    k.spare.keep(part);
                }
            }
            if parts.capacity() > k.list.capacity() && parts.capacity() <= KEEP_LIST {
                k.list = parts;
            }
            if path.capacity() > k.path.capacity() && path.capacity() <= KEEP_ONE {
                k.path = path;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(location: Location, name: &str, value: &str) -> Part {
        Part {
            location,
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    /// What a spare holds: its parts (location, name, value, capacity), its body part's
    /// value and the bytes it counts.
    type Held = (
        Vec<(Location, String, String, usize)>,
        Option<String>,
        usize,
    );

    /// What `s` holds.
    fn held(s: &Spare) -> Held {
        let parts = s
            .parts
            .iter()
            .map(|p| (p.location, p.name.clone(), p.value.clone(), capacity(p)))
            .collect();
        (parts, s.body.as_ref().map(|b| b.value.clone()), s.held)
    }

    /// A spare that holds `n` parts of 8 bytes already, as a parse may leave it.
    fn holding(n: usize) -> Spare {
        let mut spare = Spare::default();
        for _ in 0..n {
            spare.keep(part(Location::QueryArgValue, "n", "1234567"));
        }
        spare
    }

    #[test]
    fn keeping_all_at_once_keeps_what_keeping_each_keeps() -> Result<(), String> {
        let big = "b".repeat(KEEP_ONE + 1);
        let half = "h".repeat(KEEP_BYTES / 2);
        let lists: Vec<Vec<Part>> = vec![
            vec![],
            vec![part(Location::Method, "", "GET")],
            vec![
                part(Location::Method, "", "GET"),
                part(Location::Protocol, "", "HTTP/1.1"),
                part(Location::QueryArgName, "id", "id"),
                part(Location::QueryArgValue, "id", "3"),
            ],
            // Each of these leaves a part out: a body part, an empty one, a big one,
            // and parts that go over the bytes kept.
            vec![
                part(Location::Path, "", "/a"),
                part(Location::Body, "", "x=1"),
            ],
            vec![part(Location::Path, "", "/a"), part(Location::Path, "", "")],
            vec![
                part(Location::Path, "", "/a"),
                part(Location::Path, "", &big),
            ],
            vec![
                part(Location::Path, "", &half),
                part(Location::Path, "", &half),
                part(Location::Path, "", "/a"),
            ],
        ];
        for (i, list) in lists.iter().enumerate() {
            for already in [0, 1, KEEP_PARTS - list.len(), KEEP_PARTS + 1 - list.len()] {
                let mut one_by_one = holding(already);
                for p in list.clone().into_iter().rev() {
                    one_by_one.keep(p);
                }
                let mut at_once = holding(already);
                let mut parts = list.clone();
                if !at_once.keep_all(&mut parts) {
                    if parts != *list {
                        return Err(format!("list {i}: refused, yet the list changed"));
                    }
                    for p in parts.drain(..).rev() {
                        at_once.keep(p);
                    }
                } else if !parts.is_empty() {
                    return Err(format!("list {i}: kept, yet the list is not emptied"));
                }
                if held(&one_by_one) != held(&at_once) {
                    return Err(format!("list {i}, {already} kept: kept differently"));
                }
            }
        }
        Ok(())
    }
}
