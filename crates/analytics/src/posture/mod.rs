//! Security posture checks and the compliance score.
//!
//! Each check is one file under [`checks`] implementing [`PostureCheck`]: it looks at
//! the [`PostureFacts`] the binary gathers (and the store, for credentials) and says
//! what it checked, what it found and how to fix it. [`Posture`] runs all of them (on a
//! schedule and on demand) or one, stores every run, and scores the current posture:
//! the latest result of each check, weighted by its severity's points (OWASP CRS
//! values: notice 2 … critical 5), a pass earning all of it, a warning half, a failure
//! nothing; checks that do not apply or could not run are left out.

pub mod checks;
pub mod facts;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use palisade_core::duration::Span;
use palisade_core::posture::CheckStatus;
use palisade_core::severity::Severity;
use palisade_core::{Shutdown, Timestamp};
use palisade_store::{
    NewPostureRun, Page, PostureResult, PostureRun, PostureRunQuery, SharedStore,
    StoredPostureResult,
};
use serde::Serialize;

pub use facts::PostureFacts;

use crate::{AnalyticsError, Ready};

/// Longest one check may take before it is reported as an error.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after start-up before the first scheduled run (the proxies bind, the first
/// responses come in).
const FIRST_RUN_AFTER: Duration = Duration::from_secs(30);

/// What one check concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The verdict.
    pub status: CheckStatus,
    /// What was checked.
    pub checked: String,
    /// What was found.
    pub found: String,
    /// How to fix it.
    pub fix: Option<String>,
    /// The facts behind it.
    pub detail: serde_json::Value,
}

impl Finding {
    fn new(status: CheckStatus, checked: impl Into<String>, found: impl Into<String>) -> Finding {
        Finding {
            status,
            checked: checked.into(),
            found: found.into(),
            fix: None,
            detail: serde_json::Value::Null,
        }
    }

    /// Nothing to fix.
    pub fn pass(checked: impl Into<String>, found: impl Into<String>) -> Finding {
        Finding::new(CheckStatus::Pass, checked, found)
    }

    /// Something to fix.
    pub fn fail(
        checked: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding::new(CheckStatus::Fail, checked, found).with_fix(fix)
    }

    /// Something to look at.
    pub fn warn(
        checked: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding::new(CheckStatus::Warn, checked, found).with_fix(fix)
    }

    /// The check does not apply here.
    pub fn not_applicable(checked: impl Into<String>, found: impl Into<String>) -> Finding {
        Finding::new(CheckStatus::NotApplicable, checked, found)
    }

    /// The check could not run.
    pub fn error(checked: impl Into<String>, why: impl Into<String>) -> Finding {
        Finding::new(CheckStatus::Error, checked, why)
    }

    /// With how to fix it.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }

    /// With the facts behind it.
    pub fn with_detail(mut self, detail: impl Serialize) -> Finding {
        self.detail = serde_json::to_value(detail).unwrap_or(serde_json::Value::Null);
        self
    }
}

/// What a check may look at.
pub struct CheckContext<'a> {
    /// The service's facts.
    pub facts: &'a dyn PostureFacts,
    /// The store (credentials).
    pub store: &'a SharedStore,
    /// Now.
    pub now: Timestamp,
    /// A credential unused for longer is stale.
    pub stale_after: Span,
    /// A TLS terminator fronts every public listener.
    pub tls_in_front: bool,
}

/// One posture check (one file each, registered in [`checks::all`]).
#[async_trait]
pub trait PostureCheck: Send + Sync {
    /// Stable id (`detection_mode`), used in the API and the history.
    fn id(&self) -> &'static str;
    /// What it is about, in a few words.
    fn title(&self) -> &'static str;
    /// How much a failure matters: its weight in the score.
    fn severity(&self) -> Severity;
    /// Looks and concludes.
    async fn run(&self, ctx: &CheckContext<'_>) -> Finding;
}

/// A check, as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CheckInfo {
    /// Stable id.
    pub id: &'static str,
    /// What it is about.
    pub title: &'static str,
    /// Its weight.
    pub severity: Severity,
}

