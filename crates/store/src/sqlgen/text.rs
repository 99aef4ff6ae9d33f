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
//!   row per event). It only narrows the candidates: a needle's trigrams, ANDed, match
//!   a superset of the events containing it (the tokenizer folds case, SQLite's `LIKE`
//!   folds ASCII only), and the query keeps its `LIKE` test. Its rowid is not the event
//!   id alone but [`path_bucket`] of the path's first three characters above the id
//!   ([`BUCKET_SHIFT`]): the rows of one path bucket are one rowid range, so a path
//!   prefix plus `q` is one range seek in each trigram's list. Without it, a word that
//!   is common overall but absent under a large prefix (`/tienda1/` and `windows`: 38%
//!   and 19% of the rows, none together) read millions of rows to prove the page
//!   empty. The writer adds each transaction's events in rowid order (see
//!   [`sqlite_index_range`]): a trigger adding them in id order made FTS5 flush its
//!   pending terms at almost every row (3.5× slower to fill).
//! - PostgreSQL: a two-column GIN index: the same path bucket as an equality key (an
//!   array of one element, [`pg_bucket_sql`], built-in `array_ops`), then a `pg_trgm`
//!   key set of [`PG_TEXT_EXPR`], the six columns joined by a separator. The query
//!   always tests that expression (the planner uses the index when it exists), which is
//!   exactly the OR of the six column tests whenever the needle does not contain the
//!   separator; a needle that does keeps the per-column test. A path prefix plus `q`
//!   can add [`pg_bucket_cond`], so that the index intersects the bucket's rows with
//!   the needle's trigrams itself instead of rechecking every row holding the word
//!   (the store decides when, see `postgres::ingest`). The first layout
//!   ([`PG_OLD_INDEX`], trigrams only) is replaced at the next start.

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

/// The PostgreSQL index: the path bucket, then the trigrams of [`PG_TEXT_EXPR`].
pub(crate) const PG_INDEX: &str = "events_text_bucket_trgm";

/// The PostgreSQL index of the first layout (the trigrams only): dropped when
/// [`PG_INDEX`] is built, and by [`pg_drop`].
pub(crate) const PG_OLD_INDEX: &str = "events_text_trgm";

/// The indexed text of an event in PostgreSQL: its six searched columns, NULL as
/// empty, joined by [`SEPARATOR`]; collated "C" so that `ILIKE` folds ASCII case only,
/// as SQLite's `LIKE` does, whichever collation the columns have.
pub(crate) const PG_TEXT_EXPR: &str = "((coalesce(path, '') || E'\\x01' || coalesce(query, '') || E'\\x01' || coalesce(user_agent, '') || E'\\x01' || coalesce(referer, '') || E'\\x01' || coalesce(message, '') || E'\\x01' || coalesce(user_name, '')) COLLATE \"C\")";

/// The same text in SQLite, over the `NEW` row of a trigger.
const SQLITE_NEW_TEXT: &str = "coalesce(new.path, '') || char(1) || coalesce(new.query, '') || char(1) || coalesce(new.user_agent, '') || char(1) || coalesce(new.referer, '') || char(1) || coalesce(new.message, '') || char(1) || coalesce(new.user_name, '')";

/// The FTS5 rowid of an event is `path_bucket << BUCKET_SHIFT | id`: ids up to 2^42
/// (4.4 trillion events) fit below the bucket, and the 21-bit bucket above them keeps
/// the rowid positive.
pub(crate) const BUCKET_SHIFT: u32 = 42;

/// The event id inside an FTS5 rowid.
pub(crate) const ID_MASK: i64 = (1 << BUCKET_SHIFT) - 1;

/// Characters of the path that make its bucket: a path prefix at least this long
/// names one bucket.
pub(crate) const BUCKET_CHARS: usize = 3;

