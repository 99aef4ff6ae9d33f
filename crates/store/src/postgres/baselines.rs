//! [`BaselineStore`] for the PostgreSQL backend.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use palisade_core::Timestamp;
use tokio_postgres::Row;

use super::{PgStore, pg_err};
use crate::{BaselineMerge, BaselineRow, BaselineStore, StoreError};

/// The advisory lock key every baseline merge takes (`'pbas'`).
const BASELINE_LOCK: i64 = 0x7062_6173;

/// The columns of a [`BaselineRow`], in [`baseline_row`]'s order.
const SELECT: &str = "SELECT endpoint, requests, profile, updated_at FROM endpoint_baselines";

/// Writes one row whole, whether or not its endpoint is stored yet.
const UPSERT: &str = "INSERT INTO endpoint_baselines (endpoint, requests, profile, updated_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (endpoint) DO UPDATE SET \
     requests = excluded.requests, profile = excluded.profile, \
     updated_at = excluded.updated_at";

/// A row selected with [`SELECT`].
fn baseline_row(r: &Row) -> Result<BaselineRow, StoreError> {
    Ok(BaselineRow {
        endpoint: r.try_get(0).map_err(pg_err)?,
        requests: r.try_get(1).map_err(pg_err)?,
        profile: r.try_get(2).map_err(pg_err)?,
        updated_at: Timestamp(r.try_get(3).map_err(pg_err)?),
    })
}

/// Deletes the baselines of `forget` inside `tx` (save and merge both forget first).
async fn forget_endpoints(tx: &Transaction<'_>, forget: &[String]) -> Result<(), StoreError> {
    if !forget.is_empty() {
        tx.execute(
            "DELETE FROM endpoint_baselines WHERE endpoint = ANY($1)",
            &[&forget],
        )
        .await
        .map_err(pg_err)?;
    }
    Ok(())
}

#[async_trait]
impl BaselineStore for PgStore {
    async fn save_baselines(
        &self,
        rows: &[BaselineRow],
        forget: &[String],
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        forget_endpoints(&tx, forget).await?;
        let upsert = tx.prepare(UPSERT).await.map_err(pg_err)?;
        for r in rows {
            tx.execute(
                &upsert,
                &[&r.endpoint, &r.requests, &r.profile, &r.updated_at.0],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(rows.len() as u64)
    }

    async fn merge_baselines(
        &self,
        deltas: &[BaselineRow],
        forget: &[String],
        merge: BaselineMerge,
    ) -> Result<Vec<BaselineRow>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // One lock for every merge of every node, released at commit or rollback: rows
        // that do not exist yet cannot be locked with FOR UPDATE.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BASELINE_LOCK])
            .await
            .map_err(pg_err)?;
        forget_endpoints(&tx, forget).await?;
        let keys: Vec<&str> = deltas.iter().map(|d| d.endpoint.as_str()).collect();
        let stored: HashMap<String, BaselineRow> = tx
            .query(&format!("{SELECT} WHERE endpoint = ANY($1)"), &[&keys])
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| baseline_row(r).map(|b| (b.endpoint.clone(), b)))
            .collect::<Result<_, _>>()?;
        let upsert = tx.prepare(UPSERT).await.map_err(pg_err)?;
        let mut written = Vec::with_capacity(deltas.len());
        for d in deltas {
            let Some(row) = merge(d, stored.get(&d.endpoint)) else {
                continue;
            };
            tx.execute(
                &upsert,
                &[
                    &row.endpoint,
                    &row.requests,
                    &row.profile,
                    &row.updated_at.0,
                ],
            )
            .await
            .map_err(pg_err)?;
            written.push(row);
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(written)
    }

    async fn load_baselines(&self, limit: u32) -> Result<Vec<BaselineRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("{SELECT} ORDER BY requests DESC, endpoint LIMIT $1"),
                &[&i64::from(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(baseline_row).collect()
    }
}
