//! The two linear heads over sparse features, with their AdaGrad update steps.
//!
//! Linear models on hashed n-grams: microseconds per request, no dependency, and
//! weights that can be inspected. AdaGrad gives rare n-grams (payload fragments)
//! large steps and frequent ones small, which suits this sparse data.

use crate::features::Features;

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
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for zc in &mut z {
            *zc = (*zc - max).exp();
            sum += *zc;
        }
        if sum > 0.0 {
            for zc in &mut z {
                *zc /= sum;
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

#[cfg(test)]
mod tests {
    use super::*;

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
