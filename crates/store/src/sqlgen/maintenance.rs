//! The statements of storage upkeep, for either dialect: retention deletes in bounded
//! batches and the integrity checks both backends run alike.

use super::Dialect;
use crate::DataKind;

/// Tables whose rows are counted by the integrity report.
pub(crate) const COUNTED_TABLES: &[&str] = &[
    "events",
    "dead_letters",
    "checkpoints",
    "threats",
    "decisions",
    "audit_log",
    "users",
    "api_keys",
    "jobs",
    "job_logs",
    "job_schedules",
];

/// `(check name, query returning one count)`: rows that point at something missing.
/// Threats and decisions may point at events or threats that retention removed, so the
/// caller decides how much those weigh.
pub(crate) const ORPHAN_QUERIES: &[(&str, &str)] = &[
    (
        "orphans:threats.event_id",
        "SELECT count(*) FROM threats t WHERE t.event_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = t.event_id)",
    ),
    (
        "orphans:threat_rules",
        "SELECT count(*) FROM threat_rules r
         WHERE NOT EXISTS (SELECT 1 FROM threats t WHERE t.id = r.threat_id)",
    ),
    (
        "orphans:decisions.threat_id",
        "SELECT count(*) FROM decisions d WHERE d.threat_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM threats t WHERE t.id = d.threat_id)",
    ),
    (
        "orphans:refresh_tokens",
        "SELECT count(*) FROM refresh_tokens r
         WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = r.user_id)",
    ),
    (
        "orphans:job_logs",
        "SELECT count(*) FROM job_logs l WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = l.job_id)",
    ),
    (
        "orphans:job_outputs",
        "SELECT count(*) FROM job_outputs o WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = o.job_id)",
    ),
    (
        "orphans:job_attempts",
        "SELECT count(*) FROM job_attempts a WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = a.job_id)",
    ),
];

/// Checkpoints that cannot be resumed from: negative positions, no file identity, or
/// written in the future (first parameter: now plus a minute of clock skew).
pub(crate) fn bad_checkpoints_query(dialect: Dialect) -> String {
    let p = match dialect {
        Dialect::Sqlite => "?1",
        Dialect::Postgres => "$1",
    };
    format!(
        "SELECT count(*) FROM checkpoints
         WHERE byte_offset < 0 OR line_no < 0 OR file_id = '' OR updated_at > {p}"
    )
}

/// Running jobs without a worker, or with states the code does not know.
pub(crate) const BAD_JOBS_QUERY: &str = "SELECT count(*) FROM jobs
     WHERE (state = 'running' AND (lease_owner IS NULL OR lease_until IS NULL))
        OR state NOT IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')
        OR progress < 0 OR progress > 100";

/// Deletes at most a batch of rows of `kind` older than the first parameter (the
/// second is the batch size), using each table's time index.
pub(crate) fn delete_older_query(dialect: Dialect, kind: DataKind) -> String {
    let (before, limit) = match dialect {
        Dialect::Sqlite => ("?1", "?2"),
        Dialect::Postgres => ("$1", "$2"),
    };
    let finished = "('succeeded', 'failed', 'cancelled')";
    let (table, select) = match kind {
        DataKind::Events => (
            "events",
            format!("SELECT id FROM events WHERE ts < {before}"),
        ),
        DataKind::DeadLetters => (
            "dead_letters",
            format!("SELECT id FROM dead_letters WHERE received_at < {before}"),
        ),
        DataKind::Threats => (
            "threats",
            format!("SELECT id FROM threats WHERE ts < {before}"),
        ),
        DataKind::Audit => (
            "audit_log",
            format!("SELECT id FROM audit_log WHERE ts < {before}"),
        ),
        DataKind::Jobs => (
            "jobs",
            format!("SELECT id FROM jobs WHERE finished_at < {before} AND state IN {finished}"),
        ),
        DataKind::JobLogs => (
            "job_logs",
            format!(
                "SELECT l.id FROM job_logs l JOIN jobs j ON j.id = l.job_id
                 WHERE l.ts < {before} AND j.state IN {finished}"
            ),
        ),
        // Threat links and history go with their alert (ON DELETE CASCADE).
        DataKind::Alerts => (
            "alerts",
            format!(
                "SELECT id FROM alerts WHERE state IN ('resolved', 'dismissed')
                 AND state_at < {before}"
            ),
        ),
        DataKind::AlertDeliveries => (
            "alert_deliveries",
            format!(
                "SELECT id FROM alert_deliveries WHERE state <> 'pending' AND created_at < {before}"
            ),
        ),
        DataKind::Activities => (
            "activities",
            format!("SELECT id FROM activities WHERE at < {before}"),
        ),
    };
    format!("DELETE FROM {table} WHERE id IN ({select} LIMIT {limit})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_are_bounded() {
        for kind in DataKind::ALL {
            let q = delete_older_query(Dialect::Postgres, kind);
            assert!(q.contains("LIMIT $2"), "{q}");
            assert!(q.starts_with("DELETE FROM "), "{q}");
        }
        assert!(bad_checkpoints_query(Dialect::Sqlite).ends_with("?1"));
    }
}
