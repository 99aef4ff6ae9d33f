//! `palisade models list`: what the configured (or a given) model file is, without a
//! running server.

use std::process::ExitCode;

use palisade_models::slot::{ModelSlot, ModelSource};

use crate::cli::ModelsCommand;
use crate::config::Overrides;

/// Runs a `models` action.
pub fn run(overrides: &Overrides, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::List { path } => {
            let slot = match path {
                Some(p) => ModelSlot::new(ModelSource::File(p)),
                None => ModelSlot::from_config(&super::settings(overrides)?.models),
            };
            let st = slot.status();
            println!("{}", serde_json::to_string_pretty(&[&st])?);
            Ok(if st.loaded || st.source == "disabled" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
