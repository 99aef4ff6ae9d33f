//! [`DecisionStore`] for the PostgreSQL backend.
//!
//! A child module of `postgres` so that it shares that backend's pool and error
//! mapping. Two processes writing the same decision at once are serialised by the
//! partial unique index: the loser gets `StoreError::Conflict` and retries. Values pass
//! through the shared decision codec, exactly as in the SQLite backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::decision::{Decision, DecisionKind, NewDecision, PutOutcome, later};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{PgStore, corrupt, pg_err};
use crate::codec::decisions::{
    DECISION_INSERT_COLUMNS, DECISION_SELECT_COLUMNS, DecisionColumns, DecisionColumnsIn, EXPIRY,
    cap_text,
};
use crate::sqlgen::{self, Dialect};
use crate::{Cursor, DecisionQuery, DecisionStore, Page, StoreError};

fn decision_from_row(r: &Row) -> Result<Decision, StoreError> {
    DecisionColumns {
        id: r.try_get(0).map_err(corrupt)?,
        kind: r.try_get(1).map_err(corrupt)?,
        scope: r.try_get(2).map_err(corrupt)?,
        value: r.try_get(3).map_err(corrupt)?,
        net_first: r.try_get(4).map_err(corrupt)?,
        net_last: r.try_get(5).map_err(corrupt)?,
        origin: r.try_get(6).map_err(corrupt)?,
        scenario: r.try_get(7).map_err(corrupt)?,
        created_by: r.try_get(8).map_err(corrupt)?,
        threat_id: r.try_get(9).map_err(corrupt)?,
        created_at: r.try_get(10).map_err(corrupt)?,
        updated_at: r.try_get(11).map_err(corrupt)?,
        expires_at: r.try_get(12).map_err(corrupt)?,
        deleted_at: r.try_get(13).map_err(corrupt)?,
        deleted_by: r.try_get(14).map_err(corrupt)?,
    }
    .into_decision()
}

fn rows_to_decisions(rows: &[Row]) -> Result<Vec<Decision>, StoreError> {
    rows.iter().map(decision_from_row).collect()
}

impl PgStore {
    /// Runs a query returning decision rows.
    async fn decisions(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Decision>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        let rows = client.query(&stmt, params).await.map_err(pg_err)?;
        rows_to_decisions(&rows)
    }
}

#[async_trait]
impl DecisionStore for PgStore {
    async fn put_decision(
        &self,
        decision: &NewDecision,
        now: Timestamp,
    ) -> Result<(Decision, PutOutcome), StoreError> {
        let c = DecisionColumnsIn::new(decision);
        let now = now.as_micros();
        let (kind, value): (&str, &str) = (c.kind, &c.value);
        let mut client = self.client().await?;
        // Dropping `tx` without commit (any `?` below, or a dropped future) rolls back.
        let tx = client.transaction().await.map_err(pg_err)?;
        let stale = tx
            .prepare_cached(
                "UPDATE decisions SET deleted_at = expires_at, deleted_by = $4
                 WHERE kind = $1 AND value = $2 AND deleted_at IS NULL
                   AND expires_at IS NOT NULL AND expires_at <= $3",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&stale, &[&kind, &value, &now, &EXPIRY])
            .await
            .map_err(pg_err)?;
        // FOR UPDATE: a concurrent extension of the same row waits for this one.
        let find = tx
            .prepare_cached(
                "SELECT id, expires_at FROM decisions
                 WHERE kind = $1 AND value = $2 AND deleted_at IS NULL FOR UPDATE",
            )
            .await
            .map_err(pg_err)?;
        let live = tx
            .query_opt(&find, &[&kind, &value])
            .await
            .map_err(pg_err)?
            .map(|r| -> Result<(i64, Option<i64>), StoreError> {
                Ok((
                    r.try_get(0).map_err(corrupt)?,
                    r.try_get(1).map_err(corrupt)?,
                ))
            })
            .transpose()?;
        let (id, outcome) = match live {
            Some((id, expires)) => {
                if later(c.expires_at.map(Timestamp), expires.map(Timestamp)) {
                    let extend = tx
                        .prepare_cached(
                            "UPDATE decisions SET expires_at = $2, updated_at = $3 WHERE id = $1",
                        )
                        .await
                        .map_err(pg_err)?;
                    tx.execute(&extend, &[&id, &c.expires_at, &now])
                        .await
                        .map_err(pg_err)?;
                    (id, PutOutcome::Extended)
                } else {
                    (id, PutOutcome::Unchanged)
                }
            }
            None => {
                let insert = tx
                    .prepare_cached(&format!(
                        "INSERT INTO decisions ({DECISION_INSERT_COLUMNS}) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING id"
                    ))
                    .await
                    .map_err(pg_err)?;
                let (scope, origin, scenario, created_by): (&str, &str, &str, &str) =
                    (c.scope, c.origin, &c.scenario, &c.created_by);
                let row = tx
                    .query_one(
                        &insert,
                        &[
                            &kind,
                            &scope,
                            &value,
                            &&c.net_first[..],
                            &&c.net_last[..],
                            &origin,
                            &scenario,
                            &created_by,
                            &c.threat_id,
                            &now,
                            &c.expires_at,
                        ],
                    )
                    .await
                    .map_err(|e| {
                        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                            StoreError::Conflict(format!("decision {kind} {value}"))
                        } else {
                            pg_err(e)
                        }
                    })?;
                (row.try_get(0).map_err(corrupt)?, PutOutcome::Created)
            }
        };
        let select = tx
            .prepare_cached(&format!(
                "SELECT {DECISION_SELECT_COLUMNS} FROM decisions WHERE id = $1"
            ))
            .await
            .map_err(pg_err)?;
        let row = tx.query_one(&select, &[&id]).await.map_err(pg_err)?;
        let stored = decision_from_row(&row)?;
        tx.commit().await.map_err(pg_err)?;
        Ok((stored, outcome))
    }

