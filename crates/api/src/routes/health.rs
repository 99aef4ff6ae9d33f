//! Liveness, readiness and health with the reasons behind them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use palisade_sources::SourceState;
use palisade_sources::status::SourceSnapshot;
use serde::Serialize;

use crate::AppState;
use crate::problem::Problem;
use palisade_core::supervisor::{TaskState, TaskStatus};
use palisade_pipeline::db_monitor::{DbStatus, Health};

/// A short health answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthSummary {
    /// healthy, degraded or unhealthy.
    pub status: Health,
    /// Palisade's version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Why the status is not healthy.
    pub reasons: Vec<String>,
}

/// The ingest queue between sources and the store.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueStatus {
    /// Batches waiting.
    pub depth: usize,
    /// The queue's bound.
    pub capacity: usize,
    /// Whether the last write reached the store.
    pub store_available: bool,
}

/// A component-by-component health answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthDetail {
    /// healthy, degraded or unhealthy: the worst of the components.
    pub status: Health,
    /// Palisade's version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Why the status is not healthy.
    pub reasons: Vec<String>,
    /// The database.
    pub database: DbStatus,
    /// Each source.
    #[schema(value_type = Vec<Object>)]
    pub sources: Vec<SourceSnapshot>,
    /// The ingest queue.
    pub ingest_queue: QueueStatus,
    /// Every supervised background task: running, restarting after a panic (with the
    /// panic's message and the restart count), or finished.
    pub tasks: Vec<TaskStatus>,
    /// The job queue: depth by state (null while the database cannot say).
    pub jobs: Option<JobQueueStatus>,
    /// Each request model: loaded, version, is_real, held-out metrics, or why the
    /// rules decide alone.
    pub models: Vec<palisade_models::ModelStatus>,
    /// Each Kafka source as this process sees it: state, brokers reachable, topics,
    /// partitions assigned to this member with their lag, and the last commit.
    pub kafka: Vec<KafkaHealth>,
    /// Network monitoring (packet captures → flows and devices).
    pub network: NetworkHealth,
}

/// A Kafka source in the detailed health.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KafkaHealth {
    /// The source's name.
    pub source: String,
    /// Its state (`running`, `error`, `paused`, `stopped` on an API node, …).
    #[schema(value_type = String)]
    pub state: palisade_sources::SourceState,
    /// Why, when not running.
    pub last_error: Option<String>,
    /// `bootstrap`, `group`, `topics`, `brokers` (name, state), `partitions` (topic,
    /// partition, lag), `last_commit` (at, offsets), `paused`.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// Network monitoring as health shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NetworkHealth {
    /// True when MAC vendors can be named (the IEEE OUI registry was read).
    pub vendor_registry_loaded: bool,
    /// How many vendors were read and from where, or why none were (devices then
    /// have no vendor; install Debian's `ieee-data`).
    pub vendor_registry: String,
    /// Each live capture (`[[capture]]`): interface, state (a missing privilege says
    /// which capability to grant), packets, packets/s, kernel and our drops.
    pub captures: Vec<palisade_flows::live::CaptureStatus>,
}

/// The job queue as health shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobQueueStatus {
    /// Jobs by state, across every process sharing the store.
    pub counts: palisade_store::JobCounts,
    /// Jobs running in this process.
    pub running_here: usize,
}

fn kafka_health(sources: &[SourceSnapshot]) -> Vec<KafkaHealth> {
    sources
        .iter()
        .filter(|s| s.kind == "kafka")
        .map(|s| KafkaHealth {
            source: s.name.clone(),
            state: s.state,
            last_error: s.last_error.clone(),
            detail: s.detail.clone(),
        })
        .collect()
}

