//! [`BaselineStore`] for the SQLite backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use rusqlite::{Row, Transaction, TransactionBehavior, params};

use super::{SqliteStore, lock, sqlite_err};
use crate::{BaselineMerge, BaselineRow, BaselineStore, StoreError};

/// The columns of a [`BaselineRow`], in [`baseline_row`]'s order.
const SELECT: &str = "SELECT endpoint, requests, profile, updated_at FROM endpoint_baselines";

/// Writes one row whole, whether or not its endpoint is stored yet.
const UPSERT: &str = "INSERT INTO endpoint_baselines (endpoint, requests, profile, updated_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (endpoint) DO UPDATE SET \
     requests = excluded.requests, profile = excluded.profile, \
     updated_at = excluded.updated_at";

/// A row selected with [`SELECT`].
fn baseline_row(r: &Row<'_>) -> rusqlite::Result<BaselineRow> {
    Ok(BaselineRow {
        endpoint: r.get(0)?,
        requests: r.get(1)?,
        profile: r.get(2)?,
        updated_at: Timestamp(r.get(3)?),
    })
}

/// Deletes the baselines of `forget` inside `tx` (save and merge both forget first).
fn forget_endpoints(tx: &Transaction<'_>, forget: &[String]) -> Result<(), StoreError> {
    let mut delete = tx
        .prepare_cached("DELETE FROM endpoint_baselines WHERE endpoint = ?1")
        .map_err(sqlite_err)?;
    for key in forget {
        delete.execute(params![key]).map_err(sqlite_err)?;
    }
    Ok(())
}

#[async_trait]
impl BaselineStore for SqliteStore {
    async fn save_baselines(
        &self,
        rows: &[BaselineRow],
        forget: &[String],
    ) -> Result<u64, StoreError> {
        let (rows, forget) = (rows.to_vec(), forget.to_vec());
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            {
                forget_endpoints(&tx, &forget)?;
                let mut upsert = tx.prepare_cached(UPSERT).map_err(sqlite_err)?;
                for r in &rows {
                    upsert
                        .execute(params![r.endpoint, r.requests, r.profile, r.updated_at.0])
                        .map_err(sqlite_err)?;
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(rows.len() as u64)
        })
        .await
    }

    async fn merge_baselines(
        &self,
        deltas: &[BaselineRow],
        forget: &[String],
        merge: BaselineMerge,
    ) -> Result<Vec<BaselineRow>, StoreError> {
        let (deltas, forget) = (deltas.to_vec(), forget.to_vec());
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            // Immediate: the write lock is held from the read to the commit.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let mut written = Vec::with_capacity(deltas.len());
            {
                forget_endpoints(&tx, &forget)?;
                let mut read = tx
                    .prepare_cached(&format!("{SELECT} WHERE endpoint = ?1"))
                    .map_err(sqlite_err)?;
                let mut upsert = tx.prepare_cached(UPSERT).map_err(sqlite_err)?;
                for d in &deltas {
                    let stored = read
                        .query_map(params![d.endpoint], baseline_row)
                        .map_err(sqlite_err)?
                        .next()
                        .transpose()
                        .map_err(sqlite_err)?;
                    let Some(row) = merge(d, stored.as_ref()) else {
                        continue;
                    };
                    upsert
                        .execute(params![
                            row.endpoint,
                            row.requests,
                            row.profile,
                            row.updated_at.0
                        ])
                        .map_err(sqlite_err)?;
                    written.push(row);
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(written)
        })
        .await
    }

    async fn load_baselines(&self, limit: u32) -> Result<Vec<BaselineRow>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{SELECT} ORDER BY requests DESC, endpoint LIMIT ?1"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![i64::from(limit)], baseline_row)
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)).collect()
        })
        .await
    }
}
