//! The flow model and its file: a softmax (multinomial logistic) regression over the
//! standardised [`features`](super::features), four classes (benign, scan, flood,
//! bruteforce), with the metadata the request model has (format and model version,
//! training data digest, feature settings, held-out figures, `is_real`).
//!
//! The file is `PALISADE-FLOW-MODEL\n` + gzip(JSON): the model has 4 × 29 weights, so
//! the readable form costs nothing and a damaged file is caught by the JSON parser and
//! the shape checks, never by a panic.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::features::{DIM, FlowFeatureSettings, NAMES};
use crate::file::{DataFile, ModelError};

/// The flow-model file format this build reads and writes.
pub const FLOW_FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8] = b"PALISADE-FLOW-MODEL\n";

/// Index of the `login_port` feature.
const LOGIN_PORT: usize = 16;

/// Largest decompressed file accepted (a real one is a few KB).
const MAX_BODY: u64 = 4 << 20;

/// What the flow model tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowClass {
    /// Ordinary traffic.
    Benign,
    /// Port scans and host sweeps.
    Scan,
    /// SYN and other floods.
    Flood,
    /// Password guessing on a login service.
    Bruteforce,
}

impl FlowClass {
    /// Every class, in output order.
    pub const ALL: [FlowClass; 4] = [
        FlowClass::Benign,
        FlowClass::Scan,
        FlowClass::Flood,
        FlowClass::Bruteforce,
    ];

