//! Login failure runs and known addresses to and from column values, shared by both
//! backends so that both count and answer alike.

use palisade_core::Timestamp;
use palisade_core::security::LoginFailures;

use crate::StoreError;

/// Counts one failure of `(username, client)` (`?1`, `?2`) at `?3`; a run last seen
/// before `?4` starts over. In both dialects the `SET` expressions see the row as it was
/// before the statement, and the statement is atomic, so concurrent failures all count.
pub(crate) const RECORD_FAILURE_SQLITE: &str =
    "INSERT INTO login_failures (username, client, failures, last_failure_at)
     VALUES (?1, ?2, 1, ?3)
     ON CONFLICT (username, client) DO UPDATE SET
         failures = CASE WHEN login_failures.last_failure_at < ?4 THEN 1
                         ELSE login_failures.failures + 1 END,
         last_failure_at = max(login_failures.last_failure_at, excluded.last_failure_at)
     RETURNING failures, last_failure_at";

/// [`RECORD_FAILURE_SQLITE`] for PostgreSQL.
pub(crate) const RECORD_FAILURE_POSTGRES: &str =
    "INSERT INTO login_failures (username, client, failures, last_failure_at)
     VALUES ($1, $2, 1, $3)
     ON CONFLICT (username, client) DO UPDATE SET
         failures = CASE WHEN login_failures.last_failure_at < $4 THEN 1
                         ELSE login_failures.failures + 1 END,
         last_failure_at = GREATEST(login_failures.last_failure_at, excluded.last_failure_at)
     RETURNING failures, last_failure_at";

/// Keeps the `?2` most recently used addresses of user `?1` (both dialects accept `?N`
/// here after [`postgres_placeholders`]).
pub(crate) const PRUNE_ADDRESSES: &str = "DELETE FROM login_addresses
     WHERE user_id = ?1 AND client NOT IN (
         SELECT client FROM login_addresses WHERE user_id = ?1
         ORDER BY last_success_at DESC, client LIMIT ?2)";

/// `?N` placeholders as PostgreSQL's `$N`.
pub(crate) fn postgres_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

/// A stored run back as the domain value; a negative count is corruption, a count
/// beyond `u32::MAX` is clamped.
pub(crate) fn failures_from_columns(
    failures: i64,
    last_failure_at: i64,
) -> Result<LoginFailures, StoreError> {
    if failures < 0 {
        return Err(StoreError::Corrupt(format!(
            "negative login failure count {failures}"
        )));
    }
    Ok(LoginFailures {
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        last_failure_at: Timestamp(last_failure_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_checked_and_clamped() {
        assert!(matches!(
            failures_from_columns(-1, 0),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(
            failures_from_columns(i64::MAX, 5).unwrap(),
            LoginFailures {
                failures: u32::MAX,
                last_failure_at: Timestamp(5)
            }
        );
        assert_eq!(
            postgres_placeholders(PRUNE_ADDRESSES).matches("$1").count(),
            2
        );
    }
}
