//! The domain model every Palisade pipeline stage shares.
//!
//! Sources produce [`Event`]s and [`DeadLetter`]s, formats fill them in, the store keeps
//! them and the API serves them. Keeping one model here means a new stage never needs
//! to translate between private representations. Later stages (threats, alerts, flows,
//! devices, CVEs, jobs) get their own modules beside these.

pub mod checkpoint;
pub mod config;
pub mod dead_letter;
pub mod decision;
pub mod decision_set;
pub mod definitions;
pub mod duration;
pub mod event;
pub mod forwarded;
pub mod job;
pub mod metrics;
pub mod net;
pub mod posture;
pub mod request_id;
pub mod security;
pub mod severity;
pub mod shutdown;
pub mod supervisor;
pub mod threat;
pub mod time;
pub mod verdict;
pub mod vuln;

pub use checkpoint::Checkpoint;
pub use dead_letter::DeadLetter;
pub use event::{Event, EventKind};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use time::Timestamp;
