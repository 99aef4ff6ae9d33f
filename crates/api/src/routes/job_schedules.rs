//! `/api/v1/jobs/schedules`: cron schedules that enqueue jobs. Viewers list them;
//! admins create, replace and delete them (each change audited). Schedules declared in
//! the configuration are listed with `origin: config` and changed only there.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_core::Timestamp;
use palisade_core::job::{Schedule, ScheduleOrigin};
use palisade_jobs::CronSchedule;
use palisade_store::StoreError;
use serde::Serialize;
use serde_json::Value;

use super::auth::audit;
use super::jobs::submit_problem;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::problem::Problem;

/// A schedule as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    /// The schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The cron expression in words.
    pub describe: Option<String>,
}

impl From<Schedule> for ScheduleView {
    fn from(schedule: Schedule) -> Self {
        let describe = CronSchedule::parse(&schedule.cron, &schedule.timezone)
            .ok()
            .map(|c| c.describe());
        ScheduleView { schedule, describe }
    }
}

/// The schedules listing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleList {
    /// Schedules by name.
    pub items: Vec<ScheduleView>,
}

/// A schedule to create or to replace one with. Unknown fields are refused.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ScheduleInput {
    /// Unique name: 1 to 64 letters, digits, '_', '-' or '.'.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// The kind it enqueues.
    kind: String,
    /// The jobs' parameters (checked by the kind).
    #[schema(value_type = Option<Object>)]
    params: Option<Value>,
    /// Cron: 5 fields (`30 3 * * *`), 6 with seconds first, or `@daily`.
    cron: String,
    /// UTC (default), an offset like +02:00, or an IANA name like Europe/Paris.
    timezone: Option<String>,
    /// Whether it fires (default true).
    enabled: Option<bool>,
}

struct Input {
    name: String,
    kind: String,
    params: Value,
    cron: String,
    timezone: String,
    enabled: bool,
}

fn text(obj: &serde_json::Map<String, Value>, key: &str, max: usize) -> Result<String, Problem> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= max => Ok(s.trim().to_owned()),
        Some(Value::String(_)) => Err(Problem::invalid(
            key,
            format!("must be 1 to {max} characters"),
        )),
        None => Err(Problem::invalid(key, "missing")),
        Some(_) => Err(Problem::invalid(key, "must be text")),
    }
}

fn parse_input(body: &Value) -> Result<Input, Problem> {
    let Some(obj) = body.as_object() else {
        return Err(Problem::invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = obj.keys().find(|k| {
        !matches!(
            k.as_str(),
            "name" | "kind" | "params" | "cron" | "timezone" | "enabled"
        )
    }) {
        return Err(Problem::invalid(
            unknown,
            "unknown field; accepted: name, kind, params, cron, timezone, enabled",
        ));
    }
    let name = text(obj, "name", 64)?;
    if !palisade_jobs::config::valid_name(&name) {
        return Err(Problem::invalid(
            "name",
            "1 to 64 letters, digits, '_', '-' or '.'",
        ));
    }
    let timezone = match obj.get("timezone") {
        None | Some(Value::Null) => "UTC".to_owned(),
        Some(_) => text(obj, "timezone", 64)?,
    };
    let enabled = match obj.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Problem::invalid("enabled", "must be true or false")),
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(Problem::invalid("params", "must be a JSON object")),
    };
    Ok(Input {
        name,
        kind: text(obj, "kind", 64)?,
        params,
        cron: text(obj, "cron", 256)?,
        timezone,
        enabled,
    })
}

/// Checks an input with the kind and the cron parser; the schedule to store.
fn prepare(
    state: &AppState,
    input: &Input,
    by: &str,
) -> Result<palisade_core::job::NewSchedule, Problem> {
    if input.name == palisade_jobs::config::RETENTION_SCHEDULE {
        return Err(Problem::invalid(
            "name",
            "'retention' is kept for the clean-up schedule of [jobs.retention]",
        ));
    }
    if let Err(e) = CronSchedule::parse(&input.cron, "UTC") {
        return Err(Problem::invalid("cron", e.to_string()));
    }
    if let Err(e) = palisade_jobs::schedule::parse_time_zone(&input.timezone) {
        return Err(Problem::invalid("timezone", e.to_string()));
    }
    state
        .pipeline
        .jobs
        .registry()
        .prepare_schedule(
            &input.name,
            &input.kind,
            &input.params,
            &input.cron,
            &input.timezone,
            input.enabled,
            ScheduleOrigin::Api,
            by,
            Timestamp::now(),
        )
        .map_err(submit_problem)
}

fn conflict(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict(what) => {
            Problem::new(StatusCode::CONFLICT, format!("{what} already exists"))
        }
        other => other.into(),
    }
}