/// The bucket of a path (or of a path prefix of at least [`BUCKET_CHARS`] characters:
/// every path starting with it has this bucket): its first three characters, 7 bits
/// each (code point & 127; a missing character is 0). Exactly what
/// [`sqlite_bucket_sql`] computes in SQL, which is what the rowids hold.
pub(crate) fn path_bucket(path: &str) -> i64 {
    let mut chars = path.chars().map(|c| i64::from(u32::from(c) & 127));
    let mut key = 0;
    for _ in 0..BUCKET_CHARS {
        key = (key << 7) | chars.next().unwrap_or(0);
    }
    key
}

/// [`path_bucket`] of the column (or `new.`/`old.` column) `path`, in SQLite: `substr`
/// and `unicode` count characters, as Rust's `chars` does. SQLite gives `<<`, `&` and
/// `|` the same precedence, hence every parenthesis.
fn sqlite_bucket_sql(path: &str) -> String {
    format!(
        "(((coalesce(unicode(substr({path}, 1, 1)), 0) & 127) << 14) | ((coalesce(unicode(substr({path}, 2, 1)), 0) & 127) << 7) | (coalesce(unicode(substr({path}, 3, 1)), 0) & 127))"
    )
}

/// The FTS5 rowid of the event in `row` (`""`, `new.` or `old.`).
fn sqlite_rowid_sql(row: &str) -> String {
    format!(
        "(({} << {BUCKET_SHIFT}) | {row}id)",
        sqlite_bucket_sql(&format!("{row}path"))
    )
}

/// The same text in SQLite, over the `events` table (for the backfill).
const SQLITE_ROW_TEXT: &str = "coalesce(path, '') || char(1) || coalesce(query, '') || char(1) || coalesce(user_agent, '') || char(1) || coalesce(referer, '') || char(1) || coalesce(message, '') || char(1) || coalesce(user_name, '')";

/// Creates the SQLite index and its triggers, empty: the store then fills it from the
/// stored events ([`sqlite_index_range`]) in the same transaction, so that the index is
/// never visible half-filled. New events are added by the writer, not by a trigger:
/// the insert trigger of the first layout is how [`SQLITE_OLD_LAYOUT`] knows an index
/// to rebuild.
pub(crate) fn sqlite_create() -> String {
    let new_rowid = sqlite_rowid_sql("new.");
    let old_rowid = sqlite_rowid_sql("old.");
    format!(
        "CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(body, content='', contentless_delete=1, \
             tokenize='trigram case_sensitive 0', detail=none);
         CREATE TRIGGER {SQLITE_TABLE}_ad AFTER DELETE ON events BEGIN
             DELETE FROM {SQLITE_TABLE} WHERE rowid = {old_rowid};
         END;
         CREATE TRIGGER {SQLITE_TABLE}_au AFTER UPDATE OF id, path, query, user_agent, referer, message, user_name ON events BEGIN
             DELETE FROM {SQLITE_TABLE} WHERE rowid = {old_rowid};
             INSERT INTO {SQLITE_TABLE} (rowid, body) VALUES ({new_rowid}, {SQLITE_NEW_TEXT});
         END;"
    )
}

/// Adds the events with `?1 <= id < ?2` to the SQLite index, in rowid order, so that
/// FTS5 appends to its pending lists instead of flushing them at almost every row.
/// The writer calls it for the ids one transaction inserted (one writer, increasing
/// ids); building the index calls it for chunks of [`BACKFILL_CHUNK`] ids, so that the
/// sort stays in memory instead of spilling the whole store's text to temporary files.
pub(crate) fn sqlite_index_range() -> String {
    let rowid = sqlite_rowid_sql("");
    format!(
        "INSERT INTO {SQLITE_TABLE} (rowid, body) SELECT {rowid}, {SQLITE_ROW_TEXT} FROM events WHERE id >= ?1 AND id < ?2 ORDER BY 1"
    )
}

/// Ids per statement when the index is built from the stored events.
pub(crate) const BACKFILL_CHUNK: i64 = 100_000;

/// The trigger only the first layout of the index had (rowid = id, filled by an insert
/// trigger): when it exists, the index is rebuilt.
pub(crate) const SQLITE_OLD_LAYOUT: &str = "events_text_ai";

