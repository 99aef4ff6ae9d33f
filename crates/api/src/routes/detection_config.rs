//! `GET`/`PUT /api/v1/detection/config`: block or detect, paranoia and threshold,
//! changed at run time and kept across restarts.

use axum::Extension;
use axum::Json;
use axum::extract::State;

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::problem::Problem;
use palisade_pipeline::detection::{DetectionTuning, SETTING_KEY};

/// The detection configuration in force.
#[utoipa::path(get, path = "/api/v1/detection/config", tag = "detection", responses((status = 200, description = "In force", body = DetectionTuning)), security(("bearer" = [])))]
pub async fn get_config(State(state): State<AppState>) -> Json<DetectionTuning> {
    Json(state.pipeline.detection.config())
}

/// Changes the detection configuration now and for later starts.
#[utoipa::path(put, path = "/api/v1/detection/config", tag = "detection", request_body = DetectionTuning, responses(
    (status = 200, description = "Applied", body = DetectionTuning),
    (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn put_config(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(new): ApiJson<DetectionTuning>,
) -> Result<Json<DetectionTuning>, Problem> {
    if !(1..=4).contains(&new.paranoia) {
        return Err(Problem::invalid("paranoia", "must be 1, 2, 3 or 4"));
    }
    if new.threshold == 0 || new.threshold > 1000 {
        return Err(Problem::invalid("threshold", "must be between 1 and 1000"));
    }
    let text = serde_json::to_string(&new).map_err(|e| Problem::internal(&e))?;
    state.store.put_setting(SETTING_KEY, &text).await?;
    state
        .pipeline
        .detection
        .apply(new)
        .map_err(|e| Problem::internal(&e))?;
    audit(
        &state,
        Some(principal.actor()),
        "settings.detection",
        None,
        true,
        &ip,
        Some(text.clone()),
    )
    .await;
    palisade_alerts::Activities::new(state.store.clone(), Some(state.pipeline.live.clone()))
        .note(
            "settings.changed",
            Some(&principal.actor()),
            format!("Detection settings changed by {}", principal.actor()),
            serde_json::from_str(&text).unwrap_or_default(),
        )
        .await;
    Ok(Json(new))
}

/// The rules in force: how many, from where, and the last reload's error if any.
#[utoipa::path(get, path = "/api/v1/detection/rules", tag = "detection", responses((status = 200, description = "Loaded rules", body = palisade_pipeline::detection::RulesStatus)), security(("bearer" = [])))]
pub async fn get_rules(
    State(state): State<AppState>,
) -> Json<palisade_pipeline::detection::RulesStatus> {
    Json(state.pipeline.detection.rules_status())
}

/// Re-reads the rule directory now (it is also watched). A file that does not load
/// leaves the rules in force and is reported with its file, rule id and field.
#[utoipa::path(post, path = "/api/v1/detection/rules/reload", tag = "detection", responses(
    (status = 200, description = "Reloaded", body = palisade_pipeline::detection::RulesStatus),
    (status = 422, description = "A rule file does not load; the previous rules stay in force", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn reload_rules(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
) -> Result<Json<palisade_pipeline::detection::RulesStatus>, Problem> {
    let detection = state.pipeline.detection.clone();
    let outcome = tokio::task::spawn_blocking(move || detection.reload())
        .await
        .map_err(|e| Problem::internal(&e))?;
    super::reload::record(
        &state,
        &principal,
        &ip,
        super::reload::Reload {
            audit_action: "detection.rules.reload",
            activity_kind: "rules.reloaded",
            what: "Detection rules",
            kept: "the previous rules",
            details: serde_json::Value::Null,
        },
        &outcome,
    )
    .await;
    outcome.map(Json).map_err(|e| {
        Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("rules not reloaded, the previous rules stay in force: {e}"),
        )
    })
}