/// Every schedule, by name.
#[utoipa::path(get, path = "/api/v1/jobs/schedules", tag = "jobs", responses(
    (status = 200, description = "Schedules", body = ScheduleList),
), security(("bearer" = [])))]
pub async fn list_schedules(State(state): State<AppState>) -> Result<Json<ScheduleList>, Problem> {
    let items = state.store.list_schedules().await?;
    Ok(Json(ScheduleList {
        items: items.into_iter().map(ScheduleView::from).collect(),
    }))
}

/// Creates a schedule.
#[utoipa::path(post, path = "/api/v1/jobs/schedules", tag = "jobs", request_body = ScheduleInput, responses(
    (status = 201, description = "Created", body = ScheduleView),
    (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn create_schedule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<ScheduleView>), Problem> {
    let input = parse_input(&body)?;
    let actor = principal.actor();
    let new = prepare(&state, &input, &actor)?;
    let schedule = state
        .store
        .create_schedule(&new, Timestamp::now())
        .await
        .map_err(conflict)?;
    audit(
        &state,
        Some(actor),
        "schedule.create",
        Some(schedule.name.clone()),
        true,
        &ip,
        Some(format!(
            "{} {} ({})",
            schedule.kind, schedule.cron, schedule.timezone
        )),
    )
    .await;
    Ok((StatusCode::CREATED, Json(schedule.into())))
}

async fn load(state: &AppState, raw: &str) -> Result<Schedule, Problem> {
    let id = crate::params::path_id(raw)?;
    state
        .store
        .get_schedule(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no schedule with id {id}")))
}

fn only_api(s: &Schedule) -> Result<(), Problem> {
    if s.origin == ScheduleOrigin::Config {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "schedule '{}' is declared in the configuration; change it there",
                s.name
            ),
        ));
    }
    Ok(())
}

/// One schedule.
#[utoipa::path(get, path = "/api/v1/jobs/schedules/{id}", tag = "jobs", params(("id" = i64, Path, description = "Schedule id")), responses(
    (status = 200, description = "The schedule", body = ScheduleView),
    (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_schedule(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ScheduleView>, Problem> {
    Ok(Json(load(&state, &raw).await?.into()))
}

/// Replaces a schedule's definition (its next run is computed again).
#[utoipa::path(put, path = "/api/v1/jobs/schedules/{id}", tag = "jobs", params(("id" = i64, Path, description = "Schedule id")), request_body = ScheduleInput, responses(
    (status = 200, description = "Replaced", body = ScheduleView),
    (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Declared in the configuration, or the name is taken", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn put_schedule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<ScheduleView>, Problem> {
    let old = load(&state, &raw).await?;
    only_api(&old)?;
    let input = parse_input(&body)?;
    let actor = principal.actor();
    let new = prepare(&state, &input, &old.created_by)?;
    let schedule = state
        .store
        .update_schedule(old.id, &new, Timestamp::now())
        .await
        .map_err(conflict)?
        .ok_or_else(|| Problem::not_found(format!("no schedule with id {}", old.id)))?;
    audit(
        &state,
        Some(actor),
        "schedule.update",
        Some(schedule.name.clone()),
        true,
        &ip,
        Some(format!(
            "{} {} ({}){}",
            schedule.kind,
            schedule.cron,
            schedule.timezone,
            if schedule.enabled { "" } else { ", disabled" }
        )),
    )
    .await;
    Ok(Json(schedule.into()))
}

/// Deletes a schedule (the jobs it enqueued stay).
#[utoipa::path(delete, path = "/api/v1/jobs/schedules/{id}", tag = "jobs", params(("id" = i64, Path, description = "Schedule id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Declared in the configuration", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn delete_schedule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    let old = load(&state, &raw).await?;
    only_api(&old)?;
    if !state.store.delete_schedule(old.id).await? {
        return Err(Problem::not_found(format!(
            "no schedule with id {}",
            old.id
        )));
    }
    audit(
        &state,
        Some(principal.actor()),
        "schedule.delete",
        Some(old.name.clone()),
        true,
        &ip,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(body: Value) -> String {
        parse_input(&body)
            .err()
            .and_then(|p| p.field)
            .unwrap_or_default()
    }

    #[test]
    fn inputs_are_checked_field_by_field() {
        let ok = parse_input(&json!({"name": "n", "kind": "k", "cron": "@daily"})).unwrap();
        assert_eq!((ok.timezone.as_str(), ok.enabled), ("UTC", true));
        assert_eq!(field(json!([])), "body");
        assert_eq!(field(json!({"kind": "k", "cron": "@daily"})), "name");
        assert_eq!(
            field(json!({"name": "a b", "kind": "k", "cron": "@daily"})),
            "name"
        );
        assert_eq!(field(json!({"name": "n", "cron": "@daily"})), "kind");
        assert_eq!(field(json!({"name": "n", "kind": "k"})), "cron");
        assert_eq!(
            field(json!({"name": "n", "kind": "k", "cron": "@daily", "enabled": "yes"})),
            "enabled"
        );
        assert_eq!(
            field(json!({"name": "n", "kind": "k", "cron": "@daily", "at": 1})),
            "at"
        );
    }
}
