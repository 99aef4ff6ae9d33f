//! The translation between the domain model and column values, shared by both backends
//! so that they store (and give back) exactly the same thing.
//!
//! One submodule per group of tables, named like the store trait and the backend
//! modules that use it (`ingest` for the [`Store`](crate::Store) core, `security`,
//! `threats`, `decisions`, `logins`, `jobs`); what every group needs lives here.
//! `threats`, `decisions`, `analytics`, `posture`); what every group needs lives here.

use std::borrow::Cow;

pub(crate) mod alerts;
pub(crate) mod analytics;
pub(crate) mod decisions;
pub(crate) mod flows;
pub(crate) mod ingest;
pub(crate) mod jobs;
pub(crate) mod logins;
pub(crate) mod posture;
pub(crate) mod reports;
pub(crate) mod security;
pub(crate) mod threats;
pub(crate) mod vulns;

/// Text as it is stored: PostgreSQL rejects NUL in text, so both backends replace it
/// with U+FFFD. A stray NUL in one log line must not make a whole batch unstorable, and
/// both backends must give back the same thing.
///
/// Every text of every stored event and threat passes here, so the NUL is looked for
/// with `memchr`'s vector search rather than `str::contains`, whose `char` search in
/// `core` goes a word at a time (~0.5k instructions a line of an import between them:
/// docs/BENCHMARKS.md, `ingest11`).
pub(crate) fn clean(s: &str) -> Cow<'_, str> {
    if memchr::memchr(0, s.as_bytes()).is_some() {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Unsigned counts are stored as BIGINT; a value beyond `i64::MAX` (never seen in
/// practice) is clamped rather than failing the batch.
pub(crate) fn u64_to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced() {
        assert_eq!(clean("a\0b"), "a\u{fffd}b");
        assert!(matches!(clean("ab"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_nul_is_found_wherever_it_is() {
        // Lengths around the vector search's blocks, the NUL at every place, and none.
        for len in [1usize, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            assert!(matches!(clean(&text), Cow::Borrowed(t) if t == text));
            for at in 0..len {
                let mut bytes = text.clone().into_bytes();
                if let Some(b) = bytes.get_mut(at) {
                    *b = 0;
                }
                let with_nul = String::from_utf8(bytes).unwrap_or_default();
                let expected = with_nul.replace('\0', "\u{fffd}");
                assert!(
                    matches!(clean(&with_nul), Cow::Owned(t) if t == expected),
                    "{len} {at}"
                );
            }
        }
    }
}
