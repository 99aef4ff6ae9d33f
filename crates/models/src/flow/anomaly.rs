//! The unsupervised flow score, learnt online: streaming z-scores of the window
//! features (a source's flows, ports and hosts in the window, its probe share, its
//! repeats to one service; a destination's flows and sources; packets per second).
//!
//! It needs no labels, so it sees what the supervised model was never shown, at the
//! price of knowing only "unlike what this network did so far". Each feature keeps a
//! running mean and variance (Welford, with memory capped at `horizon` flows so it
//! follows drift); nothing is judged before `warmup` flows; a flow's score is the
//! largest upward z of its features, with the standard deviation floored at
//! `min_std` (the features are `ln(1+count)`, so 0.35 is about "40% more than usual"
//! per σ). Flows that scored at or above half the threshold, or that the supervised
//! model flagged, are not learnt, so an attack that ramps up (a scan's window grows a
//! flow at a time) does not teach the score that it is normal on its way up.
//! Memory is fixed: two numbers per feature.

use serde::{Deserialize, Serialize};

use super::features::{DIM, NAMES, WINDOW_FEATURES};

/// Settings of the online score (`[models] flow_anomaly_*`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnomalySettings {
    /// Flows learnt before any is judged.
    pub warmup: u64,
    /// Upward z at and above which a flow is an anomaly.
    pub z_threshold: f32,
    /// The most flows the running statistics weigh (older ones fade).
    pub horizon: u64,
    /// Floor of the standard deviation, in `ln(1+x)` units.
    pub min_std: f32,
}

impl Default for AnomalySettings {
    fn default() -> Self {
        AnomalySettings {
            warmup: 1000,
            z_threshold: 6.0,
            horizon: 100_000,
            min_std: 0.35,
        }
    }
}

/// The score of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnomalyScore {
    /// The largest upward z.
    pub z: f32,
    /// The feature it came from.
    pub feature: &'static str,
    /// That feature's running mean (as `ln(1+x)`).
    pub mean: f32,
}

/// Running statistics of the window features.
#[derive(Debug, Clone)]
pub struct OnlineAnomaly {
    settings: AnomalySettings,
    n: u64,
    mean: [f64; WINDOW_FEATURES.len()],
    m2: [f64; WINDOW_FEATURES.len()],
}

impl OnlineAnomaly {
    /// Nothing learnt yet.
    pub fn new(settings: AnomalySettings) -> OnlineAnomaly {
        OnlineAnomaly {
            settings,
            n: 0,
            mean: [0.0; WINDOW_FEATURES.len()],
            m2: [0.0; WINDOW_FEATURES.len()],
        }
    }

    /// Flows learnt so far.
    pub fn learnt(&self) -> u64 {
        self.n
    }

    /// Whether the warm-up is over.
    pub fn warm(&self) -> bool {
        self.n >= self.settings.warmup
    }

    /// The flow's score; `None` during the warm-up.
    pub fn score(&self, x: &[f32; DIM]) -> Option<AnomalyScore> {
        if !self.warm() {
            return None;
        }
        let n = self.n.min(self.settings.horizon) as f64;
        let mut best: Option<AnomalyScore> = None;
        for (j, &i) in WINDOW_FEATURES.iter().enumerate() {
            let var = self.m2[j] / (n - 1.0).max(1.0);
            let sd = var.sqrt().max(f64::from(self.settings.min_std));
            let z = ((f64::from(x[i]) - self.mean[j]) / sd) as f32;
            if best.is_none_or(|b| z > b.z) {
                best = Some(AnomalyScore {
                    z,
                    feature: NAMES[i],
                    mean: self.mean[j] as f32,
                });
            }
        }
        best
    }

    /// Whether a score is an anomaly.
    pub fn is_anomaly(&self, s: &AnomalyScore) -> bool {
        s.z >= self.settings.z_threshold
    }

    /// Whether a flow with this score (`None`: still warming up) may be learnt: under
    /// half the threshold.
    pub fn may_learn(&self, s: Option<&AnomalyScore>) -> bool {
        s.is_none_or(|s| s.z < self.settings.z_threshold / 2.0)
    }

    /// Learns one flow (Welford; past `horizon` flows each new one weighs 1/horizon).
    pub fn learn(&mut self, x: &[f32; DIM]) {
        self.n = self.n.saturating_add(1);
        let n = self.n.min(self.settings.horizon.max(2)) as f64;
        for (j, &i) in WINDOW_FEATURES.iter().enumerate() {
            let v = f64::from(x[i]);
            let d = v - self.mean[j];
            self.mean[j] += d / n;
            let d2 = v - self.mean[j];
            // At the horizon the old sum of squares fades by the same weight.
            if self.n > self.settings.horizon {
                self.m2[j] *= (n - 1.0) / n;
            }
            self.m2[j] += d * d2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_then_a_jump_scores_high_and_ordinary_values_do_not() {
        let mut a = OnlineAnomaly::new(AnomalySettings {
            warmup: 50,
            ..Default::default()
        });
        let mut x = [0.0f32; DIM];
        for k in 0..50 {
            for &i in &WINDOW_FEATURES {
                x[i] = (1.0 + (k % 3) as f32).ln_1p();
            }
            assert!(a.score(&x).is_none(), "judged during the warm-up");
            a.learn(&x);
        }
        let ordinary = a.score(&x).unwrap();
        assert!(!a.is_anomaly(&ordinary), "{ordinary:?}");
        x[19] = 900f32.ln_1p();
        let s = a.score(&x).unwrap();
        assert_eq!(s.feature, "src_distinct_ports");
        assert!(a.is_anomaly(&s), "{s:?}");
    }
}
