//! `GET /api/v1/scenarios`: the behaviour scenarios loaded, with their counters.

use axum::Json;
use axum::extract::State;

use crate::AppState;
use palisade_pipeline::stages::behaviour::ScenariosStatus;

/// Loaded scenarios, overflows since start and threats stored (all time, every
/// process, imports included), and the bucket state they hold.
#[utoipa::path(get, path = "/api/v1/scenarios", tag = "detection", responses((status = 200, description = "Loaded scenarios", body = ScenariosStatus)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Json<ScenariosStatus> {
    let behaviour = state.pipeline.behaviour.clone();
    let mut status = tokio::task::spawn_blocking(move || behaviour.status())
        .await
        .unwrap_or(ScenariosStatus {
            buckets: 0,
            approx_bytes: 0,
            scenarios: Vec::new(),
        });
    let ids: Vec<u32> = status.scenarios.iter().map(|s| s.id).collect();
    // The store's count is the figure that matches what is stored; with the database
    // down the live counters still answer.
    if let Ok(counts) = state.store.count_threats_by_rule(&ids).await {
        for view in &mut status.scenarios {
            let key = view.id.to_string();
            view.stored_threats = Some(counts.iter().find(|c| c.key == key).map_or(0, |c| c.count));
        }
    }
    Json(status)
}
