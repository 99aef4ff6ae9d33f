//! The listing query of devices and the flow analytics queries.

use super::{Builder, Dialect, Param, Sql, clamp_limit, contains_pattern};
use crate::{DeviceQuery, FlowAnalyticsQuery};

/// The columns a device listing selects: id and the device JSON.
pub(crate) const DEVICE_COLUMNS: &str = "id, detail";

/// The query listing devices for `q`, most recently seen first, one row more than the
/// page (keyset on `(last_seen, id)`). An address filter goes through `device_addrs`.
pub(crate) fn devices_query(dialect: Dialect, q: &DeviceQuery) -> Sql {
    let mut b = Builder::new(dialect);
    let like = match dialect {
        Dialect::Sqlite => "LIKE",
        Dialect::Postgres => "ILIKE",
    };
    b.at_or_after("last_seen", q.from);
    b.before("first_seen", q.to);
    if let Some(net) = q.ip {
        let lo = b.p(Param::Bytes(net.first.to_vec()));
        let hi = b.p(Param::Bytes(net.last.to_vec()));
        b.cond(format!(
            "id IN (SELECT device_id FROM device_addrs WHERE ip_key BETWEEN {lo} AND {hi})"
        ));
    }
    if let Some(mac) = &q.mac {
        let p = b.text(mac);
        b.cond(format!("mac = {p}"));
    }
    for (column, needle) in [
        ("vendor", &q.vendor),
        ("hostnames", &q.hostname),
        ("os", &q.os),
    ] {
        if let Some(n) = needle.as_deref().filter(|n| !n.is_empty()) {
            let p = b.p(Param::Text(contains_pattern(n)));
            b.cond(format!("{column} {like} {p} ESCAPE '\\'"));
        }
    }
    b.older_than("last_seen, id", q.cursor);
    b.finish(
        &format!("SELECT {DEVICE_COLUMNS} FROM devices"),
        "last_seen DESC, id DESC",
        clamp_limit(q.limit),
    )
}

/// The four analytics queries, each selecting `(key, flows, packets, bytes)`: top
/// talkers (each endpoint counts the flow's bytes), protocols, applications, and
/// buckets of flow start time (whose key is the bucket start in µs, a BIGINT).
pub(crate) fn analytics_queries(dialect: Dialect, q: &FlowAnalyticsQuery) -> [Sql; 4] {
    let top = i64::from(q.top.clamp(1, 1000));
    let bucket = q.bucket_secs.max(1).saturating_mul(1_000_000);
    let ph = |n: usize| match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    };
    let (from, to, third) = (ph(1), ph(2), ph(3));
    let range = format!("start_ts >= {from} AND start_ts < {to}");
    let sums = "COUNT(*), CAST(SUM(orig_packets + resp_packets) AS BIGINT), \
                CAST(SUM(orig_bytes + resp_bytes) AS BIGINT)";
    let params = |third: i64| {
        vec![
            Param::I64(q.from.as_micros()),
            Param::I64(q.to.as_micros()),
            Param::I64(third),
        ]
    };
    let grouped = |key: &str| Sql {
        text: format!(
            "SELECT {key} AS k, {sums} FROM flows WHERE {range} GROUP BY k \
             ORDER BY 4 DESC, 1 LIMIT {third}"
        ),
        params: params(top),
    };
    let talkers = Sql {
        text: format!(
            "SELECT ip AS k, COUNT(*), CAST(SUM(p) AS BIGINT), CAST(SUM(b) AS BIGINT) FROM (\
             SELECT src_ip AS ip, orig_packets + resp_packets AS p, orig_bytes + resp_bytes AS b \
             FROM flows WHERE {range} UNION ALL \
             SELECT dst_ip AS ip, orig_packets + resp_packets AS p, orig_bytes + resp_bytes AS b \
             FROM flows WHERE {range}) t GROUP BY ip ORDER BY 4 DESC, 1 LIMIT {third}"
        ),
        params: params(top),
    };
    let buckets = Sql {
        text: format!(
            "SELECT (start_ts / {third}) * {third} AS bk, {sums} FROM flows \
             WHERE {range} GROUP BY bk ORDER BY bk"
        ),
        params: params(bucket),
    };
    [
        talkers,
        grouped("protocol"),
        grouped("COALESCE(app, 'unknown')"),
        buckets,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_filters_become_parameters() {
        let q = DeviceQuery {
            ip: "10.0.0.0/8".parse().ok(),
            hostname: Some("nas".into()),
            limit: 5,
            ..DeviceQuery::default()
        };
        let sql = devices_query(Dialect::Postgres, &q);
        assert!(
            sql.text.contains("ip_key BETWEEN $1 AND $2"),
            "{}",
            sql.text
        );
        assert!(sql.text.contains("hostnames ILIKE $3"), "{}", sql.text);
        assert!(
            sql.text
                .ends_with("ORDER BY last_seen DESC, id DESC LIMIT $4")
        );
        assert_eq!(sql.params.len(), 4);
    }
}
