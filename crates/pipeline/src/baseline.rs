//! The per-endpoint baselines' share of a judgement (policy in
//! [`palisade_models::baseline`]): their points join the verdict's score, their
//! deviations go on the threat as evidence with a plain explanation, and deviations
//! strong enough alone become an anomaly threat. Also the supervised task that saves the
//! baselines periodically and loads them at start.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use palisade_core::Timestamp;
use palisade_core::metrics::{Counter, registry};
use palisade_core::severity::Severity;
use palisade_core::threat::{Evidence, Threat};
use palisade_core::verdict::Action;
use palisade_detect::Verdict;
use palisade_models::baseline::{SavedBaseline, Snapshot};
use palisade_models::{BaselinePolicy, Baselines, Observation};
use palisade_store::{BaselineMerge, BaselineRow, SharedStore};

use crate::db_monitor::DbHealth;

/// The rule id baseline evidence carries (no rule has id 0; the location says
/// `baseline`).
pub const BASELINE_EVIDENCE_ID: u32 = 0;

/// The threat category of a request only the baselines found anomalous.
pub const ANOMALY_CATEGORY: &str = "anomaly";

/// `palisade_baseline_anomalies_total`: requests whose deviations reached `report_points`
/// (the handle is looked up once, not in the registry's lock for every anomaly).
fn anomalies() -> &'static Counter {
    static COUNTER: OnceLock<Arc<Counter>> = OnceLock::new();
    COUNTER.get_or_init(|| {
        registry().counter(
            "palisade_baseline_anomalies_total",
            "Requests the per-endpoint baselines found anomalous (deviation points at or over report_points).",
            &[],
            &[],
        )
    })
}

/// `palisade_baseline_save_failures_total`.
fn save_failures() -> Arc<Counter> {
    registry().counter(
        "palisade_baseline_save_failures_total",
        "Failed saves of the per-endpoint baselines to the database.",
        &[],
        &[],
    )
}

/// The baseline part of one judgement.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BaselinePart {
    /// What the baselines said.
    pub observation: Observation,
    /// The points added to the score (capped per mode).
    pub points: u32,
    /// Whether the deviations alone reach `report_points`.
    pub reported: bool,
}

/// Adds the capped points of what the baselines said of a request (`observation`, from
/// `Baselines::observe_parsed` or `observe_args`) to `verdict` (`detect`: detect-only
/// mode or a log line). Reads nothing the baselines learnt: the observation did, so
/// that the ingest inspector can take it in event order and the rest on any thread.
pub fn score(
    policy: &BaselinePolicy,
    observation: Observation,
    detect: bool,
    verdict: &mut Verdict,
) -> BaselinePart {
    let points = policy.part(&observation, detect);
    verdict.score = verdict.score.saturating_add(points);
    verdict.blocked |= verdict.score >= verdict.threshold;
    let reported = policy.reports(&observation);
    if reported {
        anomalies().inc();
    }
    BaselinePart {
        observation,
        points,
        reported,
    }
}

/// Whether the baselines may learn from a request with this verdict: only when nothing
/// else found anything in it.
pub fn learnable(verdict: &Verdict) -> bool {
    verdict.findings.is_empty() && !verdict.blocked
}

/// Adds the baselines' evidence to the threat the rest of the judgement raised, or
/// raises an anomaly threat when the deviations alone blocked or reached
/// `report_points`. `model_points` is the model part, for the recorded sum. The
/// request is read only when an anomaly threat is built.
pub(crate) fn threat(
    threat: Option<Threat>,
    request: &mut crate::guard::RequestAt<'_>,
    verdict: &Verdict,
    part: &BaselinePart,
    model_points: u32,
    decision: Action,
    source: &str,
) -> Option<Threat> {
    let o = &part.observation;
    if o.deviations.is_empty() {
        return threat;
    }
    let rules = verdict
        .score
        .saturating_sub(part.points)
        .saturating_sub(model_points);
    let mut evidence: Vec<Evidence> = o
        .deviations
        .iter()
        .map(|d| Evidence {
            rule_id: BASELINE_EVIDENCE_ID,
            location: "baseline".to_owned(),
            part: if d.parameter.is_empty() {
                d.kind.to_owned()
            } else {
                format!("{} {}", d.kind, d.parameter)
            },
            decoded_value: d.explanation.clone(),
            matched: format!("{} points", d.points),
        })
        .collect();
    evidence.push(Evidence {
        rule_id: BASELINE_EVIDENCE_ID,
        location: "baseline".to_owned(),
        part: o.endpoint.clone(),
        decoded_value: format!(
            "{} deviation points against a baseline of {} requests",
            o.points, o.learnt
        ),
        matched: format!(
            "rules {rules} + model {model_points} + baseline {} = {}",
            part.points, verdict.score
        ),
    });
    match threat {
        Some(mut t) => {
            t.score = verdict.score;
            t.evidence.extend(evidence);
            Some(t)
        }
        None if verdict.blocked || part.reported => {
            // Reported but let through: "detect", like detect-only mode.
            let decision = if decision == Action::Allow {
                Action::Detect
            } else {
                decision
            };
            Some(Threat {
                evidence,
                ..crate::guard::threat_about(
                    request.get(),
                    source,
                    decision,
                    ANOMALY_CATEGORY.to_owned(),
                    Severity::Warning,
                    verdict.score,
                )
            })
        }
        None => None,
    }
}

