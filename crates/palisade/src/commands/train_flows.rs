//! `palisade train-flows` and `palisade eval-flows`: the flow model trained on labelled
//! captures, and what it is worth on captures it never saw (leave-one-capture-out),
//! beside the rule scenarios (`network-*`) on the same captures.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use palisade_models::file::DataFile;
use palisade_models::flow::anomaly::{AnomalySettings, OnlineAnomaly};
use palisade_models::flow::train::{
    CaptureResult, FlowTrainSettings, LabelledCapture, capture_flows, leave_one_capture_out,
    load_captures, parse_labels, pooled, sha256_hex, train_model,
};
use palisade_models::flow::{FlowClass, FlowModel};
use palisade_scenarios::{EngineConfig, ScenarioEngine, ScenarioSet};

use crate::cli::{EvalFlowsArgs, FlowDataArgs, TrainFlowsArgs};

fn settings(d: &FlowDataArgs) -> anyhow::Result<FlowTrainSettings> {
    if !(d.threshold > 0.0 && d.threshold < 1.0) {
        anyhow::bail!("--threshold: {} is not between 0 and 1", d.threshold);
    }
    if d.epochs == 0 || d.epochs > 1000 {
        anyhow::bail!("--epochs: {} is not between 1 and 1000", d.epochs);
    }
    Ok(FlowTrainSettings {
        seed: d.seed,
        epochs: d.epochs,
        threshold: d.threshold,
        ..FlowTrainSettings::default()
    })
}

fn load(
    d: &FlowDataArgs,
    s: &FlowTrainSettings,
) -> anyhow::Result<(Vec<LabelledCapture>, DataFile)> {
    let text = std::fs::read(&d.labels).with_context(|| d.labels.display().to_string())?;
    let labels = parse_labels(&String::from_utf8_lossy(&text))?;
    let captures = load_captures(&labels, &d.data, s.features)?;
    let flows: usize = captures.iter().map(|c| c.flows.len()).sum();
    let attack: usize = captures
        .iter()
        .flat_map(|c| c.flows.iter())
        .filter(|f| f.1 != FlowClass::Benign)
        .count();
    eprintln!(
        "{} captures ({} attack, {} excluded), {flows} flows, {attack} labelled attack",
        captures.len(),
        captures.iter().filter(|c| c.is_attack()).count(),
        captures.iter().filter(|c| c.label.class.is_none()).count()
    );
    let labels_file = DataFile {
        name: d
            .labels
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: sha256_hex(&text),
        rows: labels.len(),
    };
    Ok((captures, labels_file))
}

fn progress(done: usize, total: usize) {
    if done < total {
        eprint!("\rleave-one-capture-out: {done}/{total}");
    } else {
        eprintln!("\rleave-one-capture-out: {total}/{total}");
    }
}