/// A run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PostureReport {
    /// The stored run's id.
    pub run_id: i64,
    /// When it started.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it ended.
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: Timestamp,
    /// The compliance score after it (0–100; null when no check counts).
    pub score: Option<u8>,
    /// The results of the checks it ran.
    pub results: Vec<PostureResult>,
}

/// `GET /api/v1/posture`: the current posture and its history.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PostureView {
    /// The compliance score of the current results (0–100; null before any run).
    pub score: Option<u8>,
    /// The latest result of every check.
    pub checks: Vec<StoredPostureResult>,
    /// Every check Palisade has (to run one by id).
    pub catalog: Vec<CheckInfo>,
    /// Runs, newest first (a page).
    pub history: Vec<PostureRun>,
    /// Pass as `cursor` for older runs; null on the last page.
    pub next_cursor: Option<String>,
}

/// The score of a set of results: each weighted by its severity's points.
pub fn score<'a>(results: impl IntoIterator<Item = &'a PostureResult>) -> Option<u8> {
    let (mut earned, mut possible) = (0.0, 0.0);
    for r in results {
        if let Some(credit) = r.status.credit() {
            let weight = f64::from(r.severity.points());
            earned += weight * credit;
            possible += weight;
        }
    }
    (possible > 0.0).then(|| (earned / possible * 100.0).round().clamp(0.0, 100.0) as u8)
}

/// The runner: every check, the facts, the store.
pub struct Posture {
    checks: Vec<Arc<dyn PostureCheck>>,
    facts: Arc<dyn PostureFacts>,
    store: SharedStore,
    stale_after: Span,
    tls_in_front: bool,
    history: Span,
    /// One run at a time (a scheduled run and a click do not interleave).
    running: tokio::sync::Mutex<()>,
}

