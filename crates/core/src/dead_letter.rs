//! Lines that could not be parsed, kept with the reason.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A line that no parser accepted. It is stored, counted and served so that a user can
/// see exactly what was not understood and why: nothing is ever dropped silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The source the line came from.
    pub source: String,
    /// The 1-based line number within the source, when it has lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_no: Option<u64>,
    /// The byte offset of the line's start within the source, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The raw line (invalid UTF-8 replaced), capped at [`DeadLetter::MAX_RAW`] bytes.
    pub raw: String,
    /// Why the line was rejected, in words a user can act on.
    pub reason: String,
    /// When Palisade rejected it.
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
}

impl DeadLetter {
    /// Longest raw line kept, so that one giant line cannot bloat the store.
    pub const MAX_RAW: usize = 16 * 1024;

    /// Builds a dead letter from raw bytes, capping and sanitising the raw text.
    pub fn new(
        source: &str,
        line_no: Option<u64>,
        offset: Option<u64>,
        raw: &[u8],
        reason: impl Into<String>,
    ) -> Self {
        let kept = &raw[..raw.len().min(Self::MAX_RAW)];
        DeadLetter {
            source: source.to_owned(),
            line_no,
            offset,
            raw: String::from_utf8_lossy(kept).into_owned(),
            reason: reason.into(),
            received_at: Timestamp::now(),
        }
    }
}

/// A dead letter as the store returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredDeadLetter {
    /// The store-assigned id.
    pub id: i64,
    /// The dead letter.
    #[serde(flatten)]
    pub dead_letter: DeadLetter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_capped_and_lossy() {
        let mut raw = vec![b'a'; DeadLetter::MAX_RAW + 10];
        raw[0] = 0xff;
        let d = DeadLetter::new("s", Some(1), Some(0), &raw, "bad");
        assert!(d.raw.starts_with('\u{fffd}'));
        assert!(d.raw.len() <= DeadLetter::MAX_RAW + 3);
    }
}
