//! An SQLite events listing driven by the free-text index (`q` with few candidates),
//! read newest id first: the candidates' ids from the index, then their rows fetched
//! a slice at a time until a page is full and the time index proves that no candidate
//! left unread can come before the page's last row (see [`sqlgen::sqlite_text_ids`]).
//!
//! The FTS5 rowid holds the event id, not its time, so the candidates cannot be read
//! in time order. Events are written as they arrive, though, so a higher id is mostly
//! a newer event: the newest ids hold the page, and what is left to prove is that no
//! lower id is newer than its last row, which the time index answers without reading
//! a row (all rows newer than it have an id at least the lowest one read). When the
//! proof fails (events written out of time order, a backfill), or would cost more
//! than reading what is left, every candidate is read, as one query did before.

use std::cmp::Reverse;

use palisade_core::event::StoredEvent;
use rusqlite::Connection;

use super::network::{fetch, select_ids};
use super::{params_of, sqlite_err};
use crate::sqlgen::{self, Sql};
use crate::{EventQuery, StoreError};

/// Rows of the time index a check may read per candidate it would spare.
const CHECK_ROWS_PER_CANDIDATE: usize = sqlgen::CHECK_ROWS_PER_CANDIDATE as usize;

/// Checks tried before the rest of the candidates is read at once: a failed check
/// means the ids do not follow the time there, and another is unlikely to pass.
const MAX_CHECKS: u32 = 2;

/// The first `limit + 1` rows of `q` (newest first) among the free-text index's
/// candidates, whose ids `ids` ([`sqlgen::sqlite_text_ids`]) selects: the same rows
/// as one query reading and testing every candidate before sorting them. With
/// `small_window` (the query's time window holds fewer than
/// [`sqlgen::SMALL_MATCH`] rows) the candidates outside the window's ids are dropped
/// first.
///
/// What a check would read is foreseen from the ids, as if they followed the time:
/// about as many rows are newer than a row as there are ids above its own. When the
/// page is not expected to be proven within [`CHECK_ROWS_PER_CANDIDATE`] rows per
/// unread candidate (its matches are sparse, so its last row is old), the rest is
/// read at once instead, as one query would.
pub(super) fn list(
    conn: &Connection,
    q: &EventQuery,
    ids: &Sql,
    small_window: bool,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut candidates = select_ids(conn, ids)?;
    if small_window && let Some(window) = sqlgen::sqlite_window_ids(q) {
        keep_window(conn, &window, &mut candidates)?;
    }
    candidates.sort_unstable_by_key(|id| Reverse(*id));
    let wanted = usize::try_from(sqlgen::clamp_limit(q.limit))
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let newest = match candidates.first() {
        Some(_) => highest_id(conn)?,
        None => 0,
    };
    let mut found = Vec::new();
    let mut chunk = sqlgen::TEXT_FIRST_CHUNK;
    let mut checks = MAX_CHECKS;
    let mut rest = &candidates[..];
    while !rest.is_empty() {
        let (slice, after) = rest.split_at(chunk.min(rest.len()));
        rest = after;
        fetch(conn, q, slice, &mut found)?;
        newest_first(&mut found, wanted);
        let bound = rest.len().saturating_mul(CHECK_ROWS_PER_CANDIDATE);
        let lowest_read = slice.last().copied().unwrap_or(i64::MIN);
        let Some(last) = found.get(wanted - 1) else {
            // The page's end, at the rate of matches so far.
            let expected = ids_above(newest, lowest_read)
                .saturating_mul(wanted)
                .checked_div(found.len())
                .unwrap_or(usize::MAX);
            chunk = if expected < bound {
                chunk.saturating_mul(4)
            } else {
                rest.len()
            };
            continue;
        };
        if rest.is_empty() {
            break;
        }
        if checks == 0 || ids_above(newest, last.id) >= bound {
            chunk = rest.len();
            continue;
        }
        checks -= 1;
        if page_is_proven(conn, q, &found, lowest_read, bound)? {
            break;
        }
        chunk = chunk.saturating_mul(4);
    }
    newest_first(&mut found, wanted);
    Ok(found)
}

/// The highest event id (0 with no events).
pub(super) fn highest_id(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM events")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map_err(sqlite_err)
}

/// How many ids lie above `id` up to `newest`.
pub(super) fn ids_above(newest: i64, id: i64) -> usize {
    usize::try_from(newest.saturating_sub(id)).unwrap_or(0)
}

/// Drops the candidates whose id is outside the lowest and highest id of the time
/// window's rows ([`sqlgen::sqlite_window_ids`]); all of them when it is empty.
fn keep_window(
    conn: &Connection,
    window: &Sql,
    candidates: &mut Vec<i64>,
) -> Result<(), StoreError> {
    let (low, high) = conn
        .prepare_cached(&window.text)
        .and_then(|mut s| {
            s.query_row(&params_of(window)[..], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
        })
        .map_err(sqlite_err)?;
    match (low, high) {
        (Some(low), Some(high)) => candidates.retain(|id| (low..=high).contains(id)),
        _ => candidates.clear(),
    }
    Ok(())
}

/// Sorts `rows` as the listing orders them (newest first, then highest id first) and
/// keeps the first `wanted`.
pub(super) fn newest_first(rows: &mut Vec<StoredEvent>, wanted: usize) {
    rows.sort_unstable_by_key(|e| Reverse((e.event.ts.as_micros(), e.id)));
    rows.truncate(wanted);
}

/// Whether no candidate with an id below `lowest_read` (the unread ones) can come
/// before the last row of `page` (full: a page plus one): no row newer than that row,
/// inside the query's window and cursor, has such an id ([`sqlgen::sqlite_newer_rows`],
/// reading at most `bound` rows of the time index; that many prove nothing). A row as
/// old as the page's last has a lower id than it, so it comes after it.
pub(super) fn page_is_proven(
    conn: &Connection,
    q: &EventQuery,
    page: &[StoredEvent],
    lowest_read: i64,
    bound: usize,
) -> Result<bool, StoreError> {
    let Some(last) = page.last() else {
        return Ok(false);
    };
    let bound = i64::try_from(bound).unwrap_or(i64::MAX);
    let sql = sqlgen::sqlite_newer_rows(q, last.event.ts.as_micros(), bound);
    let (newer, lowest_newer) = conn
        .prepare_cached(&sql.text)
        .and_then(|mut s| {
            s.query_row(&params_of(&sql)[..], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
            })
        })
        .map_err(sqlite_err)?;
    let all_seen = newer < bound;
    Ok(all_seen && lowest_newer.is_none_or(|id| id >= lowest_read))
}
