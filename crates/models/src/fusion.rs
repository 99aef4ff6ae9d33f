//! The fusion policy: how the rule score and the model's probability become one
//! decision.
//!
//! Two forms share one policy type, so that `/check`, the proxy, the ingest stage and
//! `palisade eval` fuse alike:
//!
//! * **Fixed** (`[models] operating_point = "fixed"`, the default):
//!   `score = rule_score + (model_weight if probability >= min_probability else 0)`;
//!   the request is blocked when `score >= threshold`, or when `block_probability` is
//!   set and the probability reaches it. By default the model is advisory (0 points, no
//!   `block_probability`): its opinion is recorded, the rules decide. With
//!   `model_weight = 3` (p ≥ 0.9, threshold 5) the model alone still never blocks: it
//!   tips a request the rules already found suspicious (2–4 points) over the threshold;
//!   on a site it has never seen that tipped 1 benign request in 9,999 (a 3-point
//!   percent-encoding warning), hence the advisory default.
//! * **Calibrated** (`operating_point = "calibrated"`): the model's points are
//!   [`Graded`] by its log-odds, with the parameters `palisade train --calibrate` chose
//!   on validation data held out of the site's own training traffic (the largest F1 at
//!   a validation false-positive rate under a stated target) and stored in the model
//!   file ([`crate::opoint`]). A model without a calibrated point falls back to the
//!   fixed form. The point is only as good as the traffic it was chosen on: the
//!   committed generic model has none, and the shipped default stays fixed and advisory.

use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::config::{ModelsConfig, OperatingPointMode};
use crate::file::{Metadata, Prediction};

/// Model points graded by the model's log-odds (the calibrated form):
/// `min(max_points, ceil(points_per_logit × (logit p − logit from_probability)))` for
/// `p > from_probability`, else 0. One steep slope is the fixed form's step; a gentle
/// one lets a fairly sure model add a point or two to what the baselines or the rules
/// found, and only a very sure one add many.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Graded {
    /// Probability above which the model adds points.
    pub from_probability: f32,
    /// Points per unit of log-odds above `from_probability`.
    pub points_per_logit: f32,
    /// Most points the model adds.
    pub max_points: u32,
}

/// Log-odds, with `p` kept off 0 and 1 so that it is finite.
fn logit(p: f32) -> f64 {
    let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
    (p / (1.0 - p)).ln()
}

impl Graded {
    /// The points at probability `p` (0 for NaN).
    pub fn points(&self, p: f32) -> u32 {
        if p.is_nan() || p <= self.from_probability {
            return 0;
        }
        let raw =
            (f64::from(self.points_per_logit) * (logit(p) - logit(self.from_probability))).ceil();
        if raw.is_nan() || raw <= 0.0 {
            0
        } else {
            // `as` saturates; the cap keeps it small.
            (raw as u32).min(self.max_points)
        }
    }

    /// Whether the parameters make sense (a damaged or hand-edited file is refused).
    pub fn valid(&self) -> bool {
        (0.0..1.0).contains(&self.from_probability)
            && self.points_per_logit.is_finite()
            && self.points_per_logit > 0.0
            && self.max_points <= 100
    }
}

/// The policy's settings (from `[models]`, resolved against the loaded model's
/// metadata by [`FusionPolicy::for_model`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionPolicy {
    /// Points added at or above `min_probability` (fixed form).
    pub model_weight: u32,
    /// Probability from which the points are added (fixed form).
    pub min_probability: f32,
    /// Probability at which the model alone blocks; `None`: never.
    pub block_probability: Option<f32>,
    /// `operating_point = "calibrated"`: use the model's calibrated point when it has
    /// one (see [`FusionPolicy::for_model`]).
    pub calibrated: bool,
    /// The graded points in force (set by [`FusionPolicy::for_model`] from a calibrated
    /// model); `None`: the fixed form.
    pub graded: Option<Graded>,
}

