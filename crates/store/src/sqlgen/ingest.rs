//! The listing queries of the ingest tables: events (with the SQLite driving-index
//! choice) and dead letters.

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
}

/// Rows a probe counts up to: below this, a filter's index is worth driving with even
/// when it returns rows out of time order (sorting a few thousand rows is cheap).
pub(crate) const SMALL_MATCH: i64 = 5000;

/// The SQLite driving index for a query, given whether the client network and the path
/// prefix each match fewer than [`SMALL_MATCH`] rows (probed by the store). Equality
/// filters with a `(column, ts)` index also return rows in time order, so they drive
/// whenever nothing narrower does.
pub(crate) fn sqlite_drive(q: &EventQuery, small_client: bool, small_path: bool) -> Drive {
    let exact_status = matches!(q.status, Some(s) if s.range().0 == s.range().1);
    if q.client.is_some() && small_client {
        Drive::Column("client_ip")
    } else if q.path_prefix.is_some() && small_path {
        Drive::Column("path")
    } else if q.host.is_some() {
        Drive::Column("host")
    } else if exact_status {
        Drive::Column("status")
    } else if q.method.is_some() {
        Drive::Column("method")
    } else {
        Drive::Time
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
    let mut b = Builder::new(dialect);
    let col = |name: &'static str| -> String {
        match drive {
            Drive::Column(d) if d != name => format!("+{name}"),
            Drive::Time => format!("+{name}"),
            _ => name.to_owned(),
        }
    };
    if let Some(from) = q.from {
        let p = b.p(Param::I64(from.as_micros()));
        b.cond(format!("ts >= {p}"));
    }
    if let Some(to) = q.to {
        let p = b.p(Param::I64(to.as_micros()));
        b.cond(format!("ts < {p}"));
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
        let p = b.p(Param::Text(contains_pattern(text)));
        let op = match dialect {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        };
        let parts: Vec<String> = [
            "path",
            "query",
            "user_agent",
            "referer",
            "message",
            "user_name",
        ]
        .iter()
        .map(|col| format!("{col} {op} {p} ESCAPE '\\'"))
        .collect();
        b.cond(format!("({})", parts.join(" OR ")));
    }
    if let Some(c) = q.cursor {
        let ts = b.p(Param::I64(c.ts));
        let id = b.p(Param::I64(c.id));
        b.cond(format!("(ts, id) < ({ts}, {id})"));
    }
    b.finish(
        &format!("SELECT {EVENT_SELECT_COLUMNS} FROM events"),
        "ts DESC, id DESC",
        clamp_limit(q.limit),
    )
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
        let drive = sqlite_drive(&q, true, true);
        assert_eq!(drive, Drive::Column("client_ip"));
        let lite = events_query(Dialect::Sqlite, &q, drive).text;
        assert!(lite.contains(" client_ip BETWEEN"), "{lite}");
        assert!(
            lite.contains("+status BETWEEN") && lite.contains("+method ="),
            "{lite}"
        );
        // A network matching many rows does not drive; the method equality does, in
        // time order.
        assert_eq!(sqlite_drive(&q, false, true), Drive::Column("method"));
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
        assert_eq!(sqlite_drive(&by_time, false, false), Drive::Time);
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
                sqlite_drive(&only_status, false, false)
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
}
