//! The translation between decisions and column values, shared by both backends so that
//! they store (and give back) exactly the same thing.

use std::borrow::Cow;

use palisade_core::Timestamp;
use palisade_core::decision::{
    Decision, DecisionKind, DecisionOrigin, DecisionScope, DecisionTarget, NewDecision,
};
use palisade_core::net::IpNet;

use crate::StoreError;
use crate::codec::clean;

/// The longest scenario (or reason) and creator name stored, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 512;

/// The decision columns (without `id`) in insert order.
pub(crate) const DECISION_INSERT_COLUMNS: &str = "kind, scope, value, net_first, net_last, \
     origin, scenario, created_by, threat_id, created_at, updated_at, expires_at";

/// The decision columns every read selects, in the order [`DecisionColumns`] expects.
pub(crate) const DECISION_SELECT_COLUMNS: &str = "id, kind, scope, value, net_first, net_last, \
     origin, scenario, created_by, threat_id, created_at, updated_at, expires_at, deleted_at, \
     deleted_by";

/// What `deleted_by` says for a decision that ran out.
pub(crate) const EXPIRY: &str = "expiry";

/// `s` cut to at most `max` characters and cleaned of NUL.
fn capped(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((at, _)) => Cow::Owned(clean(&s[..at]).into_owned()),
        None => clean(s),
    }
}

/// A name as stored (`deleted_by`): capped and cleaned.
pub(crate) fn cap_text(s: &str) -> String {
    capped(s, MAX_TEXT_CHARS).into_owned()
}

/// One new decision as column values.
pub(crate) struct DecisionColumnsIn<'a> {
    pub kind: &'static str,
    pub scope: &'static str,
    pub value: String,
    pub net_first: [u8; 16],
    pub net_last: [u8; 16],
    pub origin: &'static str,
    pub scenario: Cow<'a, str>,
    pub created_by: Cow<'a, str>,
    pub threat_id: Option<i64>,
    pub expires_at: Option<i64>,
}

impl<'a> DecisionColumnsIn<'a> {
    /// The column values for a new decision.
    pub fn new(d: &'a NewDecision) -> Self {
        let net = d.target.net();
        DecisionColumnsIn {
            kind: d.kind.as_str(),
            scope: d.target.scope().as_str(),
            value: d.target.to_string(),
            net_first: net.first,
            net_last: net.last,
            origin: d.origin.as_str(),
            scenario: capped(&d.scenario, MAX_TEXT_CHARS),
            created_by: capped(&d.created_by, MAX_TEXT_CHARS),
            threat_id: d.threat_id,
            expires_at: d.expires_at.map(Timestamp::as_micros),
        }
    }
}

/// One stored decision row as read back.
#[derive(Debug, Default)]
pub(crate) struct DecisionColumns {
    pub id: i64,
    pub kind: String,
    pub scope: String,
    pub value: String,
    pub net_first: Vec<u8>,
    pub net_last: Vec<u8>,
    pub origin: String,
    pub scenario: String,
    pub created_by: String,
    pub threat_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
}

impl DecisionColumns {
    /// The domain model; `Corrupt` when a value cannot be read back.
    pub fn into_decision(self) -> Result<Decision, StoreError> {
        let id = self.id;
        let corrupt = |what: &str, detail: &str| {
            StoreError::Corrupt(format!("decision {id}: bad {what}: {detail}"))
        };
        let key = |v: &[u8], what: &str| -> Result<[u8; 16], StoreError> {
            v.try_into().map_err(|_| corrupt(what, &format!("{v:?}")))
        };
        let net = IpNet {
            first: key(&self.net_first, "net_first")?,
            last: key(&self.net_last, "net_last")?,
        };
        // The value is the canonical text of the network: both must agree.
        let target: DecisionTarget = self
            .value
            .parse()
            .map_err(|e: palisade_core::decision::TargetError| corrupt("value", &e.to_string()))?;
        if target.net() != net {
            return Err(corrupt("net", "does not match the value"));
        }
        Ok(Decision {
            id,
            kind: DecisionKind::parse(&self.kind).ok_or_else(|| corrupt("kind", &self.kind))?,
            scope: DecisionScope::parse(&self.scope)
                .ok_or_else(|| corrupt("scope", &self.scope))?,
            value: self.value,
            net,
            origin: DecisionOrigin::parse(&self.origin)
                .ok_or_else(|| corrupt("origin", &self.origin))?,
            scenario: self.scenario,
            created_by: self.created_by,
            threat_id: self.threat_id,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            expires_at: self.expires_at.map(Timestamp),
            deleted_at: self.deleted_at.map(Timestamp),
            deleted_by: self.deleted_by,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> DecisionColumns {
        let t: DecisionTarget = "10.0.0.0/8".parse().unwrap();
        DecisionColumns {
            id: 7,
            kind: "ban".into(),
            scope: "range".into(),
            value: t.to_string(),
            net_first: t.net().first.to_vec(),
            net_last: t.net().last.to_vec(),
            origin: "manual".into(),
            ..DecisionColumns::default()
        }
    }

    #[test]
    fn rows_round_trip_and_bad_rows_are_corrupt() {
        let d = row().into_decision().unwrap();
        assert_eq!(d.value, "10.0.0.0/8");
        assert_eq!(d.scope, DecisionScope::Range);
        for bad in [
            DecisionColumns {
                kind: "captcha".into(),
                ..row()
            },
            DecisionColumns {
                origin: "x".into(),
                ..row()
            },
            DecisionColumns {
                net_first: vec![1],
                ..row()
            },
            DecisionColumns {
                value: "10.0.0.0/9".into(),
                ..row()
            },
            DecisionColumns {
                value: "nope".into(),
                ..row()
            },
        ] {
            assert!(matches!(bad.into_decision(), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn text_is_capped_and_cleaned() {
        let d = NewDecision {
            kind: DecisionKind::Ban,
            target: "192.0.2.1".parse().unwrap(),
            origin: DecisionOrigin::Scenario,
            scenario: format!("a\0{}", "é".repeat(600)),
            created_by: "x".into(),
            threat_id: None,
            expires_at: None,
        };
        let c = DecisionColumnsIn::new(&d);
        assert_eq!(c.scenario.chars().count(), MAX_TEXT_CHARS);
        assert!(c.scenario.starts_with("a\u{fffd}"));
        assert_eq!(c.value, "192.0.2.1");
        assert_eq!(c.scope, "ip");
    }
}
