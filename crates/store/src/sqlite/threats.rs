//! [`ThreatStore`] for the SQLite backend.
//!
//! A child module of `sqlite` so that it shares that backend's connection handling:
//! writes go through the single writer connection, reads through the reader pool, all on
//! Tokio's blocking pool. Values pass through the shared threat codec, exactly as in the
//! PostgreSQL backend, so that both store (and find) the same thing.

use std::sync::OnceLock;

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::threat::{StoredThreat, Threat};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{INSERT_IN_TRANSACTION, SqliteStore, count, lock, params_of, sqlite_err};
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

/// Threats per multi-row `INSERT`: like the events (see `ingest::INSERT_CHUNK`), one
/// statement execution per row opens the table's and every index's cursors and updates
/// `sqlite_sequence` per row; an import raises a threat on about one line in nine, so
/// the recorder's row-by-row inserts showed up in the ingest profile. 13 columns × 64
/// rows = 832 parameters (13 columns with the tags).
const THREAT_CHUNK: usize = 64;

/// Columns of [`THREAT_INSERT_COLUMNS`].
const THREAT_COLUMNS: usize = 13;

/// `threat_rules` rows per multi-row `INSERT` (3 parameters each).
const RULE_CHUNK: usize = 128;

/// The statements' texts, made once: the statement cache is keyed by the text, so it
/// was printed again (832 numbered parameters for a chunk of threats) for every chunk
/// only to find the cached statement (as `ingest::insert_events` did before).
static THREATS_CHUNK_SQL: OnceLock<String> = OnceLock::new();
static THREATS_ROW_SQL: OnceLock<String> = OnceLock::new();
static RULES_CHUNK_SQL: OnceLock<String> = OnceLock::new();
static RULES_ROW_SQL: OnceLock<String> = OnceLock::new();

