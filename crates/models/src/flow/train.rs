//! Labelled flows from captures, training, and leave-one-capture-out evaluation.
//!
//! **Labels.** A labels file names captures and what they hold, one per line:
//! `FILE CLASS WHO`, where CLASS is `benign`, `scan`, `flood`, `bruteforce` or
//! `excluded`, and WHO says which flows of an attack capture carry the class:
//! `src=ADDRESS` (flows the attacker originated; the capture's other flows are
//! benign background) or `all` (every flow, for floods from spoofed addresses).
//! Benign and excluded captures take `-`. `#` starts a comment. FILE is relative to
//! the data directory given beside the labels.
//!
//! **Evaluation.** With so few captures (tens, each one attack or one recording), a
//! random split of flows would put flows of the same scan on both sides and measure
//! nothing; [`leave_one_capture_out`] trains on every capture but one and judges the
//! one left out, for each capture in turn, so no capture is ever both train and test.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::features::{DIM, FlowFeatureSettings, NAMES, Windows};
use super::model::{FLOW_FORMAT_VERSION, FlowClass, FlowHeldOut, FlowMetadata, FlowModel};
use crate::file::{DataFile, ModelError};
use crate::metrics::{Confusion, roc_auc};
use crate::rng::Rng;

/// Why flow training or evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum FlowTrainError {
    /// A labels line is wrong.
    #[error("labels line {line}: {reason}")]
    Labels {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        reason: String,
    },
    /// Nothing to train on.
    #[error("no labelled flows of {0}")]
    Empty(&'static str),
    /// The model could not be written.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Which flows of a capture carry its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Flows originated by this address.
    Source(IpAddr),
    /// Every flow.
    All,
    /// None (benign or excluded captures).
    Nobody,
}

/// One labelled capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureLabel {
    /// Path relative to the data directory.
    pub file: String,
    /// Its class; `None` for excluded captures.
    pub class: Option<FlowClass>,
    /// Which flows carry the class.
    pub who: Who,
}

/// Parses a labels file.
pub fn parse_labels(text: &str) -> Result<Vec<CaptureLabel>, FlowTrainError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| FlowTrainError::Labels {
            line: n + 1,
            reason,
        };
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (file, class, who) = match parts.as_slice() {
            [f, c, w] => (*f, *c, *w),
            _ => {
                return Err(bad(format!(
                    "expected FILE CLASS WHO, got {} fields",
                    parts.len()
                )));
            }
        };
        let class = match class {
            "excluded" => None,
            c => Some(FlowClass::parse(c).ok_or_else(|| {
                bad(format!(
                    "class `{c}` is not benign, scan, flood, bruteforce or excluded"
                ))
            })?),
        };
        let who = match who {
            "-" => Who::Nobody,
            "all" => Who::All,
            w => match w.strip_prefix("src=").map(str::parse::<IpAddr>) {
                Some(Ok(ip)) => Who::Source(ip),
                _ => return Err(bad(format!("WHO `{w}` is not src=ADDRESS, all or -"))),
            },
        };
        let attack = matches!(class, Some(c) if c != FlowClass::Benign);
        if attack == (who == Who::Nobody) {
            return Err(bad(
                "an attack capture needs src=ADDRESS or all; benign and excluded ones take -"
                    .into(),
            ));
        }
        out.push(CaptureLabel {
            file: file.to_string(),
            class,
            who,
        });
    }
    Ok(out)
}

/// One capture's flows, featurised and labelled.
#[derive(Debug, Clone)]
pub struct LabelledCapture {
    /// The label line.
    pub label: CaptureLabel,
    /// SHA-256 of the capture's bytes.
    pub sha256: String,
    /// Features and label of each flow, in flow-start order.
    pub flows: Vec<([f32; DIM], FlowClass)>,
}

