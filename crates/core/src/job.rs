//! Jobs: the persistent queue's vocabulary, shared by the store (which keeps them), the
//! job runner (`palisade-jobs`, which claims and runs them) and the API (which shows
//! them).
//!
//! A job is one run of a *kind* (`import_logs`, `command`, …) with validated
//! parameters. It moves `pending → running → succeeded | failed | cancelled`; a failed
//! attempt with retries left goes back to `pending` with a later `run_after`, and an
//! attempt cut off by a crash is taken up again (at-least-once). Every attempt, log line
//! and structured output is kept until retention removes the finished job.

use serde::Serialize;
use serde_json::Value;

use crate::time::Timestamp;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (first run, or a retry whose backoff has not passed).
    Pending,
    /// A worker holds it (its lease is renewed while it runs).
    Running,
    /// Finished well.
    Succeeded,
    /// Finished badly, with no retry left.
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the job will not change any more by itself (retry can restart it).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The kind's work finished well.
    Succeeded,
    /// The kind reported an error (or panicked).
    Failed,
    /// It ran longer than the kind's timeout and was stopped.
    TimedOut,
    /// Stopped on request.
    Cancelled,
    /// Cut off: the process stopped (crash, `kill -9`, shutdown) or lost its lease; the
    /// job is taken up again and this does not use up a retry.
    Interrupted,
}

impl AttemptOutcome {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Interrupted => "interrupted",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AttemptOutcome::Succeeded,
            AttemptOutcome::Failed,
            AttemptOutcome::TimedOut,
            AttemptOutcome::Cancelled,
            AttemptOutcome::Interrupted,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Job {
    /// Store id.
    pub id: i64,
    /// The kind that runs it (`import_logs`, `command`, …).
    pub kind: String,
    /// Its parameters, as validated by the kind when the job was submitted.
    #[schema(value_type = Object)]
    pub params: Value,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts started so far (the current or last attempt's number).
    pub attempt: u32,
    /// How many failed attempts end the job (1: no retry).
    pub max_attempts: u32,
    /// Attempts that failed or timed out (interruptions do not count).
    pub failures: u32,
    /// Attempts cut off by a crash or shutdown.
    pub interruptions: u32,
    /// 0 to 100.
    pub progress: u8,
    /// What the job is doing, in words.
    pub progress_message: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Who submitted it (a user name, `apikey:NAME`, `schedule:NAME` or `cli`).
    pub created_by: String,
    /// The schedule that enqueued it, if any.
    pub schedule_id: Option<i64>,
    /// Whether someone asked for it to stop (a running job stops within a heartbeat).
    pub cancel_requested: bool,
    /// The worker that holds it while it runs (`host:pid:random`).
    pub worker: Option<String>,
    /// Until when the worker's hold is valid; a running job past it was cut off.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub lease_until: Option<Timestamp>,
    /// When it was submitted.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Not started before this (a retry's backoff).
    #[schema(value_type = String, format = DateTime)]
    pub run_after: Timestamp,
    /// When its first attempt started.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    /// When it finished.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The kind.
    pub kind: String,
    /// Validated parameters.
    pub params: Value,
    /// Failed attempts that end it (at least 1).
    pub max_attempts: u32,
    /// Who submitted it.
    pub created_by: String,
    /// The schedule that enqueued it.
    pub schedule_id: Option<i64>,
    /// Not started before this.
    pub run_after: Timestamp,
}

/// One attempt at a job: who ran it, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JobAttempt {
    /// The job.
    pub job_id: i64,
    /// 1, 2, …
    pub attempt: u32,
    /// The worker that ran it.
    pub worker: String,
    /// When it started.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it ended (`None` while running).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// How it ended.
    pub outcome: Option<AttemptOutcome>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// The runner's or the kind's own account.
    Info,
    /// Something to look at.
    Warn,
    /// Something went wrong.
    Error,
    /// A command's standard output.
    Stdout,
    /// A command's standard error.
    Stderr,
}

impl LogLevel {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Stdout => "stdout",
            LogLevel::Stderr => "stderr",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        [
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Stdout,
            LogLevel::Stderr,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// A log line to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    /// When it was written.
    pub ts: Timestamp,
    /// Its stream.
    pub level: LogLevel,
    /// The text (one line).
    pub message: String,
}

/// A stored log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JobLogLine {
    /// Store id (increasing in write order).
    pub id: i64,
    /// The job.
    pub job_id: i64,
    /// The attempt that wrote it.
    pub attempt: u32,
    /// When it was written.
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    /// Its stream.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

/// A stored structured result (a JSON object a job produced).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JobOutput {
    /// Store id (increasing in write order).
    pub id: i64,
    /// The job.
    pub job_id: i64,
    /// The attempt that produced it.
    pub attempt: u32,
    /// When it was produced.
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    /// The value.
    #[schema(value_type = Object)]
    pub value: Value,
}

/// Where a schedule was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleOrigin {
    /// Through the API; changeable there.
    Api,
    /// In the configuration (`[[jobs.schedules]]`, retention); changed only there.
    Config,
}

impl ScheduleOrigin {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleOrigin::Api => "api",
            ScheduleOrigin::Config => "config",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api" => Some(ScheduleOrigin::Api),
            "config" => Some(ScheduleOrigin::Config),
            _ => None,
        }
    }
}

/// A schedule as stored: a cron expression in a time zone that enqueues a job of a kind.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    /// Store id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The kind it enqueues.
    pub kind: String,
    /// The parameters of the jobs it enqueues (validated when the schedule was saved).
    #[schema(value_type = Object)]
    pub params: Value,
    /// Cron expression (5 fields, or 6 with seconds first; `@daily` and friends).
    pub cron: String,
    /// `UTC`, a fixed offset such as `+02:00`, or an IANA name such as `Europe/Paris`.
    pub timezone: String,
    /// Whether it fires.
    pub enabled: bool,
    /// Where it was declared.
    pub origin: ScheduleOrigin,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When it fires next (`None` when disabled or it never fires again).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_run_at: Option<Timestamp>,
    /// When it last fired.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_run_at: Option<Timestamp>,
    /// The job it last enqueued.
    pub last_job_id: Option<i64>,
}

/// A schedule to create or to replace one with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    /// Unique name.
    pub name: String,
    /// The kind it enqueues.
    pub kind: String,
    /// Validated parameters.
    pub params: Value,
    /// Cron expression (already parsed once).
    pub cron: String,
    /// Time zone (already resolved once).
    pub timezone: String,
    /// Whether it fires.
    pub enabled: bool,
    /// Where it was declared.
    pub origin: ScheduleOrigin,
    /// Who created it.
    pub created_by: String,
    /// When it fires first.
    pub next_run_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("done"), None);
        assert!(JobState::Cancelled.is_finished());
        assert!(!JobState::Running.is_finished());
        for o in [
            "succeeded",
            "failed",
            "timed_out",
            "cancelled",
            "interrupted",
        ] {
            assert_eq!(
                AttemptOutcome::parse(o).map(AttemptOutcome::as_str),
                Some(o)
            );
        }
        for l in ["info", "warn", "error", "stdout", "stderr"] {
            assert_eq!(LogLevel::parse(l).map(LogLevel::as_str), Some(l));
        }
        assert_eq!(
            ScheduleOrigin::parse("config"),
            Some(ScheduleOrigin::Config)
        );
        assert_eq!(ScheduleOrigin::parse("x"), None);
    }
}
