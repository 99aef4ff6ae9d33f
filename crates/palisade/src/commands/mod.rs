//! One module per subcommand.

pub mod apikey;
pub mod calibrate;
pub mod config_check;
pub mod eval;
pub mod eval_model;
pub mod eval_split;
pub mod health;
pub mod ingest;
pub mod jobs;
pub mod migrate;
pub mod models;
pub mod secrets;
pub mod serve;
pub mod train;
pub mod train_flows;
pub mod user;
pub mod vuln;

use crate::config::{Overrides, Settings};

/// Loads settings or returns the full list of problems as the error.
pub fn settings(o: &Overrides) -> anyhow::Result<Settings> {
    Ok(Settings::load(o)?)
}

/// A multi-threaded runtime for commands that need one.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
