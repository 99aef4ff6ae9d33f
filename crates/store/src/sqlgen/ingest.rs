//! The listing queries of the ingest tables: events (with the SQLite driving-index
//! choice) and dead letters.

use super::text::{self, SEPARATOR, TEXT_COLUMNS};
use super::{Builder, Dialect, Param, Sql, clamp_limit, contains_pattern, prefix_upper_bound};
use crate::codec::clean;
use crate::codec::ingest::{DEAD_LETTER_SELECT_COLUMNS, EVENT_SELECT_COLUMNS};
use crate::{DeadLetterQuery, EventQuery};

/// Which index drives an events query.
///
/// SQLite's planner has no statistics unless `ANALYZE` ran over the whole table (too
/// slow to run on every start) and guesses badly without them: on 10M events it drove a
/// `client_ip + status class` query with the status index and took seconds. So the
/// SQLite store decides (see [`sqlite_drive`]) and the query says it with a unary `+`,
/// which keeps a column's index out of the plan without changing its value.
/// PostgreSQL keeps its own statistics and gets [`Drive::Planner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drive {
    /// Leave the choice to the database.
    Planner,
    /// This filter column's index: it narrows the rows to few.
    Column(&'static str),
    /// The `(method, status, path, ts)` index: the path prefix, with the method and
    /// status (or every method and status there is), narrows the rows to few.
    Path,
    /// The time index: walk newest first and filter (the filters match many rows).
    Time,
    /// The free-text index: the text matches few rows (fetched by id, then sorted).
    /// In PostgreSQL: the trigrams of the GIN index (with a prefix's path bucket), the
    /// other filter columns hidden from the planner (see [`pg_text_walk`]).
    Text,
    /// PostgreSQL: the client network's rows (few: a cold /24) through the client index
    /// alone, every other filter and the text hidden from the planner, then sorted.
    /// Left alone, the planner ANDed them with the GIN bitmap of the word, which at 10M
    /// events holds millions of rows (`windows`: 1.9M, 778 ms) for 8,900 in the network.
    /// SQLite reads it as `Column("client_ip")`.
    Network,
    /// SQLite: the rows whose ids a JSON array parameter lists (a slice of a client
    /// network's ids in time order, see [`sqlite_network_ids`]), fetched by id, every
    /// filter column hidden.
    Listed,
    /// PostgreSQL: [`Drive::Text`] through the tagged trigram index
    /// ([`text::PG_TAGGED_INDEX`]) for a path prefix of [`text::BUCKET_CHARS`]
    /// characters or more and a needle with a trigram it keeps: the other filter
    /// columns and the text test hidden from the planner (the text test stays, exact,
    /// on the rows the index returns). See [`pg_tagged_drive`].
    Tagged,
}

/// Rows a probe counts up to. Driving by an index that returns rows out of time order
/// means reading every row it matches, then sorting: worth it below this many (a few
/// tens of milliseconds), and only when walking the time index would read more.
pub(crate) const SMALL_MATCH: i64 = 20_000;

/// The SQLite index serving a path prefix together with the method and status filters.
pub(crate) const PATH_INDEX: &str = "events_method_status_path";

/// What the SQLite store probed before choosing a driving index: how many rows (up to
/// [`SMALL_MATCH`]) the client network, the path prefix (with the method and status
/// filters), the free-text index (under the path prefix's bucket) and the time window
/// each match (`None`: no such filter, or no text index), and about how many rows the
/// table holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Probes {
    /// Rows in the client network.
    pub client: Option<i64>,
    /// Rows under the path prefix with the method and status asked for.
    pub path: Option<i64>,
    /// Candidates of the free-text index for `q`.
    pub text: Option<i64>,
    /// Rows in the time window (`from` and/or `to`).
    pub window: Option<i64>,
    /// Rows in the table (`max(id) - min(id) + 1`).
    pub rows: i64,
}

/// Whether the client filter is one address: then `(client_ip, ts)` returns its rows
/// in time order, like an equality.
fn one_address(q: &EventQuery) -> bool {
    q.client.is_some_and(|net| net.first == net.last)
}

/// The SQLite driving index for a query, given the [`Probes`].
///
/// The probed filter matching fewest rows (under [`SMALL_MATCH`]) drives, unless walking
/// the time index newest first is expected to reach a page sooner: with the probed
/// filters independent, that walk reads about `page / (product of their fractions of
/// the table)` rows, and never more than a small time window holds. Otherwise
/// equality filters with a `(column, ts)` index drive (one client address first),
/// since they also return rows in time order; else the time index.
pub(crate) fn sqlite_drive(q: &EventQuery, probes: &Probes) -> Drive {
    let exact_status = matches!(q.status, Some(s) if s.range().0 == s.range().1);
    let probed = [
        (
            Drive::Column("client_ip"),
            probes.client.filter(|_| q.client.is_some()),
        ),
        (Drive::Path, probes.path.filter(|_| q.path_prefix.is_some())),
        (Drive::Text, probes.text.filter(|_| q.text.is_some())),
    ];
    let rows = probes.rows.max(1) as f64;
    let mut fraction = 1.0_f64;
    let mut best: Option<(Drive, i64)> = None;
    for (drive, count) in probed {
        let Some(count) = count else { continue };
        fraction *= (count as f64 / rows).min(1.0);
        if count < SMALL_MATCH && best.is_none_or(|(_, b)| count < b) {
            best = Some((drive, count));
        }
    }
    let page = f64::from(clamp_limit(q.limit)) + 1.0;
    let mut time_walk = if fraction > 0.0 {
        page / fraction
    } else {
        f64::INFINITY
    };
    if let Some(window) = probes
        .window
        .filter(|w| *w < SMALL_MATCH && (q.from.is_some() || q.to.is_some()))
    {
        time_walk = time_walk.min(window as f64);
    }
    match best {
        Some((drive, count)) if (count as f64) <= time_walk => drive,
        _ if one_address(q) => Drive::Column("client_ip"),
        _ if q.host.is_some() => Drive::Column("host"),
        _ if exact_status => Drive::Column("status"),
        _ if q.method.is_some() => Drive::Column("method"),
        _ => Drive::Time,
    }
}

/// The distinct non-NULL values of `column` (from `low` on, up to `high`), read by
/// one seek each in an index leading with the column: a recursive loose index scan,
/// so that a filter absent from the query still becomes an `IN` the
/// [`PATH_INDEX`] can seek through. As the condition `column IN (…)` (SQLite) or
/// `column = ANY(ARRAY(…))` (PostgreSQL: computed once, then one index seek each).
fn in_distinct(dialect: Dialect, column: &str, bounds: Option<(i64, i64)>) -> String {
    let values = distinct_values(column, bounds);
    match dialect {
        Dialect::Sqlite => format!("{column} IN ({values})"),
        Dialect::Postgres => format!("{column} = ANY(ARRAY({values}))"),
    }
}

/// The SELECT of [`in_distinct`].
fn distinct_values(column: &str, bounds: Option<(i64, i64)>) -> String {
    let (first, more, last) = match bounds {
        Some((low, high)) => (
            format!(" WHERE {column} >= {low}"),
            format!("v.x < {high}"),
            format!("x <= {high}"),
        ),
        None => (
            String::new(),
            "v.x IS NOT NULL".to_owned(),
            "x IS NOT NULL".to_owned(),
        ),
    };
    format!(
        "WITH RECURSIVE v(x) AS (SELECT min({column}) FROM events{first} UNION ALL \
         SELECT (SELECT min({column}) FROM events WHERE {column} > v.x) FROM v WHERE {more}) \
         SELECT x FROM v WHERE {last}"
    )
}

/// The SQLite compound SELECT of `what` over the rows whose path starts with the
/// query's prefix and whose method and status match its filters, through
/// [`PATH_INDEX`] only: one seek per (method, status) pair there is, then a range on
/// the path. An absent filter is every value the column holds plus NULL (its own
/// branch: `IN` never matches NULL). `None` without a path prefix.
fn path_rows(b: &mut Builder, q: &EventQuery, what: &str) -> Option<String> {
    let prefix = clean(q.path_prefix.as_deref()?).into_owned();
    let low = b.text(&prefix);
    let path = match prefix_upper_bound(&prefix) {
        Some(upper) => {
            let high = b.text(&upper);
            format!("path >= {low} AND path < {high}")
        }
        None => format!("path >= {low}"),
    };
    let methods = match &q.method {
        Some(method) => {
            let p = b.text(method);
            vec![format!("method = {p}")]
        }
        None => vec![
            in_distinct(b.dialect, "method", None),
            "method IS NULL".to_owned(),
        ],
    };
    let statuses = match q.status.map(|s| s.range()) {
        Some((lo, hi)) if lo == hi => {
            let p = b.p(Param::I32(i32::from(lo)));
            vec![format!("status = {p}")]
        }
        Some((lo, hi)) => vec![in_distinct(
            b.dialect,
            "status",
            Some((i64::from(lo), i64::from(hi))),
        )],
        None => vec![
            in_distinct(b.dialect, "status", None),
            "status IS NULL".to_owned(),
        ],
    };
    // SQLite has no statistics to choose the index by; PostgreSQL does.
    let from = match b.dialect {
        Dialect::Sqlite => format!("events INDEXED BY {PATH_INDEX}"),
        Dialect::Postgres => "events".to_owned(),
    };
    let mut branches = Vec::new();
    for m in &methods {
        for s in &statuses {
            branches.push(format!(
                "SELECT {what} FROM {from} WHERE {m} AND {s} AND {path}"
            ));
        }
    }
    Some(branches.join(" UNION ALL "))
}

/// Rows the PostgreSQL store walks newest first (bounded) before it asks the GIN index
/// for a path prefix plus `q`: when the word is common under the prefix the walk fills
/// a page within a few thousand rows (milliseconds); when it is rare, the walk proves
/// it, and the rows the index then gives to recheck are few: fewer than a page per
/// this many rows walked, spread over the rows the other filters match.
pub(crate) const PG_TEXT_WALK: i64 = 5_000;

