//! [`JobStore`] for the SQLite backend.
//!
//! A child module of `sqlite` so that it shares that backend's connection handling.
//! Every change goes through the single writer connection inside an `IMMEDIATE`
//! transaction, which also takes SQLite's write lock across processes (a CLI worker and
//! the server on the same file): a claim is atomic, and two claimers can never take the
//! same job.

use std::collections::HashMap;

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::job::{
    AttemptOutcome, Job, JobAttempt, JobLogLine, JobOutput, JobState, NewJob, NewLogLine,
    NewSchedule, Schedule, ScheduleOrigin,
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde_json::Value;

use super::{SqliteStore, lock, params_of, sqlite_err};
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

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<JobColumns> {
    Ok(JobColumns {
        id: r.get(0)?,
        kind: r.get(1)?,
        params: r.get(2)?,
        state: r.get(3)?,
        attempt: r.get(4)?,
        max_attempts: r.get(5)?,
        failures: r.get(6)?,
        interruptions: r.get(7)?,
        progress: r.get(8)?,
        progress_message: r.get(9)?,
        error: r.get(10)?,
        created_by: r.get(11)?,
        schedule_id: r.get(12)?,
        cancel_requested: r.get(13)?,
        lease_owner: r.get(14)?,
        lease_until: r.get(15)?,
        created_at: r.get(16)?,
        updated_at: r.get(17)?,
        run_after: r.get(18)?,
        started_at: r.get(19)?,
        finished_at: r.get(20)?,
    })
}

fn schedule_from_row(r: &Row<'_>) -> rusqlite::Result<ScheduleColumns> {
    Ok(ScheduleColumns {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        params: r.get(3)?,
        cron: r.get(4)?,
        timezone: r.get(5)?,
        enabled: r.get(6)?,
        origin: r.get(7)?,
        created_by: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        next_run_at: r.get(11)?,
        last_run_at: r.get(12)?,
        last_job_id: r.get(13)?,
    })
}

fn jobs(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Job>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite_err)?;
    let rows = stmt.query_map(params, job_from_row).map_err(sqlite_err)?;
    rows.map(|r| r.map_err(sqlite_err)?.into_job()).collect()
}

fn job_by_id(conn: &Connection, id: i64) -> Result<Option<Job>, StoreError> {
    Ok(jobs(
        conn,
        &format!("SELECT {JOB_SELECT_COLUMNS} FROM jobs WHERE id = ?1"),
        &[&id],
    )?
    .pop())
}

fn must_job(conn: &Connection, id: i64) -> Result<Job, StoreError> {
    job_by_id(conn, id)?.ok_or_else(|| StoreError::Database(format!("job {id} vanished")))
}

fn schedules(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Schedule>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite_err)?;
    let rows = stmt
        .query_map(params, schedule_from_row)
        .map_err(sqlite_err)?;
    rows.map(|r| r.map_err(sqlite_err)?.into_schedule())
        .collect()
}

fn schedule_by_id(conn: &Connection, id: i64) -> Result<Option<Schedule>, StoreError> {
    Ok(schedules(
        conn,
        &format!("SELECT {SCHEDULE_SELECT_COLUMNS} FROM job_schedules WHERE id = ?1"),
        &[&id],
    )?
    .pop())
}

fn unique_violation(e: rusqlite::Error, what: &str) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict(what.to_owned())
        }
        _ => sqlite_err(e),
    }
}

fn insert_job(tx: &Connection, job: &NewJob, now: i64) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO jobs (kind, params, state, max_attempts, created_by, schedule_id, \
         created_at, updated_at, run_after) VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            cap(&job.kind, MAX_NAME_CHARS),
            json_text(&job.params),
            int(job.max_attempts.max(1)),
            cap(&job.created_by, MAX_NAME_CHARS),
            job.schedule_id,
            now,
            job.run_after.as_micros(),
        ])
    })
    .map_err(sqlite_err)?;
    Ok(tx.last_insert_rowid())
}

/// Ends the open attempt row of a job.
fn close_attempt(
    tx: &Connection,
    id: i64,
    attempt: i32,
    now: i64,
    outcome: AttemptOutcome,
    error: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE job_attempts SET finished_at = ?3, outcome = ?4, error = ?5
         WHERE job_id = ?1 AND attempt = ?2 AND finished_at IS NULL",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            attempt,
            now,
            outcome.as_str(),
            error.map(|e| cap(e, MAX_ERROR_CHARS))
        ])
    })
    .map_err(sqlite_err)?;
    Ok(())
}

