//! Token-bucket rate limiting keyed by (class, client), with bounded memory so that a flood of
//! distinct clients cannot grow the table without limit.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// Position in the recency order (key of `State::order`).
    tick: u64,
}

#[derive(Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    /// Recency order: tick -> key; the smallest tick is the least recently used.
    order: BTreeMap<u64, String>,
    next_tick: u64,
}

/// Token buckets per (class, client) key: `capacity` burst, refilled at `per_sec`. Bounded
/// memory: at most `max_keys` buckets (evict the least recently used when full). Thread-safe
/// (Mutex inside; the critical section is a hash lookup and an ordered-map update).
/// `check` returns Ok(()) or Err(retry_after_secs >= 1).
///
/// An evicted client starts again with a full bucket; that is the price of the bound, and is
/// why `max_keys` should comfortably exceed the number of active clients.
pub struct RateLimiter {
    capacity: f64,
    per_sec: f64,
    max_keys: usize,
    state: Mutex<State>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("capacity", &self.capacity)
            .field("per_sec", &self.per_sec)
            .field("max_keys", &self.max_keys)
            .field("len", &self.len())
            .finish()
    }
}

/// Longest retry-after reported, for a limiter that never refills (`per_sec` = 0).
const MAX_RETRY_SECS: u64 = 24 * 3600;

