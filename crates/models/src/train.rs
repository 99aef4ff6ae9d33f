//! Training both heads: deterministic AdaGrad passes over labelled requests, a
//! held-out share for honest figures, and the metadata that identifies the result.

use palisade_detect::HttpRequest;
use sha2::{Digest, Sha256};

use crate::category::Category;
use crate::features::{FeatureSettings, Featurizer};
use crate::file::{DataFile, FORMAT_VERSION, HeldOut, Metadata, Model};
use crate::linear::{LogisticHead, SoftmaxHead};
use crate::metrics::{Confusion, roc_auc};
use crate::rng::Rng;

/// One labelled training request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The request.
    pub request: HttpRequest,
    /// Whether it is an attack.
    pub attack: bool,
    /// Its attack family when known (generated attacks); the classifier learns only
    /// from samples that have one.
    pub category: Option<Category>,
}

/// How to train.
#[derive(Debug, Clone, Copy)]
pub struct TrainSettings {
    /// Feature settings.
    pub features: FeatureSettings,
    /// Passes over the data.
    pub epochs: u32,
    /// Seed for the shuffles and the held-out split.
    pub seed: u64,
    /// AdaGrad base step.
    pub rate: f32,
    /// L2 penalty per step.
    pub l2: f32,
    /// Share of the data held out of training for the figures in the file.
    pub held_out: f64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            features: FeatureSettings::default(),
            epochs: 4,
            seed: 1,
            rate: 0.2,
            l2: 1e-6,
            held_out: 0.1,
        }
    }
}

