//! Alert rules CRUD (`/api/v1/alert-rules`): analysts read them, admins change them.
//! A rule is checked by `palisade_alerts::RuleSpec` before it is stored, and the rule
//! stage uses a change within seconds.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_alerts::RuleSpec;
use palisade_core::Timestamp;
use palisade_store::{SpecInput, SpecRecord, SpecTable, StoreError};
use serde::{Deserialize, Serialize};

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::problem::Problem;

/// A rule as shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleView {
    /// Its id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Whether it raises alerts.
    pub enabled: bool,
    /// Created with the install (`builtin`) or by someone (`user`).
    pub origin: String,
    /// What it takes and how it groups.
    pub spec: RuleSpec,
    /// Created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// The rules.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleList {
    /// Rules by name.
    pub items: Vec<RuleView>,
}

/// A rule to create or replace.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// Unique name (1 to 100 characters).
    pub name: String,
    /// Whether it raises alerts (default true).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// What it takes and how it groups.
    pub spec: RuleSpec,
}

fn enabled() -> bool {
    true
}

fn view(r: SpecRecord) -> Result<RuleView, Problem> {
    let spec = serde_json::from_value(r.input.spec)
        .map_err(|e| Problem::internal(&format!("stored rule {} unreadable: {e}", r.id)))?;
    Ok(RuleView {
        id: r.id,
        name: r.input.name,
        enabled: r.input.enabled,
        origin: r.input.kind,
        spec,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn checked(input: RuleInput, origin: String) -> Result<SpecInput, Problem> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Problem::invalid("name", "must be 1 to 100 characters"));
    }
    input
        .spec
        .validate()
        .map_err(|e| Problem::invalid(&format!("spec.{}", e.field), e.message))?;
    Ok(SpecInput {
        name,
        kind: origin,
        enabled: input.enabled,
        spec: serde_json::to_value(&input.spec).map_err(|e| Problem::internal(&e))?,
    })
}

pub(crate) fn conflict(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict(m) => {
            let mut p = Problem::new(StatusCode::CONFLICT, m);
            p.field = Some("name".into());
            p
        }
        other => other.into(),
    }
}

/// Lists the alert rules.
#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "alerts", responses(
    (status = 200, description = "The rules", body = RuleList),
), security(("bearer" = [])))]
pub async fn list_rules(State(state): State<AppState>) -> Result<Json<RuleList>, Problem> {
    let items = state
        .store
        .list_specs(SpecTable::Rules)
        .await?
        .into_iter()
        .map(view)
        .collect::<Result<_, _>>()?;
    Ok(Json(RuleList { items }))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = i64, Path, description = "Rule id")), responses(
    (status = 200, description = "The rule", body = RuleView),
    (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_rule(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<RuleView>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let r = state
        .store
        .get_spec(SpecTable::Rules, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no alert rule {id}")))?;
    view(r).map(Json)
}

/// Creates a rule.
#[utoipa::path(post, path = "/api/v1/alert-rules", tag = "alerts", request_body = RuleInput, responses(
    (status = 201, description = "Created", body = RuleView),
    (status = 400, description = "Invalid rule", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn create_rule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(input): ApiJson<RuleInput>,
) -> Result<(StatusCode, Json<RuleView>), Problem> {
    let spec = checked(input, "user".into())?;
    let r = state
        .store
        .insert_spec(SpecTable::Rules, &spec)
        .await
        .map_err(conflict)?;
    audit(
        &state,
        Some(principal.actor()),
        "alert_rule.create",
        Some(r.input.name.clone()),
        true,
        &ip,
        None,
    )
    .await;
    settings_changed(
        &state,
        &principal.actor(),
        "alert rule",
        "created",
        &r.input.name,
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(r)?)))
}

/// Replaces a rule.
#[utoipa::path(put, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = i64, Path, description = "Rule id")), request_body = RuleInput, responses(
    (status = 200, description = "Replaced", body = RuleView),
    (status = 400, description = "Invalid rule", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn update_rule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    ApiJson(input): ApiJson<RuleInput>,
) -> Result<Json<RuleView>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let origin = state
        .store
        .get_spec(SpecTable::Rules, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no alert rule {id}")))?
        .input
        .kind;
    let spec = checked(input, origin)?;
    let r = state
        .store
        .update_spec(SpecTable::Rules, id, &spec)
        .await
        .map_err(conflict)?
        .ok_or_else(|| Problem::not_found(format!("no alert rule {id}")))?;
    audit(
        &state,
        Some(principal.actor()),
        "alert_rule.update",
        Some(r.input.name.clone()),
        true,
        &ip,
        None,
    )
    .await;
    settings_changed(
        &state,
        &principal.actor(),
        "alert rule",
        "changed",
        &r.input.name,
    )
    .await;
    Ok(Json(view(r)?))
}

/// Deletes a rule (its alerts and their history stay).
#[utoipa::path(delete, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = i64, Path, description = "Rule id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = crate::params::path_id(&raw)?;
    if !state.store.delete_spec(SpecTable::Rules, id).await? {
        return Err(Problem::not_found(format!("no alert rule {id}")));
    }
    audit(
        &state,
        Some(principal.actor()),
        "alert_rule.delete",
        Some(id.to_string()),
        true,
        &ip,
        None,
    )
    .await;
    settings_changed(
        &state,
        &principal.actor(),
        "alert rule",
        "deleted",
        &id.to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Puts a change of the alerting set-up (rules, channels) in the activity feed, as
/// `settings.changed`: analysts see who changed what, not only admins in the audit log.
pub(super) async fn settings_changed(
    state: &AppState,
    actor: &str,
    what: &str,
    verb: &str,
    name: &str,
) {
    palisade_alerts::Activities::new(state.store.clone(), Some(state.pipeline.live.clone()))
        .note(
            "settings.changed",
            Some(actor),
            format!("The {what} {name} was {verb} by {actor}"),
            serde_json::json!({ "setting": what, "action": verb, "name": name }),
        )
        .await;
}
