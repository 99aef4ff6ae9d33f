//! Detection figures: the confusion matrix and what follows from it, and ROC-AUC,
//! shared by training (held-out figures) and `palisade eval`.

use serde::{Deserialize, Serialize};

/// Confusion counts at one threshold, with derived figures filled by [`Confusion::finish`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// Attacks flagged.
    pub tp: usize,
    /// Normal requests flagged.
    pub fp: usize,
    /// Normal requests passed.
    pub tn: usize,
    /// Attacks passed.
    #[serde(rename = "fn")]
    pub fn_: usize,
    /// Precision.
    pub precision: f64,
    /// Recall (TPR).
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// False positive rate.
    pub fpr: f64,
}

impl Confusion {
    /// Counts one outcome.
    pub fn add(&mut self, attack: bool, flagged: bool) {
        match (attack, flagged) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// Fills the derived figures.
    pub fn finish(mut self) -> Confusion {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.precision = ratio(self.tp, self.tp + self.fp);
        self.recall = ratio(self.tp, self.tp + self.fn_);
        self.fpr = ratio(self.fp, self.fp + self.tn);
        self.f1 = if self.precision + self.recall > 0.0 {
            2.0 * self.precision * self.recall / (self.precision + self.recall)
        } else {
            0.0
        };
        self
    }
}

/// Area under the ROC curve of `(score, is_attack)` pairs (Mann–Whitney, ties
/// counted half); 0.5 when either class is absent.
pub fn roc_auc(scores: &[(f64, bool)]) -> f64 {
    let mut s: Vec<(f64, bool)> = scores.iter().copied().filter(|x| x.0.is_finite()).collect();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = s.iter().filter(|x| x.1).count() as f64;
    let neg = s.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    // Sum of the (average, 1-based) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1].0 == s[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg * s[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_figures() {
        let mut c = Confusion::default();
        for (a, f) in [
            (true, true),
            (true, true),
            (true, false),
            (false, true),
            (false, false),
        ] {
            c.add(a, f);
        }
        let c = c.finish();
        assert_eq!((c.tp, c.fn_, c.fp, c.tn), (2, 1, 1, 1));
        assert!((c.precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.recall - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.fpr - 0.5).abs() < 1e-9);
        assert_eq!(Confusion::default().finish().f1, 0.0);
    }

    #[test]
    fn auc_perfect_random_and_ties() {
        assert_eq!(roc_auc(&[(0.1, false), (0.9, true)]), 1.0);
        assert_eq!(roc_auc(&[(0.9, false), (0.1, true)]), 0.0);
        assert_eq!(roc_auc(&[(0.5, false), (0.5, true)]), 0.5);
        assert_eq!(roc_auc(&[(0.5, true)]), 0.5);
        let a = roc_auc(&[(0.1, false), (0.4, true), (0.5, false), (0.8, true)]);
        assert!((a - 0.75).abs() < 1e-9);
    }
}
