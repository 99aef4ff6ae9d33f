//! Where everything Palisade learns is kept.
//!
//! One [`Store`] trait with two backends, SQLite (the zero-configuration default) and
//! PostgreSQL (for scale-out), proven identical by one contract test suite
//! (`tests/contract/`). Every filter the API offers is answered by the database with
//! an index behind it; nothing is loaded into memory to be filtered.
//!
//! # Layout
//!
//! [`Store`] is a supertrait. Its own methods are the ingest core (events, dead letters,
//! checkpoints, idempotency keys); every other group of tables is a sub-store trait in a
//! file of its own: [`SecurityStore`] (`security.rs`), [`ThreatStore`] (`threats.rs`),
//! [`DecisionStore`] (`decisions.rs`), [`LoginStore`] (`logins.rs`), [`JobStore`]
//! (`jobs.rs`), [`MaintenanceStore`] (`maintenance.rs`: retention deletes and integrity
//! checks), [`VulnStore`] (`vulns.rs`), [`ReportStore`] (`reports.rs`), [`AnalyticsStore`]
//! (`analytics.rs`), [`PostureStore`] (`posture.rs`), [`BaselineStore`] (`baselines.rs`). Each layer below them is a folder
//! with one file per group, named alike (`ingest.rs` for the core):
//!
//! - `codec/`: domain values to and from column values, shared by both backends;
//! - `sqlgen/`: the parameterised listing queries, for either SQL dialect;
//! - `sqlite/` and `postgres/`: the backends. Their `mod.rs` holds the connections, the
//!   error mapping and the migration runner; `ingest.rs` implements [`Store`], every
//!   other file the sub-store trait it is named after;
//! - `migrations.rs` with `migrations/{sqlite,postgres}/*.sql`: the schema.
//!
//! # Adding a table/sub-store
//!
//! A feature (say `jobs`) adds its own files and one line to each shared list, so that
//! features developed side by side do not edit the same code:
//!
//! 1. `src/jobs.rs`: `#[async_trait] pub trait JobStore: Send + Sync` with its query
//!    and row types, declared here with `mod jobs;` and `pub use jobs::{JobStore, …};`,
//!    and added to the supertrait list of [`Store`] (`… + DecisionStore + JobStore + …`).
//! 2. `migrations/sqlite/NNNN_jobs.sql` and `migrations/postgres/NNNN_jobs.sql`: `NNNN`
//!    is the next free version, four digits, the same number and name in both folders;
//!    each is appended to its list in `migrations.rs` as
//!    `Migration { version: N, name: "NNNN_jobs", sql: include_str!(…) }`. A migration
//!    that has shipped is never edited; if another feature took the number first,
//!    renumber yours before merging.
//! 3. `src/codec/jobs.rs` (rows to and from the domain types) and, if it lists with
//!    filters, `src/sqlgen/jobs.rs` (its query builders, re-exported by
//!    `sqlgen/mod.rs`); each declared with `mod jobs;` in its folder's `mod.rs`.
//! 4. `src/sqlite/jobs.rs` (`impl JobStore for SqliteStore`) and `src/postgres/jobs.rs`
//!    (`impl JobStore for PgStore`), each declared with `mod jobs;` in the backend's
//!    `mod.rs`: a child module shares the backend's connections and error mapping.
//! 5. `tests/contract/jobs.rs`: the contract tests, named in one `contract!(…)` list so
//!    that each runs against both backends, and declared in `tests/contract/main.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use palisade_core::dead_letter::StoredDeadLetter;
use palisade_core::event::StoredEvent;
use palisade_core::{Checkpoint, DeadLetter, Event};

mod alerts;
mod analytics;
mod baselines;
mod codec;
mod decisions;
mod devices;
mod error;
mod flows;
mod inspection;
mod jobs;
mod logins;
mod maintenance;
mod migrations;
pub mod postgres;
mod posture;
mod query;
mod reports;
mod search;
mod security;
mod sqlgen;
pub mod sqlite;
mod threats;
mod vulns;

