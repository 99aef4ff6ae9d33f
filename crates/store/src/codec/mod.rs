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
pub(crate) fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
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
}
