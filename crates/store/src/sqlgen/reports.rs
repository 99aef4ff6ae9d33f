//! The queries of reports: the listing, and the summaries a security report needs.

use super::{Builder, Dialect, Sql, clamp_limit};
use crate::Cursor;
use crate::codec::reports::REPORT_META_COLUMNS;

/// Reports, newest first, one row more than the page.
pub(crate) fn reports_query(dialect: Dialect, cursor: Option<Cursor>, limit: u32) -> Sql {
    let mut b = Builder::new(dialect);
    b.older_than("created_at, id", cursor);
    b.finish(
        &format!("SELECT {REPORT_META_COLUMNS} FROM reports"),
        "created_at DESC, id DESC",
        clamp_limit(limit),
    )
}

/// `(client_ip key, count)` of threats in `[$1, $2)`, most first, at most `$3`; ties go
/// to the smaller key (bytewise on both backends).
pub(crate) fn top_sources_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT client_ip, count(*) AS n FROM threats \
             WHERE ts >= ?1 AND ts < ?2 AND client_ip IS NOT NULL \
             GROUP BY client_ip ORDER BY n DESC, client_ip ASC LIMIT ?3"
        }
        Dialect::Postgres => {
            "SELECT client_ip, count(*) AS n FROM threats \
             WHERE ts >= $1 AND ts < $2 AND client_ip IS NOT NULL \
             GROUP BY client_ip ORDER BY n DESC, client_ip ASC LIMIT $3"
        }
    }
}

/// `(kind/origin, count)` of decisions created in `[$1, $2)`, most first.
pub(crate) fn decision_counts_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT kind || '/' || origin AS k, count(*) AS n FROM decisions \
             WHERE created_at >= ?1 AND created_at < ?2 \
             GROUP BY k ORDER BY n DESC, k ASC"
        }
        Dialect::Postgres => {
            "SELECT kind || '/' || origin AS k, count(*) AS n FROM decisions \
             WHERE created_at >= $1 AND created_at < $2 \
             GROUP BY kind, origin ORDER BY n DESC, (kind || '/' || origin) COLLATE \"C\" ASC"
        }
    }
}
