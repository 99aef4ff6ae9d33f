//! The listing and statistics queries of the threat tables.

use super::{Builder, Dialect, Param, Sql, clamp_limit};
use crate::ThreatQuery;
use crate::codec::threats::{THREAT_SELECT_COLUMNS, rule_id_to_i32};

/// The query listing threats for `q`, newest first, one row more than the page. The
/// rule filter is a subquery on `threat_rules`' `(rule_id, ts, threat_id)` key.
pub(crate) fn threats_query(dialect: Dialect, q: &ThreatQuery) -> Sql {
    let mut b = Builder::new(dialect);
    b.at_or_after("ts", q.from);
    b.before("ts", q.to);
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
    if let Some(tag) = &q.tag {
        // `tags` is a JSON array of strings: match the element, quotes included, with
        // LIKE's own wildcards escaped (`OWASP_CRS` has an underscore).
        let element = serde_json::to_string(tag).unwrap_or_default();
        let escaped = element
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = b.text(&format!("%{escaped}%"));
        // Case-insensitive on both backends (SQLite's LIKE already is for ASCII).
        let like = match dialect {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        };
        b.cond(format!("tags {like} {p} ESCAPE '\\'"));
    }
    b.older_than("ts, id", q.cursor);
    b.finish(
        &format!("SELECT {THREAT_SELECT_COLUMNS} FROM threats"),
        "ts DESC, id DESC",
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
    use crate::Cursor;

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
}
