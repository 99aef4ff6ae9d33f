//! Guarding every password check (login and password change) against guessing, with
//! the schedules of `palisade_auth::lockout`:
//!
//! 1. One check at a time per (username, address) in this process ([`InFlight`]): a
//!    burst of parallel guesses cannot all pass the lock check before the first failure
//!    is counted.
//! 2. Locks are looked up for the submitted username from this address, and from all
//!    addresses together; the account-wide lock is skipped for an address the user has
//!    logged in from before. Unknown usernames are counted and locked exactly like
//!    existing ones, and the answer ([`locked`]) is the same, so a lock reveals nothing.
//! 3. The password is checked on the bounded hashing pool (503 when it is full).
//! 4. A failure is counted atomically in the store for both keys (the lock follows
//!    from the returned count); a success clears both and remembers the address.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::http::StatusCode;
use palisade_auth::hash_pool::PoolError;
use palisade_auth::lockout::{FORGET_AFTER_SECS, LockoutPolicy};
use palisade_core::Timestamp;
use palisade_core::security::{LoginFailures, User};

use crate::AppState;
use crate::problem::Problem;

/// The client key of the account-wide run (never an address).
pub const ALL_ADDRESSES: &str = "*";

/// How often quiet runs are deleted from the store.
const FORGET_EVERY_MICROS: i64 = 10 * 60 * 1_000_000;

/// Password checks in progress, by (username, address), and when quiet failure runs were
/// last deleted.
#[derive(Debug, Default)]
pub struct InFlight {
    keys: Mutex<HashSet<(String, String)>>,
    last_forget: AtomicI64,
}

