//! The calibrated operating point: which [`Graded`] model points to fuse with the rules
//! and the baselines, chosen on validation data held out of the site's own training
//! traffic (`palisade train --calibrate`), never on what the model is later judged on.
//!
//! Each validation request is scored once by every part ([`Scored`]: the rule score,
//! the model's probability, the baselines' capped points and whether their deviations
//! alone report it). Every candidate of a fixed grid ([`grid`]) is then applied to the
//! same rows, exactly as [`FusionPolicy::fuse`] and the baseline policy would at run
//! time (detected when `rules + model points + baseline points >= threshold`, or when
//! the baselines report it), and [`choose`] keeps the candidate with the largest F1
//! whose validation false-positive rate is at most the target. Ties go to the
//! candidate with fewer false positives, then to the earlier (more conservative)
//! candidate of the grid, so that the choice is deterministic and prefers the smaller
//! step away from the rules' own verdict.

use serde::{Deserialize, Serialize};

use crate::fusion::{FusionPolicy, Graded};
use crate::metrics::Confusion;

/// What `palisade train --calibrate` stores in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// The model points chosen.
    pub points: Graded,
    /// The rules' blocking threshold the point was chosen at.
    pub threshold: u32,
    /// The paranoia level the rules ran at.
    pub paranoia: u8,
    /// The cap on the baselines' points in the fused score during validation
    /// (`[baselines] points_detect`; in block mode `points_block` applies, 0 by
    /// default, which can only lower the false-positive rate).
    pub baseline_points: u32,
    /// The baselines' `report_points` during validation.
    pub report_points: u32,
    /// The validation false-positive rate the choice had to stay within.
    pub target_fpr: f64,
    /// Whether some candidate met the target (if not, the model adds no points).
    pub met_target: bool,
    /// Whether the model's points alone were allowed to reach the threshold
    /// (`--model-alone`); by default they stop one short, so the rules or the baselines
    /// must corroborate the model.
    #[serde(default)]
    pub model_alone: bool,
    /// What the validation data was.
    pub description: String,
    /// Fused figures on the validation data at the chosen point.
    pub validation: Confusion,
    /// Fused figures on the same data with the model advisory (no points), for
    /// comparison.
    pub advisory: Confusion,
    /// Candidates tried.
    pub candidates: usize,
}

/// One validation request as each part scored it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Whether it is an attack.
    pub attack: bool,
    /// The rules' anomaly score.
    pub rule_score: u32,
    /// The model's probability.
    pub probability: f32,
    /// The baselines' points in the fused score (already capped).
    pub baseline_points: u32,
    /// Whether the baselines' deviations alone report it (`report_points`).
    pub baseline_reported: bool,
}

impl Scored {
    /// Whether the fused policy detects this request: the same sum the pipeline makes.
    pub fn detected(&self, policy: &FusionPolicy, threshold: u32) -> bool {
        let score = self
            .rule_score
            .saturating_add(policy.model_points(self.probability))
            .saturating_add(self.baseline_points);
        score >= threshold
            || self.baseline_reported
            || policy
                .block_probability
                .is_some_and(|b| self.probability >= b)
    }
}

/// The candidates, most conservative first: where the points start (high probability
/// first), how steeply they grow (gentle first) and their cap (small first). With
/// `model_alone` the caps go up to `threshold` (beyond, they act alike); without, they
/// stop one short, so that the model never blocks without the rules or the baselines.
pub fn grid(threshold: u32, model_alone: bool) -> Vec<Graded> {
    const FROM: [f32; 12] = [
        0.99, 0.98, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1,
    ];
    const SLOPE: [f32; 7] = [0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 100.0];
    let top = if model_alone {
        threshold
    } else {
        threshold.saturating_sub(1)
    }
    .clamp(1, 10);
    let mut out = Vec::with_capacity(FROM.len() * SLOPE.len() * top as usize);
    for from_probability in FROM {
        for points_per_logit in SLOPE {
            for max_points in 1..=top {
                out.push(Graded {
                    from_probability,
                    points_per_logit,
                    max_points,
                });
            }
        }
    }
    out
}

/// The outcome of [`choose`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// The points chosen (`max_points` 0: the model adds nothing).
    pub points: Graded,
    /// Fused figures at it.
    pub confusion: Confusion,
    /// Fused figures with the model advisory.
    pub advisory: Confusion,
    /// Whether it met the false-positive target (the advisory point is returned when
    /// none did, even the advisory one).
    pub met_target: bool,
    /// Candidates tried.
    pub candidates: usize,
}

fn confusion(rows: &[Scored], policy: &FusionPolicy, threshold: u32) -> Confusion {
    let mut c = Confusion::default();
    for r in rows {
        c.add(r.attack, r.detected(policy, threshold));
    }
    c.finish()
}

