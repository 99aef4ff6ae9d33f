//! What an overflowing bucket reports, and its translation into the shared `Threat`.

use std::fmt::Write as _;
use std::net::IpAddr;

use palisade_core::Timestamp;
use palisade_core::decision::DecisionTarget;
use palisade_core::threat::{Evidence, Threat};
use palisade_core::verdict::Action;
use serde::{Deserialize, Serialize};

use crate::duration::format_duration;
use crate::scenario::{DecisionScope, Severity};

/// Where behaviour threats say they were seen (`Threat::source`).
pub const THREAT_SOURCE: &str = "scenario";

/// A ban to enforce because of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Always `ban` for now; a string so new kinds (captcha, throttle) stay compatible.
    #[serde(rename = "type")]
    pub kind: String,
    /// Address or network.
    pub scope: DecisionScope,
    /// What to ban: `203.0.113.7` or `203.0.113.0/24` (serialised as that text).
    pub target: DecisionTarget,
    /// How long, in seconds.
    pub duration_secs: u64,
    /// Until when, in log time (the alert's time plus the duration).
    pub until: Timestamp,
}

/// One scenario overflow: who, what, when, how much, with the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The scenario's numeric id (a rule id in threats).
    pub scenario_id: u32,
    /// The scenario's name.
    pub scenario: String,
    /// Threat category.
    pub category: String,
    /// Severity.
    pub severity: Severity,
    /// The group key, field by field (`[("client_ip", "203.0.113.7")]`).
    pub group: Vec<(String, String)>,
    /// The client address of the event that overflowed the bucket, when the scenario
    /// groups by client address or network.
    pub client_ip: Option<IpAddr>,
    /// The network grouped by (`203.0.113.0/24`), for network scenarios.
    pub network: Option<String>,
    /// First event of the episode that overflowed (log time).
    pub first_ts: Timestamp,
    /// The event that overflowed it (log time).
    pub last_ts: Timestamp,
    /// Matching events in the episode.
    pub events: u32,
    /// Distinct values counted, for distinct scenarios.
    pub distinct: Option<u32>,
    /// Which field `distinct` counts.
    pub distinct_field: Option<String>,
    /// Ids of the events that filled the bucket (the last ones, bounded), oldest first.
    pub event_ids: Vec<i64>,
    /// Which field the samples are values of.
    pub sample_field: Option<String>,
    /// Sample values (users tried, paths probed…), bounded, first seen first.
    pub samples: Vec<String>,
    /// The ban to take, if the scenario has one.
    pub decision: Option<Decision>,
    /// The overflowing event's id, when known.
    pub event_id: Option<i64>,
    /// The overflowing event's method and target, for the threat list.
    pub method: Option<String>,
    /// Path and query of the overflowing event (capped).
    pub uri: Option<String>,
}

impl Alert {
    /// The group key as one string, `client_ip=203.0.113.7 user=admin` (`global` for
    /// ungrouped scenarios).
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            return "global".into();
        }
        let mut s = String::new();
        for (i, (k, v)) in self.group.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let _ = write!(s, "{k}={v}");
        }
        s
    }

    /// One line for people: `12 events (9 distinct path) in 41s from client_ip=…`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} events", self.events);
        if let (Some(d), Some(f)) = (self.distinct, &self.distinct_field) {
            let _ = write!(s, " ({d} distinct {f})");
        }
        let span = self.last_ts.as_micros() - self.first_ts.as_micros();
        let _ = write!(s, " in {} from {}", format_duration(span), self.key());
        if let Some(d) = &self.decision {
            let _ = write!(
                s,
                "; {} {} for {}",
                d.kind,
                d.target,
                format_duration(d.duration_secs as i64 * 1_000_000)
            );
        }
        s
    }

    /// The alert as a `Threat`, so behaviour findings are stored, listed and counted with
    /// the signature ones. The scenario id is the rule id; the summary, samples and
    /// evidence event ids go into three `Evidence` entries (`location` = `behaviour`,
    /// `samples`, `events`) whose `decoded_value` is JSON.
    pub fn to_threat(&self) -> Threat {
        let mut evidence = Vec::with_capacity(3);
        let summary = serde_json::json!({
            "scenario": self.scenario,
            "group": self.group.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            "network": self.network,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "events": self.events,
            "distinct": self.distinct,
            "distinct_field": self.distinct_field,
            "decision": self.decision,
        });
        evidence.push(Evidence {
            rule_id: self.scenario_id,
            location: "behaviour".into(),
            part: self.scenario.clone(),
            decoded_value: summary.to_string(),
            matched: self.summary(),
        });
        if !self.samples.is_empty() {
            evidence.push(Evidence {
                rule_id: self.scenario_id,
                location: "samples".into(),
                part: self.sample_field.clone().unwrap_or_default(),
                decoded_value: serde_json::Value::from(self.samples.clone()).to_string(),
                matched: format!("{} sample values", self.samples.len()),
            });
        }
        if !self.event_ids.is_empty() {
            evidence.push(Evidence {
                rule_id: self.scenario_id,
                location: "events".into(),
                part: "event_ids".into(),
                decoded_value: serde_json::Value::from(self.event_ids.clone()).to_string(),
                matched: format!("{} of {} events", self.event_ids.len(), self.events),
            });
        }
        Threat {
            tags: Vec::new(),
            ts: self.last_ts,
            category: self.category.clone(),
            severity: self.severity,
            score: self.severity.points(),
            rule_ids: vec![self.scenario_id],
            client_ip: self.client_ip,
            method: self.method.clone(),
            uri: self.uri.clone(),
            source: THREAT_SOURCE.into(),
            event_id: self.event_id,
            decision: if self.decision.is_some() {
                Action::Block
            } else {
                Action::Detect
            },
            evidence,
        }
    }
}
