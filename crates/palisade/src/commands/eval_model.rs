//! `palisade eval --model FILE` and/or `--baselines-train FILE…`: rules only, model
//! only, baselines only and fused figures on the same corpora (confusion matrix,
//! precision, recall, F1, FPR at the operating point, and ROC-AUC of each score), so
//! the learnt parts are judged against the rules they join.
//!
//! Baselines are learnt from the `--baselines-train` corpora (their normal samples)
//! first, then frozen: the evaluated samples judge them but never teach them.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use palisade_detect::Engine;
use palisade_models::metrics::{Confusion, roc_auc};
use palisade_models::{BaselinePolicy, Baselines, FusionPolicy, Model};
use serde::Serialize;

use super::eval::Sample;

/// One scorer's figures.
#[derive(Debug, Serialize)]
struct Scored {
    name: &'static str,
    confusion: Confusion,
    roc_auc: f64,
}

/// The reports plus the learnt parts' cost.
#[derive(Debug, Serialize)]
struct ModelReport {
    model_version: Option<String>,
    baselines: Option<BaselineFacts>,
    scored: Vec<Scored>,
    fused_with_block_probability: Option<(f32, Confusion)>,
    model_microseconds_per_request: Option<f64>,
    baseline_microseconds_per_request: Option<f64>,
}

/// What the baselines were learnt from.
#[derive(Debug, Serialize)]
struct BaselineFacts {
    trained_on: usize,
    endpoints: usize,
    established: usize,
    warmup: u64,
}

/// What `run` compares.
pub(crate) struct Parts<'a> {
    /// A model file to load.
    pub(crate) model: Option<&'a Path>,
    /// Baselines already learnt.
    pub(crate) baselines: Option<(&'a Baselines, usize)>,
    /// Also report the fused score with this `block_probability`.
    pub(crate) block_probability: Option<f32>,
    /// The model's points in the fused score (`[models] model_weight`); `None`: the
    /// default (advisory).
    pub(crate) model_weight: Option<u32>,
    /// Print this many baseline false positives with their explanations.
    pub(crate) show: usize,
}

fn micros_per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}