/// The graded points with the largest validation F1 at a false-positive rate of at most
/// `target_fpr` (see the module documentation). `base` supplies the rest of the policy
/// (`block_probability`); its form is replaced by each candidate.
pub fn choose(
    rows: &[Scored],
    threshold: u32,
    target_fpr: f64,
    model_alone: bool,
    base: &FusionPolicy,
) -> Choice {
    let advisory_points = Graded {
        from_probability: 0.5,
        points_per_logit: 1.0,
        max_points: 0,
    };
    let with = |g: Graded| FusionPolicy {
        graded: Some(g),
        ..*base
    };
    let advisory = confusion(rows, &with(advisory_points), threshold);
    let candidates = grid(threshold, model_alone);
    let mut best: Option<(Graded, Confusion)> = None;
    for g in &candidates {
        let c = confusion(rows, &with(*g), threshold);
        if c.fpr > target_fpr {
            continue;
        }
        let better = match &best {
            None => true,
            Some((_, b)) => c.f1 > b.f1 || (c.f1 == b.f1 && c.fp < b.fp),
        };
        if better {
            best = Some((*g, c));
        }
    }
    let advisory_met = advisory.fpr <= target_fpr;
    match best {
        Some((points, c)) if c.f1 > advisory.f1 || !advisory_met => Choice {
            points,
            confusion: c,
            advisory,
            met_target: true,
            candidates: candidates.len(),
        },
        _ => Choice {
            points: advisory_points,
            confusion: advisory,
            advisory,
            met_target: advisory_met,
            candidates: candidates.len(),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::Rng;

    /// An operating point with `points`, for tests elsewhere.
    pub(crate) fn point(points: Graded) -> OperatingPoint {
        OperatingPoint {
            points,
            threshold: 5,
            paranoia: 1,
            baseline_points: 5,
            report_points: 4,
            target_fpr: 0.0025,
            met_target: true,
            model_alone: false,
            description: "test".into(),
            validation: Confusion::default(),
            advisory: Confusion::default(),
            candidates: 1,
        }
    }

    /// Validation rows: normal requests with low probabilities and a tail, attacks with
    /// high ones; some attacks carry baseline points, a few normals too.
    fn rows(seed: u64, normals: usize, attacks: usize) -> Vec<Scored> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        for i in 0..normals {
            let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
            out.push(Scored {
                attack: false,
                rule_score: if i % 97 == 0 { 3 } else { 0 },
                probability: (u * u * u).min(0.999),
                baseline_points: if i % 41 == 0 { 1 } else { 0 },
                baseline_reported: false,
            });
        }
        for i in 0..attacks {
            let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
            out.push(Scored {
                attack: true,
                rule_score: if i % 3 == 0 { 5 } else { 0 },
                probability: (0.3 + 0.7 * u).min(0.9999),
                baseline_points: if i % 2 == 0 { 2 } else { 0 },
                baseline_reported: i % 5 == 0,
            });
        }
        out
    }

    #[test]
    fn the_choice_respects_the_false_positive_cap_and_beats_advisory() {
        let r = rows(3, 4000, 1000);
        for target in [0.0, 0.001, 0.0025, 0.01, 0.05] {
            let c = choose(&r, 5, target, true, &FusionPolicy::default());
            assert!(c.met_target);
            assert!(c.confusion.fpr <= target, "{target}: {c:?}");
            assert!(c.confusion.f1 >= c.advisory.f1);
            // Recomputed independently from the chosen points.
            let policy = FusionPolicy {
                graded: Some(c.points),
                ..FusionPolicy::default()
            };
            let fp = r
                .iter()
                .filter(|s| !s.attack && s.detected(&policy, 5))
                .count();
            assert_eq!(fp, c.confusion.fp);
        }
        let loose = choose(&r, 5, 0.05, true, &FusionPolicy::default());
        let tight = choose(&r, 5, 0.001, true, &FusionPolicy::default());
        assert!(loose.confusion.recall >= tight.confusion.recall);
        assert!(
            loose.confusion.f1 > loose.advisory.f1,
            "a useful model earns points: {loose:?}"
        );
    }

    #[test]
    fn the_choice_is_deterministic_and_falls_back_to_advisory() {
        let r = rows(9, 2000, 500);
        let a = choose(&r, 5, 0.0025, true, &FusionPolicy::default());
        let b = choose(&r, 5, 0.0025, true, &FusionPolicy::default());
        assert_eq!(a, b);
        // A model that says nothing useful (same probability for everything) earns no
        // points.
        let flat: Vec<Scored> = r
            .iter()
            .map(|s| Scored {
                probability: 0.97,
                ..*s
            })
            .collect();
        let c = choose(&flat, 5, 0.0, true, &FusionPolicy::default());
        assert_eq!(c.points.max_points, 0, "{c:?}");
        assert_eq!(c.confusion, c.advisory);
        // When even the rules and baselines exceed the target, no point meets it.
        let noisy: Vec<Scored> = r
            .iter()
            .map(|s| Scored {
                baseline_reported: true,
                ..*s
            })
            .collect();
        let c = choose(&noisy, 5, 0.0025, true, &FusionPolicy::default());
        assert!(!c.met_target);
        assert_eq!(c.points.max_points, 0);
    }

    #[test]
    fn grid_is_ordered_conservative_first_and_capped_at_the_threshold() {
        let g = grid(5, true);
        assert_eq!(g.len(), 12 * 7 * 5);
        assert!(g.iter().all(|p| p.valid() && p.max_points <= 5));
        assert_eq!(g[0].from_probability, 0.99);
        assert_eq!(g[0].max_points, 1);
        assert!(grid(50, true).iter().all(|p| p.max_points <= 10));
        let corroborated = grid(5, false);
        assert_eq!(corroborated.len(), 12 * 7 * 4);
        assert!(corroborated.iter().all(|p| p.max_points <= 4));
    }

    #[test]
    fn by_default_the_model_never_blocks_alone() {
        let r = rows(3, 4000, 1000);
        let c = choose(&r, 5, 0.05, false, &FusionPolicy::default());
        assert!(c.points.max_points <= 4, "{c:?}");
        let policy = FusionPolicy {
            graded: Some(c.points),
            ..FusionPolicy::default()
        };
        let alone = Scored {
            attack: true,
            rule_score: 0,
            probability: 1.0,
            baseline_points: 0,
            baseline_reported: false,
        };
        assert!(!alone.detected(&policy, 5));
    }
}