/// How far the PostgreSQL store walks again, newest first, after the first walk of
/// `walked` rows found `found` matches (fewer than a page): the rows a page is then
/// expected to take, with half as many again for the variance, when that walk (those
/// rows, all of which it reads when the page is not there) is shorter than
/// [`PG_CANDIDATE_COST`] times the rows the text index is expected to give to recheck
/// (`found / walked` of the table's `rows`); `None` to ask the index instead. A word
/// in 1.5% of the rows (`php`) fills a page within ~7,000 rows but gives 15,000
/// candidates per million rows; one in 0.1% (`select`) the other way round. The
/// estimate of the candidates is low when the word is mostly in rows the other
/// filters leave out (`admin`: 129,241 rows of 1M, 4,316 of them `GET`), which the
/// factor absorbs in part.
///
/// The walk is weighed at its full length, not at the page's expected end: with `q`
/// alone (`select`) at 10M events the first walk found 8 matches in 5,000 rows, a page
/// expected within 63,125 rows against ~16,000 candidates (a walk, by the expected
/// end), so the store walked 94,688 rows (195 ms with shared_buffers at 6 GB, load 9),
/// found 98 of the 101 and then asked the index anyway (9,842 candidates, 64–132 ms;
/// docs/BENCHMARKS.md, pgq4).
pub(crate) fn pg_walk_further(found: i64, walked: i64, rows: i64, limit: u32) -> Option<i64> {
    if found <= 0 || walked <= 0 {
        return None;
    }
    let page = f64::from(clamp_limit(limit)) + 1.0;
    let expected = walked as f64 * page / found as f64;
    let candidates = found as f64 / walked as f64 * rows as f64;
    let further = (expected * 1.5).ceil();
    (further <= PG_CANDIDATE_COST * candidates && further <= PG_TEXT_WALK_MAX as f64)
        .then_some((further as i64).max(walked + 1))
}

/// The longest walk [`pg_walk_further`] asks for (about 0.1 s of row reads).
pub(crate) const PG_TEXT_WALK_MAX: i64 = 100_000;

/// What a candidate of the text index costs against a row of the walk: a bitmap
/// entry, a heap fetch and the recheck, then a sort (measured at 1M: ~4 µs against
/// ~1.2 µs, under load).
const PG_CANDIDATE_COST: f64 = 4.0;

/// The driving index of the bounded walk the PostgreSQL store tries first for `q`
/// (alone, or with a path prefix matching many rows, a method, a status, a host),
/// before [`Drive::Text`] (then the GIN index answers, intersecting a prefix's bucket
/// with the needle's trigrams when the prefix has [`text::BUCKET_CHARS`] characters);
/// `None` when that plan does not apply: a needle the index cannot narrow (under
/// [`text::MIN_INDEXED_CHARS`] characters, or holding the column separator), or a
/// client or time filter (their own indexes are left to the planner).
///
/// PostgreSQL's planner assumes the filters independent and estimates a word's rows
/// from a sample: for `/tienda1` + `GET` + a word absent under the prefix it walked
/// the method index over every `GET` row (642,507 of 1M, a second), forced onto the
/// trigram index alone it rechecked every row holding the word (189,597, 358 ms), and
/// for a word in 0.1% of the rows it chose, by one estimate, the time walk (100,000
/// rows, 77–158 ms) and, by another, the index (2 ms).
pub(crate) fn pg_text_walk(q: &EventQuery) -> Option<Drive> {
    let needle = clean(q.text.as_deref()?).into_owned();
    if needle.chars().count() < text::MIN_INDEXED_CHARS
        || needle.contains(SEPARATOR)
        || q.client.is_some()
        || q.from.is_some()
        || q.to.is_some()
    {
        return None;
    }
    let exact_status = matches!(q.status, Some(s) if s.range().0 == s.range().1);
    Some(if q.method.is_some() {
        Drive::Column("method")
    } else if exact_status {
        Drive::Column("status")
    } else if q.host.is_some() {
        Drive::Column("host")
    } else {
        Drive::Time
    })
}

/// What answers a PostgreSQL query with `q` once the walk of [`pg_text_walk`] did not
/// fill a page: [`Drive::Text`] (the GIN index, the other filters hidden), except
/// beside a path prefix too short to name a bucket ([`text::BUCKET_CHARS`]), where
/// the index cannot narrow the prefix and returns every row holding the word: `/d` +
/// `GET` + `windows` rechecked 1.9M candidates at 10M events (8.5 s) where the
/// planner's own walk of the time index took 163 ms.
pub(crate) fn pg_after_walk(q: &EventQuery) -> Drive {
    match q.path_prefix.as_deref().map(clean) {
        Some(prefix) if prefix.chars().count() < text::BUCKET_CHARS => Drive::Planner,
        _ => Drive::Text,
    }
}

/// [`Drive::Tagged`] in place of `drive` when it is [`Drive::Text`], the tagged index
/// exists (`tagged`), the path prefix names a bucket and the needle has a trigram
/// that index keeps; `drive` otherwise.
pub(crate) fn pg_tagged_drive(q: &EventQuery, drive: Drive, tagged: bool) -> Drive {
    let applies = tagged
        && drive == Drive::Text
        && q.client.is_none()
        && q.path_prefix
            .as_deref()
            .is_some_and(|p| clean(p).chars().count() >= text::BUCKET_CHARS)
        && q.text.as_deref().is_some_and(|t| {
            let needle = clean(t);
            !needle.contains(SEPARATOR) && text::pg_has_tagged_trigram(&needle)
        });
    if applies { Drive::Tagged } else { drive }
}

/// GIN candidates of a word that cost what one row of a client network read through
/// its index costs: at 10M events the GIN gave 1,896,181 rows of `windows` in 778 ms
/// (0.41 µs each) and the network's 8,900 rows cost ~13 µs each (8,028 heap blocks,
/// under load).
const PG_NETWORK_WORD_RATIO: f64 = 30.0;

/// Whether a client network of `network_rows` (fewer than [`SMALL_MATCH`]) drives
/// alone ([`Drive::Network`]) beside a word the planner expects in `word_rows`
/// (`None`: no `q`, no index, or no estimate): unless the word is rare enough that
/// the planner's AND of the network with the word's GIN candidates reads less.
pub(crate) fn pg_network_drives(network_rows: i64, word_rows: Option<i64>) -> bool {
    word_rows.is_none_or(|w| w as f64 > PG_NETWORK_WORD_RATIO * network_rows as f64)
}

/// Rows under which the PostgreSQL planner's estimate of a word ([`pg_word_estimate`])
/// makes a client network of many rows yield to the text index: see
/// [`pg_large_network_word`].
pub(crate) const PG_RARE_WORD: i64 = 50_000;

/// Whether a client network of `network_rows` (the probe's count: [`SMALL_MATCH`] or
/// more means many) beside a word the planner expects in `word_rows` (under
/// [`PG_RARE_WORD`]) is answered by the text index alone ([`Drive::Text`], the network
/// and the other filters hidden): left to the planner, the hot /24 (30% of 10M
/// events) + 4xx + `select` walked the time index in parallel, 546–1,347 ms with
/// shared_buffers at 128 MB, where the index's 9,842 candidates took 113–120 ms, the
/// same ids (docs/BENCHMARKS.md, pgq4). The estimate moves between two `ANALYZE`s
/// (`select` 361 or 36,485 at 10M: pgquery2), but a common word's (`php` 109,456 or
/// more) stays above the bound.
pub(crate) fn pg_large_network_word(network_rows: i64, word_rows: Option<i64>) -> bool {
    network_rows >= SMALL_MATCH && word_rows.is_some_and(|w| w < PG_RARE_WORD)
}

/// `EXPLAIN` of the text test of `q` alone (the planner's estimate of the rows holding
/// the word, from the text index's statistics: 2,050,573 for `windows` at 10M, 367
/// for a word it has never seen); `None` without a needle the index can narrow.
pub(crate) fn pg_word_estimate(q: &EventQuery) -> Option<Sql> {
    let needle = clean(q.text.as_deref()?).into_owned();
    if needle.chars().count() < text::MIN_INDEXED_CHARS || needle.contains(SEPARATOR) {
        return None;
    }
    let mut b = Builder::new(Dialect::Postgres);
    let p = b.p(Param::Text(contains_pattern(&needle)));
    Some(Sql {
        text: format!(
            "EXPLAIN SELECT 1 FROM events WHERE {} ILIKE {p} ESCAPE '\\'",
            text::PG_TEXT_EXPR
        ),
        params: b.params,
    })
}

