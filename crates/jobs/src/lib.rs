//! Palisade's persistent job queue: the pipeline's tasks (imports, integrity checks,
//! retention) and the team's allow-listed commands, run as jobs that survive restarts.
//!
//! ```text
//! API / CLI / schedules ─► JobsHandle::submit ─► registry (kind + params checked)
//!                                                   │ enqueue
//!                                                   ▼
//!                                      Store (jobs table: the queue itself)
//!                                                   │ claim (SKIP LOCKED / IMMEDIATE)
//!                                                   ▼
//!   jobs-workers (pool) ─► Runner: kind.run(ctx) with timeout, heartbeat/lease,
//!                           cancel, retries (backoff + jitter) ─► finish
//!                            │ progress / log lines / outputs
//!                            ├─► JobEvents (broadcast bus, for the live feed)
//!                            └─► Store (batched)
//!   jobs-scheduler ─► due cron schedules ─► enqueue (once, compare-and-set)
//! ```
//!
//! A kind is one file implementing [`JobKind`] (see [`kinds`] for the built-in ones and
//! how to add one). [`JobsHandle`] is what the API, the CLI and the pipeline hold;
//! [`JobsHandle::start`] starts the pool and the scheduler under the pipeline's
//! supervisor. Jobs run at least once: an attempt cut off by a crash is taken up again
//! when its lease runs out.

pub mod config;
pub mod context;
pub mod events;
mod handle;
pub mod kind;
pub mod kinds;
pub mod params;
mod pool;
pub mod registry;
mod runner;
pub mod schedule;

pub use config::{JobConfig, KindOverrides, RetentionConfig, ScheduleConfig};
pub use context::JobContext;
pub use events::{JobEvent, JobEventBody, JobEvents};
pub use handle::{JobsHandle, JobsSetup, SubmitFailure};
pub use kind::{JobError, JobKind, KindLimits, SecretSource, Services, SharedKind};
pub use params::ParamError;
pub use pool::Readiness;
pub use registry::{JobRegistry, SubmitError};
pub use runner::RunningJobs;
pub use schedule::{CronSchedule, ScheduleError};
