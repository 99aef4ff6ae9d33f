//! `palisade vuln …`: the vulnerability engine from the command line, on the configured
//! store without a running server: import NVD API 2.0 pages saved as files (offline),
//! and match every asset against the stored CVEs.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use palisade_vuln::TaskContext;

use crate::cli::VulnCommand;
use crate::config::Overrides;

/// Runs a `vuln` subcommand.
pub fn run(o: &Overrides, command: VulnCommand) -> anyhow::Result<ExitCode> {
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
        match command {
            VulnCommand::Import { files, quiet } => {
                let bar = bar(!quiet && std::io::stderr().is_terminal(), files.len());
                let report = |pct: u8, msg: &str| {
                    bar.set_position(u64::from(pct));
                    bar.set_message(msg.to_owned());
                };
                let never = || false;
                let summary =
                    palisade_vuln::import_files(&store, &files, &TaskContext::new(&report, &never))
                        .await
                        .context("importing NVD pages")?;
                bar.finish_and_clear();
                println!(
                    "{} files, {} records: {} new, {} updated, {} unchanged, {} unreadable",
                    summary.files,
                    summary.records,
                    summary.stored.inserted,
                    summary.stored.updated,
                    summary.stored.unchanged,
                    summary.rejected
                );
                Ok(if summary.rejected > 0 {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                })
            }
            VulnCommand::Match { quiet } => {
                let bar = bar(!quiet && std::io::stderr().is_terminal(), 0);
                let report = |pct: u8, msg: &str| {
                    bar.set_position(u64::from(pct));
                    bar.set_message(msg.to_owned());
                };
                let never = || false;
                // Threats for new critical matches are stored after the run: there is no
                // running pipeline (and its recorder) here.
                let raised = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                let keep = raised.clone();
                let sink: palisade_vuln::ThreatSink = std::sync::Arc::new(move |t| {
                    keep.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(t);
                });
                let summary = palisade_vuln::run_matching(
                    &store,
                    Some(&sink),
                    &TaskContext::new(&report, &never),
                )
                .await
                .context("matching")?;
                let threats = std::mem::take(
                    &mut *raised
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                store
                    .insert_threats(&threats)
                    .await
                    .context("storing threats")?;
                bar.finish_and_clear();
                println!(
                    "{} assets: {} matches opened, {} kept, {} resolved, {} threats raised",
                    summary.assets, summary.opened, summary.kept, summary.resolved, summary.threats
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn bar(visible: bool, files: usize) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(100);
    let template = if files > 0 {
        "{msg:40!} [{bar:30}] {pos}%"
    } else {
        "matching {msg:30!} [{bar:30}] {pos}%"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
