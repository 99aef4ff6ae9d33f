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

use super::{PgStore, corrupt, count, pg_err};
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
        // Three round trips per batch instead of one per threat and per rule: the
        // ids are drawn first (in order: the lock keeps other writers out), then
        // every row goes in as arrays (`unnest`), then every rule row.
        let draw = tx
            .prepare_cached(
                "SELECT nextval(pg_get_serial_sequence('threats', 'id')) \
                 FROM generate_series(1, $1::int8)",
            )
            .await
            .map_err(pg_err)?;
        let n = i64::try_from(threats.len()).unwrap_or(i64::MAX);
        let mut ids = tx
            .query(&draw, &[&n])
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| r.try_get::<_, i64>(0).map_err(corrupt))
            .collect::<Result<Vec<i64>, _>>()?;
        ids.sort_unstable();
        if ids.len() != threats.len() {
            return Err(StoreError::Database(format!(
                "drew {} threat ids for {} threats",
                ids.len(),
                threats.len()
            )));
        }
        let cols = threats
            .iter()
            .map(ThreatColumnsIn::new)
            .collect::<Result<Vec<_>, _>>()?;
        let ts: Vec<i64> = cols.iter().map(|c| c.ts).collect();
        let category: Vec<&str> = cols.iter().map(|c| &*c.category).collect();
        let severity: Vec<&str> = cols.iter().map(|c| c.severity).collect();
        let score: Vec<i32> = cols.iter().map(|c| c.score).collect();
        let client_ip: Vec<Option<&[u8]>> = cols
            .iter()
            .map(|c| c.client_ip.as_ref().map(|k| &k[..]))
            .collect();
        let method: Vec<Option<&str>> = cols.iter().map(|c| c.method.as_deref()).collect();
        let uri: Vec<Option<&str>> = cols.iter().map(|c| c.uri.as_deref()).collect();
        let source: Vec<&str> = cols.iter().map(|c| &*c.source).collect();
        let event_id: Vec<Option<i64>> = cols.iter().map(|c| c.event_id).collect();
        let decision: Vec<&str> = cols.iter().map(|c| c.decision).collect();
        let evidence: Vec<&str> = cols.iter().map(|c| c.evidence.as_str()).collect();
        let rule_ids: Vec<&str> = cols.iter().map(|c| c.rule_ids.as_str()).collect();
        let tags: Vec<&str> = cols.iter().map(|c| c.tags.as_str()).collect();
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO threats (id, {THREAT_INSERT_COLUMNS}) OVERRIDING SYSTEM VALUE \
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], \
                 $5::int4[], $6::bytea[], $7::text[], $8::text[], $9::text[], $10::int8[], \
                 $11::text[], $12::text[], $13::text[], $14::text[])"
            ))
            .await
            .map_err(pg_err)?;
        tx.execute(
            &insert,
            &[
                &ids, &ts, &category, &severity, &score, &client_ip, &method, &uri, &source,
                &event_id, &decision, &evidence, &rule_ids, &tags,
            ],
        )
        .await
        .map_err(pg_err)?;
        let (mut rule_threat, mut rule_id, mut rule_ts) = (Vec::new(), Vec::new(), Vec::new());
        for (c, id) in cols.iter().zip(&ids) {
            for r in &c.distinct_rules {
                rule_threat.push(*id);
                rule_id.push(*r);
                rule_ts.push(c.ts);
            }
        }
        if !rule_threat.is_empty() {
            let rules = tx
                .prepare_cached(
                    "INSERT INTO threat_rules (threat_id, rule_id, ts) \
                     SELECT * FROM unnest($1::int8[], $2::int4[], $3::int8[])",
                )
                .await
                .map_err(pg_err)?;
            tx.execute(&rules, &[&rule_threat, &rule_id, &rule_ts])
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(ids)
    }

    async fn query_threats(&self, query: &ThreatQuery) -> Result<Page<StoredThreat>, StoreError> {
        let sql = sqlgen::threats_query(Dialect::Postgres, query);
        let rows = self.query_generated(&sql).await?;
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