/// Where the data came from, for the metadata.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The training files.
    pub files: Vec<DataFile>,
    /// Generated attacks among the samples.
    pub generated_attacks: usize,
    /// Generated ordinary requests among the samples.
    pub generated_normal: usize,
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Trains a model; `progress(done, total)` is called as examples are processed.
pub fn train(
    samples: &[Sample],
    settings: TrainSettings,
    provenance: Provenance,
    progress: &mut dyn FnMut(u64, u64),
) -> Model {
    let z = Featurizer::new(settings.features);
    let dim = settings.features.dimension();
    let k = Category::ALL.len();
    let mut rng = Rng::new(settings.seed);
    let mut order: Vec<usize> = (0..samples.len()).collect();
    rng.shuffle(&mut order);
    let cut = ((samples.len() as f64) * settings.held_out.clamp(0.0, 0.5)) as usize;
    let (held, fit) = order.split_at(cut);
    let mut fit = fit.to_vec();
    let attacks = fit.iter().filter(|i| samples[**i].attack).count().max(1);
    let normal = (fit.len() - attacks.min(fit.len())).max(1);
    // Each class weighs as much as the other in total.
    let (w_attack, w_normal) = (
        fit.len() as f32 / (2.0 * attacks as f32),
        fit.len() as f32 / (2.0 * normal as f32),
    );
    let mut threat = LogisticHead::new(dim);
    let mut classifier = SoftmaxHead::new(dim, k);
    let total = (fit.len() as u64) * u64::from(settings.epochs) + held.len() as u64;
    let mut done = 0u64;
    for epoch in 0..settings.epochs {
        rng.shuffle(&mut fit);
        let rate = settings.rate / (1.0 + epoch as f32 * 0.5);
        let mut loss = 0.0f64;
        for &i in &fit {
            let s = &samples[i];
            let x = z.features(&s.request);
            let w = if s.attack { w_attack } else { w_normal };
            loss += f64::from(threat.step(&x, s.attack, w, rate, settings.l2));
            if let (true, Some(c)) = (s.attack, s.category) {
                classifier.step(&x, c.index(), rate, settings.l2);
            }
            done += 1;
            if done.is_multiple_of(512) {
                progress(done, total);
            }
        }
        tracing::info!(
            epoch,
            mean_loss = loss / fit.len().max(1) as f64,
            "training epoch"
        );
    }
    let threshold = 0.5f32;
    let mut metadata = Metadata {
        format_version: FORMAT_VERSION,
        model_version: String::new(),
        data_digest: String::new(),
        training_data: provenance.files.clone(),
        generated_attacks: provenance.generated_attacks,
        generated_normal: provenance.generated_normal,
        seed: settings.seed,
        epochs: settings.epochs,
        features: settings.features,
        classes: Category::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        threshold,
        held_out: None,
        is_real: !provenance.files.is_empty(),
        threat_scale: 0.0,
        class_scale: 0.0,
        operating_point: None,
    };
    let mut digest = Sha256::new();
    for f in &provenance.files {
        digest.update(f.sha256.as_bytes());
    }
    digest.update(
        format!(
            "gen:{}:{}:{:?}",
            provenance.generated_attacks, provenance.generated_normal, settings
        )
        .as_bytes(),
    );
    metadata.data_digest = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    metadata.model_version = format!(
        "http-{FORMAT_VERSION}.{}-{}",
        settings.seed,
        metadata.data_digest.get(..12).unwrap_or("")
    );
    let mut model = Model::new(metadata, threat, classifier);
    if !held.is_empty() {
        let mut c = Confusion::default();
        let mut scores = Vec::with_capacity(held.len());
        let (mut named, mut labelled) = (0usize, 0usize);
        for &i in held {
            let s = &samples[i];
            let p = model.predict(&s.request);
            c.add(s.attack, p.probability >= threshold);
            scores.push((f64::from(p.probability), s.attack));
            if let (true, Some(cat)) = (s.attack, s.category) {
                labelled += 1;
                named += usize::from(p.category == cat);
            }
            done += 1;
            if done.is_multiple_of(512) {
                progress(done, total);
            }
        }
        let c = c.finish();
        model.metadata.held_out = Some(HeldOut {
            description: format!(
                "{:.0}% of the training data (same sources, random split by seed), never trained on",
                settings.held_out * 100.0
            ),
            requests: held.len(),
            precision: c.precision,
            recall: c.recall,
            f1: c.f1,
            fpr: c.fpr,
            roc_auc: roc_auc(&scores),
            category_accuracy: if labelled == 0 {
                0.0
            } else {
                named as f64 / labelled as f64
            },
        });
    }
    progress(total, total);
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate;

    fn data(seed: u64) -> Vec<Sample> {
        generate::corpus(&[], 450, 450, seed)
            .into_iter()
            .map(|g| Sample {
                attack: g.category.is_some(),
                category: g.category,
                request: g.request,
            })
            .collect()
    }

    #[test]
    fn learns_generated_data_and_is_deterministic() {
        let settings = TrainSettings {
            features: FeatureSettings {
                buckets_log2: 14,
                ..Default::default()
            },
            epochs: 3,
            seed: 5,
            ..Default::default()
        };
        let samples = data(9);
        let mut calls = 0;
        let a = train(&samples, settings, Provenance::default(), &mut |_, _| {
            calls += 1
        });
        let b = train(&samples, settings, Provenance::default(), &mut |_, _| {});
        assert!(calls > 0);
        let h = a.metadata.held_out.clone().unwrap();
        assert!(h.roc_auc > 0.95, "{h:?}");
        assert!(h.category_accuracy > 0.7, "{h:?}");
        assert_eq!(a.metadata.model_version, b.metadata.model_version);
        let dir = tempfile::tempdir().unwrap();
        a.save(&dir.path().join("a")).unwrap();
        b.save(&dir.path().join("b")).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a")).unwrap(),
            std::fs::read(dir.path().join("b")).unwrap(),
            "same data and seed give the same file"
        );
        // Unseen examples (another generator seed) still separate.
        let fresh = data(77);
        let scores: Vec<(f64, bool)> = fresh
            .iter()
            .map(|s| (f64::from(a.probability(&s.request)), s.attack))
            .collect();
        assert!(roc_auc(&scores) > 0.95);
    }
}