    /// The name threats and labels use (the threat category for attack classes).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowClass::Benign => "benign",
            FlowClass::Scan => "scan",
            FlowClass::Flood => "flood",
            FlowClass::Bruteforce => "bruteforce",
        }
    }

    /// The class named `s`.
    pub fn parse(s: &str) -> Option<FlowClass> {
        FlowClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Position in [`FlowClass::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Figures on flows the model did not train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowHeldOut {
    /// How the figures were made (leave-one-capture-out).
    pub description: String,
    /// Flows evaluated.
    pub flows: usize,
    /// Attack flows among them.
    pub attack_flows: usize,
    /// Precision at the threshold.
    pub precision: f64,
    /// Recall at the threshold.
    pub recall: f64,
    /// F1 at the threshold.
    pub f1: f64,
    /// False positive rate at the threshold.
    pub fpr: f64,
    /// ROC-AUC of the attack probability.
    pub roc_auc: f64,
    /// Attack captures with at least one flagged flow, of those held out.
    pub attack_captures_detected: String,
    /// Benign captures with at least one flagged flow, of those held out.
    pub benign_captures_flagged: String,
}

/// What a flow model is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowMetadata {
    /// The file format.
    pub format_version: u32,
    /// `flow-<format>.<seed>-<first 12 hex of the data digest>`.
    pub model_version: String,
    /// SHA-256 over the labels file, the captures' digests and the training settings.
    pub data_digest: String,
    /// The captures trained on (and the labels file).
    pub training_data: Vec<DataFile>,
    /// Model family (`softmax-regression`).
    pub family: String,
    /// The seed training ran with.
    pub seed: u64,
    /// Passes over the data.
    pub epochs: u32,
    /// How window features are made.
    pub features: FlowFeatureSettings,
    /// Feature names, in weight order.
    pub feature_names: Vec<String>,
    /// Classes, in output order.
    pub classes: Vec<String>,
    /// Attack probability (1 − p(benign)) at and above which a flow is flagged.
    pub threshold: f32,
    /// Leave-one-capture-out figures.
    pub held_out: Option<FlowHeldOut>,
    /// Trained on real labelled captures (false only for models built for tests).
    pub is_real: bool,
}

#[derive(Serialize, Deserialize)]
struct FileBody {
    metadata: FlowMetadata,
    mean: Vec<f32>,
    scale: Vec<f32>,
    /// Per class: `DIM` weights then the bias.
    weights: Vec<Vec<f32>>,
}

/// What the model says about one flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowPrediction {
    /// Probability the flow is part of an attack (1 − p(benign)).
    pub probability: f32,
    /// The most likely attack class.
    pub class: FlowClass,
    /// The features that pushed most toward that class: (name, raw value, contribution).
    pub fired: Vec<(&'static str, f32, f32)>,
}

/// A loaded flow model.
#[derive(Debug, Clone)]
pub struct FlowModel {
    /// What the model is.
    pub metadata: FlowMetadata,
    mean: [f32; DIM],
    scale: [f32; DIM],
    weights: [[f32; DIM + 1]; 4],
}

/// Feature values as the model reads them: `ln(1+x)` counts are shown back as counts.
fn shown(i: usize, v: f32) -> f32 {
    let name = NAMES[i];
    if name.ends_with("_share")
        || matches!(
            name,
            "tcp"
                | "udp"
                | "icmp"
                | "arp"
                | "unanswered"
                | "syn_only"
                | "no_syn_ack_flags"
                | "login_port"
        )
        || name.starts_with("state_")
    {
        v
    } else {
        v.exp_m1()
    }
}

impl FlowModel {
    /// A model from trained parameters.
    pub fn new(
        metadata: FlowMetadata,
        mean: [f32; DIM],
        scale: [f32; DIM],
        weights: [[f32; DIM + 1]; 4],
    ) -> FlowModel {
        FlowModel {
            metadata,
            mean,
            scale,
            weights,
        }
    }

    /// The class probabilities of a feature vector.
    pub fn probabilities(&self, x: &[f32; DIM]) -> [f32; 4] {
        let z = self.standardise(x);
        let mut logits = [0.0f32; 4];
        for (k, w) in self.weights.iter().enumerate() {
            let mut s = w[DIM];
            for i in 0..DIM {
                s += w[i] * z[i];
            }
            logits[k] = s;
        }
        softmax(logits)
    }

    fn standardise(&self, x: &[f32; DIM]) -> [f32; DIM] {
        let mut z = [0.0f32; DIM];
        for i in 0..DIM {
            z[i] = (x[i] - self.mean[i]) / self.scale[i];
        }
        z
    }

    /// Scores one flow's features, with the three features that pushed most toward
    /// the attack class named.
    ///
    /// Brute force is only named on a login-service port (`login_port`): a constraint,
    /// not learnt, because the benign captures hold too few repeated connections to an
    /// ordinary service (a client opening 40 HTTP connections at once) to teach the
    /// model that they are not password guessing. Elsewhere its share is dropped from
    /// the attack probability.
    pub fn predict(&self, x: &[f32; DIM]) -> FlowPrediction {
        let mut p = self.probabilities(x);
        if x[LOGIN_PORT] == 0.0 {
            p[FlowClass::Bruteforce.index()] = 0.0;
        }
        let (best, _) =
            p.iter().enumerate().skip(1).fold(
                (1, f32::MIN),
                |a, (k, v)| if *v > a.1 { (k, *v) } else { a },
            );
        let z = self.standardise(x);
        let mut contrib: Vec<(usize, f32)> = (0..DIM)
            .map(|i| (i, (self.weights[best][i] - self.weights[0][i]) * z[i]))
            .filter(|(_, c)| *c > 0.0)
            .collect();
        contrib.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        FlowPrediction {
            probability: p[1..].iter().sum::<f32>().clamp(0.0, 1.0),
            class: FlowClass::ALL[best],
            fired: contrib
                .into_iter()
                .take(3)
                .map(|(i, c)| (NAMES[i], shown(i, x[i]), c))
                .collect(),
        }
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let io = |source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(path, self.to_bytes()?).map_err(io)
    }

    /// The model file's bytes (the same model gives the same bytes).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let body = FileBody {
            metadata: self.metadata.clone(),
            mean: self.mean.to_vec(),
            scale: self.scale.to_vec(),
            weights: self.weights.iter().map(|w| w.to_vec()).collect(),
        };
        let json = serde_json::to_vec(&body).map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let packed = gz
            .write_all(&json)
            .and_then(|_| gz.finish())
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&packed);
        Ok(out)
    }

    /// Reads a flow-model file; any damage is an error, never a panic.
    pub fn load(path: &Path) -> Result<FlowModel, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        FlowModel::from_bytes(&bytes)
    }

    /// Parses a flow-model file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<FlowModel, ModelError> {
        let corrupt = |s: String| ModelError::Corrupt(s);
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("missing the PALISADE-FLOW-MODEL header".into()))?;
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(rest)
            .take(MAX_BODY)
            .read_to_end(&mut json)
            .map_err(|e| corrupt(format!("compressed body: {e}")))?;
        let value: serde_json::Value =
            serde_json::from_slice(&json).map_err(|e| corrupt(format!("body: {e}")))?;
        let found = value
            .pointer("/metadata/format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as u32;
        if found != FLOW_FORMAT_VERSION {
            return Err(ModelError::Version { found });
        }
        let body: FileBody =
            serde_json::from_value(value).map_err(|e| corrupt(format!("body: {e}")))?;
        if !body.metadata.features.valid() {
            return Err(corrupt("feature settings out of range".into()));
        }
        let names: Vec<&str> = body
            .metadata
            .feature_names
            .iter()
            .map(String::as_str)
            .collect();
        if names != NAMES {
            return Err(corrupt("the features differ from this build's".into()));
        }
        let classes: Vec<&str> = body.metadata.classes.iter().map(String::as_str).collect();
        if classes != FlowClass::ALL.map(FlowClass::as_str) {
            return Err(corrupt("the classes differ from this build's".into()));
        }
        let t = body.metadata.threshold;
        if !(t > 0.0 && t < 1.0) {
            return Err(corrupt("threshold out of range".into()));
        }
        let mean: [f32; DIM] = finite(&body.mean)?;
        let scale: [f32; DIM] = finite(&body.scale)?;
        if scale.iter().any(|s| *s <= 0.0) {
            return Err(corrupt("a feature scale is not positive".into()));
        }
        if body.weights.len() != 4 {
            return Err(corrupt("not four classes of weights".into()));
        }
        let mut weights = [[0.0f32; DIM + 1]; 4];
        for (k, w) in body.weights.iter().enumerate() {
            weights[k] = finite(w)?;
        }
        Ok(FlowModel::new(body.metadata, mean, scale, weights))
    }
}

fn finite<const N: usize>(v: &[f32]) -> Result<[f32; N], ModelError> {
    let a: [f32; N] = v
        .try_into()
        .map_err(|_| ModelError::Corrupt(format!("expected {N} values, got {}", v.len())))?;
    if a.iter().any(|x| !x.is_finite()) {
        return Err(ModelError::Corrupt("a weight is not a number".into()));
    }
    Ok(a)
}

/// Softmax of four logits, stable for large ones.
pub fn softmax(logits: [f32; 4]) -> [f32; 4] {
    let m = logits.iter().fold(f32::MIN, |a, b| a.max(*b));
    let mut e = logits.map(|l| (l - m).exp());
    let s: f32 = e.iter().sum();
    for v in &mut e {
        *v /= s;
    }
    e
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A test model that calls anything with many distinct source ports a scan.
    pub(crate) fn toy() -> FlowModel {
        let mut weights = [[0.0f32; DIM + 1]; 4];
        weights[1][19] = 3.0;
        weights[1][DIM] = -6.0;
        weights[2][DIM] = -20.0;
        weights[3][DIM] = -20.0;
        FlowModel::new(
            FlowMetadata {
                format_version: FLOW_FORMAT_VERSION,
                model_version: "flow-test".into(),
                data_digest: "0".into(),
                training_data: vec![],
                family: "softmax-regression".into(),
                seed: 1,
                epochs: 0,
                features: FlowFeatureSettings::default(),
                feature_names: NAMES.iter().map(|s| s.to_string()).collect(),
                classes: FlowClass::ALL
                    .iter()
                    .map(|c| c.as_str().to_string())
                    .collect(),
                threshold: 0.5,
                held_out: None,
                is_real: false,
            },
            [0.0; DIM],
            [1.0; DIM],
            weights,
        )
    }

    #[test]
    fn round_trip_and_predictions() {
        let m = toy();
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes, m.to_bytes().unwrap(), "same model, same bytes");
        let back = FlowModel::from_bytes(&bytes).unwrap();
        assert_eq!(back.metadata, m.metadata);
        let mut x = [0.0f32; DIM];
        x[19] = (300f32).ln_1p();
        let p = back.predict(&x);
        assert_eq!(p.class, FlowClass::Scan);
        assert!(p.probability > 0.99, "{}", p.probability);
        assert_eq!(p.fired[0].0, "src_distinct_ports");
        assert!((p.fired[0].1 - 300.0).abs() < 0.01);
        x[19] = 0.0;
        assert!(back.predict(&x).probability < 0.01);
    }

    #[test]
    fn bruteforce_is_only_named_on_login_ports() {
        let mut m = toy();
        m.weights[3][DIM] = 20.0;
        let mut x = [0.0f32; DIM];
        assert!(m.predict(&x).probability < 0.01, "not on port 80");
        x[LOGIN_PORT] = 1.0;
        let p = m.predict(&x);
        assert_eq!(p.class, FlowClass::Bruteforce);
        assert!(p.probability > 0.99);
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let good = toy().to_bytes().unwrap();
        assert!(FlowModel::from_bytes(b"PALISADE-MODEL\nxx").is_err());
        for cut in [MAGIC.len(), MAGIC.len() + 5, good.len() / 2, good.len() - 1] {
            assert!(FlowModel::from_bytes(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = good.clone();
        for b in flipped.iter_mut().skip(MAGIC.len() + 12).step_by(5) {
            *b ^= 0x33;
        }
        assert!(FlowModel::from_bytes(&flipped).is_err());
        // Valid JSON of the wrong shape.
        let mut m = toy();
        m.metadata.feature_names.pop();
        assert!(FlowModel::from_bytes(&m.to_bytes().unwrap()).is_err());
        let mut m = toy();
        m.metadata.format_version = 9;
        assert!(matches!(
            FlowModel::from_bytes(&m.to_bytes().unwrap()),
            Err(ModelError::Version { found: 9 })
        ));
    }
}
