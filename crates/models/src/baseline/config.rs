//! `[baselines]`: per-endpoint anomaly baselines, and how much their deviations weigh in
//! each detection mode (the fusion policy, see [`crate::baseline`]).

use palisade_core::config::{ConfigProblem, Validate};
use palisade_core::duration::Span;
use serde::Deserialize;

/// `[baselines]` (every key optional).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselinesConfig {
    /// Learn and judge per-endpoint baselines at all.
    pub enabled: bool,
    /// Requests an endpoint (and values a parameter) must have been learnt from before
    /// it is judged: the warm-up.
    pub warmup: u64,
    /// Endpoints kept (host + method + route template); beyond, the least recently seen
    /// endpoint still in warm-up (else the least recently seen one) is forgotten.
    pub max_endpoints: usize,
    /// Parameter names kept per endpoint; an endpoint with more is "open" and unknown
    /// names there are not judged.
    pub max_parameters: usize,
    /// How often changed baselines are saved to the database (they are loaded at start).
    pub snapshot_every: Span,
    /// Points the baseline part may add to the score in block mode. 0 (the default):
    /// baselines never block; their deviations are still recorded (see `report_points`).
    pub points_block: u32,
    /// Points the baseline part may add in detect-only mode and for log lines.
    pub points_detect: u32,
    /// Deviation points from which a request is recorded as an anomaly threat (decision
    /// `detect`) even when the rules found nothing and the points do not count toward the
    /// verdict. 4 by default: one deviation of a kind the endpoint's own traffic never
    /// showed (2 points + 2 for never seen), or two ordinary ones.
    pub report_points: u32,
    /// Deviation points from which a request is not learnt (what looks like an attack
    /// does not teach the baseline). Under it a request is learnt even when reported, so
    /// that an endpoint whose application changed recalibrates: the kind of deviation
    /// is then no longer "never seen" there.
    pub learn_below: u32,
    /// Once an endpoint has learnt twice its warm-up (past the warm-up and the
    /// calibration that follows it), a request with no deviation is learnt with
    /// probability 1 in `learn_every`, and then counts for `learn_every` requests (the
    /// counts stay in requests, see [`crate::baseline`], "Sampling"); a request that
    /// deviates is always learnt. 1 (the default): learn every request; 8 cut the
    /// baselines' detection of CSIC 2010 slightly (docs/BENCHMARKS.md), so sampling is
    /// for sites that would rather pay less per request.
    pub learn_every: u64,
}

impl Default for BaselinesConfig {
    fn default() -> Self {
        BaselinesConfig {
            enabled: true,
            warmup: 200,
            max_endpoints: 1000,
            max_parameters: 32,
            snapshot_every: Span::from_secs(60),
            points_block: 0,
            points_detect: 5,
            report_points: 4,
            learn_below: 5,
            learn_every: 1,
        }
    }
}

impl Validate for BaselinesConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if !(10..=1_000_000).contains(&self.warmup) {
            problems.push(ConfigProblem::new(
                "warmup",
                format!("{} must be between 10 and 1000000", self.warmup),
            ));
        }
        if !(1..=100_000).contains(&self.max_endpoints) {
            problems.push(ConfigProblem::new(
                "max_endpoints",
                format!("{} must be between 1 and 100000", self.max_endpoints),
            ));
        }
        if !(1..=1000).contains(&self.max_parameters) {
            problems.push(ConfigProblem::new(
                "max_parameters",
                format!("{} must be between 1 and 1000", self.max_parameters),
            ));
        }
        if self.snapshot_every.as_micros() < 1_000_000 {
            problems.push(ConfigProblem::new(
                "snapshot_every",
                "must be at least one second",
            ));
        }
        for (key, v) in [
            ("points_block", self.points_block),
            ("points_detect", self.points_detect),
        ] {
            if v > 100 {
                problems.push(ConfigProblem::new(key, format!("{v} must be at most 100")));
            }
        }
        if !(1..=1000).contains(&self.learn_every) {
            problems.push(ConfigProblem::new(
                "learn_every",
                format!("{} must be between 1 and 1000", self.learn_every),
            ));
        }
        if self.report_points == 0 {
            problems.push(ConfigProblem::new(
                "report_points",
                "must be at least 1 (every request would be an anomaly)",
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(BaselinesConfig::default().finish().is_empty());
        let mut c: BaselinesConfig = toml::from_str(
            "warmup = 1\nmax_endpoints = 0\npoints_block = 500\nreport_points = 0\nsnapshot_every = \"500ms\"\nlearn_every = 0",
        )
        .unwrap();
        let keys: Vec<String> = c.finish().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "warmup",
                "max_endpoints",
                "snapshot_every",
                "points_block",
                "learn_every",
                "report_points"
            ]
        );
        assert!(toml::from_str::<BaselinesConfig>("nope = 1").is_err());
    }
}
