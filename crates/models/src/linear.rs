//! The two linear heads over sparse features, with their AdaGrad update steps.
//!
//! Linear models on hashed n-grams: microseconds per request, no dependency, and
//! weights that can be inspected. AdaGrad gives rare n-grams (payload fragments)
//! large steps and frequent ones small, which suits this sparse data.

use crate::features::{Features, Grams};

/// Logistic regression: the threat detector (probability malicious).
#[derive(Debug, Clone)]
pub struct LogisticHead {
    /// One weight per feature (the bias is the always-1 structural feature).
    pub weights: Vec<f32>,
    grad2: Vec<f32>,
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z.clamp(-30.0, 30.0)).exp())
}

impl LogisticHead {
    /// A zero model of `dimension` weights.
    pub fn new(dimension: usize) -> LogisticHead {
        LogisticHead {
            weights: vec![0.0; dimension],
            grad2: Vec::new(),
        }
    }

    /// A head from stored weights (no training state).
    pub fn from_weights(weights: Vec<f32>) -> LogisticHead {
        LogisticHead {
            weights,
            grad2: Vec::new(),
        }
    }

    /// The probability that `x` is malicious.
    pub fn predict(&self, x: &Features) -> f32 {
        let z: f32 = x
            .iter()
            .map(|(i, v)| self.weights.get(*i as usize).copied().unwrap_or(0.0) * v)
            .sum();
        sigmoid(z)
    }

    /// One AdaGrad step on example `x` with label `y`, weighted by `weight`; returns
    /// the example's log loss before the step.
    pub fn step(&mut self, x: &Features, y: bool, weight: f32, rate: f32, l2: f32) -> f32 {
        if self.grad2.len() != self.weights.len() {
            self.grad2 = vec![1e-6; self.weights.len()];
        }
        let p = self.predict(x);
        let t = if y { 1.0 } else { 0.0 };
        let g = (p - t) * weight;
        for (i, v) in x {
            let i = *i as usize;
            if let (Some(w), Some(acc)) = (self.weights.get_mut(i), self.grad2.get_mut(i)) {
                let gi = g * v + l2 * *w;
                *acc += gi * gi;
                *w -= rate * gi / acc.sqrt();
            }
        }
        let p = p.clamp(1e-7, 1.0 - 1e-7);
        -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
    }
}

/// The attack classifier's number of classes ([`crate::Category::ALL`]), for which
/// [`SoftmaxHead::predict`] has a fixed-size path.
pub const CLASSES: usize = 9;

/// Turns scores into probabilities in place (the largest subtracted first).
fn softmax(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for zc in z.iter_mut() {
        *zc = (*zc - max).exp();
        sum += *zc;
    }
    if sum > 0.0 {
        for zc in z.iter_mut() {
            *zc /= sum;
        }
    }
}

/// Multinomial logistic regression: the attack classifier. Weights are laid out
/// feature-major (`index * classes + class`) so one feature's weights share a cache line.
#[derive(Debug, Clone)]
pub struct SoftmaxHead {
    /// `dimension * classes` weights.
    pub weights: Vec<f32>,
    /// Number of classes.
    pub classes: usize,
    grad2: Vec<f32>,
}

impl SoftmaxHead {
    /// A zero model.
    pub fn new(dimension: usize, classes: usize) -> SoftmaxHead {
        SoftmaxHead {
            weights: vec![0.0; dimension * classes],
            classes,
            grad2: Vec::new(),
        }
    }

    /// A head from stored weights.
    pub fn from_weights(weights: Vec<f32>, classes: usize) -> SoftmaxHead {
        SoftmaxHead {
            weights,
            classes,
            grad2: Vec::new(),
        }
    }

    /// Class probabilities for `x`.
    pub fn predict(&self, x: &Features) -> Vec<f32> {
        let mut z = match self.classes {
            CLASSES => self.scores_fixed(x.iter().copied()).to_vec(),
            _ => self.scores(x),
        };
        softmax(&mut z);
        z
    }

    /// The classes' raw scores (`Σ weight × value` per class), for any number of classes.
    fn scores(&self, x: &Features) -> Vec<f32> {
        let k = self.classes;
        let mut z = vec![0.0f32; k];
        for (i, v) in x {
            let base = *i as usize * k;
            if let Some(row) = self.weights.get(base..base + k) {
                for (zc, w) in z.iter_mut().zip(row) {
                    *zc += w * v;
                }
            }
        }
        z
    }

