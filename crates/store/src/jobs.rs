//! The job queue: jobs, their attempts, log lines, structured outputs and schedules.
//!
//! The queue is the table itself. A worker *claims* a job in one transaction
//! (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so several processes share the queue without
//! waiting on each other; SQLite: the single writer connection inside an `IMMEDIATE`
//! transaction) and holds a *lease* on it that it renews while the job runs. A job
//! whose lease ran out while `running` was cut off (crash, `kill -9`, lost database):
//! the next claim takes it up again and records the old attempt as interrupted.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::job::{
    AttemptOutcome, Job, JobAttempt, JobLogLine, JobOutput, JobState, NewJob, NewLogLine,
    NewSchedule, Schedule,
};
use serde_json::Value;

use crate::{Cursor, Page, StoreError};

/// A running job cut off this many times is failed instead of taken up again (a job
/// that kills its process every time must not loop for ever).
pub const MAX_INTERRUPTIONS: u32 = 5;

/// Filters for listing jobs; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Exact kind.
    pub kind: Option<String>,
    /// State.
    pub state: Option<JobState>,
    /// Submitted at or after.
    pub from: Option<Timestamp>,
    /// Submitted before.
    pub to: Option<Timestamp>,
    /// Enqueued by this schedule.
    pub schedule_id: Option<i64>,
    /// Continue after this position (`ts` is `created_at`).
    pub cursor: Option<Cursor>,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
}

/// What a worker asks for when it looks for work.
#[derive(Debug, Clone)]
pub struct JobClaim {
    /// The worker (`host:pid:random`), recorded as the lease owner.
    pub worker: String,
    /// Now.
    pub now: Timestamp,
    /// The lease's end (renewed while the job runs).
    pub lease_until: Timestamp,
    /// Only these kinds (the ones with a free slot); empty: none at all.
    pub kinds: Vec<String>,
    /// Only this job (the CLI's local worker).
    pub only_id: Option<i64>,
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// Done well.
    Succeeded,
    /// Failed (or timed out): retried at `retry_at` when given, else the job failed.
    Failed {
        /// `Failed` or `TimedOut`.
        outcome: AttemptOutcome,
        /// Why.
        error: String,
        /// When to try again; `None` when no retry is left.
        retry_at: Option<Timestamp>,
    },
    /// Stopped on request.
    Cancelled,
    /// Cut off by a graceful shutdown or a lost lease: back to pending at once, no
    /// retry used up.
    Interrupted {
        /// Why.
        reason: String,
    },
}

/// A worker's report of an attempt's end.
#[derive(Debug, Clone)]
pub struct JobFinish {
    /// The job.
    pub id: i64,
    /// The attempt that ends.
    pub attempt: u32,
    /// The worker that held it; the report is ignored when it no longer does.
    pub worker: String,
    /// Now.
    pub now: Timestamp,
    /// How it ended.
    pub end: AttemptEnd,
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The worker still holds the job (false: another took it, or it was deleted).
    pub held: bool,
    /// Someone asked for the job to stop.
    pub cancel_requested: bool,
}

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// It was pending: cancelled at once.
    Cancelled(Job),
    /// It is running: its worker was asked to stop it.
    Requested(Job),
    /// It had already finished; nothing changed.
    Finished(Job),
}

/// Jobs per state, for health and the queue depth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct JobCounts {
    /// Waiting (including retries in backoff).
    pub pending: u64,
    /// Held by a worker.
    pub running: u64,
    /// Finished well.
    pub succeeded: u64,
    /// Finished badly.
    pub failed: u64,
    /// Stopped on request.
    pub cancelled: u64,
}

