//! The flow model in service: a hot-swappable slot (loaded at start, reloaded by
//! `POST /api/v1/models/reload`, status in health and `GET /api/v1/models`) and the
//! [`FlowScorer`], the [`FlowJudge`] the flow sink calls for every batch of finished
//! flows from `palisade ingest FILE.pcap` and live captures.
//!
//! A flow the model calls an attack (probability at or above the file's threshold)
//! gets `flow_model` = `scan` / `flood` / `bruteforce`, `flow_model_p` and
//! `flow_model_why` (the probability and the features that fired) on its event; one
//! the model passes but the online score finds far outside what the network did so far
//! gets `flow_model = "anomaly"`. The built-in `network-ml-flow-*` scenarios turn those
//! events into threats, which the flow threat linker points at their flows. A missing
//! or damaged model file leaves only the online score (health says so); the process
//! never fails for it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use palisade_flows::{FlowJudge, FlowRecord};

use super::anomaly::{AnomalySettings, OnlineAnomaly};
use super::features::{FlowFeatureSettings, Windows};
use super::model::FlowModel;
use crate::config::ModelsConfig;
use crate::file::ModelError;
use crate::slot::{ModelSource, Slot, SlotModel};

/// The default flow model, trained by `palisade train-flows` (command in
/// `crates/models/README.md`).
pub const BUILTIN_FLOW: &[u8] = include_bytes!("../../default/flow.pmodel");

/// Where the flow model comes from (the request model's sources: built in, a file
/// written by `palisade train-flows`, or off with `[models] flow_enabled = false`).
pub type FlowSource = ModelSource;

/// The flow model's slot.
pub type FlowModelSlot = Slot<FlowModel>;

impl SlotModel for FlowModel {
    const NAME: &'static str = "flow";
    const DISABLED: &'static str = "the flow model is disabled";
    const WITHOUT: &'static str = "flow rules and the online score decide alone";
    fn builtin() -> Result<FlowModel, ModelError> {
        FlowModel::from_bytes(BUILTIN_FLOW)
    }
    fn load(path: &Path) -> Result<FlowModel, ModelError> {
        FlowModel::load(path)
    }
    fn version(&self) -> &str {
        &self.metadata.model_version
    }
    fn is_real(&self) -> bool {
        self.metadata.is_real
    }
    fn metadata_json(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.metadata).ok()
    }
}

impl Slot<FlowModel> {
    /// A slot from `[models]` (`flow_enabled`, `flow_path`).
    pub fn from_config(c: &ModelsConfig) -> FlowModelSlot {
        Slot::new(ModelSource::configured(&c.flow_path, c.flow_enabled))
    }
}

struct State {
    windows: Windows,
    anomaly: OnlineAnomaly,
}

/// Judges finished flows with the model in force and the online score (one state for
/// every capture of the process; its memory is bounded by the window settings).
pub struct FlowScorer {
    slot: Arc<FlowModelSlot>,
    anomaly_on: bool,
    state: Mutex<State>,
}

impl std::fmt::Debug for FlowScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowScorer")
            .field("slot", &self.slot)
            .field("anomaly_on", &self.anomaly_on)
            .finish_non_exhaustive()
    }
}

/// One flow's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowVerdict {
    /// `scan`, `flood`, `bruteforce` or `anomaly`.
    pub category: &'static str,
    /// The attack probability (supervised) or the z-score (anomaly).
    pub score: f32,
    /// Why, for people.
    pub why: String,
}

impl FlowScorer {
    /// A scorer over `slot`; `anomaly` settings when the online score is on.
    pub fn new(slot: Arc<FlowModelSlot>, anomaly: Option<AnomalySettings>) -> FlowScorer {
        let features = slot
            .current()
            .map_or_else(FlowFeatureSettings::default, |m| m.metadata.features);
        FlowScorer {
            slot,
            anomaly_on: anomaly.is_some(),
            state: Mutex::new(State {
                windows: Windows::new(features),
                anomaly: OnlineAnomaly::new(anomaly.unwrap_or_default()),
            }),
        }
    }

    /// A scorer from `[models]`.
    pub fn from_config(c: &ModelsConfig) -> FlowScorer {
        let anomaly = c.flow_anomaly.then_some(AnomalySettings {
            warmup: c.flow_anomaly_warmup,
            z_threshold: c.flow_anomaly_z,
            ..AnomalySettings::default()
        });
        FlowScorer::new(Arc::new(FlowModelSlot::from_config(c)), anomaly)
    }

    /// The model slot (status, reload).
    pub fn slot(&self) -> &Arc<FlowModelSlot> {
        &self.slot
    }

    /// Judges flows in flow-start order; `None` for flows with nothing to say.
    pub fn verdicts(&self, flows: &[FlowRecord]) -> Vec<Option<FlowVerdict>> {
        let model = self.slot.current();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State { windows, anomaly } = &mut *st;
        if let Some(m) = &model
            && windows.settings() != m.metadata.features
        {
            *windows = Windows::new(m.metadata.features);
        }
        flows
            .iter()
            .map(|f| {
                let x = windows.features(f);
                if let Some(m) = &model {
                    let p = m.predict(&x);
                    if p.probability >= m.metadata.threshold {
                        let fired: Vec<String> = p
                            .fired
                            .iter()
                            .map(|(n, v, c)| format!("{n}={} (+{c:.1})", show(*v)))
                            .collect();
                        return Some(FlowVerdict {
                            category: p.class.as_str(),
                            score: p.probability,
                            why: format!(
                                "flow model {}: {} p={:.3}; {}",
                                m.metadata.model_version,
                                p.class.as_str(),
                                p.probability,
                                fired.join(", ")
                            ),
                        });
                    }
                }
                if !self.anomaly_on {
                    return None;
                }
                let s = anomaly.score(&x);
                match s {
                    Some(s) if anomaly.is_anomaly(&s) => Some(FlowVerdict {
                        category: "anomaly",
                        score: s.z,
                        why: format!(
                            "online flow score: {} = {} is {:.1} standard deviations above this network's mean {} (over {} flows)",
                            s.feature,
                            show(x_value(&x, s.feature)),
                            s.z,
                            show(s.mean.exp_m1()),
                            anomaly.learnt()
                        ),
                    }),
                    s => {
                        if anomaly.may_learn(s.as_ref()) {
                            anomaly.learn(&x);
                        }
                        None
                    }
                }
            })
            .collect()
    }
}