/// Drops the SQLite index and its triggers.
pub(crate) fn sqlite_drop() -> String {
    format!(
        "DROP TRIGGER IF EXISTS {SQLITE_OLD_LAYOUT};
         DROP TRIGGER IF EXISTS {SQLITE_TABLE}_ad;
         DROP TRIGGER IF EXISTS {SQLITE_TABLE}_au;
         DROP TABLE IF EXISTS {SQLITE_TABLE};"
    )
}

/// [`path_bucket`] of the text expression `path` in PostgreSQL: `substr` counts
/// characters and `ascii` gives a character's code point (in a UTF-8 database; the
/// query computes the prefix's bucket with this same SQL, never in Rust, so the two
/// agree in any encoding). PostgreSQL gives `<<`, `&` and `|` the same precedence,
/// hence every parenthesis.
pub(crate) fn pg_bucket_sql(path: &str) -> String {
    let at = |i: u32| format!("(ascii(substr(coalesce({path}, ''), {i}, 1)) & 127)");
    format!("(({} << 14) | ({} << 7) | {})", at(1), at(2), at(3))
}

/// The first key of [`PG_INDEX`]: the row's path bucket, as an array of one element
/// so that GIN's built-in `array_ops` index it (no `btree_gin` needed).
fn pg_bucket_key() -> String {
    format!("(ARRAY[{}])", pg_bucket_sql("path"))
}

/// Creates the PostgreSQL index with the operator class of the `pg_trgm` extension
/// installed in `schema` (an identifier already quoted by the database), wherever the
/// search path points, and drops the index of the first layout.
pub(crate) fn pg_create(schema: &str) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {PG_INDEX} ON events USING gin ({key}, {PG_TEXT_EXPR} {schema}.gin_trgm_ops);
         DROP INDEX IF EXISTS {PG_OLD_INDEX}",
        key = pg_bucket_key()
    )
}

/// The condition keeping the rows of the path bucket of `prefix` (a parameter already
/// bound, holding a prefix of at least [`BUCKET_CHARS`] characters, so that every
/// path starting with it has its bucket): redundant with the prefix test, it lets
/// [`PG_INDEX`] intersect the bucket with the needle's trigrams.
pub(crate) fn pg_bucket_cond(prefix_param: &str) -> String {
    format!(
        "{} @> ARRAY[{}]",
        pg_bucket_key(),
        pg_bucket_sql(&format!("{prefix_param}::text"))
    )
}

/// The second PostgreSQL index: a GIN of [`PG_TAGGED_FN`] over the path and
/// [`PG_TEXT_EXPR`], the row's word trigrams each tagged with the path's first
/// [`BUCKET_CHARS`] characters. A path prefix of that length plus `q` then reads, in
/// each of the needle's trigram lists, only the rows of the prefix's bucket: through
/// [`PG_INDEX`] the bucket's list (3.8M rows for `/ti` at 10M events) was decoded and
/// intersected with the word's (up to 1.9M), 130–560 ms, where the tagged lists hold
/// about the answer (docs/BENCHMARKS.md, pgquery2 and pgq3).
pub(crate) const PG_TAGGED_INDEX: &str = "events_text_tagged_trgm";

/// The `IMMUTABLE` SQL function behind [`PG_TAGGED_INDEX`], `(path, text) → text[]`:
/// `left(path, 3)` before each `pg_trgm` trigram of `text` that lies inside a word
/// (no padding space) and is printed as itself (three ASCII letters or digits; the
/// others are printed as a hash, `0x…`, whether padded or not). Applied to a prefix
/// and a needle, it gives the keys every row holding the needle under the prefix has.
pub(crate) const PG_TAGGED_FN: &str = "palisade_tagged_trgm";

