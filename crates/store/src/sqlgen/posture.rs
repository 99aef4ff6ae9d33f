//! The listing query of posture runs.

use super::{Builder, Dialect, Sql, clamp_limit};
use crate::PostureRunQuery;
use crate::codec::posture::RUN_SELECT_COLUMNS;

/// The query listing posture runs for `q`, newest first, one row more than the page
/// (keyset on `(started_at, id)`, which `posture_runs_started` answers in order).
pub(crate) fn posture_runs_query(dialect: Dialect, q: &PostureRunQuery) -> Sql {
    let mut b = Builder::new(dialect);
    b.at_or_after("started_at", q.from);
    b.before("started_at", q.to);
    b.older_than("started_at, id", q.cursor);
    b.finish(
        &format!("SELECT {RUN_SELECT_COLUMNS} FROM posture_runs"),
        "started_at DESC, id DESC",
        clamp_limit(q.limit),
    )
}

/// Every enabled admin and every API key not revoked, with its last use:
/// `(kind, id, name, role, created_at, last_used_at)`.
pub(crate) fn credentials_query(dialect: Dialect) -> String {
    let enabled = match dialect {
        Dialect::Sqlite => "u.disabled = 0",
        Dialect::Postgres => "NOT u.disabled",
    };
    format!(
        "SELECT 'user', u.id, u.username, u.role, u.created_at, l.last_login_at \
         FROM users u LEFT JOIN user_logins l ON l.user_id = u.id \
         WHERE u.role = 'admin' AND {enabled} \
         UNION ALL SELECT 'api_key', k.id, k.name, NULL, k.created_at, k.last_used_at \
         FROM api_keys k WHERE k.revoked_at IS NULL ORDER BY 1, 3"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cursor;

    #[test]
    fn runs_page_by_keyset() {
        let q = PostureRunQuery {
            cursor: Some(Cursor { ts: 9, id: 3 }),
            limit: 10,
            ..PostureRunQuery::default()
        };
        let sql = posture_runs_query(Dialect::Postgres, &q);
        assert!(
            sql.text.contains("(started_at, id) < ($1, $2)"),
            "{}",
            sql.text
        );
        assert!(sql.text.ends_with("LIMIT $3"));
    }
}