/// A turn to check a password for one (username, address); given back when dropped.
struct Turn<'a> {
    set: &'a InFlight,
    key: (String, String),
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.set
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl InFlight {
    fn enter(&self, username: &str, client: &str) -> Option<Turn<'_>> {
        let key = (username.to_owned(), client.to_owned());
        let fresh = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone());
        // Only a fresh key makes a turn: a refused one must not remove the holder's key
        // when dropped.
        if fresh {
            Some(Turn { set: self, key })
        } else {
            None
        }
    }

    /// True (once per interval) when it is time to delete quiet runs.
    fn forget_due(&self, now: Timestamp) -> bool {
        let last = self.last_forget.load(Ordering::Acquire);
        now.as_micros().saturating_sub(last) >= FORGET_EVERY_MICROS
            && self
                .last_forget
                .compare_exchange(last, now.as_micros(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

/// The one answer to a locked (username, address), whether the username exists or not.
pub fn locked(secs: u64) -> Problem {
    let mut p = Problem::unavailable(
        format!("too many failed password attempts; try again in {secs} s"),
        secs,
    );
    p.status = StatusCode::TOO_MANY_REQUESTS.as_u16();
    p.title = "Too Many Requests".into();
    p
}

/// The answer when every password hasher is busy and the waiting line is full.
pub fn busy() -> Problem {
    Problem::unavailable("too many password checks in progress; retry in a moment", 1)
}

/// Seconds until `run`'s lock ends under `policy`, if one is in force at `now`.
fn lock_left(policy: &LockoutPolicy, run: Option<LoginFailures>, now: Timestamp) -> Option<u64> {
    let run = run?;
    let until = policy.lock_after_failure(run.failures, run.last_failure_at)?;
    let left = u64::try_from(until.as_micros().checked_sub(now.as_micros())?).ok()?;
    (left > 0).then(|| left.div_ceil(1_000_000).max(1))
}

fn horizon(now: Timestamp) -> Timestamp {
    now.add_micros(-FORGET_AFTER_SECS.saturating_mul(1_000_000))
}

/// Until when the account-wide lock of `username` refuses addresses the user never
/// logged in from, if it is in force (for showing to admins).
pub async fn account_locked_until(
    state: &AppState,
    username: &str,
) -> Result<Option<Timestamp>, Problem> {
    let now = Timestamp::now();
    let run = state
        .store
        .login_failures(username, ALL_ADDRESSES, horizon(now))
        .await?;
    Ok(run
        .and_then(|r| {
            state
                .auth
                .account_lockout
                .lock_after_failure(r.failures, r.last_failure_at)
        })
        .filter(|until| *until > now))
}

/// A password check that may go ahead: holds the turn for its (username, address)
/// until it is recorded as failed or succeeded (or dropped).
pub struct Attempt<'a> {
    state: &'a AppState,
    username: String,
    client: String,
    _turn: Turn<'a>,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("username", &self.username)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Admits a password check for `username` (as submitted; `user` when it exists) from
/// `client`, or refuses it: 429 while another check of the same pair runs, or while a
/// lock is in force (the same answer for unknown names).
pub async fn begin<'a>(
    state: &'a AppState,
    username: &str,
    user: Option<&User>,
    client: &str,
) -> Result<Attempt<'a>, Problem> {
    let Some(turn) = state.auth.attempts.enter(username, client) else {
        let mut p = locked(1);
        p.detail = "another password attempt for this account from your address is in progress; retry in a moment".into();
        return Err(p);
    };
    let now = Timestamp::now();
    if state.auth.attempts.forget_due(now)
        && let Err(error) = state.store.forget_login_failures(horizon(now)).await
    {
        tracing::warn!(message = "Cannot delete old failed-login records.", %error);
    }
    let store = &state.store;
    let here = store.login_failures(username, client, horizon(now)).await?;
    let everywhere = store
        .login_failures(username, ALL_ADDRESSES, horizon(now))
        .await?;
    let mut left = lock_left(&state.auth.lockout, here, now);
    if let Some(wide) = lock_left(&state.auth.account_lockout, everywhere, now) {
        // The same query for unknown names (id 0 never exists), so they cost the same.
        let known = store
            .is_known_login_address(user.map_or(0, |u| u.id), client)
            .await?;
        if !known {
            left = Some(left.map_or(wide, |l| l.max(wide)));
        }
    }
    if let Some(secs) = left {
        return Err(locked(secs));
    }
    Ok(Attempt {
        state,
        username: username.to_owned(),
        client: client.to_owned(),
        _turn: turn,
    })
}

impl Attempt<'_> {
    /// Checks `password` against the stored hash (`None`: no such user, a dummy check
    /// of the same cost) on the bounded hashing pool; 503 when it is full.
    pub async fn check(&self, password: String, phc: Option<String>) -> Result<bool, Problem> {
        match self.state.auth.hashing.verify(password, phc).await {
            Ok(ok) => Ok(ok),
            Err(PoolError::Busy) => Err(busy()),
            Err(e @ PoolError::Failed(_)) => Err(Problem::internal(&e)),
        }
    }

    /// Counts a wrong password (for this address and account-wide), atomically.
    pub async fn failed(self) -> Result<(), Problem> {
        let now = Timestamp::now();
        let store = &self.state.store;
        let here = store
            .record_login_failure(&self.username, &self.client, now, horizon(now))
            .await?;
        let everywhere = store
            .record_login_failure(&self.username, ALL_ADDRESSES, now, horizon(now))
            .await?;
        if let Some(secs) = lock_left(&self.state.auth.lockout, Some(here), now) {
            tracing::warn!(
                message = "Password attempts locked for an address.",
                username = %self.username,
                client = %self.client,
                failures = here.failures,
                lock_secs = secs
            );
        }
        if let Some(secs) = lock_left(&self.state.auth.account_lockout, Some(everywhere), now) {
            tracing::warn!(
                message = "Password attempts locked account-wide for unknown addresses.",
                username = %self.username,
                failures = everywhere.failures,
                lock_secs = secs
            );
        }
        Ok(())
    }

    /// A right password: clears the runs of this address and the account-wide one, and
    /// remembers the address as one `user_id` logs in from.
    pub async fn succeeded(self, user_id: i64) -> Result<(), Problem> {
        let store = &self.state.store;
        store
            .clear_login_failures(&self.username, Some(&self.client))
            .await?;
        store
            .clear_login_failures(&self.username, Some(ALL_ADDRESSES))
            .await?;
        store
            .remember_login_address(user_id, &self.client, Timestamp::now())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_left_rounds_up_and_ends() {
        let p = LockoutPolicy::per_address();
        let t = Timestamp::from_secs(1_000);
        let run = |n| {
            Some(LoginFailures {
                failures: n,
                last_failure_at: t,
            })
        };
        assert_eq!(lock_left(&p, None, t), None);
        assert_eq!(lock_left(&p, run(5), t), None);
        assert_eq!(lock_left(&p, run(6), t), Some(60));
        assert_eq!(lock_left(&p, run(6), t.add_micros(500_000)), Some(60));
        assert_eq!(lock_left(&p, run(6), t.add_micros(59_500_000)), Some(1));
        assert_eq!(lock_left(&p, run(6), t.add_micros(60_000_000)), None);
    }

    #[test]
    fn one_turn_per_pair() {
        let f = InFlight::default();
        let a = f.enter("admin", "192.0.2.1").expect("first");
        assert!(f.enter("admin", "192.0.2.1").is_none());
        assert!(
            f.enter("admin", "192.0.2.1").is_none(),
            "a refusal does not end the holder's turn"
        );
        assert!(f.enter("admin", "192.0.2.2").is_some());
        assert!(f.enter("root", "192.0.2.1").is_some());
        drop(a);
        assert!(f.enter("admin", "192.0.2.1").is_some());
        let now = Timestamp::from_secs(10_000);
        assert!(f.forget_due(now));
        assert!(!f.forget_due(now.add_micros(1)));
        assert!(f.forget_due(now.add_micros(FORGET_EVERY_MICROS)));
    }
}
