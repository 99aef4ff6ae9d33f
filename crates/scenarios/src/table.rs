//! Every live bucket, bounded: a slab of slots indexed by a hash table of slot numbers,
//! with one least-recently-used list per scenario.
//!
//! The hash table stores only `u32` slot numbers (the key lives once, in the slot), so a
//! bucket costs its slot plus about five bytes of index. Per-scenario LRU lists let
//! [`Table::sweep`] stop at the first live bucket of each scenario instead of scanning a
//! million slots, and eviction takes the least recently touched bucket over all lists.

use hashbrown::HashTable;

use crate::bucket::Bucket;
use crate::hash::Seed;

const NIL: u32 = u32::MAX;

/// Which bucket: scenario, client address (masked; 0 when not grouped by it) and a keyed
/// hash of the other group fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupKey {
    /// The masked client address in its 16-byte form.
    pub ip: [u8; 16],
    /// Keyed hash of the string fields (0 when there are none).
    pub h: u64,
    /// Index of the scenario in the engine.
    pub scenario: u16,
}

fn key_hash(seed: &Seed, k: &GroupKey) -> u64 {
    let ip = u128::from_le_bytes(k.ip);
    let a = seed.mix(k.h, ip as u64);
    let b = seed.mix(a, (ip >> 64) as u64);
    seed.mix(b, u64::from(k.scenario))
}

/// One slab entry: a live bucket and its LRU links.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub key: GroupKey,
    pub bucket: Bucket,
    prev: u32,
    next: u32,
    live: bool,
}

#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// The bounded bucket store.
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: HashTable<u32>,
    lists: Vec<List>,
    seed: Seed,
    len: usize,
}

