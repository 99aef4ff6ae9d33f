//! [`JobStore`] for the PostgreSQL backend.
//!
//! A child module of `postgres` so that it shares that backend's pool and error
//! mapping. Several processes share the queue: a claim locks its candidate row with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers each take a different job without
//! waiting for one another, and a row another claimer holds is simply passed over.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use palisade_core::Timestamp;
use palisade_core::job::{
    AttemptOutcome, Job, JobAttempt, JobLogLine, JobOutput, JobState, NewJob, NewLogLine,
    NewSchedule, Schedule, ScheduleOrigin,
};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{PgStore, corrupt, pg_err};
use crate::codec::jobs::{
    ATTEMPT_SELECT_COLUMNS, AttemptColumns, JOB_SELECT_COLUMNS, JobColumns, MAX_ERROR_CHARS,
    MAX_LOG_CHARS, MAX_NAME_CHARS, MAX_PROGRESS_CHARS, SCHEDULE_SELECT_COLUMNS, ScheduleColumns,
    cap, int, json_text, log_line, output,
};
use crate::sqlgen::{self, Dialect, clamp_limit};
use crate::{
    AttemptEnd, CancelOutcome, Cursor, JobClaim, JobCounts, JobFinish, JobQuery, JobStore,
    LeaseStatus, MAX_INTERRUPTIONS, Page, StoreError,
};

const FINISHED: &str = "('succeeded', 'failed', 'cancelled')";

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

fn job_from_row(r: &Row) -> Result<Job, StoreError> {
    JobColumns {
        id: r.try_get(0).map_err(corrupt)?,
        kind: r.try_get(1).map_err(corrupt)?,
        params: r.try_get(2).map_err(corrupt)?,
        state: r.try_get(3).map_err(corrupt)?,
        attempt: r.try_get(4).map_err(corrupt)?,
        max_attempts: r.try_get(5).map_err(corrupt)?,
        failures: r.try_get(6).map_err(corrupt)?,
        interruptions: r.try_get(7).map_err(corrupt)?,
        progress: r.try_get(8).map_err(corrupt)?,
        progress_message: r.try_get(9).map_err(corrupt)?,
        error: r.try_get(10).map_err(corrupt)?,
        created_by: r.try_get(11).map_err(corrupt)?,
        schedule_id: r.try_get(12).map_err(corrupt)?,
        cancel_requested: r.try_get(13).map_err(corrupt)?,
        lease_owner: r.try_get(14).map_err(corrupt)?,
        lease_until: r.try_get(15).map_err(corrupt)?,
        created_at: r.try_get(16).map_err(corrupt)?,
        updated_at: r.try_get(17).map_err(corrupt)?,
        run_after: r.try_get(18).map_err(corrupt)?,
        started_at: r.try_get(19).map_err(corrupt)?,
        finished_at: r.try_get(20).map_err(corrupt)?,
    }
    .into_job()
}

fn schedule_from_row(r: &Row) -> Result<Schedule, StoreError> {
    ScheduleColumns {
        id: r.try_get(0).map_err(corrupt)?,
        name: r.try_get(1).map_err(corrupt)?,
        kind: r.try_get(2).map_err(corrupt)?,
        params: r.try_get(3).map_err(corrupt)?,
        cron: r.try_get(4).map_err(corrupt)?,
        timezone: r.try_get(5).map_err(corrupt)?,
        enabled: r.try_get(6).map_err(corrupt)?,
        origin: r.try_get(7).map_err(corrupt)?,
        created_by: r.try_get(8).map_err(corrupt)?,
        created_at: r.try_get(9).map_err(corrupt)?,
        updated_at: r.try_get(10).map_err(corrupt)?,
        next_run_at: r.try_get(11).map_err(corrupt)?,
        last_run_at: r.try_get(12).map_err(corrupt)?,
        last_job_id: r.try_get(13).map_err(corrupt)?,
    }
    .into_schedule()
}

