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

/// Builds the index from the stored events, or drops it, so that it exists exactly
/// when `enabled`. Building takes the write lock for as long as indexing every stored
/// event takes.
pub(super) fn sync(conn: &mut Connection, enabled: bool) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    if exists(&tx)? == enabled {
        return Ok(());
    }
    if enabled {
        tracing::info!("building the free-text index of stored events ([search] text_index)");
        tx.execute_batch(&text::sqlite_create())
            .map_err(sqlite_err)?;
    } else {
        tracing::info!("dropping the free-text index of stored events ([search] text_index)");
        tx.execute_batch(&text::sqlite_drop()).map_err(sqlite_err)?;
    }
    tx.commit().map_err(sqlite_err)
}

/// How many candidates (counted up to the probe cap, 20,000) the
/// index has for `needle`; `None` when there is no index or the needle is too short
/// for it.
pub(super) fn candidates(conn: &Connection, needle: &str) -> Result<Option<i64>, StoreError> {
    let Some(probe) = text::sqlite_probe(needle) else {
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
