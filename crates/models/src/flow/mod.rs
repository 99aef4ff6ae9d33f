//! The flow model (issue 15, flow part): a supervised detector of scans, floods and
//! brute force over finished flows ([`palisade_flows::FlowRecord`], from capture files
//! and live captures alike), and an unsupervised score learnt online.
//!
//! - [`features`]: per-flow figures and per-source / per-destination window figures.
//! - [`model`]: the softmax regression and its versioned file.
//! - [`train`]: labelled flows from captures, training, leave-one-capture-out figures.
//! - [`anomaly`]: streaming z-scores of the window features, with a warm-up.
//! - [`scorer`]: the loaded model in a hot-swappable slot, and the judge the flow sink
//!   calls, which marks flow events so the `network-ml-flow-*` scenarios raise threats.

pub mod anomaly;
pub mod features;
pub mod model;
pub mod scorer;
pub mod train;

pub use anomaly::{AnomalySettings, OnlineAnomaly};
pub use features::{FlowFeatureSettings, Windows};
pub use model::{FlowClass, FlowMetadata, FlowModel, FlowPrediction};
pub use scorer::{FlowModelSlot, FlowScorer};
