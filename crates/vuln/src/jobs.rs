//! The vulnerability pipeline as job kinds (the scripts our users ran by hand: fetch
//! NVD, fetch CIRCL, import CVE files, run matching, generate a report), thin adapters
//! from the job queue's [`JobContext`] to the tasks of this crate.
//!
//! Every kind is idempotent, as jobs run at least once: feeds upsert by CVE id and keep
//! their cursor, matching syncs the open matches, a report is a new document.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::duration::Span;
use palisade_jobs::params::{ParamError, ParamSet, ParamSpec, ParamType};
use palisade_jobs::{JobContext, JobError, JobKind, KindLimits, SharedKind};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    ReportKind, ReportRequest, TaskContext, ThreatSink, VulnConfig, VulnError, fetch_circl,
    fetch_nvd, generate_report, import_files, run_matching,
};

/// The kinds, configured: feeds from `[vuln]`, files only from `import_dirs`, new
/// critical matches to `threats`.
pub fn kinds(
    config: &VulnConfig,
    import_dirs: &[PathBuf],
    threats: Option<ThreatSink>,
) -> Vec<SharedKind> {
    let config = Arc::new(config.clone());
    vec![
        Arc::new(FetchNvd {
            config: config.clone(),
            threats: threats.clone(),
        }),
        Arc::new(FetchCircl {
            config,
            params: params([(
                "ids",
                ParamSpec::of(ParamType::String)
                    .required()
                    .describe("CVE ids to fetch, comma-separated (CVE-2021-44228,CVE-2021-41773)")
                    .max_length(4096)
                    .pattern("CVE-[0-9]{4}-[0-9]{4,}(,CVE-[0-9]{4}-[0-9]{4,})*"),
            )]),
        }),
        Arc::new(ImportCves {
            dirs: import_dirs.to_vec(),
            params: params([(
                "path",
                ParamSpec::of(ParamType::Path)
                    .required()
                    .describe("An NVD API 2.0 page saved as a file, inside one of jobs.import_dirs"),
            )]),
        }),
        Arc::new(MatchCves { threats }),
        Arc::new(GenerateReport {
            params: params([
                (
                    "kind",
                    ParamSpec::of(ParamType::String)
                        .required()
                        .choices(&["vulnerabilities", "security"])
                        .describe("vulnerabilities (per asset and severity) or security (threats, sources, decisions, alerts)"),
                ),
                (
                    "range",
                    ParamSpec::of(ParamType::String)
                        .choices(&["1h", "24h", "7d", "30d", "90d"])
                        .describe("The period, ending now (default 7d)"),
                ),
            ]),
        }),
    ]
}

fn params<const N: usize>(specs: [(&str, ParamSpec); N]) -> ParamSet {
    // The declarations are fixed and valid; a mistake leaves the kind refusing every
    // job (and the tests failing) rather than panicking.
    ParamSet::compile(specs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        .unwrap_or_default()
}

/// Runs a task of this crate under a job: its progress goes to the job (twice a
/// second at most), the job's cancellation to the task, its result to the job's output.
async fn drive<T: Serialize>(
    ctx: &JobContext,
    work: impl AsyncFnOnce(&TaskContext<'_>) -> Result<T, VulnError>,
) -> Result<(), JobError> {
    let latest: Arc<Mutex<Option<(u8, String)>>> = Arc::new(Mutex::new(None));
    let sink = latest.clone();
    let progress = move |pct: u8, message: &str| {
        *sink.lock().unwrap_or_else(PoisonError::into_inner) = Some((pct, message.to_owned()));
    };
    let cancelled = || ctx.is_cancelled();
    let task = TaskContext::new(&progress, &cancelled);
    let run = work(&task);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            _ = tick.tick() => {
                let next = latest.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some((pct, message)) = next {
                    ctx.progress(pct.min(99), message).await;
                }
            }
        }
    };
    match result {
        Ok(summary) => {
            let value = serde_json::to_value(&summary).unwrap_or(Value::Null);
            ctx.info(format!("done: {value}")).await;
            ctx.output(value).await;
            ctx.progress(100, "done").await;
            Ok(())
        }
        Err(VulnError::Cancelled) => Err(JobError::Cancelled),
        Err(e @ (VulnError::Parse(_) | VulnError::Io { .. } | VulnError::Inventory(_))) => {
            Err(JobError::fatal(e.to_string()))
        }
        Err(e) => Err(JobError::retry(e.to_string())),
    }
}

fn limits(timeout_secs: u64, max_attempts: u32) -> KindLimits {
    KindLimits {
        concurrency: 1,
        max_attempts,
        timeout: Span::from_secs(timeout_secs),
        backoff: Span::from_secs(30),
        max_backoff: Span::from_secs(1800),
    }
}

/// `fetch_nvd`: the NVD API 2.0 incremental sync, then matching when CVEs changed.
struct FetchNvd {
    config: Arc<VulnConfig>,
    threats: Option<ThreatSink>,
}

#[async_trait]
impl JobKind for FetchNvd {
    fn name(&self) -> &str {
        "fetch_nvd"
    }

    fn description(&self) -> &str {
        "Fetches CVEs changed since the last run from the NVD API 2.0 (rate limits honoured, resumable), then matches every asset when anything changed. The API key, if any, comes from the secret named by [vuln.nvd] api_key_secret."
    }

