//! Bulk loads for PostgreSQL: a one-shot import into a table smaller than itself sets
//! the secondary indexes of `events` aside and builds them once at the end, as SQLite
//! does (`sqlite/bulk.rs`).
//!
//! Why: every stored row adds an entry to each index, and the `client_ip` and path
//! indexes take them at random places. For the generated 1M-line log, `COPY` into
//! `events` with its six indexes cost the backend 12.9 s of CPU (22.3 s of wall);
//! without them 2.1 s (3.0 s), and building the six afterwards 7.1 s (5.8 s of wall with two
//! parallel workers; docs/BENCHMARKS.md, `pg-ingest`). The `pg_trgm` text index, when
//! `[search] text_index` is on, is set aside too: kept row by row it made the same load
//! take 56 s, built at the end 24.5 s.
//!
//! Safety: the definitions (`pg_get_indexdef`, schema-qualified) are written to
//! `settings` in the same transaction that drops the indexes, and every
//! [`Store::migrate`](crate::Store::migrate) builds whatever is listed there before it
//! applies new migrations (the definitions match the schema version they were read
//! from), so a killed import never leaves the table without its indexes past the next
//! start. The indexes are read from the catalog, not from a list kept here, so any
//! index a later migration adds is set aside and rebuilt the same way. Indexes that
//! back a constraint (the primary key) are never touched.

use deadpool_postgres::Transaction;

use super::{corrupt, pg_err};
use crate::StoreError;
use crate::sqlgen::text::PG_INDEX;
use palisade_core::Timestamp;

/// `settings` key of the index definitions set aside: a JSON array of `[name, sql]`
/// (the same key and shape as SQLite's).
const PENDING_KEY: &str = "bulk_load.events_indexes";

/// `maintenance_work_mem` while an index is built, when the server's own setting is
/// lower (PostgreSQL's default is 64 MB). A B-tree build sorts in this much memory
/// before it spills; for the 1M-row table the six builds took 7.1 s with 64 MB and
/// 5.8 s with 256 MB. Set for the building transaction only, on the server's side:
/// Palisade's own memory does not grow.
const BUILD_MEMORY: &str = "256MB";

/// Serialises bulk-load bookkeeping per schema (two imports starting together, or an
/// import's end racing a start-up's rebuild).
const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(hashtext('palisade.bulk_load.' || coalesce(current_schema(), '')))";

/// The secondary indexes of `events` that can be dropped: not the primary key, nor
/// any index behind a constraint. Name, schema-qualified name, definition.
const DROPPABLE_SQL: &str = "SELECT c.relname::text,
            quote_ident(n.nspname) || '.' || quote_ident(c.relname),
            pg_get_indexdef(i.indexrelid)
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.indrelid = 'events'::regclass
        AND NOT i.indisprimary
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
      ORDER BY c.relname";

/// The pending definitions, `[]` when none (or before the first migration made
/// `settings`).
async fn pending(tx: &Transaction<'_>) -> Result<Vec<(String, String)>, StoreError> {
    let has_settings: bool = tx
        .query_one("SELECT to_regclass('settings') IS NOT NULL", &[])
        .await
        .map_err(pg_err)?
        .try_get(0)
        .map_err(corrupt)?;
    if !has_settings {
        return Ok(Vec::new());
    }
    let row = tx
        .query_opt("SELECT value FROM settings WHERE key = $1", &[&PENDING_KEY])
        .await
        .map_err(pg_err)?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let value: String = row.try_get(0).map_err(corrupt)?;
    serde_json::from_str(&value).map_err(|e| {
        StoreError::Corrupt(format!(
            "setting {PENDING_KEY} is not a list of indexes: {e}"
        ))
    })
}

/// Replaces the pending list (removes the key when it is empty), inside the caller's
/// transaction so that the list always matches the indexes dropped or built with it.
async fn save_pending(tx: &Transaction<'_>, list: &[(String, String)]) -> Result<(), StoreError> {
    if list.is_empty() {
        tx.execute("DELETE FROM settings WHERE key = $1", &[&PENDING_KEY])
            .await
            .map_err(pg_err)?;
        return Ok(());
    }
    let value = serde_json::to_string(list)
        .map_err(|e| StoreError::Database(format!("cannot encode index list: {e}")))?;
    tx.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        &[&PENDING_KEY, &value, &Timestamp::now().as_micros()],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

/// Sets the secondary indexes of `events` aside when the table holds fewer rows than
/// the import will add (rebuilding then costs less than maintaining them). Returns
/// whether any are now set aside.
pub(super) async fn begin(
    client: &mut deadpool_postgres::Client,
    expected_rows: u64,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute(LOCK_SQL, &[]).await.map_err(pg_err)?;
    let mut list = pending(&tx).await?;
    // From the primary key's two ends: exact enough, and no scan of the table.
    let rows: i64 = tx
        .query_one(
            "SELECT coalesce((SELECT max(id) FROM events) - (SELECT min(id) FROM events) + 1, 0)",
            &[],
        )
        .await
        .map_err(pg_err)?
        .try_get(0)
        .map_err(corrupt)?;
    let worth_it = match u64::try_from(rows) {
        Ok(rows) => expected_rows > rows,
        Err(_) => true,
    };
    if !worth_it {
        tx.commit().await.map_err(pg_err)?;
        return Ok(!list.is_empty());
    }
    let current = tx.query(DROPPABLE_SQL, &[]).await.map_err(pg_err)?;
    for row in &current {
        let name: String = row.try_get(0).map_err(corrupt)?;
        let qualified: String = row.try_get(1).map_err(corrupt)?;
        let sql: String = row.try_get(2).map_err(corrupt)?;
        tx.batch_execute(&format!("DROP INDEX {qualified}"))
            .await
            .map_err(pg_err)?;
        if !list.iter().any(|(n, _)| *n == name) {
            list.push((name, sql));
        }
    }
    save_pending(&tx, &list).await?;
    tx.commit().await.map_err(pg_err)?;
    Ok(!list.is_empty())
}

/// Builds every index set aside, one transaction each (a kill in between keeps the
/// rest listed). The free-text index is dropped from the list instead of built when
/// `text_index` is now off (the setting changed while it was aside).
pub(super) async fn end(
    client: &mut deadpool_postgres::Client,
    text_index: bool,
) -> Result<(), StoreError> {
    loop {
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute(LOCK_SQL, &[]).await.map_err(pg_err)?;
        let mut list = pending(&tx).await?;
        let Some((name, sql)) = list.first().cloned() else {
            tx.commit().await.map_err(pg_err)?;
            return Ok(());
        };
        let started = std::time::Instant::now();
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                 WHERE i.indrelid = 'events'::regclass AND c.relname = $1)",
                &[&name],
            )
            .await
            .map_err(pg_err)?
            .try_get(0)
            .map_err(corrupt)?;
        let wanted = text_index || name != PG_INDEX;
        if wanted && !exists {
            tx.execute(
                "SELECT set_config('maintenance_work_mem', $1, true)
                  WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes($1)",
                &[&BUILD_MEMORY],
            )
            .await
            .map_err(pg_err)?;
            tx.batch_execute(&sql).await.map_err(|e| match pg_err(e) {
                StoreError::Database(e) => {
                    StoreError::Database(format!("building index {name} again: {e}"))
                }
                other => other,
            })?;
        }
        list.remove(0);
        save_pending(&tx, &list).await?;
        tx.commit().await.map_err(pg_err)?;
        tracing::info!(
            message = "Index built after a bulk load.",
            index = %name,
            seconds = started.elapsed().as_secs_f64()
        );
    }
}
