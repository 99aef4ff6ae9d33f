//! Builds the one parameterised SQL query a listing needs, for either backend. Values
//! always travel as parameters; only fixed SQL fragments are concatenated.

use crate::codec::clean;
use crate::codec::decisions::DECISION_SELECT_COLUMNS;
use crate::codec::ingest::{DEAD_LETTER_SELECT_COLUMNS, EVENT_SELECT_COLUMNS};
use crate::codec::security::AUDIT_SELECT_COLUMNS;
use crate::codec::threats::{THREAT_SELECT_COLUMNS, rule_id_to_i32};
use crate::{
    AuditQuery, Cursor, DeadLetterQuery, DecisionQuery, EventQuery, MAX_LIMIT, Page, ThreatQuery,
};

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

/// The query listing audit entries for `q`, newest first, one row more than the page.
/// Each filter is an equality or range the `audit_log` indexes answer in order.
pub(crate) fn audit_query(dialect: Dialect, q: &AuditQuery) -> Sql {
    let mut b = Builder::new(dialect);
    if let Some(from) = q.from {
        let p = b.p(Param::I64(from.as_micros()));
        b.cond(format!("ts >= {p}"));
    }
    if let Some(to) = q.to {
        let p = b.p(Param::I64(to.as_micros()));
        b.cond(format!("ts < {p}"));
    }
    if let Some(actor) = &q.actor {
        let p = b.text(actor);
        b.cond(format!("actor = {p}"));
    }
    if let Some(action) = &q.action {
        let p = b.text(action);
        b.cond(format!("action = {p}"));
    }
    if let Some(c) = q.cursor {
        let ts = b.p(Param::I64(c.ts));
        let id = b.p(Param::I64(c.id));
        b.cond(format!("(ts, id) < ({ts}, {id})"));
    }
    b.finish(
        &format!("SELECT {AUDIT_SELECT_COLUMNS} FROM audit_log"),
        "ts DESC, id DESC",
        clamp_limit(q.limit),
    )
}

/// The query listing threats for `q`, newest first, one row more than the page. The
/// rule filter is a subquery on `threat_rules`' `(rule_id, ts, threat_id)` key.
pub(crate) fn threats_query(dialect: Dialect, q: &ThreatQuery) -> Sql {
    let mut b = Builder::new(dialect);
    if let Some(from) = q.from {
        let p = b.p(Param::I64(from.as_micros()));
        b.cond(format!("ts >= {p}"));
    }
    if let Some(to) = q.to {
        let p = b.p(Param::I64(to.as_micros()));
        b.cond(format!("ts < {p}"));
    }
    if let Some(category) = &q.category {
        let p = b.text(category);
        b.cond(format!("category = {p}"));
    }
    if let Some(severity) = &q.severity {
        let p = b.text(severity);
        b.cond(format!("severity = {p}"));
    }
    if let Some(net) = q.client {
        let lo = b.p(Param::Bytes(net.first.to_vec()));
        let hi = b.p(Param::Bytes(net.last.to_vec()));
        b.cond(format!("client_ip BETWEEN {lo} AND {hi}"));
    }
    if let Some(rule_id) = q.rule_id {
        let p = b.p(Param::I32(rule_id_to_i32(rule_id)));
        b.cond(format!(
            "id IN (SELECT threat_id FROM threat_rules WHERE rule_id = {p})"
        ));
    }
    if let Some(c) = q.cursor {
        let ts = b.p(Param::I64(c.ts));
        let id = b.p(Param::I64(c.id));
        b.cond(format!("(ts, id) < ({ts}, {id})"));
    }
    b.finish(
        &format!("SELECT {THREAT_SELECT_COLUMNS} FROM threats"),
        "ts DESC, id DESC",
        clamp_limit(q.limit),
    )
}

