//! Palisade's runtime after the store: everything that happens to an event once it is
//! durably stored, and to a live request before it is answered.
//!
//! ```text
//! sources ─► BatchWriter ─► Store ─► StoredBatches ─┬─► stages::inspector ─► Guard ─┐
//!                                                   └─► stages::behaviour ─┬────────┤
//!                                                                          └─► bans ─► Decisions
//! /api/v1/check ─┐                                                                   │
//! proxy ─────────┴─► Guard::judge (bans → engine → allow/block/detect) ──────────────┤
//!                                                                                    ▼
//!                                                              ThreatRecorder ─► Store
//! ```
//!
//! [`Pipeline::build`] starts all of it (used by `palisade serve` and `palisade
//! ingest`), every task under one [`palisade_core::supervisor::Supervisor`]: a panicking
//! stage is logged, counted, shown in health and restarted with backoff.
//! [`RunningPipeline::shutdown`] drains it in order: sources, running jobs, writer,
//! stages, recorder. The job queue's workers and scheduler (`palisade-jobs`) start
//! here too, so that an `import_logs` job writes through the same bounded writer; the
//! [`PipelineHandle`] carries its `JobsHandle`.
//! The HTTP face (`palisade-api`) and the protecting proxy (`palisade-proxy`) sit on
//! top and share one [`PipelineHandle`].

#![warn(missing_docs)]

pub mod ban_policy;
pub mod baseline;
pub mod db_monitor;
pub mod decisions;
pub mod detection;
pub mod fusion;
pub mod guard;
pub mod predictions;
pub mod recorder;
mod resume;
mod running;
pub mod stages;

pub use db_monitor::{DbHealth, Health};
pub use guard::{Action, Front, Guard, Judgement, Policy};
pub use resume::skip_inspection;
pub use running::{
    Pipeline, PipelineConfig, PipelineError, PipelineHandle, Purpose, RunningPipeline,
};