fn assess(state: &AppState) -> (Health, Vec<String>, DbStatus, Vec<SourceSnapshot>) {
    let db = state.pipeline.db.snapshot();
    let sources = state.pipeline.sources.snapshot();
    let mut status = Health::Healthy;
    let mut reasons = Vec::new();
    if !(db.reachable && db.migrated) {
        status = Health::Unhealthy;
        reasons.push(format!(
            "database ({}) not usable: {}",
            db.backend,
            db.error.as_deref().unwrap_or("unknown")
        ));
    }
    for s in &sources {
        if matches!(s.state, SourceState::Error | SourceState::Waiting) {
            status = status.max(Health::Degraded);
            reasons.push(format!(
                "source {} is {}: {}",
                s.name,
                if s.state == SourceState::Error {
                    "failing"
                } else {
                    "waiting"
                },
                s.last_error.as_deref().unwrap_or("")
            ));
        }
    }
    if let Some(at) = super::check::misconfigured_since(std::time::Duration::from_secs(600)) {
        status = status.max(Health::Degraded);
        reasons.push(format!(
            "a proxy calls /api/v1/check without naming the original request (X-Original-URI, X-Forwarded-Uri or an Envoy path); those requests are refused (last at {at})"
        ));
    }
    for t in state.pipeline.supervisor.statuses() {
        if t.state == TaskState::Restarting {
            status = status.max(Health::Degraded);
            reasons.push(format!(
                "background task {} failed and is restarting ({} restarts): {}",
                t.name,
                t.restarts,
                t.last_failure.as_deref().unwrap_or("")
            ));
        }
    }
    for m in super::models::statuses(state) {
        if let Some(error) = m
            .baselines
            .as_ref()
            .and_then(|b| b.last_save_error.as_ref())
        {
            status = status.max(Health::Degraded);
            reasons.push(format!(
                "per-endpoint baselines not saved (what they learnt since the last save would not survive a restart): {error}"
            ));
        }
        if !m.loaded && m.source != "disabled" {
            status = status.max(Health::Degraded);
            reasons.push(format!(
                "{} model {} ({}) not loaded, rules decide alone: {}",
                if m.name == "flow" { "flow" } else { "request" },
                m.name,
                m.source,
                m.error.as_deref().unwrap_or("unknown")
            ));
        }
    }
    if state.pipeline.writer.depth() >= state.pipeline.writer.capacity() {
        status = status.max(Health::Degraded);
        reasons.push("ingest queue is full: the store is not keeping up".into());
    }
    (status, reasons, db, sources)
}

fn code(h: Health) -> StatusCode {
    if h == Health::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Liveness: the process is up and serving. Never touches a dependency.
#[utoipa::path(get, path = "/livez", tag = "health", responses((status = 200, description = "Alive")))]
pub async fn livez() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "alive" }))
}

/// Readiness: 200 once the database answers and has its schema, 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready"),
        (status = 503, description = "Not ready, with the reason", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    if state.pipeline.db.ready() {
        Ok(Json(serde_json::json!({ "status": "ready" })))
    } else {
        let db = state.pipeline.db.snapshot();
        Err(Problem::unavailable(
            format!(
                "database ({}) not ready: {}",
                db.backend,
                db.error.as_deref().unwrap_or("schema not applied yet")
            ),
            2,
        ))
    }
}

/// Overall health, rolled up from the components (503 when unhealthy).
#[utoipa::path(get, path = "/api/v1/health", tag = "health", responses(
    (status = 200, description = "Healthy or degraded", body = HealthSummary),
    (status = 503, description = "Unhealthy", body = HealthSummary),
))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthSummary>) {
    let (status, reasons, _, _) = assess(&state);
    (
        code(status),
        Json(HealthSummary {
            status,
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: state.started.elapsed().as_secs(),
            reasons,
        }),
    )
}

/// Health of every component: database (status, latency), sources (state, lag), queue,
/// supervised background tasks, job queue depth.
#[utoipa::path(get, path = "/api/v1/health/detailed", tag = "health", responses(
    (status = 200, description = "Healthy or degraded", body = HealthDetail),
    (status = 503, description = "Unhealthy", body = HealthDetail),
))]
pub async fn health_detailed(State(state): State<AppState>) -> (StatusCode, Json<HealthDetail>) {
    let (status, reasons, database, sources) = assess(&state);
    let kafka = kafka_health(&sources);
    let jobs =
        match tokio::time::timeout(std::time::Duration::from_secs(1), state.store.job_counts())
            .await
        {
            Ok(Ok(counts)) => Some(JobQueueStatus {
                counts,
                running_here: state.pipeline.jobs.running_here(),
            }),
            _ => None,
        };
    (
        code(status),
        Json(HealthDetail {
            status,
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: state.started.elapsed().as_secs(),
            reasons,
            database,
            sources,
            ingest_queue: QueueStatus {
                depth: state.pipeline.writer.depth(),
                capacity: state.pipeline.writer.capacity(),
                store_available: state.pipeline.writer.store_available(),
            },
            tasks: state.pipeline.supervisor.statuses(),
            jobs,
            models: super::models::statuses(&state),
            kafka,
            network: {
                let oui = palisade_flows::device::Oui::shared();
                NetworkHealth {
                    vendor_registry_loaded: oui.is_loaded(),
                    vendor_registry: oui.status().to_string(),
                    captures: palisade_flows::live::statuses(),
                }
            },
        }),
    )
}
