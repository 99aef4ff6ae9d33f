//! The translation between jobs (and their attempts, logs, outputs, schedules) and
//! column values, shared by both backends so that they store and give back the same.

use palisade_core::Timestamp;
use palisade_core::job::{
    AttemptOutcome, Job, JobAttempt, JobLogLine, JobOutput, JobState, LogLevel, Schedule,
    ScheduleOrigin,
};
use serde_json::Value;

use crate::StoreError;
use crate::codec::clean;

/// The longest error message kept, in characters.
pub(crate) const MAX_ERROR_CHARS: usize = 4096;
/// The longest progress message kept.
pub(crate) const MAX_PROGRESS_CHARS: usize = 512;
/// The longest log line kept (longer lines are cut, marked with `…`).
pub(crate) const MAX_LOG_CHARS: usize = 8192;
/// The longest name (creator, worker, schedule name) kept.
pub(crate) const MAX_NAME_CHARS: usize = 256;

/// The job columns every read selects, in the order [`JobColumns`] expects.
pub(crate) const JOB_SELECT_COLUMNS: &str = "id, kind, params, state, attempt, max_attempts, \
     failures, interruptions, progress, progress_message, error, created_by, schedule_id, \
     cancel_requested, lease_owner, lease_until, created_at, updated_at, run_after, started_at, \
     finished_at";

/// The schedule columns every read selects, in the order [`ScheduleColumns`] expects.
pub(crate) const SCHEDULE_SELECT_COLUMNS: &str = "id, name, kind, params, cron, timezone, \
     enabled, origin, created_by, created_at, updated_at, next_run_at, last_run_at, last_job_id";

/// Attempt columns, in the order [`AttemptColumns`] expects.
pub(crate) const ATTEMPT_SELECT_COLUMNS: &str =
    "job_id, attempt, worker, started_at, finished_at, outcome, error";

/// Text cut to at most `max` characters (with a trailing `…` when cut) and cleaned of
/// NUL.
pub(crate) fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => {
            let mut out = clean(&s[..at]).into_owned();
            out.push('…');
            out
        }
        None => clean(s).into_owned(),
    }
}

/// JSON as stored (NUL cannot appear in serialized JSON: it is escaped).
pub(crate) fn json_text(v: &Value) -> String {
    v.to_string()
}

fn json_value(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: bad JSON: {e}")))
}

fn count(v: i32, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what}: negative count {v}")))
}

