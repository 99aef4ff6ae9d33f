//! [`FlowStore`] for the SQLite backend.

use async_trait::async_trait;
use rusqlite::{Row, TransactionBehavior, params};

use super::{SqliteStore, lock, params_of, sqlite_err};
use crate::codec::flows::{FLOW_INSERT_COLUMNS, FLOW_SELECT_COLUMNS, FlowColumns, FlowColumnsIn};
use crate::sqlgen::{self, Dialect};
use crate::{Cursor, FlowQuery, FlowStore, NewFlow, Page, StoreError, StoredFlow};

fn flow_from_row(r: &Row<'_>) -> rusqlite::Result<FlowColumns> {
    Ok(FlowColumns {
        id: r.get(0)?,
        start_ts: r.get(1)?,
        end_ts: r.get(2)?,
        source: r.get(3)?,
        protocol: r.get(4)?,
        src_ip: r.get(5)?,
        src_port: r.get(6)?,
        dst_ip: r.get(7)?,
        dst_port: r.get(8)?,
        counts: [
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
        ],
        state: r.get(15)?,
        app: r.get(16)?,
        app_by_port: r.get(17)?,
        detail: r.get(18)?,
    })
}

#[async_trait]
impl FlowStore for SqliteStore {
    async fn insert_flows(&self, flows: &[NewFlow]) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<FlowColumnsIn> = flows.iter().map(FlowColumnsIn::new).collect();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite_err)?;
            let mut ids = Vec::with_capacity(rows.len());
            {
                let mut insert = tx
                    .prepare_cached(&format!(
                        "INSERT INTO flows ({FLOW_INSERT_COLUMNS}) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
                    ))
                    .map_err(sqlite_err)?;
                for f in &rows {
                    let [op, ob, rp, rb, of, rf] = f.counts;
                    insert
                        .execute(params![
                            f.start_ts, f.end_ts, f.source, f.protocol, f.src_ip, f.src_key, f.src_port, f.dst_ip,
                            f.dst_key, f.dst_port, op, ob, rp, rb, of, rf, f.state, f.app, f.app_by_port, f.detail
                        ])
                        .map_err(sqlite_err)?;
                    ids.push(tx.last_insert_rowid());
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(ids)
        })
        .await
    }

    async fn list_flows(&self, q: &FlowQuery) -> Result<Page<StoredFlow>, StoreError> {
        let sql = sqlgen::flows_query(Dialect::Sqlite, q);
        let limit = q.limit;
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], flow_from_row)
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err)?.into_flow())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(rows, limit, |f| Cursor {
            ts: f.flow.start.as_micros(),
            id: f.id,
        }))
    }

    async fn get_flow(&self, id: i64) -> Result<Option<StoredFlow>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {FLOW_SELECT_COLUMNS} FROM flows WHERE id = ?1"
                ))
                .map_err(sqlite_err)?;
            let mut rows = stmt
                .query_map(params![id], flow_from_row)
                .map_err(sqlite_err)?;
            match rows.next() {
                Some(r) => Ok(Some(r.map_err(sqlite_err)?.into_flow()?)),
                None => Ok(None),
            }
        })
        .await
    }
}
