//! The one trait a job kind implements, and what a kind may use while it runs.
//!
//! A kind is one file under `kinds/` (or in another crate) implementing [`JobKind`],
//! registered in one place ([`crate::JobRegistry`]): its name, the JSON Schema of its
//! parameters, the check that turns submitted parameters into normalised ones, its
//! default limits, and `run`, which reports progress, log lines and structured outputs
//! through the [`JobContext`] and stops when the context says it is cancelled.
//!
//! Jobs run at least once: a job cut off by a crash runs again from the start, so a
//! kind must be idempotent (a re-run does not duplicate what the first run stored).

use std::sync::Arc;

use async_trait::async_trait;
use palisade_core::duration::Span;
use palisade_core::security::Role;
use palisade_sources::BatchWriter;
use palisade_store::SharedStore;
use serde_json::Value;

use crate::context::JobContext;
use crate::params::ParamError;

/// A kind's limits: how many run at once, how often a failure is retried, how long an
/// attempt may take. Defaults come from the kind, then `[jobs.kinds.NAME]`, then (for
/// commands) the command's own declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindLimits {
    /// Jobs of this kind running at once in one process.
    pub concurrency: usize,
    /// Failed attempts that end a job (1: no retry).
    pub max_attempts: u32,
    /// Longest an attempt may run before it is stopped (and counted as failed).
    pub timeout: Span,
    /// The wait before the first retry; doubled for each further one, with jitter.
    pub backoff: Span,
    /// The longest wait between retries.
    pub max_backoff: Span,
}

impl Default for KindLimits {
    fn default() -> Self {
        KindLimits {
            concurrency: 1,
            max_attempts: 3,
            timeout: Span::from_secs(3600),
            backoff: Span::from_secs(10),
            max_backoff: Span::from_secs(600),
        }
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A failure that may pass (a database outage, a busy file): retried while
    /// attempts are left.
    #[error("{0}")]
    Retryable(String),
    /// A failure that will not pass by trying again (a missing file, a refused
    /// parameter): the job fails at once.
    #[error("{0}")]
    Fatal(String),
    /// The run stopped because it was asked to.
    #[error("cancelled")]
    Cancelled,
}

impl JobError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> JobError {
        JobError::Retryable(message.into())
    }

    /// A failure not worth retrying.
    pub fn fatal(message: impl Into<String>) -> JobError {
        JobError::Fatal(message.into())
    }
}

/// Where the secrets a command's environment names are read from (the encrypted
/// secrets store, opened with the running keyring by the binary).
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The plaintext of a secret; `Ok(None)` when there is no secret of that name.
    async fn reveal(&self, name: &str) -> Result<Option<String>, String>;
}

/// What the process offers running jobs.
#[derive(Clone)]
pub struct Services {
    /// The store.
    pub store: SharedStore,
    /// The pipeline's bounded writer, for kinds that import (absent where nothing is
    /// written, e.g. a process that only serves the API).
    pub writer: Option<BatchWriter>,
    /// The secrets store, for commands' secret environment variables.
    pub secrets: Option<Arc<dyn SecretSource>>,
}

/// One kind of job.
#[async_trait]
pub trait JobKind: Send + Sync + 'static {
    /// The stable name (`import_logs`): jobs, schedules and the API refer to it.
    fn name(&self) -> &str;

    /// What it does, for the kinds listing.
    fn description(&self) -> &str;

    /// The JSON Schema of its parameters.
    fn params_schema(&self) -> Value;

    /// Checks submitted parameters and returns them normalised (types, defaults); the
    /// error names the parameter at fault. Called before anything is stored or run.
    fn validate(&self, params: &Value) -> Result<Value, ParamError>;

    /// The kind's default limits.
    fn default_limits(&self) -> KindLimits {
        KindLimits::default()
    }

    /// The limits for one job, from the configured ones (a command applies its own
    /// timeout and retries).
    fn limits_for(&self, _params: &Value, configured: KindLimits) -> KindLimits {
        configured
    }

    /// The least role that may submit it with these parameters.
    fn required_role(&self, _params: &Value) -> Role {
        Role::Analyst
    }

    /// Does the work. Must return soon after `ctx.cancelled()` completes.
    async fn run(&self, ctx: &JobContext) -> Result<(), JobError>;
}

/// A kind shared between the registry and running jobs.
pub type SharedKind = Arc<dyn JobKind>;