fn x_value(x: &[f32; super::features::DIM], name: &str) -> f32 {
    super::features::NAMES
        .iter()
        .position(|n| *n == name)
        .map_or(0.0, |i| {
            if name.ends_with("_share") {
                x[i]
            } else {
                x[i].exp_m1()
            }
        })
}

/// A figure for people: whole numbers without decimals.
fn show(v: f32) -> String {
    if (v - v.round()).abs() < 0.01 {
        format!("{}", v.round())
    } else {
        format!("{v:.2}")
    }
}

impl FlowJudge for FlowScorer {
    fn judge(&self, flows: &[FlowRecord]) -> Vec<Vec<(String, String)>> {
        self.verdicts(flows)
            .into_iter()
            .map(|v| match v {
                None => Vec::new(),
                Some(v) => vec![
                    ("flow_model".to_string(), v.category.to_string()),
                    ("flow_model_score".to_string(), format!("{:.3}", v.score)),
                    ("flow_model_why".to_string(), v.why),
                ],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::features::tests::flow;
    use palisade_flows::flow::tcp_flags;

    fn scan(n: u16) -> Vec<FlowRecord> {
        (1..=n)
            .map(|p| {
                flow(
                    f64::from(p) * 0.01,
                    "10.0.0.9",
                    "10.0.0.1",
                    p,
                    "REJ",
                    (1, 0, tcp_flags::SYN),
                    (1, 0),
                )
            })
            .collect()
    }

    #[test]
    fn missing_or_corrupt_file_degrades_and_a_good_file_loads_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flow.pmodel");
        let slot = Arc::new(FlowModelSlot::new(FlowSource::File(path.clone())));
        let st = slot.status();
        assert!(!st.loaded && st.error.is_some() && st.name == "flow");
        // Without a model, nothing is flagged by it, and nothing panics.
        let scorer = FlowScorer::new(slot.clone(), None);
        assert!(scorer.verdicts(&scan(50)).iter().all(Option::is_none));
        std::fs::write(&path, b"PALISADE-FLOW-MODEL\n\x1f\x8b garbage").unwrap();
        assert!(slot.reload().is_err());
        assert!(!slot.status().loaded);
        crate::flow::model::tests::toy().save(&path).unwrap();
        let st = slot.reload().unwrap();
        assert!(st.loaded && st.error.is_none());
        assert_eq!(st.version.as_deref(), Some("flow-test"));
        let v = scorer.verdicts(&scan(50));
        let last = v.last().unwrap().as_ref().unwrap();
        assert_eq!(last.category, "scan");
        assert!(last.why.contains("src_distinct_ports=50"), "{}", last.why);
        // A damaged file on reload keeps the model in force.
        std::fs::write(&path, b"junk").unwrap();
        assert!(slot.reload().is_err());
        let st = slot.status();
        assert!(st.loaded && st.error.is_some());
        assert!(slot.current().is_some());
    }

    #[test]
    fn the_builtin_model_loads_and_is_real() {
        let slot = FlowModelSlot::new(FlowSource::Builtin);
        let st = slot.status();
        assert!(st.loaded, "{:?}", st.error);
        assert_eq!(st.is_real, Some(true));
        assert!(st.version.unwrap().starts_with("flow-1."));
    }

    #[test]
    fn the_online_score_flags_a_jump_after_its_warm_up() {
        let slot = Arc::new(FlowModelSlot::new(FlowSource::Disabled));
        let scorer = FlowScorer::new(
            slot,
            Some(AnomalySettings {
                warmup: 100,
                ..Default::default()
            }),
        );
        // Ordinary: many hosts, one HTTPS connection each, every 2 s.
        let ordinary: Vec<FlowRecord> = (0..300u32)
            .map(|i| {
                flow(
                    f64::from(i) * 2.0,
                    &format!("10.0.1.{}", i % 200),
                    &format!("10.0.2.{}", i % 7),
                    443,
                    "SF",
                    (10, 800, tcp_flags::SYN | tcp_flags::ACK | tcp_flags::FIN),
                    (9, 9000),
                )
            })
            .collect();
        assert!(scorer.verdicts(&ordinary).iter().all(Option::is_none));
        let mut burst = scan(300);
        for f in &mut burst {
            f.start_us += 700_000_000;
        }
        let v = scorer.verdicts(&burst);
        let flagged: Vec<&FlowVerdict> = v.iter().flatten().collect();
        assert!(!flagged.is_empty());
        assert!(flagged.iter().all(|v| v.category == "anomaly"));
        assert!(
            flagged[0].why.contains("standard deviations"),
            "{}",
            flagged[0].why
        );
    }
}
