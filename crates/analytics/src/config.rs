//! `[analytics]`: how often the real-time figures are sampled, how the roll-ups are
//! kept, and when the posture checks run.

use palisade_core::config::{ConfigProblem, Validate, check_range};
use palisade_core::duration::Span;
use serde::Deserialize;

/// `[analytics]` (every key optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// How often the real-time figures are sampled from the metrics and published on
    /// the live feed (`metrics` topic).
    pub sample_every: Span,
    /// The window rates and latency quantiles are computed over.
    pub realtime_window: Span,
    /// How often the roll-up worker looks for new rows (it catches up at once when it
    /// is behind).
    pub rollup_every: Span,
    /// Most ids one roll-up transaction covers (short transactions keep ingest moving).
    pub rollup_batch: u64,
    /// How long per-minute roll-ups are kept.
    pub minute_retention: Span,
    /// How long per-hour roll-ups and hourly top keys are kept.
    pub hour_retention: Span,
    /// Client addresses and paths kept per hour for top lists.
    pub top_per_hour: u32,
    /// How often every posture check runs by itself (`0` never; runs on demand stay).
    pub posture_every: PostureSchedule,
    /// How long posture runs are kept (the latest result of each check always stays).
    pub posture_history: Span,
    /// A password or API key unused for longer is a finding.
    pub stale_credentials_after: Span,
    /// A TLS-terminating proxy (nginx, a load balancer) fronts every listener on a
    /// public address: the public-listener check then passes for them.
    pub tls_in_front: bool,
}

/// A posture schedule: a period, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostureSchedule(pub Option<Span>);

impl<'de> Deserialize<'de> for PostureSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Off(u8),
            Every(Span),
        }
        match Raw::deserialize(d)? {
            Raw::Off(0) => Ok(PostureSchedule(None)),
            Raw::Off(n) => Ok(PostureSchedule(Some(Span::from_secs(u64::from(n))))),
            Raw::Every(s) => Ok(PostureSchedule(Some(s))),
        }
    }
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            sample_every: Span::from_secs(5),
            realtime_window: Span::from_secs(60),
            rollup_every: Span::from_secs(10),
            rollup_batch: 100_000,
            minute_retention: Span::from_secs(7 * 86_400),
            hour_retention: Span::from_secs(400 * 86_400),
            top_per_hour: 100,
            posture_every: PostureSchedule(Some(Span::from_secs(3600))),
            posture_history: Span::from_secs(90 * 86_400),
            stale_credentials_after: Span::from_secs(90 * 86_400),
            tls_in_front: false,
        }
    }
}

impl Validate for AnalyticsConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut span = |key: &str, value: Span, min: Span, max: Span, text: &str| {
            if !value.within(min, max) {
                problems.push(ConfigProblem::new(key, format!("must be between {text}")));
            }
        };
        let day = 86_400;
        span(
            "sample_every",
            self.sample_every,
            Span::from_secs(1),
            Span::from_secs(60),
            "1s and 60s",
        );
        span(
            "realtime_window",
            self.realtime_window,
            Span::from_secs(5),
            Span::from_secs(3600),
            "5s and 1h",
        );
        span(
            "rollup_every",
            self.rollup_every,
            Span::from_secs(1),
            Span::from_secs(3600),
            "1s and 1h",
        );
        span(
            "minute_retention",
            self.minute_retention,
            Span::from_secs(3600),
            Span::from_secs(90 * day),
            "1h and 90d",
        );
        span(
            "hour_retention",
            self.hour_retention,
            Span::from_secs(day),
            Span::from_secs(3660 * day),
            "1d and 10 years",
        );
        span(
            "posture_history",
            self.posture_history,
            Span::from_secs(day),
            Span::from_secs(3660 * day),
            "1d and 10 years",
        );
        span(
            "stale_credentials_after",
            self.stale_credentials_after,
            Span::from_secs(day),
            Span::from_secs(3660 * day),
            "1d and 10 years",
        );
        if let PostureSchedule(Some(every)) = self.posture_every {
            span(
                "posture_every",
                every,
                Span::from_secs(60),
                Span::from_secs(30 * day),
                "1m and 30d (or 0 for never)",
            );
        }
        if self.realtime_window < self.sample_every {
            problems.push(ConfigProblem::new(
                "realtime_window",
                "must be at least sample_every",
            ));
        }
        if self.hour_retention < self.minute_retention {
            problems.push(ConfigProblem::new(
                "hour_retention",
                "must be at least minute_retention",
            ));
        }
        check_range(
            &mut problems,
            "rollup_batch",
            self.rollup_batch,
            1_000..=10_000_000,
        );
        check_range(
            &mut problems,
            "top_per_hour",
            self.top_per_hour,
            10..=10_000,
        );
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AnalyticsConfig, String> {
        let mut c: AnalyticsConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let problems = c.finish();
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "))
        }
    }

    #[test]
    fn defaults_and_durations() {
        let c = parse("").unwrap();
        assert_eq!(c, AnalyticsConfig::default());
        let c =
            parse("sample_every = \"2s\"\nposture_every = 0\nminute_retention = \"2d\"\n").unwrap();
        assert_eq!(c.sample_every, Span::from_secs(2));
        assert_eq!(c.posture_every, PostureSchedule(None));
        assert_eq!(c.minute_retention.as_secs(), 2 * 86_400);
        let c = parse("posture_every = \"6h\"\n").unwrap();
        assert_eq!(
            c.posture_every,
            PostureSchedule(Some(Span::from_secs(6 * 3600)))
        );
    }

    #[test]
    fn every_problem_names_its_key() {
        let err = parse(
            "sample_every = \"10m\"\ntop_per_hour = 1\nminute_retention = \"30d\"\nhour_retention = \"2d\"\n",
        )
        .unwrap_err();
        for key in ["sample_every", "top_per_hour", "hour_retention"] {
            assert!(err.contains(key), "{key}: {err}");
        }
        assert!(parse("sample = 1\n").unwrap_err().contains("sample"));
    }
}
