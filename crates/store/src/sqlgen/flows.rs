//! The listing query of flows.

use super::{Builder, Dialect, Param, Sql, clamp_limit};
use crate::FlowQuery;
use crate::codec::flows::FLOW_SELECT_COLUMNS;

/// The query listing flows for `q`, newest first, one row more than the page (keyset
/// on `(start_ts, id)`). An address filter is a range over either endpoint's key; the
/// planner answers each side from `flows_src` / `flows_dst`.
pub(crate) fn flows_query(dialect: Dialect, q: &FlowQuery) -> Sql {
    let mut b = Builder::new(dialect);
    b.at_or_after("start_ts", q.from);
    b.before("start_ts", q.to);
    if let Some(net) = q.ip {
        let lo = b.p(Param::Bytes(net.first.to_vec()));
        let hi = b.p(Param::Bytes(net.last.to_vec()));
        b.cond(format!(
            "(src_key BETWEEN {lo} AND {hi} OR dst_key BETWEEN {lo} AND {hi})"
        ));
    }
    if let Some(port) = q.port {
        let p = b.p(Param::I64(i64::from(port)));
        b.cond(format!("(dst_port = {p} OR src_port = {p})"));
    }
    if let Some(proto) = &q.protocol {
        let p = b.text(proto);
        b.cond(format!("protocol = {p}"));
    }
    if let Some(app) = &q.app {
        let p = b.text(app);
        b.cond(format!("app = {p}"));
    }
    if let Some(state) = &q.state {
        let p = b.text(state);
        b.cond(format!("state = {p}"));
    }
    if let Some(device) = q.device {
        let p = b.p(Param::I64(device));
        b.cond(format!(
            "(src_key IN (SELECT ip_key FROM device_addrs WHERE device_id = {p}) \
             OR dst_key IN (SELECT ip_key FROM device_addrs WHERE device_id = {p}))"
        ));
    }
    match q.has_threat {
        Some(true) => {
            b.cond("EXISTS (SELECT 1 FROM flow_threats ft WHERE ft.flow_id = flows.id)".into())
        }
        Some(false) => {
            b.cond("NOT EXISTS (SELECT 1 FROM flow_threats ft WHERE ft.flow_id = flows.id)".into())
        }
        None => {}
    }
    b.older_than("start_ts, id", q.cursor);
    b.finish(
        &format!("SELECT {FLOW_SELECT_COLUMNS} FROM flows"),
        "start_ts DESC, id DESC",
        clamp_limit(q.limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_parameters() {
        let q = FlowQuery {
            ip: "10.0.0.0/8".parse().ok(),
            port: Some(443),
            app: Some("tls".into()),
            limit: 10,
            ..FlowQuery::default()
        };
        let sql = flows_query(Dialect::Postgres, &q);
        assert!(
            sql.text
                .contains("(src_key BETWEEN $1 AND $2 OR dst_key BETWEEN $1 AND $2)"),
            "{}",
            sql.text
        );
        assert!(sql.text.contains("(dst_port = $3 OR src_port = $3)"));
        assert!(
            sql.text
                .ends_with("ORDER BY start_ts DESC, id DESC LIMIT $5"),
            "{}",
            sql.text
        );
        assert_eq!(sql.params.len(), 5);
    }
}
