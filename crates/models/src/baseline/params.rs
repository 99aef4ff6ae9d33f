//! An endpoint's parameter profiles by name ([`ParamMap`]).
//!
//! Judging a request and then learning it each looked every parameter up in a
//! `BTreeMap` (a linear scan of each node's names, a `memcmp` per name passed): two
//! lookups per parameter, about a third of what the baselines cost a form POST. Here
//! a parameter is looked up once, by a cheap hash, and the *slot* it was found in
//! serves the judgement and the learning that follows under the same lock
//! ([`ParamMap::slot`], [`ParamMap::at_mut`]).
//!
//! Saved baselines keep their form: the map is serialised as the `BTreeMap` was (a
//! JSON object, names in sorted order) and read from it, so baselines saved before
//! load, and those saved now load in an older build. Everything that lists the names
//! (serialisation, explanations, merging) sees them in that sorted order.
//!
//! Slots are stable: a new name is appended, nothing is removed (a profile only
//! grows, up to `max_parameters` names). The hash is not keyed; a client choosing
//! colliding names can only make lookups scan the names the endpoint has, at most
//! `max_parameters` (32 by default), as the `BTreeMap`'s did.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::profile::ParamProfile;

/// An endpoint's parameters by name: one hash lookup gives a slot that stays valid.
#[derive(Debug)]
pub struct ParamMap {
    /// The profiles in the order their names were first learnt (a slot is an index).
    entries: Vec<(String, ParamProfile)>,
    /// Name → slot.
    index: HashMap<String, u32, BuildHasherDefault<NameHasher>>,
    /// Which map this is ([`ParamMap::generation`]).
    generation: u64,
}

