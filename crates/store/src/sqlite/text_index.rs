//! The SQLite free-text index (see [`crate::sqlgen::text`]): kept in step with the
//! `[search]` setting at migration, and probed by the events listing.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{params_of, sqlite_err};
use crate::StoreError;
use crate::sqlgen::text::{self, SQLITE_TABLE};

/// Whether the index exists (then it is complete: it is created, filled and given its
/// triggers in one transaction).
pub(super) fn exists(conn: &Connection) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")
        .and_then(|mut s| s.query_row([SQLITE_TABLE], |_| Ok(())).optional())
        .map(|found| found.is_some())
        .map_err(sqlite_err)
}

/// [`exists`] for the writer inside its write transaction, after an insert into
/// `events`: the connection's loaded schema, not a scan of `sqlite_master`. That scan
/// reads every row of the schema table (~90k instructions with this schema, once per
/// write); the loaded schema is a hash look-up, and here it is current: the insert
/// checked the schema cookie as its transaction began (reloading the schema had it
/// changed), and no other connection can change the schema while this one holds the
/// write lock.
fn exists_in_write(conn: &Connection) -> Result<bool, StoreError> {
    conn.table_exists(Some(rusqlite::MAIN_DB), SQLITE_TABLE_C)
        .map_err(sqlite_err)
}

/// [`SQLITE_TABLE`] as the C string `table_exists` takes.
const SQLITE_TABLE_C: &std::ffi::CStr = c"events_text";

/// Builds the index from the stored events, or drops it, so that it exists exactly
/// when `enabled`. Building takes the write lock for as long as indexing every stored
/// event takes.
pub(super) fn sync(conn: &mut Connection, enabled: bool) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let present = exists(&tx)?;
    let old_layout = present && trigger_exists(&tx, text::SQLITE_OLD_LAYOUT)?;
    if present == enabled && !old_layout {
        return Ok(());
    }
    if old_layout {
        tracing::info!("rebuilding the free-text index of stored events in its new layout");
        tx.execute_batch(&text::sqlite_drop()).map_err(sqlite_err)?;
    }
    if enabled {
        tracing::info!("building the free-text index of stored events ([search] text_index)");
        tx.execute_batch(&text::sqlite_create())
            .map_err(sqlite_err)?;
        backfill(&tx)?;
    } else if !old_layout {
        tracing::info!("dropping the free-text index of stored events ([search] text_index)");
        tx.execute_batch(&text::sqlite_drop()).map_err(sqlite_err)?;
    }
    tx.commit().map_err(sqlite_err)
}

/// Whether the trigger `name` exists.
fn trigger_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?1")
        .and_then(|mut s| s.query_row([name], |_| Ok(())).optional())
        .map(|found| found.is_some())
        .map_err(sqlite_err)
}

/// Fills a new index from the stored events, [`text::BACKFILL_CHUNK`] ids at a time.
fn backfill(conn: &Connection) -> Result<(), StoreError> {
    let (first, last): (Option<i64>, Option<i64>) = conn
        .query_row("SELECT min(id), max(id) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sqlite_err)?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(());
    };
    let mut stmt = conn
        .prepare_cached(&text::sqlite_index_range())
        .map_err(sqlite_err)?;
    let mut at = first;
    while at <= last {
        let end = at.saturating_add(text::BACKFILL_CHUNK);
        stmt.execute([at, end]).map_err(sqlite_err)?;
        at = end;
    }
    Ok(())
}

/// Adds the events a write transaction inserted (ids from `first_id` on) to the index
/// when it exists; called by the writer inside that transaction, so that the index and
/// the events commit together.
pub(super) fn index_new(conn: &Connection, first_id: i64) -> Result<(), StoreError> {
    if !exists_in_write(conn)? {
        return Ok(());
    }
    conn.prepare_cached(&text::sqlite_index_range())
        .and_then(|mut s| s.execute([first_id, i64::MAX]))
        .map(|_| ())
        .map_err(sqlite_err)
}

/// How many candidates (counted up to the probe cap, 20,000) the index has for
/// `needle`, under the path bucket `bucket` when given; `None` when there is no index
/// or the needle is too short for it.
pub(super) fn candidates(
    conn: &Connection,
    needle: &str,
    bucket: Option<(i64, i64)>,
) -> Result<Option<i64>, StoreError> {
    let Some(probe) = text::sqlite_probe(needle, bucket) else {
        return Ok(None);
    };
    if !exists(conn)? {
        return Ok(None);
    }
    conn.prepare_cached(&probe.text)
        .and_then(|mut s| s.query_row(&params_of(&probe)[..], |r| r.get::<_, i64>(0)))
        .map(Some)
        .map_err(sqlite_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's look-up names the same table as the `sqlite_master` one.
    #[test]
    fn the_c_name_is_the_table_name() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(SQLITE_TABLE_C.to_str()?, SQLITE_TABLE);
        Ok(())
    }

    /// The loaded schema and `sqlite_master` agree while the index is built and
    /// dropped, on a connection that did not make the change too (it sees the new
    /// schema once a statement has checked the schema cookie, as the writer's insert
    /// does before every [`index_new`]).
    #[test]
    fn the_loaded_schema_agrees_with_sqlite_master() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.db");
        let mut a = Connection::open(&path)?;
        let b = Connection::open(&path)?;
        a.execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, x TEXT)")?;
        for enabled in [true, false, true] {
            let tx = a.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if enabled {
                tx.execute_batch(&format!(
                    "CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(body)"
                ))?;
            } else {
                tx.execute_batch(&format!("DROP TABLE {SQLITE_TABLE}"))?;
            }
            tx.commit()?;
            for conn in [&a, &b] {
                conn.execute("INSERT INTO events (x) VALUES ('a')", [])?;
                assert_eq!(exists_in_write(conn)?, enabled);
                assert_eq!(exists(conn)?, enabled);
            }
        }
        Ok(())
    }
}
