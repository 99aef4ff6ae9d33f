//! `GET /api/v1/models` and `POST /api/v1/models/reload`: which request model and
//! which flow model are in force (version, is_real, training data, held-out figures)
//! and reloading their files after `palisade train` without a restart; the
//! per-endpoint baselines are listed beside them (what they learnt, when they were
//! last saved).

use axum::Extension;
use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::problem::Problem;
use palisade_models::ModelStatus;
use palisade_models::baseline::BaselineStatus;

/// Every configured model and its status: the request model (when the model component
/// runs), then the per-endpoint baselines (name `baselines`: endpoints learnt, past
/// their warm-up, last save; source `disabled` when `[baselines]` is off).
pub fn statuses(state: &AppState) -> Vec<ModelStatus> {
    let guard = &state.pipeline.guard;
    let mut out: Vec<ModelStatus> = guard
        .models()
        .map(|slot| slot.status())
        .into_iter()
        .chain(guard.flow_model().map(|f| f.slot().status()))
        .collect();
    out.push(
        guard
            .baselines()
            .map_or_else(BaselineStatus::disabled, |b| b.status())
            .as_model(),
    );
    out
}

/// The models: loaded or not (and why), version, is_real, metadata.
#[utoipa::path(get, path = "/api/v1/models", tag = "models", responses((status = 200, description = "Models", body = Vec<ModelStatus>)), security(("bearer" = [])))]
pub async fn list_models(State(state): State<AppState>) -> Json<Vec<ModelStatus>> {
    Json(statuses(&state))
}

/// Reads the model file again. A file that does not load leaves the model in force
/// (or the rules alone, when none was loaded) and is reported.
#[utoipa::path(post, path = "/api/v1/models/reload", tag = "models", responses(
    (status = 200, description = "Reloaded", body = Vec<ModelStatus>),
    (status = 422, description = "The file does not load; the previous model stays in force", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn reload_models(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
) -> Result<Json<Vec<ModelStatus>>, Problem> {
    let slot = state.pipeline.guard.models().cloned();
    let flows = state.pipeline.guard.flow_model().cloned();
    if slot.is_none() && flows.is_none() {
        return Ok(Json(Vec::new()));
    }
    // Both files are read again; the first failure is reported (each model that does
    // not load keeps the one in force).
    let outcome = tokio::task::spawn_blocking(move || {
        let http = slot.map(|s| s.reload().map(|_| ()));
        let flow = flows.map(|f| f.slot().reload().map(|_| ()));
        http.unwrap_or(Ok(())).and(flow.unwrap_or(Ok(())))
    })
    .await
    .map_err(|e| Problem::internal(&e))?;
    super::reload::record(
        &state,
        &principal,
        &ip,
        super::reload::Reload {
            audit_action: "models.reload",
            activity_kind: "model.reloaded",
            what: "Models",
            kept: "the previous model",
            details: serde_json::json!({ "models": statuses(&state) }),
        },
        &outcome,
    )
    .await;
    match outcome {
        Ok(_) => Ok(Json(statuses(&state))),
        Err(e) => Err(Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "model not reloaded, the previous model (or the rules alone) stays in force: {e}"
            ),
        )),
    }
}
