//! [`MaintenanceStore`] for the SQLite backend: retention deletes in short writer
//! transactions, and the integrity report (counts, orphans, checkpoints, then SQLite's
//! own `PRAGMA integrity_check` of every page and index).

use async_trait::async_trait;
use palisade_core::Timestamp;
use rusqlite::params;

use super::{SqliteStore, lock, sqlite_err};
use crate::sqlgen::{
    self, BAD_JOBS_QUERY, COUNTED_TABLES, Dialect, ORPHAN_QUERIES, bad_checkpoints_query,
};
use crate::{DataKind, IntegrityCheck, MaintenanceStore, StoreError};

/// The most messages `integrity_check` reports.
const INTEGRITY_MESSAGES: u32 = 20;

fn count_check(check: String, n: i64, zero_ok: bool, what: &str) -> IntegrityCheck {
    IntegrityCheck {
        check,
        ok: !zero_ok || n == 0,
        count: Some(n),
        detail: format!("{n} {what}"),
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn delete_older_than(
        &self,
        kind: DataKind,
        before: Timestamp,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let sql = sqlgen::delete_older_query(Dialect::Sqlite, kind);
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            conn.prepare_cached(&sql)
                .and_then(|mut s| s.execute(params![before.as_micros(), i64::from(batch.max(1))]))
                .map(|n| n as u64)
                .map_err(sqlite_err)
        })
        .await
    }

    async fn integrity_checks(&self, now: Timestamp) -> Result<Vec<IntegrityCheck>, StoreError> {
        self.read(move |conn| {
            let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<i64, StoreError> {
                conn.query_row(sql, p, |r| r.get(0)).map_err(sqlite_err)
            };
            let mut checks = Vec::new();
            for table in COUNTED_TABLES {
                let n = one(&format!("SELECT count(*) FROM {table}"), &[])?;
                checks.push(count_check(format!("count:{table}"), n, false, "rows"));
            }
            for (name, sql) in ORPHAN_QUERIES {
                let n = one(sql, &[])?;
                checks.push(count_check(
                    (*name).to_owned(),
                    n,
                    true,
                    "rows point at nothing",
                ));
            }
            let skew = now.add_micros(60_000_000).as_micros();
            let n = one(&bad_checkpoints_query(Dialect::Sqlite), &[&skew])?;
            checks.push(count_check(
                "checkpoints".into(),
                n,
                true,
                "checkpoints with a negative position, no file identity or a future time",
            ));
            let n = one(BAD_JOBS_QUERY, &[])?;
            checks.push(count_check(
                "jobs".into(),
                n,
                true,
                "jobs in an impossible state",
            ));
            let mut stmt = conn
                .prepare(&format!("PRAGMA integrity_check({INTEGRITY_MESSAGES})"))
                .map_err(sqlite_err)?;
            let messages: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .map_err(sqlite_err)?
                .collect::<Result<_, _>>()
                .map_err(sqlite_err)?;
            let ok = messages.len() == 1 && messages[0] == "ok";
            checks.push(IntegrityCheck {
                check: "integrity_check".into(),
                ok,
                count: Some(if ok { 0 } else { messages.len() as i64 }),
                detail: if ok {
                    "PRAGMA integrity_check: every page and index is consistent".into()
                } else {
                    format!("PRAGMA integrity_check: {}", messages.join("; "))
                },
            });
            let fk: i64 = conn
                .prepare("PRAGMA foreign_key_check")
                .and_then(|mut s| s.query_map([], |_| Ok(())).map(|rows| rows.count() as i64))
                .map_err(sqlite_err)?;
            checks.push(count_check(
                "foreign_key_check".into(),
                fk,
                true,
                "rows break a foreign key",
            ));
            Ok(checks)
        })
        .await
    }
}
