//! `palisade eval FILE...`: detection quality on labelled request corpora, so rule
//! changes are judged by numbers (TPR, FPR, precision, F1, per rule set and per rule)
//! rather than by a handful of examples.
//!
//! This runs the engine in-process. The same corpora can be sent through the real
//! protecting proxy with `scripts/eval-waf.sh`, beside ModSecurity + OWASP CRS.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet, Verdict};
use serde::Serialize;

use crate::cli::EvalArgs;

/// One labelled request.
pub(crate) struct Sample {
    pub(crate) request: HttpRequest,
    pub(crate) attack: bool,
    /// Optional attack class or benign kind (`"category"` in the corpus), for per-class figures.
    pub(crate) category: Option<String>,
    /// Optional request part the payload sits in (`"part"` in the corpus), for per-part figures.
    pub(crate) part: Option<String>,
}

/// Reads a JSONL corpus (gzip when the name ends in `.gz`).
pub(crate) fn load(path: &Path) -> anyhow::Result<Vec<Sample>> {
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {}: not JSON", path.display(), n + 1))?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
        let attack = match v.get("label").and_then(|l| l.as_str()) {
            Some("attack" | "anomalous") => true,
            Some("normal" | "benign") => false,
            other => anyhow::bail!(
                "{}: line {}: label {other:?} must be \"attack\" or \"normal\"",
                path.display(),
                n + 1
            ),
        };
        let mut headers: Vec<(String, String)> = v
            .get("headers")
            .and_then(|h| h.as_array())
            .map(|pairs| {
                pairs
                    .iter()
                    .filter_map(|p| {
                        let p = p.as_array()?;
                        Some((
                            p.first()?.as_str()?.to_owned(),
                            p.get(1)?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let body = text("body").into_bytes();
        // As every client (and replay.py) does: a body travels with its length, unless
        // the sample frames it itself (`Transfer-Encoding`, body given chunked).
        if !body.is_empty()
            && !headers.iter().any(|(n, _)| {
                n.eq_ignore_ascii_case("content-length")
                    || n.eq_ignore_ascii_case("transfer-encoding")
            })
        {
            headers.push(("Content-Length".to_owned(), body.len().to_string()));
        }
        out.push(Sample {
            request: HttpRequest {
                method: text("method"),
                uri: text("uri"),
                protocol: v
                    .get("version")
                    .and_then(|x| x.as_str())
                    .unwrap_or("HTTP/1.1")
                    .to_owned(),
                headers,
                body,
                client_ip: None,
            },
            attack,
            category: v
                .get("category")
                .and_then(|x| x.as_str())
                .map(str::to_owned),
            part: v.get("part").and_then(|x| x.as_str()).map(str::to_owned),
        });
    }
    Ok(out)
}

/// Confusion counts and the figures derived from them.
#[derive(Debug, Default, Clone, Serialize)]
struct Figures {
    tp: usize,
    fp: usize,
    tn: usize,
    #[serde(rename = "fn")]
    fn_: usize,
    tpr: f64,
    fpr: f64,
    precision: f64,
    f1: f64,
}

impl Figures {
    fn finish(mut self) -> Figures {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.tpr = ratio(self.tp, self.tp + self.fn_);
        self.fpr = ratio(self.fp, self.fp + self.tn);
        self.precision = ratio(self.tp, self.tp + self.fp);
        self.f1 = if self.precision + self.tpr > 0.0 {
            2.0 * self.precision * self.tpr / (self.precision + self.tpr)
        } else {
            0.0
        };
        self
    }
}

/// One rule set's share: attacks it flagged among blocked ones, and false positives.
#[derive(Debug, Default, Clone, Serialize)]
struct RuleSetFigures {
    attacks_detected: usize,
    share_of_attacks: f64,
    false_positives: usize,
}

#[derive(Debug, Serialize)]
struct LevelReport {
    paranoia: u8,
    threshold: u32,
    overall: Figures,
    by_rule_set: BTreeMap<String, RuleSetFigures>,
    false_positives_by_rule: BTreeMap<u32, usize>,
    /// Figures per corpus `category` label (attack class or benign kind).
    by_category: BTreeMap<String, Figures>,
    /// Figures per corpus `part` label (where the payload sits).
    by_part: BTreeMap<String, Figures>,
    /// Detected attacks per request part a finding was in (engine's location names).
    detected_in: BTreeMap<String, usize>,
    microseconds_per_request: f64,
}

/// Counts one outcome into a figures map under `key` (samples without the label are
/// not counted, so unlabelled corpora print no table).
fn count(map: &mut BTreeMap<String, Figures>, key: Option<&String>, attack: bool, blocked: bool) {
    let Some(key) = key else { return };
    let f = map.entry(key.clone()).or_default();
    match (attack, blocked) {
        (true, true) => f.tp += 1,
        (true, false) => f.fn_ += 1,
        (false, true) => f.fp += 1,
        (false, false) => f.tn += 1,
    }
}

fn print_labelled(title: &str, map: &BTreeMap<String, Figures>) {
    if map.is_empty() {
        return;
    }
    println!("    by {title}:");
    for (k, f) in map {
        println!(
            "      {k:<22} attacks {:>5} detected {:>5} (TPR {:.4})   normal {:>5} false positives {:>4} (FPR {:.4})",
            f.tp + f.fn_,
            f.tp,
            f.tpr,
            f.fp + f.tn,
            f.fp,
            f.fpr
        );
    }
}

fn categories(v: &Verdict) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = v.findings.iter().map(|f| f.category.as_str()).collect();
    c.sort_unstable();
    c.dedup();
    c
}

fn evaluate(
    engine: &Engine,
    samples: &[Sample],
    show: usize,
    pl: u8,
    threshold: u32,
    mut verdicts: Option<&mut dyn std::io::Write>,
) -> anyhow::Result<LevelReport> {
    let bar = indicatif::ProgressBar::new(samples.len() as u64);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "PL{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(pl.to_string());
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut overall = Figures::default();
    let mut by_set: BTreeMap<String, RuleSetFigures> = BTreeMap::new();
    let mut fp_rules: BTreeMap<u32, usize> = BTreeMap::new();
    let mut by_category: BTreeMap<String, Figures> = BTreeMap::new();
    let mut by_part: BTreeMap<String, Figures> = BTreeMap::new();
    let mut detected_in: BTreeMap<String, usize> = BTreeMap::new();
    let (mut shown_misses, mut shown_fps) = (0, 0);
    let started = Instant::now();
    for (i, s) in samples.iter().enumerate() {
        let v = engine.inspect(&s.request);
        if let Some(w) = verdicts.as_mut() {
            let rules: Vec<u32> = v.findings.iter().map(|f| f.rule_id).collect();
            let line = serde_json::json!({
                "idx": i, "paranoia": pl, "attack": s.attack, "blocked": v.blocked,
                "score": v.score, "rules": rules,
            });
            writeln!(w, "{line}").context("--verdicts")?;
        }
        count(&mut by_category, s.category.as_ref(), s.attack, v.blocked);
        count(&mut by_part, s.part.as_ref(), s.attack, v.blocked);
        match (s.attack, v.blocked) {
            (true, true) => {
                overall.tp += 1;
                let mut places: Vec<&str> =
                    v.findings.iter().map(|f| f.location.as_str()).collect();
                places.sort_unstable();
                places.dedup();
                for p in places {
                    *detected_in.entry(p.to_owned()).or_default() += 1;
                }
                for c in categories(&v) {
                    by_set.entry(c.to_owned()).or_default().attacks_detected += 1;
                }
            }
            (true, false) => {
                overall.fn_ += 1;
                if shown_misses < show {
                    shown_misses += 1;
                    println!(
                        "  miss (score {}): {} {} {}",
                        v.score,
                        s.request.method,
                        s.request.uri,
                        String::from_utf8_lossy(&s.request.body)
                    );
                }
            }
            (false, true) => {
                overall.fp += 1;
                for c in categories(&v) {
                    by_set.entry(c.to_owned()).or_default().false_positives += 1;
                }
                for f in &v.findings {
                    *fp_rules.entry(f.rule_id).or_default() += 1;
                }
                if shown_fps < show {
                    shown_fps += 1;
                    let why: Vec<String> = v
                        .findings
                        .iter()
                        .map(|f| format!("{} {}={:?}", f.rule_id, f.name_of_part, f.matched))
                        .collect();
                    println!(
                        "  false positive (score {}): {} {} [{}]",
                        v.score,
                        s.request.method,
                        s.request.uri,
                        why.join("; ")
                    );
                }
            }
            (false, false) => overall.tn += 1,
        }
        if i % 1024 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    let attacks = (overall.tp + overall.fn_).max(1) as f64;
    for f in by_set.values_mut() {
        f.share_of_attacks = f.attacks_detected as f64 / attacks;
    }
    Ok(LevelReport {
        paranoia: pl,
        threshold,
        overall: overall.finish(),
        by_rule_set: by_set,
        false_positives_by_rule: fp_rules,
        by_category: by_category
            .into_iter()
            .map(|(k, f)| (k, f.finish()))
            .collect(),
        by_part: by_part.into_iter().map(|(k, f)| (k, f.finish())).collect(),
        detected_in,
        microseconds_per_request: started.elapsed().as_secs_f64() * 1e6
            / samples.len().max(1) as f64,
    })
}

/// Loads the corpora, evaluates every requested paranoia level, prints a table.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let mut samples = Vec::new();
    for f in &args.files {
        samples.extend(load(f)?);
    }
    match args.protocol.as_str() {
        "a" => {}
        "b" => {
            // The normal training side tells payload values from filler.
            let mut normal = Vec::new();
            for f in &args.baselines_train {
                normal.extend(load(f)?.into_iter().filter(|s| !s.attack));
            }
            let reference = (!normal.is_empty())
                .then(|| super::eval_split::Reference::learn(normal.iter().map(|s| &s.request)));
            drop(normal);
            if reference.is_none() {
                println!(
                    "protocol (b) without --baselines-train: attacks sharing any value are kept together (no reference tells payloads from filler)"
                );
            }
            let (train, test, stats) =
                super::eval_split::split(samples, args.seed, reference.as_ref());
            println!(
                "protocol (b), seed {}: {} attacks for training, {} for testing ({} groups of attacks sharing a payload value, the largest {}; {} payload values, none on both sides; {} filler values on both sides)",
                args.seed,
                stats.train_attacks,
                stats.test_attacks,
                stats.groups,
                stats.largest_group,
                stats.payload_values,
                stats.shared_filler
            );
            if let Some(path) = &args.write_train_side {
                let mut text = String::new();
                for s in &train {
                    text.push_str(&super::eval_split::to_json_line(s));
                    text.push('\n');
                }
                std::fs::write(path, text).with_context(|| format!("{}", path.display()))?;
            }
            samples = test;
        }
        other => anyhow::bail!("--protocol: {other:?} is not a or b"),
    }
    let attacks = samples.iter().filter(|s| s.attack).count();
    println!(
        "{} requests: {attacks} attacks, {} normal",
        samples.len(),
        samples.len() - attacks
    );
    let mut rules = RuleSet::load(args.rules_dir.as_deref()).context("loading rules")?;
    let crs = match &args.crs_dir {
        None => None,
        Some(dir) => {
            let program = palisade_detect::seclang::Program::load_dir(dir)
                .with_context(|| format!("--crs-dir {}", dir.display()))?;
            println!("CRS rule files: {}", program.report().summary());
            match args.crs_mode.as_str() {
                "add" => {}
                "replace" => rules = RuleSet::default(),
                other => anyhow::bail!("--crs-mode: {other} is not add or replace"),
            }
            Some(std::sync::Arc::new(program))
        }
    };
    let mut reports = Vec::new();
    let mut verdicts = match &args.verdicts {
        None => None,
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("--verdicts {}", p.display()))?,
        )),
    };
    for &pl in &args.paranoia {
        if !(1..=4).contains(&pl) {
            anyhow::bail!("--paranoia: {pl} is not 1, 2, 3 or 4");
        }
        let engine = Engine::with_crs(
            rules.clone(),
            EngineConfig {
                paranoia: pl,
                threshold: args.threshold,
            },
            crs.clone(),
        );
        let r = evaluate(
            &engine,
            &samples,
            args.show,
            pl,
            args.threshold,
            verdicts.as_mut().map(|w| w as &mut dyn std::io::Write),
        )?;
        let o = &r.overall;
        println!(
            "PL{pl} threshold {}: TPR {:.4}  FPR {:.4}  precision {:.4}  F1 {:.4}  (TP {} FN {} FP {} TN {}, {:.1} µs/request)",
            args.threshold,
            o.tpr,
            o.fpr,
            o.precision,
            o.f1,
            o.tp,
            o.fn_,
            o.fp,
            o.tn,
            r.microseconds_per_request
        );
        for (set, f) in &r.by_rule_set {
            println!(
                "    {set:<9} detects {:>6} attacks ({:.4} of all), {:>4} false positives",
                f.attacks_detected, f.share_of_attacks, f.false_positives
            );
        }
        print_labelled("category", &r.by_category);
        print_labelled("part", &r.by_part);
        if !r.detected_in.is_empty() {
            let places: Vec<String> = r
                .detected_in
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            println!(
                "    detected attacks had findings in: {}",
                places.join(", ")
            );
        }
        reports.push(r);
    }
    let baselines = if args.baselines_train.is_empty() {
        None
    } else {
        let b = palisade_models::Baselines::new(palisade_models::BaselinesConfig {
            warmup: args.baseline_warmup,
            ..Default::default()
        });
        let mut learnt = 0;
        for f in &args.baselines_train {
            if args.files.contains(f) {
                anyhow::bail!(
                    "--baselines-train {}: baselines are never evaluated on their training data",
                    f.display()
                );
            }
            for s in load(f)?.iter().filter(|s| !s.attack) {
                b.train(&s.request, None);
                learnt += 1;
            }
        }
        Some((b, learnt))
    };
    if let Some(w) = verdicts.as_mut() {
        w.flush().context("--verdicts")?;
    }
    if args.model.is_some() || baselines.is_some() {
        let pl = args.paranoia.first().copied().unwrap_or(1);
        let engine = Engine::new(
            rules.clone(),
            EngineConfig {
                paranoia: pl,
                threshold: args.threshold,
            },
        );
        super::eval_model::run(
            &engine,
            super::eval_model::Parts {
                model: args.model.as_deref(),
                baselines: baselines.as_ref().map(|(b, n)| (b, *n)),
                block_probability: args.block_probability,
                model_weight: args.model_weight,
                show: args.show,
            },
            &samples,
            args.json.as_deref(),
        )?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