/// Creates [`PG_TAGGED_FN`] (with `show_trgm` of the `pg_trgm` extension installed in
/// `schema`, named in full so that the function does not depend on the search path)
/// and [`PG_TAGGED_INDEX`].
pub(crate) fn pg_create_tagged(schema: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {PG_TAGGED_FN}(path text, body text) RETURNS text[] \
             LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS \
             $$SELECT ARRAY(SELECT left(path, {BUCKET_CHARS}) || g FROM unnest({schema}.show_trgm(body)) AS g \
               WHERE length(g) = 3 AND strpos(g, ' ') = 0)$$;
         CREATE INDEX IF NOT EXISTS {PG_TAGGED_INDEX} ON events USING gin ({})",
        pg_tagged_key()
    )
}

/// The indexed expression of [`PG_TAGGED_INDEX`].
fn pg_tagged_key() -> String {
    format!("{PG_TAGGED_FN}(coalesce(path, ''), {PG_TEXT_EXPR})")
}

/// Whether `needle` has a trigram [`PG_TAGGED_FN`] keeps, whatever the database's
/// encoding and locale: three ASCII letters or digits in a row. Without one the
/// tagged key would be empty (an `@>` every row satisfies) and the query keeps the
/// bucket of [`PG_INDEX`] instead.
pub(crate) fn pg_has_tagged_trigram(needle: &str) -> bool {
    let mut run = 0;
    for c in needle.chars() {
        run = if c.is_ascii_alphanumeric() {
            run + 1
        } else {
            0
        };
        if run >= MIN_INDEXED_CHARS {
            return true;
        }
    }
    false
}

/// The condition keeping the rows whose tagged trigrams hold all those of the needle
/// under the prefix (parameters already bound: the prefix, of at least
/// [`BUCKET_CHARS`] characters, and the needle as written): redundant with the prefix
/// and text tests, it lets [`PG_TAGGED_INDEX`] answer with about the matching rows.
pub(crate) fn pg_tagged_cond(prefix_param: &str, needle_param: &str) -> String {
    format!(
        "{} @> {PG_TAGGED_FN}({prefix_param}::text, {needle_param}::text)",
        pg_tagged_key()
    )
}

/// The quoted schema holding the `pg_trgm` extension; no row when it is not installed.
pub(crate) const PG_EXTENSION_SCHEMA: &str = "SELECT quote_ident(n.nspname)::text FROM pg_extension e \
     JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'";

/// Drops the PostgreSQL indexes (either layout, and the tagged one with its function).
pub(crate) fn pg_drop() -> String {
    format!(
        "DROP INDEX IF EXISTS {PG_INDEX}; DROP INDEX IF EXISTS {PG_OLD_INDEX}; {}",
        pg_drop_tagged()
    )
}

