//! The detection half of the store: threats and run-time settings.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::net::IpNet;
use palisade_core::threat::{StoredThreat, Threat};
use serde::Serialize;

use crate::{Cursor, Page, StoreError};

/// Filters for listing threats; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct ThreatQuery {
    /// At or after.
    pub from: Option<Timestamp>,
    /// Before.
    pub to: Option<Timestamp>,
    /// Exact category.
    pub category: Option<String>,
    /// Exact severity.
    pub severity: Option<String>,
    /// Client address in this network.
    pub client: Option<IpNet>,
    /// A rule that matched.
    pub rule_id: Option<u32>,
    /// A tag one of the matched rules carries (exact, e.g. `attack-sqli`).
    pub tag: Option<String>,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
}

/// A count under a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Count {
    /// The label (category, severity, rule id, source, or bucket start as RFC 3339).
    pub key: String,
    /// How many threats.
    pub count: u64,
}

/// Threat statistics for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ThreatStats {
    /// Threats in the period.
    pub total: u64,
    /// By category, most first.
    pub by_category: Vec<Count>,
    /// By severity, most first.
    pub by_severity: Vec<Count>,
    /// The 20 most frequent rules.
    pub by_rule: Vec<Count>,
    /// By source, most first.
    pub by_source: Vec<Count>,
    /// Per time bucket, oldest first (only buckets with threats).
    pub buckets: Vec<Count>,
}

/// Storage for threats and run-time settings. Every `Store` implements it.
#[async_trait]
pub trait ThreatStore: Send + Sync {
    /// Stores threats in one transaction; returns their ids, in order (later stages
    /// and the live feed point at them).
    async fn insert_threats(&self, threats: &[Threat]) -> Result<Vec<i64>, StoreError>;
    /// Threats matching a query, newest first.
    async fn query_threats(&self, query: &ThreatQuery) -> Result<Page<StoredThreat>, StoreError>;
    /// One threat.
    async fn get_threat(&self, id: i64) -> Result<Option<StoredThreat>, StoreError>;
    /// Statistics over `[from, to)`, with time buckets of `bucket_secs` (≥ 60).
    async fn threat_stats(
        &self,
        from: Timestamp,
        to: Timestamp,
        bucket_secs: i64,
    ) -> Result<ThreatStats, StoreError>;
    /// How many stored threats each rule (or scenario) id has raised, over all time
    /// (answered from the per-rule index); ids with none are left out.
    async fn count_threats_by_rule(&self, rule_ids: &[u32]) -> Result<Vec<Count>, StoreError>;
    /// A run-time setting (detection mode, threshold…), `None` when never set.
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets a run-time setting.
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
}
