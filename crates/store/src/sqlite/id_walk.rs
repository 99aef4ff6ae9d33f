//! An SQLite events listing that would walk the time index newest first with no
//! window and no cursor, read from the table itself, highest id first (see
//! [`sqlgen::sqlite_id_walk`]): a page plus one, sorted by time, then proven on the
//! time index alone ([`text_drive::page_is_proven`]); when the proof fails (events
//! written out of time order) the caller walks the time index as before.

use palisade_core::event::StoredEvent;
use rusqlite::Connection;

use super::ingest::event_from_row;
use super::text_drive::{highest_id, ids_above, newest_first, page_is_proven};
use super::{params_of, sqlite_err};
use crate::sqlgen::{self, Sql};
use crate::{EventQuery, StoreError};

/// The first `limit + 1` rows of `q` (newest first) when the table read highest id
/// first by `walk` ([`sqlgen::sqlite_id_walk`]) gives them provably; `None` when it
/// cannot prove them. The walk stops at a page plus one matches, so every id from the
/// lowest of them up was read; the proof may read twice as many rows of the time
/// index as ids lie above it (as many as the walk would read if the ids followed the
/// time), then it proves nothing.
pub(super) fn list(
    conn: &Connection,
    q: &EventQuery,
    walk: &Sql,
) -> Result<Option<Vec<StoredEvent>>, StoreError> {
    let mut rows = {
        let mut stmt = conn.prepare_cached(&walk.text).map_err(sqlite_err)?;
        let rows = stmt
            .query_map(&params_of(walk)[..], event_from_row)
            .map_err(sqlite_err)?;
        rows.map(|r| r.map_err(sqlite_err)?.into_stored())
            .collect::<Result<Vec<_>, _>>()?
    };
    let wanted = usize::try_from(sqlgen::clamp_limit(q.limit))
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let Some(lowest) = rows.iter().map(|e| e.id).min() else {
        return Ok(Some(rows));
    };
    let whole_table = rows.len() < wanted;
    newest_first(&mut rows, wanted);
    if whole_table {
        return Ok(Some(rows));
    }
    let bound = ids_above(highest_id(conn)?, lowest)
        .saturating_mul(2)
        .saturating_add(wanted);
    Ok(page_is_proven(conn, q, &rows, lowest, bound)?.then_some(rows))
}