/// Storage for the job queue. Every `Store` implements it.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Adds a pending job.
    async fn enqueue_job(&self, job: &NewJob, now: Timestamp) -> Result<Job, StoreError>;

    /// One job.
    async fn get_job(&self, id: i64) -> Result<Option<Job>, StoreError>;

    /// Jobs matching a query, newest first.
    async fn query_jobs(&self, query: &JobQuery) -> Result<Page<Job>, StoreError>;

    /// Takes the oldest ready job of the given kinds, atomically: a pending job whose
    /// `run_after` has come, or a running one whose lease ran out (its attempt is
    /// recorded as interrupted; after [`MAX_INTERRUPTIONS`] it is failed instead, and a
    /// cancel request on it is honoured). Returns it `running`, with `attempt` counting
    /// the new attempt.
    async fn claim_job(&self, claim: &JobClaim) -> Result<Option<Job>, StoreError>;

    /// Extends a running job's lease while `worker` holds it; says whether it still does
    /// and whether a cancel was asked for.
    async fn renew_job_lease(
        &self,
        id: i64,
        worker: &str,
        until: Timestamp,
    ) -> Result<LeaseStatus, StoreError>;

    /// Records progress (0–100, clamped) while `worker` holds the job.
    async fn set_job_progress(
        &self,
        id: i64,
        worker: &str,
        progress: u8,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Ends an attempt. Ignored (returns `None`) when the worker no longer holds the
    /// job or the attempt is not the current one.
    async fn finish_job(&self, finish: &JobFinish) -> Result<Option<Job>, StoreError>;

    /// Asks a job to stop: a pending job is cancelled at once, a running one is
    /// flagged for its worker. `None` when there is no such job.
    async fn cancel_job(
        &self,
        id: i64,
        now: Timestamp,
    ) -> Result<Option<CancelOutcome>, StoreError>;

    /// Puts a failed or cancelled job back in the queue with `extra_attempts` more
    /// failed attempts allowed; attempts, logs and outputs so far are kept. `Ok(None)`
    /// when there is no such job; the job unchanged when it is not failed or cancelled.
    async fn retry_job(
        &self,
        id: i64,
        extra_attempts: u32,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError>;

    /// Every attempt of a job, first to last.
    async fn job_attempts(&self, id: i64) -> Result<Vec<JobAttempt>, StoreError>;

    /// Appends log lines of one attempt.
    async fn append_job_logs(
        &self,
        id: i64,
        attempt: u32,
        lines: &[NewLogLine],
    ) -> Result<(), StoreError>;

    /// A job's log lines in write order, after `after_id` (0: from the start), at most
    /// `limit` (clamped to MAX_LIMIT). The cursor of the page is the last line's id.
    async fn job_logs(
        &self,
        id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Page<JobLogLine>, StoreError>;

    /// Deletes one job's log lines; how many.
    async fn delete_job_logs(&self, id: i64) -> Result<u64, StoreError>;

    /// Deletes the log lines of every finished job; how many.
    async fn delete_finished_job_logs(&self) -> Result<u64, StoreError>;

    /// Appends structured outputs of one attempt.
    async fn append_job_outputs(
        &self,
        id: i64,
        attempt: u32,
        values: &[(Timestamp, Value)],
    ) -> Result<(), StoreError>;

    /// A job's outputs in write order, after `after_id`, at most `limit`.
    async fn job_outputs(
        &self,
        id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Page<JobOutput>, StoreError>;

    /// Jobs per state.
    async fn job_counts(&self) -> Result<JobCounts, StoreError>;

    /// Creates a schedule; `Conflict` when the name is taken.
    async fn create_schedule(
        &self,
        schedule: &NewSchedule,
        now: Timestamp,
    ) -> Result<Schedule, StoreError>;

    /// Replaces a schedule's definition; `None` when there is none with that id,
    /// `Conflict` when the new name is taken.
    async fn update_schedule(
        &self,
        id: i64,
        schedule: &NewSchedule,
        now: Timestamp,
    ) -> Result<Option<Schedule>, StoreError>;

    /// Deletes a schedule (its jobs stay); false when there was none.
    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError>;

    /// One schedule.
    async fn get_schedule(&self, id: i64) -> Result<Option<Schedule>, StoreError>;

    /// Every schedule, by name.
    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError>;

    /// Makes the configuration's schedules the stored `config` ones, in one
    /// transaction: each is created or, when its definition changed, replaced (a
    /// definition that did not change keeps its `next_run_at`); `config` schedules no
    /// longer declared are deleted. A name already used by an `api` schedule is a
    /// `Conflict`.
    async fn sync_config_schedules(
        &self,
        schedules: &[NewSchedule],
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Enabled schedules whose `next_run_at` has come.
    async fn due_schedules(&self, now: Timestamp) -> Result<Vec<Schedule>, StoreError>;

    /// Fires a schedule once, atomically: when its `next_run_at` is still `expected`
    /// (no other process fired it), moves it to `next`, records the run and enqueues
    /// `job`. `None` when another process fired it first.
    async fn fire_schedule(
        &self,
        id: i64,
        expected: Timestamp,
        next: Option<Timestamp>,
        job: &NewJob,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError>;
}
