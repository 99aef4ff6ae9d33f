//! `palisade migrate`: apply the schema and exit.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Overrides;

/// Applies migrations to the configured database.
pub fn run(o: &Overrides) -> anyhow::Result<ExitCode> {
    let settings = super::settings(o)?;
    crate::telemetry::init(&settings.log_level, settings.log_format);
    super::runtime()?.block_on(async {
        let store = crate::app::open_store(&settings)?;
        store.migrate().await.with_context(|| {
            format!(
                "migrating {}",
                palisade_store::redact_url(&settings.database_url)
            )
        })?;
        println!("{}: schema up to date", store.backend());
        Ok(ExitCode::SUCCESS)
    })
}