/// The `rows=` estimate of a PostgreSQL plan line (`… (cost=… rows=367 width=4)`).
pub(crate) fn plan_rows(line: &str) -> Option<i64> {
    let (_, after) = line.split_once(" rows=")?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A filter column as PostgreSQL's planner must not see it (a no-op expression no
/// index is on), so that [`Drive::Text`] is answered by the GIN index alone rather
/// than by a bitmap of a large prefix or method ANDed with it.
fn pg_hidden(name: &str) -> String {
    match name {
        "status" => "(status + 0)".to_owned(),
        "client_ip" => "(client_ip || ''::bytea)".to_owned(),
        _ => format!("({name} || '')"),
    }
}

/// A probe counting, up to [`SMALL_MATCH`], the rows one filter matches, through its
/// index only: `client_ip`, `path` (with the method and status filters) or `ts` (the
/// time window). `None` when the query has no such filter.
pub(crate) fn probe_query(dialect: Dialect, q: &EventQuery, column: &str) -> Option<Sql> {
    let mut b = Builder::new(dialect);
    let rows = match column {
        "client_ip" => {
            let net = q.client?;
            let lo = b.p(Param::Bytes(net.first.to_vec()));
            let hi = b.p(Param::Bytes(net.last.to_vec()));
            format!("SELECT 1 FROM events WHERE client_ip BETWEEN {lo} AND {hi}")
        }
        "path" => path_rows(&mut b, q, "1")?,
        "ts" => {
            let mut conds = Vec::new();
            if let Some(from) = q.from {
                let p = b.p(Param::I64(from.as_micros()));
                conds.push(format!("ts >= {p}"));
            }
            if let Some(to) = q.to {
                let p = b.p(Param::I64(to.as_micros()));
                conds.push(format!("ts < {p}"));
            }
            if conds.is_empty() {
                return None;
            }
            format!("SELECT 1 FROM events WHERE {}", conds.join(" AND "))
        }
        _ => return None,
    };
    let limit = b.p(Param::I64(SMALL_MATCH));
    Some(Sql {
        text: format!("SELECT count(*) FROM ({rows} LIMIT {limit}) AS probe"),
        params: b.params,
    })
}

/// How many times the rows under a small path prefix (with the method and status
/// asked for) its path bucket may hold for the PostgreSQL store to ask the text index
/// (the bucket and the needle's trigrams, [`Drive::Text`]) rather than read every row
/// under the prefix by id ([`Drive::Path`]): the index then rechecks at most the
/// bucket's rows holding the needle's trigrams, each costing about what a row read by
/// id costs, so at worst (a word in every row) twice the reads, and usually the few
/// rows holding the word. `/asf-logo-wide` + `GET` + `php` at 10M events: 16,670 rows
/// by id, 180–500 ms, against 201 candidates from a bucket of about as many rows
/// (docs/BENCHMARKS.md, pgquery2 and pgq4).
pub(crate) const PG_BUCKET_RATIO: i64 = 2;

/// A probe counting, up to `bound`, the rows of the path bucket of `q`'s prefix (its
/// first [`text::BUCKET_CHARS`] characters, whatever the method and status), through
/// [`PATH_INDEX`] only, as [`probe_query`] counts the prefix's; `None` unless `q` has
/// a needle the text index can narrow and a prefix naming a bucket. The count is a
/// cost estimate only: the bucket key folds non-ASCII characters onto ASCII ones, so
/// a few more rows may share it, which changes no answer.
pub(crate) fn pg_bucket_probe(q: &EventQuery, bound: i64) -> Option<Sql> {
    let needle = clean(q.text.as_deref()?).into_owned();
    if needle.chars().count() < text::MIN_INDEXED_CHARS || needle.contains(SEPARATOR) {
        return None;
    }
    let prefix = clean(q.path_prefix.as_deref()?).into_owned();
    if prefix.chars().count() < text::BUCKET_CHARS {
        return None;
    }
    let bucket = EventQuery {
        path_prefix: Some(prefix.chars().take(text::BUCKET_CHARS).collect()),
        ..EventQuery::default()
    };
    let mut b = Builder::new(Dialect::Postgres);
    let rows = path_rows(&mut b, &bucket, "1")?;
    let limit = b.p(Param::I64(bound));
    Some(Sql {
        text: format!("SELECT count(*) FROM ({rows} LIMIT {limit}) AS probe"),
        params: b.params,
    })
}

/// The bound of [`pg_bucket_probe`] for a prefix holding `under_prefix` rows (fewer
/// than [`SMALL_MATCH`]): [`PG_BUCKET_RATIO`] times as many; a count under it means
/// the text index reads less. `None` when the prefix holds no row (nothing to read).
pub(crate) fn pg_bucket_bound(under_prefix: i64) -> Option<i64> {
    (under_prefix > 0).then(|| under_prefix.saturating_mul(PG_BUCKET_RATIO))
}

/// The query listing events for `q`, newest first, fetching one row more than the page.
pub(crate) fn events_query(dialect: Dialect, q: &EventQuery, drive: Drive) -> Sql {
    bounded_events_query(dialect, q, drive, None)
}

/// [`events_query`] reading at most `scan` rows of the driving index (newest first: a
/// time walk, or an equality index that returns rows in time order). Fewer rows than
/// a full page plus one then prove nothing (the scan may have stopped early), and the
/// caller asks again with the [`sqlite_fallback`] index; a full page is the right one.
pub(crate) fn bounded_events_query(
    dialect: Dialect,
    q: &EventQuery,
    drive: Drive,
    scan: Option<i64>,
) -> Sql {
    build_events_query(dialect, q, drive, scan, None, false)
}

/// The SQLite query listing, newest first, the rows of `q` among those whose ids
/// `ids_json` (a JSON array of integers) lists ([`Drive::Listed`]).
pub(crate) fn sqlite_listed_query(q: &EventQuery, ids_json: &str) -> Sql {
    build_events_query(
        Dialect::Sqlite,
        q,
        Drive::Listed,
        None,
        Some(ids_json),
        false,
    )
}

/// Rows of a client network (a range, fewer than [`SMALL_MATCH`]) the SQLite store
/// fetches first when the network drives, then four times as many each time while the
/// page is not full: see [`sqlite_network_ids`].
pub(crate) const NETWORK_FIRST_CHUNK: usize = 256;

/// When the client network drives an SQLite query (`Drive::Column("client_ip")`, a
/// range rather than one address), the ids of its rows (within the time window and
/// after the cursor), newest first, read from the `(client_ip, ts)` index alone; the
/// store then fetches the rows in that order, a slice at a time
/// ([`sqlite_listed_query`]), and stops once a page is full. Driven as one query, the
/// network's index returns its rows out of time order, so every row was read and
/// tested before the sort: a cold /24 at 10M events is ~9,000 rows read at random
/// (42–63 ms of CPU), where a common word fills the page within a few hundred
/// (13–17 ms in all). `None` for any other drive. `+ts` keeps the time index out of
/// the plan (the sort is on the network's few entries).
pub(crate) fn sqlite_network_ids(q: &EventQuery, drive: Drive) -> Option<Sql> {
    let net = q.client?;
    if drive != Drive::Column("client_ip") || one_address(q) {
        return None;
    }
    let mut b = Builder::new(Dialect::Sqlite);
    let lo = b.p(Param::Bytes(net.first.to_vec()));
    let hi = b.p(Param::Bytes(net.last.to_vec()));
    b.cond(format!("client_ip BETWEEN {lo} AND {hi}"));
    time_window(&mut b, q, "+ts");
    if let Some(c) = q.cursor {
        let at = b.p(Param::I64(c.ts));
        let id = b.p(Param::I64(c.id));
        b.cond(format!("(+ts, id) < ({at}, {id})"));
    }
    Some(Sql {
        text: format!(
            "SELECT id FROM events WHERE {} ORDER BY +ts DESC, id DESC",
            b.conds.join(" AND ")
        ),
        params: b.params,
    })
}

/// Candidates of the free-text index the SQLite store fetches first when the index
/// drives, newest id first, then four times as many each time while the page is not
/// full or not yet proven: see [`sqlite_text_ids`].
pub(crate) const TEXT_FIRST_CHUNK: usize = 256;

/// When the free-text index drives an SQLite query ([`Drive::Text`]) and reading its
/// candidates newest id first can pay (see below), the event ids of its candidates
/// for `q` (under the path prefix's bucket), in no particular order; `None` for any
/// other drive, a needle too short for the index, or when one query is cheaper.
///
/// Driven as one query, every candidate row was read at random and tested before the
/// sort: `q` alone with a word of 9,842 candidates at 10M events is 9,842 rows at
/// 4–8 µs each (40–87 ms of CPU) for a page of 100. The store now reads the
/// candidates newest id first, a slice at a time ([`sqlite_listed_query`]), and stops
/// once a page is full and [`sqlite_newer_rows`] proves that no candidate left out can
/// be newer than the page's last row (the ids follow the time when events arrive in
/// time order); otherwise it reads them all, as before. That proof reads about
/// `rows × page / candidates` rows of the time index (the page's end, the candidates
/// spread evenly), so it pays only when that is under [`CHECK_ROWS_PER_CANDIDATE`]
/// times the candidates: above ~4,000 candidates at 10M events and a page of 100.
/// A small time window (`probes.window` under [`SMALL_MATCH`]) always pays: only the
/// candidates among the window's ids ([`sqlite_window_ids`]) are read.
pub(crate) fn sqlite_text_ids(q: &EventQuery, drive: Drive, probes: &Probes) -> Option<Sql> {
    if drive != Drive::Text {
        return None;
    }
    let small_window =
        (q.from.is_some() || q.to.is_some()) && probes.window.is_some_and(|w| w < SMALL_MATCH);
    let candidates = probes.text.unwrap_or(0).max(1);
    let page = i64::from(clamp_limit(q.limit)) + 1;
    let page_end = probes.rows.saturating_mul(page) / candidates;
    let pays = page_end < candidates.saturating_mul(CHECK_ROWS_PER_CANDIDATE);
    if !small_window && !pays {
        return None;
    }
    sqlite_text_candidates(q)
}

/// Rows of the time index the proof of [`sqlite_text_ids`] may read per candidate it
/// would spare: a row of that index costs ~25 ns in the proof, a candidate read by id
/// 1–8 µs (at 10M events, measured through the store).
pub(crate) const CHECK_ROWS_PER_CANDIDATE: i64 = 64;

/// The event ids of the free-text index's candidates for `q` (under the path prefix's
/// bucket), in no particular order; `None` without a needle the index can narrow.
pub(crate) fn sqlite_text_candidates(q: &EventQuery) -> Option<Sql> {
    let needle = clean(q.text.as_deref().filter(|t| !t.is_empty())?).into_owned();
    let bucket = text::bucket_range(q.path_prefix.as_deref().map(clean).as_deref());
    let mut b = Builder::new(Dialect::Sqlite);
    let ids = text::sqlite_candidate_ids(&mut b, &needle, bucket)?;
    Some(Sql {
        text: ids,
        params: b.params,
    })
}

/// Whether an SQLite listing driven by the client network or the free-text index
/// reads the rows both hold: the network (a range) and the text's candidates each
/// match fewer than [`SMALL_MATCH`] rows. Then the network's ids, in time order from
/// its index ([`sqlite_network_ids`]), are kept when they are candidates, and only
/// those rows are read: a cold /24 (~9,000 rows at 10M events) with a word of ~10,000
/// candidates shares a few rows with it, where either alone had every one of its
/// rows read at random (50–70 ms of CPU) to find them. Both lists come from an index
/// alone.
pub(crate) fn sqlite_both_few(q: &EventQuery, probes: &Probes) -> bool {
    let few = |count: Option<i64>| count.is_some_and(|c| c < SMALL_MATCH);
    q.client.is_some()
        && !one_address(q)
        && few(probes.client)
        && q.text.as_deref().is_some_and(|t| !t.is_empty())
        && few(probes.text)
}

/// The lowest and highest id of the rows in the query's time window (`None` without
/// one), from the time index alone: every row of the window, hence every candidate
/// that can match, has an id between the two. For a small window (an hour: 13,889 rows
/// at 10M events) this leaves the text drive a few candidates of thousands.
pub(crate) fn sqlite_window_ids(q: &EventQuery) -> Option<Sql> {
    if q.from.is_none() && q.to.is_none() {
        return None;
    }
    let mut b = Builder::new(Dialect::Sqlite);
    time_window(&mut b, q, "ts");
    Some(Sql {
        text: format!(
            "SELECT min(id), max(id) FROM events WHERE {}",
            b.conds.join(" AND ")
        ),
        params: b.params,
    })
}

/// The check behind [`sqlite_text_ids`]: among at most `bound` rows newer than `after`
/// (a timestamp, µs) and inside the query's time window and cursor, how many there
/// are and their lowest id, from the time index alone (`count(*), min(id)`). When
/// fewer than `bound` came back, they are every such row, and when none has an id
/// below the lowest id read so far, no candidate left unread can come before a row
/// of time `after` in the listing's order (newest first, then highest id first).
/// About 25 ns a row (measured through the store at 10M events), against 1–8 µs for a row read by id.
pub(crate) fn sqlite_newer_rows(q: &EventQuery, after: i64, bound: i64) -> Sql {
    let mut b = Builder::new(Dialect::Sqlite);
    let at = b.p(Param::I64(after));
    b.cond(format!("ts > {at}"));
    b.before("ts", q.to);
    if let Some(c) = q.cursor {
        let p = b.p(Param::I64(c.ts));
        b.cond(format!("ts <= {p}"));
    }
    let bound = b.p(Param::I64(bound));
    Sql {
        text: format!(
            "SELECT count(*), min(id) FROM (SELECT id FROM events WHERE {} LIMIT {bound})",
            b.conds.join(" AND ")
        ),
        params: b.params,
    }
}

/// When an SQLite query walks the time index newest first ([`Drive::Time`], no
/// bound) and has neither a time window nor a cursor: the same filters over the table
/// itself, highest id first, a page plus one. The store sorts those rows by time and
/// proves with [`sqlite_newer_rows`] that no lower id is newer than the page's last
/// (ids follow the time when events arrive in time order); otherwise it walks the
/// time index as before. The walk through the index seeks every row it reads in the
/// table (the hot /24 + 2xx + `php` at 10M events: 206,739 rows, 78 ms of CPU in
/// Python's `sqlite3`), the table read in id order does not (38 ms), and the proof
/// reads the index alone.
pub(crate) fn sqlite_id_walk(q: &EventQuery, drive: Drive) -> Option<Sql> {
    let plain = q.from.is_none() && q.to.is_none() && q.cursor.is_none();
    (drive == Drive::Time && plain)
        .then(|| build_events_query(Dialect::Sqlite, q, Drive::Time, None, None, true))
}

/// The query's time window (`from` inclusive, `to` exclusive) as conditions on `ts`
/// (the column as the drive wants it written: `ts`, or `+ts` to keep its index out).
fn time_window(b: &mut Builder, q: &EventQuery, ts: &str) {
    b.at_or_after(ts, q.from);
    b.before(ts, q.to);
}

/// [`bounded_events_query`], or with `listed` the rows of [`sqlite_listed_query`].
fn build_events_query(
    dialect: Dialect,
    q: &EventQuery,
    drive: Drive,
    scan: Option<i64>,
    listed: Option<&str>,
    by_id: bool,
) -> Sql {
    let mut b = Builder::new(dialect);
    if let Some(ids) = listed {
        let p = b.p(Param::Text(ids.to_owned()));
        b.cond(format!("id IN (SELECT value FROM json_each({p}))"));
    }
    // The unary `+` is SQLite's; PostgreSQL chooses by its statistics.
    let sqlite = dialect == Dialect::Sqlite;
    let col = |name: &'static str| -> String {
        match drive {
            Drive::Text | Drive::Tagged if !sqlite => pg_hidden(name),
            Drive::Network if name != "client_ip" => {
                if sqlite {
                    format!("+{name}")
                } else {
                    pg_hidden(name)
                }
            }
            _ if !sqlite => name.to_owned(),
            Drive::Column(d) if d != name => format!("+{name}"),
            Drive::Time | Drive::Text | Drive::Tagged | Drive::Path | Drive::Listed => {
                format!("+{name}")
            }
            _ => name.to_owned(),
        }
    };
    // Driven by a set of ids, the time index must not be walked for the order.
    let by_ids = matches!(
        drive,
        Drive::Text | Drive::Tagged | Drive::Path | Drive::Network | Drive::Listed
    );
    let ts = if by_ids && sqlite { "+ts" } else { "ts" };
    if drive == Drive::Path
        && let Some(rows) = path_rows(&mut b, q, "id")
    {
        b.cond(format!("id IN ({rows})"));
    }
    time_window(&mut b, q, ts);
    if let Some(net) = q.client {
        let lo = b.p(Param::Bytes(net.first.to_vec()));
        if one_address(q) {
            // An equality: its index gives the rows in time order.
            b.cond(format!("{} = {lo}", col("client_ip")));
        } else {
            let hi = b.p(Param::Bytes(net.last.to_vec()));
            b.cond(format!("{} BETWEEN {lo} AND {hi}", col("client_ip")));
        }
    }
    if let Some(method) = &q.method {
        let p = b.text(method);
        b.cond(format!("{} = {p}", col("method")));
    }
    if let Some(status) = q.status {
        // An exact code is an equality so that the (status, ts) index also gives the
        // order; a class is a range.
        match status.range() {
            (lo, hi) if lo == hi => {
                let p = b.p(Param::I32(i32::from(lo)));
                b.cond(format!("{} = {p}", col("status")));
            }
            (lo, hi) => {
                let lo = b.p(Param::I32(i32::from(lo)));
                let hi = b.p(Param::I32(i32::from(hi)));
                b.cond(format!("{} BETWEEN {lo} AND {hi}", col("status")));
            }
        }
    }
    // The PostgreSQL text drive's bucket key (see [`pg_text_walk`]), or the prefix
    // parameter of the tagged key.
    let mut pg_bucket = None;
    let mut pg_tagged_prefix = None;
    if let Some(prefix) = &q.path_prefix {
        let prefix = clean(prefix);
        let lo = b.text(&prefix);
        b.cond(format!("{} >= {lo}", col("path")));
        if let Some(upper) = prefix_upper_bound(&prefix) {
            let hi = b.text(&upper);
            b.cond(format!("{} < {hi}", col("path")));
        }
        if !sqlite && drive == Drive::Text && prefix.chars().count() >= text::BUCKET_CHARS {
            pg_bucket = Some(text::pg_bucket_cond(&lo));
        }
        if !sqlite && drive == Drive::Tagged {
            pg_tagged_prefix = Some(lo);
        }
    }
    if let Some(host) = &q.host {
        let p = b.text(host);
        b.cond(format!("{} = {p}", col("host")));
    }
    if let Some(source) = &q.source {
        let p = b.text(source);
        b.cond(format!("source = {p}"));
    }
    if let Some(kind) = q.kind {
        let p = b.p(Param::Text(kind.as_str().to_owned()));
        b.cond(format!("kind = {p}"));
    }
    if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
        let bucket = text::bucket_range(q.path_prefix.as_deref().map(clean).as_deref());
        if sqlite
            && drive == Drive::Text
            && let Some(candidates) = text::sqlite_candidates(&mut b, &clean(text), bucket)
        {
            b.cond(candidates);
        }
        let p = b.p(Param::Text(contains_pattern(text)));
        match dialect {
            // One test of the joined columns, which the trigram index answers.
            Dialect::Postgres if !text.contains(SEPARATOR) => {
                if let Some(bucket) = pg_bucket.take() {
                    b.cond(bucket);
                }
                if let Some(prefix) = pg_tagged_prefix.take() {
                    let needle = b.text(text);
                    b.cond(text::pg_tagged_cond(&prefix, &needle));
                }
                // Hidden from the planner (a no-op no index is on) when the client
                // network or the tagged index drives.
                let text = if matches!(drive, Drive::Network | Drive::Tagged) {
                    format!("({} || '')", text::PG_TEXT_EXPR)
                } else {
                    text::PG_TEXT_EXPR.to_owned()
                };
                b.cond(format!("{text} ILIKE {p} ESCAPE '\\'"));
            }
            _ => {
                // Collated "C" in PostgreSQL, as in the joined text: ASCII case only.
                let (op, collate) = match dialect {
                    Dialect::Sqlite => ("LIKE", ""),
                    Dialect::Postgres => ("ILIKE", " COLLATE \"C\""),
                };
                let parts: Vec<String> = TEXT_COLUMNS
                    .iter()
                    .map(|col| format!("{col}{collate} {op} {p} ESCAPE '\\'"))
                    .collect();
                b.cond(format!("({})", parts.join(" OR ")));
            }
        }
    }
    if let Some(c) = q.cursor {
        let at = b.p(Param::I64(c.ts));
        let id = b.p(Param::I64(c.id));
        b.cond(format!("({ts}, id) < ({at}, {id})"));
    }
    if let Some(scan) = scan {
        // The driving index's own conditions bound the scan; the rest filter its rows.
        let driver = match drive {
            Drive::Column(name) => Some(format!("{name} ")),
            _ => None,
        };
        let (inner, outer): (Vec<String>, Vec<String>) =
            std::mem::take(&mut b.conds).into_iter().partition(|c| {
                c.starts_with("ts ")
                    || c.starts_with("(ts,")
                    || driver.as_deref().is_some_and(|d| c.starts_with(d))
            });
        let scan = b.p(Param::I64(scan));
        // PostgreSQL 15 wants a name for a subquery in FROM.
        let alias = if sqlite { "" } else { " AS walk" };
        let inner = if inner.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", inner.join(" AND "))
        };
        b.conds = outer;
        return b.finish(
            &format!(
                "SELECT {EVENT_SELECT_COLUMNS} FROM (SELECT {EVENT_SELECT_COLUMNS} FROM events{inner} \
                 ORDER BY ts DESC, id DESC LIMIT {scan}){alias}"
            ),
            "ts DESC, id DESC",
            clamp_limit(q.limit),
        );
    }
    // PostgreSQL would walk the time index for the order and test each row against
    // the ids; sorting the few ids is what driving by them means.
    let order = if by_id {
        "id DESC"
    } else if by_ids && !sqlite {
        "ts + 0 DESC, id DESC"
    } else {
        "ts DESC, id DESC"
    };
    b.finish(
        &format!("SELECT {EVENT_SELECT_COLUMNS} FROM events"),
        order,
        clamp_limit(q.limit),
    )
}

