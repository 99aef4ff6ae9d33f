//! The translation between threats and column values, shared by both backends so that
//! they store (and give back) exactly the same thing.

use std::borrow::Cow;

use palisade_core::Timestamp;
use palisade_core::net::{ip_from_key, ip_key};
use palisade_core::severity::{Severity, UnknownSeverity};
use palisade_core::threat::{Evidence, StoredThreat, Threat};
use palisade_core::verdict::{Action, UnknownAction};

use crate::StoreError;
use crate::codec::clean;

/// The longest `uri` stored, in characters; longer ones are cut.
pub(crate) const MAX_URI_CHARS: usize = 2048;

/// The threat columns (without `id`) in insert order.
pub(crate) const THREAT_INSERT_COLUMNS: &str = "ts, category, severity, score, client_ip, \
     method, uri, source, event_id, decision, evidence, rule_ids, tags";

/// The threat columns every read selects, in the order [`ThreatColumns`] expects.
pub(crate) const THREAT_SELECT_COLUMNS: &str = "id, ts, category, severity, score, client_ip, \
     method, uri, source, event_id, decision, evidence, rule_ids, tags";

/// The stored form of a rule id: the INTEGER column holds the id's 32-bit two's
/// complement, so that every `u32` fits a PostgreSQL INTEGER and reads back exactly.
pub(crate) fn rule_id_to_i32(id: u32) -> i32 {
    i32::from_ne_bytes(id.to_ne_bytes())
}

/// The inverse of [`rule_id_to_i32`].
pub(crate) fn rule_id_from_i32(v: i32) -> u32 {
    u32::from_ne_bytes(v.to_ne_bytes())
}

/// `s` cut to at most `max` characters.
fn cap_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// One threat as column values.
pub(crate) struct ThreatColumnsIn<'a> {
    pub ts: i64,
    pub category: Cow<'a, str>,
    pub severity: &'static str,
    pub score: i32,
    pub client_ip: Option<[u8; 16]>,
    pub method: Option<Cow<'a, str>>,
    pub uri: Option<Cow<'a, str>>,
    pub source: Cow<'a, str>,
    pub event_id: Option<i64>,
    pub decision: &'static str,
    pub evidence: String,
    pub rule_ids: String,
    /// The JSON array of tags (migration 0016).
    pub tags: String,
    /// The distinct rule ids, for `threat_rules`.
    pub distinct_rules: Vec<i32>,
}

impl<'a> ThreatColumnsIn<'a> {
    /// The column values for one threat. Text is cleaned of NUL, the URI capped at
    /// [`MAX_URI_CHARS`], a score beyond `i32::MAX` saturated.
    pub fn new(t: &'a Threat) -> Result<Self, StoreError> {
        let evidence = serde_json::to_string(&t.evidence)
            .map_err(|e| StoreError::Database(format!("cannot encode evidence: {e}")))?;
        let rule_ids = serde_json::to_string(&t.rule_ids)
            .map_err(|e| StoreError::Database(format!("cannot encode rule ids: {e}")))?;
        let tags = serde_json::to_string(&t.tags)
            .map_err(|e| StoreError::Database(format!("cannot encode tags: {e}")))?;
        let mut distinct_rules = Vec::with_capacity(t.rule_ids.len());
        for id in &t.rule_ids {
            let v = rule_id_to_i32(*id);
            if !distinct_rules.contains(&v) {
                distinct_rules.push(v);
            }
        }
        let uri = t.uri.as_deref().map(|u| clean(cap_chars(u, MAX_URI_CHARS)));
        Ok(ThreatColumnsIn {
            ts: t.ts.as_micros(),
            category: clean(&t.category),
            severity: t.severity.as_str(),
            score: i32::try_from(t.score).unwrap_or(i32::MAX),
            client_ip: t.client_ip.map(ip_key),
            method: t.method.as_deref().map(clean),
            uri,
            source: clean(&t.source),
            event_id: t.event_id,
            decision: t.decision.as_str(),
            evidence,
            rule_ids,
            tags,
            distinct_rules,
        })
    }
}

/// One stored threat row as read back.
#[derive(Debug, Default)]
pub(crate) struct ThreatColumns {
    pub id: i64,
    pub ts: i64,
    pub category: String,
    pub severity: String,
    pub score: i64,
    pub client_ip: Option<Vec<u8>>,
    pub method: Option<String>,
    pub uri: Option<String>,
    pub source: String,
    pub event_id: Option<i64>,
    pub decision: String,
    pub evidence: String,
    pub rule_ids: String,
    pub tags: String,
}

