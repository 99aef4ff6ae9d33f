//! Upkeep of the stored data: retention deletes per kind of data and integrity checks,
//! used by the `retention_cleanup` and `validate_data` jobs.
//!
//! Deletes go in bounded batches (one short transaction each), so that clearing months
//! of events never holds SQLite's single writer or a PostgreSQL lock for long, and the
//! job can stop between two batches when it is cancelled.

use async_trait::async_trait;
use palisade_core::Timestamp;
use serde::Serialize;

use crate::StoreError;

/// A kind of data with a retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Events, by event time (`ts`).
    Events,
    /// Dead letters, by when they were rejected.
    DeadLetters,
    /// Threats (with their rule index), by detection time.
    Threats,
    /// Audit log entries.
    Audit,
    /// Finished jobs, with their attempts, logs and outputs, by when they finished.
    Jobs,
    /// Log lines of finished jobs, by when they were written (the jobs stay).
    JobLogs,
    /// Resolved and dismissed alerts, with their threat links and history, by when
    /// they were resolved or dismissed (open alerts stay however old).
    Alerts,
    /// Finished notification deliveries (delivered or given up), by when they were
    /// queued (pending ones stay).
    AlertDeliveries,
    /// Activity feed entries.
    Activities,
}

impl DataKind {
    /// Every kind, in the order a clean-up goes through them (logs before their jobs).
    pub const ALL: [DataKind; 9] = [
        DataKind::Events,
        DataKind::DeadLetters,
        DataKind::Threats,
        DataKind::Audit,
        DataKind::JobLogs,
        DataKind::Jobs,
        DataKind::Alerts,
        DataKind::AlertDeliveries,
        DataKind::Activities,
    ];

    /// The stable name used in configuration, parameters and outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            DataKind::Events => "events",
            DataKind::DeadLetters => "dead_letters",
            DataKind::Threats => "threats",
            DataKind::Audit => "audit",
            DataKind::Jobs => "jobs",
            DataKind::JobLogs => "job_logs",
            DataKind::Alerts => "alerts",
            DataKind::AlertDeliveries => "alert_deliveries",
            DataKind::Activities => "activities",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        DataKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The result of one integrity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IntegrityCheck {
    /// What was checked (`count:events`, `orphans:threat_rules`, `integrity_check`…).
    pub check: String,
    /// Whether it passed. Counts always pass.
    pub ok: bool,
    /// The number found (rows counted, orphans, bad checkpoints), when it is a number.
    pub count: Option<i64>,
    /// What was found, in words.
    pub detail: String,
}

/// Storage upkeep. Every `Store` implements it.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Deletes at most `batch` rows of `kind` older than `before` in one transaction;
    /// returns how many (fewer than `batch`: nothing older is left).
    async fn delete_older_than(
        &self,
        kind: DataKind,
        before: Timestamp,
        batch: u32,
    ) -> Result<u64, StoreError>;

    /// Counts, orphans, checkpoint sanity and the database's own index and page checks
    /// (SQLite `PRAGMA integrity_check`; PostgreSQL `amcheck` where the extension is
    /// installed, else the validity flags of the indexes).
    async fn integrity_checks(&self, now: Timestamp) -> Result<Vec<IntegrityCheck>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in DataKind::ALL {
            assert_eq!(DataKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(DataKind::parse("flows"), None);
    }
}
