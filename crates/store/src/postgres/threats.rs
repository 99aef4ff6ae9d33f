//! [`ThreatStore`] for the PostgreSQL backend.
//!
//! A child module of `postgres` so that it shares that backend's pool and error
//! mapping. Values pass through the shared threat codec (PostgreSQL rejects NUL in
//! text), exactly as in the SQLite backend, so that both store (and find) the same thing.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::threat::{StoredThreat, Threat};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSqlOwned, ToSql};

use super::{PgStore, corrupt, count, params_of, pg_err};
use crate::codec::clean;
use crate::codec::threats::{
    THREAT_INSERT_COLUMNS, THREAT_SELECT_COLUMNS, ThreatColumns, ThreatColumnsIn, bucket_label,
    bucket_micros, rule_id_from_i32, rule_id_to_i32,
};
use crate::sqlgen::{self, Dialect};
use crate::{Count, Cursor, Page, StoreError, ThreatQuery, ThreatStats, ThreatStore};

fn threat_from_row(r: &Row) -> Result<StoredThreat, StoreError> {
    ThreatColumns {
        id: r.try_get(0).map_err(corrupt)?,
        ts: r.try_get(1).map_err(corrupt)?,
        category: r.try_get(2).map_err(corrupt)?,
        severity: r.try_get(3).map_err(corrupt)?,
        score: i64::from(r.try_get::<_, i32>(4).map_err(corrupt)?),
        client_ip: r.try_get(5).map_err(corrupt)?,
        method: r.try_get(6).map_err(corrupt)?,
        uri: r.try_get(7).map_err(corrupt)?,
        source: r.try_get(8).map_err(corrupt)?,
        event_id: r.try_get(9).map_err(corrupt)?,
        decision: r.try_get(10).map_err(corrupt)?,
        evidence: r.try_get(11).map_err(corrupt)?,
        rule_ids: r.try_get(12).map_err(corrupt)?,
        tags: r.try_get(13).map_err(corrupt)?,
    }
    .into_stored()
}

/// `(key, count)` rows of one statistics query, the key read as `K` and turned into a
/// label by `label`.
async fn counts<K: FromSqlOwned>(
    client: &deadpool_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    label: impl Fn(K) -> String,
) -> Result<Vec<Count>, StoreError> {
    let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
    let rows = client.query(&stmt, params).await.map_err(pg_err)?;
    rows.iter()
        .map(|r| {
            Ok(Count {
                key: label(r.try_get::<_, K>(0).map_err(corrupt)?),
                count: count(r.try_get(1).map_err(corrupt)?)?,
            })
        })
        .collect()
}

/// Advisory lock key held by threat writers until commit, so that threat ids commit in
/// order across nodes (the analytics roll-up follows them by id: it reads the largest
/// id under this lock, when no write that took a smaller one is still in flight).
pub(super) const THREAT_ID_LOCK: i64 = 0x7061_6c69_7468_7274;

