//! The model file: a versioned, compact, quantised container for both heads and the
//! metadata that says what the model is (health, `palisade models list`).
//!
//! Layout: the magic line `PALISADE-MODEL\n`, then a gzip stream holding a `u32` LE
//! metadata length, the metadata as JSON, and each head's non-zero weights as
//! `u32` count followed by `(u32 index, i16 quantised weight)` pairs (LE); a head's
//! weights are `q * scale` with the scale in the metadata. Quantising to 16 bits and
//! dropping zeros keeps the committed default model small without measurable loss.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::Path;

use palisade_detect::HttpRequest;
use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::features::{FeatureSettings, Featurizer, Grams};
use crate::linear::{JointRows, LogisticHead, SoftmaxHead};

/// The file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8] = b"PALISADE-MODEL\n";

/// Most metadata bytes a file may declare (refuses absurd headers before allocating).
const MAX_METADATA: usize = 1 << 20;

/// Why a model file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a model file, or is damaged.
    #[error("not a valid model file: {0}")]
    Corrupt(String),
    /// The file is a model of a format this build does not read.
    #[error("model format {found} is not supported (this build reads {FORMAT_VERSION})")]
    Version {
        /// The format the file declares.
        found: u32,
    },
}

/// One file of the training data, identified by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// The name given on the command line (file name only).
    pub name: String,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// Requests read from it.
    pub rows: usize,
}

/// Detection figures on held-out data at the model's operating threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// What the held-out data was.
    pub description: String,
    /// Requests evaluated.
    pub requests: usize,
    /// Precision.
    pub precision: f64,
    /// Recall (true positive rate).
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// False positive rate.
    pub fpr: f64,
    /// Area under the ROC curve.
    pub roc_auc: f64,
    /// Share of attacks whose category the classifier named right.
    pub category_accuracy: f64,
}

/// What a model is: shown in health, the API and `palisade models list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The file format.
    pub format_version: u32,
    /// The model's version: `http-<format>.<seed>-<first 12 hex of the data digest>`.
    pub model_version: String,
    /// SHA-256 over the training files' digests and the generated-data settings.
    pub data_digest: String,
    /// The training files.
    pub training_data: Vec<DataFile>,
    /// Generated attack examples added (0 when none).
    pub generated_attacks: usize,
    /// Generated ordinary-traffic examples added (0 when none).
    pub generated_normal: usize,
    /// The seed training ran with.
    pub seed: u64,
    /// Passes over the data.
    pub epochs: u32,
    /// How features are made.
    pub features: FeatureSettings,
    /// The classifier's classes, in output order.
    pub classes: Vec<String>,
    /// The probability at and above which the detector calls a request an attack.
    pub threshold: f32,
    /// Figures on data held out of training.
    pub held_out: Option<HeldOut>,
    /// Trained on real labelled traffic (not a placeholder): false only for models
    /// built for tests.
    pub is_real: bool,
    /// Scale of the threat head's quantised weights.
    pub threat_scale: f32,
    /// Scale of the classifier's quantised weights.
    pub class_scale: f32,
    /// The operating point `palisade train --calibrate` chose on validation data held
    /// out of the training traffic, with its figures there; absent in files written
    /// without calibration (and in every file before it existed, which still load).
    /// Not written when absent, so an uncalibrated model's file is byte for byte what
    /// it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_point: Option<crate::opoint::OperatingPoint>,
}

/// What the model says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// Probability the request is an attack.
    pub probability: f32,
    /// The most likely attack family.
    pub category: Category,
    /// The classifier's probability for that family.
    pub category_probability: f32,
}

/// A loaded model: both heads and their metadata.
#[derive(Debug, Clone)]
pub struct Model {
    /// What the model is.
    pub metadata: Metadata,
    featurizer: Featurizer,
    threat: LogisticHead,
    classifier: SoftmaxHead,
    /// Both heads' weights by feature, for [`Model::predict`] (see [`JointRows`]).
    joint: Option<JointRows>,
}