/// One stored job row as read back.
#[derive(Debug, Default)]
pub(crate) struct JobColumns {
    pub id: i64,
    pub kind: String,
    pub params: String,
    pub state: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub failures: i32,
    pub interruptions: i32,
    pub progress: i32,
    pub progress_message: Option<String>,
    pub error: Option<String>,
    pub created_by: String,
    pub schedule_id: Option<i64>,
    pub cancel_requested: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub run_after: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl JobColumns {
    /// The domain model; `Corrupt` when a value cannot be read back.
    pub fn into_job(self) -> Result<Job, StoreError> {
        let id = self.id;
        let what = format!("job {id}");
        Ok(Job {
            id,
            kind: self.kind,
            params: json_value(&self.params, &what)?,
            state: JobState::parse(&self.state)
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: bad state {}", self.state)))?,
            attempt: count(self.attempt, &what)?,
            max_attempts: count(self.max_attempts, &what)?,
            failures: count(self.failures, &what)?,
            interruptions: count(self.interruptions, &what)?,
            progress: u8::try_from(self.progress.clamp(0, 100)).unwrap_or(0),
            progress_message: self.progress_message,
            error: self.error,
            created_by: self.created_by,
            schedule_id: self.schedule_id,
            cancel_requested: self.cancel_requested != 0,
            worker: self.lease_owner,
            lease_until: self.lease_until.map(Timestamp),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            run_after: Timestamp(self.run_after),
            started_at: self.started_at.map(Timestamp),
            finished_at: self.finished_at.map(Timestamp),
        })
    }
}

/// One attempt row as read back.
#[derive(Debug, Default)]
pub(crate) struct AttemptColumns {
    pub job_id: i64,
    pub attempt: i32,
    pub worker: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

impl AttemptColumns {
    /// The domain model.
    pub fn into_attempt(self) -> Result<JobAttempt, StoreError> {
        let what = format!("job {} attempt {}", self.job_id, self.attempt);
        let outcome = self
            .outcome
            .map(|o| {
                AttemptOutcome::parse(&o)
                    .ok_or_else(|| StoreError::Corrupt(format!("{what}: bad outcome {o}")))
            })
            .transpose()?;
        Ok(JobAttempt {
            job_id: self.job_id,
            attempt: count(self.attempt, &what)?,
            worker: self.worker,
            started_at: Timestamp(self.started_at),
            finished_at: self.finished_at.map(Timestamp),
            outcome,
            error: self.error,
        })
    }
}

/// One log row as read back.
pub(crate) fn log_line(
    id: i64,
    job_id: i64,
    attempt: i32,
    ts: i64,
    level: &str,
    message: String,
) -> Result<JobLogLine, StoreError> {
    Ok(JobLogLine {
        id,
        job_id,
        attempt: count(attempt, "job log")?,
        ts: Timestamp(ts),
        level: LogLevel::parse(level)
            .ok_or_else(|| StoreError::Corrupt(format!("job log {id}: bad level {level}")))?,
        message,
    })
}

/// One output row as read back.
pub(crate) fn output(
    id: i64,
    job_id: i64,
    attempt: i32,
    ts: i64,
    value: &str,
) -> Result<JobOutput, StoreError> {
    Ok(JobOutput {
        id,
        job_id,
        attempt: count(attempt, "job output")?,
        ts: Timestamp(ts),
        value: json_value(value, &format!("job output {id}"))?,
    })
}

/// One schedule row as read back.
#[derive(Debug, Default)]
pub(crate) struct ScheduleColumns {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub params: String,
    pub cron: String,
    pub timezone: String,
    pub enabled: i32,
    pub origin: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub next_run_at: Option<i64>,
    pub last_run_at: Option<i64>,
    pub last_job_id: Option<i64>,
}

impl ScheduleColumns {
    /// The domain model.
    pub fn into_schedule(self) -> Result<Schedule, StoreError> {
        let what = format!("schedule {}", self.id);
        Ok(Schedule {
            id: self.id,
            name: self.name,
            kind: self.kind,
            params: json_value(&self.params, &what)?,
            cron: self.cron,
            timezone: self.timezone,
            enabled: self.enabled != 0,
            origin: ScheduleOrigin::parse(&self.origin).ok_or_else(|| {
                StoreError::Corrupt(format!("{what}: bad origin {}", self.origin))
            })?,
            created_by: self.created_by,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            next_run_at: self.next_run_at.map(Timestamp),
            last_run_at: self.last_run_at.map(Timestamp),
            last_job_id: self.last_job_id,
        })
    }
}

/// A `u32` count as an INTEGER column value (clamped).
pub(crate) fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_capped_and_bad_rows_are_corrupt() {
        assert_eq!(cap("abc", 2), "ab…");
        assert_eq!(cap("a\0", 5), "a\u{fffd}");
        let bad = JobColumns {
            params: "{".into(),
            state: "pending".into(),
            ..JobColumns::default()
        };
        assert!(matches!(bad.into_job(), Err(StoreError::Corrupt(_))));
        let bad = JobColumns {
            params: "{}".into(),
            state: "done".into(),
            ..JobColumns::default()
        };
        assert!(matches!(bad.into_job(), Err(StoreError::Corrupt(_))));
        let good = JobColumns {
            params: "{\"a\":1}".into(),
            state: "running".into(),
            progress: 250,
            cancel_requested: 1,
            ..JobColumns::default()
        }
        .into_job()
        .unwrap();
        assert_eq!(good.progress, 100);
        assert!(good.cancel_requested);
        assert!(log_line(1, 1, 1, 0, "loud", String::new()).is_err());
        assert!(output(1, 1, 1, 0, "nope").is_err());
        assert_eq!(int(u32::MAX), i32::MAX);
    }
}
