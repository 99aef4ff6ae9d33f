//! `[alerts]`: notification grouping defaults (Alertmanager's spirit), how long and how
//! hard deliveries are retried, and the circuit breaker per channel.

use palisade_core::config::{ConfigProblem, Validate, check_range};
use palisade_core::duration::Span;
use serde::Deserialize;

/// `[alerts]` (every key optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Whether stored threats are turned into alerts at all.
    pub enabled: bool,
    /// Batches of stored threats that may wait for the rule stage (the recorder waits
    /// when it is full: threats are never skipped).
    pub queue: usize,
    /// Wait before an alert's first notification, so a burst's first seconds arrive as
    /// one message (a rule may set its own).
    pub group_wait: Span,
    /// Least time between two notifications of an alert that keeps growing.
    pub group_interval: Span,
    /// An active alert nobody acknowledged is notified again this often.
    pub repeat_interval: Span,
    /// How long a notification is retried before it is given up (Standard Webhooks'
    /// schedule spans about three days).
    pub delivery_max_age: Span,
    /// First retry delay; it doubles per attempt (with jitter) up to `retry_max_delay`.
    pub retry_base_delay: Span,
    /// Longest wait between two attempts.
    pub retry_max_delay: Span,
    /// One delivery attempt's time limit.
    pub delivery_timeout: Span,
    /// How long a claimed notification is held by the process sending it: if that
    /// process dies mid-send (`kill -9`, power loss), the notification is sent again
    /// this long after the claim. Longer than `delivery_timeout` (a live attempt is
    /// never taken over), short enough that a restart does not wait long.
    pub claim_lease: Span,
    /// How often the queue and due notifications are looked at.
    pub poll_every: Span,
    /// Consecutive failures of a channel that open its circuit.
    pub breaker_failures: u32,
    /// How long an open circuit rests before one trial delivery.
    pub breaker_cooldown: Span,
    /// Create the built-in rules at the first start (once: deleting them sticks).
    pub builtin_rules: bool,
    /// How often new decisions are gathered into one activity, and how often queued
    /// activities go out on the live feed (together).
    pub activity_every: Span,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            queue: 64,
            group_wait: Span::from_secs(30),
            group_interval: Span::from_secs(5 * 60),
            repeat_interval: Span::from_secs(4 * 3600),
            delivery_max_age: Span::from_secs(3 * 86_400),
            retry_base_delay: Span::from_secs(5),
            retry_max_delay: Span::from_secs(6 * 3600),
            delivery_timeout: Span::from_secs(10),
            claim_lease: Span::from_secs(50),
            poll_every: Span::from_secs(1),
            breaker_failures: 5,
            breaker_cooldown: Span::from_secs(60),
            builtin_rules: true,
            activity_every: Span::from_secs(2),
        }
    }
}

impl Validate for AlertsConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut span = |key: &str, value: Span, min: Span, max: Span, text: &str| {
            if !value.within(min, max) {
                problems.push(ConfigProblem::new(key, format!("must be between {text}")));
            }
        };
        let (s, day) = (Span::from_secs, 86_400);
        span("group_wait", self.group_wait, s(0), s(3600), "0s and 1h");
        span(
            "group_interval",
            self.group_interval,
            s(1),
            s(day),
            "1s and 1d",
        );
        span(
            "repeat_interval",
            self.repeat_interval,
            s(60),
            s(30 * day),
            "1m and 30d",
        );
        span(
            "delivery_max_age",
            self.delivery_max_age,
            s(60),
            s(30 * day),
            "1m and 30d",
        );
        span(
            "retry_base_delay",
            self.retry_base_delay,
            Span::from_millis(10),
            s(3600),
            "10ms and 1h",
        );
        span(
            "retry_max_delay",
            self.retry_max_delay,
            s(1),
            s(day),
            "1s and 1d",
        );
        span(
            "delivery_timeout",
            self.delivery_timeout,
            s(1),
            s(300),
            "1s and 5m",
        );
        span(
            "poll_every",
            self.poll_every,
            Span::from_millis(10),
            s(60),
            "10ms and 60s",
        );
        span(
            "activity_every",
            self.activity_every,
            Span::from_millis(10),
            s(3600),
            "10ms and 1h",
        );
        span(
            "breaker_cooldown",
            self.breaker_cooldown,
            s(1),
            s(day),
            "1s and 1d",
        );
        span("claim_lease", self.claim_lease, s(2), s(3600), "2s and 1h");
        if self.claim_lease.as_micros() < self.delivery_timeout.as_micros() + 1_000_000 {
            problems.push(ConfigProblem::new(
                "claim_lease",
                "must exceed delivery_timeout by at least 1s (a live attempt is never taken over)",
            ));
        }
        check_range(&mut problems, "queue", self.queue, 1..=100_000);
        check_range(
            &mut problems,
            "breaker_failures",
            self.breaker_failures,
            1..=1000,
        );
        if self.retry_base_delay.as_micros() > self.retry_max_delay.as_micros() {
            problems.push(ConfigProblem::new(
                "retry_base_delay",
                "must not exceed retry_max_delay",
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(AlertsConfig::default().finish().is_empty());
        let mut c: AlertsConfig =
            toml::from_str("group_wait = \"2h\"\nqueue = 0\nretry_base_delay = \"2d\"").unwrap();
        let keys: Vec<String> = c.finish().into_iter().map(|p| p.key).collect();
        assert!(keys.contains(&"group_wait".to_owned()));
        assert!(keys.contains(&"queue".to_owned()));
        assert!(keys.contains(&"retry_base_delay".to_owned()));
        let mut c: AlertsConfig =
            toml::from_str("delivery_timeout = \"10s\"\nclaim_lease = \"5s\"").unwrap();
        let keys: Vec<String> = c.finish().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["claim_lease"]);
        assert!(toml::from_str::<AlertsConfig>("nope = 1").is_err());
    }
}