impl RateLimiter {
    /// A limiter allowing bursts of `capacity` requests per key, refilled at `per_sec` tokens
    /// per second, tracking at most `max_keys` keys (at least 1). A non-finite or negative
    /// `per_sec` counts as 0 (no refill).
    pub fn new(capacity: u32, per_sec: f64, max_keys: usize) -> Self {
        let per_sec = if per_sec.is_finite() && per_sec > 0.0 {
            per_sec
        } else {
            0.0
        };
        RateLimiter {
            capacity: f64::from(capacity),
            per_sec,
            max_keys: max_keys.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Takes one token for `key`: Ok(()) when allowed, else Err(seconds until a token is
    /// available, at least 1) for a `Retry-After` header.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        // A panic elsewhere while holding the lock cannot leave the map inconsistent in a way
        // that matters for rate limiting, so a poisoned lock is simply taken over.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *guard;
        let tick = state.next_tick;
        state.next_tick = state.next_tick.wrapping_add(1);

        let bucket = match state.buckets.get_mut(key) {
            Some(b) => {
                let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
                b.tokens = (b.tokens + elapsed * self.per_sec).min(self.capacity);
                b.updated = now;
                state.order.remove(&b.tick);
                b.tick = tick;
                state.order.insert(tick, key.to_string());
                b
            }
            None => {
                while state.buckets.len() >= self.max_keys {
                    let Some((_, oldest)) = state.order.pop_first() else {
                        break;
                    };
                    state.buckets.remove(&oldest);
                }
                state.order.insert(tick, key.to_string());
                state.buckets.entry(key.to_string()).or_insert(Bucket {
                    tokens: self.capacity,
                    updated: now,
                    tick,
                })
            }
        };
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - bucket.tokens;
        drop(guard);
        if self.per_sec <= 0.0 {
            return Err(MAX_RETRY_SECS);
        }
        let secs = (missing / self.per_sec).ceil();
        // `as` saturates for floats; clamp keeps the documented range.
        Err((secs as u64).clamp(1, MAX_RETRY_SECS))
    }

    /// Whether `check(key)` would allow a request now, without taking a token or
    /// tracking the key: Err(seconds until a token is available) when it would not.
    /// For refusing cheaply before doing work that is only charged when it fails.
    pub fn peek(&self, key: &str) -> Result<(), u64> {
        self.peek_at(key, Instant::now())
    }

    fn peek_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(b) = guard.buckets.get(key) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        let tokens = (b.tokens + elapsed * self.per_sec).min(self.capacity);
        drop(guard);
        if tokens >= 1.0 {
            return Ok(());
        }
        if self.per_sec <= 0.0 {
            return Err(MAX_RETRY_SECS);
        }
        let secs = ((1.0 - tokens) / self.per_sec).ceil();
        Err((secs as u64).clamp(1, MAX_RETRY_SECS))
    }

    /// Number of keys currently tracked (never more than `max_keys`), for metrics.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .buckets
            .len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refused_with_retry_after() {
        let rl = RateLimiter::new(5, 0.5, 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(rl.check_at("login:1.2.3.4", t0), Ok(()));
        }
        assert_eq!(rl.check_at("login:1.2.3.4", t0), Err(2));
        // Other keys are independent.
        assert_eq!(rl.check_at("login:5.6.7.8", t0), Ok(()));
        assert_eq!(rl.len(), 2);
        // Fast refill still reports at least one second.
        let fast = RateLimiter::new(1, 1000.0, 10);
        assert_eq!(fast.check_at("k", t0), Ok(()));
        assert_eq!(fast.check_at("k", t0), Err(1));
    }

    #[test]
    fn peek_takes_nothing() {
        let rl = RateLimiter::new(2, 1.0, 10);
        let t0 = Instant::now();
        assert_eq!(rl.peek_at("k", t0), Ok(()));
        assert!(rl.is_empty(), "peeking does not track the key");
        assert!(rl.check_at("k", t0).is_ok());
        for _ in 0..5 {
            assert_eq!(rl.peek_at("k", t0), Ok(()));
        }
        assert!(rl.check_at("k", t0).is_ok());
        assert_eq!(rl.peek_at("k", t0), Err(1));
        assert_eq!(rl.check_at("k", t0), Err(1));
        assert_eq!(rl.peek_at("k", t0 + Duration::from_millis(1100)), Ok(()));
    }

    #[test]
    fn refill_over_time() {
        let rl = RateLimiter::new(2, 1.0, 10);
        let t0 = Instant::now();
        assert!(rl.check_at("k", t0).is_ok());
        assert!(rl.check_at("k", t0).is_ok());
        assert_eq!(rl.check_at("k", t0), Err(1));
        let t1 = t0 + Duration::from_millis(1100);
        assert!(rl.check_at("k", t1).is_ok());
        assert!(rl.check_at("k", t1).is_err());
        // Refill is capped at capacity.
        let t2 = t1 + Duration::from_secs(3600);
        assert!(rl.check_at("k", t2).is_ok());
        assert!(rl.check_at("k", t2).is_ok());
        assert!(rl.check_at("k", t2).is_err());
        // A clock that appears to go backwards does not add tokens.
        assert!(rl.check_at("k", t0).is_err());
    }

    #[test]
    fn no_refill_and_zero_capacity() {
        let t0 = Instant::now();
        let rl = RateLimiter::new(1, 0.0, 10);
        assert!(rl.check_at("k", t0).is_ok());
        assert_eq!(
            rl.check_at("k", t0 + Duration::from_secs(100)),
            Err(MAX_RETRY_SECS)
        );
        let nan = RateLimiter::new(0, f64::NAN, 0);
        assert!(nan.check_at("k", t0).is_err());
        assert_eq!(nan.len(), 1);
    }

    #[test]
    fn eviction_bound_holds() {
        let rl = RateLimiter::new(1, 0.001, 3);
        let t0 = Instant::now();
        assert!(rl.is_empty());
        for k in ["a", "b", "c"] {
            assert!(rl.check_at(k, t0).is_ok());
        }
        // "a" is used again, so "b" is now the least recently used.
        assert!(rl.check_at("a", t0).is_err());
        assert!(rl.check_at("d", t0).is_ok());
        assert_eq!(rl.len(), 3);
        // "a" and "c" kept their (empty) buckets; "b" was evicted and starts full again.
        assert!(rl.check_at("a", t0).is_err());
        assert!(rl.check_at("c", t0).is_err());
        assert!(rl.check_at("b", t0).is_ok());
        for i in 0..1000 {
            let _ = rl.check_at(&format!("flood-{i}"), t0);
            assert!(rl.len() <= 3);
        }
        let state = rl.state.lock().unwrap();
        assert_eq!(state.order.len(), state.buckets.len());
    }

    #[test]
    fn thread_safe() {
        let rl = Arc::new(RateLimiter::new(100, 0.0, 1000));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let rl = Arc::clone(&rl);
                std::thread::spawn(move || (0..50).filter(|_| rl.check("shared").is_ok()).count())
            })
            .collect();
        let allowed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(allowed, 100);
    }
}
