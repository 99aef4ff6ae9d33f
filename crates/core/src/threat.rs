//! Threats: what detection found, with the evidence that makes it explainable.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::severity::Severity;
use crate::time::Timestamp;
use crate::verdict::Action;

/// One matched rule's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    /// Rule id.
    pub rule_id: u32,
    /// Where in the request (path, args, body, header…).
    pub location: String,
    /// Which part (parameter or header name).
    pub part: String,
    /// The value after decoding, capped.
    pub decoded_value: String,
    /// What matched, capped.
    pub matched: String,
}

/// A detection finding about one request (or, later, one behaviour window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Threat {
    /// When the request happened.
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    /// The main category (of the highest-severity rule): sqli, xss, lfi, …
    pub category: String,
    /// critical, error, warning or notice (the highest among the rules).
    pub severity: Severity,
    /// Anomaly score.
    pub score: u32,
    /// Every rule that matched.
    pub rule_ids: Vec<u32>,
    /// The client.
    #[schema(value_type = Option<String>)]
    pub client_ip: Option<IpAddr>,
    /// Method of the request.
    pub method: Option<String>,
    /// Target of the request (capped).
    pub uri: Option<String>,
    /// Where the request was seen: `check`, `ingest`, `proxy`.
    pub source: String,
    /// The stored event it came from, when there is one.
    pub event_id: Option<i64>,
    /// What was decided: allow, block or detect.
    pub decision: Action,
    /// The evidence, one entry per matched rule.
    pub evidence: Vec<Evidence>,
    /// The matched rules' tags, each once, in rule order (OWASP CRS rules carry
    /// `attack-sqli`, `paranoia-level/1`, `OWASP_CRS/...`, `capec/...`), so threats can
    /// be grouped and filtered the way CRS users already report on them. Empty for
    /// rules without tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A threat as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredThreat {
    /// Store id.
    pub id: i64,
    /// The threat.
    #[serde(flatten)]
    pub threat: Threat,
}
