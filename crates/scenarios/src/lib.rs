//! `palisade-scenarios`: behaviour detection over normalised events.
//!
//! A scenario ([`scenario`], format in `SCENARIOS.md`) says which events count
//! ([`filter`]), how they are grouped ([`field`]: per address, network, user, host…) and
//! when a group's bucket overflows (leaky, trigger or counter, optionally counting only
//! distinct values). The [`ScenarioEngine`] keeps one small bucket per scenario and key
//! on log time, bounded by an LRU cap, and turns overflows into [`Alert`]s that convert
//! to `palisade_core::threat::Threat`. Its state can be saved and restored
//! ([`Snapshot`]) so a restart does not forget an attack in progress.
//!
//! ```
//! use palisade_core::{Event, EventKind, Timestamp};
//! use palisade_scenarios::{EngineConfig, ScenarioEngine, ScenarioSet};
//!
//! let mut engine = ScenarioEngine::new(ScenarioSet::builtin().unwrap(), EngineConfig::default());
//! let mut alerts = Vec::new();
//! for (i, user) in ["root", "admin", "oracle", "test", "ubuntu", "pi", "git"].iter().enumerate() {
//!     let ev = Event {
//!         ts: Timestamp::from_secs(1_700_000_000 + i as i64),
//!         kind: EventKind::Auth,
//!         client_ip: Some("203.0.113.9".parse().unwrap()),
//!         user: Some(user.to_string()),
//!         extra: vec![("program".into(), "sshd".into()), ("outcome".into(), "invalid_user".into())],
//!         ..Event::default()
//!     };
//!     alerts.extend(engine.observe(&ev, Some(i as i64)));
//! }
//! assert!(alerts.iter().any(|a| a.scenario == "sshd-user-enumeration"));
//! ```

#![warn(missing_docs)]

mod affix;
pub mod alert;
mod bucket;
pub mod duration;
pub mod engine;
pub mod field;
pub mod filter;
mod hash;
mod metrics;
pub mod scenario;
pub mod snapshot;
mod table;

pub use alert::{Alert, Decision, THREAT_SOURCE};
pub use engine::{EngineConfig, EngineStats, ScenarioEngine};
pub use field::Field;
pub use filter::Filter;
pub use scenario::{
    BucketSpec, DecisionScope, DecisionSpec, Scenario, ScenarioError, ScenarioSet, Severity,
};
pub use snapshot::{
    BucketState, RestoreReport, SNAPSHOT_VERSION, ScenarioState, Snapshot, SnapshotError,
};

#[cfg(test)]
mod tests;
