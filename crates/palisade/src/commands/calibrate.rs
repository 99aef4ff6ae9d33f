//! `palisade train --calibrate`: chooses the calibrated operating point
//! ([`palisade_models::opoint`]) on the training data alone.
//!
//! 1. Hold out a validation part: the last `--validation` share of the normal requests
//!    (in the order of `--data`: the most recent traffic when it is in time order, as a
//!    model trained on the past meets the future; a random share would hold out near
//!    copies of requests kept for training, and understate false positives), and about
//!    that share of the attacks in groups that share no payload value with the rest
//!    (the protocol (b) split by seed, [`super::eval_split::split_share`], with the
//!    remaining normal requests as the reference), so that validation attacks are
//!    payloads the validation model never saw, as the attacks it will meet are.
//! 2. Train a model on the rest (plus the generated examples `palisade train` adds,
//!    planted in the remaining normal requests only) and learn baselines on the
//!    remaining normal requests, in their order.
//! 3. Score every validation request with the rules, that model and those baselines,
//!    and choose the graded points (see [`palisade_models::opoint::choose`]).
//!
//! The final model is then trained on all the data by the caller; the point and its
//! validation figures go in its file. No file other than `--data` is read.

use palisade_detect::{Engine, EngineConfig, RuleSet};
use palisade_models::opoint::{OperatingPoint, Scored, choose};
use palisade_models::train::{Provenance, Sample, TrainSettings, train};
use palisade_models::{BaselinePolicy, Baselines, BaselinesConfig, FusionPolicy, Model};

use super::eval;
use super::eval_split::{Reference, SplitStats, split_share};
use crate::cli::TrainArgs;

/// The data cut in two: what the validation model learns from, and what it is judged on.
#[derive(Debug)]
pub(crate) struct Holdout {
    /// Training part (normal requests in their original order, then attacks).
    pub(crate) fit: Vec<Sample>,
    /// Validation part.
    pub(crate) validation: Vec<Sample>,
    /// How the attacks were split.
    pub(crate) attacks: SplitStats,
}

/// Splits `samples` (see the module documentation); deterministic for a seed.
pub(crate) fn holdout(samples: &[Sample], seed: u64, share: f64) -> Holdout {
    let share = if share.is_finite() {
        share.clamp(0.0, 0.9)
    } else {
        0.2
    };
    let normal: Vec<usize> = (0..samples.len())
        .filter(|&i| samples.get(i).is_some_and(|s| !s.attack))
        .collect();
    let cut = (normal.len() as f64 * share).round() as usize;
    let mut held = vec![false; samples.len()];
    for &i in normal.iter().skip(normal.len().saturating_sub(cut)) {
        if let Some(h) = held.get_mut(i) {
            *h = true;
        }
    }
    let mut fit: Vec<Sample> = Vec::new();
    let mut validation: Vec<Sample> = Vec::new();
    for &i in &normal {
        if let (Some(s), Some(&h)) = (samples.get(i), held.get(i)) {
            if h {
                validation.push(s.clone());
            } else {
                fit.push(s.clone());
            }
        }
    }
    let reference = Reference::learn(fit.iter().map(|s| &s.request));
    let attacks: Vec<eval::Sample> = samples
        .iter()
        .filter(|s| s.attack)
        .map(|s| eval::Sample {
            request: s.request.clone(),
            attack: true,
            category: s.category.map(|c| c.as_str().to_owned()),
            part: None,
        })
        .collect();
    let (fit_attacks, held_attacks, stats) = split_share(attacks, seed, Some(&reference), share);
    let back = |s: eval::Sample| Sample {
        request: s.request,
        attack: s.attack,
        category: None,
    };
    fit.extend(fit_attacks.into_iter().map(back));
    validation.extend(held_attacks.into_iter().map(back));
    Holdout {
        fit,
        validation,
        attacks: stats,
    }
}

/// Scores the validation requests with the rules, the model and the baselines.
pub(crate) fn score(
    engine: &Engine,
    model: &Model,
    baselines: &Baselines,
    policy: &BaselinePolicy,
    validation: &[Sample],
) -> Vec<Scored> {
    validation
        .iter()
        .map(|s| {
            let v = engine.inspect(&s.request);
            let o = baselines.judge(&s.request, None);
            Scored {
                attack: s.attack,
                rule_score: v.score,
                probability: model.probability(&s.request),
                baseline_points: policy.part(&o, true),
                baseline_reported: policy.reports(&o),
            }
        })
        .collect()
}

