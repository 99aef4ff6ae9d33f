//! `GET /api/v1/scenarios`: the behaviour scenarios loaded, with their counters.

use axum::Json;
use axum::extract::State;

use crate::AppState;
use palisade_pipeline::stages::behaviour::ScenariosStatus;

/// Loaded scenarios, overflows since start, and the bucket state they hold.
#[utoipa::path(get, path = "/api/v1/scenarios", tag = "detection", responses((status = 200, description = "Loaded scenarios", body = ScenariosStatus)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Json<ScenariosStatus> {
    let behaviour = state.pipeline.behaviour.clone();
    let status = tokio::task::spawn_blocking(move || behaviour.status())
        .await
        .unwrap_or(ScenariosStatus {
            buckets: 0,
            approx_bytes: 0,
            scenarios: Vec::new(),
        });
    Json(status)
}
