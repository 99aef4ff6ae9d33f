//! [`BaselineStore`]: the per-endpoint anomaly baselines (issue 15), saved periodically
//! so that a restart does not start a new warm-up.
//!
//! The store does not read the profile: it is the learner's JSON, replaced whole.

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

    /// Every saved baseline, the most learnt first, at most `limit`.
    async fn load_baselines(&self, limit: u32) -> Result<Vec<BaselineRow>, StoreError>;
}