/// The index to fall back on when [`sqlite_drive`] preferred walking newest first over
/// a probed filter matching few rows (expecting the walk to reach a page sooner), with
/// the rows that walk may read before giving up: twice the rows the fallback reads.
/// The filters may be correlated (a rare status under a path), so the walk is bounded
/// and a query never costs much more than reading the small filter's rows.
pub(crate) fn sqlite_fallback(
    q: &EventQuery,
    probes: &Probes,
    drive: Drive,
) -> Option<(Drive, i64)> {
    if !matches!(
        drive,
        Drive::Time | Drive::Column("host" | "status" | "method")
    ) {
        return None;
    }
    // A small time window already bounds the walk: its answer is the whole answer.
    if probes.window.is_some_and(|w| w < SMALL_MATCH) && (q.from.is_some() || q.to.is_some()) {
        return None;
    }
    let probed = [
        (
            Drive::Column("client_ip"),
            probes.client.filter(|_| q.client.is_some()),
        ),
        (Drive::Path, probes.path.filter(|_| q.path_prefix.is_some())),
        (Drive::Text, probes.text.filter(|_| q.text.is_some())),
    ];
    probed
        .into_iter()
        .filter_map(|(d, count)| count.filter(|c| *c < SMALL_MATCH).map(|c| (d, c)))
        .min_by_key(|(_, c)| *c)
        .map(|(d, c)| (d, (2 * c).max(1000)))
}