impl Model {
    /// A model from trained heads.
    pub fn new(metadata: Metadata, threat: LogisticHead, classifier: SoftmaxHead) -> Model {
        Model {
            featurizer: Featurizer::new(metadata.features),
            metadata,
            joint: JointRows::new(&threat, &classifier),
            threat,
            classifier,
        }
    }

    /// Scores one request.
    pub fn predict(&self, request: &HttpRequest) -> Prediction {
        self.predict_from(request, &palisade_detect::parse(request, 1))
    }

    /// [`Model::predict`] from the request's parts when the signature engine already
    /// parsed it at paranoia 1 or 2 (`Engine::inspect_parsed`): the same prediction
    /// without a second parse.
    pub fn predict_parsed(
        &self,
        request: &HttpRequest,
        parsed: Option<&palisade_detect::ParsedRequest>,
    ) -> Prediction {
        match parsed {
            Some(parsed) => self.predict_from(request, parsed),
            None => self.predict(request),
        }
    }

    /// Both heads over the request's n-gram codes, made into this thread's reused
    /// buffer: no allocation per request once the buffer has grown to the requests
    /// seen. The heads take the features in the order and with the values
    /// [`Featurizer::features_parsed`] gives them, so the result is bit for bit that of
    /// the heads over the feature vector (`tests/predictions.rs` pins it).
    fn predict_from(
        &self,
        request: &HttpRequest,
        parsed: &palisade_detect::ParsedRequest,
    ) -> Prediction {
        CODES.with(|cell| match cell.try_borrow_mut() {
            Ok(mut codes) => {
                let grams = self.featurizer.grams(request, parsed, &mut codes);
                let prediction = self.predict_grams(&grams, &codes);
                if codes.capacity() > MAX_KEPT_CODES {
                    *codes = Vec::new();
                }
                prediction
            }
            // Only if a head called back into the model on this thread: a buffer of
            // its own.
            Err(_) => {
                let mut codes = Vec::new();
                let grams = self.featurizer.grams(request, parsed, &mut codes);
                self.predict_grams(&grams, &codes)
            }
        })
    }

    fn predict_grams(&self, grams: &Grams, codes: &[u32]) -> Prediction {
        if let Some(joint) = &self.joint {
            let (probability, classes) = joint.predict(grams, codes);
            return best(probability, &classes);
        }
        let (probability, classes) =
            crate::linear::predict_grams(&self.threat, &self.classifier, grams, codes);
        match classes {
            Some(classes) => best(probability, &classes),
            None => best(
                probability,
                &self.classifier.predict(&grams.iter(codes).collect()),
            ),
        }
    }

    /// The threat detector's probability alone (cheaper than [`Model::predict`]).
    pub fn probability(&self, request: &HttpRequest) -> f32 {
        self.threat.predict(&self.featurizer.features(request))
    }
}