/// Combines a node's delta with the stored row, in the store's lock ([`palisade_models::baseline::merge`]).
fn merge_rows() -> BaselineMerge {
    Arc::new(|delta: &BaselineRow, stored: Option<&BaselineRow>| {
        match palisade_models::baseline::merge::merge_saved(
            &delta.endpoint,
            stored.map(|r| r.profile.as_str()),
            &delta.profile,
        ) {
            Ok((profile, requests)) => Some(BaselineRow {
                endpoint: delta.endpoint.clone(),
                requests: i64::try_from(requests).unwrap_or(i64::MAX),
                profile,
                updated_at: delta.updated_at,
            }),
            Err(error) => {
                tracing::warn!(message = "A baseline delta does not parse; it is not saved.", endpoint = %delta.endpoint, %error);
                None
            }
        }
    })
}

/// Saves one snapshot: what this node learnt since it last synchronised is added to
/// the stored rows (so serving nodes sharing the table do not erase each other's
/// learning), and the sums are adopted. On failure the snapshot is marked unsaved for
/// the next round.
async fn save(baselines: &Baselines, store: &SharedStore) -> Result<usize, String> {
    let snapshot = baselines.snapshot();
    if snapshot.changed.is_empty() && snapshot.evicted.is_empty() {
        return Ok(0);
    }
    let now = Timestamp::now();
    let rows: Vec<BaselineRow> = snapshot
        .changed
        .iter()
        .map(|s| BaselineRow {
            endpoint: s.endpoint.clone(),
            requests: i64::try_from(s.requests).unwrap_or(i64::MAX),
            profile: s.profile.clone(),
            updated_at: now,
        })
        .collect();
    match store
        .merge_baselines(&rows, &snapshot.evicted, merge_rows())
        .await
    {
        Ok(written) => {
            let n = written.len() + snapshot.evicted.len();
            baselines.synced(written.into_iter().map(|r| SavedBaseline {
                endpoint: r.endpoint,
                requests: u64::try_from(r.requests).unwrap_or(0),
                profile: r.profile,
            }));
            Ok(n)
        }
        Err(e) => {
            baselines.unsaved(Snapshot {
                changed: snapshot.changed,
                evicted: snapshot.evicted,
            });
            Err(e.to_string())
        }
    }
}

/// Loads the saved baselines once the database is ready, then saves the changed ones
/// every `every` and once more at shutdown. Runs under the supervisor (a failed save is
/// logged, counted and retried at the next round).
pub async fn persist(
    baselines: Arc<Baselines>,
    store: SharedStore,
    db: Arc<DbHealth>,
    every: Duration,
    mut shutdown: palisade_core::Shutdown,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if db.ready() {
            let limit = u32::try_from(baselines.config().max_endpoints).unwrap_or(u32::MAX);
            match store.load_baselines(limit).await {
                Ok(rows) => {
                    let n = baselines.restore(rows.into_iter().map(|r| SavedBaseline {
                        endpoint: r.endpoint,
                        requests: u64::try_from(r.requests).unwrap_or(0),
                        profile: r.profile,
                    }));
                    baselines.note_restored(n);
                    tracing::info!(message = "Per-endpoint baselines loaded.", endpoints = n);
                    break;
                }
                Err(error) => {
                    tracing::error!(message = "Cannot load the saved baselines; will retry.", %error);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => return,
        }
    }
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = shutdown.recv() => true,
        };
        match save(&baselines, &store).await {
            Ok(0) => {}
            Ok(rows) => baselines.note_saved(rows),
            Err(error) => {
                save_failures().inc();
                baselines.note_save_failed(&error);
                tracing::error!(message = "Cannot save the per-endpoint baselines; will retry.", %error);
            }
        }
        if stopping {
            return;
        }
    }
}
