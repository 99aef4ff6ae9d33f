//! Builds the one parameterised SQL query a listing needs, for either backend. Values
//! always travel as parameters; only fixed SQL fragments are concatenated.
//!
//! This module holds the builder every listing shares; the queries themselves are in
//! one child module per group of tables, named like the store trait and the backend
//! modules that run them (`ingest` for the [`Store`](crate::Store) core, `security`,
//! `threats`, `decisions`, `vulns`, `reports`), and re-exported here.
//! `threats`, `decisions`, `analytics`, `posture`), and re-exported here.

use crate::codec::clean;
use crate::{Cursor, MAX_LIMIT, Page};
use palisade_core::Timestamp;

pub(crate) mod analytics;
mod decisions;
mod devices;
mod flows;
mod ingest;
mod jobs;
mod maintenance;
mod posture;
mod reports;
mod security;
pub(crate) mod text;
mod threats;
mod vulns;

pub(crate) use decisions::decisions_query;
pub(crate) use devices::{analytics_queries, devices_query};
pub(crate) use flows::flows_query;
pub(crate) use ingest::{
    CHECK_ROWS_PER_CANDIDATE, Drive, NETWORK_FIRST_CHUNK, PATH_INDEX, PG_TEXT_WALK, Probes,
    SMALL_MATCH, TEXT_FIRST_CHUNK, bounded_events_query, dead_letters_query, events_query,
    pg_after_walk, pg_bucket_bound, pg_bucket_probe, pg_large_network_word, pg_network_drives,
    pg_path_walk, pg_tagged_drive, pg_text_walk, pg_walk_further, pg_word_estimate, plan_rows,
    probe_query, sqlite_both_few, sqlite_drive, sqlite_fallback, sqlite_id_walk,
    sqlite_listed_query, sqlite_network_ids, sqlite_newer_rows, sqlite_text_candidates,
    sqlite_text_ids, sqlite_window_ids,
};
pub(crate) use jobs::jobs_query;
pub(crate) use maintenance::{
    BAD_JOBS_QUERY, COUNTED_TABLES, ORPHAN_QUERIES, bad_checkpoints_query, delete_older_query,
};
pub(crate) use posture::{credentials_query, posture_runs_query};
pub(crate) use reports::{decision_counts_sql, reports_query, top_sources_sql};
pub(crate) use security::audit_query;
pub(crate) use threats::{threat_stats_queries, threats_query};
pub(crate) use vulns::{assets_query, matches_query, open_counts_query};

/// Which placeholder syntax and text-matching operator to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?N` placeholders, `LIKE` (ASCII case-insensitive in SQLite).
    Sqlite,
    /// `$N` placeholders, `ILIKE`.
    Postgres,
}

/// A parameter value, typed so that PostgreSQL gets exactly the type of its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    /// BIGINT.
    I64(i64),
    /// INTEGER.
    I32(i32),
    /// TEXT.
    Text(String),
    /// BLOB / BYTEA.
    Bytes(Vec<u8>),
}

/// A finished query: SQL text plus its parameters in placeholder order.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

struct Builder {
    dialect: Dialect,
    conds: Vec<String>,
    params: Vec<Param>,
}

impl Builder {
    fn new(dialect: Dialect) -> Self {
        Builder {
            dialect,
            conds: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter and returns its placeholder.
    fn p(&mut self, value: Param) -> String {
        self.params.push(value);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn text(&mut self, s: &str) -> String {
        self.p(Param::Text(clean(s).into_owned()))
    }

    fn cond(&mut self, c: String) {
        self.conds.push(c);
    }

    /// `column >= from` when the listing has a lower time bound: the closed end of
    /// the half-open window `[from, to)` every listing takes.
    fn at_or_after(&mut self, column: &str, from: Option<Timestamp>) {
        if let Some(from) = from {
            let p = self.p(Param::I64(from.as_micros()));
            self.cond(format!("{column} >= {p}"));
        }
    }

    /// `column < to` when the listing has an upper time bound (the open end of
    /// [`Builder::at_or_after`]'s window).
    fn before(&mut self, column: &str, to: Option<Timestamp>) {
        if let Some(to) = to {
            let p = self.p(Param::I64(to.as_micros()));
            self.cond(format!("{column} < {p}"));
        }
    }

    /// The keyset step of a newest-first listing: rows strictly older than the cursor,
    /// `key` naming the time and id columns in order (`"created_at, id"`), so a page
    /// follows the previous one exactly even when rows share a time.
    fn older_than(&mut self, key: &str, cursor: Option<Cursor>) {
        if let Some(c) = cursor {
            let ts = self.p(Param::I64(c.ts));
            let id = self.p(Param::I64(c.id));
            self.cond(format!("({key}) < ({ts}, {id})"));
        }
    }

    fn finish(mut self, select: &str, order: &str, limit: u32) -> Sql {
        let limit = self.p(Param::I64(i64::from(limit) + 1));
        let where_clause = if self.conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conds.join(" AND "))
        };
        Sql {
            text: format!("{select}{where_clause} ORDER BY {order} LIMIT {limit}"),
            params: self.params,
        }
    }
}

/// The page size actually used: at least 1, at most [`MAX_LIMIT`].
pub(crate) fn clamp_limit(limit: u32) -> u32 {
    limit.clamp(1, MAX_LIMIT)
}

/// The smallest string greater than every string starting with `prefix`, or `None`
/// when there is none (the prefix is empty or made only of `char::MAX`).
///
/// Both backends compare text bytewise here (SQLite's BINARY collation, PostgreSQL's
/// "C"), and UTF-8 byte order is code-point order, so incrementing the last code point
/// that can be incremented (dropping any `char::MAX` after it) gives the exact bound and
/// always stays valid UTF-8. In UTF-8 no byte is ever 0xFF, so the byte-level "carry
/// past 0xFF" case is the code-point-level "carry past U+10FFFF" case handled here.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) {
            0xD7FF => Some('\u{E000}'),
            c => c.checked_add(1).and_then(char::from_u32),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Turns `limit + 1` fetched rows into a page: the extra row, when present, only says
/// that there is a next page, whose cursor is the position of the last row returned.
pub(crate) fn into_page<T>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = usize::try_from(clamp_limit(limit)).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|last| key(last).encode())
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// A `LIKE` pattern matching `needle` anywhere, with `\`, `%` and `_` escaped by `\`.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len() + 2);
    out.push('%');
    for c in clean(needle).chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("/a").as_deref(), Some("/b"));
        assert_eq!(prefix_upper_bound("").as_deref(), None);
        assert_eq!(
            prefix_upper_bound("caf\u{e9}").as_deref(),
            Some("caf\u{ea}")
        );
        assert_eq!(prefix_upper_bound("a\u{7f}").as_deref(), Some("a\u{80}"));
        assert_eq!(
            prefix_upper_bound("a\u{d7ff}").as_deref(),
            Some("a\u{e000}")
        );
        assert_eq!(
            prefix_upper_bound("ab\u{10ffff}\u{10ffff}").as_deref(),
            Some("ac")
        );
        assert_eq!(prefix_upper_bound("\u{10ffff}"), None);
        // The bound is above every extension and the byte order agrees.
        let p = "/x\u{ff}";
        let up = prefix_upper_bound(p).unwrap();
        for ext in ["", "\u{10ffff}", "zzz", "\u{ff}\u{ff}"] {
            let s = format!("{p}{ext}");
            assert!(s.as_bytes() < up.as_bytes(), "{s:?}");
            assert!(s.as_bytes() >= p.as_bytes());
        }
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
    }
}
