//! The fusion policy: how the rule score and the model's probability become one
//! decision.
//!
//! `score = rule_score + (model_weight if probability >= min_probability else 0)`;
//! the request is blocked when `score >= threshold`, or when `block_probability` is
//! set and the probability reaches it. By default the model is advisory (0 points, no
//! `block_probability`): its opinion is recorded, the rules decide. With
//! `model_weight = 3` (p ≥ 0.9, threshold 5) the model alone still never blocks: it
//! tips a request the rules already found suspicious (2–4 points) over the threshold;
//! on a site it has never seen that tipped 1 benign request in 9,999 (a 3-point
//! percent-encoding warning), hence the advisory default.

use serde::Serialize;

use crate::category::Category;
use crate::config::ModelsConfig;
use crate::file::Prediction;

/// The policy's settings (from `[models]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionPolicy {
    /// Points added at or above `min_probability`.
    pub model_weight: u32,
    /// Probability from which the points are added.
    pub min_probability: f32,
    /// Probability at which the model alone blocks; `None`: never.
    pub block_probability: Option<f32>,
}

impl From<&ModelsConfig> for FusionPolicy {
    fn from(c: &ModelsConfig) -> Self {
        FusionPolicy {
            model_weight: c.model_weight,
            min_probability: c.min_probability,
            block_probability: c.block_probability,
        }
    }
}

impl Default for FusionPolicy {
    fn default() -> Self {
        FusionPolicy::from(&ModelsConfig::default())
    }
}

/// One fused decision, with each part's value (recorded on threats).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fused {
    /// The rules' anomaly score.
    pub rule_score: u32,
    /// The model's probability that the request is an attack.
    pub probability: f32,
    /// The classifier's family for it.
    pub category: Category,
    /// The classifier's probability for that family.
    pub category_probability: f32,
    /// Points the model added.
    pub model_points: u32,
    /// `rule_score + model_points`.
    pub score: u32,
    /// Whether the fused decision blocks.
    pub blocked: bool,
    /// Whether the model's own `block_probability` decided it.
    pub blocked_by_model_alone: bool,
}

impl FusionPolicy {
    /// Whether the model can change no verdict (no points, no `block_probability`):
    /// then its opinion is only worth computing for requests the rules already found
    /// something in, to be recorded on their threats.
    pub fn is_advisory(&self) -> bool {
        self.model_weight == 0 && self.block_probability.is_none()
    }

    /// Fuses a rule score with a prediction at `threshold`.
    pub fn fuse(&self, rule_score: u32, threshold: u32, p: &Prediction) -> Fused {
        let model_points = if p.probability >= self.min_probability {
            self.model_weight
        } else {
            0
        };
        let score = rule_score.saturating_add(model_points);
        let alone = self.block_probability.is_some_and(|b| p.probability >= b);
        Fused {
            rule_score,
            probability: p.probability,
            category: p.category,
            category_probability: p.category_probability,
            model_points,
            score,
            blocked: score >= threshold || alone,
            blocked_by_model_alone: alone && score < threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(probability: f32) -> Prediction {
        Prediction {
            probability,
            category: Category::Sqli,
            category_probability: 0.8,
        }
    }

    #[test]
    fn the_default_policy_is_advisory() {
        let f = FusionPolicy::default();
        let d = f.fuse(4, 5, &p(0.9999));
        assert!(!d.blocked);
        assert_eq!(d.model_points, 0);
        assert_eq!(d.probability, 0.9999, "the opinion is still recorded");
    }

    #[test]
    fn weighted_policy_tips_but_never_blocks_on_the_model_alone() {
        let f = FusionPolicy {
            model_weight: 3,
            ..Default::default()
        };
        let alone = f.fuse(0, 5, &p(0.9999));
        assert!(!alone.blocked);
        assert_eq!(alone.model_points, 3);
        let tipped = f.fuse(2, 5, &p(0.95));
        assert!(tipped.blocked && !tipped.blocked_by_model_alone);
        assert_eq!(tipped.score, 5);
        let unsure = f.fuse(4, 5, &p(0.5));
        assert!(!unsure.blocked);
        assert_eq!(unsure.model_points, 0);
        assert!(f.fuse(5, 5, &p(0.0)).blocked, "rules alone still block");
    }

    #[test]
    fn block_probability_lets_a_confident_model_block() {
        let f = FusionPolicy {
            block_probability: Some(0.99),
            ..Default::default()
        };
        let d = f.fuse(0, 5, &p(0.995));
        assert!(d.blocked && d.blocked_by_model_alone);
        assert!(!f.fuse(0, 5, &p(0.98)).blocked);
    }
}