/// `INSERT OR FAIL INTO {table} ({columns}) VALUES (?,…),(?,…)…`: `rows` rows of
/// `width` numbered parameters, for [`insert_in`], whose caller rolls its whole
/// transaction back on any failure (see [`INSERT_IN_TRANSACTION`]).
fn multi_row_sql(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let mut sql = format!("{INSERT_IN_TRANSACTION} {table} ({columns}) VALUES ");
    for r in 0..rows {
        sql.push_str(if r > 0 { ",(" } else { "(" });
        for c in 0..width {
            if c > 0 {
                sql.push(',');
            }
            sql.push('?');
            sql.push_str(&(r * width + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Binds one threat's columns to parameters `at + 1 ..= at + 13`.
fn bind_threat(
    stmt: &mut rusqlite::CachedStatement<'_>,
    at: usize,
    c: &ThreatColumnsIn<'_>,
) -> Result<(), StoreError> {
    let values: [&dyn rusqlite::ToSql; THREAT_COLUMNS] = [
        &c.ts,
        &&*c.category,
        &c.severity,
        &c.score,
        &c.client_ip.as_ref().map(|k| &k[..]),
        &c.method.as_deref(),
        &c.uri.as_deref(),
        &&*c.source,
        &c.event_id,
        &c.decision,
        &c.evidence,
        &c.rule_ids,
        &c.tags,
    ];
    for (i, v) in values.into_iter().enumerate() {
        stmt.raw_bind_parameter(at + i + 1, v).map_err(sqlite_err)?;
    }
    Ok(())
}

/// Inserts `rows` (threat id, rule id, ts) into `threat_rules`, [`RULE_CHUNK`] per
/// statement, the rest one by one (both statements cached: prepared once per
/// connection).
fn insert_rules(
    tx: &rusqlite::Transaction<'_>,
    rows: &[(i64, i32, i64)],
) -> Result<(), StoreError> {
    const COLUMNS: &str = "threat_id, rule_id, ts";
    let mut chunks = rows.chunks_exact(RULE_CHUNK);
    if chunks.len() > 0 {
        let mut stmt = tx
            .prepare_cached(
                RULES_CHUNK_SQL
                    .get_or_init(|| multi_row_sql("threat_rules", COLUMNS, 3, RULE_CHUNK)),
            )
            .map_err(sqlite_err)?;
        for chunk in &mut chunks {
            for (r, (id, rule, ts)) in chunk.iter().enumerate() {
                stmt.raw_bind_parameter(r * 3 + 1, id).map_err(sqlite_err)?;
                stmt.raw_bind_parameter(r * 3 + 2, rule)
                    .map_err(sqlite_err)?;
                stmt.raw_bind_parameter(r * 3 + 3, ts).map_err(sqlite_err)?;
            }
            stmt.raw_execute().map_err(sqlite_err)?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut stmt = tx
            .prepare_cached(
                RULES_ROW_SQL.get_or_init(|| multi_row_sql("threat_rules", COLUMNS, 3, 1)),
            )
            .map_err(sqlite_err)?;
        for (id, rule, ts) in rest {
            stmt.execute(params![id, rule, ts]).map_err(sqlite_err)?;
        }
    }
    Ok(())
}

/// Inserts every threat (and its rule rows), encoded as `rows`, inside the open
/// transaction `tx`, in order, [`THREAT_CHUNK`] rows per statement; returns their ids
/// in the same order.
fn insert_in(
    tx: &rusqlite::Transaction<'_>,
    rows: &[ThreatColumnsIn<'_>],
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut rules: Vec<(i64, i32, i64)> = Vec::with_capacity(rows.len() * 2);
    // The chunk statement, taken from the cache once per call rather than once per
    // chunk: each return to the cache cleared its 832 bindings (`clear_bindings`, ~1.6k
    // instructions a threat) and each take looked its text up again.
    let mut chunk_stmt = None;
    for cols in rows.chunks(THREAT_CHUNK) {
        if cols.len() == THREAT_CHUNK {
            if chunk_stmt.is_none() {
                chunk_stmt = Some(
                    tx.prepare_cached(THREATS_CHUNK_SQL.get_or_init(|| {
                        multi_row_sql(
                            "threats",
                            THREAT_INSERT_COLUMNS,
                            THREAT_COLUMNS,
                            THREAT_CHUNK,
                        )
                    }))
                    .map_err(sqlite_err)?,
                );
            }
            if let Some(stmt) = chunk_stmt.as_mut() {
                for (r, c) in cols.iter().enumerate() {
                    bind_threat(stmt, r * THREAT_COLUMNS, c)?;
                }
                stmt.raw_execute().map_err(sqlite_err)?;
            }
        } else {
            // A short chunk: one row per execution of the cached one-row statement,
            // so that odd sizes do not each prepare (and evict) a statement.
            let mut one = tx
                .prepare_cached(THREATS_ROW_SQL.get_or_init(|| {
                    multi_row_sql("threats", THREAT_INSERT_COLUMNS, THREAT_COLUMNS, 1)
                }))
                .map_err(sqlite_err)?;
            for c in cols {
                bind_threat(&mut one, 0, c)?;
                one.raw_execute().map_err(sqlite_err)?;
            }
        }
        // One writer connection inside one transaction, AUTOINCREMENT: the rows just
        // inserted took consecutive ids ending at the last one.
        let last = tx.last_insert_rowid();
        let first = last - cols.len() as i64 + 1;
        for (c, id) in cols.iter().zip(first..) {
            rules.extend(c.distinct_rules.iter().map(|r| (id, *r, c.ts)));
            ids.push(id);
        }
    }
    insert_rules(tx, &rules)?;
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
            // Encoded on the blocking pool, not on the caller's runtime thread (a
            // recorder batch of 2,000 threats is ~10 ms of JSON, which would stall the
            // proxy's requests sharing that thread), and before the writer connection
            // is taken, so the JSON is not written while it is held (writer9).
            let rows = threats
                .iter()
                .map(ThreatColumnsIn::new)
                .collect::<Result<Vec<_>, _>>()?;
            let mut conn = lock(&inner.writer);
            // Dropping `tx` without commit (any `?` below) rolls everything back.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let n = insert_in(&tx, &rows)?;
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

#[cfg(test)]
mod tests {
    use palisade_core::severity::Severity;
    use palisade_core::verdict::Action;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn threat(i: u32, uri: &str) -> Threat {
        Threat {
            ts: Timestamp(1_700_000_000_000_000 + i64::from(i)),
            category: "sqli".into(),
            severity: Severity::Error,
            score: 5,
            rule_ids: vec![942100, 942100 + i % 3],
            client_ip: None,
            method: Some("GET".into()),
            uri: Some(uri.into()),
            source: "t".into(),
            event_id: Some(i64::from(i) + 1),
            decision: Action::Detect,
            evidence: Vec::new(),
            tags: vec!["attack-sqli".into()],
        }
    }

    use super::super::stored_rows as stored;

    /// The rows [`ThreatStore::insert_threats`] hands [`insert_in`].
    fn encoded(threats: &[Threat]) -> Result<Vec<ThreatColumnsIn<'_>>, StoreError> {
        threats.iter().map(ThreatColumnsIn::new).collect()
    }

    /// The threats' multi-row inserts run without a statement journal (`INSERT OR
    /// FAIL`): a threat that fails part-way through a chunk leaves the chunk's earlier
    /// rows in the transaction, and [`ThreatStore::insert_threats`]' rollback takes
    /// back every row of the call, its rule rows too. The same threats without the
    /// failing one are then stored whole, with the ids and rule rows they would have had.
    #[test]
    fn a_threat_failing_inside_a_chunk_stores_nothing_of_its_call() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut conn = Connection::open(dir.path().join("t.db"))?;
        super::super::migrate(&mut conn, crate::migrations::SQLITE)?;
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON threats WHEN NEW.uri = '/refused'
             BEGIN SELECT RAISE(FAIL, 'refused'); END",
        )?;
        // 150 threats: two chunks of 64 and 22 one by one; the refused one is the 41st
        // of the second chunk.
        let uri = |i: u32| {
            if i == 104 {
                "/refused".to_owned()
            } else {
                format!("/{i}")
            }
        };
        let refused: Vec<Threat> = (0..150).map(|i| threat(i, &uri(i))).collect();
        {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let error = insert_in(&tx, &encoded(&refused)?)
                .err()
                .ok_or("the threats with a refused one were stored")?;
            assert!(error.to_string().contains("refused"), "{error}");
        }
        assert_eq!(
            (stored(&conn, "threats")?, stored(&conn, "threat_rules")?),
            (0, 0)
        );
        let accepted: Vec<Threat> = (0..150).map(|i| threat(i, &format!("/{i}"))).collect();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids = insert_in(&tx, &encoded(&accepted)?)?;
        tx.commit()?;
        assert_eq!(ids, (1..=150).collect::<Vec<i64>>());
        // Two distinct rules but for every third threat (942100 twice: one row).
        assert_eq!(stored(&conn, "threats")?, 150);
        assert_eq!(stored(&conn, "threat_rules")?, 150 + 100);
        let uri_of_last: String =
            conn.query_row("SELECT uri FROM threats WHERE id = 150", [], |r| r.get(0))?;
        assert_eq!(uri_of_last, "/149");
        Ok(())
    }
}
