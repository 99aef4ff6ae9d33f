//! `import_logs`: imports a log file (plain or `.gz`) through the pipeline's writer —
//! the old "parse logs", "normalise" and "insert" scripts in one.
//!
//! Idempotent: the import keeps a checkpoint (file identity, line number, first-line
//! fingerprint) in the same transaction as each batch, so a job taken up again after a
//! crash, or run twice on the same file, continues where the stored lines end instead
//! of storing them twice. Only files inside `jobs.import_dirs` are read, so a job
//! cannot make the server read any file it can open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use palisade_core::duration::Span;
use palisade_formats::FormatSpec;
use palisade_sources::import::{ImportConfig, ImportError, ImportProgress, import_file};
use serde_json::{Value, json};

use crate::context::JobContext;
use crate::kind::{JobError, JobKind, KindLimits};
use crate::params::{ParamError, ParamSet, ParamSpec, ParamType};

/// The formats accepted by name.
const FORMATS: &[&str] = &[
    "auto",
    "combined",
    "common",
    "json",
    "nginx",
    "apache",
    "apache_error",
    "syslog",
];

/// The `import_logs` kind.
pub struct ImportLogs {
    dirs: Vec<PathBuf>,
    params: ParamSet,
}

impl ImportLogs {
    /// The kind, reading only inside `dirs`.
    pub fn new(dirs: &[PathBuf]) -> ImportLogs {
        let specs = [
            (
                "path",
                ParamSpec::of(ParamType::Path)
                    .required()
                    .describe("The file to import (plain or .gz), inside one of jobs.import_dirs"),
            ),
            (
                "format",
                ParamSpec::of(ParamType::String)
                    .describe("auto (detected), combined, common, json, nginx, apache, apache_error, or syslog[:YEAR]")
                    .max_length(32)
                    .pattern("[a-z_]+(:[0-9]{4})?"),
            ),
            (
                "log_format",
                ParamSpec::of(ParamType::String)
                    .describe("The server's nginx log_format or Apache LogFormat string (with format nginx or apache)")
                    .max_length(2048),
            ),
            (
                "source",
                ParamSpec::of(ParamType::String)
                    .describe("Source name for the events and the checkpoint (default import:PATH)")
                    .max_length(128)
                    .pattern("[A-Za-z0-9_.:/@-]+"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        ImportLogs {
            dirs: dirs.to_vec(),
            // The declarations above are fixed and valid; an error here is a bug caught by
            // the tests, and leaves the kind refusing every job rather than panicking.
            params: ParamSet::compile(specs).unwrap_or_default(),
        }
    }

    /// The file, resolved (symbolic links followed) and inside an allowed directory.
    fn allowed(&self, path: &str) -> Result<PathBuf, ParamError> {
        let err = |why: String| ParamError::new("path", why);
        if self.dirs.is_empty() {
            return Err(err(
                "no directory is open to imports: set jobs.import_dirs in the configuration".into(),
            ));
        }
        let real = std::fs::canonicalize(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let inside = self
            .dirs
            .iter()
            .any(|dir| std::fs::canonicalize(dir).is_ok_and(|d| real.starts_with(&d)));
        if !inside {
            return Err(err(format!(
                "is outside the directories open to imports (jobs.import_dirs: {})",
                self.dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if !real.is_file() {
            return Err(err("is not a regular file".into()));
        }
        Ok(real)
    }

    fn format_of(params: &serde_json::Map<String, Value>) -> Result<FormatSpec, ParamError> {
        let name = params
            .get("format")
            .and_then(Value::as_str)
            .filter(|f| *f != "auto");
        if let Some(n) = name {
            let base = n.split(':').next().unwrap_or(n);
            if !FORMATS.contains(&base) {
                return Err(ParamError::new(
                    "format",
                    format!("must be one of {}", FORMATS.join(", ")),
                ));
            }
        }
        let log_format = params.get("log_format").and_then(Value::as_str);
        FormatSpec::from_parts(name, log_format, None).map_err(|why| {
            let param = if why.contains("log_format") && log_format.is_some() {
                "log_format"
            } else {
                "format"
            };
            ParamError::new(param, why)
        })
    }
}

#[async_trait]
impl JobKind for ImportLogs {
    fn name(&self) -> &str {
        "import_logs"
    }

    fn description(&self) -> &str {
        "Imports a log file (plain or .gz) from jobs.import_dirs: parse, normalise, store, then the detection stages; resumes from its checkpoint instead of storing lines twice."
    }

    fn params_schema(&self) -> Value {
        self.params.schema()
    }

    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        let values = self.params.check(params, &[])?;
        let path = values
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ParamError::new("path", "missing; this parameter is required"))?;
        self.allowed(path)?;
        Self::format_of(&values)?;
        Ok(Value::Object(values))
    }

    fn default_limits(&self) -> KindLimits {
        KindLimits {
            concurrency: 1,
            max_attempts: 3,
            timeout: Span::from_secs(6 * 3600),
            ..KindLimits::default()
        }
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let values = self
            .params
            .check(ctx.params(), &[])
            .map_err(|e| JobError::fatal(format!("parameter {e}")))?;
        let path = values
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| JobError::fatal("parameter path is missing"))?;
        // Checked again: the file or the allowed directories may have changed.
        let real = self
            .allowed(path)
            .map_err(|e| JobError::fatal(format!("parameter {e}")))?;
        let format = Self::format_of(&values).map_err(|e| JobError::fatal(e.to_string()))?;
        let Some(writer) = ctx.services().writer.clone() else {
            return Err(JobError::fatal(
                "this process has no writer to import with (run it on a server or with `palisade jobs run`)",
            ));
        };
        let mut config = ImportConfig::new(Path::new(path));
        config.path = real;
        config.format = format;
        if let Some(source) = values.get("source").and_then(Value::as_str) {
            config.name = source.to_owned();
        }
        ctx.info(format!("importing {path} as source {}", config.name))
            .await;
        let progress = Arc::new(ImportProgress::default());
        let import = import_file(config, ctx.store().clone(), writer, progress.clone());
        tokio::pin!(import);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut cancelling = false;
        let result = loop {
            tokio::select! {
                result = &mut import => break result,
                _ = tick.tick() => {
                    let total = progress.bytes_total.load(Ordering::Relaxed).max(1);
                    let read = progress.bytes_read.load(Ordering::Relaxed);
                    let lines = progress.lines.load(Ordering::Relaxed);
                    let pct = u8::try_from(read.saturating_mul(100) / total).unwrap_or(100);
                    ctx.progress(pct.min(99), format!("{lines} lines read")).await;
                }
                () = ctx.cancelled(), if !cancelling => {
                    cancelling = true;
                    progress.cancelled.store(true, Ordering::Relaxed);
                }
            }
        };
        match result {
            Ok(summary) => {
                ctx.info(format!(
                    "{} lines: {} events, {} dead letters ({}){}",
                    summary.lines,
                    summary.events,
                    summary.dead_letters,
                    summary.format,
                    if summary.resumed_after > 0 {
                        format!(", resumed after line {}", summary.resumed_after)
                    } else {
                        String::new()
                    }
                ))
                .await;
                ctx.output(json!({
                    "path": path,
                    "lines": summary.lines,
                    "events": summary.events,
                    "dead_letters": summary.dead_letters,
                    "resumed_after": summary.resumed_after,
                    "format": summary.format,
                }))
                .await;
                Ok(())
            }
            Err(ImportError::Cancelled) => Err(JobError::Cancelled),
            Err(e @ (ImportError::Io { .. } | ImportError::Format { .. })) => {
                Err(JobError::fatal(e.to_string()))
            }
            Err(e) => Err(JobError::retry(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_import_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("access.log");
        std::fs::write(&inside, "x\n").unwrap();
        let kind = ImportLogs::new(&[dir.path().to_path_buf()]);
        let ok = kind
            .validate(&json!({"path": inside.display().to_string()}))
            .unwrap();
        assert_eq!(ok["path"], json!(inside.display().to_string()));
        let refused = |v: Value| kind.validate(&v).unwrap_err().param;
        assert_eq!(refused(json!({"path": "/etc/passwd"})), "path");
        assert_eq!(refused(json!({"path": "relative.log"})), "path");
        assert_eq!(
            refused(json!({"path": dir.path().display().to_string()})),
            "path"
        );
        let escape = format!("{}/../../etc/passwd", dir.path().display());
        assert_eq!(refused(json!({"path": escape})), "path");
        let p = inside.display().to_string();
        assert_eq!(refused(json!({"path": p, "format": "xml"})), "format");
        assert_eq!(refused(json!({"path": p, "format": "nginx"})), "format");
        assert_eq!(
            refused(json!({"path": p, "format": "combined", "log_format": "$x"})),
            "log_format"
        );
        assert!(
            kind.validate(&json!({"path": p, "format": "nginx", "log_format": "$remote_addr"}))
                .is_ok()
        );
        let closed = ImportLogs::new(&[]);
        assert_eq!(
            closed.validate(&json!({"path": p})).unwrap_err().param,
            "path"
        );
    }
}
