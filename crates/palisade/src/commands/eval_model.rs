//! `palisade eval --model FILE`: rules only, model only and fused figures on the same
//! corpora (confusion matrix, precision, recall, F1, FPR at the operating point, and
//! ROC-AUC of each score), so a model is judged against the rules it joins.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use palisade_detect::Engine;
use palisade_models::metrics::{Confusion, roc_auc};
use palisade_models::{FusionPolicy, Model};
use serde::Serialize;

use super::eval::Sample;

/// One scorer's figures.
#[derive(Debug, Serialize)]
struct Scored {
    name: &'static str,
    confusion: Confusion,
    roc_auc: f64,
}

/// The three reports plus the model's cost.
#[derive(Debug, Serialize)]
struct ModelReport {
    model_version: String,
    rules_only: Scored,
    model_only: Scored,
    fused: Scored,
    fused_with_block_probability: Option<(f32, Confusion)>,
    model_microseconds_per_request: f64,
}

/// Scores every sample three ways and prints a table (and JSON beside `json`).
pub(crate) fn run(
    engine: &Engine,
    model_path: &Path,
    samples: &[Sample],
    block_probability: Option<f32>,
    json: Option<&Path>,
) -> anyhow::Result<()> {
    let model = Model::load(model_path).with_context(|| format!("{}", model_path.display()))?;
    let policy = FusionPolicy::default();
    let confident = block_probability.map(|b| FusionPolicy {
        block_probability: Some(b),
        ..FusionPolicy::default()
    });
    let mut alt = Confusion::default();
    let threshold = engine.config().threshold;
    let (mut rules, mut alone, mut fused) = (
        Confusion::default(),
        Confusion::default(),
        Confusion::default(),
    );
    let (mut s_rules, mut s_model, mut s_fused) = (Vec::new(), Vec::new(), Vec::new());
    let mut model_time = std::time::Duration::ZERO;
    for s in samples {
        let v = engine.inspect(&s.request);
        let t = Instant::now();
        let p = model.predict(&s.request);
        model_time += t.elapsed();
        let f = policy.fuse(v.score, threshold, &p);
        rules.add(s.attack, v.blocked);
        alone.add(s.attack, p.probability >= model.metadata.threshold);
        fused.add(s.attack, f.blocked);
        if let Some(c) = &confident {
            alt.add(s.attack, c.fuse(v.score, threshold, &p).blocked);
        }
        s_rules.push((f64::from(v.score), s.attack));
        s_model.push((f64::from(p.probability), s.attack));
        // The fused score, with the probability breaking ties between equal points.
        s_fused.push((f64::from(f.score) + f64::from(p.probability), s.attack));
    }
    let report = ModelReport {
        model_version: model.metadata.model_version.clone(),
        rules_only: Scored {
            name: "rules only",
            confusion: rules.finish(),
            roc_auc: roc_auc(&s_rules),
        },
        model_only: Scored {
            name: "model only",
            confusion: alone.finish(),
            roc_auc: roc_auc(&s_model),
        },
        fused: Scored {
            name: "fused",
            confusion: fused.finish(),
            roc_auc: roc_auc(&s_fused),
        },
        fused_with_block_probability: block_probability.map(|b| (b, alt.finish())),
        model_microseconds_per_request: model_time.as_secs_f64() * 1e6
            / samples.len().max(1) as f64,
    };
    println!("model {}:", report.model_version);
    for r in [&report.rules_only, &report.model_only, &report.fused] {
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
    println!(
        "  model inference {:.1} µs/request (this build)",
        report.model_microseconds_per_request
    );
    if let Some(path) = json {
        let path = path.with_extension("model.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}
