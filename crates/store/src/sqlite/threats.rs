//! [`ThreatStore`] for the SQLite backend.
//!
//! A child module of `sqlite` so that it shares that backend's connection handling:
//! writes go through the single writer connection, reads through the reader pool, all on
//! Tokio's blocking pool. Values pass through the shared threat codec, exactly as in the
//! PostgreSQL backend, so that both store (and find) the same thing.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::threat::{StoredThreat, Threat};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, count, lock, params_of, sqlite_err};
use crate::codec::clean;
use crate::codec::threats::{
    THREAT_INSERT_COLUMNS, THREAT_SELECT_COLUMNS, ThreatColumns, ThreatColumnsIn, bucket_label,
    bucket_micros, rule_id_from_i32, rule_id_to_i32,
};
use crate::sqlgen::{self, Dialect};
use crate::{Count, Cursor, Page, StoreError, ThreatQuery, ThreatStats, ThreatStore};

fn threat_from_row(row: &Row<'_>) -> rusqlite::Result<ThreatColumns> {
    Ok(ThreatColumns {
        id: row.get(0)?,
        ts: row.get(1)?,
        category: row.get(2)?,
        severity: row.get(3)?,
        score: row.get(4)?,
        client_ip: row.get(5)?,
        method: row.get(6)?,
        uri: row.get(7)?,
        source: row.get(8)?,
        event_id: row.get(9)?,
        decision: row.get(10)?,
        evidence: row.get(11)?,
        rule_ids: row.get(12)?,
        tags: row.get(13)?,
    })
}

/// Inserts every threat (and its rule rows) inside the open transaction `tx`.
fn insert_in(tx: &rusqlite::Transaction<'_>, threats: &[Threat]) -> Result<Vec<i64>, StoreError> {
    let mut insert = tx
        .prepare_cached(&format!(
            "INSERT INTO threats ({THREAT_INSERT_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))
        .map_err(sqlite_err)?;
    let mut rule = tx
        .prepare_cached("INSERT INTO threat_rules (threat_id, rule_id, ts) VALUES (?1, ?2, ?3)")
        .map_err(sqlite_err)?;
    let mut ids = Vec::with_capacity(threats.len());
    for t in threats {
        let c = ThreatColumnsIn::new(t)?;
        insert
            .execute(params![
                c.ts,
                &*c.category,
                &*c.severity,
                c.score,
                c.client_ip.as_ref().map(|k| &k[..]),
                c.method.as_deref(),
                c.uri.as_deref(),
                &*c.source,
                c.event_id,
                &*c.decision,
                c.evidence,
                c.rule_ids,
                c.tags,
            ])
            .map_err(sqlite_err)?;
        let id = tx.last_insert_rowid();
        for rule_id in &c.distinct_rules {
            rule.execute(params![id, rule_id, c.ts])
                .map_err(sqlite_err)?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// `(key, count)` rows of one statistics query over `[from, to)`, the key read as `K`
/// and turned into a label by `label`.
fn counts<K: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    label: impl Fn(K) -> String,
) -> Result<Vec<Count>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite_err)?;
    let rows = stmt
        .query_map(params, |r| Ok((r.get::<_, K>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sqlite_err)?;
    rows.map(|r| {
        let (key, n) = r.map_err(sqlite_err)?;
        Ok(Count {
            key: label(key),
            count: count(n)?,
        })
    })
    .collect()
}

#[async_trait]
impl ThreatStore for SqliteStore {
    async fn insert_threats(&self, threats: &[Threat]) -> Result<Vec<i64>, StoreError> {
        if threats.is_empty() {
            return Ok(Vec::new());
        }
        let threats = threats.to_vec();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            // Dropping `tx` without commit (any `?` below) rolls everything back.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let n = insert_in(&tx, &threats)?;
            tx.commit().map_err(sqlite_err)?;
            Ok(n)
        })
        .await
    }

    async fn query_threats(&self, query: &ThreatQuery) -> Result<Page<StoredThreat>, StoreError> {
        let sql = sqlgen::threats_query(Dialect::Sqlite, query);
        let items = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], threat_from_row)
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err)?.into_stored())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(items, query.limit, |t| Cursor {
            ts: t.threat.ts.as_micros(),
            id: t.id,
        }))
    }

    async fn get_threat(&self, id: i64) -> Result<Option<StoredThreat>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {THREAT_SELECT_COLUMNS} FROM threats WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id], threat_from_row).optional())
            .map_err(sqlite_err)?
            .map(ThreatColumns::into_stored)
            .transpose()
        })
        .await
    }

    async fn count_threats_by_rule(&self, rule_ids: &[u32]) -> Result<Vec<Count>, StoreError> {
        let ids: Vec<i32> = rule_ids.iter().map(|id| rule_id_to_i32(*id)).collect();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT COUNT(*) FROM threat_rules WHERE rule_id = ?1")
                .map_err(sqlite_err)?;
            let mut out = Vec::new();
            for id in ids {
                let n: i64 = stmt.query_row([id], |r| r.get(0)).map_err(sqlite_err)?;
                if n > 0 {
                    out.push(Count {
                        key: rule_id_from_i32(id).to_string(),
                        count: count(n)?,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn threat_stats(
        &self,
        from: Timestamp,
        to: Timestamp,
        bucket_secs: i64,
    ) -> Result<ThreatStats, StoreError> {
        let q = sqlgen::threat_stats_queries(Dialect::Sqlite);
        let width = bucket_micros(bucket_secs);
        let (from, to) = (from.as_micros(), to.as_micros());
        self.read(move |conn| {
            let range: [&dyn rusqlite::ToSql; 2] = [&from, &to];
            let total: i64 = conn
                .prepare_cached(&q.total)
                .and_then(|mut s| s.query_row(&range[..], |r| r.get(0)))
                .map_err(sqlite_err)?;
            let text = |s: String| s;
            Ok(ThreatStats {
                total: count(total)?,
                by_category: counts(conn, &q.by_category, &range, text)?,
                by_severity: counts(conn, &q.by_severity, &range, text)?,
                by_rule: counts(conn, &q.by_rule, &range, |id: i32| {
                    rule_id_from_i32(id).to_string()
                })?,
                by_source: counts(conn, &q.by_source, &range, text)?,
                buckets: counts(conn, &q.buckets, &[&from, &to, &width], |b: i64| {
                    bucket_label(b, width)
                })?,
            })
        })
        .await
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = clean(key).into_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")
                .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
                .map_err(sqlite_err)
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let key = clean(key).into_owned();
        let value = clean(value).into_owned();
        let now = Timestamp::now().as_micros();
        self.blocking(move |inner| {
            lock(&inner.writer)
                .prepare_cached(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET
                         value = excluded.value, updated_at = excluded.updated_at",
                )
                .and_then(|mut s| s.execute(params![key, value, now]))
                .map_err(sqlite_err)?;
            Ok(())
        })
        .await
    }
}
