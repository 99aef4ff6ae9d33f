//! [`DecisionStore`] for the SQLite backend.
//!
//! A child module of `sqlite` so that it shares that backend's connection handling:
//! writes go through the single writer connection (so two writes of the same decision
//! never race), reads through the reader pool. Values pass through the shared decision
//! codec, exactly as in the PostgreSQL backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::decision::{Decision, DecisionKind, NewDecision, PutOutcome, later};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, lock, params_of, sqlite_err};
use crate::codec::decisions::{
    DECISION_INSERT_COLUMNS, DECISION_SELECT_COLUMNS, DecisionColumns, DecisionColumnsIn, EXPIRY,
    cap_text,
};
use crate::sqlgen::{self, Dialect};
use crate::{Cursor, DecisionQuery, DecisionStore, Page, StoreError};

fn decision_from_row(row: &Row<'_>) -> rusqlite::Result<DecisionColumns> {
    Ok(DecisionColumns {
        id: row.get(0)?,
        kind: row.get(1)?,
        scope: row.get(2)?,
        value: row.get(3)?,
        net_first: row.get(4)?,
        net_last: row.get(5)?,
        origin: row.get(6)?,
        scenario: row.get(7)?,
        created_by: row.get(8)?,
        threat_id: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
        expires_at: row.get(12)?,
        deleted_at: row.get(13)?,
        deleted_by: row.get(14)?,
    })
}

/// Runs a query returning decision rows.
fn decisions(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Decision>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite_err)?;
    let rows = stmt
        .query_map(params, decision_from_row)
        .map_err(sqlite_err)?;
    rows.map(|r| r.map_err(sqlite_err)?.into_decision())
        .collect()
}

/// The one row with this id, read on `conn`.
fn by_id(conn: &Connection, id: i64) -> Result<Decision, StoreError> {
    decisions(
        conn,
        &format!("SELECT {DECISION_SELECT_COLUMNS} FROM decisions WHERE id = ?1"),
        &[&id],
    )?
    .pop()
    .ok_or_else(|| StoreError::Database(format!("decision {id} vanished")))
}

