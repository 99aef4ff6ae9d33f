//! Reports: generated documents kept so that they can be fetched again in any format,
//! and the few summary queries a security report needs beyond the threat statistics.

use async_trait::async_trait;
use palisade_core::Timestamp;
use serde::Serialize;

use crate::{Count, Cursor, Page, StoreError};

/// A report to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// What kind (`vulnerabilities`, `security`).
    pub kind: String,
    /// Start of the period covered.
    pub from: Timestamp,
    /// End of the period covered (exclusive).
    pub to: Timestamp,
    /// Who asked for it.
    pub created_by: String,
    /// The report as JSON.
    pub doc: String,
}

/// A stored report without its document, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReportMeta {
    /// Store id.
    pub id: i64,
    /// What kind.
    pub kind: String,
    /// Start of the period covered.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// End of the period covered (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// When it was generated.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Who asked for it.
    pub created_by: String,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// Its description.
    pub meta: ReportMeta,
    /// The report as JSON.
    pub doc: String,
}

/// Storage for reports and report queries. Every `Store` implements it.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores a report; returns its description.
    async fn insert_report(
        &self,
        report: &NewReport,
        now: Timestamp,
    ) -> Result<ReportMeta, StoreError>;

    /// One report.
    async fn get_report(&self, id: i64) -> Result<Option<StoredReport>, StoreError>;

    /// Reports, newest first.
    async fn query_reports(
        &self,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Page<ReportMeta>, StoreError>;

    /// The client addresses with the most threats in `[from, to)`, most first (ties by
    /// address), at most `limit`.
    async fn top_threat_sources(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<Count>, StoreError>;

    /// Decisions created in `[from, to)`, counted by `kind/origin` (`ban/scenario`).
    async fn decision_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Count>, StoreError>;
}