/// Runs a prepared (and cached) statement returning rows.
async fn rows<C: GenericClient>(c: &C, sql: &str, p: Params<'_>) -> Result<Vec<Row>, StoreError> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.query(&stmt, p).await.map_err(pg_err)
}

/// Runs a prepared (and cached) statement; how many rows it touched.
async fn exec<C: GenericClient>(c: &C, sql: &str, p: Params<'_>) -> Result<u64, StoreError> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.execute(&stmt, p).await.map_err(pg_err)
}

async fn job_by_id<C: GenericClient>(c: &C, id: i64) -> Result<Option<Job>, StoreError> {
    rows(
        c,
        &format!("SELECT {JOB_SELECT_COLUMNS} FROM jobs WHERE id = $1"),
        &[&id],
    )
    .await?
    .first()
    .map(job_from_row)
    .transpose()
}

async fn must_job<C: GenericClient>(c: &C, id: i64) -> Result<Job, StoreError> {
    job_by_id(c, id)
        .await?
        .ok_or_else(|| StoreError::Database(format!("job {id} vanished")))
}

async fn schedules_where<C: GenericClient>(
    c: &C,
    tail: &str,
    p: Params<'_>,
) -> Result<Vec<Schedule>, StoreError> {
    rows(
        c,
        &format!("SELECT {SCHEDULE_SELECT_COLUMNS} FROM job_schedules {tail}"),
        p,
    )
    .await?
    .iter()
    .map(schedule_from_row)
    .collect()
}

async fn insert_job<C: GenericClient>(c: &C, job: &NewJob, now: i64) -> Result<i64, StoreError> {
    let (kind, params, by) = (
        cap(&job.kind, MAX_NAME_CHARS),
        json_text(&job.params),
        cap(&job.created_by, MAX_NAME_CHARS),
    );
    let row = rows(
        c,
        "INSERT INTO jobs (kind, params, state, max_attempts, created_by, schedule_id, \
         created_at, updated_at, run_after) VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6, $7) \
         RETURNING id",
        &[
            &kind,
            &params,
            &int(job.max_attempts.max(1)),
            &by,
            &job.schedule_id,
            &now,
            &job.run_after.as_micros(),
        ],
    )
    .await?;
    row.first()
        .ok_or_else(|| StoreError::Database("insert returned no id".into()))?
        .try_get(0)
        .map_err(corrupt)
}

async fn close_attempt<C: GenericClient>(
    c: &C,
    id: i64,
    attempt: i32,
    now: i64,
    outcome: AttemptOutcome,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let error = error.map(|e| cap(e, MAX_ERROR_CHARS));
    exec(
        c,
        "UPDATE job_attempts SET finished_at = $3, outcome = $4, error = $5
         WHERE job_id = $1 AND attempt = $2 AND finished_at IS NULL",
        &[&id, &attempt, &now, &outcome.as_str(), &error],
    )
    .await
    .map(drop)
}

async fn finalize<C: GenericClient>(
    c: &C,
    id: i64,
    state: JobState,
    error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let error = error.map(|e| cap(e, MAX_ERROR_CHARS));
    exec(
        c,
        "UPDATE jobs SET state = $2, error = coalesce($3, error), finished_at = $4, updated_at = $4,
                lease_owner = NULL, lease_until = NULL,
                progress = CASE WHEN $2 = 'succeeded' THEN 100 ELSE progress END
         WHERE id = $1",
        &[&id, &state.as_str(), &error, &now],
    )
    .await
    .map(drop)
}

/// The fields a claim decides on, of the row it locked.
struct Candidate {
    id: i64,
    state: String,
    attempt: i32,
    interruptions: i32,
    cancel_requested: i32,
}

