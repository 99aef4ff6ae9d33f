//! `[models]`: which model file is loaded and how much its opinion weighs against the
//! rules (the fusion policy, see [`crate::fusion`]).

use std::path::PathBuf;

use palisade_core::config::{ConfigProblem, Validate};
use serde::Deserialize;

/// `[models]` (every key optional).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Use the request model at all (`false`: rules only).
    pub enabled: bool,
    /// A model file written by `palisade train`; unset: the default model built into
    /// the binary. A missing or damaged file leaves the rules alone in force.
    pub path: Option<PathBuf>,
    /// Anomaly points the model adds to the rule score when it is at least
    /// `min_probability` sure. 0 by default (advisory: the model's probability and
    /// class are recorded on threats and in `palisade eval`, but only the rules
    /// decide), because on ordinary traffic of a site it has never seen, 3 points
    /// tipped one benign request in 9,999 over the threshold (docs/BENCHMARKS.md);
    /// set it (e.g. 3) after checking `palisade eval --model` on your own traffic.
    pub model_weight: u32,
    /// The model's probability from which it adds its points.
    pub min_probability: f32,
    /// A probability at which the model alone blocks; unset (the default): never.
    pub block_probability: Option<f32>,
    /// Which operating point fuses the model with the rules (see [`crate::fusion`]):
    /// `"fixed"` (the default) uses `model_weight` and `min_probability` (advisory while
    /// `model_weight` is 0); `"calibrated"` uses the graded points `palisade train
    /// --calibrate` chose on the site's own held-out traffic and stored in the model
    /// file, and falls back to `"fixed"` for a model without them (the built-in generic
    /// model has none: a point chosen on one site's traffic does not carry to another's).
    pub operating_point: OperatingPointMode,
    /// Use the flow model (scans, floods, brute force over flows) at all.
    pub flow_enabled: bool,
    /// A flow model file written by `palisade train-flows`; unset: the default built
    /// into the binary. A missing or damaged file leaves the flow scenarios and the
    /// online score alone in force (health says so).
    pub flow_path: Option<PathBuf>,
    /// The unsupervised online flow score (threats of category `anomaly`).
    pub flow_anomaly: bool,
    /// Flows the online score learns before it judges any.
    pub flow_anomaly_warmup: u64,
    /// Standard deviations above the running mean from which a flow is an anomaly.
    pub flow_anomaly_z: f32,
}

/// `[models] operating_point`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatingPointMode {
    /// `model_weight` at `min_probability` (advisory by default).
    #[default]
    Fixed,
    /// The model file's calibrated point, when it has one.
    Calibrated,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            enabled: true,
            path: None,
            model_weight: 0,
            min_probability: 0.9,
            block_probability: None,
            operating_point: OperatingPointMode::Fixed,
            flow_enabled: true,
            flow_path: None,
            flow_anomaly: true,
            flow_anomaly_warmup: 1000,
            flow_anomaly_z: 6.0,
        }
    }
}

impl Validate for ModelsConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut prob = |key: &str, v: f32| {
            if !(0.5..=1.0).contains(&v) || v.is_nan() {
                problems.push(ConfigProblem::new(
                    key,
                    format!("{v} must be between 0.5 and 1.0"),
                ));
            }
        };
        prob("min_probability", self.min_probability);
        if let Some(b) = self.block_probability {
            prob("block_probability", b);
        }
        if self.model_weight > 100 {
            problems.push(ConfigProblem::new(
                "model_weight",
                format!("{} must be at most 100", self.model_weight),
            ));
        }
        if !(10..=10_000_000).contains(&self.flow_anomaly_warmup) {
            problems.push(ConfigProblem::new(
                "flow_anomaly_warmup",
                format!(
                    "{} must be between 10 and 10000000",
                    self.flow_anomaly_warmup
                ),
            ));
        }
        if !(3.0..=100.0).contains(&self.flow_anomaly_z) {
            problems.push(ConfigProblem::new(
                "flow_anomaly_z",
                format!("{} must be between 3 and 100", self.flow_anomaly_z),
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
        assert!(ModelsConfig::default().finish().is_empty());
        let mut c: ModelsConfig =
            toml::from_str("min_probability = 0.2\nblock_probability = 2.0\nmodel_weight = 500")
                .unwrap();
        let p = c.finish();
        let keys: Vec<String> = p.iter().map(|p| p.key.clone()).collect();
        assert_eq!(
            keys,
            ["min_probability", "block_probability", "model_weight"]
        );
        assert!(toml::from_str::<ModelsConfig>("nope = 1").is_err());
    }

    #[test]
    fn operating_point_is_fixed_by_default_and_can_be_calibrated() {
        assert_eq!(
            ModelsConfig::default().operating_point,
            OperatingPointMode::Fixed
        );
        let c: ModelsConfig = toml::from_str("operating_point = \"calibrated\"").unwrap();
        assert_eq!(c.operating_point, OperatingPointMode::Calibrated);
        let c: ModelsConfig = toml::from_str("operating_point = \"fixed\"").unwrap();
        assert_eq!(c.operating_point, OperatingPointMode::Fixed);
        assert!(toml::from_str::<ModelsConfig>("operating_point = \"aggressive\"").is_err());
    }
}
