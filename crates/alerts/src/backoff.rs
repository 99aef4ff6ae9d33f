//! When to try a failed notification again: exponential backoff with jitter from
//! `retry_base_delay` doubling up to `retry_max_delay`, a receiver's `Retry-After`
//! honoured (capped by the same maximum), and nothing after `delivery_max_age` (about
//! three days by default, Standard Webhooks' schedule) — then the notification is
//! given up and the delivery log says so.

use std::time::{Duration, SystemTime};

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// First delay (µs).
    pub base_us: i64,
    /// Longest delay (µs).
    pub max_us: i64,
    /// Give up after this long since queueing (µs).
    pub max_age_us: i64,
}

impl Schedule {
    /// The delay after attempt `attempts` (1 = the first failed attempt), before
    /// jitter: `base · 2^(attempts-1)`, capped.
    pub fn delay_us(&self, attempts: u32) -> i64 {
        let shift = attempts.saturating_sub(1).min(40);
        self.base_us
            .saturating_mul(1i64 << shift)
            .min(self.max_us)
            .max(0)
    }

    /// The next attempt's time, or `None` when it would be past the maximum age.
    /// `jitter` in `[0, 1)` spreads retries over the upper half of the delay ("equal
    /// jitter"), so receivers coming back are not hit by every sender at once.
    pub fn next(
        &self,
        now_us: i64,
        created_us: i64,
        attempts: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<i64> {
        let delay = match retry_after {
            Some(wait) => i64::try_from(wait.as_micros())
                .unwrap_or(i64::MAX)
                .min(self.max_us),
            None => {
                let d = self.delay_us(attempts);
                let half = d / 2;
                half + (half as f64 * jitter.clamp(0.0, 1.0)) as i64
            }
        };
        let at = now_us.saturating_add(delay.max(0));
        (at <= created_us.saturating_add(self.max_age_us)).then_some(at)
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A number in `[0, 1)` from the operating system's generator (a failure gives the
/// middle: jitter is a courtesy, not a safeguard).
pub fn jitter() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::getrandom(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn schedule() -> Schedule {
        Schedule {
            base_us: 5 * S,
            max_us: 6 * 3600 * S,
            max_age_us: 3 * 86_400 * S,
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_and_stop_at_the_age() {
        let s = schedule();
        assert_eq!(s.delay_us(1), 5 * S);
        assert_eq!(s.delay_us(2), 10 * S);
        assert_eq!(s.delay_us(5), 80 * S);
        assert_eq!(s.delay_us(30), 6 * 3600 * S);
        assert_eq!(s.delay_us(u32::MAX), 6 * 3600 * S);
        // Jitter keeps the delay in its upper half.
        assert_eq!(s.next(0, 0, 2, None, 0.0), Some(5 * S));
        let n = s.next(0, 0, 2, None, 0.999_999).unwrap_or_default();
        assert!(n > 9 * S && n < 10 * S, "{n}");
        // Over three days the schedule makes about twenty attempts, then gives up.
        let (mut now, mut attempts) = (0, 0u32);
        while let Some(next) = s.next(now, 0, attempts + 1, None, 1.0) {
            now = next;
            attempts += 1;
        }
        assert!((15..=25).contains(&attempts), "{attempts}");
        assert!(now > 2 * 86_400 * S, "{now}");
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let s = schedule();
        assert_eq!(
            s.next(0, 0, 1, Some(Duration::from_secs(120)), 0.0),
            Some(120 * S)
        );
        assert_eq!(
            s.next(0, 0, 1, Some(Duration::from_secs(86_400)), 0.0),
            Some(6 * 3600 * S)
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after(" 30 ", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(0))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }
}
