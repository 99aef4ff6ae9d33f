//! An SQLite events listing driven by a client network (a range of addresses matching
//! few rows), read in time order: the network's ids sorted from its index alone, then
//! the rows fetched a slice at a time until a page is full (see
//! [`sqlgen::sqlite_network_ids`]); when the text's candidates are few too, only the
//! network's rows among them ([`sqlgen::sqlite_both_few`]).

use std::collections::HashSet;
use std::fmt::Write as _;

use palisade_core::event::StoredEvent;
use rusqlite::Connection;

use super::ingest::event_from_row;
use super::{params_of, sqlite_err};
use crate::sqlgen::{self, Sql};
use crate::{EventQuery, StoreError};

/// The first `limit + 1` rows of `q` (newest first) among the rows whose ids `ids`
/// (the network's, from [`sqlgen::sqlite_network_ids`]) lists: the same rows as one
/// query driven by the network's index, which reads and tests every row of the network
/// before sorting. With `candidates` (the free-text index's for `q`, from
/// [`sqlgen::sqlite_text_candidates`], see [`sqlgen::sqlite_both_few`]) only the
/// network's rows among them are read: the others cannot hold the text.
pub(super) fn list(
    conn: &Connection,
    q: &EventQuery,
    ids: &Sql,
    candidates: Option<&Sql>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let keep: Option<HashSet<i64>> = match candidates {
        Some(candidates) => Some(select_ids(conn, candidates)?.into_iter().collect()),
        None => None,
    };
    if keep.as_ref().is_some_and(HashSet::is_empty) {
        return Ok(Vec::new());
    }
    let mut ordered = select_ids(conn, ids)?;
    if let Some(keep) = keep {
        ordered.retain(|id| keep.contains(id));
    }
    let wanted = usize::try_from(sqlgen::clamp_limit(q.limit))
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut found = Vec::new();
    let mut chunk = sqlgen::NETWORK_FIRST_CHUNK;
    let mut rest = &ordered[..];
    while !rest.is_empty() && found.len() < wanted {
        let (slice, after) = rest.split_at(chunk.min(rest.len()));
        rest = after;
        chunk = chunk.saturating_mul(4);
        // Each slice follows the previous one in the order, so its matches (sorted the
        // same way) come after every match found so far.
        fetch(conn, q, slice, &mut found)?;
    }
    found.truncate(wanted);
    Ok(found)
}

/// Appends the rows of `q` among the events whose ids `slice` lists, in the listing's
/// order ([`sqlgen::sqlite_listed_query`]): each slice a listing reads, here and in
/// the text drive.
pub(super) fn fetch(
    conn: &Connection,
    q: &EventQuery,
    slice: &[i64],
    found: &mut Vec<StoredEvent>,
) -> Result<(), StoreError> {
    let sql = sqlgen::sqlite_listed_query(q, &json_array(slice));
    let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
    let rows = stmt
        .query_map(&params_of(&sql)[..], event_from_row)
        .map_err(sqlite_err)?;
    for row in rows {
        found.push(row.map_err(sqlite_err)?.into_stored()?);
    }
    Ok(())
}

/// The ids the statement `ids` selects, in its order.
pub(super) fn select_ids(conn: &Connection, ids: &Sql) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(&ids.text).map_err(sqlite_err)?;
    stmt.query_map(&params_of(ids)[..], |r| r.get::<_, i64>(0))
        .map_err(sqlite_err)?
        .collect::<Result<_, _>>()
        .map_err(sqlite_err)
}

/// `ids` as a JSON array (`[1,2,3]`), the one parameter `json_each` reads.
pub(super) fn json_array(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 9 + 2);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_json_array() {
        assert_eq!(json_array(&[]), "[]");
        assert_eq!(json_array(&[7]), "[7]");
        assert_eq!(json_array(&[3, -1, 42]), "[3,-1,42]");
    }
}
