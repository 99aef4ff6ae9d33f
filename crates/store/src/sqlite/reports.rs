//! [`ReportStore`] for the SQLite backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::net::ip_from_key;
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, count, lock, params_of, sqlite_err};
use crate::codec::clean;
use crate::codec::reports::{REPORT_META_COLUMNS, ReportRow};
use crate::sqlgen::{self, Dialect};
use crate::{Count, Cursor, NewReport, Page, ReportMeta, ReportStore, StoreError, StoredReport};

fn report_from_row(r: &Row<'_>) -> rusqlite::Result<ReportRow> {
    Ok(ReportRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        from: r.get(2)?,
        to: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
    })
}

#[async_trait]
impl ReportStore for SqliteStore {
    async fn insert_report(
        &self,
        report: &NewReport,
        now: Timestamp,
    ) -> Result<ReportMeta, StoreError> {
        let r = report.clone();
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            conn.prepare_cached(
                "INSERT INTO reports (kind, range_from, range_to, created_at, created_by, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &*clean(&r.kind),
                    r.from.as_micros(),
                    r.to.as_micros(),
                    now.as_micros(),
                    &*clean(&r.created_by),
                    &*clean(&r.doc)
                ])
            })
            .map_err(sqlite_err)?;
            Ok(ReportMeta {
                id: conn.last_insert_rowid(),
                kind: clean(&r.kind).into_owned(),
                from: r.from,
                to: r.to,
                created_at: now,
                created_by: clean(&r.created_by).into_owned(),
            })
        })
        .await
    }

    async fn get_report(&self, id: i64) -> Result<Option<StoredReport>, StoreError> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {REPORT_META_COLUMNS}, doc FROM reports WHERE id = ?1"
                ))
                .and_then(|mut s| {
                    s.query_row([id], |r| Ok((report_from_row(r)?, r.get::<_, String>(6)?)))
                        .optional()
                })
                .map_err(sqlite_err)?;
            Ok(row.map(|(meta, doc)| StoredReport {
                meta: meta.into_meta(),
                doc,
            }))
        })
        .await
    }

    async fn query_reports(
        &self,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Page<ReportMeta>, StoreError> {
        let sql = sqlgen::reports_query(Dialect::Sqlite, cursor, limit);
        let items = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], report_from_row)
                    .map_err(sqlite_err)?;
                rows.map(|r| Ok(r.map_err(sqlite_err)?.into_meta()))
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        Ok(sqlgen::into_page(items, limit, |m| Cursor {
            ts: m.created_at.as_micros(),
            id: m.id,
        }))
    }

    async fn top_threat_sources(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<Count>, StoreError> {
        let (from, to, limit) = (from.as_micros(), to.as_micros(), i64::from(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(sqlgen::top_sources_sql(Dialect::Sqlite))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![from, to, limit], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(sqlite_err)?;
            rows.map(|r| {
                let (key, n) = r.map_err(sqlite_err)?;
                let ip = ip_from_key(&key)
                    .ok_or_else(|| StoreError::Corrupt(format!("threat client_ip {key:?}")))?;
                Ok(Count {
                    key: ip.to_string(),
                    count: count(n)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn decision_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Count>, StoreError> {
        let (from, to) = (from.as_micros(), to.as_micros());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(sqlgen::decision_counts_sql(Dialect::Sqlite))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![from, to], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(sqlite_err)?;
            rows.map(|r| {
                let (key, n) = r.map_err(sqlite_err)?;
                Ok(Count {
                    key,
                    count: count(n)?,
                })
            })
            .collect()
        })
        .await
    }
}
