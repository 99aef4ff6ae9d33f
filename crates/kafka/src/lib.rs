//! Kafka in and out.
//!
//! ```text
//! topics ─► [[kafka]] consumer group ─► parse ─► BatchWriter ─► Store ─► commit offsets
//! ThreatRecorder ─► [kafka_sink] ─► idempotent producer ─► threats topic (JSON)
//! ```
//!
//! The configuration types always build; the client (rdkafka with its bundled
//! librdkafka, built with cmake) only with the `client` feature, so that a build
//! without Kafka can still explain a `[[kafka]]` section instead of refusing it as an
//! unknown key. See `source` for the delivery contract (at least once from Kafka,
//! exactly once into the store) and `sink` for the threats topic's schema.

pub mod config;
pub mod position;
#[cfg(feature = "client")]
pub mod sink;
#[cfg(feature = "client")]
pub mod source;
#[cfg(feature = "client")]
pub mod tools;

pub use config::{KafkaSinkConfig, KafkaSourceConfig, StartPosition};

/// Whether this build can talk to Kafka (the `client` feature).
pub const CLIENT_BUILT: bool = cfg!(feature = "client");