impl ThreatColumns {
    /// The domain model; `Corrupt` when a value cannot be read back.
    pub fn into_stored(self) -> Result<StoredThreat, StoreError> {
        let id = self.id;
        let corrupt = |what: &str, detail: String| {
            StoreError::Corrupt(format!("threat {id}: bad {what}: {detail}"))
        };
        let client_ip = match self.client_ip {
            None => None,
            Some(key) => {
                Some(ip_from_key(&key).ok_or_else(|| corrupt("client_ip", format!("{key:?}")))?)
            }
        };
        let score =
            u32::try_from(self.score).map_err(|_| corrupt("score", self.score.to_string()))?;
        let evidence: Vec<Evidence> =
            serde_json::from_str(&self.evidence).map_err(|e| corrupt("evidence", e.to_string()))?;
        let rule_ids: Vec<u32> =
            serde_json::from_str(&self.rule_ids).map_err(|e| corrupt("rule_ids", e.to_string()))?;
        // The column defaults to `[]`; an empty value reads as no tags too.
        let tags: Vec<String> = if self.tags.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&self.tags).map_err(|e| corrupt("tags", e.to_string()))?
        };
        let severity: Severity = self
            .severity
            .parse()
            .map_err(|e: UnknownSeverity| corrupt("severity", e.0))?;
        let decision: Action = self
            .decision
            .parse()
            .map_err(|e: UnknownAction| corrupt("decision", e.0))?;
        Ok(StoredThreat {
            id,
            threat: Threat {
                tags,
                ts: Timestamp(self.ts),
                category: self.category,
                severity,
                score,
                rule_ids,
                client_ip,
                method: self.method,
                uri: self.uri,
                source: self.source,
                event_id: self.event_id,
                decision,
                evidence,
            },
        })
    }
}

/// The bucket width used for statistics, in µs: at least 60 s.
pub(crate) fn bucket_micros(bucket_secs: i64) -> i64 {
    bucket_secs.max(60).saturating_mul(1_000_000)
}

/// The label of a statistics bucket: its start, RFC 3339.
pub(crate) fn bucket_label(bucket: i64, micros: i64) -> String {
    Timestamp(bucket.saturating_mul(micros)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_survive_the_signed_column() {
        for id in [0, 1, 942_100, u32::MAX, 1 << 31] {
            assert_eq!(rule_id_from_i32(rule_id_to_i32(id)), id);
        }
    }

    #[test]
    fn uris_are_capped_on_characters_and_cleaned() {
        let t = Threat {
            tags: Vec::new(),
            ts: Timestamp(1),
            category: "sq\0li".into(),
            severity: Severity::Critical,
            score: u32::MAX,
            rule_ids: vec![3, 1, 3],
            client_ip: None,
            method: None,
            uri: Some("é".repeat(3000)),
            source: "check".into(),
            event_id: None,
            decision: Action::Block,
            evidence: vec![],
        };
        let c = ThreatColumnsIn::new(&t).unwrap();
        assert_eq!(
            c.uri.as_deref().map(|u| u.chars().count()),
            Some(MAX_URI_CHARS)
        );
        assert_eq!(c.category, "sq\u{fffd}li");
        assert_eq!(c.score, i32::MAX);
        assert_eq!(c.distinct_rules, vec![3, 1]);
        assert_eq!(c.rule_ids, "[3,1,3]");
    }

    #[test]
    fn bad_rows_are_corrupt() {
        let bad = ThreatColumns {
            evidence: "[".into(),
            rule_ids: "[]".into(),
            ..ThreatColumns::default()
        };
        assert!(matches!(bad.into_stored(), Err(StoreError::Corrupt(_))));
        let bad = ThreatColumns {
            evidence: "[]".into(),
            rule_ids: "[]".into(),
            client_ip: Some(vec![1]),
            ..ThreatColumns::default()
        };
        assert!(matches!(bad.into_stored(), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn unknown_severities_and_decisions_are_corrupt() {
        let row = |severity: &str, decision: &str| ThreatColumns {
            evidence: "[]".into(),
            rule_ids: "[]".into(),
            severity: severity.into(),
            decision: decision.into(),
            ..ThreatColumns::default()
        };
        let ok = row("warning", "detect").into_stored().unwrap().threat;
        assert_eq!(
            (ok.severity, ok.decision),
            (Severity::Warning, Action::Detect)
        );
        for (severity, decision) in [("fatal", "block"), ("error", "deny"), ("", "")] {
            assert!(
                matches!(
                    row(severity, decision).into_stored(),
                    Err(StoreError::Corrupt(_))
                ),
                "{severity} {decision}"
            );
        }
    }

    #[test]
    fn buckets_are_at_least_a_minute() {
        assert_eq!(bucket_micros(1), 60_000_000);
        assert_eq!(bucket_micros(3600), 3_600_000_000);
        assert_eq!(bucket_label(0, 60_000_000), "1970-01-01T00:00:00Z");
    }
}
