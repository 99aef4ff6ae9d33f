//! The free-text index behind `q` (the `text` filter of an events listing): the SQL
//! that creates and drops it on each backend, and the pieces of the events query that
//! use it.
//!
//! `q` is a case-insensitive substring searched in six columns. Without an index every
//! candidate row is read, so a rare word over filters matching millions of rows took
//! seconds. The index is optional ([`SearchConfig::text_index`](crate::SearchConfig))
//! because it costs ingest; with it or without it the results are the same:
//!
//! - SQLite: a contentless FTS5 table with the trigram tokenizer (`events_text`, one
//!   row per event, kept by triggers). It only narrows the candidates: a needle's
//!   trigrams, ANDed, match a superset of the events containing it (the tokenizer folds
//!   case, SQLite's `LIKE` folds ASCII only), and the query keeps its `LIKE` test.
//! - PostgreSQL: a `pg_trgm` GIN index on [`PG_TEXT_EXPR`], the six columns joined by a
//!   separator. The query always tests that expression (the planner uses the index when
//!   it exists), which is exactly the OR of the six column tests whenever the needle
//!   does not contain the separator; a needle that does keeps the per-column test.

use super::ingest::SMALL_MATCH;
use super::{Builder, Dialect, Param, Sql};

/// The columns `q` searches, in the order they are joined.
pub(crate) const TEXT_COLUMNS: [&str; 6] = [
    "path",
    "query",
    "user_agent",
    "referer",
    "message",
    "user_name",
];

/// The character joining the columns in the indexed text: a match can never span two
/// columns unless the needle contains it.
pub(crate) const SEPARATOR: char = '\u{1}';

/// Needles shorter than this (in characters) have no trigram: the index cannot narrow
/// them and the query tests every candidate row.
pub(crate) const MIN_INDEXED_CHARS: usize = 3;

/// The SQLite FTS5 table of event text.
pub(crate) const SQLITE_TABLE: &str = "events_text";

/// The PostgreSQL index on [`PG_TEXT_EXPR`].
pub(crate) const PG_INDEX: &str = "events_text_trgm";

/// The indexed text of an event in PostgreSQL: its six searched columns, NULL as
/// empty, joined by [`SEPARATOR`]; collated "C" so that `ILIKE` folds ASCII case only,
/// as SQLite's `LIKE` does, whichever collation the columns have.
pub(crate) const PG_TEXT_EXPR: &str = "((coalesce(path, '') || E'\\x01' || coalesce(query, '') || E'\\x01' || coalesce(user_agent, '') || E'\\x01' || coalesce(referer, '') || E'\\x01' || coalesce(message, '') || E'\\x01' || coalesce(user_name, '')) COLLATE \"C\")";

/// The same text in SQLite, over the `NEW` row of a trigger.
const SQLITE_NEW_TEXT: &str = "coalesce(new.path, '') || char(1) || coalesce(new.query, '') || char(1) || coalesce(new.user_agent, '') || char(1) || coalesce(new.referer, '') || char(1) || coalesce(new.message, '') || char(1) || coalesce(new.user_name, '')";

/// The same text in SQLite, over the `events` table (for the backfill).
const SQLITE_ROW_TEXT: &str = "coalesce(path, '') || char(1) || coalesce(query, '') || char(1) || coalesce(user_agent, '') || char(1) || coalesce(referer, '') || char(1) || coalesce(message, '') || char(1) || coalesce(user_name, '')";

/// Creates the SQLite index, its triggers and fills it from the stored events; run in
/// one transaction so that the index is never visible half-filled.
pub(crate) fn sqlite_create() -> String {
    format!(
        "CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(body, content='', contentless_delete=1, \
             tokenize='trigram case_sensitive 0', detail=none);
         CREATE TRIGGER {SQLITE_TABLE}_ai AFTER INSERT ON events BEGIN
             INSERT INTO {SQLITE_TABLE} (rowid, body) VALUES (new.id, {SQLITE_NEW_TEXT});
         END;
         CREATE TRIGGER {SQLITE_TABLE}_ad AFTER DELETE ON events BEGIN
             DELETE FROM {SQLITE_TABLE} WHERE rowid = old.id;
         END;
         CREATE TRIGGER {SQLITE_TABLE}_au AFTER UPDATE OF id, path, query, user_agent, referer, message, user_name ON events BEGIN
             DELETE FROM {SQLITE_TABLE} WHERE rowid = old.id;
             INSERT INTO {SQLITE_TABLE} (rowid, body) VALUES (new.id, {SQLITE_NEW_TEXT});
         END;
         INSERT INTO {SQLITE_TABLE} (rowid, body) SELECT id, {SQLITE_ROW_TEXT} FROM events;"
    )
}

