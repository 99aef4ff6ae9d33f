//! `palisade serve`: run the service until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use crate::config::Overrides;

/// Runs the service (`role`: `--role`, all by default).
pub fn run(o: &Overrides, role: crate::topology::Role) -> anyhow::Result<ExitCode> {
    let settings = super::settings(o)?;
    crate::telemetry::init(&settings.log_level, settings.log_format);
    super::runtime()?.block_on(async {
        let app = crate::Application::build_as(settings, role).await?;
        app.run_until_stopped(crate::app::shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}