impl From<&ModelsConfig> for FusionPolicy {
    fn from(c: &ModelsConfig) -> Self {
        FusionPolicy {
            model_weight: c.model_weight,
            min_probability: c.min_probability,
            block_probability: c.block_probability,
            calibrated: c.operating_point == OperatingPointMode::Calibrated,
            graded: None,
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
    /// Whether the model's points came from its calibrated operating point.
    pub calibrated: bool,
}

impl FusionPolicy {
    /// The policy in force for a model with `metadata`: with `calibrated` asked for and
    /// a calibrated point in the file, its graded points replace `model_weight` (the
    /// `block_probability` setting still applies); otherwise the fixed form, unchanged.
    pub fn for_model(&self, metadata: &Metadata) -> FusionPolicy {
        match metadata.operating_point.as_ref() {
            Some(op) if self.calibrated && op.points.valid() => FusionPolicy {
                graded: Some(op.points),
                ..*self
            },
            _ => FusionPolicy {
                graded: None,
                ..*self
            },
        }
    }

    /// Whether the model can change no verdict (no points, no `block_probability`):
    /// then its opinion is only worth computing for requests the rules already found
    /// something in, to be recorded on their threats.
    pub fn is_advisory(&self) -> bool {
        let adds_points = match &self.graded {
            Some(g) => g.max_points > 0,
            None => self.model_weight > 0,
        };
        !adds_points && self.block_probability.is_none()
    }

    /// The points the model adds at probability `p`.
    pub fn model_points(&self, p: f32) -> u32 {
        match &self.graded {
            Some(g) => g.points(p),
            None if p >= self.min_probability => self.model_weight,
            None => 0,
        }
    }

    /// Fuses a rule score with a prediction at `threshold`.
    pub fn fuse(&self, rule_score: u32, threshold: u32, p: &Prediction) -> Fused {
        let model_points = self.model_points(p.probability);
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
            calibrated: self.graded.is_some(),
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
    fn graded_points_grow_with_the_log_odds_up_to_the_cap() {
        let g = Graded {
            from_probability: 0.5,
            points_per_logit: 1.0,
            max_points: 4,
        };
        assert_eq!(g.points(0.5), 0);
        assert_eq!(g.points(0.3), 0);
        assert_eq!(g.points(f32::NAN), 0);
        assert_eq!(g.points(0.6), 1, "logit 0.41");
        assert_eq!(g.points(0.9), 3, "logit 2.20");
        assert_eq!(g.points(0.99), 4, "logit 4.6, capped");
        assert_eq!(g.points(1.0), 4);
        let steep = Graded {
            points_per_logit: 100.0,
            max_points: 3,
            from_probability: 0.9,
        };
        assert_eq!(steep.points(0.9), 0);
        assert_eq!(
            steep.points(0.91),
            3,
            "a steep slope is nearly the fixed step"
        );
        assert!(g.valid() && steep.valid());
        assert!(
            !Graded {
                points_per_logit: f32::NAN,
                ..g
            }
            .valid()
        );
    }

    #[test]
    fn a_calibrated_model_tips_what_the_fixed_advisory_one_does_not() {
        let mut model = crate::file::tests::toy();
        let fixed = FusionPolicy::default();
        let calibrated = FusionPolicy {
            calibrated: true,
            ..FusionPolicy::default()
        };
        // Asking for the calibrated point of a model without one: the fixed form.
        assert_eq!(calibrated.for_model(&model.metadata).graded, None);
        assert!(calibrated.for_model(&model.metadata).is_advisory());
        model.metadata.operating_point = Some(crate::opoint::tests::point(Graded {
            from_probability: 0.6,
            points_per_logit: 3.0,
            max_points: 4,
        }));
        let in_force = calibrated.for_model(&model.metadata);
        assert!(!in_force.is_advisory());
        let d = in_force.fuse(2, 5, &p(0.8));
        assert!(d.blocked && d.calibrated, "{d:?}");
        assert_eq!(d.model_points, 3);
        assert!(!fixed.for_model(&model.metadata).fuse(2, 5, &p(0.8)).blocked);
        assert!(
            fixed.for_model(&model.metadata).is_advisory(),
            "the fixed default ignores the stored point"
        );
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