/// Scores every sample each way and prints a table (and JSON beside `json`).
pub(crate) fn run(
    engine: &Engine,
    parts: Parts<'_>,
    samples: &[Sample],
    json: Option<&Path>,
) -> anyhow::Result<()> {
    let model = match parts.model {
        Some(p) => Some(Model::load(p).with_context(|| format!("{}", p.display()))?),
        None => None,
    };
    let policy = FusionPolicy {
        model_weight: parts
            .model_weight
            .unwrap_or(FusionPolicy::default().model_weight),
        ..FusionPolicy::default()
    };
    let confident = parts.block_probability.map(|b| FusionPolicy {
        block_probability: Some(b),
        ..policy
    });
    // The model's own calibrated operating point (`palisade train --calibrate`), when
    // its file has one: the policy `[models] operating_point = "calibrated"` puts in
    // force, reported beside the fixed one.
    let calibrated = model.as_ref().and_then(|m| {
        m.metadata.operating_point.as_ref().map(|_| {
            FusionPolicy {
                calibrated: true,
                ..FusionPolicy::default()
            }
            .for_model(&m.metadata)
        })
    });
    let (mut cal, mut s_cal) = (Confusion::default(), Vec::new());
    let bpolicy = BaselinePolicy::default();
    let threshold = engine.config().threshold;
    let mut alt = Confusion::default();
    let (mut rules, mut alone, mut base, mut fused) = (
        Confusion::default(),
        Confusion::default(),
        Confusion::default(),
        Confusion::default(),
    );
    let (mut s_rules, mut s_model, mut s_base, mut s_fused) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut model_time, mut base_time) = (Duration::ZERO, Duration::ZERO);
    // The fused score without the model's points (the advisory default), to compare
    // with a `--model-weight`.
    let (mut advisory, mut s_advisory) = (Confusion::default(), Vec::new());
    let (mut shown, mut misses_shown) = (0, 0);
    for s in samples {
        let v = engine.inspect(&s.request);
        let mut score = v.score;
        let mut blocked = v.blocked;
        let mut tiebreak = 0.0;
        let mut model_p = None;
        let (mut adv_score, mut adv_blocked, mut adv_tiebreak) = (v.score, v.blocked, 0.0);
        let (mut cal_score, mut cal_blocked, mut cal_tiebreak) = (v.score, v.blocked, 0.0);
        if let Some(m) = &model {
            let t = Instant::now();
            let p = m.predict(&s.request);
            model_time += t.elapsed();
            let f = policy.fuse(v.score, threshold, &p);
            alone.add(s.attack, p.probability >= m.metadata.threshold);
            s_model.push((f64::from(p.probability), s.attack));
            score = f.score;
            blocked = f.blocked;
            tiebreak = f64::from(p.probability);
            model_p = Some(p.probability);
            if let Some(c) = &confident {
                alt.add(s.attack, c.fuse(v.score, threshold, &p).blocked);
            }
            if let Some(c) = &calibrated {
                let f = c.fuse(v.score, threshold, &p);
                cal_score = f.score;
                cal_blocked = f.blocked;
                cal_tiebreak = f64::from(p.probability);
            }
        }
        if let Some((b, _)) = parts.baselines {
            let t = Instant::now();
            let o = b.judge(&s.request, None);
            base_time += t.elapsed();
            let flagged = bpolicy.reports(&o);
            base.add(s.attack, flagged);
            if flagged && !s.attack && shown < parts.show {
                shown += 1;
                let why: Vec<&str> = o
                    .deviations
                    .iter()
                    .map(|d| d.explanation.as_str())
                    .collect();
                println!(
                    "  baseline false positive ({} points): {} {} [{}]",
                    o.points,
                    s.request.method,
                    s.request.uri,
                    why.join("; ")
                );
            }
            s_base.push((f64::from(o.points), s.attack));
            score = score.saturating_add(bpolicy.part(&o, true));
            // Detected: over the threshold, or recorded as an anomaly threat.
            blocked |= score >= threshold || flagged;
            // The deviation points beyond the cap still rank within equal scores.
            tiebreak += f64::from(o.points) / 1000.0;
            adv_score = adv_score.saturating_add(bpolicy.part(&o, true));
            adv_blocked |= adv_score >= threshold || flagged;
            adv_tiebreak += f64::from(o.points) / 1000.0;
            cal_score = cal_score.saturating_add(bpolicy.part(&o, true));
            cal_blocked |= cal_score >= threshold || flagged;
            cal_tiebreak += f64::from(o.points) / 1000.0;
        }
        if s.attack && !blocked && misses_shown < parts.show {
            misses_shown += 1;
            println!(
                "  fused miss (score {score}, model p {}): {} {} {}",
                model_p.map_or("-".into(), |p| format!("{p:.3}")),
                s.request.method,
                s.request.uri,
                String::from_utf8_lossy(&s.request.body)
            );
        }
        advisory.add(s.attack, adv_blocked);
        cal.add(s.attack, cal_blocked);
        s_cal.push((f64::from(cal_score) + cal_tiebreak, s.attack));
        s_advisory.push((f64::from(adv_score) + adv_tiebreak, s.attack));
        rules.add(s.attack, v.blocked);
        fused.add(s.attack, blocked);
        s_rules.push((f64::from(v.score), s.attack));
        s_fused.push((f64::from(score) + tiebreak, s.attack));
    }
    let mut scored = vec![Scored {
        name: "rules only",
        confusion: rules.finish(),
        roc_auc: roc_auc(&s_rules),
    }];
    if model.is_some() {
        scored.push(Scored {
            name: "model only",
            confusion: alone.finish(),
            roc_auc: roc_auc(&s_model),
        });
    }
    if parts.baselines.is_some() {
        scored.push(Scored {
            name: "baselines",
            confusion: base.finish(),
            roc_auc: roc_auc(&s_base),
        });
    }
    if model.is_some() && policy.model_weight > 0 {
        scored.push(Scored {
            name: "fused, model advisory",
            confusion: advisory.finish(),
            roc_auc: roc_auc(&s_advisory),
        });
    }
    scored.push(Scored {
        name: "fused",
        confusion: fused.finish(),
        roc_auc: roc_auc(&s_fused),
    });
    if calibrated.is_some() {
        scored.push(Scored {
            name: "fused, calibrated",
            confusion: cal.finish(),
            roc_auc: roc_auc(&s_cal),
        });
    }
    let report = ModelReport {
        model_version: model.as_ref().map(|m| m.metadata.model_version.clone()),
        baselines: parts.baselines.map(|(b, n)| BaselineFacts {
            trained_on: n,
            endpoints: b.len(),
            established: b.established(),
            warmup: b.config().warmup,
        }),
        scored,
        fused_with_block_probability: parts.block_probability.map(|b| (b, alt.finish())),
        model_microseconds_per_request: model
            .as_ref()
            .map(|_| micros_per(model_time, samples.len())),
        baseline_microseconds_per_request: parts
            .baselines
            .map(|_| micros_per(base_time, samples.len())),
    };
    if let Some(v) = &report.model_version {
        println!(
            "model {v} (fused: model_weight {} at p >= {}):",
            policy.model_weight, policy.min_probability
        );
    }
    if let Some(op) = model
        .as_ref()
        .and_then(|m| m.metadata.operating_point.as_ref())
    {
        super::calibrate::print_point(op);
    }
    if let Some(b) = &report.baselines {
        println!(
            "baselines learnt from {} normal requests: {} endpoints, {} past a warm-up of {} (fused: rules + model part + baseline part (up to {} points) >= threshold, or baseline deviations >= {} points: an anomaly threat)",
            b.trained_on,
            b.endpoints,
            b.established,
            b.warmup,
            bpolicy.points_detect,
            bpolicy.report_points
        );
    }
    for r in &report.scored {
        let c = &r.confusion;
        println!(
            "  {:<11} precision {:.4} recall {:.4} F1 {:.4} FPR {:.4} ROC-AUC {:.4}  (TP {} FN {} FP {} TN {})",
            r.name, c.precision, c.recall, c.f1, c.fpr, r.roc_auc, c.tp, c.fn_, c.fp, c.tn
        );
    }
    if let Some((b, c)) = &report.fused_with_block_probability {
        println!(
            "  fused, model alone blocks at p >= {b}: precision {:.4} recall {:.4} F1 {:.4} FPR {:.4}  (TP {} FN {} FP {} TN {})",
            c.precision, c.recall, c.f1, c.fpr, c.tp, c.fn_, c.fp, c.tn
        );
    }
    if let Some(t) = report.model_microseconds_per_request {
        println!("  model inference {t:.1} µs/request (this build)");
    }
    if let Some(t) = report.baseline_microseconds_per_request {
        println!("  baseline judgement {t:.1} µs/request (this build)");
    }
    if let Some(path) = json {
        let path = path.with_extension("model.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}
