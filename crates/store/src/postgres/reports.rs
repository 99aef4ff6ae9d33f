//! [`ReportStore`] for the PostgreSQL backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::net::ip_from_key;
use tokio_postgres::Row;

use super::{PgStore, corrupt, count, pg_err};
use crate::codec::clean;
use crate::codec::reports::{REPORT_META_COLUMNS, ReportRow};
use crate::sqlgen::{self, Dialect};
use crate::{Count, Cursor, NewReport, Page, ReportMeta, ReportStore, StoreError, StoredReport};

fn report_from_row(r: &Row) -> Result<ReportRow, StoreError> {
    Ok(ReportRow {
        id: r.try_get(0).map_err(corrupt)?,
        kind: r.try_get(1).map_err(corrupt)?,
        from: r.try_get(2).map_err(corrupt)?,
        to: r.try_get(3).map_err(corrupt)?,
        created_at: r.try_get(4).map_err(corrupt)?,
        created_by: r.try_get(5).map_err(corrupt)?,
    })
}

#[async_trait]
impl ReportStore for PgStore {
    async fn insert_report(
        &self,
        report: &NewReport,
        now: Timestamp,
    ) -> Result<ReportMeta, StoreError> {
        let kind = clean(&report.kind).into_owned();
        let by = clean(&report.created_by).into_owned();
        let doc = clean(&report.doc).into_owned();
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO reports (kind, range_from, range_to, created_at, created_by, doc) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &kind,
                    &report.from.as_micros(),
                    &report.to.as_micros(),
                    &now.as_micros(),
                    &by,
                    &doc,
                ],
            )
            .await
            .map_err(pg_err)?;
        Ok(ReportMeta {
            id: row.try_get(0).map_err(corrupt)?,
            kind,
            from: report.from,
            to: report.to,
            created_at: now,
            created_by: by,
        })
    }

    async fn get_report(&self, id: i64) -> Result<Option<StoredReport>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {REPORT_META_COLUMNS}, doc FROM reports WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        row.map(|r| {
            Ok(StoredReport {
                meta: report_from_row(&r)?.into_meta(),
                doc: r.try_get(6).map_err(corrupt)?,
            })
        })
        .transpose()
    }

    async fn query_reports(
        &self,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Page<ReportMeta>, StoreError> {
        let sql = sqlgen::reports_query(Dialect::Postgres, cursor, limit);
        let rows = self.query_generated(&sql).await?;
        let items = rows
            .iter()
            .map(|r| Ok(report_from_row(r)?.into_meta()))
            .collect::<Result<Vec<_>, StoreError>>()?;
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
        let client = self.client().await?;
        let rows = client
            .query(
                sqlgen::top_sources_sql(Dialect::Postgres),
                &[&from.as_micros(), &to.as_micros(), &i64::from(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                let key: Vec<u8> = r.try_get(0).map_err(corrupt)?;
                let ip = ip_from_key(&key)
                    .ok_or_else(|| StoreError::Corrupt(format!("threat client_ip {key:?}")))?;
                Ok(Count {
                    key: ip.to_string(),
                    count: count(r.try_get(1).map_err(corrupt)?)?,
                })
            })
            .collect()
    }

    async fn decision_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Count>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                sqlgen::decision_counts_sql(Dialect::Postgres),
                &[&from.as_micros(), &to.as_micros()],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok(Count {
                    key: r.try_get(0).map_err(corrupt)?,
                    count: count(r.try_get(1).map_err(corrupt)?)?,
                })
            })
            .collect()
    }
}