/// Moves a job to a final state, releasing its lease.
fn finalize(
    tx: &Connection,
    id: i64,
    state: JobState,
    error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE jobs SET state = ?2, error = coalesce(?3, error), finished_at = ?4, updated_at = ?4,
                lease_owner = NULL, lease_until = NULL,
                progress = CASE WHEN ?2 = 'succeeded' THEN 100 ELSE progress END
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            state.as_str(),
            error.map(|e| cap(e, MAX_ERROR_CHARS)),
            now
        ])
    })
    .map_err(sqlite_err)?;
    Ok(())
}

/// A candidate for a claim: the fields the decision needs.
struct Candidate {
    id: i64,
    state: String,
    attempt: i32,
    interruptions: i32,
    cancel_requested: i32,
}

fn candidate(
    tx: &Transaction<'_>,
    claim: &JobClaim,
    interrupted: bool,
) -> Result<Option<Candidate>, StoreError> {
    let mut params: Vec<rusqlite::types::Value> = vec![claim.now.as_micros().into()];
    let marks: Vec<String> = claim
        .kinds
        .iter()
        .map(|k| {
            params.push(k.clone().into());
            format!("?{}", params.len())
        })
        .collect();
    let only = match claim.only_id {
        Some(id) => {
            params.push(id.into());
            format!(" AND id = ?{}", params.len())
        }
        None => String::new(),
    };
    let (cond, order) = if interrupted {
        ("state = 'running' AND lease_until < ?1", "lease_until, id")
    } else {
        ("state = 'pending' AND run_after <= ?1", "run_after, id")
    };
    let sql = format!(
        "SELECT id, state, attempt, interruptions, cancel_requested FROM jobs
         WHERE {cond} AND kind IN ({}){only} ORDER BY {order} LIMIT 1",
        marks.join(", ")
    );
    // Cached: the text depends only on the worker's kinds (and `only_id`), fixed
    // for a worker, and this runs on every poll (once a second), twice.
    tx.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(rusqlite::params_from_iter(params), |r| {
                Ok(Candidate {
                    id: r.get(0)?,
                    state: r.get(1)?,
                    attempt: r.get(2)?,
                    interruptions: r.get(3)?,
                    cancel_requested: r.get(4)?,
                })
            })
            .optional()
        })
        .map_err(sqlite_err)
}

fn claim_in(tx: &Transaction<'_>, claim: &JobClaim) -> Result<Option<Job>, StoreError> {
    let now = claim.now.as_micros();
    // A handful of cut-off jobs may be settled (cancelled, failed) on the way.
    for _ in 0..16 {
        let found = match candidate(tx, claim, true)? {
            Some(c) => Some(c),
            None => candidate(tx, claim, false)?,
        };
        let Some(c) = found else {
            return Ok(None);
        };
        let mut interruptions = c.interruptions;
        if c.state == "running" {
            close_attempt(
                tx,
                c.id,
                c.attempt,
                now,
                AttemptOutcome::Interrupted,
                Some(
                    "cut off: its worker stopped renewing the lease (crash, kill or lost database)",
                ),
            )?;
            interruptions += 1;
            tx.prepare_cached("UPDATE jobs SET interruptions = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![c.id, interruptions]))
                .map_err(sqlite_err)?;
            if c.cancel_requested != 0 {
                finalize(tx, c.id, JobState::Cancelled, None, now)?;
                continue;
            }
            if interruptions >= int(MAX_INTERRUPTIONS) {
                let why = format!(
                    "cut off {interruptions} times while running (the process stopped each time); not taken up again"
                );
                finalize(tx, c.id, JobState::Failed, Some(&why), now)?;
                continue;
            }
        }
        let attempt = c.attempt + 1;
        tx.prepare_cached(
            "UPDATE jobs SET state = 'running', attempt = ?2, lease_owner = ?3, lease_until = ?4,
                    started_at = coalesce(started_at, ?5), updated_at = ?5, progress = 0,
                    progress_message = NULL, finished_at = NULL
             WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                c.id,
                attempt,
                cap(&claim.worker, MAX_NAME_CHARS),
                claim.lease_until.as_micros(),
                now
            ])
        })
        .map_err(sqlite_err)?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO job_attempts (job_id, attempt, worker, started_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| {
            s.execute(params![
                c.id,
                attempt,
                cap(&claim.worker, MAX_NAME_CHARS),
                now
            ])
        })
        .map_err(sqlite_err)?;
        return job_by_id(tx, c.id);
    }
    Ok(None)
}

