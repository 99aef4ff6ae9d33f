//! Bulk loads: a one-shot import into a table smaller than itself sets the secondary
//! indexes of `events` that take their entries at random places aside and builds them
//! once at the end.
//!
//! Why: each stored event adds one entry to every index, and the `client_ip` and path
//! indexes take them at random places, so an import spends most of its time rewriting
//! index pages. `CREATE INDEX` over the finished table sorts once instead: for the
//! generated 1M-line log, 7.0 s of CPU (1.4 s rows + 5.7 s indexes) against 12.6 s with
//! the indexes kept, and 2.4× less wall time (`scripts/bench-ingest-sql.sh`,
//! docs/BENCHMARKS.md "Ingest (stop 23)").
//!
//! The indexes whose entries arrive in order ([`KEPT_DURING_LOAD`]) are kept up to date
//! instead: each row adds at the end of the index or of one of a few runs, about what
//! its share of a build costs, but spent while the import keeps both cores busy anyway,
//! whereas the builds at the end run alone on one core (docs/BENCHMARKS.md, ingest6).
//!
//! Safety: the definitions set aside are written to `settings` in the same transaction
//! that drops the indexes, and every [`super::SqliteStore`] migration builds whatever is
//! listed there, so a killed import never leaves the table without its indexes past the
//! next start. The indexes are read from the schema, not from a list kept here, so any
//! index a later migration adds is set aside and rebuilt the same way.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::sqlite_err;
use crate::StoreError;
use palisade_core::Timestamp;

/// `settings` key of the index definitions set aside: a JSON array of `[name, sql]`.
const PENDING_KEY: &str = "bulk_load.events_indexes";

/// Indexes of `events` a bulk load keeps up to date rather than setting aside: their
/// entries arrive in order, so each row appends to the index (`ts`; `host`, the same
/// value for a whole file) or to the end of one of a handful of runs (`status`,
/// `method`), touching the same few pages batch after batch. Kept, they cost the
/// import about what building them afterwards costs, but that work overlaps the
/// inspection instead of running alone at the end on one core: the 1M-line import's
/// index phase was 2.4 s shorter on average in four alternated pairs (3.3–5.3 s →
/// 1.7–3.5 s), with no more CPU in all (docs/BENCHMARKS.md, ingest6). An index not
/// listed here (any a later migration adds) is set aside, the safe side.
const KEPT_DURING_LOAD: [&str; 4] = ["events_ts", "events_host", "events_status", "events_method"];

/// Sorter threads `CREATE INDEX` may use besides the connection's own. Each sorts a run
/// of up to [`SORT_CACHE_KIB`] in memory, so every thread adds that much to the
/// process; one keeps both cores of a small machine busy (with detection on, the
/// inspector is finishing on them anyway).
const SORT_THREADS: i64 = 1;

/// The page cache while the indexes are built, KiB: SQLite sorts runs of this size in
/// memory before writing them to a temporary file, one per sorter thread at a time.
const SORT_CACHE_KIB: i64 = 4_096;

/// The writer's page cache during a bulk load, KiB. Without the indexes the rows only
/// append, so a large cache buys nothing and would only hold the table's newest pages
/// in the process's memory.
const BULK_CACHE_KIB: i64 = 8_192;

/// The pending definitions, `[]` when none.
fn pending(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [PENDING_KEY],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite_err)?;
    match value {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_str(&v).map_err(|e| {
            StoreError::Corrupt(format!(
                "setting {PENDING_KEY} is not a list of indexes: {e}"
            ))
        }),
    }
}

fn save_pending(conn: &Connection, list: &[(String, String)]) -> Result<(), StoreError> {
    if list.is_empty() {
        conn.execute("DELETE FROM settings WHERE key = ?1", [PENDING_KEY])
            .map_err(sqlite_err)?;
        return Ok(());
    }
    let value = serde_json::to_string(list)
        .map_err(|e| StoreError::Database(format!("cannot encode index list: {e}")))?;
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![PENDING_KEY, value, Timestamp::now().as_micros()],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// Sets the secondary indexes of `events` aside (but those of [`KEPT_DURING_LOAD`])
/// when the table holds fewer rows than the import will add (rebuilding then costs less
/// than maintaining them). Returns whether any are now set aside.
pub(super) fn begin(conn: &mut Connection, expected_rows: u64) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let mut list = pending(&tx)?;
    let rows: i64 = tx
        .query_row(
            "SELECT coalesce((SELECT max(id) FROM events) - (SELECT min(id) FROM events) + 1, 0)",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    let worth_it = match u64::try_from(rows) {
        Ok(rows) => expected_rows > rows,
        Err(_) => true,
    };
    if !worth_it {
        // Indexes left aside by an import that was killed are the migration's to
        // build; this import keeps them up to date as it goes.
        return Ok(!list.is_empty());
    }
    // `sql IS NULL`: the automatic indexes of constraints, which cannot be dropped.
    let current: Vec<(String, String)> = {
        let mut stmt = tx
            .prepare(
                "SELECT name, sql FROM sqlite_master
                 WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL
                 ORDER BY name",
            )
            .map_err(sqlite_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sqlite_err)?;
        rows.collect::<Result<_, _>>().map_err(sqlite_err)?
    };
    for (name, sql) in current {
        if KEPT_DURING_LOAD.contains(&name.as_str()) {
            continue;
        }
        tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .map_err(sqlite_err)?;
        if !list.iter().any(|(n, _)| *n == name) {
            list.push((name, sql));
        }
    }
    save_pending(&tx, &list)?;
    tx.commit().map_err(sqlite_err)?;
    conn.pragma_update(None, "cache_size", -BULK_CACHE_KIB)
        .map_err(sqlite_err)?;
    Ok(!list.is_empty())
}

/// Builds every index set aside, one transaction each (a kill in between keeps the
/// rest listed). The sort spills to temporary files rather than memory, so a large
/// table does not raise the process's memory.
pub(super) fn end(conn: &mut Connection) -> Result<(), StoreError> {
    let list = pending(conn)?;
    if list.is_empty() {
        return Ok(());
    }
    conn.pragma_update(None, "temp_store", "FILE")
        .map_err(sqlite_err)?;
    conn.pragma_update(None, "threads", SORT_THREADS)
        .map_err(sqlite_err)?;
    conn.pragma_update(None, "cache_size", -SORT_CACHE_KIB)
        .map_err(sqlite_err)?;
    let built = build_all(conn, list);
    let restored = conn
        .pragma_update(None, "temp_store", "MEMORY")
        .and_then(|()| conn.pragma_update(None, "threads", 0))
        .and_then(|()| conn.pragma_update(None, "cache_size", -super::WRITER_CACHE_KIB))
        .map_err(sqlite_err);
    built.and(restored)
}

fn build_all(conn: &mut Connection, mut list: Vec<(String, String)>) -> Result<(), StoreError> {
    while let Some((name, sql)) = list.first().cloned() {
        let started = std::time::Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_err)?;
        let exists: bool = tx
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [&name],
                |r| r.get(0),
            )
            .map_err(sqlite_err)?;
        if !exists {
            tx.execute_batch(&sql)
                .map_err(|e| StoreError::Database(format!("building index {name} again: {e}")))?;
        }
        list.remove(0);
        save_pending(&tx, &list)?;
        tx.commit().map_err(sqlite_err)?;
        tracing::info!(
            message = "Index built after a bulk load.",
            index = %name,
            seconds = started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
