//! The posture half of the store: runs of the security posture checks with their
//! results (the history behind the compliance score), and the last use of the
//! credentials the stale-credentials check looks at.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::posture::CheckStatus;
use palisade_core::security::Role;
use palisade_core::severity::Severity;
use serde::Serialize;

use crate::{Cursor, Page, StoreError};

/// The outcome of one check in one run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PostureResult {
    /// The check's stable id (`detection_mode`, `key_files`, …).
    pub check_id: String,
    /// What the check is about, in a few words.
    pub title: String,
    /// What it concluded.
    pub status: CheckStatus,
    /// How much a failure matters (its weight in the score).
    pub severity: Severity,
    /// What was checked.
    pub checked: String,
    /// What was found.
    pub found: String,
    /// How to fix it (absent when there is nothing to fix).
    pub fix: Option<String>,
    /// The facts behind the finding (per listener, per key file, per application…).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A run to store: its results and the score they give.
#[derive(Debug, Clone)]
pub struct NewPostureRun {
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// What started it (`schedule`, `manual`, `manual:<check id>`).
    pub cause: String,
    /// The compliance score after the run (0–100), `None` when no check counted.
    pub score: Option<u8>,
    /// The results (one per check run).
    pub results: Vec<PostureResult>,
}

/// A stored run, as the history lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PostureRun {
    /// Its id.
    pub id: i64,
    /// When it started.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it ended.
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: Timestamp,
    /// What started it.
    pub cause: String,
    /// The compliance score after the run.
    pub score: Option<u8>,
    /// Checks that passed.
    pub passed: u32,
    /// Checks that warned.
    pub warned: u32,
    /// Checks that failed.
    pub failed: u32,
    /// Checks not applicable or in error.
    pub skipped: u32,
}

/// A result with the run it came from.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredPostureResult {
    /// The run.
    pub run_id: i64,
    /// When the run ended.
    #[schema(value_type = String, format = DateTime)]
    pub checked_at: Timestamp,
    /// The result.
    #[serde(flatten)]
    pub result: PostureResult,
}

/// Filters of the run history; newest first.
#[derive(Debug, Clone, Default)]
pub struct PostureRunQuery {
    /// Started at or after.
    pub from: Option<Timestamp>,
    /// Started before.
    pub to: Option<Timestamp>,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Page size.
    pub limit: u32,
}

/// Who holds a credential, and when it was last used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialUse {
    /// `user` (a password) or `api_key`.
    pub kind: &'static str,
    /// Its store id.
    pub id: i64,
    /// The username or key name.
    pub name: String,
    /// The user's role (users only).
    pub role: Option<Role>,
    /// Created.
    pub created_at: Timestamp,
    /// Last successful password login, or last use of the key; `None`: never.
    pub last_used_at: Option<Timestamp>,
}

/// Storage for posture runs and credential use. Every `Store` implements it.
#[async_trait]
pub trait PostureStore: Send + Sync {
    /// Stores a run and its results; returns the run id.
    async fn insert_posture_run(&self, run: &NewPostureRun) -> Result<i64, StoreError>;
    /// The latest result of every check ever run (the current posture).
    async fn latest_posture_results(&self) -> Result<Vec<StoredPostureResult>, StoreError>;
    /// The results of one run.
    async fn posture_run_results(&self, run_id: i64) -> Result<Vec<PostureResult>, StoreError>;
    /// Runs, newest first.
    async fn posture_runs(&self, query: &PostureRunQuery) -> Result<Page<PostureRun>, StoreError>;
    /// Deletes runs that started before `before`, keeping the latest run of each check
    /// (the current posture never disappears); returns how many.
    async fn prune_posture_runs(&self, before: Timestamp) -> Result<u64, StoreError>;
    /// Records a successful password login.
    async fn record_login(&self, user_id: i64, at: Timestamp) -> Result<(), StoreError>;
    /// Every enabled admin and every API key not revoked, with its last use.
    async fn credential_use(&self) -> Result<Vec<CredentialUse>, StoreError>;
}