/// Trains on every labelled capture and writes the model (LOCO figures inside).
pub fn train(args: TrainFlowsArgs) -> anyhow::Result<ExitCode> {
    let s = settings(&args.data)?;
    let (captures, labels_file) = load(&args.data, &s)?;
    let (model, _) = train_model(&captures, labels_file, &s, progress)?;
    model.save(&args.out)?;
    let m = &model.metadata;
    println!("wrote {} ({})", args.out.display(), m.model_version);
    if let Some(h) = &m.held_out {
        println!(
            "leave-one-capture-out: flows {} (attack {}), precision {:.4} recall {:.4} F1 {:.4} FPR {:.4} ROC-AUC {:.4}; attack captures detected {}, benign captures flagged {}",
            h.flows,
            h.attack_flows,
            h.precision,
            h.recall,
            h.f1,
            h.fpr,
            h.roc_auc,
            h.attack_captures_detected,
            h.benign_captures_flagged
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What the rule scenarios raise over one capture's flows: alerts per `network-*`
/// scenario.
fn rule_alerts(path: &Path) -> anyhow::Result<BTreeMap<String, usize>> {
    let set = ScenarioSet::builtin().context("the built-in scenarios")?;
    let mut engine = ScenarioEngine::new(set, EngineConfig::default());
    let mut out = BTreeMap::new();
    for (i, f) in capture_flows(path)?.iter().enumerate() {
        let e = palisade_flows::flow_event(f, "eval");
        for a in engine.observe(&e, Some(i as i64)) {
            if a.scenario.starts_with("network-") {
                *out.entry(a.scenario).or_default() += 1;
            }
        }
    }
    Ok(out)
}

fn classes(r: &CaptureResult) -> String {
    let parts: Vec<String> = FlowClass::ALL
        .iter()
        .zip(r.flagged_by_class)
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{}:{n}", c.as_str()))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

/// Leave-one-capture-out per capture and pooled, the given (or a freshly trained)
/// model on every capture, the online score, and the rule scenarios beside them.
pub fn eval(args: EvalFlowsArgs) -> anyhow::Result<ExitCode> {
    let s = settings(&args.data)?;
    let (captures, _) = load(&args.data, &s)?;
    let loco = leave_one_capture_out(&captures, &s, progress)?;
    let full: Option<FlowModel> = match &args.model {
        Some(p) => Some(FlowModel::load(p)?),
        None => None,
    };
    println!(
        "| capture | label | flows | attack flows | LOCO TP | LOCO FP | LOCO FN | LOCO recall | LOCO FPR | LOCO classes | {} | rule scenarios (network-*) |",
        if full.is_some() {
            "given model TP/FP/FN"
        } else {
            "-"
        }
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |");
    let mut r_iter = loco.iter();
    let (mut rules_attack_hit, mut rules_attack, mut rules_benign_hit, mut rules_benign) =
        (0, 0, 0, 0);
    let mut given = palisade_models::metrics::Confusion::default();
    let mut given_benign_flagged = 0;
    for c in &captures {
        let rules = rule_alerts(&args.data.data.join(&c.label.file))?;
        let rules_txt = if rules.is_empty() {
            "-".to_string()
        } else {
            rules
                .iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let label = c.label.class.map_or("excluded", FlowClass::as_str);
        let attack_flows = c.flows.iter().filter(|f| f.1 != FlowClass::Benign).count();
        if c.label.class.is_none() {
            println!(
                "| {} | {label} | {} | - | - | - | - | - | - | - | - | {rules_txt} |",
                c.label.file,
                c.flows.len()
            );
            continue;
        }
        if c.is_attack() {
            rules_attack += 1;
            rules_attack_hit += usize::from(!rules.is_empty());
        } else {
            rules_benign += 1;
            rules_benign_hit += usize::from(!rules.is_empty());
        }
        let Some(r) = r_iter.next() else {
            anyhow::bail!("leave-one-capture-out gave fewer results than captures");
        };
        let given_txt = match &full {
            Some(m) => {
                let g = palisade_models::flow::train::judge(m, c, m.metadata.threshold);
                given.tp += g.confusion.tp;
                given.fp += g.confusion.fp;
                given.tn += g.confusion.tn;
                given.fn_ += g.confusion.fn_;
                if !c.is_attack() && g.confusion.fp > 0 {
                    given_benign_flagged += 1;
                }
                format!("{}/{}/{}", g.confusion.tp, g.confusion.fp, g.confusion.fn_)
            }
            None => "-".into(),
        };
        println!(
            "| {} | {label} | {} | {attack_flows} | {} | {} | {} | {:.3} | {:.3} | {} | {given_txt} | {rules_txt} |",
            c.label.file,
            c.flows.len(),
            r.confusion.tp,
            r.confusion.fp,
            r.confusion.fn_,
            r.confusion.recall,
            r.confusion.fpr,
            classes(r),
        );
    }
    let p = pooled(&loco);
    println!();
    println!(
        "leave-one-capture-out, pooled: {} flows ({} attack): precision {:.4} recall {:.4} F1 {:.4} FPR {:.4} ROC-AUC {:.4}; attack captures detected {}; benign captures with a false positive {}",
        p.flows,
        p.attack_flows,
        p.precision,
        p.recall,
        p.f1,
        p.fpr,
        p.roc_auc,
        p.attack_captures_detected,
        p.benign_captures_flagged
    );
    let fp_benign: usize = loco
        .iter()
        .filter(|r| r.label.class == Some(FlowClass::Benign))
        .map(|r| r.confusion.fp)
        .sum();
    let benign_flows: usize = loco
        .iter()
        .filter(|r| r.label.class == Some(FlowClass::Benign))
        .map(|r| r.confusion.fp + r.confusion.tn)
        .sum();
    println!(
        "false positives on the benign captures (leave-one-capture-out): {fp_benign} of {benign_flows} flows"
    );
    println!(
        "rule scenarios: attack captures with a network-* alert {rules_attack_hit} of {rules_attack}; benign captures with one {rules_benign_hit} of {rules_benign}"
    );
    if full.is_some() {
        let g = given.finish();
        println!(
            "given model on every capture (it may have trained on them): precision {:.4} recall {:.4} FPR {:.4}; benign captures with a false positive {given_benign_flagged}",
            g.precision, g.recall, g.fpr
        );
    }
    anomaly_report(&captures, args.anomaly_warmup, args.anomaly_z);
    Ok(ExitCode::SUCCESS)
}

/// The online score: learns the benign captures one after another (as one network),
/// then judges each attack capture from that state; prints what it flagged.
fn anomaly_report(captures: &[LabelledCapture], warmup: u64, z: f32) {
    let settings = AnomalySettings {
        warmup,
        z_threshold: z,
        ..AnomalySettings::default()
    };
    let mut a = OnlineAnomaly::new(settings);
    let (mut benign_flagged, mut benign_judged) = (0usize, 0usize);
    for c in captures
        .iter()
        .filter(|c| c.label.class == Some(FlowClass::Benign))
    {
        for (x, _) in &c.flows {
            let s = a.score(x);
            if let Some(s) = &s {
                benign_judged += 1;
                benign_flagged += usize::from(a.is_anomaly(s));
            }
            if a.may_learn(s.as_ref()) {
                a.learn(x);
            }
        }
    }
    println!();
    println!(
        "online score (warm-up {warmup} flows, z >= {z}): learnt {} benign flows; benign flows judged after the warm-up {benign_judged}, flagged {benign_flagged}",
        a.learnt()
    );
    if !a.warm() {
        println!(
            "  the benign captures hold fewer flows than the warm-up: attack captures are not judged (lower --anomaly-warmup to see them)"
        );
        return;
    }
    for c in captures.iter().filter(|c| c.is_attack()) {
        let mut state = a.clone();
        let (mut attack_hit, mut attack, mut other_hit) = (0usize, 0usize, 0usize);
        for (x, class) in &c.flows {
            let s = state.score(x);
            let flagged = s.as_ref().is_some_and(|s| state.is_anomaly(s));
            if *class != FlowClass::Benign {
                attack += 1;
                attack_hit += usize::from(flagged);
            } else {
                other_hit += usize::from(flagged);
            }
            if state.may_learn(s.as_ref()) {
                state.learn(x);
            }
        }
        println!(
            "  {}: attack flows flagged {attack_hit} of {attack}; background flows flagged {other_hit}",
            c.label.file
        );
    }
}
