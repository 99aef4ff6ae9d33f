//! [`FlowStore`] for the PostgreSQL backend.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{PgStore, corrupt, pg_err};
use crate::codec::flows::{FLOW_INSERT_COLUMNS, FLOW_SELECT_COLUMNS, FlowColumns, FlowColumnsIn};
use crate::sqlgen::{self, Dialect};
use crate::{Cursor, FlowQuery, FlowStore, NewFlow, Page, StoreError, StoredFlow};

fn flow_from_row(r: &Row) -> Result<FlowColumns, tokio_postgres::Error> {
    Ok(FlowColumns {
        id: r.try_get(0)?,
        start_ts: r.try_get(1)?,
        end_ts: r.try_get(2)?,
        source: r.try_get(3)?,
        protocol: r.try_get(4)?,
        src_ip: r.try_get(5)?,
        src_port: r.try_get(6)?,
        dst_ip: r.try_get(7)?,
        dst_port: r.try_get(8)?,
        counts: [
            r.try_get(9)?,
            r.try_get(10)?,
            r.try_get(11)?,
            r.try_get(12)?,
            r.try_get(13)?,
            r.try_get(14)?,
        ],
        state: r.try_get(15)?,
        app: r.try_get(16)?,
        app_by_port: r.try_get(17)?,
        detail: r.try_get(18)?,
    })
}

#[async_trait]
impl FlowStore for PgStore {
    async fn insert_flows(&self, flows: &[NewFlow]) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<FlowColumnsIn> = flows.iter().map(FlowColumnsIn::new).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let insert = tx
            .prepare(&format!(
                "INSERT INTO flows ({FLOW_INSERT_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) RETURNING id"
            ))
            .await
            .map_err(pg_err)?;
        let mut ids = Vec::with_capacity(rows.len());
        for f in &rows {
            let [op, ob, rp, rb, of, rf] = f.counts;
            let row = tx
                .query_one(
                    &insert,
                    &[
                        &f.start_ts,
                        &f.end_ts,
                        &f.source,
                        &f.protocol,
                        &f.src_ip,
                        &f.src_key,
                        &f.src_port,
                        &f.dst_ip,
                        &f.dst_key,
                        &f.dst_port,
                        &op,
                        &ob,
                        &rp,
                        &rb,
                        &of,
                        &rf,
                        &f.state,
                        &f.app,
                        &f.app_by_port,
                        &f.detail,
                    ],
                )
                .await
                .map_err(pg_err)?;
            ids.push(row.try_get::<_, i64>(0).map_err(corrupt)?);
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(ids)
    }

    async fn list_flows(&self, q: &FlowQuery) -> Result<Page<StoredFlow>, StoreError> {
        let sql = sqlgen::flows_query(Dialect::Postgres, q);
        let rows = self.query_generated(&sql).await?;
        let items = rows
            .iter()
            .map(|r| flow_from_row(r).map_err(corrupt)?.into_flow())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, q.limit, |f| Cursor {
            ts: f.flow.start.as_micros(),
            id: f.id,
        }))
    }

    async fn get_flow(&self, id: i64) -> Result<Option<StoredFlow>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {FLOW_SELECT_COLUMNS} FROM flows WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        match row {
            Some(r) => Ok(Some(flow_from_row(&r).map_err(corrupt)?.into_flow()?)),
            None => Ok(None),
        }
    }
}