#[async_trait]
impl ThreatStore for PgStore {
    async fn insert_threats(&self, threats: &[Threat]) -> Result<Vec<i64>, StoreError> {
        if threats.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        // Dropping `tx` without commit (any `?` below, or a dropped future) rolls back.
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&THREAT_ID_LOCK])
            .await
            .map_err(pg_err)?;
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO threats ({THREAT_INSERT_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id"
            ))
            .await
            .map_err(pg_err)?;
        let rule = tx
            .prepare_cached("INSERT INTO threat_rules (threat_id, rule_id, ts) VALUES ($1, $2, $3)")
            .await
            .map_err(pg_err)?;
        let mut ids = Vec::with_capacity(threats.len());
        for t in threats {
            let c = ThreatColumnsIn::new(t)?;
            let (category, severity, source, decision): (&str, &str, &str, &str) =
                (&c.category, &c.severity, &c.source, &c.decision);
            let row = tx
                .query_one(
                    &insert,
                    &[
                        &c.ts,
                        &category,
                        &severity,
                        &c.score,
                        &c.client_ip.as_ref().map(|k| &k[..]),
                        &c.method.as_deref(),
                        &c.uri.as_deref(),
                        &source,
                        &c.event_id,
                        &decision,
                        &c.evidence,
                        &c.rule_ids,
                        &c.tags,
                    ],
                )
                .await
                .map_err(pg_err)?;
            let id: i64 = row.try_get(0).map_err(corrupt)?;
            for rule_id in &c.distinct_rules {
                tx.execute(&rule, &[&id, rule_id, &c.ts])
                    .await
                    .map_err(pg_err)?;
            }
            ids.push(id);
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(ids)
    }

    async fn query_threats(&self, query: &ThreatQuery) -> Result<Page<StoredThreat>, StoreError> {
        let sql = sqlgen::threats_query(Dialect::Postgres, query);
        let client = self.client().await?;
        let rows = client
            .query(sql.text.as_str(), &params_of(&sql))
            .await
            .map_err(pg_err)?;
        let items = rows
            .iter()
            .map(threat_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, query.limit, |t| Cursor {
            ts: t.threat.ts.as_micros(),
            id: t.id,
        }))
    }

    async fn get_threat(&self, id: i64) -> Result<Option<StoredThreat>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {THREAT_SELECT_COLUMNS} FROM threats WHERE id = $1"
            ))
            .await
            .map_err(pg_err)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(pg_err)?;
        row.as_ref().map(threat_from_row).transpose()
    }

    async fn count_threats_by_rule(&self, rule_ids: &[u32]) -> Result<Vec<Count>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT COUNT(*) FROM threat_rules WHERE rule_id = $1")
            .await
            .map_err(pg_err)?;
        let mut out = Vec::new();
        for id in rule_ids {
            let id = rule_id_to_i32(*id);
            let row = client.query_one(&stmt, &[&id]).await.map_err(pg_err)?;
            let n: i64 = row.try_get(0).map_err(corrupt)?;
            if n > 0 {
                out.push(Count {
                    key: rule_id_from_i32(id).to_string(),
                    count: count(n)?,
                });
            }
        }
        Ok(out)
    }

    async fn threat_stats(
        &self,
        from: Timestamp,
        to: Timestamp,
        bucket_secs: i64,
    ) -> Result<ThreatStats, StoreError> {
        let q = sqlgen::threat_stats_queries(Dialect::Postgres);
        let width = bucket_micros(bucket_secs);
        let (from, to) = (from.as_micros(), to.as_micros());
        let range: [&(dyn ToSql + Sync); 2] = [&from, &to];
        let client = self.client().await?;
        let stmt = client.prepare_cached(&q.total).await.map_err(pg_err)?;
        let total: i64 = client
            .query_one(&stmt, &range)
            .await
            .map_err(pg_err)?
            .try_get(0)
            .map_err(corrupt)?;
        let text = |s: String| s;
        Ok(ThreatStats {
            total: count(total)?,
            by_category: counts(&client, &q.by_category, &range, text).await?,
            by_severity: counts(&client, &q.by_severity, &range, text).await?,
            by_rule: counts(&client, &q.by_rule, &range, |id: i32| {
                rule_id_from_i32(id).to_string()
            })
            .await?,
            by_source: counts(&client, &q.by_source, &range, text).await?,
            buckets: counts(&client, &q.buckets, &[&from, &to, &width], |b: i64| {
                bucket_label(b, width)
            })
            .await?,
        })
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = clean(key);
        let key: &str = &key;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT value FROM settings WHERE key = $1")
            .await
            .map_err(pg_err)?;
        let row = client.query_opt(&stmt, &[&key]).await.map_err(pg_err)?;
        row.map(|r| r.try_get(0).map_err(corrupt)).transpose()
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (clean(key), clean(value));
        let (key, value): (&str, &str) = (&key, &value);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET
                     value = excluded.value, updated_at = excluded.updated_at",
            )
            .await
            .map_err(pg_err)?;
        client
            .execute(&stmt, &[&key, &value, &Timestamp::now().as_micros()])
            .await
            .map_err(pg_err)?;
        Ok(())
    }
}