/// Whether two schedule definitions are the same (then the stored one keeps its time).
fn same_definition(stored: &Schedule, new: &NewSchedule) -> bool {
    stored.kind == new.kind
        && stored.params == new.params
        && stored.cron == new.cron
        && stored.timezone == new.timezone
        && stored.enabled == new.enabled
}

impl SqliteStore {
    /// Runs `f` in an `IMMEDIATE` transaction on the writer, committing when it succeeds.
    async fn write_tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let out = f(&tx)?;
            tx.commit().map_err(sqlite_err)?;
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn enqueue_job(&self, job: &NewJob, now: Timestamp) -> Result<Job, StoreError> {
        let job = job.clone();
        self.write_tx(move |tx| {
            let id = insert_job(tx, &job, now.as_micros())?;
            must_job(tx, id)
        })
        .await
    }

    async fn get_job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        self.read(move |conn| job_by_id(conn, id)).await
    }

    async fn query_jobs(&self, query: &JobQuery) -> Result<Page<Job>, StoreError> {
        let sql = sqlgen::jobs_query(Dialect::Sqlite, query);
        let items = self
            .read(move |conn| jobs(conn, &sql.text, &params_of(&sql)))
            .await?;
        Ok(sqlgen::into_page(items, query.limit, |j| Cursor {
            ts: j.created_at.as_micros(),
            id: j.id,
        }))
    }

    async fn claim_job(&self, claim: &JobClaim) -> Result<Option<Job>, StoreError> {
        if claim.kinds.is_empty() {
            return Ok(None);
        }
        let claim = claim.clone();
        self.write_tx(move |tx| claim_in(tx, &claim)).await
    }

    async fn renew_job_lease(
        &self,
        id: i64,
        worker: &str,
        until: Timestamp,
    ) -> Result<LeaseStatus, StoreError> {
        let worker = cap(worker, MAX_NAME_CHARS);
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            let row = conn
                .prepare_cached(
                    "UPDATE jobs SET lease_until = ?3
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'
                     RETURNING cancel_requested",
                )
                .and_then(|mut s| {
                    s.query_row(params![id, worker, until.as_micros()], |r| {
                        r.get::<_, i32>(0)
                    })
                    .optional()
                })
                .map_err(sqlite_err)?;
            Ok(match row {
                Some(flag) => LeaseStatus {
                    held: true,
                    cancel_requested: flag != 0,
                },
                None => LeaseStatus {
                    held: false,
                    cancel_requested: false,
                },
            })
        })
        .await
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
        self.blocking(move |inner| {
            lock(&inner.writer)
                .prepare_cached(
                    "UPDATE jobs SET progress = ?3, progress_message = ?4, updated_at = ?5
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        worker,
                        i32::from(progress.min(100)),
                        message,
                        now.as_micros()
                    ])
                })
                .map_err(sqlite_err)?;
            Ok(())
        })
        .await
    }

    async fn finish_job(&self, finish: &JobFinish) -> Result<Option<Job>, StoreError> {
        let f = finish.clone();
        self.write_tx(move |tx| {
            let now = f.now.as_micros();
            let held = tx
                .prepare_cached(
                    "SELECT interruptions, cancel_requested FROM jobs
                     WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempt = ?3",
                )
                .and_then(|mut s| {
                    s.query_row(
                        params![f.id, cap(&f.worker, MAX_NAME_CHARS), int(f.attempt)],
                        |r| Ok((r.get::<_, i32>(0)?, r.get::<_, i32>(1)?)),
                    )
                    .optional()
                })
                .map_err(sqlite_err)?;
            let Some((interruptions, cancel_requested)) = held else {
                return Ok(None);
            };
            let attempt = int(f.attempt);
            match &f.end {
                AttemptEnd::Succeeded => {
                    close_attempt(tx, f.id, attempt, now, AttemptOutcome::Succeeded, None)?;
                    tx.prepare_cached("UPDATE jobs SET error = NULL WHERE id = ?1")
                        .and_then(|mut s| s.execute([f.id]))
                        .map_err(sqlite_err)?;
                    finalize(tx, f.id, JobState::Succeeded, None, now)?;
                }
                AttemptEnd::Failed {
                    outcome,
                    error,
                    retry_at,
                } => {
                    close_attempt(tx, f.id, attempt, now, *outcome, Some(error))?;
                    tx.prepare_cached("UPDATE jobs SET failures = failures + 1 WHERE id = ?1")
                        .and_then(|mut s| s.execute([f.id]))
                        .map_err(sqlite_err)?;
                    match retry_at {
                        Some(at) if cancel_requested == 0 => {
                            tx.prepare_cached(
                                "UPDATE jobs SET state = 'pending', run_after = ?2, error = ?3,
                                        updated_at = ?4, lease_owner = NULL, lease_until = NULL
                                 WHERE id = ?1",
                            )
                            .and_then(|mut s| {
                                s.execute(params![
                                    f.id,
                                    at.as_micros(),
                                    cap(error, MAX_ERROR_CHARS),
                                    now
                                ])
                            })
                            .map_err(sqlite_err)?;
                        }
                        _ => finalize(tx, f.id, JobState::Failed, Some(error), now)?,
                    }
                }
                AttemptEnd::Cancelled => {
                    close_attempt(tx, f.id, attempt, now, AttemptOutcome::Cancelled, None)?;
                    finalize(tx, f.id, JobState::Cancelled, None, now)?;
                }
                AttemptEnd::Interrupted { reason } => {
                    close_attempt(
                        tx,
                        f.id,
                        attempt,
                        now,
                        AttemptOutcome::Interrupted,
                        Some(reason),
                    )?;
                    let interruptions = interruptions + 1;
                    tx.prepare_cached("UPDATE jobs SET interruptions = ?2 WHERE id = ?1")
                        .and_then(|mut s| s.execute(params![f.id, interruptions]))
                        .map_err(sqlite_err)?;
                    if cancel_requested != 0 {
                        finalize(tx, f.id, JobState::Cancelled, None, now)?;
                    } else if interruptions >= int(MAX_INTERRUPTIONS) {
                        let why = format!(
                            "cut off {interruptions} times while running; not taken up again"
                        );
                        finalize(tx, f.id, JobState::Failed, Some(&why), now)?;
                    } else {
                        tx.prepare_cached(
                            "UPDATE jobs SET state = 'pending', run_after = ?2, updated_at = ?2,
                                    lease_owner = NULL, lease_until = NULL
                             WHERE id = ?1",
                        )
                        .and_then(|mut s| s.execute(params![f.id, now]))
                        .map_err(sqlite_err)?;
                    }
                }
            }
            job_by_id(tx, f.id)
        })
        .await
    }

    async fn cancel_job(
        &self,
        id: i64,
        now: Timestamp,
    ) -> Result<Option<CancelOutcome>, StoreError> {
        self.write_tx(move |tx| {
            let Some(job) = job_by_id(tx, id)? else {
                return Ok(None);
            };
            let now = now.as_micros();
            Ok(Some(match job.state {
                JobState::Pending => {
                    tx.prepare_cached("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1")
                        .and_then(|mut s| s.execute([id]))
                        .map_err(sqlite_err)?;
                    finalize(tx, id, JobState::Cancelled, None, now)?;
                    CancelOutcome::Cancelled(must_job(tx, id)?)
                }
                JobState::Running => {
                    tx.prepare_cached(
                        "UPDATE jobs SET cancel_requested = 1, updated_at = ?2 WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![id, now]))
                    .map_err(sqlite_err)?;
                    CancelOutcome::Requested(must_job(tx, id)?)
                }
                _ => CancelOutcome::Finished(job),
            }))
        })
        .await
    }

    async fn retry_job(
        &self,
        id: i64,
        extra_attempts: u32,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        self.write_tx(move |tx| {
            let Some(job) = job_by_id(tx, id)? else {
                return Ok(None);
            };
            if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
                return Ok(Some(job));
            }
            tx.prepare_cached(
                "UPDATE jobs SET state = 'pending', run_after = ?2, updated_at = ?2,
                        max_attempts = failures + ?3, cancel_requested = 0, finished_at = NULL,
                        progress = 0, progress_message = NULL, interruptions = 0
                 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, now.as_micros(), int(extra_attempts.max(1))]))
            .map_err(sqlite_err)?;
            job_by_id(tx, id)
        })
        .await
    }

    async fn job_attempts(&self, id: i64) -> Result<Vec<JobAttempt>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ATTEMPT_SELECT_COLUMNS} FROM job_attempts WHERE job_id = ?1 ORDER BY attempt"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([id], |r| {
                    Ok(AttemptColumns {
                        job_id: r.get(0)?,
                        attempt: r.get(1)?,
                        worker: r.get(2)?,
                        started_at: r.get(3)?,
                        finished_at: r.get(4)?,
                        outcome: r.get(5)?,
                        error: r.get(6)?,
                    })
                })
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_attempt())
                .collect()
        })
        .await
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
        let lines: Vec<(i64, &'static str, String)> = lines
            .iter()
            .map(|l| {
                (
                    l.ts.as_micros(),
                    l.level.as_str(),
                    cap(&l.message, MAX_LOG_CHARS),
                )
            })
            .collect();
        self.write_tx(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO job_logs (job_id, attempt, ts, level, message)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sqlite_err)?;
            for (ts, level, message) in &lines {
                stmt.execute(params![id, int(attempt), ts, level, message])
                    .map_err(sqlite_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn job_logs(
        &self,
        id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Page<JobLogLine>, StoreError> {
        let fetch = i64::from(clamp_limit(limit)) + 1;
        let items = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id, job_id, attempt, ts, level, message FROM job_logs
                         WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                    )
                    .map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(params![id, after_id, fetch], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i32>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    })
                    .map_err(sqlite_err)?;
                rows.map(|r| {
                    let (id, job, attempt, ts, level, message) = r.map_err(sqlite_err)?;
                    log_line(id, job, attempt, ts, &level, message)
                })
                .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(items, limit, |l| Cursor {
            ts: l.ts.as_micros(),
            id: l.id,
        }))
    }

    async fn delete_job_logs(&self, id: i64) -> Result<u64, StoreError> {
        self.write_tx(move |tx| {
            tx.prepare_cached("DELETE FROM job_logs WHERE job_id = ?1")
                .and_then(|mut s| s.execute([id]))
                .map(|n| n as u64)
                .map_err(sqlite_err)
        })
        .await
    }

    async fn delete_finished_job_logs(&self) -> Result<u64, StoreError> {
        self.write_tx(move |tx| {
            tx.execute(
                &format!(
                    "DELETE FROM job_logs WHERE job_id IN
                     (SELECT id FROM jobs WHERE state IN {FINISHED})"
                ),
                [],
            )
            .map(|n| n as u64)
            .map_err(sqlite_err)
        })
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
        let values: Vec<(i64, String)> = values
            .iter()
            .map(|(ts, v)| (ts.as_micros(), json_text(v)))
            .collect();
        self.write_tx(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO job_outputs (job_id, attempt, ts, value) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sqlite_err)?;
            for (ts, value) in &values {
                stmt.execute(params![id, int(attempt), ts, value])
                    .map_err(sqlite_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn job_outputs(
        &self,
        id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Page<JobOutput>, StoreError> {
        let fetch = i64::from(clamp_limit(limit)) + 1;
        let items = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id, job_id, attempt, ts, value FROM job_outputs
                         WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                    )
                    .map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(params![id, after_id, fetch], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i32>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    })
                    .map_err(sqlite_err)?;
                rows.map(|r| {
                    let (id, job, attempt, ts, value) = r.map_err(sqlite_err)?;
                    output(id, job, attempt, ts, &value)
                })
                .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(items, limit, |o| Cursor {
            ts: o.ts.as_micros(),
            id: o.id,
        }))
    }

    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(sqlite_err)?;
            let mut counts = JobCounts::default();
            for row in rows {
                let (state, n) = row.map_err(sqlite_err)?;
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
        })
        .await
    }

    async fn create_schedule(
        &self,
        schedule: &NewSchedule,
        now: Timestamp,
    ) -> Result<Schedule, StoreError> {
        let s = schedule.clone();
        self.write_tx(move |tx| {
            let id = insert_schedule(tx, &s, now.as_micros())?;
            schedule_by_id(tx, id)?
                .ok_or_else(|| StoreError::Database(format!("schedule {id} vanished")))
        })
        .await
    }

    async fn update_schedule(
        &self,
        id: i64,
        schedule: &NewSchedule,
        now: Timestamp,
    ) -> Result<Option<Schedule>, StoreError> {
        let s = schedule.clone();
        self.write_tx(move |tx| {
            let n = replace_schedule(tx, id, &s, now.as_micros())?;
            if n == 0 {
                return Ok(None);
            }
            schedule_by_id(tx, id)
        })
        .await
    }

    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError> {
        self.write_tx(move |tx| {
            tx.prepare_cached("DELETE FROM job_schedules WHERE id = ?1")
                .and_then(|mut s| s.execute([id]))
                .map(|n| n > 0)
                .map_err(sqlite_err)
        })
        .await
    }

    async fn get_schedule(&self, id: i64) -> Result<Option<Schedule>, StoreError> {
        self.read(move |conn| schedule_by_id(conn, id)).await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.read(|conn| {
            schedules(
                conn,
                &format!("SELECT {SCHEDULE_SELECT_COLUMNS} FROM job_schedules ORDER BY name"),
                &[],
            )
        })
        .await
    }

    async fn sync_config_schedules(
        &self,
        wanted: &[NewSchedule],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let wanted = wanted.to_vec();
        self.write_tx(move |tx| {
            let now = now.as_micros();
            let stored: HashMap<String, Schedule> = schedules(
                tx,
                &format!("SELECT {SCHEDULE_SELECT_COLUMNS} FROM job_schedules"),
                &[],
            )?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
            for s in &wanted {
                match stored.get(&s.name) {
                    Some(old) if old.origin == ScheduleOrigin::Api => {
                        return Err(StoreError::Conflict(format!(
                            "schedule name '{}' is used by a schedule created through the API",
                            s.name
                        )));
                    }
                    Some(old) if same_definition(old, s) => {}
                    Some(old) => {
                        replace_schedule(tx, old.id, s, now)?;
                    }
                    None => {
                        insert_schedule(tx, s, now)?;
                    }
                }
            }
            for old in stored.values() {
                if old.origin == ScheduleOrigin::Config
                    && !wanted.iter().any(|s| s.name == old.name)
                {
                    tx.prepare_cached("DELETE FROM job_schedules WHERE id = ?1")
                        .and_then(|mut st| st.execute([old.id]))
                        .map_err(sqlite_err)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn due_schedules(&self, now: Timestamp) -> Result<Vec<Schedule>, StoreError> {
        self.read(move |conn| {
            schedules(
                conn,
                &format!(
                    "SELECT {SCHEDULE_SELECT_COLUMNS} FROM job_schedules
                     WHERE enabled = 1 AND next_run_at <= ?1 ORDER BY next_run_at, id"
                ),
                &[&now.as_micros()],
            )
        })
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
        let job = job.clone();
        self.write_tx(move |tx| {
            let now = now.as_micros();
            let moved = tx
                .prepare_cached(
                    "UPDATE job_schedules SET next_run_at = ?3, last_run_at = ?4
                     WHERE id = ?1 AND next_run_at = ?2 AND enabled = 1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        expected.as_micros(),
                        next.map(Timestamp::as_micros),
                        now
                    ])
                })
                .map_err(sqlite_err)?;
            if moved == 0 {
                return Ok(None);
            }
            let job_id = insert_job(tx, &job, now)?;
            tx.prepare_cached("UPDATE job_schedules SET last_job_id = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, job_id]))
                .map_err(sqlite_err)?;
            job_by_id(tx, job_id)
        })
        .await
    }
}

fn insert_schedule(tx: &Connection, s: &NewSchedule, now: i64) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO job_schedules (name, kind, params, cron, timezone, enabled, origin,
                created_by, created_at, updated_at, next_run_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
    )
    .and_then(|mut st| {
        st.execute(params![
            cap(&s.name, MAX_NAME_CHARS),
            s.kind,
            json_text(&s.params),
            s.cron,
            s.timezone,
            i32::from(s.enabled),
            s.origin.as_str(),
            cap(&s.created_by, MAX_NAME_CHARS),
            now,
            s.next_run_at.map(Timestamp::as_micros),
        ])
    })
    .map_err(|e| unique_violation(e, &format!("schedule '{}'", s.name)))?;
    Ok(tx.last_insert_rowid())
}

fn replace_schedule(
    tx: &Connection,
    id: i64,
    s: &NewSchedule,
    now: i64,
) -> Result<usize, StoreError> {
    tx.prepare_cached(
        "UPDATE job_schedules SET name = ?2, kind = ?3, params = ?4, cron = ?5, timezone = ?6,
                enabled = ?7, updated_at = ?8, next_run_at = ?9
         WHERE id = ?1",
    )
    .and_then(|mut st| {
        st.execute(params![
            id,
            cap(&s.name, MAX_NAME_CHARS),
            s.kind,
            json_text(&s.params),
            s.cron,
            s.timezone,
            i32::from(s.enabled),
            now,
            s.next_run_at.map(Timestamp::as_micros),
        ])
    })
    .map_err(|e| unique_violation(e, &format!("schedule '{}'", s.name)))
}