    fn params_schema(&self) -> Value {
        json!({"type": "object", "properties": {}, "additionalProperties": false})
    }

    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        no_params(params)
    }

    fn default_limits(&self) -> KindLimits {
        limits(6 * 3600, 5)
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let key = match &ctx.services().secrets {
            Some(secrets) => secrets
                .reveal(&self.config.nvd.api_key_secret)
                .await
                .map_err(|e| JobError::retry(format!("reading the NVD API key: {e}")))?,
            None => None,
        };
        ctx.info(if key.is_some() {
            "fetching from the NVD with an API key"
        } else {
            "fetching from the NVD without an API key (slower rate limit)"
        })
        .await;
        let (store, config, threats) = (ctx.store().clone(), &self.config.nvd, &self.threats);
        drive(ctx, async |task| {
            fetch_nvd(&store, config, key, threats.as_ref(), task).await
        })
        .await
    }
}

/// `fetch_circl`: named CVEs from a CIRCL vulnerability-lookup instance.
struct FetchCircl {
    config: Arc<VulnConfig>,
    params: ParamSet,
}

#[async_trait]
impl JobKind for FetchCircl {
    fn name(&self) -> &str {
        "fetch_circl"
    }

    fn description(&self) -> &str {
        "Fetches the named CVEs from the CIRCL vulnerability-lookup API ([vuln.circl] url) and stores them."
    }

    fn params_schema(&self) -> Value {
        self.params.schema()
    }

    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        self.params.check(params, &[]).map(Value::Object)
    }

    fn default_limits(&self) -> KindLimits {
        limits(3600, 5)
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let ids: Vec<String> = ctx
            .param_str("ids")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let (store, config) = (ctx.store().clone(), &self.config.circl);
        drive(ctx, async |task| {
            fetch_circl(&store, config, &ids, task).await
        })
        .await
    }
}

/// `import_cves`: NVD API 2.0 pages saved as files (offline).
struct ImportCves {
    dirs: Vec<PathBuf>,
    params: ParamSet,
}

impl ImportCves {
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
        if !inside || !real.is_file() {
            return Err(err(
                "is not a regular file inside the directories open to imports (jobs.import_dirs)"
                    .into(),
            ));
        }
        Ok(real)
    }
}

#[async_trait]
impl JobKind for ImportCves {
    fn name(&self) -> &str {
        "import_cves"
    }

    fn description(&self) -> &str {
        "Imports an NVD API 2.0 page saved as a file (offline), from jobs.import_dirs."
    }

    fn params_schema(&self) -> Value {
        self.params.schema()
    }

    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        let values = self.params.check(params, &[])?;
        let path = values.get("path").and_then(Value::as_str).unwrap_or("");
        self.allowed(path)?;
        Ok(Value::Object(values))
    }

    fn default_limits(&self) -> KindLimits {
        limits(3600, 2)
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let path = ctx.param_str("path").unwrap_or("");
        let real = self
            .allowed(path)
            .map_err(|e| JobError::fatal(format!("parameter {e}")))?;
        let store = ctx.store().clone();
        drive(ctx, async |task| import_files(&store, &[real], task).await).await
    }
}

/// `match_cves`: every asset against every stored CVE.
struct MatchCves {
    threats: Option<ThreatSink>,
}

#[async_trait]
impl JobKind for MatchCves {
    fn name(&self) -> &str {
        "match_cves"
    }

    fn description(&self) -> &str {
        "Matches every asset's software against the stored CVEs; new critical matches become threats."
    }

    fn params_schema(&self) -> Value {
        json!({"type": "object", "properties": {}, "additionalProperties": false})
    }

    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        no_params(params)
    }

    fn default_limits(&self) -> KindLimits {
        limits(6 * 3600, 3)
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let (store, threats) = (ctx.store().clone(), &self.threats);
        drive(ctx, async |task| {
            run_matching(&store, threats.as_ref(), task).await
        })
        .await
    }
}

/// `generate_report`: a vulnerability report or a security summary, stored.
struct GenerateReport {
    params: ParamSet,
}

#[async_trait]
impl JobKind for GenerateReport {
    fn name(&self) -> &str {
        "generate_report"
    }

    fn description(&self) -> &str {
        "Generates a report for a period ending now (vulnerabilities per asset and severity, or a security summary) as JSON, CSV and HTML; its id is the job's output (GET /api/v1/reports/{id})."
    }

    fn params_schema(&self) -> Value {
        self.params.schema()
    }

    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        self.params.check(params, &[]).map(Value::Object)
    }

    fn default_limits(&self) -> KindLimits {
        limits(3600, 3)
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let kind = match ctx.param_str("kind") {
            Some("security") => ReportKind::Security,
            _ => ReportKind::Vulnerabilities,
        };
        let span = Span::parse(ctx.param_str("range").unwrap_or("7d"))
            .map_err(|e| JobError::fatal(format!("parameter range: {e}")))?;
        let to = Timestamp::now();
        let request = ReportRequest {
            kind,
            from: to.add_micros(-span.as_micros()),
            to,
            created_by: ctx.job().created_by.clone(),
        };
        let store = ctx.store().clone();
        drive(ctx, async |task| {
            generate_report(&store, &request, task).await
        })
        .await
    }
}

fn no_params(params: &Value) -> Result<Value, ParamError> {
    match params {
        Value::Null => Ok(json!({})),
        Value::Object(m) if m.is_empty() => Ok(json!({})),
        Value::Object(m) => Err(ParamError::new(
            m.keys().next().map_or("params", String::as_str),
            "this kind takes no parameters",
        )),
        _ => Err(ParamError::new("params", "must be an object")),
    }
}