    async fn query_decisions(&self, query: &DecisionQuery) -> Result<Page<Decision>, StoreError> {
        let sql = sqlgen::decisions_query(Dialect::Postgres, query);
        let rows = self.query_generated(&sql).await?;
        let items = rows_to_decisions(&rows)?;
        Ok(sqlgen::into_page(items, query.limit, |d| Cursor {
            ts: d.created_at.as_micros(),
            id: d.id,
        }))
    }

    async fn get_decision(&self, id: i64) -> Result<Option<Decision>, StoreError> {
        Ok(self
            .decisions(
                &format!("SELECT {DECISION_SELECT_COLUMNS} FROM decisions WHERE id = $1"),
                &[&id],
            )
            .await?
            .pop())
    }

    async fn delete_decision(
        &self,
        id: i64,
        at: Timestamp,
        by: &str,
    ) -> Result<Option<Decision>, StoreError> {
        let by = cap_text(by);
        let by: &str = &by;
        Ok(self
            .decisions(
                &format!(
                    "UPDATE decisions SET deleted_at = $2, deleted_by = $3, updated_at = $2
                     WHERE id = $1 AND deleted_at IS NULL
                       AND (expires_at IS NULL OR expires_at > $2)
                     RETURNING {DECISION_SELECT_COLUMNS}"
                ),
                &[&id, &at.as_micros(), &by],
            )
            .await?
            .pop())
    }

    async fn active_decisions(
        &self,
        now: Timestamp,
        kind: Option<DecisionKind>,
    ) -> Result<Vec<Decision>, StoreError> {
        let now = now.as_micros();
        let live = "deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $1)";
        match kind {
            Some(kind) => {
                self.decisions(
                    &format!(
                        "SELECT {DECISION_SELECT_COLUMNS} FROM decisions \
                         WHERE {live} AND kind = $2 ORDER BY id"
                    ),
                    &[&now, &kind.as_str()],
                )
                .await
            }
            None => {
                self.decisions(
                    &format!(
                        "SELECT {DECISION_SELECT_COLUMNS} FROM decisions WHERE {live} ORDER BY id"
                    ),
                    &[&now],
                )
                .await
            }
        }
    }

    async fn decision_changes(
        &self,
        since: Timestamp,
        now: Timestamp,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Decision>, StoreError> {
        self.decisions(
            &format!(
                "SELECT {DECISION_SELECT_COLUMNS} FROM decisions WHERE id > $3 AND id IN (
                     SELECT id FROM decisions WHERE updated_at > $1
                     UNION
                     SELECT id FROM decisions WHERE expires_at > $1 AND expires_at <= $2
                 ) ORDER BY id LIMIT $4"
            ),
            &[
                &since.as_micros(),
                &now.as_micros(),
                &after_id,
                &i64::from(limit),
            ],
        )
        .await
    }

    async fn decisions_fingerprint(&self) -> Result<(i64, i64, i64), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT coalesce((SELECT max(id) FROM decisions), 0),
                        coalesce((SELECT max(updated_at) FROM decisions), 0),
                        (SELECT count(*) FROM decisions WHERE deleted_at IS NULL)",
            )
            .await
            .map_err(pg_err)?;
        let row = client.query_one(&stmt, &[]).await.map_err(pg_err)?;
        Ok((
            row.try_get(0).map_err(corrupt)?,
            row.try_get(1).map_err(corrupt)?,
            row.try_get(2).map_err(corrupt)?,
        ))
    }

    async fn expire_decisions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE decisions SET deleted_at = expires_at, deleted_by = $2
                 WHERE deleted_at IS NULL AND expires_at <= $1",
            )
            .await
            .map_err(pg_err)?;
        client
            .execute(&stmt, &[&now.as_micros(), &EXPIRY])
            .await
            .map_err(pg_err)
    }
}