impl Table {
    /// An empty table for `scenarios` scenarios, hashing under `seed`.
    pub(crate) fn new(scenarios: usize, seed: Seed) -> Table {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            lists: vec![
                List {
                    head: NIL,
                    tail: NIL
                };
                scenarios
            ],
            seed,
            len: 0,
        }
    }

    /// Live buckets.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, k: &GroupKey) -> u64 {
        key_hash(&self.seed, k)
    }

    /// The slot number of a live key, touching it (most recently used).
    pub(crate) fn get(&mut self, key: &GroupKey) -> Option<u32> {
        let h = self.hash(key);
        let slots = &self.slots;
        let idx = *self
            .index
            .find(h, |&i| slots.get(i as usize).is_some_and(|s| s.key == *key))?;
        self.touch(idx);
        Some(idx)
    }

    /// Inserts a bucket for a key that is not present, as most recently used. The caller
    /// evicts first when the table is at its cap.
    pub(crate) fn insert(&mut self, key: GroupKey, bucket: Bucket) -> u32 {
        let slot = Slot {
            key,
            bucket,
            prev: NIL,
            next: NIL,
            live: true,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let h = self.hash(&key);
        let slots = &self.slots;
        let seed = self.seed;
        self.index.insert_unique(h, idx, |&i| {
            slots.get(i as usize).map_or(0, |s| key_hash(&seed, &s.key))
        });
        self.push_front(idx);
        self.len += 1;
        idx
    }

    /// The slot, for reading or changing its bucket.
    pub(crate) fn slot_mut(&mut self, idx: u32) -> Option<&mut Slot> {
        self.slots.get_mut(idx as usize)
    }

    /// Removes a live slot.
    pub(crate) fn remove(&mut self, idx: u32) {
        let Some(key) = self
            .slots
            .get(idx as usize)
            .filter(|s| s.live)
            .map(|s| s.key)
        else {
            return;
        };
        let h = self.hash(&key);
        if let Ok(entry) = self.index.find_entry(h, |&i| i == idx) {
            entry.remove();
        }
        self.unlink(idx);
        if let Some(s) = self.slots.get_mut(idx as usize) {
            s.live = false;
            // Free the evidence now rather than when the slot is reused.
            s.bucket.extra = None;
        }
        self.free.push(idx);
        self.len -= 1;
    }

    /// The least recently touched bucket over all scenarios (by latest event time), for
    /// eviction.
    pub(crate) fn oldest(&self) -> Option<u32> {
        self.lists
            .iter()
            .filter(|l| l.tail != NIL)
            .filter_map(|l| {
                self.slots
                    .get(l.tail as usize)
                    .map(|s| (l.tail, s.bucket.last_ts))
            })
            .min_by_key(|(_, ts)| *ts)
            .map(|(i, _)| i)
    }

    /// Removes buckets of `scenario` for which `expired` holds, walking from its least
    /// recently touched end and stopping at the first bucket touched after `stop_after`
    /// (later ones cannot be expired yet). Returns how many were removed.
    pub(crate) fn sweep(
        &mut self,
        scenario: u16,
        stop_after: i64,
        mut expired: impl FnMut(&Bucket) -> bool,
    ) -> usize {
        let mut removed = 0;
        let mut cur = self
            .lists
            .get(usize::from(scenario))
            .map_or(NIL, |l| l.tail);
        while cur != NIL {
            let Some(s) = self.slots.get(cur as usize) else {
                break;
            };
            let prev = s.prev;
            if s.bucket.last_ts > stop_after {
                break;
            }
            if expired(&s.bucket) {
                self.remove(cur);
                removed += 1;
            }
            cur = prev;
        }
        removed
    }

    /// Every live slot, least recently used first within each scenario.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.lists.iter().flat_map(move |l| {
            let mut cur = l.tail;
            std::iter::from_fn(move || {
                let s = self.slots.get(cur as usize)?;
                cur = s.prev;
                Some(s)
            })
        })
    }

    /// Bytes held by the table's own structures (not counting evidence boxes).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.free.capacity() * 4
            + self.index.capacity() * (4 + 1)
    }

    fn touch(&mut self, idx: u32) {
        let scenario = self.slots.get(idx as usize).map(|s| s.key.scenario);
        if let Some(sc) = scenario
            && self
                .lists
                .get(usize::from(sc))
                .is_some_and(|l| l.head == idx)
        {
            return;
        }
        self.unlink(idx);
        self.push_front(idx);
    }

    fn push_front(&mut self, idx: u32) {
        let Some(sc) = self
            .slots
            .get(idx as usize)
            .map(|s| usize::from(s.key.scenario))
        else {
            return;
        };
        let Some(list) = self.lists.get_mut(sc) else {
            return;
        };
        let old = list.head;
        list.head = idx;
        if list.tail == NIL {
            list.tail = idx;
        }
        if let Some(s) = self.slots.get_mut(idx as usize) {
            s.prev = NIL;
            s.next = old;
        }
        if let Some(s) = self.slots.get_mut(old as usize) {
            s.prev = idx;
        }
    }

    fn unlink(&mut self, idx: u32) {
        let Some((prev, next, sc)) = self
            .slots
            .get(idx as usize)
            .map(|s| (s.prev, s.next, usize::from(s.key.scenario)))
        else {
            return;
        };
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if let Some(l) = self.lists.get_mut(sc) {
                    l.head = next;
                }
            }
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => {
                if let Some(l) = self.lists.get_mut(sc) {
                    l.tail = prev;
                }
            }
        }
        if let Some(s) = self.slots.get_mut(idx as usize) {
            s.prev = NIL;
            s.next = NIL;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scenario: u16, n: u8) -> GroupKey {
        let mut ip = [0u8; 16];
        ip[15] = n;
        GroupKey { ip, h: 0, scenario }
    }

    #[test]
    fn insert_get_remove_and_reuse() {
        let mut t = Table::new(2, Seed([1, 2]));
        let a = t.insert(key(0, 1), Bucket::new(10));
        let b = t.insert(key(1, 1), Bucket::new(20));
        assert_ne!(a, b);
        assert_eq!(t.get(&key(0, 1)), Some(a));
        assert_eq!(t.get(&key(1, 1)), Some(b));
        assert_eq!(t.get(&key(0, 2)), None);
        t.remove(a);
        assert_eq!(t.get(&key(0, 1)), None);
        assert_eq!(t.len(), 1);
        let c = t.insert(key(0, 3), Bucket::new(30));
        assert_eq!(c, a, "freed slot reused");
        assert_eq!(t.iter().count(), 2);
    }

    #[test]
    fn oldest_is_least_recent_over_all_scenarios() {
        let mut t = Table::new(2, Seed([1, 2]));
        t.insert(key(0, 1), Bucket::new(10));
        let b = t.insert(key(1, 1), Bucket::new(5));
        t.insert(key(0, 2), Bucket::new(20));
        assert_eq!(t.oldest(), Some(b));
        t.remove(b);
        let next = t.oldest().unwrap();
        assert_eq!(t.slot_mut(next).unwrap().key, key(0, 1));
    }

    #[test]
    fn touch_moves_to_front_and_sweep_stops_early() {
        let mut t = Table::new(1, Seed([1, 2]));
        for n in 0..10u8 {
            t.insert(key(0, n), Bucket::new(i64::from(n)));
        }
        // Touch key 0 and make it the most recent.
        let i = t.get(&key(0, 0)).unwrap();
        t.slot_mut(i).unwrap().bucket.last_ts = 100;
        let mut visited = 0;
        let removed = t.sweep(0, 4, |_| {
            visited += 1;
            true
        });
        assert_eq!(removed, 4, "keys 1..=4");
        assert_eq!(visited, 4);
        assert_eq!(t.len(), 6);
        assert!(t.get(&key(0, 0)).is_some());
        assert!(t.get(&key(0, 1)).is_none());
        assert!(t.get(&key(0, 5)).is_some());
    }

    #[test]
    fn many_keys_stay_consistent() {
        let mut t = Table::new(3, Seed::random());
        for n in 0..50_000u32 {
            let mut k = key((n % 3) as u16, 0);
            k.h = u64::from(n);
            t.insert(k, Bucket::new(i64::from(n)));
            if n % 7 == 0 {
                let o = t.oldest().unwrap();
                t.remove(o);
            }
        }
        assert_eq!(t.len(), t.iter().count());
        for n in (0..50_000u32).rev().take(100) {
            let mut k = key((n % 3) as u16, 0);
            k.h = u64::from(n);
            assert!(t.get(&k).is_some(), "{n}");
        }
    }
}