thread_local! {
    /// Each thread's n-gram codes buffer for [`Model::predict`].
    static CODES: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Largest buffer kept for the next request (1 MiB of codes); a huge request's buffer
/// is dropped after it rather than held for the thread's life.
const MAX_KEPT_CODES: usize = 1 << 18;

/// The prediction from the threat probability and the class probabilities: the most
/// probable class (the first on ties; `other` if none is above `f32::MIN`).
fn best(probability: f32, classes: &[f32]) -> Prediction {
    let (best, p) = classes
        .iter()
        .copied()
        .enumerate()
        .fold((8, f32::MIN), |a, b| if b.1 > a.1 { b } else { a });
    Prediction {
        probability,
        category: Category::from_index(best),
        category_probability: p.max(0.0),
    }
}

impl Model {
    /// Writes the model to `path` (quantising the weights).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let io = |source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut meta = self.metadata.clone();
        let (threat, ts) = quantise(&self.threat.weights);
        let (class, cs) = quantise(&self.classifier.weights);
        meta.threat_scale = ts;
        meta.class_scale = cs;
        let json = serde_json::to_vec(&meta).map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let mut out = MAGIC.to_vec();
        let mut gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::best());
        let mut body = Vec::with_capacity(json.len() + 6 * (threat.len() + class.len()) + 12);
        body.extend_from_slice(&(json.len() as u32).to_le_bytes());
        body.extend_from_slice(&json);
        for head in [&threat, &class] {
            body.extend_from_slice(&(head.len() as u32).to_le_bytes());
            for (i, q) in head {
                body.extend_from_slice(&i.to_le_bytes());
                body.extend_from_slice(&q.to_le_bytes());
            }
        }
        gz.write_all(&body).map_err(io)?;
        gz.finish().map_err(io)?;
        std::fs::write(path, out).map_err(io)
    }

    /// Reads a model file; any damage is an error, never a panic.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Model::from_bytes(&bytes)
    }

    /// Parses a model file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let corrupt = |s: &str| ModelError::Corrupt(s.to_owned());
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("missing the PALISADE-MODEL header"))?;
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(rest)
            .take(256 << 20)
            .read_to_end(&mut body)
            .map_err(|e| ModelError::Corrupt(format!("compressed body: {e}")))?;
        let mut r = Reader { buf: &body, at: 0 };
        let len = r.u32()? as usize;
        if len > MAX_METADATA {
            return Err(corrupt("metadata too large"));
        }
        let meta_bytes = r.take(len)?;
        let version: serde_json::Value = serde_json::from_slice(meta_bytes)
            .map_err(|e| ModelError::Corrupt(format!("metadata: {e}")))?;
        let found = version
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as u32;
        if found != FORMAT_VERSION {
            return Err(ModelError::Version { found });
        }
        let metadata: Metadata = serde_json::from_value(version)
            .map_err(|e| ModelError::Corrupt(format!("metadata: {e}")))?;
        if !metadata.features.valid() {
            return Err(corrupt("feature settings out of range"));
        }
        if metadata.classes.len() != Category::ALL.len() {
            return Err(corrupt("the classifier's classes differ from this build's"));
        }
        let dim = metadata.features.dimension();
        let k = metadata.classes.len();
        let threat = r.head(dim, metadata.threat_scale)?;
        let class = r.head(dim * k, metadata.class_scale)?;
        if r.at != body.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Model::new(
            metadata,
            LogisticHead::from_weights(threat),
            SoftmaxHead::from_weights(class, k),
        ))
    }
}