/// The generation of the next map made.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl Default for ParamMap {
    /// An empty map of a new generation.
    fn default() -> ParamMap {
        ParamMap {
            entries: Vec::new(),
            index: HashMap::default(),
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Clone for ParamMap {
    /// The same names in the same slots, as a map of a new generation (the two grow
    /// apart).
    fn clone(&self) -> ParamMap {
        ParamMap {
            entries: self.entries.clone(),
            index: self.index.clone(),
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl ParamMap {
    /// A number no other map has (a clone takes a new one): a name's slot, once found,
    /// stays its slot in this map (names are only ever appended), so slots remembered
    /// with the generation stay valid while the map is the same.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Names learnt.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no name was learnt.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The slot of `name`, which [`ParamMap::at`] and [`ParamMap::at_mut`] take: one
    /// lookup for the judgement and the learning of a request's parameter.
    #[inline]
    pub fn slot(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The profile in `slot`.
    #[inline]
    pub fn at(&self, slot: u32) -> Option<&ParamProfile> {
        self.entries.get(slot as usize).map(|(_, p)| p)
    }

    /// The profile in `slot`, to learn into.
    #[inline]
    pub fn at_mut(&mut self, slot: u32) -> Option<&mut ParamProfile> {
        self.entries.get_mut(slot as usize).map(|(_, p)| p)
    }

    /// The profile of `name`.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&ParamProfile> {
        self.slot(name).and_then(|s| self.at(s))
    }

    /// The profile of `name`, to learn into.
    #[inline]
    pub fn get_mut(&mut self, name: &str) -> Option<&mut ParamProfile> {
        self.slot(name).and_then(|s| self.at_mut(s))
    }

    /// Sets the profile of `name` (a new name takes the next slot); returns the one it
    /// replaces.
    pub fn insert(&mut self, name: String, profile: ParamProfile) -> Option<ParamProfile> {
        if let Some(p) = self.get_mut(&name) {
            return Some(std::mem::replace(p, profile));
        }
        let Ok(slot) = u32::try_from(self.entries.len()) else {
            // More than 4 billion names: not reachable under `max_parameters`.
            return None;
        };
        self.index.insert(name.clone(), slot);
        self.entries.push((name, profile));
        None
    }

    /// The names and profiles in name order (as the `BTreeMap` listed them).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ParamProfile)> {
        let mut sorted: Vec<&(String, ParamProfile)> = self.entries.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sorted.into_iter().map(|(n, p)| (n, p))
    }

    /// The names in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.iter().map(|(n, _)| n)
    }
}

impl PartialEq for ParamMap {
    /// Equal as maps: the same names with equal profiles, whatever their slots.
    fn eq(&self, other: &ParamMap) -> bool {
        self.len() == other.len()
            && self
                .entries
                .iter()
                .all(|(n, p)| other.get(n).is_some_and(|q| q == p))
    }
}

impl FromIterator<(String, ParamProfile)> for ParamMap {
    /// The map of these pairs; a repeated name keeps its last profile, as a `BTreeMap`
    /// collected from them would.
    fn from_iter<I: IntoIterator<Item = (String, ParamProfile)>>(pairs: I) -> ParamMap {
        let mut map = ParamMap::default();
        for (name, profile) in pairs {
            map.insert(name, profile);
        }
        map
    }
}

impl<'a> IntoIterator for &'a ParamMap {
    type Item = (&'a String, &'a ParamProfile);
    type IntoIter = Box<dyn Iterator<Item = (&'a String, &'a ParamProfile)> + 'a>;

    /// [`ParamMap::iter`]: in name order.
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl Serialize for ParamMap {
    /// As the `BTreeMap` was: an object, names in sorted order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for ParamMap {
    /// From the `BTreeMap`'s form (an object of profiles by name).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ParamMap, D::Error> {
        let sorted = BTreeMap::<String, ParamProfile>::deserialize(deserializer)?;
        Ok(sorted.into_iter().collect())
    }
}

/// The hash of a parameter name: FxHash's multiply-rotate over 8 bytes at a time (a
/// name is a few bytes; SipHash would cost several times the lookup it serves).
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

/// FxHash's multiplier.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some((word, tail)) = rest.split_first_chunk::<8>() {
            self.add(u64::from_le_bytes(*word));
            rest = tail;
        }
        // The last 0–7 bytes in one word: two overlapping halves, or the first, middle
        // and last byte (the way wyhash reads a short tail), with their count.
        let n = rest.len();
        let word = match (rest.first_chunk::<4>(), rest.last_chunk::<4>()) {
            (Some(head), Some(last)) => {
                u64::from(u32::from_le_bytes(*head)) | (u64::from(u32::from_le_bytes(*last)) << 32)
            }
            _ => {
                let at = |i: usize| u64::from(rest.get(i).copied().unwrap_or(0));
                if n == 0 {
                    0
                } else {
                    at(0) | (at(n / 2) << 8) | (at(n - 1) << 16)
                }
            }
        };
        self.add(word ^ ((n as u64) << 59));
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        // The table takes its buckets from the low bits: bring the well-mixed high
        // bits down.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The profile of a name known to be there (tests across the crate).
    impl std::ops::Index<&str> for ParamMap {
        type Output = ParamProfile;

        fn index(&self, name: &str) -> &ParamProfile {
            self.get(name).expect("no such parameter")
        }
    }

    fn profile(n: u64) -> ParamProfile {
        ParamProfile {
            n,
            ..ParamProfile::default()
        }
    }

    #[test]
    fn saved_as_the_btreemap_was_and_loaded_from_it() {
        let names = ["zeta", "id", "body:items.#.id", "B1", "ñame", "a", ""];
        let tree: BTreeMap<String, ParamProfile> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), profile(i as u64 + 1)))
            .collect();
        let map: ParamMap = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), profile(i as u64 + 1)))
            .collect();
        let old = serde_json::to_string(&tree).expect("json");
        assert_eq!(serde_json::to_string(&map).expect("json"), old, "same text");
        let loaded: ParamMap = serde_json::from_str(&old).expect("loads");
        assert_eq!(loaded, map);
        let keys: Vec<&String> = map.keys().collect();
        let tree_keys: Vec<&String> = tree.keys().collect();
        assert_eq!(keys, tree_keys, "listed in name order");
        // A repeated name keeps the last profile, as in the BTreeMap.
        let dup: ParamMap = serde_json::from_str(r#"{"a":{"n":1,"len_mean":0.0,"len_m2":0.0,"len_max":0,"classes":[],"shapes":[],"icd":[0.0,0.0,0.0,0.0,0.0,0.0],"icd_n":0,"values":[],"not_enum":false,"last_new_value_at":0},"a":{"n":2,"len_mean":0.0,"len_m2":0.0,"len_max":0,"classes":[],"shapes":[],"icd":[0.0,0.0,0.0,0.0,0.0,0.0],"icd_n":0,"values":[],"not_enum":false,"last_new_value_at":0}}"#).expect("json");
        let dup_tree: BTreeMap<String, ParamProfile> = serde_json::from_str(r#"{"a":{"n":1,"len_mean":0.0,"len_m2":0.0,"len_max":0,"classes":[],"shapes":[],"icd":[0.0,0.0,0.0,0.0,0.0,0.0],"icd_n":0,"values":[],"not_enum":false,"last_new_value_at":0},"a":{"n":2,"len_mean":0.0,"len_m2":0.0,"len_max":0,"classes":[],"shapes":[],"icd":[0.0,0.0,0.0,0.0,0.0,0.0],"icd_n":0,"values":[],"not_enum":false,"last_new_value_at":0}}"#).expect("json");
        assert_eq!((dup.len(), dup["a"].n), (dup_tree.len(), dup_tree["a"].n));
    }

    #[test]
    fn slots_stay_put_and_lookups_find_every_name() {
        let mut map = ParamMap::default();
        let names: Vec<String> = (0..200)
            .map(|i| match i % 4 {
                0 => format!("p{i}"),
                1 => "x".repeat(i),
                2 => format!("body:{i}.ñ"),
                _ => format!("{i}\0"),
            })
            .collect();
        for (i, n) in names.iter().enumerate() {
            assert!(map.insert(n.clone(), profile(i as u64)).is_none());
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(map.slot(n), Some(i as u32), "{n:?}");
            assert_eq!(map.get(n).map(|p| p.n), Some(i as u64));
        }
        assert_eq!(map.slot("p"), None);
        assert_eq!(map.slot("x"), Some(1), "one x");
        assert!(map.insert("p0".into(), profile(99)).is_some());
        assert_eq!((map.len(), map["p0"].n), (200, 99));
        if let Some(p) = map.at_mut(3) {
            p.n = 7;
        }
        assert_eq!(map.get(&names[3]).map(|p| p.n), Some(7));
        let mut hashes: Vec<u64> = ["", "\0", "a", "a\0", "ab", "ba", "abcdefgh", "abcdefgh\0"]
            .iter()
            .map(|s| {
                let mut h = NameHasher::default();
                h.write(s.as_bytes());
                h.finish()
            })
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(
            hashes.len(),
            8,
            "trailing zeros and lengths tell names apart"
        );
    }
}
