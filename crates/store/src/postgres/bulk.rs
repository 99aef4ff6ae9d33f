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

use std::sync::Mutex;

use deadpool_postgres::Transaction;

use super::{corrupt, pg_err, pool_err};
use crate::StoreError;
use crate::sqlgen::text::{PG_INDEX, PG_TAGGED_INDEX};
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

/// Connections that build the indexes set aside at once, each taking the next index
/// (the widest first) when it is done. Every build scans the table and sorts its keys in
/// its own backend, so on a server with cores to spare they run side by side; PostgreSQL's
/// own parallel workers help only with part of each build. For the six indexes of the
/// generated 1M-row table, with `psql` at load 5–7 on 2 cores: 11.4–12.1 s one after
/// another, 8.2 s two at a time, 7.1 s three at a time, 7.3 s six at a time
/// (docs/BENCHMARKS.md, `pgingest2`). Each build may take [`BUILD_MEMORY`] on the server,
/// so this also bounds the server's memory for them.
const BUILDERS: usize = 3;

/// Builds every index set aside, up to [`BUILDERS`] at a time, each in a transaction
/// of its own on its own connection. The list is held under the bookkeeping lock
/// meanwhile and emptied once all are built; a kill in between keeps it whole, and the
/// next call skips the indexes that exist by then. The free-text indexes are dropped
/// from the list instead of built when their setting is now off (it changed while they
/// were aside).
pub(super) async fn end(
    pool: &deadpool_postgres::Pool,
    search: crate::SearchConfig,
) -> Result<(), StoreError> {
    let mut coordinator = pool.get().await.map_err(pool_err)?;
    let tx = coordinator.transaction().await.map_err(pg_err)?;
    tx.execute(LOCK_SQL, &[]).await.map_err(pg_err)?;
    // This transaction waits idle while the builds run (a GIN build of a large table
    // takes minutes): a server-wide idle timeout must not end it.
    tx.batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        .await
        .map_err(pg_err)?;
    let list = pending(&tx).await?;
    if list.is_empty() {
        tx.commit().await.map_err(pg_err)?;
        return Ok(());
    }
    let queue = Mutex::new(build_order(list, search));
    let builders = (0..BUILDERS).map(|_| build_queued(pool, &queue));
    for built in futures_util::future::join_all(builders).await {
        built?;
    }
    save_pending(&tx, &[]).await?;
    tx.commit().await.map_err(pg_err)
}

/// The indexes of `list` to build, as a stack whose top is the widest definition (a
/// rough stand-in for the costliest build: more key columns, longer keys), so that the
/// longest build does not start last. The free-text index is left out when
/// `text_index` is off, the tagged one unless `prefix_text_index` is on too.
fn build_order(list: Vec<(String, String)>, search: crate::SearchConfig) -> Vec<(String, String)> {
    let mut order: Vec<(String, String)> = list
        .into_iter()
        .filter(|(name, _)| search.text_index || name != PG_INDEX)
        .filter(|(name, _)| {
            (search.text_index && search.prefix_text_index) || name != PG_TAGGED_INDEX
        })
        .collect();
    order.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(&a.0)));
    order
}

/// Builds indexes taken from `queue` one at a time on one pooled connection until the
/// queue is empty.
async fn build_queued(
    pool: &deadpool_postgres::Pool,
    queue: &Mutex<Vec<(String, String)>>,
) -> Result<(), StoreError> {
    let mut client: Option<deadpool_postgres::Client> = None;
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let Some((name, sql)) = next else {
            return Ok(());
        };
        let client = match &mut client {
            Some(c) => c,
            None => client.insert(pool.get().await.map_err(pool_err)?),
        };
        build_one(client, &name, &sql).await?;
    }
}

/// Builds one index set aside unless it exists (built by a run killed before it could
/// empty the list), with [`BUILD_MEMORY`] for its sort.
async fn build_one(
    client: &mut deadpool_postgres::Client,
    name: &str,
    sql: &str,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let tx = client.transaction().await.map_err(pg_err)?;
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
    if exists {
        return tx.commit().await.map_err(pg_err);
    }
    tx.execute(
        "SELECT set_config('maintenance_work_mem', $1, true)
          WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes($1)",
        &[&BUILD_MEMORY],
    )
    .await
    .map_err(pg_err)?;
    tx.batch_execute(sql).await.map_err(|e| match pg_err(e) {
        StoreError::Database(e) => {
            StoreError::Database(format!("building index {name} again: {e}"))
        }
        other => other,
    })?;
    tx.commit().await.map_err(pg_err)?;
    tracing::info!(
        message = "Index built after a bulk load.",
        index = %name,
        seconds = started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, sql: &str) -> (String, String) {
        (name.to_owned(), sql.to_owned())
    }

    #[test]
    fn the_widest_definition_is_built_first() {
        let list = vec![
            def("events_ts", "CREATE INDEX events_ts ON events (ts, id)"),
            def(
                "events_method_status_path",
                "CREATE INDEX events_method_status_path ON events (method, status, path, ts, id)",
            ),
            def(
                "events_host",
                "CREATE INDEX events_host ON events (host, ts, id)",
            ),
        ];
        let mut order = build_order(
            list,
            crate::SearchConfig {
                text_index: true,
                prefix_text_index: true,
            },
        );
        let first = order.pop().map(|(n, _)| n);
        assert_eq!(first.as_deref(), Some("events_method_status_path"));
        let second = order.pop().map(|(n, _)| n);
        assert_eq!(second.as_deref(), Some("events_host"));
    }

    #[test]
    fn the_text_index_is_left_out_when_switched_off() {
        let list = vec![
            def("events_ts", "CREATE INDEX events_ts ON events (ts, id)"),
            def(PG_INDEX, "CREATE INDEX text ON events USING gin (x)"),
        ];
        let search = |text_index, prefix_text_index| crate::SearchConfig {
            text_index,
            prefix_text_index,
        };
        let off: Vec<String> = build_order(list.clone(), search(false, false))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(off, vec!["events_ts".to_owned()]);
        assert_eq!(build_order(list, search(true, false)).len(), 2);
    }

    #[test]
    fn the_tagged_index_needs_both_settings() {
        let list = vec![
            def("events_ts", "CREATE INDEX events_ts ON events (ts, id)"),
            def(PG_INDEX, "CREATE INDEX text ON events USING gin (x)"),
            def(
                PG_TAGGED_INDEX,
                "CREATE INDEX tagged ON events USING gin (y)",
            ),
        ];
        let names = |text_index, prefix_text_index| -> Vec<String> {
            let search = crate::SearchConfig {
                text_index,
                prefix_text_index,
            };
            let mut names: Vec<String> = build_order(list.clone(), search)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(true, false),
            vec!["events_text_bucket_trgm", "events_ts"]
        );
        assert_eq!(names(false, true), vec!["events_ts"]);
        assert_eq!(names(true, true).len(), 3);
    }
}