/// Chooses the operating point for `samples` (the labelled `--data`, before the
/// generated examples are added).
pub(crate) fn run(
    samples: &[Sample],
    args: &TrainArgs,
    settings: TrainSettings,
) -> anyhow::Result<OperatingPoint> {
    if !(0.0..0.05).contains(&args.target_fpr) || args.target_fpr.is_nan() {
        anyhow::bail!(
            "--target-fpr: {} is not in [0, 0.05) (the aim is a small false-positive rate)",
            args.target_fpr
        );
    }
    if !(0.05..=0.5).contains(&args.validation) {
        anyhow::bail!(
            "--validation: {} is not between 0.05 and 0.5",
            args.validation
        );
    }
    if !(1..=4).contains(&args.paranoia) {
        anyhow::bail!("--paranoia: {} is not 1, 2, 3 or 4", args.paranoia);
    }
    let split = holdout(samples, args.seed, args.validation);
    let v_normal = split.validation.iter().filter(|s| !s.attack).count();
    let v_attacks = split.validation.len() - v_normal;
    if v_normal == 0 || v_attacks == 0 {
        anyhow::bail!(
            "--calibrate needs normal and attack requests in --data ({v_normal} normal, {v_attacks} attacks held out)"
        );
    }
    println!(
        "calibration: validation {} normal + {} attacks ({} groups of attacks sharing a payload value; none on both sides), fit on {} labelled requests",
        v_normal,
        v_attacks,
        split.attacks.groups,
        split.fit.len()
    );
    if (v_normal as f64) * args.target_fpr < 5.0 {
        println!(
            "calibration: warning: {v_normal} validation normal requests make a false-positive rate of {} fewer than 5 requests; the point is coarse",
            args.target_fpr
        );
    }
    let fit_normal: Vec<Sample> = split.fit.iter().filter(|s| !s.attack).cloned().collect();
    let (fit, _) = super::train::with_generated(split.fit, args);
    let validation_settings = TrainSettings {
        held_out: 0.0,
        ..settings
    };
    let model = train(
        &fit,
        validation_settings,
        Provenance::default(),
        &mut |_, _| {},
    );
    drop(fit);
    let config = BaselinesConfig {
        warmup: args.baseline_warmup,
        ..BaselinesConfig::default()
    };
    let baselines = Baselines::new(config.clone());
    for s in &fit_normal {
        baselines.train(&s.request, None);
    }
    let rules = RuleSet::load(args.rules_dir.as_deref())
        .map_err(|e| anyhow::anyhow!("loading rules: {e}"))?;
    let engine = Engine::new(
        rules,
        EngineConfig {
            paranoia: args.paranoia,
            threshold: args.threshold,
        },
    );
    let bpolicy = BaselinePolicy::from(&config);
    let rows = score(&engine, &model, &baselines, &bpolicy, &split.validation);
    let c = choose(
        &rows,
        args.threshold,
        args.target_fpr,
        args.model_alone,
        &FusionPolicy::default(),
    );
    let point = OperatingPoint {
        points: c.points,
        threshold: args.threshold,
        paranoia: args.paranoia,
        baseline_points: bpolicy.points_detect,
        report_points: bpolicy.report_points,
        target_fpr: args.target_fpr,
        met_target: c.met_target,
        model_alone: args.model_alone,
        description: format!(
            "{:.0}% of the labelled data held out (the last normal requests, attacks in groups sharing no payload value by seed {}); model trained and baselines learnt on the rest",
            args.validation * 100.0,
            args.seed
        ),
        validation: c.confusion,
        advisory: c.advisory,
        candidates: c.candidates,
    };
    print_point(&point);
    Ok(point)
}