async fn candidate<C: GenericClient>(
    c: &C,
    claim: &JobClaim,
    interrupted: bool,
) -> Result<Option<Candidate>, StoreError> {
    let (cond, order) = if interrupted {
        ("state = 'running' AND lease_until < $1", "lease_until, id")
    } else {
        ("state = 'pending' AND run_after <= $1", "run_after, id")
    };
    let now = claim.now.as_micros();
    let found = match claim.only_id {
        Some(only) => {
            rows(
                c,
                &format!(
                    "SELECT id, state, attempt, interruptions, cancel_requested FROM jobs
                     WHERE {cond} AND kind = ANY($2) AND id = $3
                     ORDER BY {order} LIMIT 1 FOR UPDATE SKIP LOCKED"
                ),
                &[&now, &claim.kinds, &only],
            )
            .await?
        }
        None => {
            rows(
                c,
                &format!(
                    "SELECT id, state, attempt, interruptions, cancel_requested FROM jobs
                     WHERE {cond} AND kind = ANY($2)
                     ORDER BY {order} LIMIT 1 FOR UPDATE SKIP LOCKED"
                ),
                &[&now, &claim.kinds],
            )
            .await?
        }
    };
    found
        .first()
        .map(|r| -> Result<Candidate, StoreError> {
            Ok(Candidate {
                id: r.try_get(0).map_err(corrupt)?,
                state: r.try_get(1).map_err(corrupt)?,
                attempt: r.try_get(2).map_err(corrupt)?,
                interruptions: r.try_get(3).map_err(corrupt)?,
                cancel_requested: r.try_get(4).map_err(corrupt)?,
            })
        })
        .transpose()
}

/// Whether two schedule definitions are the same (then the stored one keeps its time).
fn same_definition(stored: &Schedule, new: &NewSchedule) -> bool {
    stored.kind == new.kind
        && stored.params == new.params
        && stored.cron == new.cron
        && stored.timezone == new.timezone
        && stored.enabled == new.enabled
}

fn unique_violation(e: StoreError, original: Option<&SqlState>, what: &str) -> StoreError {
    if original == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what.to_owned())
    } else {
        e
    }
}

async fn insert_schedule<C: GenericClient>(
    c: &C,
    s: &NewSchedule,
    now: i64,
) -> Result<i64, StoreError> {
    let (name, params, by) = (
        cap(&s.name, MAX_NAME_CHARS),
        json_text(&s.params),
        cap(&s.created_by, MAX_NAME_CHARS),
    );
    let stmt = c
        .prepare_cached(
            "INSERT INTO job_schedules (name, kind, params, cron, timezone, enabled, origin,
                    created_by, created_at, updated_at, next_run_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
        )
        .await
        .map_err(pg_err)?;
    let row = c
        .query_one(
            &stmt,
            &[
                &name,
                &s.kind,
                &params,
                &s.cron,
                &s.timezone,
                &i32::from(s.enabled),
                &s.origin.as_str(),
                &by,
                &now,
                &s.next_run_at.map(Timestamp::as_micros),
            ],
        )
        .await
        .map_err(|e| {
            let code = e.code().cloned();
            unique_violation(pg_err(e), code.as_ref(), &format!("schedule '{}'", s.name))
        })?;
    row.try_get(0).map_err(corrupt)
}

async fn replace_schedule<C: GenericClient>(
    c: &C,
    id: i64,
    s: &NewSchedule,
    now: i64,
) -> Result<u64, StoreError> {
    let (name, params) = (cap(&s.name, MAX_NAME_CHARS), json_text(&s.params));
    let stmt = c
        .prepare_cached(
            "UPDATE job_schedules SET name = $2, kind = $3, params = $4, cron = $5, timezone = $6,
                    enabled = $7, updated_at = $8, next_run_at = $9
             WHERE id = $1",
        )
        .await
        .map_err(pg_err)?;
    c.execute(
        &stmt,
        &[
            &id,
            &name,
            &s.kind,
            &params,
            &s.cron,
            &s.timezone,
            &i32::from(s.enabled),
            &now,
            &s.next_run_at.map(Timestamp::as_micros),
        ],
    )
    .await
    .map_err(|e| {
        let code = e.code().cloned();
        unique_violation(pg_err(e), code.as_ref(), &format!("schedule '{}'", s.name))
    })
}

