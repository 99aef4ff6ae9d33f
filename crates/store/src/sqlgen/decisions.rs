//! The listing query of the decisions table.

use super::{Builder, Dialect, Param, Sql, clamp_limit};
use crate::DecisionQuery;
use crate::codec::decisions::DECISION_SELECT_COLUMNS;

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
    b.older_than("created_at, id", q.cursor);
    b.finish(
        &format!("SELECT {DECISION_SELECT_COLUMNS} FROM decisions"),
        "created_at DESC, id DESC",
        clamp_limit(q.limit),
    )
}
