//! [`PostureStore`] for the PostgreSQL backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use tokio_postgres::Row;

use super::{PgStore, corrupt, pg_err};
use crate::codec::posture::{
    RESULT_SELECT_COLUMNS, ResultColumns, ResultColumnsIn, RunColumns, credential, run_counts,
};
use crate::sqlgen::{self, Dialect};
use crate::{
    CredentialUse, Cursor, NewPostureRun, Page, PostureResult, PostureRun, PostureRunQuery,
    PostureStore, StoreError, StoredPostureResult,
};

fn run_from_row(r: &Row) -> Result<RunColumns, tokio_postgres::Error> {
    Ok(RunColumns {
        id: r.try_get(0)?,
        started_at: r.try_get(1)?,
        finished_at: r.try_get(2)?,
        cause: r.try_get(3)?,
        score: r.try_get(4)?,
        passed: r.try_get(5)?,
        warned: r.try_get(6)?,
        failed: r.try_get(7)?,
        skipped: r.try_get(8)?,
    })
}

/// A result row, its columns starting at `at`.
fn result_from_row(r: &Row, at: usize) -> Result<ResultColumns, tokio_postgres::Error> {
    Ok(ResultColumns {
        check_id: r.try_get(at)?,
        title: r.try_get(at + 1)?,
        status: r.try_get(at + 2)?,
        severity: r.try_get(at + 3)?,
        checked: r.try_get(at + 4)?,
        found: r.try_get(at + 5)?,
        fix: r.try_get(at + 6)?,
        detail: r.try_get(at + 7)?,
    })
}

#[async_trait]
impl PostureStore for PgStore {
    async fn insert_posture_run(&self, run: &NewPostureRun) -> Result<i64, StoreError> {
        let counts = run_counts(run);
        let results: Vec<ResultColumnsIn> = run.results.iter().map(ResultColumnsIn::new).collect();
        let cause = crate::codec::clean(&run.cause).into_owned();
        let score = run.score.map(i64::from);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let row = tx
            .query_one(
                "INSERT INTO posture_runs (started_at, finished_at, cause, score, passed, warned, \
                 failed, skipped) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &run.started_at.as_micros(),
                    &run.finished_at.as_micros(),
                    &cause,
                    &score,
                    &counts[0],
                    &counts[1],
                    &counts[2],
                    &counts[3],
                ],
            )
            .await
            .map_err(pg_err)?;
        let id: i64 = row.try_get(0).map_err(corrupt)?;
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO posture_results (run_id, {RESULT_SELECT_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .await
            .map_err(pg_err)?;
        for r in &results {
            tx.execute(
                &insert,
                &[
                    &id,
                    &r.check_id,
                    &r.title,
                    &r.status,
                    &r.severity,
                    &r.checked,
                    &r.found,
                    &r.fix,
                    &r.detail,
                ],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(id)
    }

    async fn latest_posture_results(&self) -> Result<Vec<StoredPostureResult>, StoreError> {
        let cols = RESULT_SELECT_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT r.run_id, p.finished_at, {cols} FROM posture_results r \
                     JOIN posture_runs p ON p.id = r.run_id \
                     WHERE r.run_id = (SELECT max(run_id) FROM posture_results l \
                                       WHERE l.check_id = r.check_id) \
                     ORDER BY r.check_id COLLATE \"C\""
                ),
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok(StoredPostureResult {
                    run_id: r.try_get(0).map_err(corrupt)?,
                    checked_at: Timestamp(r.try_get(1).map_err(corrupt)?),
                    result: result_from_row(r, 2).map_err(corrupt)?.into_result()?,
                })
            })
            .collect()
    }

    async fn posture_run_results(&self, run_id: i64) -> Result<Vec<PostureResult>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {RESULT_SELECT_COLUMNS} FROM posture_results WHERE run_id = $1 \
                     ORDER BY check_id COLLATE \"C\""
                ),
                &[&run_id],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| result_from_row(r, 0).map_err(corrupt)?.into_result())
            .collect()
    }

    async fn posture_runs(&self, query: &PostureRunQuery) -> Result<Page<PostureRun>, StoreError> {
        let sql = sqlgen::posture_runs_query(Dialect::Postgres, query);
        let rows = self.query_generated(&sql).await?;
        let items = rows
            .iter()
            .map(|r| run_from_row(r).map_err(corrupt)?.into_run())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, query.limit, |r| Cursor {
            ts: r.started_at.as_micros(),
            id: r.id,
        }))
    }

    async fn prune_posture_runs(&self, before: Timestamp) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM posture_runs WHERE started_at < $1 AND id NOT IN \
                 (SELECT max(run_id) FROM posture_results GROUP BY check_id)",
                &[&before.as_micros()],
            )
            .await
            .map_err(pg_err)
    }

    async fn record_login(&self, user_id: i64, at: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO user_logins (user_id, last_login_at) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET last_login_at = \
                 GREATEST(user_logins.last_login_at, excluded.last_login_at)",
                &[&user_id, &at.as_micros()],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn credential_use(&self) -> Result<Vec<CredentialUse>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(sqlgen::credentials_query(Dialect::Postgres).as_str(), &[])
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                credential(
                    r.try_get(0).map_err(corrupt)?,
                    r.try_get(1).map_err(corrupt)?,
                    r.try_get(2).map_err(corrupt)?,
                    r.try_get(3).map_err(corrupt)?,
                    r.try_get(4).map_err(corrupt)?,
                    r.try_get(5).map_err(corrupt)?,
                )
            })
            .collect()
    }
}