fn quantise(w: &[f32]) -> (Vec<(u32, i16)>, f32) {
    let max = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (Vec::new(), 1.0);
    }
    let scale = max / f32::from(i16::MAX);
    let q = w
        .iter()
        .enumerate()
        .filter_map(|(i, x)| {
            let q = (x / scale).round() as i16;
            (q != 0).then_some((i as u32, q))
        })
        .collect();
    (q, scale)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|end| self.buf.get(self.at..end))
            .ok_or_else(|| ModelError::Corrupt("truncated".into()))?;
        self.at += n;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn head(&mut self, dim: usize, scale: f32) -> Result<Vec<f32>, ModelError> {
        if !scale.is_finite() || scale <= 0.0 {
            return Err(ModelError::Corrupt("bad weight scale".into()));
        }
        let n = self.u32()? as usize;
        if n > dim {
            return Err(ModelError::Corrupt("more weights than features".into()));
        }
        let mut w = vec![0.0f32; dim];
        for _ in 0..n {
            let b = self.take(6)?;
            let i = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            let q = i16::from_le_bytes([b[4], b[5]]);
            let slot = w
                .get_mut(i)
                .ok_or_else(|| ModelError::Corrupt("weight index out of range".into()))?;
            *slot = f32::from(q) * scale;
        }
        Ok(w)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small model with a few non-zero weights, for tests elsewhere.
    pub(crate) fn toy() -> Model {
        let features = FeatureSettings {
            buckets_log2: 10,
            ..Default::default()
        };
        let dim = features.dimension();
        let mut t = vec![0.0; dim];
        t[3] = 0.5;
        t[dim - 1] = -1.25;
        let mut c = vec![0.0; dim * 9];
        c[10] = 2.0;
        let meta = Metadata {
            format_version: FORMAT_VERSION,
            model_version: "test".into(),
            data_digest: "0".into(),
            training_data: vec![],
            generated_attacks: 0,
            generated_normal: 0,
            seed: 1,
            epochs: 1,
            features,
            classes: Category::ALL
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            threshold: 0.5,
            held_out: None,
            is_real: false,
            threat_scale: 0.0,
            class_scale: 0.0,
            operating_point: None,
        };
        Model::new(
            meta,
            LogisticHead::from_weights(t),
            SoftmaxHead::from_weights(c, 9),
        )
    }

    #[test]
    fn both_heads_by_rows_predict_what_the_heads_apart_predict() {
        let Ok(builtin) = Model::from_bytes(crate::slot::BUILTIN) else {
            panic!("the built-in model loads");
        };
        let mut rng = crate::rng::Rng::new(5);
        let requests: Vec<HttpRequest> = crate::generate::corpus(&[], 150, 150, 9)
            .into_iter()
            .map(|g| g.request)
            .chain((0..50).map(|_| crate::generate::ordinary(&mut rng)))
            .collect();
        for mut m in [builtin, toy()] {
            assert!(m.joint.is_some());
            let joint: Vec<Prediction> = requests.iter().map(|r| m.predict(r)).collect();
            m.joint = None;
            for (r, p) in requests.iter().zip(joint) {
                let q = m.predict(r);
                let bits = |p: &Prediction| {
                    (
                        p.probability.to_bits(),
                        p.category,
                        p.category_probability.to_bits(),
                    )
                };
                assert_eq!(bits(&p), bits(&q), "{}", r.uri);
                // And both are the heads over the feature vector.
                let x = m.featurizer.features(r);
                assert_eq!(m.threat.predict(&x).to_bits(), q.probability.to_bits());
            }
        }
    }

    #[test]
    fn save_and_load_round_trip_within_quantisation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        let m = toy();
        m.save(&path).unwrap();
        let back = Model::load(&path).unwrap();
        assert_eq!(back.metadata.model_version, "test");
        assert!((back.threat.weights[3] - 0.5).abs() < 1e-4);
        assert!((back.threat.weights[m.metadata.features.dimension() - 1] + 1.25).abs() < 1e-4);
        assert!((back.classifier.weights[10] - 2.0).abs() < 1e-4);
        let r = HttpRequest {
            method: "GET".into(),
            uri: "/x?a=b".into(),
            ..Default::default()
        };
        assert!((back.predict(&r).probability - m.predict(&r).probability).abs() < 1e-3);
    }

    #[test]
    fn the_operating_point_round_trips_and_files_without_one_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        toy().save(&plain).unwrap();
        let back = Model::load(&plain).unwrap();
        assert_eq!(back.metadata.operating_point, None);
        // Absent, it is not written: an uncalibrated file is what it was before.
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(&std::fs::read(&plain).unwrap()[MAGIC.len()..])
            .read_to_end(&mut body)
            .unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("operating_point"));
        // The committed default model predates the field and loads.
        let builtin = Model::from_bytes(crate::slot::BUILTIN).unwrap();
        assert_eq!(builtin.metadata.operating_point, None);
        let mut m = toy();
        let mut op = crate::opoint::tests::point(crate::fusion::Graded {
            from_probability: 0.7,
            points_per_logit: 2.0,
            max_points: 3,
        });
        op.validation.tp = 42;
        m.metadata.operating_point = Some(op.clone());
        let calibrated = dir.path().join("calibrated");
        m.save(&calibrated).unwrap();
        assert_eq!(
            Model::load(&calibrated).unwrap().metadata.operating_point,
            Some(op)
        );
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        toy().save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        assert!(matches!(
            Model::from_bytes(b"hello"),
            Err(ModelError::Corrupt(_))
        ));
        for cut in [
            MAGIC.len(),
            MAGIC.len() + 10,
            good.len() / 2,
            good.len() - 1,
        ] {
            assert!(Model::from_bytes(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = good.clone();
        for b in flipped.iter_mut().skip(MAGIC.len() + 12).step_by(7) {
            *b ^= 0x5a;
        }
        assert!(Model::from_bytes(&flipped).is_err());
        assert!(matches!(
            Model::load(&dir.path().join("missing")),
            Err(ModelError::Io { .. })
        ));
    }
}
