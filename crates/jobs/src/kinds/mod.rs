//! The built-in job kinds, one file each.
//!
//! # Adding a kind
//!
//! A kind is one type implementing [`crate::JobKind`] in its own file (here, or in the
//! crate that owns the logic), registered once in [`crate::JobRegistry`]:
//! [`builtin`] for the kinds of this crate, or [`crate::JobRegistry::register`] by
//! whoever composes the process (the pipeline passes `PipelineConfig::jobs` extra
//! kinds). Its parameters are declared with [`crate::params::ParamSet`] so that the
//! schema and the checks cannot disagree; it reports through the
//! [`crate::JobContext`]; it must be idempotent (jobs run at least once).
//!
//! Planned kinds that plug in this way (their logic lives in `crates/vuln`, the kinds
//! are thin adapters added when it lands): `fetch_nvd` (NVD API 2.0 incremental sync;
//! its API key from the secrets store via `Services::secrets`), `fetch_circl`,
//! `import_cves` (NVD 2.0 pages from a file inside `jobs.import_dirs`), `match_cves`
//! and `generate_report`. Each: a file `kinds/<name>.rs` (or a `JobKind` in
//! `palisade-vuln`), a line in [`builtin`] or one `register` call, and its
//! `[jobs.kinds.<name>]` limits come for free.

pub mod command;
pub mod import_logs;
pub mod retention_cleanup;
pub mod validate_data;

use std::sync::Arc;

use crate::config::JobConfig;
use crate::kind::SharedKind;

/// The kinds this crate provides, configured.
pub fn builtin(config: &JobConfig) -> Vec<SharedKind> {
    vec![
        Arc::new(import_logs::ImportLogs::new(&config.import_dirs)),
        Arc::new(validate_data::ValidateData::new(&config.retention)),
        Arc::new(retention_cleanup::RetentionCleanup::new(&config.retention)),
        Arc::new(command::CommandKind::new(
            &config.commands,
            config.stop_grace,
        )),
    ]
}
