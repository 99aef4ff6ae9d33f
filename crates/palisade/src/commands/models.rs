//! `palisade models list`: what the configured (or given) request and flow model files
//! are, without a running server.

use std::process::ExitCode;

use palisade_models::flow::FlowModelSlot;
use palisade_models::flow::scorer::FlowSource;
use palisade_models::slot::{ModelSlot, ModelSource};

use crate::cli::ModelsCommand;
use crate::config::Overrides;

/// Runs a `models` action.
pub fn run(overrides: &Overrides, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::List { path, flow_path } => {
            let statuses = if path.is_some() || flow_path.is_some() {
                let mut v = Vec::new();
                if let Some(p) = path {
                    v.push(ModelSlot::new(ModelSource::File(p)).status());
                }
                if let Some(p) = flow_path {
                    v.push(FlowModelSlot::new(FlowSource::File(p)).status());
                }
                v
            } else {
                let models = super::settings(overrides)?.models;
                vec![
                    ModelSlot::from_config(&models).status(),
                    FlowModelSlot::from_config(&models).status(),
                ]
            };
            println!("{}", serde_json::to_string_pretty(&statuses)?);
            Ok(
                if statuses
                    .iter()
                    .all(|st| st.loaded || st.source == "disabled")
                {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
    }
}
