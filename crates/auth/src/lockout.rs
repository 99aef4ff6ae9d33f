//! Login throttling: a few free attempts for typos, then exponentially longer locks, capped so
//! that an attacker can only lock an account out for a bounded time.
//!
//! Two schedules apply to every password check (login and password change), both
//! counted per submitted username whether or not it exists, so that a lock answers the
//! same for every name:
//!
//! - [`LockoutPolicy::per_address`] counts failures for one username from one client
//!   address. It is what stops a single guesser, and it locks that address only: anyone
//!   else, the real user included, keeps logging in.
//! - [`LockoutPolicy::account_wide`] counts failures for one username from every address
//!   together, with a higher threshold. It stops guessing spread over many addresses;
//!   an address the user has logged in from successfully before is not subject to it,
//!   so the real user keeps a way in (`palisade user unlock NAME` lifts every lock).
//!
//! Failures are forgotten after [`FORGET_AFTER_SECS`] without one, and at a success.

use palisade_core::time::Timestamp;

/// A run of failures whose last failure is older than this starts over (one day).
pub const FORGET_AFTER_SECS: i64 = 24 * 3600;

/// Login throttling policy: after `free_attempts` (5) consecutive failures, each further
/// failure locks the account for min(2^(n-free) * base, max) (base 30 s, max 15 min). Pure
/// functions on counts and times, so the store keeps the state and this decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures allowed before any lock.
    pub free_attempts: u32,
    /// Base lock length in seconds.
    pub base_secs: i64,
    /// Longest lock in seconds.
    pub max_secs: i64,
}

impl Default for LockoutPolicy {
    /// 5 free attempts, 30 s base, 15 min cap.
    fn default() -> Self {
        LockoutPolicy {
            free_attempts: 5,
            base_secs: 30,
            max_secs: 15 * 60,
        }
    }
}

impl LockoutPolicy {
    /// Failures of one username from one address: the defaults (5 free, 30 s base,
    /// 15 min cap).
    pub fn per_address() -> Self {
        LockoutPolicy::default()
    }

    /// Failures of one username from all addresses together: 20 free, then the same
    /// schedule. Four or more addresses must be used up before this applies, and it never
    /// applies to an address the user logged in from before.
    pub fn account_wide() -> Self {
        LockoutPolicy {
            free_attempts: 20,
            ..LockoutPolicy::default()
        }
    }

    /// Given the consecutive failure count including the failure just recorded, the time until
    /// which logins are refused, or None while failures are still free. With the defaults:
    /// failures 1–5 → None, 6th → 60 s, 7th → 120 s, 8th → 240 s, 9th → 480 s, 10th+ → 900 s.
    pub fn lock_after_failure(
        &self,
        failed_logins_after: u32,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let excess = failed_logins_after.checked_sub(self.free_attempts)?;
        if excess == 0 {
            return None;
        }
        let max = self.max_secs.max(0);
        let secs = 1i64
            .checked_shl(excess)
            .filter(|_| excess < 63)
            .and_then(|factor| factor.checked_mul(self.base_secs.max(0)))
            .map_or(max, |s| s.min(max));
        Some(now.add_micros(secs.saturating_mul(1_000_000)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_wide_allows_more_before_the_same_schedule() {
        let now = Timestamp::from_secs(1_700_000_000);
        let wide = LockoutPolicy::account_wide();
        assert_eq!(wide.lock_after_failure(20, now), None);
        assert_eq!(
            wide.lock_after_failure(21, now),
            Some(Timestamp::from_secs(1_700_000_060))
        );
        assert_eq!(LockoutPolicy::per_address(), LockoutPolicy::default());
    }

    #[test]
    fn schedule() {
        let p = LockoutPolicy::default();
        let now = Timestamp::from_secs(1_700_000_000);
        let lock = |n| {
            p.lock_after_failure(n, now)
                .map(|t| (t.as_micros() - now.as_micros()) / 1_000_000)
        };
        for n in 0..=5 {
            assert_eq!(lock(n), None, "failure {n}");
        }
        assert_eq!(lock(6), Some(60));
        assert_eq!(lock(7), Some(120));
        assert_eq!(lock(8), Some(240));
        assert_eq!(lock(9), Some(480));
        assert_eq!(lock(10), Some(900));
        assert_eq!(lock(11), Some(900));
        assert_eq!(lock(70), Some(900));
        assert_eq!(lock(u32::MAX), Some(900));
    }

    #[test]
    fn custom_policies() {
        let now = Timestamp::from_secs(1000);
        let strict = LockoutPolicy {
            free_attempts: 0,
            base_secs: 1,
            max_secs: 10,
        };
        assert_eq!(strict.lock_after_failure(0, now), None);
        assert_eq!(
            strict.lock_after_failure(1, now),
            Some(Timestamp::from_secs(1002))
        );
        assert_eq!(
            strict.lock_after_failure(4, now),
            Some(Timestamp::from_secs(1010))
        );
        let silly = LockoutPolicy {
            free_attempts: 1,
            base_secs: i64::MAX,
            max_secs: i64::MAX,
        };
        assert!(silly.lock_after_failure(3, now).is_some());
        let negative = LockoutPolicy {
            free_attempts: 1,
            base_secs: -5,
            max_secs: -5,
        };
        assert_eq!(negative.lock_after_failure(3, now), Some(now));
    }
}
