//! `palisade-models`: machine-learnt request models that sit beside the signature rules.
//!
//! A request is split by the detection engine's own parser ([`palisade_detect::parse`]),
//! turned into signed hashed character n-grams plus a few structural figures
//! ([`features`]), and scored by two linear heads ([`linear`]): a logistic *threat
//! detector* (probability malicious) and a softmax *attack classifier* ([`Category`]).
//! Training ([`train`]) is pure Rust AdaGrad, deterministic for a seed. Models are
//! saved in a versioned, quantised file ([`file`]), held in a hot-swappable slot
//! ([`slot`]) and combined with the rule score by the [`fusion`] policy. Beside them,
//! per-endpoint anomaly [`baseline`]s are learnt online from traffic, and the [`flow`]
//! model judges network flows (scans, floods, brute force, and an online anomaly score).

#![warn(missing_docs)]

pub mod baseline;
pub mod category;
pub mod config;
pub mod features;
pub mod file;
pub mod flow;
pub mod fusion;
pub mod generate;
pub mod linear;
pub mod metrics;
pub mod opoint;
pub mod rng;
pub mod slot;
pub mod train;

pub use baseline::{BaselinePolicy, Baselines, BaselinesConfig, Observation};
pub use category::Category;
pub use config::{ModelsConfig, OperatingPointMode};
pub use features::{FeatureSettings, Featurizer};
pub use file::{Metadata, Model, ModelError, Prediction};
pub use fusion::{Fused, FusionPolicy, Graded};
pub use opoint::OperatingPoint;
pub use slot::{ModelSlot, ModelStatus, Slot, SlotModel};