pub use alerts::{
    Activity, ActivityQuery, Alert, AlertChange, AlertChangeKind, AlertHistoryEntry, AlertHit,
    AlertQuery, AlertState, AlertStore, AlertTransition, Delivery, DeliveryState, DeliveryUpdate,
    NewActivity, NewDelivery, SpecInput, SpecRecord, SpecTable, TransitionOutcome,
    UnknownAlertState,
};
pub use analytics::{
    AnalyticsStore, CountQuery, Dim, DimFilter, RollupDelta, RollupProgress, RollupRetention,
    RollupStatus, Series, SeriesPoint, SeriesQuery, TopDimension, TopPage, TopQuery, Width,
};
pub use baselines::{BaselineMerge, BaselineRow, BaselineStore};
pub use decisions::{DecisionQuery, DecisionStore};
pub use devices::{
    DEVICE_SET_CAP, Device, DeviceQuery, DeviceStore, FlowAnalytics, FlowAnalyticsQuery,
    StoredDevice, TrafficCount,
};
pub use error::StoreError;
pub use flows::{FlowQuery, FlowStore, NewFlow, StoredFlow};
pub use inspection::InspectionStore;
pub use jobs::{
    AttemptEnd, CancelOutcome, JobClaim, JobCounts, JobFinish, JobQuery, JobStore, LeaseStatus,
    MAX_INTERRUPTIONS,
};
pub use logins::{KNOWN_ADDRESSES_PER_USER, LoginStore};
pub use maintenance::{DataKind, IntegrityCheck, MaintenanceStore};
pub use posture::{
    CredentialUse, NewPostureRun, PostureResult, PostureRun, PostureRunQuery, PostureStore,
    StoredPostureResult,
};
pub use query::{Cursor, DeadLetterQuery, EventQuery, MAX_LIMIT, Page, StatusFilter};
pub use reports::{NewReport, ReportMeta, ReportStore, StoredReport};
pub use search::SearchConfig;
pub use security::{AuditQuery, SecurityStore};
pub use threats::{Count, ThreatQuery, ThreatStats, ThreatStore};
pub use vulns::{
    AssetQuery, CveStats, CveUpsert, IndexedCve, MATCHER, MatchQuery, MatchSync, SoftwareWrite,
    VulnStore,
};

/// One unit of durable work: a batch of events and dead letters, the checkpoint that
/// covers them and, for pushes, the idempotency key. Backends write it in a single
/// transaction, so a crash leaves either all of it or none of it.
#[derive(Debug, Clone, Default)]
pub struct IngestBatch {
    /// Parsed events, in source order.
    pub events: Vec<Event>,
    /// Lines that could not be parsed.
    pub dead_letters: Vec<DeadLetter>,
    /// The source position just past the last line in this batch.
    pub checkpoint: Option<Checkpoint>,
    /// A client-chosen key: a second batch with the same key stores nothing.
    pub idempotency_key: Option<String>,
}

/// What one source has stored, over all time and every process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SourceTotals {
    /// The source's name.
    pub source: String,
    /// Events stored.
    pub events: u64,
    /// Dead letters stored.
    pub dead_letters: u64,
}

/// Per-source counts of one batch, for [`SourceTotals`] (a batch nearly always has one
/// source; the counts are added in the same transaction as its rows).
pub(crate) fn batch_totals(batch: &IngestBatch) -> Vec<(&str, i64, i64)> {
    let mut totals: Vec<(&str, i64, i64)> = Vec::with_capacity(1);
    let rows = batch
        .events
        .iter()
        .map(|e| (e.source.as_str(), 1, 0))
        .chain(batch.dead_letters.iter().map(|d| (d.source.as_str(), 0, 1)));
    for (source, events, dead) in rows {
        match totals.iter_mut().find(|(s, _, _)| *s == source) {
            Some(t) => {
                t.1 += events;
                t.2 += dead;
            }
            None => totals.push((source, events, dead)),
        }
    }
    totals
}

/// What a batch write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct WriteOutcome {
    /// Events stored (for a duplicate: stored by the first write with that key).
    pub events: u64,
    /// Dead letters stored (for a duplicate: by the first write with that key).
    pub dead_letters: u64,
    /// True when the idempotency key had been seen and nothing was written.
    pub duplicate: bool,
    /// The id of the batch's first event: its events have ids `first..first + events`
    /// in batch order, so later pipeline stages (detection) can point at them. `None`
    /// for duplicates and batches without events.
    #[serde(skip)]
    pub first_event_id: Option<i64>,
}