/// The query listing decisions for `q`, newest first, one row more than the page. The
/// network filter is an overlap test on the `(net_first, net_last)` key range.
pub(crate) fn decisions_query(dialect: Dialect, q: &DecisionQuery) -> Sql {
    let mut b = Builder::new(dialect);
    if let Some(kind) = q.kind {
        let p = b.p(Param::Text(kind.as_str().to_owned()));
        b.cond(format!("kind = {p}"));
    }
    if let Some(scope) = q.scope {
        let p = b.p(Param::Text(scope.as_str().to_owned()));
        b.cond(format!("scope = {p}"));
    }
    if let Some(origin) = q.origin {
        let p = b.p(Param::Text(origin.as_str().to_owned()));
        b.cond(format!("origin = {p}"));
    }
    if let Some(scenario) = &q.scenario {
        let p = b.text(scenario);
        b.cond(format!("scenario = {p}"));
    }
    if let Some(net) = q.overlaps {
        let last = b.p(Param::Bytes(net.last.to_vec()));
        let first = b.p(Param::Bytes(net.first.to_vec()));
        b.cond(format!("net_first <= {last} AND net_last >= {first}"));
    }
    if let Some(active) = q.active {
        let now = b.p(Param::I64(q.now.as_micros()));
        b.cond(if active {
            format!("deleted_at IS NULL AND (expires_at IS NULL OR expires_at > {now})")
        } else {
            format!("(deleted_at IS NOT NULL OR expires_at <= {now})")
        });
    }
    if let Some(c) = q.cursor {
        let ts = b.p(Param::I64(c.ts));
        let id = b.p(Param::I64(c.id));
        b.cond(format!("(created_at, id) < ({ts}, {id})"));
    }
    b.finish(
        &format!("SELECT {DECISION_SELECT_COLUMNS} FROM decisions"),
        "created_at DESC, id DESC",
        clamp_limit(q.limit),
    )
}

/// The statistics queries over `[from, to)`. Each takes `from` and `to` as its first two
/// parameters (BIGINT); `buckets` also takes the bucket width in µs as the third. Every
/// query returns `(key, count)` rows in the order the statistics list them; ties go to
/// the smaller key, compared bytewise on both backends.
pub(crate) struct ThreatStatsSql {
    /// `count(*)`.
    pub total: String,
    /// By category, severity and source.
    pub by_category: String,
    pub by_severity: String,
    pub by_source: String,
    /// The 20 most frequent rules (key: the stored INTEGER rule id).
    pub by_rule: String,
    /// Bucket number (`ts / width`), oldest first.
    pub buckets: String,
}

/// The statistics queries for `dialect` (see [`ThreatStatsSql`]).
pub(crate) fn threat_stats_queries(dialect: Dialect) -> ThreatStatsSql {
    let (p1, p2, p3, collate) = match dialect {
        Dialect::Sqlite => ("?1", "?2", "?3", ""),
        Dialect::Postgres => ("$1", "$2", "$3", " COLLATE \"C\""),
    };
    let range = format!("ts >= {p1} AND ts < {p2}");
    let by = |col: &str| {
        format!(
            "SELECT {col}, count(*) AS n FROM threats WHERE {range} \
             GROUP BY {col} ORDER BY n DESC, {col}{collate} ASC"
        )
    };
    ThreatStatsSql {
        total: format!("SELECT count(*) FROM threats WHERE {range}"),
        by_category: by("category"),
        by_severity: by("severity"),
        by_source: by("source"),
        by_rule: format!(
            "SELECT rule_id, count(*) AS n FROM threat_rules WHERE {range} \
             GROUP BY rule_id ORDER BY n DESC, rule_id ASC LIMIT 20"
        ),
        buckets: format!(
            "SELECT ts / {p3} AS bucket, count(*) AS n FROM threats WHERE {range} \
             GROUP BY bucket ORDER BY bucket ASC"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatusFilter;

    #[test]
    fn threat_queries_are_parameterised() {
        let q = ThreatQuery {
            category: Some("sq'li".into()),
            client: "10.0.0.0/24".parse().ok(),
            rule_id: Some(u32::MAX),
            cursor: Some(Cursor { ts: 5, id: 7 }),
            limit: 0,
            ..ThreatQuery::default()
        };
        let sql = threats_query(Dialect::Postgres, &q);
        assert!(!sql.text.contains("sq'li"), "{}", sql.text);
        assert!(
            sql.text
                .contains("id IN (SELECT threat_id FROM threat_rules WHERE rule_id = $4)"),
            "{}",
            sql.text
        );
        assert!(sql.text.ends_with("ORDER BY ts DESC, id DESC LIMIT $7"));
        assert_eq!(sql.params[3], Param::I32(-1));
        assert_eq!(sql.params[6], Param::I64(2));
        let stats = threat_stats_queries(Dialect::Sqlite);
        assert!(stats.by_rule.ends_with("LIMIT 20"));
        assert!(stats.buckets.contains("ts / ?3"));
        assert!(
            !threat_stats_queries(Dialect::Postgres)
                .by_source
                .contains('?')
        );
    }

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
