//! The listing query of the audit log.

use super::{Builder, Dialect, Sql, clamp_limit};
use crate::AuditQuery;
use crate::codec::security::AUDIT_SELECT_COLUMNS;

/// The query listing audit entries for `q`, newest first, one row more than the page.
/// Each filter is an equality or range the `audit_log` indexes answer in order.
pub(crate) fn audit_query(dialect: Dialect, q: &AuditQuery) -> Sql {
    let mut b = Builder::new(dialect);
    b.at_or_after("ts", q.from);
    b.before("ts", q.to);
    if let Some(actor) = &q.actor {
        let p = b.text(actor);
        b.cond(format!("actor = {p}"));
    }
    if let Some(action) = &q.action {
        let p = b.text(action);
        b.cond(format!("action = {p}"));
    }
    b.older_than("ts, id", q.cursor);
    b.finish(
        &format!("SELECT {AUDIT_SELECT_COLUMNS} FROM audit_log"),
        "ts DESC, id DESC",
        clamp_limit(q.limit),
    )
}
