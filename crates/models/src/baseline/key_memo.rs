//! The endpoint keys a thread built lately ([`super::route::endpoint_key`]), so that a
//! request to a path seen a moment ago takes its key from here instead of decoding and
//! templating its path again: every request judged or learnt (each stored log line, each
//! proxied request) needs its key, and most go to paths that came before (ingest
//! profile, issue 16: the key was ~2.7k instructions a line, most of it the template).
//!
//! A key is a function of three texts only (the raw host, the method and the raw path:
//! see `route::build_key`), so a slot holding the same three gives the same key; a
//! slot is compared in full, so a hash collision is a miss, never a wrong key. The
//! table is direct-mapped and fixed in size, and only short inputs are kept, so its
//! memory is bounded per thread whatever the traffic: about 0.2 MB on ordinary paths,
//! ~1.2 MB at worst (every slot holding 256 bytes of input and the longest key they
//! can give). A thread that never keys a request allocates nothing.
//!
//! Simulated over whole logs (the slot choice as here, 1,024 slots, one thread): the
//! generated log's first 100,000 lines find 87% of their keys here, the Elastic sample
//! of real Apache traffic 78%, `hackers-access.log` 99%. A miss costs the hash and the
//! copy into its slot on top of the key's building.

use std::cell::RefCell;
use std::hash::BuildHasher;

/// Slots in a thread's table (a power of two).
const SLOTS: usize = 1024;
/// The longest inputs kept (host, method and path together, in bytes): a longer
/// request is keyed without the memo (rare, and it would hold its memory in a slot).
const MAX_KEPT_INPUT: usize = 256;

/// One remembered key and the inputs it was built from.
#[derive(Default)]
struct Slot {
    /// Whether the slot holds a key.
    used: bool,
    host: String,
    method: String,
    path: String,
    key: String,
}

/// A thread's table: slots by hash of the inputs, and the hasher's seed.
struct Table {
    slots: Vec<Slot>,
    state: foldhash::fast::RandomState,
}

impl Table {
    fn new() -> Table {
        Table {
            slots: Vec::new(),
            state: foldhash::fast::RandomState::default(),
        }
    }

    /// The key of (`host`, `method`, `path`): the remembered one when its slot holds
    /// these inputs, else `build`'s, remembered in the slot.
    fn key(
        &mut self,
        host: &str,
        method: &str,
        path: &str,
        build: impl FnOnce() -> String,
    ) -> String {
        if host.len() + method.len() + path.len() > MAX_KEPT_INPUT {
            return build();
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Slot::default);
        }
        let at = (self.state.hash_one((host, method, path)) as usize) & (SLOTS - 1);
        let Some(slot) = self.slots.get_mut(at) else {
            return build();
        };
        if slot.used && slot.path == path && slot.method == method && slot.host == host {
            return slot.key.clone();
        }
        let key = build();
        for (kept, text) in [
            (&mut slot.host, host),
            (&mut slot.method, method),
            (&mut slot.path, path),
            (&mut slot.key, key.as_str()),
        ] {
            kept.clear();
            kept.push_str(text);
        }
        slot.used = true;
        key
    }
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::new());
}

/// The endpoint key of (`host`, `method`, `path`) as `build` makes it from them, taken
/// from this thread's table when these inputs were keyed lately (see the module
/// documentation). `build` is a plain function of the three inputs, so it can be run
/// here whatever happened to the table: borrowed already (only when `build` itself keys
/// a request on this thread) or gone (the thread is ending).
pub(super) fn key(
    host: &str,
    method: &str,
    path: &str,
    build: fn(&str, &str, &str) -> String,
) -> String {
    TABLE
        .try_with(|table| {
            let mut table = table.try_borrow_mut().ok()?;
            Some(table.key(host, method, path, || build(host, method, path)))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| build(host, method, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(host: &str, method: &str, path: &str) -> String {
        format!("{host}|{method}|{path}")
    }

    #[test]
    fn a_key_comes_back_only_for_the_same_three_inputs() {
        let mut table = Table::new();
        let mut builds = 0;
        let inputs = [
            ("a", "GET", "/x"),
            ("a", "GET", "/y"),
            ("a", "POST", "/x"),
            ("b", "GET", "/x"),
            ("", "", ""),
            ("aG", "ET", "/x"),
        ];
        for round in 0..3 {
            for (h, m, p) in inputs {
                let key = table.key(h, m, p, || {
                    builds += 1;
                    built(h, m, p)
                });
                assert_eq!(key, built(h, m, p), "round {round}");
            }
        }
        // Each input built once at most per slot it lost; at least once each.
        assert!(builds >= inputs.len(), "{builds}");
    }

    #[test]
    fn colliding_inputs_are_told_apart_and_long_ones_are_not_kept() {
        let mut table = Table::new();
        // Far more inputs than slots: every slot is taken over many times.
        for round in 0..2 {
            for i in 0..(4 * SLOTS) {
                let path = format!("/p/{i}");
                let key = table.key("h", "GET", &path, || built("h", "GET", &path));
                assert_eq!(key, built("h", "GET", &path), "round {round}");
            }
        }
        let long = "/l".repeat(MAX_KEPT_INPUT);
        let mut builds = 0;
        for _ in 0..3 {
            let key = table.key("h", "GET", &long, || {
                builds += 1;
                built("h", "GET", &long)
            });
            assert_eq!(key, built("h", "GET", &long));
        }
        assert_eq!(builds, 3, "a long input is built every time");
        assert!(
            table
                .slots
                .iter()
                .all(|s| s.host.len() + s.method.len() + s.path.len() <= MAX_KEPT_INPUT)
        );
    }

    #[test]
    fn a_key_built_while_keying_does_not_use_the_table() {
        let outer = key("h", "GET", "/outer", |h, m, p| {
            let inner = key(h, m, "/inner", built);
            assert_eq!(inner, built("h", "GET", "/inner"));
            built(h, m, p)
        });
        assert_eq!(outer, built("h", "GET", "/outer"));
        assert_eq!(
            key("h", "GET", "/outer", |_, _, _| "built again".to_owned()),
            built("h", "GET", "/outer"),
            "the outer key was remembered"
        );
    }
}