#[async_trait]
impl JobStore for PgStore {
    async fn enqueue_job(&self, job: &NewJob, now: Timestamp) -> Result<Job, StoreError> {
        // One round trip: the insert returns the stored row.
        let (kind, params, by) = (
            cap(&job.kind, MAX_NAME_CHARS),
            json_text(&job.params),
            cap(&job.created_by, MAX_NAME_CHARS),
        );
        let client = self.client().await?;
        let now = now.as_micros();
        let stored = rows(
            &client,
            &format!(
                "INSERT INTO jobs (kind, params, state, max_attempts, created_by, schedule_id, \
                 created_at, updated_at, run_after) VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6, $7) \
                 RETURNING {JOB_SELECT_COLUMNS}"
            ),
            &[
                &kind,
                &params,
                &int(job.max_attempts.max(1)),
                &by,
                &job.schedule_id,
                &now,
                &job.run_after.as_micros(),
            ],
        )
        .await?;
        stored
            .first()
            .map(job_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::Database("insert returned no row".into()))
    }

    async fn get_job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let client = self.client().await?;
        job_by_id(&client, id).await
    }

    async fn query_jobs(&self, query: &JobQuery) -> Result<Page<Job>, StoreError> {
        let sql = sqlgen::jobs_query(Dialect::Postgres, query);
        let found = self.query_generated(&sql).await?;
        let items = found
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, query.limit, |j| Cursor {
            ts: j.created_at.as_micros(),
            id: j.id,
        }))
    }

    async fn claim_job(&self, claim: &JobClaim) -> Result<Option<Job>, StoreError> {
        if claim.kinds.is_empty() {
            return Ok(None);
        }
        let now = claim.now.as_micros();
        let worker = cap(&claim.worker, MAX_NAME_CHARS);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for _ in 0..16 {
            let found = match candidate(&tx, claim, true).await? {
                Some(c) => Some(c),
                None => candidate(&tx, claim, false).await?,
            };
            let Some(c) = found else {
                tx.commit().await.map_err(pg_err)?;
                return Ok(None);
            };
            let mut interruptions = c.interruptions;
            if c.state == "running" {
                close_attempt(
                    &tx,
                    c.id,
                    c.attempt,
                    now,
                    AttemptOutcome::Interrupted,
                    Some(
                        "cut off: its worker stopped renewing the lease (crash, kill or lost database)",
                    ),
                )
                .await?;
                interruptions += 1;
                exec(
                    &tx,
                    "UPDATE jobs SET interruptions = $2 WHERE id = $1",
                    &[&c.id, &interruptions],
                )
                .await?;
                if c.cancel_requested != 0 {
                    finalize(&tx, c.id, JobState::Cancelled, None, now).await?;
                    continue;
                }
                if interruptions >= int(MAX_INTERRUPTIONS) {
                    let why = format!(
                        "cut off {interruptions} times while running (the process stopped each time); not taken up again"
                    );
                    finalize(&tx, c.id, JobState::Failed, Some(&why), now).await?;
                    continue;
                }
            }
            let attempt = c.attempt + 1;
            exec(
                &tx,
                "UPDATE jobs SET state = 'running', attempt = $2, lease_owner = $3, lease_until = $4,
                        started_at = coalesce(started_at, $5), updated_at = $5, progress = 0,
                        progress_message = NULL, finished_at = NULL
                 WHERE id = $1",
                &[
                    &c.id,
                    &attempt,
                    &worker,
                    &claim.lease_until.as_micros(),
                    &now,
                ],
            )
            .await?;
            exec(
                &tx,
                "INSERT INTO job_attempts (job_id, attempt, worker, started_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (job_id, attempt) DO UPDATE
                 SET worker = EXCLUDED.worker, started_at = EXCLUDED.started_at,
                     finished_at = NULL, outcome = NULL, error = NULL",
                &[&c.id, &attempt, &worker, &now],
            )
            .await?;
            let job = must_job(&tx, c.id).await?;
            tx.commit().await.map_err(pg_err)?;
            return Ok(Some(job));
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(None)
    }

    async fn renew_job_lease(
        &self,
        id: i64,
        worker: &str,
        until: Timestamp,
    ) -> Result<LeaseStatus, StoreError> {
        let worker = cap(worker, MAX_NAME_CHARS);
        let client = self.client().await?;
        let found = rows(
            &client,
            "UPDATE jobs SET lease_until = $3
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'
             RETURNING cancel_requested",
            &[&id, &worker, &until.as_micros()],
        )
        .await?;
        Ok(match found.first() {
            Some(r) => LeaseStatus {
                held: true,
                cancel_requested: r.try_get::<_, i32>(0).map_err(corrupt)? != 0,
            },
            None => LeaseStatus {
                held: false,
                cancel_requested: false,
            },
        })
    }

    async fn set_job_progress(
        &self,
        id: i64,
        worker: &str,
        progress: u8,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let worker = cap(worker, MAX_NAME_CHARS);
        let message = message.map(|m| cap(m, MAX_PROGRESS_CHARS));
        let client = self.client().await?;
        exec(
            &client,
            "UPDATE jobs SET progress = $3, progress_message = $4, updated_at = $5
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            &[
                &id,
                &worker,
                &i32::from(progress.min(100)),
                &message,
                &now.as_micros(),
            ],
        )
        .await
        .map(drop)
    }

    async fn finish_job(&self, f: &JobFinish) -> Result<Option<Job>, StoreError> {
        let now = f.now.as_micros();
        let worker = cap(&f.worker, MAX_NAME_CHARS);
        let attempt = int(f.attempt);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let held = rows(
            &tx,
            "SELECT interruptions, cancel_requested FROM jobs
             WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND attempt = $3
             FOR UPDATE",
            &[&f.id, &worker, &attempt],
        )
        .await?;
        let Some(row) = held.first() else {
            return Ok(None);
        };
        let interruptions: i32 = row.try_get(0).map_err(corrupt)?;
        let cancel_requested: i32 = row.try_get(1).map_err(corrupt)?;
        match &f.end {
            AttemptEnd::Succeeded => {
                close_attempt(&tx, f.id, attempt, now, AttemptOutcome::Succeeded, None).await?;
                exec(&tx, "UPDATE jobs SET error = NULL WHERE id = $1", &[&f.id]).await?;
                finalize(&tx, f.id, JobState::Succeeded, None, now).await?;
            }
            AttemptEnd::Failed {
                outcome,
                error,
                retry_at,
            } => {
                close_attempt(&tx, f.id, attempt, now, *outcome, Some(error)).await?;
                exec(
                    &tx,
                    "UPDATE jobs SET failures = failures + 1 WHERE id = $1",
                    &[&f.id],
                )
                .await?;
                match retry_at {
                    Some(at) if cancel_requested == 0 => {
                        let error = cap(error, MAX_ERROR_CHARS);
                        exec(
                            &tx,
                            "UPDATE jobs SET state = 'pending', run_after = $2, error = $3,
                                    updated_at = $4, lease_owner = NULL, lease_until = NULL
                             WHERE id = $1",
                            &[&f.id, &at.as_micros(), &error, &now],
                        )
                        .await?;
                    }
                    _ => finalize(&tx, f.id, JobState::Failed, Some(error), now).await?,
                }
            }
            AttemptEnd::Cancelled => {
                close_attempt(&tx, f.id, attempt, now, AttemptOutcome::Cancelled, None).await?;
                finalize(&tx, f.id, JobState::Cancelled, None, now).await?;
            }
            AttemptEnd::Interrupted { reason } => {
                close_attempt(
                    &tx,
                    f.id,
                    attempt,
                    now,
                    AttemptOutcome::Interrupted,
                    Some(reason),
                )
                .await?;
                let interruptions = interruptions + 1;
                exec(
                    &tx,
                    "UPDATE jobs SET interruptions = $2 WHERE id = $1",
                    &[&f.id, &interruptions],
                )
                .await?;
                if cancel_requested != 0 {
                    finalize(&tx, f.id, JobState::Cancelled, None, now).await?;
                } else if interruptions >= int(MAX_INTERRUPTIONS) {
                    let why =
                        format!("cut off {interruptions} times while running; not taken up again");
                    finalize(&tx, f.id, JobState::Failed, Some(&why), now).await?;
                } else {
                    exec(
                        &tx,
                        "UPDATE jobs SET state = 'pending', run_after = $2, updated_at = $2,
                                lease_owner = NULL, lease_until = NULL
                         WHERE id = $1",
                        &[&f.id, &now],
                    )
                    .await?;
                }
            }
        }
        let job = job_by_id(&tx, f.id).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(job)
    }

    async fn cancel_job(
        &self,
        id: i64,
        now: Timestamp,
    ) -> Result<Option<CancelOutcome>, StoreError> {
        let now = now.as_micros();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let locked = rows(
            &tx,
            &format!("SELECT {JOB_SELECT_COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await?;
        let Some(job) = locked.first().map(job_from_row).transpose()? else {
            return Ok(None);
        };
        let outcome = match job.state {
            JobState::Pending => {
                exec(
                    &tx,
                    "UPDATE jobs SET cancel_requested = 1 WHERE id = $1",
                    &[&id],
                )
                .await?;
                finalize(&tx, id, JobState::Cancelled, None, now).await?;
                CancelOutcome::Cancelled(must_job(&tx, id).await?)
            }
            JobState::Running => {
                exec(
                    &tx,
                    "UPDATE jobs SET cancel_requested = 1, updated_at = $2 WHERE id = $1",
                    &[&id, &now],
                )
                .await?;
                CancelOutcome::Requested(must_job(&tx, id).await?)
            }
            _ => CancelOutcome::Finished(job),
        };
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(outcome))
    }

    async fn retry_job(
        &self,
        id: i64,
        extra_attempts: u32,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        let client = self.client().await?;
        let changed = exec(
            &client,
            "UPDATE jobs SET state = 'pending', run_after = $2, updated_at = $2,
                    max_attempts = failures + $3, cancel_requested = 0, finished_at = NULL,
                    progress = 0, progress_message = NULL, interruptions = 0
             WHERE id = $1 AND state IN ('failed', 'cancelled')",
            &[&id, &now.as_micros(), &int(extra_attempts.max(1))],
        )
        .await?;
        let _ = changed;
        job_by_id(&client, id).await
    }

    async fn job_attempts(&self, id: i64) -> Result<Vec<JobAttempt>, StoreError> {
        let client = self.client().await?;
        rows(
            &client,
            &format!(
                "SELECT {ATTEMPT_SELECT_COLUMNS} FROM job_attempts WHERE job_id = $1 ORDER BY attempt"
            ),
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            AttemptColumns {
                job_id: r.try_get(0).map_err(corrupt)?,
                attempt: r.try_get(1).map_err(corrupt)?,
                worker: r.try_get(2).map_err(corrupt)?,
                started_at: r.try_get(3).map_err(corrupt)?,
                finished_at: r.try_get(4).map_err(corrupt)?,
                outcome: r.try_get(5).map_err(corrupt)?,
                error: r.try_get(6).map_err(corrupt)?,
            }
            .into_attempt()
        })
        .collect()
    }

    async fn append_job_logs(
        &self,
        id: i64,
        attempt: u32,
        lines: &[NewLogLine],
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let ts: Vec<i64> = lines.iter().map(|l| l.ts.as_micros()).collect();
        let levels: Vec<&str> = lines.iter().map(|l| l.level.as_str()).collect();
        let messages: Vec<String> = lines
            .iter()
            .map(|l| cap(&l.message, MAX_LOG_CHARS))
            .collect();
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO job_logs (job_id, attempt, ts, level, message)
             SELECT $1, $2, t.ts, t.level, t.message
             FROM unnest($3::bigint[], $4::text[], $5::text[]) WITH ORDINALITY
                  AS t(ts, level, message, n)
             ORDER BY t.n",
            &[&id, &int(attempt), &ts, &levels, &messages],
        )
        .await
        .map(drop)
    }

    async fn job_logs(
        &self,
        id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Page<JobLogLine>, StoreError> {
        let fetch = i64::from(clamp_limit(limit)) + 1;
        let client = self.client().await?;
        let items = rows(
            &client,
            "SELECT id, job_id, attempt, ts, level, message FROM job_logs
             WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&id, &after_id, &fetch],
        )
        .await?
        .iter()
        .map(|r| {
            let level: String = r.try_get(4).map_err(corrupt)?;
            log_line(
                r.try_get(0).map_err(corrupt)?,
                r.try_get(1).map_err(corrupt)?,
                r.try_get(2).map_err(corrupt)?,
                r.try_get(3).map_err(corrupt)?,
                &level,
                r.try_get(5).map_err(corrupt)?,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, limit, |l| Cursor {
            ts: l.ts.as_micros(),
            id: l.id,
        }))
    }

    async fn delete_job_logs(&self, id: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        exec(&client, "DELETE FROM job_logs WHERE job_id = $1", &[&id]).await
    }

    async fn delete_finished_job_logs(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        exec(
            &client,
            &format!(
                "DELETE FROM job_logs WHERE job_id IN (SELECT id FROM jobs WHERE state IN {FINISHED})"
            ),
            &[],
        )
        .await
    }

    async fn append_job_outputs(
        &self,
        id: i64,
        attempt: u32,
        values: &[(Timestamp, Value)],
    ) -> Result<(), StoreError> {
        if values.is_empty() {
            return Ok(());
        }
        let ts: Vec<i64> = values.iter().map(|(t, _)| t.as_micros()).collect();
        let texts: Vec<String> = values.iter().map(|(_, v)| json_text(v)).collect();
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO job_outputs (job_id, attempt, ts, value)
             SELECT $1, $2, t.ts, t.value
             FROM unnest($3::bigint[], $4::text[]) WITH ORDINALITY AS t(ts, value, n)
             ORDER BY t.n",
            &[&id, &int(attempt), &ts, &texts],
        )
        .await
        .map(drop)
    }

    async fn job_outputs(
        &self,
        id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Page<JobOutput>, StoreError> {
        let fetch = i64::from(clamp_limit(limit)) + 1;
        let client = self.client().await?;
        let items = rows(
            &client,
            "SELECT id, job_id, attempt, ts, value FROM job_outputs
             WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&id, &after_id, &fetch],
        )
        .await?
        .iter()
        .map(|r| {
            let value: String = r.try_get(4).map_err(corrupt)?;
            output(
                r.try_get(0).map_err(corrupt)?,
                r.try_get(1).map_err(corrupt)?,
                r.try_get(2).map_err(corrupt)?,
                r.try_get(3).map_err(corrupt)?,
                &value,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, limit, |o| Cursor {
            ts: o.ts.as_micros(),
            id: o.id,
        }))
    }

    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        let client = self.client().await?;
        let mut counts = JobCounts::default();
        for r in rows(
            &client,
            "SELECT state, count(*) FROM jobs GROUP BY state",
            &[],
        )
        .await?
        {
            let state: String = r.try_get(0).map_err(corrupt)?;
            let n: i64 = r.try_get(1).map_err(corrupt)?;
            let n = u64::try_from(n).unwrap_or(0);
            match JobState::parse(&state) {
                Some(JobState::Pending) => counts.pending = n,
                Some(JobState::Running) => counts.running = n,
                Some(JobState::Succeeded) => counts.succeeded = n,
                Some(JobState::Failed) => counts.failed = n,
                Some(JobState::Cancelled) => counts.cancelled = n,
                None => return Err(StoreError::Corrupt(format!("job state {state}"))),
            }
        }
        Ok(counts)
    }

    async fn create_schedule(
        &self,
        schedule: &NewSchedule,
        now: Timestamp,
    ) -> Result<Schedule, StoreError> {
        let client = self.client().await?;
        let id = insert_schedule(&client, schedule, now.as_micros()).await?;
        schedules_where(&client, "WHERE id = $1", &[&id])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Database(format!("schedule {id} vanished")))
    }

    async fn update_schedule(
        &self,
        id: i64,
        schedule: &NewSchedule,
        now: Timestamp,
    ) -> Result<Option<Schedule>, StoreError> {
        let client = self.client().await?;
        if replace_schedule(&client, id, schedule, now.as_micros()).await? == 0 {
            return Ok(None);
        }
        Ok(schedules_where(&client, "WHERE id = $1", &[&id])
            .await?
            .pop())
    }

    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(exec(&client, "DELETE FROM job_schedules WHERE id = $1", &[&id]).await? > 0)
    }

    async fn get_schedule(&self, id: i64) -> Result<Option<Schedule>, StoreError> {
        let client = self.client().await?;
        Ok(schedules_where(&client, "WHERE id = $1", &[&id])
            .await?
            .pop())
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let client = self.client().await?;
        schedules_where(&client, "ORDER BY name", &[]).await
    }

    async fn sync_config_schedules(
        &self,
        wanted: &[NewSchedule],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = now.as_micros();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Processes starting together take turns here.
        exec(
            &tx,
            "LOCK TABLE job_schedules IN SHARE ROW EXCLUSIVE MODE",
            &[],
        )
        .await?;
        let stored: HashMap<String, Schedule> = schedules_where(&tx, "", &[])
            .await?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        for s in wanted {
            match stored.get(&s.name) {
                Some(old) if old.origin == ScheduleOrigin::Api => {
                    return Err(StoreError::Conflict(format!(
                        "schedule name '{}' is used by a schedule created through the API",
                        s.name
                    )));
                }
                Some(old) if same_definition(old, s) => {}
                Some(old) => {
                    replace_schedule(&tx, old.id, s, now).await?;
                }
                None => {
                    insert_schedule(&tx, s, now).await?;
                }
            }
        }
        for old in stored.values() {
            if old.origin == ScheduleOrigin::Config && !wanted.iter().any(|s| s.name == old.name) {
                exec(&tx, "DELETE FROM job_schedules WHERE id = $1", &[&old.id]).await?;
            }
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn due_schedules(&self, now: Timestamp) -> Result<Vec<Schedule>, StoreError> {
        let client = self.client().await?;
        schedules_where(
            &client,
            "WHERE enabled = 1 AND next_run_at <= $1 ORDER BY next_run_at, id",
            &[&now.as_micros()],
        )
        .await
    }

    async fn fire_schedule(
        &self,
        id: i64,
        expected: Timestamp,
        next: Option<Timestamp>,
        job: &NewJob,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        let now = now.as_micros();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let moved = exec(
            &tx,
            "UPDATE job_schedules SET next_run_at = $3, last_run_at = $4
             WHERE id = $1 AND next_run_at = $2 AND enabled = 1",
            &[
                &id,
                &expected.as_micros(),
                &next.map(Timestamp::as_micros),
                &now,
            ],
        )
        .await?;
        if moved == 0 {
            return Ok(None);
        }
        let job_id = insert_job(&tx, job, now).await?;
        exec(
            &tx,
            "UPDATE job_schedules SET last_job_id = $2 WHERE id = $1",
            &[&id, &job_id],
        )
        .await?;
        let job = job_by_id(&tx, job_id).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(job)
    }
}