/// Drops [`PG_TAGGED_INDEX`] and its function only.
pub(crate) fn pg_drop_tagged() -> String {
    format!(
        "DROP INDEX IF EXISTS {PG_TAGGED_INDEX}; DROP FUNCTION IF EXISTS {PG_TAGGED_FN}(text, text)"
    )
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

/// The rowid range of the index holding the events under `prefix`, when the prefix is
/// long enough to name one bucket.
pub(crate) fn bucket_range(prefix: Option<&str>) -> Option<(i64, i64)> {
    let prefix = prefix?;
    (prefix.chars().count() >= BUCKET_CHARS).then(|| {
        let low = path_bucket(prefix) << BUCKET_SHIFT;
        (low, low | ID_MASK)
    })
}

/// The SELECT of the event ids the SQLite index has as candidates for `needle` (and,
/// with `bucket`, under that path bucket); `None` when the needle is too short.
pub(super) fn sqlite_candidate_ids(
    b: &mut Builder,
    needle: &str,
    bucket: Option<(i64, i64)>,
) -> Option<String> {
    let fts = fts_trigrams(needle)?;
    let m = b.p(Param::Text(fts));
    let range = match bucket {
        Some((low, high)) => {
            let low = b.p(Param::I64(low));
            let high = b.p(Param::I64(high));
            format!(" AND rowid BETWEEN {low} AND {high}")
        }
        None => String::new(),
    };
    Some(format!(
        "SELECT rowid & {ID_MASK} FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH {m}{range}"
    ))
}

/// The probe counting, up to [`SMALL_MATCH`], the SQLite index's candidates for
/// `needle` (under the path bucket, if any); `None` when the needle is too short for
/// the index.
pub(crate) fn sqlite_probe(needle: &str, bucket: Option<(i64, i64)>) -> Option<Sql> {
    let mut b = Builder::new(Dialect::Sqlite);
    let ids = sqlite_candidate_ids(&mut b, needle, bucket)?;
    let limit = b.p(Param::I64(SMALL_MATCH));
    Some(Sql {
        text: format!("SELECT count(*) FROM ({ids} LIMIT {limit})"),
        params: b.params,
    })
}

/// The condition limiting an SQLite query to the index's candidates for `needle`
/// (under the path bucket, if any).
pub(super) fn sqlite_candidates(
    b: &mut Builder,
    needle: &str,
    bucket: Option<(i64, i64)>,
) -> Option<String> {
    let ids = sqlite_candidate_ids(b, needle, bucket)?;
    Some(format!("id IN ({ids})"))
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
    fn a_tagged_trigram_is_three_ascii_letters_or_digits_in_a_row() {
        for needle in ["abc", "Win", "x/a1b", "\u{e9}abc\u{e9}", "%20sel"] {
            assert!(pg_has_tagged_trigram(needle), "{needle:?}");
        }
        for needle in [
            "ab",
            "a b c",
            "ab/cd",
            "\u{e9}\u{e9}\u{e9}",
            "ab\u{e9}",
            "a_b-c%d",
            "",
        ] {
            assert!(!pg_has_tagged_trigram(needle), "{needle:?}");
        }
        let create = pg_create_tagged("\"ext\"");
        assert!(create.contains("\"ext\".show_trgm(body)"), "{create}");
        assert!(
            create.contains(&format!(
                "CREATE INDEX IF NOT EXISTS {PG_TAGGED_INDEX} ON events USING gin ({PG_TAGGED_FN}(coalesce(path, ''), {PG_TEXT_EXPR}))"
            )),
            "{create}"
        );
        assert!(pg_drop().contains(PG_TAGGED_INDEX) && pg_drop().contains(PG_TAGGED_FN));
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
        assert!(sqlite_probe("ab", None).is_none());
        let probe = sqlite_probe("admin", None)
            .map(|s| s.params)
            .unwrap_or_default();
        assert_eq!(
            probe,
            vec![
                Param::Text("\"adm\" AND \"dmi\" AND \"min\"".into()),
                Param::I64(SMALL_MATCH)
            ]
        );
    }

    #[test]
    fn the_bucket_is_the_same_in_rust_and_in_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let sql = format!("SELECT {}", sqlite_bucket_sql("?1"));
        for path in [
            "/tienda1/index.jsp",
            "/ti",
            "/t",
            "",
            "/caf\u{e9}/x",
            "\u{e9}\u{1f600}z",
            "http://x/",
        ] {
            let in_sql: i64 = conn.query_row(&sql, [path], |r| r.get(0)).unwrap();
            assert_eq!(in_sql, path_bucket(path), "{path:?}");
        }
        let null: i64 = conn
            .query_row(&sql, [Option::<String>::None], |r| r.get(0))
            .unwrap();
        assert_eq!(null, 0);
        // Every path under a prefix of three characters or more has its bucket.
        assert_eq!(path_bucket("/tienda1/x"), path_bucket("/ti"));
        assert_ne!(path_bucket("/tienda1/x"), path_bucket("/te"));
        assert_eq!(bucket_range(Some("/t")), None);
        let (low, high) = bucket_range(Some("/tienda1/")).unwrap();
        assert_eq!(low >> BUCKET_SHIFT, path_bucket("/ti"));
        assert_eq!(high - low, ID_MASK);
        assert!(high > 0, "the rowid stays positive");
        assert_eq!(
            bucket_range(Some("\u{10ffff}\u{10ffff}\u{10ffff}")).map(|(_, h)| h > 0),
            Some(true)
        );
    }
}
