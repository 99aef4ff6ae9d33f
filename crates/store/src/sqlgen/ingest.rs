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
    /// The time index: walk newest first and filter (the filters match many rows).
    Time,
    /// The free-text index: the text matches few rows (fetched by id, then sorted).
    Text,
}

/// Rows a probe counts up to. Driving by an index that returns rows out of time order
/// means reading every row it matches, then sorting: worth it below this many (a few
/// tens of milliseconds), and only when walking the time index would read more.
pub(crate) const SMALL_MATCH: i64 = 20_000;

/// What the SQLite store probed before choosing a driving index: how many rows (up to
/// [`SMALL_MATCH`]) the client network, the path prefix and the free-text index each
/// match (`None`: no such filter, or no text index), and about how many rows the
/// table holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Probes {
    /// Rows in the client network.
    pub client: Option<i64>,
    /// Rows under the path prefix.
    pub path: Option<i64>,
    /// Candidates of the free-text index for `q`.
    pub text: Option<i64>,
    /// Rows in the table (`max(id) - min(id) + 1`).
    pub rows: i64,
}

/// The SQLite driving index for a query, given the [`Probes`].
///
/// The probed filter matching fewest rows (under [`SMALL_MATCH`]) drives, unless walking
/// the time index newest first is expected to reach a page sooner: with the probed
/// filters independent, that walk reads about `page / (product of their fractions of
/// the table)` rows. Otherwise equality filters with a `(column, ts)` index drive,
/// since they also return rows in time order; else the time index.
pub(crate) fn sqlite_drive(q: &EventQuery, probes: &Probes) -> Drive {
    let exact_status = matches!(q.status, Some(s) if s.range().0 == s.range().1);
    let probed = [
        ("client_ip", probes.client.filter(|_| q.client.is_some())),
        ("path", probes.path.filter(|_| q.path_prefix.is_some())),
        ("text", probes.text.filter(|_| q.text.is_some())),
    ];
    let rows = probes.rows.max(1) as f64;
    let mut fraction = 1.0_f64;
    let mut best: Option<(&'static str, i64)> = None;
    for (name, count) in probed {
        let Some(count) = count else { continue };
        fraction *= (count as f64 / rows).min(1.0);
        if count < SMALL_MATCH && best.is_none_or(|(_, b)| count < b) {
            best = Some((name, count));
        }
    }
    let page = f64::from(clamp_limit(q.limit)) + 1.0;
    let time_walk = if fraction > 0.0 {
        page / fraction
    } else {
        f64::INFINITY
    };
    match best {
        Some((name, count)) if (count as f64) <= time_walk => {
            if name == "text" {
                Drive::Text
            } else if name == "path" {
                Drive::Column("path")
            } else {
                Drive::Column("client_ip")
            }
        }
        _ if q.host.is_some() => Drive::Column("host"),
        _ if exact_status => Drive::Column("status"),
        _ if q.method.is_some() => Drive::Column("method"),
        _ => Drive::Time,
    }
}

/// A probe counting, up to [`SMALL_MATCH`], the rows one filter matches, through its
/// index only. `None` when the query has no such filter.
pub(crate) fn probe_query(dialect: Dialect, q: &EventQuery, column: &str) -> Option<Sql> {
    let mut b = Builder::new(dialect);
    match column {
        "client_ip" => {
            let net = q.client?;
            let lo = b.p(Param::Bytes(net.first.to_vec()));
            let hi = b.p(Param::Bytes(net.last.to_vec()));
            b.cond(format!("client_ip BETWEEN {lo} AND {hi}"));
        }
        "path" => {
            let prefix = clean(q.path_prefix.as_deref()?);
            let lo = b.text(&prefix);
            b.cond(format!("path >= {lo}"));
            if let Some(upper) = prefix_upper_bound(&prefix) {
                let hi = b.text(&upper);
                b.cond(format!("path < {hi}"));
            }
        }
        _ => return None,
    }
    let limit = b.p(Param::I64(SMALL_MATCH));
    Some(Sql {
        text: format!(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE {} LIMIT {limit})",
            b.conds.join(" AND ")
        ),
        params: b.params,
    })
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
    let mut b = Builder::new(dialect);
    let col = |name: &'static str| -> String {
        match drive {
            Drive::Column(d) if d != name => format!("+{name}"),
            Drive::Time | Drive::Text => format!("+{name}"),
            _ => name.to_owned(),
        }
    };
    // Driven by the text index, the time index must not be walked for the order.
    let ts = if drive == Drive::Text { "+ts" } else { "ts" };
    if let Some(from) = q.from {
        let p = b.p(Param::I64(from.as_micros()));
        b.cond(format!("{ts} >= {p}"));
    }
    if let Some(to) = q.to {
        let p = b.p(Param::I64(to.as_micros()));
        b.cond(format!("{ts} < {p}"));
    }
    if let Some(net) = q.client {
        let lo = b.p(Param::Bytes(net.first.to_vec()));
        let hi = b.p(Param::Bytes(net.last.to_vec()));
        b.cond(format!("{} BETWEEN {lo} AND {hi}", col("client_ip")));
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
    if let Some(prefix) = &q.path_prefix {
        let prefix = clean(prefix);
        let lo = b.text(&prefix);
        b.cond(format!("{} >= {lo}", col("path")));
        if let Some(upper) = prefix_upper_bound(&prefix) {
            let hi = b.text(&upper);
            b.cond(format!("{} < {hi}", col("path")));
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
        if drive == Drive::Text
            && let Some(candidates) = text::sqlite_candidates(&mut b, &clean(text))
        {
            b.cond(candidates);
        }
        let p = b.p(Param::Text(contains_pattern(text)));
        match dialect {
            // One test of the joined columns, which the trigram index answers.
            Dialect::Postgres if !text.contains(SEPARATOR) => {
                b.cond(format!("{} ILIKE {p} ESCAPE '\\'", text::PG_TEXT_EXPR));
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
        let inner = if inner.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", inner.join(" AND "))
        };
        b.conds = outer;
        return b.finish(
            &format!(
                "SELECT {EVENT_SELECT_COLUMNS} FROM (SELECT {EVENT_SELECT_COLUMNS} FROM events{inner} \
                 ORDER BY ts DESC, id DESC LIMIT {scan})"
            ),
            "ts DESC, id DESC",
            clamp_limit(q.limit),
        );
    }
    b.finish(
        &format!("SELECT {EVENT_SELECT_COLUMNS} FROM events"),
        "ts DESC, id DESC",
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
    let probed = [
        (
            Drive::Column("client_ip"),
            probes.client.filter(|_| q.client.is_some()),
        ),
        (
            Drive::Column("path"),
            probes.path.filter(|_| q.path_prefix.is_some()),
        ),
        (Drive::Text, probes.text.filter(|_| q.text.is_some())),
    ];
    probed
        .into_iter()
        .filter_map(|(d, count)| count.filter(|c| *c < SMALL_MATCH).map(|c| (d, c)))
        .min_by_key(|(_, c)| *c)
        .map(|(d, c)| (d, (2 * c).max(1000)))
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
            lite.contains("id IN (SELECT rowid FROM events_text WHERE events_text MATCH ?"),
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
            Some((Drive::Column("path"), 30_000))
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
        assert_eq!(sqlite_fallback(&q, &probes, Drive::Column("path")), None);
    }
}
