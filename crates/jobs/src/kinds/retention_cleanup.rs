//! `retention_cleanup`: deletes what is older than its retention period, kind by kind
//! (`[jobs.retention]`: events, dead letters, threats, audit, job logs, finished jobs,
//! closed alerts, finished notification deliveries, activities),
//! in batches of a few thousand rows so that the store stays responsive and a cancel
//! takes effect between two batches. Idempotent: a second run finds less or nothing.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::duration::Span;
use palisade_store::DataKind;
use serde_json::{Value, json};

use crate::config::RetentionConfig;
use crate::context::JobContext;
use crate::kind::{JobError, JobKind, KindLimits};
use crate::params::{ParamError, ParamSet, ParamSpec, ParamType};

/// Rows deleted per transaction.
const BATCH: u32 = 5000;

/// The `retention_cleanup` kind.
pub struct RetentionCleanup {
    retention: RetentionConfig,
    params: ParamSet,
}

impl RetentionCleanup {
    /// The kind for the configured periods.
    pub fn new(retention: &RetentionConfig) -> RetentionCleanup {
        let names: Vec<&str> = DataKind::ALL.iter().map(|k| k.as_str()).collect();
        let specs = [(
            "only".to_owned(),
            ParamSpec::of(ParamType::String)
                .describe("Clean only this kind of data (default: every kind with a period)")
                .choices(&names),
        )]
        .into_iter()
        .collect();
        RetentionCleanup {
            retention: retention.clone(),
            params: ParamSet::compile(specs).unwrap_or_default(),
        }
    }
}

#[async_trait]
impl JobKind for RetentionCleanup {
    fn name(&self) -> &str {
        "retention_cleanup"
    }

    fn description(&self) -> &str {
        "Deletes data older than its retention period ([jobs.retention]: events, dead_letters, threats, audit, job_logs, jobs, alerts, alert_deliveries, activities), in batches."
    }

    fn params_schema(&self) -> Value {
        self.params.schema()
    }

    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        self.params.check(params, &[]).map(Value::Object)
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
        let only = ctx.param_str("only").and_then(DataKind::parse);
        let kinds: Vec<(DataKind, Span)> = DataKind::ALL
            .into_iter()
            .filter(|k| only.is_none_or(|o| o == *k))
            .filter_map(|k| self.retention.period(k).map(|p| (k, p)))
            .collect();
        if kinds.is_empty() {
            ctx.info("no retention period is set for this data ([jobs.retention])")
                .await;
            return Ok(());
        }
        let now = Timestamp::now();
        for (i, (kind, period)) in kinds.iter().enumerate() {
            let before = now.add_micros(-period.as_micros());
            let mut deleted = 0u64;
            loop {
                if ctx.is_cancelled() {
                    return Err(JobError::Cancelled);
                }
                let n = ctx
                    .store()
                    .delete_older_than(*kind, before, BATCH)
                    .await
                    .map_err(|e| JobError::retry(format!("{}: {e}", kind.as_str())))?;
                deleted += n;
                if n < u64::from(BATCH) {
                    break;
                }
                ctx.progress(
                    u8::try_from(i * 100 / kinds.len()).unwrap_or(99),
                    format!("{}: {deleted} deleted so far", kind.as_str()),
                )
                .await;
            }
            ctx.info(format!(
                "{}: {deleted} older than {period} ({before}) deleted",
                kind.as_str()
            ))
            .await;
            ctx.output(json!({
                "kind": kind.as_str(),
                "deleted": deleted,
                "older_than": before,
                "period": period.to_string(),
            }))
            .await;
            ctx.progress(
                u8::try_from((i + 1) * 100 / kinds.len()).unwrap_or(100),
                format!("{} done", kind.as_str()),
            )
            .await;
        }
        Ok(())
    }
}