/// Prints the chosen point and its validation figures.
pub(crate) fn print_point(p: &OperatingPoint) {
    let g = &p.points;
    let (v, a) = (&p.validation, &p.advisory);
    println!(
        "calibrated operating point{}: model points = min({}, ceil({} x (logit p - logit {}))) above p {}, threshold {} (of {} candidates{}, validation FPR <= {})",
        if p.met_target {
            ""
        } else {
            " (TARGET NOT MET: no candidate kept the validation FPR under it; the model adds no points)"
        },
        g.max_points,
        g.points_per_logit,
        g.from_probability,
        g.from_probability,
        p.threshold,
        p.candidates,
        if p.model_alone {
            ", the model alone may block"
        } else {
            ", the model alone never blocks"
        },
        p.target_fpr
    );
    println!(
        "  validation, fused calibrated: precision {:.4} recall {:.4} F1 {:.4} FPR {:.4} (TP {} FN {} FP {} TN {})",
        v.precision, v.recall, v.f1, v.fpr, v.tp, v.fn_, v.fp, v.tn
    );
    println!(
        "  validation, fused advisory:   precision {:.4} recall {:.4} F1 {:.4} FPR {:.4} (TP {} FN {} FP {} TN {})",
        a.precision, a.recall, a.f1, a.fpr, a.tp, a.fn_, a.fp, a.tn
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_detect::HttpRequest;

    fn sample(uri: &str, attack: bool) -> Sample {
        Sample {
            request: HttpRequest {
                method: "GET".into(),
                uri: uri.into(),
                ..Default::default()
            },
            attack,
            category: None,
        }
    }

    fn data() -> Vec<Sample> {
        let mut out: Vec<Sample> = (0..500)
            .map(|i| sample(&format!("/shop?id={i}&name=user{i}"), false))
            .collect();
        for i in 0..100 {
            // Pairs share a payload value.
            out.push(sample(&format!("/shop?id={}%27--&name=user1", i / 2), true));
        }
        out
    }

    fn val_normal_ids(s: &Sample) -> u32 {
        palisade_models::baseline::parameters(&s.request)
            .into_iter()
            .find(|(n, _)| n.contains("id"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn the_validation_part_is_disjoint_shares_no_payload_and_is_deterministic() {
        let d = data();
        let h = holdout(&d, 4, 0.2);
        assert_eq!(h.fit.len() + h.validation.len(), d.len());
        let uris =
            |v: &[Sample]| -> Vec<String> { v.iter().map(|s| s.request.uri.clone()).collect() };
        let (fit, val) = (uris(&h.fit), uris(&h.validation));
        let normal_val = h.validation.iter().filter(|s| !s.attack).count();
        assert_eq!(normal_val, 100, "20% of the normal requests");
        assert!(
            h.validation
                .iter()
                .filter(|s| !s.attack)
                .all(|s| val_normal_ids(s) >= 400),
            "the last ones"
        );
        let attack_val = h.validation.iter().filter(|s| s.attack).count();
        assert!((18..=22).contains(&attack_val), "{attack_val}");
        // Payload values (the ids) are never on both sides; normals are not shared.
        let ids = |v: &[Sample]| -> Vec<String> {
            v.iter()
                .filter(|s| s.attack)
                .flat_map(|s| palisade_models::baseline::parameters(&s.request))
                .filter(|(n, _)| n.contains("id"))
                .map(|(_, v)| v)
                .collect()
        };
        let (a, b) = (ids(&h.fit), ids(&h.validation));
        assert!(!a.is_empty() && !b.is_empty());
        assert!(a.iter().all(|v| !b.contains(v)), "{a:?} / {b:?}");
        assert!(
            h.validation
                .iter()
                .filter(|s| !s.attack)
                .all(|s| !fit.contains(&s.request.uri))
        );
        let again = holdout(&d, 4, 0.2);
        assert_eq!(val, uris(&again.validation), "deterministic for a seed");
        assert_ne!(val, uris(&holdout(&d, 5, 0.2).validation));
        // The fit part keeps the normal requests' order (baselines learn in it).
        let fit_normal: Vec<&String> = h
            .fit
            .iter()
            .filter(|s| !s.attack)
            .map(|s| &s.request.uri)
            .collect();
        let mut sorted = fit_normal.clone();
        sorted.sort_by_key(|u| {
            u.split(['=', '&'])
                .nth(1)
                .and_then(|n| n.parse::<u32>().ok())
        });
        assert_eq!(fit_normal, sorted);
    }
}