/// The storage contract every backend implements.
///
/// Methods are async and cancel-safe from the caller's point of view: a dropped future
/// never leaves a half-written batch (the transaction rolls back).
#[async_trait]
pub trait Store:
    SecurityStore
    + ThreatStore
    + InspectionStore
    + DecisionStore
    + LoginStore
    + JobStore
    + MaintenanceStore
    + VulnStore
    + ReportStore
    + AnalyticsStore
    + PostureStore
    + AlertStore
    + FlowStore
    + DeviceStore
    + BaselineStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`, for health and logs.
    fn backend(&self) -> &'static str;

    /// Creates or upgrades the schema. Idempotent; safe to call at every start.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A round trip to the database, returning its latency.
    async fn ping(&self) -> Result<Duration, StoreError>;

    /// Writes a batch atomically (see [`IngestBatch`]).
    async fn write_batch(&self, batch: IngestBatch) -> Result<WriteOutcome, StoreError> {
        self.write_batches(Arc::from(vec![batch]))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Database("no outcome for the batch".into()))
    }

    /// Writes several batches in one transaction (group commit), all or none, returning
    /// one outcome per batch in order. Each batch keeps its own idempotency key and
    /// checkpoint; a duplicate batch is skipped without affecting the others.
    async fn write_batches(
        &self,
        batches: Arc<[IngestBatch]>,
    ) -> Result<Vec<WriteOutcome>, StoreError>;

    /// The last checkpoint stored for a source.
    async fn checkpoint(&self, source: &str) -> Result<Option<Checkpoint>, StoreError>;

    /// Every checkpoint, for the sources listing.
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;

    /// What each source has stored, over all time (kept with every write; duplicates
    /// count nothing), by source name.
    async fn source_totals(&self) -> Result<Vec<SourceTotals>, StoreError>;

    /// Events matching a query, newest first, one page at a time.
    async fn query_events(&self, query: &EventQuery) -> Result<Page<StoredEvent>, StoreError>;

    /// One event by id.
    async fn get_event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError>;

    /// Dead letters matching a query, newest first.
    async fn query_dead_letters(
        &self,
        query: &DeadLetterQuery,
    ) -> Result<Page<StoredDeadLetter>, StoreError>;

    /// The number of stored events (exact; used by summaries and tests).
    async fn count_events(&self) -> Result<u64, StoreError>;

    /// Prepares for a one-shot import of about `expected_rows` events: where keeping
    /// every secondary index of `events` up to date row by row costs more than building
    /// it once at the end (a table smaller than the import, SQLite or PostgreSQL), the
    /// indexes are set aside until [`Store::end_bulk_load`]. Their definitions are kept
    /// in the database, so an import that is killed leaves them to the next
    /// [`Store::migrate`], which builds them again. Returns whether the indexes were set
    /// aside. Events stay queryable meanwhile, only slower; a store that does not gain
    /// does nothing.
    async fn begin_bulk_load(&self, expected_rows: u64) -> Result<bool, StoreError> {
        let _ = expected_rows;
        Ok(false)
    }

    /// Builds again every index [`Store::begin_bulk_load`] set aside (each in one
    /// sorted pass, much cheaper than the random inserts it replaced). Does nothing
    /// when none are pending.
    async fn end_bulk_load(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store shared between tasks.
pub type SharedStore = Arc<dyn Store>;

/// Opens the store a URL names: `sqlite://PATH` (relative paths are taken inside
/// `data_dir`; `sqlite://` alone means `data_dir/palisade.db`) or `postgres://…`.
///
/// This never waits on the network: a PostgreSQL store connects lazily, so that a
/// database that is down degrades the service instead of stopping its start.
pub fn open(url: &str, data_dir: &Path) -> Result<SharedStore, StoreError> {
    open_with(url, data_dir, SearchConfig::default())
}

/// [`open`] with the `[search]` settings, which the store applies when it migrates
/// (building or dropping the free-text index).
pub fn open_with(
    url: &str,
    data_dir: &Path,
    search: SearchConfig,
) -> Result<SharedStore, StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let path = if rest.is_empty() {
            data_dir.join("palisade.db")
        } else if Path::new(rest).is_absolute() {
            Path::new(rest).to_path_buf()
        } else {
            data_dir.join(rest)
        };
        Ok(Arc::new(
            sqlite::SqliteStore::open(&path)?.with_search(search),
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PgStore::connect_lazy(url)?.with_search(search),
        ))
    } else {
        Err(StoreError::InvalidUrl(format!(
            "database URL must start with sqlite:// or postgres:// (got '{}')",
            redact_url(url)
        )))
    }
}

/// A URL with any password replaced, safe to log or show in an error.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.find("://") {
        Some(scheme_end) => {
            let rest = &base[scheme_end + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => match rest[..at].split_once(':') {
                    Some((user, _)) => {
                        format!("{}{user}:***{}", &base[..scheme_end + 3], &rest[at..])
                    }
                    None => base.to_owned(),
                },
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(q) = query {
        out.push('?');
        let parts: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test",
            "no password, nothing to mask"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=hunter2&options=-c%20x%3Dy@z"),
            "postgres://u@h/db?sslmode=require&password=***&options=-c%20x%3Dy@z"
        );
    }

    #[test]
    fn unknown_scheme_is_a_clear_error() {
        let err = open("mysql://x", Path::new("."))
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("sqlite:// or postgres://"));
    }
}