    /// [`SoftmaxHead::scores`] for the attack classifier's [`CLASSES`] classes: the
    /// scores live in registers and each row is a fixed-size array, so the per-feature
    /// update is a few vector instructions rather than a loop over a slice (the
    /// classifier was most of a flagged request's model cost). Every score takes the
    /// same products and sums in the same order, so the result is bit for bit that of
    /// [`SoftmaxHead::scores`] (`fixed_size_scores_are_those_of_the_general_loop`).
    fn scores_fixed(&self, x: impl Iterator<Item = (u32, f32)>) -> [f32; CLASSES] {
        self.scores_fixed_from([0.0; CLASSES], x)
    }

    /// [`SoftmaxHead::scores_fixed`] carrying on from the scores `z`.
    fn scores_fixed_from(
        &self,
        mut z: [f32; CLASSES],
        x: impl Iterator<Item = (u32, f32)>,
    ) -> [f32; CLASSES] {
        for (i, v) in x {
            z = self.add_row(z, i, v);
        }
        z
    }

    /// The scores `z` plus feature `i`'s row times `v` (unchanged for an index past the
    /// end).
    #[inline(always)]
    fn add_row(&self, mut z: [f32; CLASSES], i: u32, v: f32) -> [f32; CLASSES] {
        let base = i as usize * CLASSES;
        let row: Option<&[f32; CLASSES]> = self
            .weights
            .get(base..base + CLASSES)
            .and_then(|r| r.try_into().ok());
        if let Some(row) = row {
            // Indexes over fixed-size arrays unroll into straight-line vector code
            // (a zip over them stayed a loop with an iterator call per feature).
            #[allow(clippy::needless_range_loop)]
            for c in 0..CLASSES {
                z[c] += row[c] * v;
            }
        }
        z
    }

    /// One AdaGrad step towards class `y`; returns the cross-entropy before the step.
    pub fn step(&mut self, x: &Features, y: usize, rate: f32, l2: f32) -> f32 {
        let k = self.classes;
        if self.grad2.len() != self.weights.len() {
            self.grad2 = vec![1e-6; self.weights.len()];
        }
        let p = self.predict(x);
        for (i, v) in x {
            let base = *i as usize * k;
            for (c, pc) in p.iter().enumerate() {
                let t = if c == y { 1.0 } else { 0.0 };
                let j = base + c;
                if let (Some(w), Some(acc)) = (self.weights.get_mut(j), self.grad2.get_mut(j)) {
                    let gi = (pc - t) * v + l2 * *w;
                    *acc += gi * gi;
                    *w -= rate * gi / acc.sqrt();
                }
            }
        }
        -p.get(y).copied().unwrap_or(1e-7).max(1e-7).ln()
    }
}

/// Both heads over a request's features in compact form ([`Grams`]) in one pass: the
/// threat probability and, for [`CLASSES`] classes, the class probabilities (`None`
/// for another number of classes). Each sum takes the same products in the same order
/// from the same start as [`LogisticHead::predict`] (`Iterator::sum` of `f32` folds
/// from −0.0) and [`SoftmaxHead::predict`] over the feature vector, so the results are
/// the same bits (`tests/predictions.rs`); one pass decodes each code once for both.
pub fn predict_grams(
    threat: &LogisticHead,
    classifier: &SoftmaxHead,
    grams: &Grams,
    codes: &[u32],
) -> (f32, Option<[f32; CLASSES]>) {
    let weight = |i: u32| threat.weights.get(i as usize).copied().unwrap_or(0.0);
    let fixed = classifier.classes == CLASSES;
    let mut t = -0.0f32;
    let mut z = [0.0f32; CLASSES];
    // Two plain loops (the n-grams, then the figures) rather than a chain.
    if fixed {
        for (i, v) in grams.grams(codes) {
            t += weight(i) * v;
            z = classifier.add_row(z, i, v);
        }
        for (i, v) in grams.figures() {
            t += weight(i) * v;
            z = classifier.add_row(z, i, v);
        }
    } else {
        for (i, v) in grams.grams(codes).chain(grams.figures()) {
            t += weight(i) * v;
        }
    }
    let classes = fixed.then(|| {
        softmax(&mut z);
        z
    });
    (sigmoid(t), classes)
}

/// Both heads' weights side by side, one row per feature: the threat weight, then the
/// [`CLASSES`] class weights. Inference reads one row per feature instead of a weight
/// in each head, and adds it in one vector step. Built when a model is made, from its
/// heads (which keep their own weights for training and the file); about 40 bytes per
/// feature (2.6 MB for the built-in model's 65,548 features).
#[derive(Debug, Clone)]
pub struct JointRows(Vec<[f32; CLASSES + 1]>);