/// The bounded walk the PostgreSQL store tries before reading the few rows under a
/// path prefix (`under_prefix`, fewer than [`SMALL_MATCH`], with the method and status
/// asked for) by id and sorting them: the same choice as [`sqlite_drive`] and
/// [`sqlite_fallback`] make, from the prefix's fraction of the table's `rows`. A
/// prefix whose rows are spread evenly in time (`/login_form` + 2xx: 13,228 of 1M)
/// fills a page within `page / fraction` rows newest first (7,600 there), fewer than
/// it holds; the walk stops at twice those rows and a short answer falls back to the
/// prefix. `None` (read the prefix) when the walk is not expected to be shorter, or
/// when a filter the estimate cannot see could make it longer: `q` (no text probe
/// here; a rare word would make the walk read its whole bound) or a client network.
pub(crate) fn pg_path_walk(q: &EventQuery, under_prefix: i64, rows: i64) -> Option<(Drive, i64)> {
    if q.text.is_some() || (q.client.is_some() && !one_address(q)) {
        return None;
    }
    let probes = Probes {
        path: Some(under_prefix),
        rows,
        ..Probes::default()
    };
    let drive = sqlite_drive(q, &probes);
    match sqlite_fallback(q, &probes, drive) {
        Some((Drive::Path, scan)) => Some((drive, scan)),
        _ => None,
    }
}

