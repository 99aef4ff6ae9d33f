//! [`BaselineStore`]: the per-endpoint anomaly baselines (issue 15), saved periodically
//! so that a restart does not start a new warm-up.
//!
//! The store does not read the profile: it is the learner's JSON, replaced whole by
//! [`BaselineStore::save_baselines`], or combined with what is stored by the learner's
//! own function under a lock by [`BaselineStore::merge_baselines`] (several serving
//! nodes saving into one table: none erases what the others learnt).

use std::sync::Arc;

use async_trait::async_trait;
use palisade_core::Timestamp;

use crate::StoreError;

/// One endpoint's saved baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineRow {
    /// The endpoint key (`host METHOD /route-template`).
    pub endpoint: String,
    /// Requests it was learnt from.
    pub requests: i64,
    /// The learnt profile, JSON.
    pub profile: String,
    /// When it was saved.
    pub updated_at: Timestamp,
}

/// Combines a row to save (a node's learning since it last synchronised) with the row
/// stored for the same endpoint (`None`: none yet) into the row to write; `None` skips
/// the row (it does not parse).
pub type BaselineMerge =
    Arc<dyn Fn(&BaselineRow, Option<&BaselineRow>) -> Option<BaselineRow> + Send + Sync>;

/// Saving and loading baselines.
#[async_trait]
pub trait BaselineStore: Send + Sync {
    /// Inserts or replaces `rows` and deletes the endpoints in `forget`, in one
    /// transaction; returns the rows written.
    async fn save_baselines(
        &self,
        rows: &[BaselineRow],
        forget: &[String],
    ) -> Result<u64, StoreError>;

    /// Adds `deltas` to the stored rows with `merge` and deletes the endpoints in
    /// `forget`, in one transaction that holds every other merge off between the read
    /// and the write (SQLite: an immediate transaction; PostgreSQL: a transaction-level
    /// advisory lock, so concurrent nodes cannot lose each other's rows, even new
    /// ones). Returns the rows written, merged.
    async fn merge_baselines(
        &self,
        deltas: &[BaselineRow],
        forget: &[String],
        merge: BaselineMerge,
    ) -> Result<Vec<BaselineRow>, StoreError>;

    /// Every saved baseline, the most learnt first, at most `limit`.
    async fn load_baselines(&self, limit: u32) -> Result<Vec<BaselineRow>, StoreError>;
}