impl JointRows {
    /// The rows of `threat` and `classifier`; `None` unless the classifier has
    /// [`CLASSES`] classes and both heads the same number of features.
    pub fn new(threat: &LogisticHead, classifier: &SoftmaxHead) -> Option<JointRows> {
        if classifier.classes != CLASSES
            || classifier.weights.len() != threat.weights.len() * CLASSES
        {
            return None;
        }
        let rows = threat
            .weights
            .iter()
            .zip(classifier.weights.chunks_exact(CLASSES))
            .map(|(t, c)| std::array::from_fn(|k| if k == 0 { *t } else { c[k - 1] }))
            .collect();
        Some(JointRows(rows))
    }

    /// The threat probability and the class probabilities of a request's features in
    /// compact form: what [`predict_grams`] gives (each sum takes the same products in
    /// the same order from the same start), from one row per feature.
    pub fn predict(&self, grams: &Grams, codes: &[u32]) -> (f32, [f32; CLASSES]) {
        // The threat sum starts where `Iterator::sum` of `f32` does (−0.0), the class
        // scores at 0.0 as `SoftmaxHead::scores` does.
        let mut z = [0.0f32; CLASSES + 1];
        z[0] = -0.0;
        for (i, v) in grams.grams(codes) {
            z = self.add(z, i, v);
        }
        for (i, v) in grams.figures() {
            z = self.add(z, i, v);
        }
        let mut classes: [f32; CLASSES] = std::array::from_fn(|c| z[c + 1]);
        softmax(&mut classes);
        (sigmoid(z[0]), classes)
    }

    /// `z` plus row `i` times `v`. The indexes of [`Grams`] are always rows; one past
    /// the end would be skipped, where the heads add a zero weight (which can change
    /// only the sign of a zero sum, not a probability).
    #[inline(always)]
    fn add(&self, mut z: [f32; CLASSES + 1], i: u32, v: f32) -> [f32; CLASSES + 1] {
        if let Some(row) = self.0.get(i as usize) {
            #[allow(clippy::needless_range_loop)]
            for k in 0..CLASSES + 1 {
                z[k] += row[k] * v;
            }
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Category;

    #[test]
    fn logistic_learns_a_separable_toy_problem() {
        let mut h = LogisticHead::new(8);
        let pos: Features = vec![(0, 1.0), (1, 1.0)];
        let neg: Features = vec![(0, 1.0), (2, 1.0)];
        for _ in 0..200 {
            h.step(&pos, true, 1.0, 0.5, 0.0);
            h.step(&neg, false, 1.0, 0.5, 0.0);
        }
        assert!(h.predict(&pos) > 0.9);
        assert!(h.predict(&neg) < 0.1);
        // Out-of-range indexes are ignored, not a panic.
        assert!(h.predict(&vec![(99, 1.0)]) > 0.0);
    }

    #[test]
    fn fixed_size_scores_are_those_of_the_general_loop() {
        let mut rng = crate::rng::Rng::new(7);
        let dim = 300;
        let weights: Vec<f32> = (0..dim * CLASSES)
            .map(|i| {
                if i % 5 == 0 {
                    0.0
                } else {
                    (rng.below(2001) as f32 - 1000.0) / 333.0
                }
            })
            .collect();
        let h = SoftmaxHead::from_weights(weights, CLASSES);
        for _ in 0..200 {
            let n = 1 + rng.below(400);
            let x: Features = (0..n)
                .map(|_| {
                    // Some indexes past the end: ignored by both.
                    let i = rng.below(dim + 20) as u32;
                    let v = if rng.below(2) == 0 { 0.07 } else { -0.07 };
                    (i, v)
                })
                .collect();
            let general = h.scores(&x);
            let fixed = h.scores_fixed(x.iter().copied());
            let bits = |z: &[f32]| z.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&general), bits(&fixed));
        }
        assert_eq!(Category::ALL.len(), CLASSES);
    }

    #[test]
    fn softmax_learns_three_classes() {
        let mut h = SoftmaxHead::new(8, 3);
        let xs: Vec<Features> = (0..3).map(|c| vec![(7, 1.0), (c as u32, 1.0)]).collect();
        for _ in 0..200 {
            for (c, x) in xs.iter().enumerate() {
                h.step(x, c, 0.5, 0.0);
            }
        }
        for (c, x) in xs.iter().enumerate() {
            let p = h.predict(x);
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
            assert!(p[c] > 0.8, "class {c}: {p:?}");
        }
    }
}