/// The query listing dead letters for `q`, newest first, one row more than the page.
pub(crate) fn dead_letters_query(dialect: Dialect, q: &DeadLetterQuery) -> Sql {
    let mut b = Builder::new(dialect);
    if let Some(from) = q.from {
        let p = b.p(Param::I64(from.as_micros()));
        b.cond(format!("received_at >= {p}"));
    }
    if let Some(to) = q.to {
        let p = b.p(Param::I64(to.as_micros()));
        b.cond(format!("received_at < {p}"));
    }
    if let Some(source) = &q.source {
        let p = b.text(source);
        b.cond(format!("source = {p}"));
    }
    if let Some(c) = q.cursor {
        let ts = b.p(Param::I64(c.ts));
        let id = b.p(Param::I64(c.id));
        b.cond(format!("(received_at, id) < ({ts}, {id})"));
    }
    b.finish(
        &format!("SELECT {DEAD_LETTER_SELECT_COLUMNS} FROM dead_letters"),
        "received_at DESC, id DESC",
        clamp_limit(q.limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cursor, MAX_LIMIT, StatusFilter};

    #[test]
    fn sqlite_queries_name_their_driving_index() {
        let q = EventQuery {
            client: "10.0.0.0/24".parse().ok(),
            status: Some(StatusFilter::Class(4)),
            method: Some("GET".into()),
            limit: 10,
            ..EventQuery::default()
        };
        // 10M rows, 3,000 in the network: reading them beats walking ~33M rows.
        let few = Probes {
            client: Some(3_000),
            rows: 10_000_000,
            ..Probes::default()
        };
        let drive = sqlite_drive(&q, &few);
        assert_eq!(drive, Drive::Column("client_ip"));
        let lite = events_query(Dialect::Sqlite, &q, drive).text;
        assert!(lite.contains(" client_ip BETWEEN"), "{lite}");
        assert!(
            lite.contains("+status BETWEEN") && lite.contains("+method ="),
            "{lite}"
        );
        // A network matching many rows does not drive; the method equality does, in
        // time order.
        let many = Probes {
            client: Some(SMALL_MATCH),
            ..few
        };
        assert_eq!(sqlite_drive(&q, &many), Drive::Column("method"));
        // Nor one of a small table, where walking newest first reaches a page sooner.
        let small_table = Probes {
            client: Some(3_000),
            rows: 4_000,
            ..Probes::default()
        };
        assert_eq!(sqlite_drive(&q, &small_table), Drive::Column("method"));
        let pg = events_query(Dialect::Postgres, &q, Drive::Planner).text;
        assert!(!pg.contains('+'), "{pg}");
        let probe = probe_query(Dialect::Sqlite, &q, "client_ip")
            .map(|s| s.text)
            .unwrap_or_default();
        assert!(
            probe.starts_with("SELECT count(*) FROM (SELECT 1 FROM events WHERE client_ip BETWEEN"),
            "{probe}"
        );
        assert!(probe_query(Dialect::Sqlite, &q, "path").is_none());
        let by_time = EventQuery {
            status: Some(StatusFilter::Class(5)),
            limit: 10,
            ..EventQuery::default()
        };
        assert_eq!(sqlite_drive(&by_time, &Probes::default()), Drive::Time);
        assert!(
            events_query(Dialect::Sqlite, &by_time, Drive::Time)
                .text
                .contains("+status BETWEEN")
        );
        let only_status = EventQuery {
            status: Some(StatusFilter::Exact(404)),
            limit: 10,
            ..EventQuery::default()
        };
        assert!(
            events_query(
                Dialect::Sqlite,
                &only_status,
                sqlite_drive(&only_status, &Probes::default())
            )
            .text
            .contains(" status =")
        );
    }

    #[test]
    fn every_value_is_a_parameter() {
        let q = EventQuery {
            method: Some("GET' OR 1=1 --".into()),
            status: Some(StatusFilter::Class(4)),
            path_prefix: Some("/a".into()),
            text: Some("x".into()),
            cursor: Some(Cursor { ts: 5, id: 6 }),
            limit: 0,
            ..EventQuery::default()
        };
        let pg = events_query(Dialect::Postgres, &q, Drive::Planner);
        assert!(!pg.text.contains("OR 1=1"));
        assert!(pg.text.contains("ILIKE $6"));
        assert_eq!(pg.params.last(), Some(&Param::I64(2)));
        let lite = events_query(Dialect::Sqlite, &q, Drive::Planner);
        assert!(lite.text.contains("LIKE ?6 ESCAPE"));
        assert_eq!(lite.params.len(), pg.params.len());
        let d = dead_letters_query(
            Dialect::Sqlite,
            &DeadLetterQuery {
                limit: 5000,
                ..DeadLetterQuery::default()
            },
        );
        assert_eq!(d.params, vec![Param::I64(i64::from(MAX_LIMIT) + 1)]);
    }

    #[test]
    fn the_text_index_drives_a_rare_needle_and_the_like_test_stays() {
        let q = EventQuery {
            status: Some(StatusFilter::Class(4)),
            method: Some("GET".into()),
            text: Some("Admin".into()),
            cursor: Some(Cursor { ts: 5, id: 6 }),
            limit: 10,
            ..EventQuery::default()
        };
        let probes = Probes {
            text: Some(900),
            client: Some(10),
            rows: 10_000_000,
            ..Probes::default()
        };
        assert_eq!(sqlite_drive(&q, &probes), Drive::Text, "no client filter");
        // The fewest rows drive.
        let with_client = EventQuery {
            client: "10.0.0.0/24".parse().ok(),
            ..q.clone()
        };
        assert_eq!(
            sqlite_drive(&with_client, &probes),
            Drive::Column("client_ip")
        );
        // A common word with a narrow network: the time walk would read
        // 11 / (0.5 * 0.0015) = 14,667 rows, fewer than the 15,000 in the network.
        let common = Probes {
            text: Some(SMALL_MATCH),
            client: Some(15_000),
            rows: 10_000_000,
            path: None,
            window: None,
        };
        let with_client_common = EventQuery {
            method: None,
            ..with_client.clone()
        };
        assert_eq!(
            sqlite_drive(
                &with_client_common,
                &Probes {
                    text: Some(5_000_000),
                    ..common
                }
            ),
            Drive::Time
        );
        assert_eq!(
            sqlite_drive(&with_client_common, &common),
            Drive::Column("client_ip")
        );
        let lite = events_query(Dialect::Sqlite, &q, Drive::Text).text;
        assert!(
            lite.contains(
                "id IN (SELECT rowid & 4398046511103 FROM events_text WHERE events_text MATCH ?"
            ),
            "{lite}"
        );
        assert!(lite.contains("user_agent LIKE"), "{lite}");
        assert!(
            lite.contains("+method =") && lite.contains("(+ts, id) <"),
            "{lite}"
        );
        // Without the index (or with a common needle) nothing mentions it.
        let plain = events_query(Dialect::Sqlite, &q, sqlite_drive(&q, &Probes::default())).text;
        assert!(!plain.contains("events_text"), "{plain}");
        // PostgreSQL tests the joined text, unless the needle holds the separator.
        let pg = events_query(Dialect::Postgres, &q, Drive::Planner).text;
        assert!(pg.contains("COLLATE \"C\") ILIKE $"), "{pg}");
        let sep = EventQuery {
            text: Some("a\u{1}b".into()),
            ..q
        };
        let pg = events_query(Dialect::Postgres, &sep, Drive::Planner).text;
        assert!(
            pg.contains("(path COLLATE \"C\" ILIKE $") && !pg.contains("coalesce"),
            "{pg}"
        );
    }

    #[test]
    fn a_walk_passed_over_a_small_filter_is_bounded_and_falls_back_to_it() {
        let q = EventQuery {
            path_prefix: Some("/presentations".into()),
            status: Some(StatusFilter::Exact(404)),
            from: Some(palisade_core::Timestamp(1)),
            cursor: Some(Cursor { ts: 5, id: 6 }),
            limit: 100,
            ..EventQuery::default()
        };
        // 15,000 rows under the path of 1M: the walk of the status index is expected
        // to read 101 / 0.015 = 6,733 rows, so it goes first, bounded.
        let probes = Probes {
            path: Some(15_000),
            rows: 1_000_000,
            ..Probes::default()
        };
        let drive = sqlite_drive(&q, &probes);
        assert_eq!(drive, Drive::Column("status"));
        assert_eq!(
            sqlite_fallback(&q, &probes, drive),
            Some((Drive::Path, 30_000))
        );
        let sql = bounded_events_query(Dialect::Sqlite, &q, drive, Some(30_000));
        let (inner, outer) = sql.text.split_once(" LIMIT ?").unwrap_or_default();
        let (_, inner_where) = inner.split_once("FROM events WHERE").unwrap_or_default();
        assert!(
            inner_where.starts_with(" ts >= ?1 AND status = ?")
                && inner_where.contains("(ts, id) < (")
                && !inner_where.contains("path"),
            "{inner}"
        );
        assert!(outer.contains("WHERE +path >= ?"), "{outer}");
        assert!(sql.params.contains(&Param::I64(30_000)));
        // No small filter, or one that already drives: nothing to fall back on.
        assert_eq!(sqlite_fallback(&q, &Probes::default(), drive), None);
        assert_eq!(sqlite_fallback(&q, &probes, Drive::Path), None);
    }

    #[test]
    fn a_prefix_reads_the_composite_index_one_method_and_status_at_a_time() {
        let q = EventQuery {
            path_prefix: Some("/admin$".into()),
            method: Some("GET".into()),
            limit: 100,
            ..EventQuery::default()
        };
        // No GET under the prefix: the probe counts 0 and the prefix drives.
        let probes = Probes {
            path: Some(0),
            rows: 10_000_000,
            ..Probes::default()
        };
        assert_eq!(sqlite_drive(&q, &probes), Drive::Path);
        let lite = events_query(Dialect::Sqlite, &q, Drive::Path).text;
        // Every status there is, and NULL, each a seek in the composite index.
        assert!(
            lite.contains("id IN (SELECT id FROM events INDEXED BY events_method_status_path WHERE method = ?3 AND status IN (WITH RECURSIVE"),
            "{lite}"
        );
        assert!(
            lite.contains(" UNION ALL ") && lite.contains("AND status IS NULL AND path >= ?"),
            "{lite}"
        );
        assert!(
            lite.contains("+method = ?") && lite.contains("+path >= ?"),
            "{lite}"
        );
        // A status class and no method: the class's statuses there are, every method
        // and NULL.
        let class = EventQuery {
            method: None,
            status: Some(StatusFilter::Class(2)),
            ..q.clone()
        };
        let probe = probe_query(Dialect::Sqlite, &class, "path")
            .map(|s| s.text)
            .unwrap_or_default();
        assert!(probe.contains("WHERE status >= 200 UNION ALL"), "{probe}");
        assert!(probe.contains("SELECT x FROM v WHERE x <= 299"), "{probe}");
        assert!(probe.contains("method IS NULL AND status IN"), "{probe}");
        assert!(!probe.contains("status IS NULL"), "{probe}");
        assert_eq!(probe.matches("SELECT 1 FROM events").count(), 2, "{probe}");
        // PostgreSQL: arrays computed once, the ids sorted rather than walked.
        let pg = events_query(Dialect::Postgres, &class, Drive::Path).text;
        assert!(pg.contains("method = ANY(ARRAY(WITH RECURSIVE"), "{pg}");
        assert!(pg.contains("ORDER BY ts + 0 DESC, id DESC"), "{pg}");
        assert!(!pg.contains("INDEXED BY") && !pg.contains("+path"), "{pg}");
        // With q, the text index is searched in the prefix's bucket only.
        let word = EventQuery {
            text: Some("windows".into()),
            ..q
        };
        let lite = events_query(Dialect::Sqlite, &word, Drive::Text);
        assert!(
            lite.text.contains("MATCH ?4 AND rowid BETWEEN ?5 AND ?6)"),
            "{}",
            lite.text
        );
        let (low, high) = text::bucket_range(Some("/admin$")).unwrap_or_default();
        assert_eq!(
            lite.params.get(4..6),
            Some(&[Param::I64(low), Param::I64(high)][..])
        );
    }

    #[test]
    fn postgres_asks_the_bucket_and_the_trigrams_for_a_large_prefix_and_a_word() {
        let q = EventQuery {
            path_prefix: Some("/tienda1/".into()),
            method: Some("GET".into()),
            text: Some("windows".into()),
            cursor: Some(Cursor { ts: 5, id: 6 }),
            limit: 100,
            ..EventQuery::default()
        };
        assert_eq!(pg_text_walk(&q), Some(Drive::Column("method")));
        let short = |prefix: &str, needle: &str| EventQuery {
            path_prefix: Some(prefix.into()),
            text: Some(needle.into()),
            ..q.clone()
        };
        // No trigram under three characters of needle, none across the separator; a
        // prefix too short for a bucket still hides the other indexes.
        assert_eq!(pg_text_walk(&short("/ti", "wi")), None);
        assert_eq!(pg_text_walk(&short("/ti", "a\u{1}bc")), None);
        assert_eq!(
            pg_text_walk(&short("/t", "windows")),
            Some(Drive::Column("method"))
        );
        let unbucketed = events_query(Dialect::Postgres, &short("/t", "windows"), Drive::Text).text;
        assert!(
            unbucketed.contains("(path || '') >= $2") && !unbucketed.contains("@>"),
            "{unbucketed}"
        );
        // A client or a time window: left to the planner.
        for other in [
            EventQuery {
                client: "10.0.0.0/24".parse().ok(),
                ..q.clone()
            },
            EventQuery {
                from: Some(palisade_core::Timestamp(1)),
                ..q.clone()
            },
            EventQuery {
                to: Some(palisade_core::Timestamp(1)),
                ..q.clone()
            },
        ] {
            assert_eq!(pg_text_walk(&other), None);
        }
        assert_eq!(
            pg_text_walk(&EventQuery {
                text: Some("select".into()),
                limit: 100,
                ..EventQuery::default()
            }),
            Some(Drive::Time)
        );
        assert_eq!(
            pg_text_walk(&EventQuery {
                method: None,
                ..q.clone()
            }),
            Some(Drive::Time)
        );
        assert_eq!(
            pg_text_walk(&EventQuery {
                method: None,
                status: Some(StatusFilter::Exact(404)),
                ..q.clone()
            }),
            Some(Drive::Column("status"))
        );
        // The walk: the method index newest first, bounded, the rest filtered outside.
        let walk = bounded_events_query(Dialect::Postgres, &q, Drive::Column("method"), Some(5000));
        assert!(
            walk.text
                .contains("FROM events WHERE method = $1 AND (ts, id) < ($")
                && walk.text.contains(" LIMIT $")
                && walk.text.contains(") AS walk WHERE path >= $2"),
            "{}",
            walk.text
        );
        // Then the index: the other filter columns hidden, the bucket of the prefix
        // parameter beside the trigram test, the few rows sorted.
        let pg = events_query(Dialect::Postgres, &q, Drive::Text).text;
        assert!(
            pg.contains("WHERE (method || '') = $1 AND (path || '') >= $2 AND (path || '') < $3"),
            "{pg}"
        );
        assert!(
            pg.contains(&format!(
                "{} AND {} ILIKE $4",
                text::pg_bucket_cond("$2"),
                text::PG_TEXT_EXPR
            )),
            "{pg}"
        );
        assert!(
            pg.contains("(ARRAY[(((ascii(substr(coalesce(path, ''), 1, 1)) & 127) << 14) | ")
                && pg.contains(
                    " @> ARRAY[(((ascii(substr(coalesce($2::text, ''), 1, 1)) & 127) << 14) | "
                ),
            "{pg}"
        );
        assert!(pg.contains("ORDER BY ts + 0 DESC, id DESC"), "{pg}");
        // The planner's own query is unchanged.
        let planner = events_query(Dialect::Postgres, &q, Drive::Planner).text;
        assert!(
            !planner.contains("@>") && !planner.contains("|| '')"),
            "{planner}"
        );
    }

    #[test]
    fn postgres_asks_the_tagged_key_for_a_bucket_prefix_and_a_word_with_a_kept_trigram() {
        let q = EventQuery {
            path_prefix: Some("/tienda1/".into()),
            method: Some("GET".into()),
            text: Some("Win dows".into()),
            limit: 100,
            ..EventQuery::default()
        };
        let with = |prefix: &str, needle: &str| EventQuery {
            path_prefix: Some(prefix.into()),
            text: Some(needle.into()),
            ..q.clone()
        };
        assert_eq!(pg_tagged_drive(&q, Drive::Text, true), Drive::Tagged);
        // Not without the index, nor for another drive, a prefix without a bucket, a
        // needle without three ASCII letters or digits in a row, or the separator.
        assert_eq!(pg_tagged_drive(&q, Drive::Text, false), Drive::Text);
        for drive in [Drive::Path, Drive::Planner, Drive::Time, Drive::Network] {
            assert_eq!(pg_tagged_drive(&q, drive, true), drive);
        }
        for (prefix, needle) in [
            ("/t", "windows"),
            ("/tienda1/", "wi nd"),
            ("/tienda1/", "ca\u{e9}f\u{e9}"),
            ("/tienda1/", "abc\u{1}"),
        ] {
            assert_eq!(
                pg_tagged_drive(&with(prefix, needle), Drive::Text, true),
                Drive::Text,
                "{prefix:?} {needle:?}"
            );
        }
        assert_eq!(
            pg_tagged_drive(&with("/ti", "\u{e9}abc"), Drive::Text, true),
            Drive::Tagged
        );
        // The tagged key of the prefix and the needle, the text test hidden from the
        // other index but kept, the other columns hidden, the ids sorted.
        let pg = events_query(Dialect::Postgres, &q, Drive::Tagged);
        assert!(
            pg.text.contains(&format!(
                "WHERE (method || '') = $1 AND (path || '') >= $2 AND (path || '') < $3 AND {} AND ({} || '') ILIKE $4",
                text::pg_tagged_cond("$2", "$5"),
                text::PG_TEXT_EXPR
            )),
            "{}",
            pg.text
        );
        assert!(!pg.text.contains("ARRAY["), "no bucket key: {}", pg.text);
        assert!(
            pg.text.contains("ORDER BY ts + 0 DESC, id DESC"),
            "{}",
            pg.text
        );
        assert_eq!(pg.params.get(3), Some(&Param::Text("%Win dows%".into())));
        assert_eq!(pg.params.get(4), Some(&Param::Text("Win dows".into())));
    }

    #[test]
    fn postgres_reads_a_small_network_through_its_index_alone() {
        let q = EventQuery {
            client: "10.0.0.0/24".parse().ok(),
            status: Some(StatusFilter::Class(4)),
            text: Some("windows".into()),
            limit: 100,
            ..EventQuery::default()
        };
        let pg = events_query(Dialect::Postgres, &q, Drive::Network).text;
        // The network is the only indexed condition: the status and the text are
        // hidden, and the few rows are sorted rather than the time index walked.
        assert!(
            pg.contains("WHERE client_ip BETWEEN $1 AND $2 AND (status + 0) BETWEEN"),
            "{pg}"
        );
        assert!(
            pg.contains(&format!("({} || '') ILIKE $", text::PG_TEXT_EXPR)),
            "{pg}"
        );
        assert!(pg.contains("ORDER BY ts + 0 DESC, id DESC"), "{pg}");
        // Any other drive keeps the text as the index's expression.
        let planner = events_query(Dialect::Postgres, &q, Drive::Planner).text;
        assert!(!planner.contains("|| '')"), "{planner}");
    }

    #[test]
    fn postgres_lets_a_rare_word_and_a_small_network_meet_in_the_planner() {
        assert!(pg_network_drives(8_900, None), "no word");
        assert!(pg_network_drives(8_900, Some(2_050_573)), "windows");
        assert!(!pg_network_drives(8_900, Some(74_052)), "php");
        assert!(!pg_network_drives(8_900, Some(367)), "unknown word");
        assert_eq!(
            plan_rows("Bitmap Heap Scan on events  (cost=346.84..1790.07 rows=367 width=4)"),
            Some(367)
        );
        assert_eq!(
            plan_rows("Gather  (cost=1.0..2.0 rows=74052 width=4)"),
            Some(74_052)
        );
        assert_eq!(plan_rows("no estimate"), None);
        let q = EventQuery {
            client: "10.0.0.0/24".parse().ok(),
            text: Some("windows".into()),
            ..EventQuery::default()
        };
        let probe = pg_word_estimate(&q).unwrap_or_else(|| Sql {
            text: String::new(),
            params: Vec::new(),
        });
        assert!(
            probe
                .text
                .starts_with("EXPLAIN SELECT 1 FROM events WHERE ")
                && probe.text.ends_with(" ILIKE $1 ESCAPE '\\'"),
            "{}",
            probe.text
        );
        assert_eq!(probe.params, vec![Param::Text("%windows%".into())]);
        for needle in ["ab", "a\u{1}bc"] {
            let short = EventQuery {
                text: Some(needle.into()),
                ..q.clone()
            };
            assert!(pg_word_estimate(&short).is_none(), "{needle}");
        }
    }

    #[test]
    fn postgres_leaves_a_prefix_without_a_bucket_to_the_planner_after_the_walk() {
        let q = |prefix: Option<&str>| EventQuery {
            path_prefix: prefix.map(Into::into),
            method: Some("GET".into()),
            text: Some("windows".into()),
            ..EventQuery::default()
        };
        assert_eq!(pg_after_walk(&q(Some("/d"))), Drive::Planner);
        assert_eq!(pg_after_walk(&q(Some("/"))), Drive::Planner);
        assert_eq!(pg_after_walk(&q(Some("/tienda1"))), Drive::Text);
        assert_eq!(pg_after_walk(&q(Some("/d/"))), Drive::Text);
        assert_eq!(pg_after_walk(&q(None)), Drive::Text);
    }

    #[test]
    fn postgres_walks_further_only_when_a_page_is_near() {
        // 75 matches in 5,000 rows of 1M: a page within ~6,700 rows, against 15,000
        // candidates.
        assert!(
            matches!(pg_walk_further(75, 5_000, 1_000_000, 100), Some(n) if (10_099..=10_101).contains(&n))
        );
        // 5 in 5,000: ~101,000 rows to walk against 1,000 candidates.
        assert_eq!(pg_walk_further(5, 5_000, 1_000_000, 100), None);
        // None found: the index.
        assert_eq!(pg_walk_further(0, 5_000, 1_000_000, 100), None);
        // A small table: the index's candidates are few whatever the word.
        assert_eq!(pg_walk_further(75, 5_000, 10_000, 100), None);
        // 34 in 5,000 (`admin` among GET rows): ~14,900 rows against an estimated
        // 6,800 candidates, each costing four walked rows.
        assert!(
            matches!(pg_walk_further(34, 5_000, 1_000_000, 100), Some(n) if (22_279..=22_281).contains(&n))
        );
        // Never past the cap.
        assert_eq!(pg_walk_further(1, 5_000, i64::MAX / 2, 100), None);
        // Always further than the first walk.
        assert_eq!(pg_walk_further(3, 5, 1_000_000, 1), Some(6));
        // 8 in 5,000 of 10M (`select`): the walk of ~94,700 rows is weighed whole,
        // against ~16,000 candidates costing four rows each: the index.
        assert_eq!(pg_walk_further(8, 5_000, 10_000_000, 100), None);
        // 10 in 5,000 of 10M: ~75,750 rows against 20,000 candidates: still the walk.
        assert!(
            matches!(pg_walk_further(10, 5_000, 10_000_000, 100), Some(n) if (75_749..=75_751).contains(&n))
        );
    }

    #[test]
    fn postgres_hides_a_large_network_beside_a_rare_word() {
        // Many rows in the network, a word estimated rare: the text index.
        assert!(pg_large_network_word(SMALL_MATCH, Some(361)));
        assert!(pg_large_network_word(SMALL_MATCH, Some(PG_RARE_WORD - 1)));
        // A common word, no estimate, or a network of few rows: not this rule.
        assert!(!pg_large_network_word(SMALL_MATCH, Some(PG_RARE_WORD)));
        assert!(!pg_large_network_word(SMALL_MATCH, Some(109_456)));
        assert!(!pg_large_network_word(SMALL_MATCH, None));
        assert!(!pg_large_network_word(SMALL_MATCH - 1, Some(361)));
        // The query it then sends: the network and the status hidden from the planner.
        let q = EventQuery {
            client: "198.51.100.0/24".parse().ok(),
            status: Some(StatusFilter::Class(4)),
            text: Some("select".into()),
            ..EventQuery::default()
        };
        let pg = events_query(Dialect::Postgres, &q, Drive::Text).text;
        assert!(pg.contains("(client_ip || ''::bytea) BETWEEN"), "{pg}");
        assert!(pg.contains("(status + 0) BETWEEN"), "{pg}");
        assert!(pg.contains("ORDER BY ts + 0 DESC, id DESC"), "{pg}");
    }

    #[test]
    fn postgres_probes_the_bucket_of_a_small_prefix_with_a_needle() {
        let q = |prefix: &str, text: &str| EventQuery {
            path_prefix: Some(prefix.into()),
            method: Some("GET".into()),
            status: Some(StatusFilter::Class(2)),
            text: Some(text.into()),
            ..EventQuery::default()
        };
        let probe = pg_bucket_probe(&q("/asf-logo-wide", "php"), 33_340);
        let Some(probe) = probe else {
            panic!("no bucket probe");
        };
        // The bucket's first three characters, every method and status, bounded.
        assert!(
            probe.text.starts_with("SELECT count(*) FROM ("),
            "{}",
            probe.text
        );
        assert!(probe.text.contains("method = ANY(ARRAY("), "{}", probe.text);
        assert!(probe.text.contains("status = ANY(ARRAY("), "{}", probe.text);
        assert!(probe.text.contains("method IS NULL"), "{}", probe.text);
        assert!(probe.text.ends_with(") AS probe"), "{}", probe.text);
        let texts: Vec<&Param> = probe.params.iter().collect();
        assert!(
            texts
                .iter()
                .any(|p| matches!(p, Param::Text(t) if t == "/as")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|p| matches!(p, Param::Text(t) if t == "/at")),
            "{texts:?}"
        );
        assert!(
            !texts
                .iter()
                .any(|p| matches!(p, Param::Text(t) if t == "GET")),
            "{texts:?}"
        );
        assert!(
            matches!(probe.params.last(), Some(Param::I64(33_340))),
            "{texts:?}"
        );
        // No bucket (a prefix under three characters), no needle the index narrows.
        assert!(pg_bucket_probe(&q("/a", "php"), 10).is_none());
        assert!(pg_bucket_probe(&q("/asf", "ph"), 10).is_none());
        assert!(pg_bucket_probe(&q("/asf", "a\u{1}b"), 10).is_none());
        assert!(
            pg_bucket_probe(
                &EventQuery {
                    text: None,
                    ..q("/asf", "php")
                },
                10
            )
            .is_none()
        );
        // Twice the prefix's rows; nothing to probe for an empty prefix.
        assert_eq!(pg_bucket_bound(16_670), Some(33_340));
        assert_eq!(pg_bucket_bound(0), None);
    }

    #[test]
    fn postgres_walks_a_small_prefix_first_only_when_a_page_is_nearer() {
        let q = EventQuery {
            path_prefix: Some("/login_form".into()),
            status: Some(StatusFilter::Class(2)),
            limit: 100,
            ..EventQuery::default()
        };
        // 13,228 rows of 1M: a page within 101 / 0.0132 = 7,636 rows newest first.
        assert_eq!(
            pg_path_walk(&q, 13_228, 1_000_000),
            Some((Drive::Time, 26_456))
        );
        // The same prefix with GET walks the method index.
        let get = EventQuery {
            method: Some("GET".into()),
            ..q.clone()
        };
        assert_eq!(
            pg_path_walk(&get, 13_228, 1_000_000),
            Some((Drive::Column("method"), 26_456))
        );
        // 500 rows: reading them is cheaper than the expected walk (202,000 rows).
        assert_eq!(pg_path_walk(&q, 500, 1_000_000), None);
        // A word or a client network the estimate cannot see: read the prefix.
        let word = EventQuery {
            text: Some("php".into()),
            ..q.clone()
        };
        assert_eq!(pg_path_walk(&word, 13_228, 1_000_000), None);
        let network = EventQuery {
            client: "10.0.0.0/24".parse().ok(),
            ..q.clone()
        };
        assert_eq!(pg_path_walk(&network, 13_228, 1_000_000), None);
        // One address: as in SQLite, its index is not walked bounded before a small
        // filter ([`sqlite_fallback`]); the prefix is read.
        let one = EventQuery {
            client: "10.0.0.7/32".parse().ok(),
            ..q
        };
        assert_eq!(pg_path_walk(&one, 13_228, 1_000_000), None);
    }

    #[test]
    fn sqlite_reads_a_driving_network_in_time_order_a_slice_at_a_time() {
        let q = EventQuery {
            client: "10.0.0.0/24".parse().ok(),
            status: Some(StatusFilter::Class(4)),
            text: Some("windows".into()),
            from: Some(palisade_core::Timestamp(10)),
            cursor: Some(Cursor { ts: 5, id: 6 }),
            limit: 100,
            ..EventQuery::default()
        };
        // The ids: the network's index alone, the window and the cursor on its `ts`,
        // the time index kept out.
        let ids = sqlite_network_ids(&q, Drive::Column("client_ip")).map(|s| s.text);
        assert_eq!(
            ids.as_deref(),
            Some(
                "SELECT id FROM events WHERE client_ip BETWEEN ?1 AND ?2 AND +ts >= ?3 \
                 AND (+ts, id) < (?4, ?5) ORDER BY +ts DESC, id DESC"
            )
        );
        // Any other drive, one address, or no network: the one query as before.
        for drive in [
            Drive::Time,
            Drive::Text,
            Drive::Column("status"),
            Drive::Path,
        ] {
            assert!(sqlite_network_ids(&q, drive).is_none(), "{drive:?}");
        }
        let one = EventQuery {
            client: "10.0.0.7/32".parse().ok(),
            ..q.clone()
        };
        assert!(sqlite_network_ids(&one, Drive::Column("client_ip")).is_none());
        let none = EventQuery {
            client: None,
            ..q.clone()
        };
        assert!(sqlite_network_ids(&none, Drive::Column("client_ip")).is_none());
        // The rows: by the listed ids, every filter kept but hidden from its index,
        // sorted newest first.
        let listed = sqlite_listed_query(&q, "[3,1,2]");
        assert!(
            listed
                .text
                .contains(" FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND +ts >= ?2 AND +client_ip BETWEEN ?3 AND ?4 AND +status BETWEEN ?5 AND ?6 AND (path LIKE ?7"),
            "{}",
            listed.text
        );
        assert!(
            listed
                .text
                .contains("AND (+ts, id) < (?8, ?9) ORDER BY ts DESC, id DESC LIMIT ?10"),
            "{}",
            listed.text
        );
        assert!(!listed.text.contains("events_text"), "{}", listed.text);
        assert_eq!(listed.params.first(), Some(&Param::Text("[3,1,2]".into())));
    }

    #[test]
    fn sqlite_reads_the_text_candidates_newest_id_first_with_a_check() {
        let q = EventQuery {
            text: Some("select".into()),
            path_prefix: Some("/tienda1/".into()),
            method: Some("GET".into()),
            from: Some(palisade_core::Timestamp(10)),
            to: Some(palisade_core::Timestamp(20)),
            cursor: Some(Cursor { ts: 15, id: 6 }),
            limit: 100,
            ..EventQuery::default()
        };
        // The candidates: the index's rowids under the prefix's bucket, as event ids.
        let probes = Probes {
            text: Some(7_031),
            window: Some(13_889),
            rows: 10_000_000,
            ..Probes::default()
        };
        let ids = sqlite_text_ids(&q, Drive::Text, &probes);
        let ids = ids.as_ref().map(|s| (s.text.as_str(), s.params.len()));
        assert_eq!(
            ids,
            Some((
                "SELECT rowid & 4398046511103 FROM events_text WHERE events_text MATCH ?1 \
                 AND rowid BETWEEN ?2 AND ?3",
                3
            ))
        );
        // Any other drive, or a needle the index cannot narrow: the one query.
        for drive in [
            Drive::Time,
            Drive::Path,
            Drive::Column("client_ip"),
            Drive::Listed,
        ] {
            assert!(sqlite_text_ids(&q, drive, &probes).is_none(), "{drive:?}");
        }
        let short = EventQuery {
            text: Some("se".into()),
            ..q.clone()
        };
        assert!(sqlite_text_ids(&short, Drive::Text, &probes).is_none());
        // Without a small window: worth it when the page's end is expected within
        // 64 rows of the time index per candidate (10M rows, a page of 101: above
        // ~4,000 candidates).
        let no_window = EventQuery {
            from: None,
            to: None,
            ..q.clone()
        };
        let with = |text: i64| Probes {
            text: Some(text),
            window: None,
            ..probes
        };
        assert!(sqlite_text_ids(&no_window, Drive::Text, &with(9_842)).is_some());
        assert!(sqlite_text_ids(&no_window, Drive::Text, &with(4_000)).is_some());
        assert!(sqlite_text_ids(&no_window, Drive::Text, &with(3_900)).is_none());
        assert!(sqlite_text_ids(&no_window, Drive::Text, &with(1_004)).is_none());
        assert!(sqlite_text_ids(&no_window, Drive::Text, &with(0)).is_none());
        // A large window is no window.
        let large = Probes {
            window: Some(SMALL_MATCH),
            text: Some(1_004),
            ..probes
        };
        assert!(sqlite_text_ids(&q, Drive::Text, &large).is_none());
        let small = Probes {
            text: Some(1_004),
            ..probes
        };
        assert!(sqlite_text_ids(&q, Drive::Text, &small).is_some());
        // The window's ids, from the time index alone.
        let window = sqlite_window_ids(&q).map(|s| s.text);
        assert_eq!(
            window.as_deref(),
            Some("SELECT min(id), max(id) FROM events WHERE ts >= ?1 AND ts < ?2")
        );
        assert!(sqlite_window_ids(&no_window).is_none());
        // The check: rows newer than the page's last, inside the window and cursor,
        // bounded, from the time index alone.
        let check = sqlite_newer_rows(&q, 12, 640);
        assert_eq!(
            check.text,
            "SELECT count(*), min(id) FROM (SELECT id FROM events WHERE ts > ?1 AND ts < ?2 \
             AND ts <= ?3 LIMIT ?4)"
        );
        assert_eq!(
            check.params,
            vec![
                Param::I64(12),
                Param::I64(20),
                Param::I64(15),
                Param::I64(640)
            ]
        );
        assert_eq!(
            sqlite_newer_rows(&no_window, 12, 640).text,
            "SELECT count(*), min(id) FROM (SELECT id FROM events WHERE ts > ?1 AND ts <= ?2 LIMIT ?3)"
        );
    }

    #[test]
    fn sqlite_reads_a_network_and_a_word_both_few_by_their_common_ids() {
        let q = EventQuery {
            client: "10.0.0.0/24".parse().ok(),
            text: Some("select".into()),
            ..EventQuery::default()
        };
        let probes = Probes {
            client: Some(8_900),
            text: Some(9_842),
            rows: 10_000_000,
            ..Probes::default()
        };
        assert!(sqlite_both_few(&q, &probes));
        // The candidates whichever drives.
        let candidates = sqlite_text_candidates(&q).map(|s| s.text);
        assert_eq!(
            candidates.as_deref(),
            Some("SELECT rowid & 4398046511103 FROM events_text WHERE events_text MATCH ?1")
        );
        // Either one many, one address, no word: not both few.
        let many_words = Probes {
            text: Some(SMALL_MATCH),
            ..probes
        };
        assert!(!sqlite_both_few(&q, &many_words));
        let big_network = Probes {
            client: Some(SMALL_MATCH),
            ..probes
        };
        assert!(!sqlite_both_few(&q, &big_network));
        let one = EventQuery {
            client: "10.0.0.7/32".parse().ok(),
            ..q.clone()
        };
        assert!(!sqlite_both_few(&one, &probes));
        let no_word = EventQuery {
            text: None,
            ..q.clone()
        };
        assert!(!sqlite_both_few(&no_word, &probes));
        let no_index = Probes {
            text: None,
            ..probes
        };
        assert!(!sqlite_both_few(&q, &no_index));
    }

    #[test]
    fn sqlite_reads_a_plain_time_walk_from_the_table_highest_id_first() {
        let q = EventQuery {
            client: "10.0.0.0/24".parse().ok(),
            status: Some(StatusFilter::Class(2)),
            text: Some("php".into()),
            limit: 100,
            ..EventQuery::default()
        };
        let walk = sqlite_id_walk(&q, Drive::Time).map(|s| s.text);
        let walk = walk.as_deref().unwrap_or_default();
        // Every filter hidden from its index, the table in id order, a page plus one.
        assert!(
            walk.contains(" FROM events WHERE +client_ip BETWEEN ?1 AND ?2 AND +status BETWEEN ?3 AND ?4 AND (path LIKE ?5"),
            "{walk}"
        );
        assert!(walk.ends_with(" ORDER BY id DESC LIMIT ?6"), "{walk}");
        // Another drive, a window or a cursor: the walk through the time index.
        for drive in [Drive::Text, Drive::Column("status"), Drive::Path] {
            assert!(sqlite_id_walk(&q, drive).is_none(), "{drive:?}");
        }
        let windowed = EventQuery {
            from: Some(palisade_core::Timestamp(10)),
            ..q.clone()
        };
        assert!(sqlite_id_walk(&windowed, Drive::Time).is_none());
        let later = EventQuery {
            cursor: Some(Cursor { ts: 5, id: 6 }),
            ..q.clone()
        };
        assert!(sqlite_id_walk(&later, Drive::Time).is_none());
        // The listing's own order is unchanged.
        let plain = events_query(Dialect::Sqlite, &q, Drive::Time).text;
        assert!(
            plain.ends_with(" ORDER BY ts DESC, id DESC LIMIT ?6"),
            "{plain}"
        );
    }

    #[test]
    fn one_address_and_a_small_window_drive_in_time_order() {
        let one = EventQuery {
            client: "10.0.0.7/32".parse().ok(),
            limit: 100,
            ..EventQuery::default()
        };
        // 60,000 rows from the address: not few, but its index is in time order.
        let probes = Probes {
            client: Some(SMALL_MATCH),
            rows: 10_000_000,
            ..Probes::default()
        };
        assert_eq!(sqlite_drive(&one, &probes), Drive::Column("client_ip"));
        let lite = events_query(Dialect::Sqlite, &one, Drive::Column("client_ip")).text;
        assert!(
            lite.contains("WHERE client_ip = ?1 ORDER BY ts DESC"),
            "{lite}"
        );
        // A word with 9,000 candidates in an hour of 5,000 rows: the hour is read.
        let hour = EventQuery {
            from: Some(palisade_core::Timestamp(0)),
            to: Some(palisade_core::Timestamp(3_600_000_000)),
            status: Some(StatusFilter::Exact(200)),
            text: Some("select".into()),
            limit: 100,
            ..EventQuery::default()
        };
        let probes = Probes {
            text: Some(9_000),
            window: Some(5_000),
            rows: 10_000_000,
            ..Probes::default()
        };
        assert_eq!(sqlite_drive(&hour, &probes), Drive::Column("status"));
        assert_eq!(
            sqlite_fallback(&hour, &probes, Drive::Column("status")),
            None,
            "the hour bounds the walk"
        );
        let no_status = EventQuery {
            status: None,
            ..hour.clone()
        };
        assert_eq!(sqlite_drive(&no_status, &probes), Drive::Time);
        // A larger window leaves the word's candidates to drive.
        let wide = Probes {
            window: Some(SMALL_MATCH),
            ..probes
        };
        assert_eq!(sqlite_drive(&hour, &wide), Drive::Text);
        let probe = probe_query(Dialect::Sqlite, &hour, "ts")
            .map(|s| s.text)
            .unwrap_or_default();
        assert!(
            probe.starts_with(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE ts >= ?1 AND ts < ?2 LIMIT ?3)"
            ),
            "{probe}"
        );
        assert!(probe_query(Dialect::Sqlite, &one, "ts").is_none());
    }
}