/// Drops the SQLite index and its triggers.
pub(crate) fn sqlite_drop() -> String {
    format!(
        "DROP TRIGGER IF EXISTS {SQLITE_TABLE}_ai;
         DROP TRIGGER IF EXISTS {SQLITE_TABLE}_ad;
         DROP TRIGGER IF EXISTS {SQLITE_TABLE}_au;
         DROP TABLE IF EXISTS {SQLITE_TABLE};"
    )
}

/// Creates the PostgreSQL index with the operator class of the `pg_trgm` extension
/// installed in `schema` (an identifier already quoted by the database), wherever the
/// search path points.
pub(crate) fn pg_create(schema: &str) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {PG_INDEX} ON events USING gin ({PG_TEXT_EXPR} {schema}.gin_trgm_ops)"
    )
}

/// The quoted schema holding the `pg_trgm` extension; no row when it is not installed.
pub(crate) const PG_EXTENSION_SCHEMA: &str = "SELECT quote_ident(n.nspname)::text FROM pg_extension e \
     JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'";

/// Drops the PostgreSQL index.
pub(crate) fn pg_drop() -> String {
    format!("DROP INDEX IF EXISTS {PG_INDEX}")
}

/// The FTS5 query matching every event whose text contains all the trigrams of
/// `needle` (a superset of the events containing `needle`); `None` when the needle is
/// too short to have one.
pub(crate) fn fts_trigrams(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    if chars.len() < MIN_INDEXED_CHARS {
        return None;
    }
    let mut seen: Vec<String> = Vec::new();
    for window in chars.windows(MIN_INDEXED_CHARS) {
        // Each trigram is an FTS5 string: `"` doubled inside double quotes.
        let gram: String = window.iter().collect();
        let quoted = format!("\"{}\"", gram.replace('"', "\"\""));
        if !seen.contains(&quoted) {
            seen.push(quoted);
        }
    }
    Some(seen.join(" AND "))
}

/// The probe counting, up to [`SMALL_MATCH`], the SQLite index's candidates for
/// `needle`; `None` when the needle is too short for the index.
pub(crate) fn sqlite_probe(needle: &str) -> Option<Sql> {
    let fts = fts_trigrams(needle)?;
    let mut b = Builder::new(Dialect::Sqlite);
    let m = b.p(Param::Text(fts));
    let limit = b.p(Param::I64(SMALL_MATCH));
    Some(Sql {
        text: format!(
            "SELECT count(*) FROM (SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH {m} LIMIT {limit})"
        ),
        params: b.params,
    })
}

/// The condition limiting an SQLite query to the index's candidates for `needle`.
pub(super) fn sqlite_candidates(b: &mut Builder, needle: &str) -> Option<String> {
    let fts = fts_trigrams(needle)?;
    let m = b.p(Param::Text(fts));
    Some(format!(
        "id IN (SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH {m})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigram_queries_quote_and_dedupe() {
        assert_eq!(fts_trigrams("ab"), None);
        assert_eq!(fts_trigrams("abc").as_deref(), Some("\"abc\""));
        assert_eq!(
            fts_trigrams("aaaa").as_deref(),
            Some("\"aaa\""),
            "one trigram once"
        );
        assert_eq!(
            fts_trigrams("a\"bc").as_deref(),
            Some("\"a\"\"b\" AND \"\"\"bc\"")
        );
        // Characters, not bytes.
        assert_eq!(fts_trigrams("éü").as_deref(), None);
        assert_eq!(fts_trigrams("éüx").as_deref(), Some("\"éüx\""));
    }

    #[test]
    fn the_indexed_text_joins_the_searched_columns() {
        for col in TEXT_COLUMNS {
            assert!(
                PG_TEXT_EXPR.contains(&format!("coalesce({col}, '')")),
                "{col}"
            );
            assert!(
                SQLITE_ROW_TEXT.contains(&format!("coalesce({col}, '')")),
                "{col}"
            );
            assert!(
                SQLITE_NEW_TEXT.contains(&format!("coalesce(new.{col}, '')")),
                "{col}"
            );
        }
        assert!(sqlite_probe("ab").is_none());
        let probe = sqlite_probe("admin").map(|s| s.params).unwrap_or_default();
        assert_eq!(
            probe,
            vec![
                Param::Text("\"adm\" AND \"dmi\" AND \"min\"".into()),
                Param::I64(SMALL_MATCH)
            ]
        );
    }
}
