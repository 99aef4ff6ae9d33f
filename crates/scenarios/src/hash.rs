//! A keyed, stable 64-bit hash for group keys and distinct values.
//!
//! Bucket keys hold a hash of their string fields (user, host, …) instead of the strings,
//! so a bucket is a few fixed-size words and no string is kept per key. The hash is
//! keyed by a random per-engine seed, so a client cannot craft user names that collide
//! into someone else's bucket, and it is defined here (not `std`'s, whose algorithm may
//! change between Rust versions) so a snapshot restored with its seed by a newer build
//! still finds its buckets.

use std::hash::{BuildHasher, RandomState};

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const MUL2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// The per-engine hash key. Part of a snapshot, because stored bucket keys are only
/// meaningful under the seed that produced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub [u64; 2]);

impl Seed {
    /// A fresh random seed (from the standard library's per-process random keys).
    pub fn random() -> Seed {
        let s = RandomState::new();
        Seed([s.hash_one(0x5eed_u64), s.hash_one(0xfeed_u64) | 1])
    }

    /// Hashes bytes; `tag` separates fields so `("ab","c")` and `("a","bc")` differ.
    pub fn hash_bytes(&self, tag: u64, bytes: &[u8]) -> u64 {
        let [k0, k1] = self.0;
        let mut acc = fold_mul(k0 ^ tag.wrapping_mul(MUL2), k1 ^ bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            acc = fold_mul(acc ^ u64::from_le_bytes(w), k1 ^ MUL);
        }
        let rem = chunks.remainder();
        if !rem.is_empty() {
            let mut w = [0u8; 8];
            w[..rem.len()].copy_from_slice(rem);
            acc = fold_mul(acc ^ u64::from_le_bytes(w), k0 ^ MUL2);
        }
        fold_mul(acc, MUL ^ k1)
    }

    /// Mixes a fixed-size value into an accumulated hash.
    pub fn mix(&self, acc: u64, v: u64) -> u64 {
        fold_mul(acc ^ v ^ self.0[0], MUL ^ self.0[1])
    }
}

/// The folded multiply at the heart of wyhash/foldhash: the 128-bit product of two words,
/// high half XOR low half. One multiplication mixes every input bit into the result.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a).wrapping_mul(u128::from(b));
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_under_a_seed_and_separated_by_tag_and_seed() {
        let s = Seed([1, 3]);
        assert_eq!(
            s.hash_bytes(0, b"alice"),
            Seed([1, 3]).hash_bytes(0, b"alice")
        );
        assert_ne!(s.hash_bytes(0, b"alice"), s.hash_bytes(1, b"alice"));
        assert_ne!(
            s.hash_bytes(0, b"alice"),
            Seed([2, 3]).hash_bytes(0, b"alice")
        );
        assert_ne!(s.hash_bytes(0, b""), s.hash_bytes(0, b"\0"));
        assert_ne!(
            s.hash_bytes(0, b"0123456789abcdef"),
            s.hash_bytes(0, b"0123456789abcdeg")
        );
        // Pinned so an accidental change of the function (which would orphan every
        // snapshot) fails a test.
        assert_eq!(s.hash_bytes(7, b"root"), 6_227_876_686_329_752_992);
    }

    #[test]
    fn few_collisions_on_similar_inputs() {
        let s = Seed::random();
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000u32 {
            seen.insert(s.hash_bytes(0, format!("user{i}").as_bytes()));
        }
        assert_eq!(seen.len(), 100_000);
    }
}
