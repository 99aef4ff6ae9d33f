//! Palisade as a library: the command line, the configuration and the application
//! start-up, so that integration tests can start the real service in-process on a
//! random port (Zero To Production's `spawn_app`).

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod posture_facts;
pub mod telemetry;
pub mod topology;

pub use app::Application;
pub use config::Settings;
