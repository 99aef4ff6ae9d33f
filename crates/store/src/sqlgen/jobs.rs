//! The listing query of the jobs table.

use super::{Builder, Dialect, Param, Sql, clamp_limit};
use crate::JobQuery;
use crate::codec::jobs::JOB_SELECT_COLUMNS;

/// The query listing jobs for `q`, newest first, one row more than the page. Each
/// filter has an index ending in `(created_at, id)` behind it.
pub(crate) fn jobs_query(dialect: Dialect, q: &JobQuery) -> Sql {
    let mut b = Builder::new(dialect);
    if let Some(kind) = &q.kind {
        let p = b.text(kind);
        b.cond(format!("kind = {p}"));
    }
    if let Some(state) = q.state {
        let p = b.p(Param::Text(state.as_str().to_owned()));
        b.cond(format!("state = {p}"));
    }
    if let Some(id) = q.schedule_id {
        let p = b.p(Param::I64(id));
        b.cond(format!("schedule_id = {p}"));
    }
    b.at_or_after("created_at", q.from);
    b.before("created_at", q.to);
    b.older_than("created_at, id", q.cursor);
    b.finish(
        &format!("SELECT {JOB_SELECT_COLUMNS} FROM jobs"),
        "created_at DESC, id DESC",
        clamp_limit(q.limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::Timestamp;
    use palisade_core::job::JobState;

    #[test]
    fn filters_become_parameters() {
        let q = JobQuery {
            kind: Some("command".into()),
            state: Some(JobState::Failed),
            from: Some(Timestamp(5)),
            limit: 10,
            ..JobQuery::default()
        };
        let sql = jobs_query(Dialect::Postgres, &q);
        assert!(
            sql.text
                .contains("kind = $1 AND state = $2 AND created_at >= $3")
        );
        assert!(sql.text.ends_with("LIMIT $4"));
        assert_eq!(sql.params.len(), 4);
    }
}