#[async_trait]
impl DecisionStore for SqliteStore {
    async fn put_decision(
        &self,
        decision: &NewDecision,
        now: Timestamp,
    ) -> Result<(Decision, PutOutcome), StoreError> {
        let decision = decision.clone();
        let now = now.as_micros();
        self.blocking(move |inner| {
            let c = DecisionColumnsIn::new(&decision);
            let mut conn = lock(&inner.writer);
            // Dropping `tx` without commit (any `?` below) rolls everything back.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            tx.prepare_cached(
                "UPDATE decisions SET deleted_at = expires_at, deleted_by = ?4
                 WHERE kind = ?1 AND value = ?2 AND deleted_at IS NULL
                   AND expires_at IS NOT NULL AND expires_at <= ?3",
            )
            .and_then(|mut s| s.execute(params![c.kind, c.value, now, EXPIRY]))
            .map_err(sqlite_err)?;
            let live = tx
                .prepare_cached(
                    "SELECT id, expires_at FROM decisions
                     WHERE kind = ?1 AND value = ?2 AND deleted_at IS NULL",
                )
                .and_then(|mut s| {
                    s.query_row(params![c.kind, c.value], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
                    })
                    .optional()
                })
                .map_err(sqlite_err)?;
            let (id, outcome) = match live {
                Some((id, expires)) => {
                    if later(c.expires_at.map(Timestamp), expires.map(Timestamp)) {
                        tx.prepare_cached(
                            "UPDATE decisions SET expires_at = ?2, updated_at = ?3 WHERE id = ?1",
                        )
                        .and_then(|mut s| s.execute(params![id, c.expires_at, now]))
                        .map_err(sqlite_err)?;
                        (id, PutOutcome::Extended)
                    } else {
                        (id, PutOutcome::Unchanged)
                    }
                }
                None => {
                    tx.prepare_cached(&format!(
                        "INSERT INTO decisions ({DECISION_INSERT_COLUMNS}) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)"
                    ))
                    .and_then(|mut s| {
                        s.execute(params![
                            c.kind,
                            c.scope,
                            c.value,
                            &c.net_first[..],
                            &c.net_last[..],
                            c.origin,
                            &*c.scenario,
                            &*c.created_by,
                            c.threat_id,
                            now,
                            c.expires_at,
                        ])
                    })
                    .map_err(|e| match &e {
                        rusqlite::Error::SqliteFailure(f, _)
                            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
                        {
                            StoreError::Conflict(format!("decision {} {}", c.kind, c.value))
                        }
                        _ => sqlite_err(e),
                    })?;
                    (tx.last_insert_rowid(), PutOutcome::Created)
                }
            };
            let stored = by_id(&tx, id)?;
            tx.commit().map_err(sqlite_err)?;
            Ok((stored, outcome))
        })
        .await
    }

    async fn query_decisions(&self, query: &DecisionQuery) -> Result<Page<Decision>, StoreError> {
        let sql = sqlgen::decisions_query(Dialect::Sqlite, query);
        let items = self
            .read(move |conn| decisions(conn, &sql.text, &params_of(&sql)))
            .await?;
        Ok(sqlgen::into_page(items, query.limit, |d| Cursor {
            ts: d.created_at.as_micros(),
            id: d.id,
        }))
    }

    async fn get_decision(&self, id: i64) -> Result<Option<Decision>, StoreError> {
        self.read(move |conn| {
            Ok(decisions(
                conn,
                &format!("SELECT {DECISION_SELECT_COLUMNS} FROM decisions WHERE id = ?1"),
                &[&id],
            )?
            .pop())
        })
        .await
    }

    async fn delete_decision(
        &self,
        id: i64,
        at: Timestamp,
        by: &str,
    ) -> Result<Option<Decision>, StoreError> {
        let by = cap_text(by);
        let at = at.as_micros();
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            let changed = conn
                .prepare_cached(
                    "UPDATE decisions SET deleted_at = ?2, deleted_by = ?3, updated_at = ?2
                     WHERE id = ?1 AND deleted_at IS NULL
                       AND (expires_at IS NULL OR expires_at > ?2)",
                )
                .and_then(|mut s| s.execute(params![id, at, by]))
                .map_err(sqlite_err)?;
            if changed == 0 {
                return Ok(None);
            }
            by_id(&conn, id).map(Some)
        })
        .await
    }

    async fn active_decisions(
        &self,
        now: Timestamp,
        kind: Option<DecisionKind>,
    ) -> Result<Vec<Decision>, StoreError> {
        let now = now.as_micros();
        self.read(move |conn| {
            let live = "deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)";
            match kind {
                Some(kind) => decisions(
                    conn,
                    &format!(
                        "SELECT {DECISION_SELECT_COLUMNS} FROM decisions \
                         WHERE {live} AND kind = ?2 ORDER BY id"
                    ),
                    &[&now, &kind.as_str()],
                ),
                None => decisions(
                    conn,
                    &format!(
                        "SELECT {DECISION_SELECT_COLUMNS} FROM decisions WHERE {live} ORDER BY id"
                    ),
                    &[&now],
                ),
            }
        })
        .await
    }

    async fn decision_changes(
        &self,
        since: Timestamp,
        now: Timestamp,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Decision>, StoreError> {
        let (since, now, limit) = (since.as_micros(), now.as_micros(), i64::from(limit));
        self.read(move |conn| {
            decisions(
                conn,
                &format!(
                    "SELECT {DECISION_SELECT_COLUMNS} FROM decisions WHERE id > ?3 AND id IN (
                         SELECT id FROM decisions WHERE updated_at > ?1
                         UNION
                         SELECT id FROM decisions WHERE expires_at > ?1 AND expires_at <= ?2
                     ) ORDER BY id LIMIT ?4"
                ),
                &[&since, &now, &after_id, &limit],
            )
        })
        .await
    }

    async fn decisions_fingerprint(&self) -> Result<(i64, i64, i64), StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT coalesce((SELECT max(id) FROM decisions), 0),
                        coalesce((SELECT max(updated_at) FROM decisions), 0),
                        (SELECT count(*) FROM decisions WHERE deleted_at IS NULL)",
            )
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
            .map_err(sqlite_err)
        })
        .await
    }

    async fn expire_decisions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let now = now.as_micros();
        self.blocking(move |inner| {
            let n = lock(&inner.writer)
                .prepare_cached(
                    "UPDATE decisions SET deleted_at = expires_at, deleted_by = ?2
                     WHERE deleted_at IS NULL AND expires_at <= ?1",
                )
                .and_then(|mut s| s.execute(params![now, EXPIRY]))
                .map_err(sqlite_err)?;
            Ok(n as u64)
        })
        .await
    }
}
