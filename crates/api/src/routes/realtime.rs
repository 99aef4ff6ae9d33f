//! `GET /api/v1/metrics/realtime`: the latest real-time figures the analytics sampler
//! computed from the metrics registry (the same figures go out on the live feed's
//! `metrics` topic).

use axum::Json;
use axum::extract::State;
use palisade_analytics::RealtimeFigures;

use crate::AppState;
use crate::problem::Problem;

/// Requests/s, blocked/s, threats/s, check and proxy latency p50/p99, ingest lag and
/// process CPU and memory, over the configured window.
#[utoipa::path(get, path = "/api/v1/metrics/realtime", tag = "analytics", responses(
    (status = 200, description = "The latest figures", body = RealtimeFigures),
    (status = 503, description = "The first window is not complete yet (right after start)", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn realtime(State(state): State<AppState>) -> Result<Json<RealtimeFigures>, Problem> {
    match state.analytics.realtime.latest() {
        Some(figures) => Ok(Json((*figures).clone())),
        None => {
            let wait = state.analytics.config().sample_every.as_secs().max(1);
            Err(Problem::unavailable(
                "the first real-time figures are computed a few seconds after start",
                wait,
            ))
        }
    }
}