impl LabelledCapture {
    /// Whether the capture holds an attack the model is meant to find.
    pub fn is_attack(&self) -> bool {
        matches!(self.label.class, Some(c) if c != FlowClass::Benign)
    }
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The flows of a capture file in flow-start order (the default flow table settings,
/// no device inventory).
pub fn capture_flows(path: &Path) -> Result<Vec<palisade_flows::FlowRecord>, FlowTrainError> {
    let config = palisade_flows::FlowConfig {
        devices: false,
        ..Default::default()
    };
    let mut flows = Vec::new();
    palisade_flows::read_capture(path, config, |batch| flows.extend(batch)).map_err(|e| {
        FlowTrainError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    flows.sort_by_key(|f| f.start_us);
    Ok(flows)
}

/// Reads and featurises every labelled capture under `dir`.
pub fn load_captures(
    labels: &[CaptureLabel],
    dir: &Path,
    settings: FlowFeatureSettings,
) -> Result<Vec<LabelledCapture>, FlowTrainError> {
    let mut out = Vec::with_capacity(labels.len());
    for label in labels {
        let path: PathBuf = dir.join(&label.file);
        let bytes = std::fs::read(&path).map_err(|e| FlowTrainError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut windows = Windows::new(settings);
        let flows = capture_flows(&path)?
            .iter()
            .map(|f| {
                let x = windows.features(f);
                let class = match (&label.class, &label.who) {
                    (Some(c), Who::All) => *c,
                    (Some(c), Who::Source(ip)) if f.src_ip == *ip => *c,
                    _ => FlowClass::Benign,
                };
                (x, class)
            })
            .collect();
        out.push(LabelledCapture {
            label: label.clone(),
            sha256: sha256_hex(&bytes),
            flows,
        });
    }
    Ok(out)
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowTrainSettings {
    /// Shuffle seed.
    pub seed: u64,
    /// Passes over the flows.
    pub epochs: u32,
    /// AdaGrad step.
    pub step: f32,
    /// L2 penalty per step.
    pub l2: f32,
    /// Attack probability at and above which a flow is flagged.
    pub threshold: f32,
    /// Window feature settings.
    pub features: FlowFeatureSettings,
}

impl Default for FlowTrainSettings {
    fn default() -> Self {
        FlowTrainSettings {
            seed: 1,
            epochs: 20,
            step: 0.2,
            l2: 1e-4,
            threshold: 0.5,
            features: FlowFeatureSettings::default(),
        }
    }
}

/// Trained parameters: feature means, feature scales, per-class weights (+ bias).
pub type Fitted = ([f32; DIM], [f32; DIM], [[f32; DIM + 1]; 4]);

/// Trains the softmax regression on the flows of `captures` (excluded ones skipped):
/// features standardised by the training flows' mean and deviation, classes weighted
/// to balance, AdaGrad over shuffled flows (deterministic for the seed).
pub fn fit(captures: &[&LabelledCapture], s: &FlowTrainSettings) -> Result<Fitted, FlowTrainError> {
    let rows: Vec<&([f32; DIM], FlowClass)> = captures
        .iter()
        .filter(|c| c.label.class.is_some())
        .flat_map(|c| c.flows.iter())
        .collect();
    if rows.is_empty() {
        return Err(FlowTrainError::Empty("any class"));
    }
    let n = rows.len() as f64;
    let mut mean = [0.0f32; DIM];
    let mut scale = [1.0f32; DIM];
    for i in 0..DIM {
        let m = rows.iter().map(|r| f64::from(r.0[i])).sum::<f64>() / n;
        let v = rows
            .iter()
            .map(|r| (f64::from(r.0[i]) - m).powi(2))
            .sum::<f64>()
            / n;
        mean[i] = m as f32;
        scale[i] = (v.sqrt() as f32).max(1e-3);
    }
    let mut counts = [0usize; 4];
    for r in &rows {
        counts[r.1.index()] += 1;
    }
    let present = counts.iter().filter(|c| **c > 0).count().max(1) as f32;
    let weight = counts.map(|c| {
        if c == 0 {
            0.0
        } else {
            rows.len() as f32 / (present * c as f32)
        }
    });
    let mut w = [[0.0f32; DIM + 1]; 4];
    let mut g2 = [[1e-6f32; DIM + 1]; 4];
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut rng = Rng::new(s.seed);
    for _ in 0..s.epochs {
        rng.shuffle(&mut order);
        for &r in &order {
            let (x, class) = rows[r];
            let mut z = [0.0f32; DIM + 1];
            for i in 0..DIM {
                z[i] = (x[i] - mean[i]) / scale[i];
            }
            z[DIM] = 1.0;
            let mut logits = [0.0f32; 4];
            for k in 0..4 {
                logits[k] = (0..=DIM).map(|i| w[k][i] * z[i]).sum();
            }
            let p = super::model::softmax(logits);
            let sw = weight[class.index()];
            for k in 0..4 {
                let err = (p[k] - f32::from(u8::from(k == class.index()))) * sw;
                for i in 0..=DIM {
                    let g = err * z[i] + s.l2 * w[k][i];
                    g2[k][i] += g * g;
                    w[k][i] -= s.step * g / g2[k][i].sqrt();
                }
            }
        }
    }
    Ok((mean, scale, w))
}

/// The model's metadata for `captures` and settings (without held-out figures).
pub fn metadata(
    captures: &[LabelledCapture],
    labels_file: Option<DataFile>,
    s: &FlowTrainSettings,
    is_real: bool,
) -> FlowMetadata {
    let mut training_data: Vec<DataFile> = labels_file.into_iter().collect();
    training_data.extend(captures.iter().map(|c| DataFile {
        name: c.label.file.clone(),
        sha256: c.sha256.clone(),
        rows: c.flows.len(),
    }));
    let mut h = Sha256::new();
    for d in &training_data {
        h.update(d.name.as_bytes());
        h.update(b"\0");
        h.update(d.sha256.as_bytes());
        h.update(b"\n");
    }
    h.update(
        format!(
            "epochs={} step={} l2={} window={:?}",
            s.epochs, s.step, s.l2, s.features
        )
        .as_bytes(),
    );
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    FlowMetadata {
        format_version: FLOW_FORMAT_VERSION,
        model_version: format!("flow-{FLOW_FORMAT_VERSION}.{}-{}", s.seed, &digest[..12]),
        data_digest: digest,
        training_data,
        family: "softmax-regression".into(),
        seed: s.seed,
        epochs: s.epochs,
        features: s.features,
        feature_names: NAMES.iter().map(|n| n.to_string()).collect(),
        classes: FlowClass::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        threshold: s.threshold,
        held_out: None,
        is_real,
    }
}

/// What the model said about one capture when it was left out of training.
#[derive(Debug, Clone)]
pub struct CaptureResult {
    /// The capture's label line.
    pub label: CaptureLabel,
    /// Flows, attack flows, and the confusion at the threshold.
    pub confusion: Confusion,
    /// Flagged flows by the class the model named.
    pub flagged_by_class: [usize; 4],
    /// Flagged attack flows whose class the model named right.
    pub class_right: usize,
    /// (attack probability, is attack) of every flow.
    pub scores: Vec<(f64, bool)>,
}

/// Leave-one-capture-out: for each capture that is not excluded, a model trained on
/// all the others judges it.
pub fn leave_one_capture_out(
    captures: &[LabelledCapture],
    s: &FlowTrainSettings,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<CaptureResult>, FlowTrainError> {
    let judged: Vec<usize> = (0..captures.len())
        .filter(|&i| captures[i].label.class.is_some())
        .collect();
    let mut out = Vec::with_capacity(judged.len());
    for (done, &i) in judged.iter().enumerate() {
        progress(done, judged.len());
        let train: Vec<&LabelledCapture> = captures
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, c)| c)
            .collect();
        let (mean, scale, w) = fit(&train, s)?;
        let model = FlowModel::new(metadata(&[], None, s, false), mean, scale, w);
        out.push(judge(&model, &captures[i], s.threshold));
    }
    progress(judged.len(), judged.len());
    Ok(out)
}

/// Judges every flow of one capture with `model`.
pub fn judge(model: &FlowModel, c: &LabelledCapture, threshold: f32) -> CaptureResult {
    let mut confusion = Confusion::default();
    let mut flagged_by_class = [0usize; 4];
    let mut class_right = 0;
    let mut scores = Vec::with_capacity(c.flows.len());
    for (x, class) in &c.flows {
        let p = model.predict(x);
        let attack = *class != FlowClass::Benign;
        let flagged = p.probability >= threshold;
        confusion.add(attack, flagged);
        if flagged {
            flagged_by_class[p.class.index()] += 1;
            if p.class == *class {
                class_right += 1;
            }
        }
        scores.push((f64::from(p.probability), attack));
    }
    CaptureResult {
        label: c.label.clone(),
        confusion: confusion.finish(),
        flagged_by_class,
        class_right,
        scores,
    }
}

/// The pooled figures of leave-one-capture-out results.
pub fn pooled(results: &[CaptureResult]) -> FlowHeldOut {
    let mut c = Confusion::default();
    let mut scores = Vec::new();
    let (mut attack_caps, mut attack_hit, mut benign_caps, mut benign_hit) = (0, 0, 0, 0);
    for r in results {
        c.tp += r.confusion.tp;
        c.fp += r.confusion.fp;
        c.tn += r.confusion.tn;
        c.fn_ += r.confusion.fn_;
        scores.extend_from_slice(&r.scores);
        let flagged = r.confusion.tp + r.confusion.fp > 0;
        if matches!(r.label.class, Some(k) if k != FlowClass::Benign) {
            attack_caps += 1;
            attack_hit += usize::from(r.confusion.tp > 0);
        } else {
            benign_caps += 1;
            benign_hit += usize::from(flagged);
        }
    }
    let c = c.finish();
    FlowHeldOut {
        description: "leave-one-capture-out over the labelled captures (each judged by a model trained on all the others)".into(),
        flows: c.tp + c.fp + c.tn + c.fn_,
        attack_flows: c.tp + c.fn_,
        precision: c.precision,
        recall: c.recall,
        f1: c.f1,
        fpr: c.fpr,
        roc_auc: roc_auc(&scores),
        attack_captures_detected: format!("{attack_hit} of {attack_caps}"),
        benign_captures_flagged: format!("{benign_hit} of {benign_caps}"),
    }
}

/// Trains the final model on every labelled capture, with leave-one-capture-out
/// figures as its held-out metadata.
pub fn train_model(
    captures: &[LabelledCapture],
    labels_file: DataFile,
    s: &FlowTrainSettings,
    progress: impl FnMut(usize, usize),
) -> Result<(FlowModel, Vec<CaptureResult>), FlowTrainError> {
    if !captures.iter().any(LabelledCapture::is_attack) {
        return Err(FlowTrainError::Empty("an attack class"));
    }
    let results = leave_one_capture_out(captures, s, progress)?;
    let all: Vec<&LabelledCapture> = captures.iter().collect();
    let (mean, scale, w) = fit(&all, s)?;
    let mut meta = metadata(captures, Some(labels_file), s, true);
    meta.held_out = Some(pooled(&results));
    Ok((FlowModel::new(meta, mean, scale, w), results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::features::tests::flow;
    use palisade_flows::flow::tcp_flags;

    #[test]
    fn labels_parse_and_bad_lines_are_named() {
        let l = parse_labels(
            "# comment\nscan/a.pcap scan src=10.0.0.9  # the scanner\nflood/b.pcap flood all\nhttp/c.pcap benign -\ndns/d.pcap excluded -\n",
        )
        .unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].who, Who::Source("10.0.0.9".parse().unwrap()));
        assert_eq!(l[1].class, Some(FlowClass::Flood));
        assert_eq!(l[3].class, None);
        for (bad, needle) in [
            ("x.pcap scan -", "needs src"),
            ("x.pcap benign all", "needs src"),
            ("x.pcap worm -", "worm"),
            ("x.pcap scan src=nope", "nope"),
            ("x.pcap scan", "got 2 fields"),
        ] {
            let e = parse_labels(&format!("\n{bad}")).unwrap_err().to_string();
            assert!(e.contains("line 2") && e.contains(needle), "{e}");
        }
    }

    /// A scan capture and a benign one made by hand.
    fn captures() -> Vec<LabelledCapture> {
        let mut scan = Windows::new(FlowFeatureSettings::default());
        let scan_flows = (1..=200u16)
            .map(|p| {
                let f = flow(
                    f64::from(p) * 0.005,
                    "10.0.0.9",
                    "10.0.0.1",
                    p,
                    "REJ",
                    (1, 0, tcp_flags::SYN),
                    (1, 0),
                );
                (scan.features(&f), FlowClass::Scan)
            })
            .collect();
        let mut benign = Windows::new(FlowFeatureSettings::default());
        let benign_flows = (0..200u32)
            .map(|i| {
                let f = flow(
                    f64::from(i) * 3.0,
                    &format!("10.0.1.{}", i % 50),
                    "10.0.0.1",
                    443,
                    "SF",
                    (
                        12,
                        900 + u64::from(i),
                        tcp_flags::SYN | tcp_flags::ACK | tcp_flags::FIN,
                    ),
                    (10, 20_000),
                );
                (benign.features(&f), FlowClass::Benign)
            })
            .collect();
        let label = |file: &str, class, who| CaptureLabel {
            file: file.into(),
            class: Some(class),
            who,
        };
        vec![
            LabelledCapture {
                label: label(
                    "scan",
                    FlowClass::Scan,
                    Who::Source("10.0.0.9".parse().unwrap()),
                ),
                sha256: "a".into(),
                flows: scan_flows,
            },
            LabelledCapture {
                label: label("benign", FlowClass::Benign, Who::Nobody),
                sha256: "b".into(),
                flows: benign_flows,
            },
        ]
    }

    #[test]
    fn training_is_deterministic_for_a_seed_and_separates_the_classes() {
        let caps = captures();
        let refs: Vec<&LabelledCapture> = caps.iter().collect();
        let s = FlowTrainSettings::default();
        let a = fit(&refs, &s).unwrap();
        let b = fit(&refs, &s).unwrap();
        assert_eq!(a, b, "same data and seed, same weights");
        let c = fit(&refs, &FlowTrainSettings { seed: 2, ..s }).unwrap();
        assert_ne!(a.2, c.2, "another seed shuffles differently");
        let model = FlowModel::new(metadata(&caps, None, &s, false), a.0, a.1, a.2);
        let r = judge(&model, &caps[0], 0.5);
        assert!(r.confusion.recall > 0.9, "{:?}", r.confusion);
        assert_eq!(r.class_right, r.confusion.tp);
        let r = judge(&model, &caps[1], 0.5);
        assert_eq!(r.confusion.fp, 0);
        // The same captures and settings give the same file, byte for byte.
        let m2 = FlowModel::new(metadata(&caps, None, &s, false), b.0, b.1, b.2);
        assert_eq!(model.to_bytes().unwrap(), m2.to_bytes().unwrap());
    }

    #[test]
    fn leave_one_capture_out_never_trains_on_the_judged_capture() {
        let caps = captures();
        // With one class per capture, the left-out scan capture leaves a training set
        // without scans: the model cannot name it, which is what the protocol must show.
        let r = leave_one_capture_out(&caps, &FlowTrainSettings::default(), |_, _| {}).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].confusion.tp, 0, "{:?}", r[0].confusion);
    }
}