impl Posture {
    /// A runner over `checks`.
    pub fn new(
        checks: Vec<Arc<dyn PostureCheck>>,
        facts: Arc<dyn PostureFacts>,
        store: SharedStore,
        config: &crate::AnalyticsConfig,
    ) -> Posture {
        Posture {
            checks,
            facts,
            store,
            stale_after: config.stale_credentials_after,
            tls_in_front: config.tls_in_front,
            history: config.posture_history,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Every check.
    pub fn catalog(&self) -> Vec<CheckInfo> {
        self.checks
            .iter()
            .map(|c| CheckInfo {
                id: c.id(),
                title: c.title(),
                severity: c.severity(),
            })
            .collect()
    }

    async fn run_checks(
        &self,
        which: &[Arc<dyn PostureCheck>],
        cause: String,
    ) -> Result<PostureReport, AnalyticsError> {
        let _one_at_a_time = self.running.lock().await;
        let started_at = Timestamp::now();
        let ctx = CheckContext {
            facts: &*self.facts,
            store: &self.store,
            now: started_at,
            stale_after: self.stale_after,
            tls_in_front: self.tls_in_front,
        };
        let mut results = Vec::with_capacity(which.len());
        for check in which {
            let finding = tokio::time::timeout(CHECK_TIMEOUT, check.run(&ctx))
                .await
                .unwrap_or_else(|_| {
                    Finding::error(
                        check.title(),
                        format!("the check took longer than {}s", CHECK_TIMEOUT.as_secs()),
                    )
                });
            results.push(PostureResult {
                check_id: check.id().to_owned(),
                title: check.title().to_owned(),
                status: finding.status,
                severity: check.severity(),
                checked: finding.checked,
                found: finding.found,
                fix: finding.fix,
                detail: finding.detail,
            });
        }
        // The score after this run: these results over the latest of the others.
        let mut current: Vec<PostureResult> = self
            .store
            .latest_posture_results()
            .await?
            .into_iter()
            .map(|s| s.result)
            .filter(|r| self.checks.iter().any(|c| c.id() == r.check_id))
            .filter(|r| !results.iter().any(|n| n.check_id == r.check_id))
            .collect();
        current.extend(results.iter().cloned());
        let score = score(&current);
        let finished_at = Timestamp::now();
        let run_id = self
            .store
            .insert_posture_run(&NewPostureRun {
                started_at,
                finished_at,
                cause,
                score,
                results: results.clone(),
            })
            .await?;
        let pruned = self
            .store
            .prune_posture_runs(finished_at.add_micros(-self.history.as_micros()))
            .await?;
        if pruned > 0 {
            tracing::debug!(message = "Old posture runs deleted.", runs = pruned);
        }
        Ok(PostureReport {
            run_id,
            started_at,
            finished_at,
            score,
            results,
        })
    }

    /// Runs every check.
    pub async fn run_all(&self, cause: &str) -> Result<PostureReport, AnalyticsError> {
        let checks = self.checks.clone();
        self.run_checks(&checks, cause.to_owned()).await
    }

    /// Runs one check by id.
    pub async fn run_one(&self, id: &str) -> Result<PostureReport, AnalyticsError> {
        let check = self
            .checks
            .iter()
            .find(|c| c.id() == id)
            .cloned()
            .ok_or_else(|| AnalyticsError::UnknownCheck(id.to_owned()))?;
        self.run_checks(&[check], format!("manual:{id}")).await
    }

    /// The current posture and a page of its history.
    pub async fn view(&self, history: &PostureRunQuery) -> Result<PostureView, AnalyticsError> {
        let checks: Vec<StoredPostureResult> = self
            .store
            .latest_posture_results()
            .await?
            .into_iter()
            .filter(|r| self.checks.iter().any(|c| c.id() == r.result.check_id))
            .collect();
        let Page { items, next_cursor } = self.store.posture_runs(history).await?;
        Ok(PostureView {
            score: score(checks.iter().map(|c| &c.result)),
            checks,
            catalog: self.catalog(),
            history: items,
            next_cursor,
        })
    }

    /// Runs every check every `every`, the first time shortly after the database is
    /// ready, until shutdown.
    pub(crate) async fn schedule(
        self: Arc<Self>,
        every: Duration,
        ready: Ready,
        mut shutdown: Shutdown,
    ) {
        while !ready() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.recv() => return,
            }
        }
        let mut wait = FIRST_RUN_AFTER.min(every);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.recv() => return,
            }
            wait = match self.run_all("schedule").await {
                Ok(report) => {
                    tracing::info!(
                        message = "Posture checks ran.",
                        score = report.score,
                        run = report.run_id
                    );
                    every
                }
                Err(error) => {
                    tracing::warn!(message = "Posture checks could not be stored; will retry.", %error);
                    Duration::from_secs(60).min(every)
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: CheckStatus, severity: Severity) -> PostureResult {
        PostureResult {
            check_id: "x".into(),
            title: "x".into(),
            status,
            severity,
            checked: String::new(),
            found: String::new(),
            fix: None,
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_score_weighs_by_severity_and_skips_what_does_not_apply() {
        assert_eq!(score(&[]), None);
        assert_eq!(
            score(&[r(CheckStatus::NotApplicable, Severity::Critical)]),
            None
        );
        assert_eq!(score(&[r(CheckStatus::Pass, Severity::Notice)]), Some(100));
        // Critical fail (5) + notice pass (2): 2/7.
        assert_eq!(
            score(&[
                r(CheckStatus::Fail, Severity::Critical),
                r(CheckStatus::Pass, Severity::Notice),
                r(CheckStatus::Error, Severity::Critical),
            ]),
            Some(29)
        );
        // A warning earns half.
        assert_eq!(score(&[r(CheckStatus::Warn, Severity::Error)]), Some(50));
    }
}
