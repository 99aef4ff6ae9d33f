//! [`PostureStore`] for the SQLite backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use rusqlite::{Row, TransactionBehavior, params};

use super::{SqliteStore, lock, params_of, sqlite_err};
use crate::codec::posture::{
    RESULT_SELECT_COLUMNS, ResultColumns, ResultColumnsIn, RunColumns, credential, run_counts,
};
use crate::sqlgen::{self, Dialect};
use crate::{
    CredentialUse, Cursor, NewPostureRun, Page, PostureResult, PostureRun, PostureRunQuery,
    PostureStore, StoreError, StoredPostureResult,
};

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<RunColumns> {
    Ok(RunColumns {
        id: r.get(0)?,
        started_at: r.get(1)?,
        finished_at: r.get(2)?,
        cause: r.get(3)?,
        score: r.get(4)?,
        passed: r.get(5)?,
        warned: r.get(6)?,
        failed: r.get(7)?,
        skipped: r.get(8)?,
    })
}

/// A result row, its columns starting at `at`.
fn result_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<ResultColumns> {
    Ok(ResultColumns {
        check_id: r.get(at)?,
        title: r.get(at + 1)?,
        status: r.get(at + 2)?,
        severity: r.get(at + 3)?,
        checked: r.get(at + 4)?,
        found: r.get(at + 5)?,
        fix: r.get(at + 6)?,
        detail: r.get(at + 7)?,
    })
}

#[async_trait]
impl PostureStore for SqliteStore {
    async fn insert_posture_run(&self, run: &NewPostureRun) -> Result<i64, StoreError> {
        let counts = run_counts(run);
        let results: Vec<ResultColumnsIn> = run.results.iter().map(ResultColumnsIn::new).collect();
        let (started, finished) = (run.started_at.as_micros(), run.finished_at.as_micros());
        let cause = run.cause.clone();
        let score = run.score.map(i64::from);
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            tx.prepare_cached(
                "INSERT INTO posture_runs (started_at, finished_at, cause, score, passed, warned, \
                 failed, skipped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    started, finished, cause, score, counts[0], counts[1], counts[2], counts[3]
                ])
            })
            .map_err(sqlite_err)?;
            let id = tx.last_insert_rowid();
            {
                let mut insert = tx
                    .prepare_cached(&format!(
                        "INSERT INTO posture_results (run_id, {RESULT_SELECT_COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                    ))
                    .map_err(sqlite_err)?;
                for r in &results {
                    insert
                        .execute(params![
                            id, r.check_id, r.title, r.status, r.severity, r.checked, r.found,
                            r.fix, r.detail
                        ])
                        .map_err(sqlite_err)?;
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(id)
        })
        .await
    }

    async fn latest_posture_results(&self) -> Result<Vec<StoredPostureResult>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT r.run_id, p.finished_at, {cols} FROM posture_results r \
                     JOIN posture_runs p ON p.id = r.run_id \
                     WHERE r.run_id = (SELECT max(run_id) FROM posture_results l \
                                       WHERE l.check_id = r.check_id) \
                     ORDER BY r.check_id",
                    cols = RESULT_SELECT_COLUMNS
                        .split(", ")
                        .map(|c| format!("r.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        result_from_row(r, 2)?,
                    ))
                })
                .map_err(sqlite_err)?;
            rows.map(|row| {
                let (run_id, at, cols) = row.map_err(sqlite_err)?;
                Ok(StoredPostureResult {
                    run_id,
                    checked_at: Timestamp(at),
                    result: cols.into_result()?,
                })
            })
            .collect()
        })
        .await
    }

    async fn posture_run_results(&self, run_id: i64) -> Result<Vec<PostureResult>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {RESULT_SELECT_COLUMNS} FROM posture_results WHERE run_id = ?1 \
                     ORDER BY check_id"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([run_id], |r| result_from_row(r, 0))
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_result()).collect()
        })
        .await
    }

    async fn posture_runs(&self, query: &PostureRunQuery) -> Result<Page<PostureRun>, StoreError> {
        let sql = sqlgen::posture_runs_query(Dialect::Sqlite, query);
        let limit = query.limit;
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], run_from_row)
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err)?.into_run())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(rows, limit, |r| Cursor {
            ts: r.started_at.as_micros(),
            id: r.id,
        }))
    }

    async fn prune_posture_runs(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before = before.as_micros();
        self.blocking(move |inner| {
            let n = lock(&inner.writer)
                .prepare_cached(
                    "DELETE FROM posture_runs WHERE started_at < ?1 AND id NOT IN \
                     (SELECT max(run_id) FROM posture_results GROUP BY check_id)",
                )
                .and_then(|mut s| s.execute([before]))
                .map_err(sqlite_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn record_login(&self, user_id: i64, at: Timestamp) -> Result<(), StoreError> {
        let at = at.as_micros();
        self.blocking(move |inner| {
            lock(&inner.writer)
                .prepare_cached(
                    "INSERT INTO user_logins (user_id, last_login_at) VALUES (?1, ?2) \
                     ON CONFLICT (user_id) DO UPDATE SET last_login_at = \
                     max(user_logins.last_login_at, excluded.last_login_at)",
                )
                .and_then(|mut s| s.execute(params![user_id, at]))
                .map_err(sqlite_err)?;
            Ok(())
        })
        .await
    }

    async fn credential_use(&self) -> Result<Vec<CredentialUse>, StoreError> {
        let sql = sqlgen::credentials_query(Dialect::Sqlite);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                    ))
                })
                .map_err(sqlite_err)?;
            rows.map(|r| {
                let (kind, id, name, role, created, used) = r.map_err(sqlite_err)?;
                credential(kind, id, name, role, created, used)
            })
            .collect()
        })
        .await
    }
}
