//! `/api/v1/jobs`: the job queue. Viewers read jobs, their attempts, logs and outputs;
//! analysts submit, cancel and retry them (a command may require admins); admins
//! delete logs. Parameters are checked by the kind before anything is stored, and a
//! refusal names the parameter (`params.NAME`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_core::Timestamp;
use palisade_core::job::{Job, JobAttempt, JobLogLine, JobOutput, JobState};
use palisade_core::security::Role;
use palisade_jobs::{SubmitError, SubmitFailure};
use palisade_store::{CancelOutcome, JobQuery, MAX_LIMIT};
use serde::Serialize;
use serde_json::Value;

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::params::{DEFAULT_LIMIT, Params};
use crate::problem::Problem;

type QueryPairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// A kind as listed, with the JSON Schema of its parameters and its limits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KindView {
    /// The name jobs use.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its parameters.
    #[schema(value_type = Object)]
    pub params_schema: Value,
    /// Jobs of the kind at once in one process.
    pub concurrency: usize,
    /// Failed attempts that end a job.
    pub max_attempts: u32,
    /// Longest attempt (duration text).
    pub timeout: String,
}

/// The kinds listing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KindList {
    /// Kinds by name.
    pub items: Vec<KindView>,
}

/// One page of jobs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobPage {
    /// Jobs, newest first.
    pub items: Vec<Job>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A job with every attempt.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobDetail {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// Its attempts, first to last.
    pub attempts: Vec<JobAttempt>,
}

/// One page of log lines, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LogPage {
    /// Lines in write order.
    pub items: Vec<JobLogLine>,
    /// Pass as `cursor` for the next page; null when there is none yet.
    pub next_cursor: Option<String>,
    /// The id of the last line returned: pass it as `after` to follow a running job.
    pub last_id: Option<i64>,
}

/// One page of structured outputs, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OutputPage {
    /// Outputs in the order produced.
    pub items: Vec<JobOutput>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
    /// The id of the last output returned (`after`).
    pub last_id: Option<i64>,
}

/// What a log deletion removed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// Log lines deleted.
    pub deleted: u64,
}

/// A job to run. Unknown fields are refused.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SubmitJob {
    /// The kind (see `GET /api/v1/jobs/kinds`).
    kind: String,
    /// Its parameters, as the kind's schema says.
    #[schema(value_type = Option<Object>)]
    params: Option<Value>,
}

/// Query parameters of the jobs listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct JobListParams {
    /// Exact kind.
    kind: Option<String>,
    /// pending, running, succeeded, failed or cancelled.
    #[param(pattern = "^(pending|running|succeeded|failed|cancelled)$")]
    state: Option<String>,
    /// Submitted at or after (RFC 3339 or epoch seconds).
    from: Option<String>,
    /// Submitted before.
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d, 30d.
    range: Option<String>,
    /// Enqueued by this schedule.
    schedule_id: Option<i64>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the jobs listing accepts.
pub const JOB_LIST_PARAMS: &[&str] = &[
    "kind",
    "state",
    "from",
    "to",
    "range",
    "schedule_id",
    "cursor",
    "limit",
];

/// Query parameters of the logs and output listings.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LineParams {
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Only items after this id (follow a running job with the last `last_id`).
    after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the logs and output listings accept.
pub const LINE_PARAMS: &[&str] = &["cursor", "after", "limit"];

/// The role a caller acts with (API keys never reach the routes that need one).
pub fn role_of(principal: &Principal) -> Role {
    match principal {
        Principal::User { role, .. } => *role,
        Principal::ApiKey { .. } => Role::Viewer,
    }
}

/// A refused submission as a problem naming the field.
pub fn submit_problem(e: SubmitError) -> Problem {
    match e {
        SubmitError::UnknownKind(k) => Problem::invalid(
            "kind",
            format!("'{k}' is not a job kind (see GET /api/v1/jobs/kinds)"),
        ),
        SubmitError::Param(p) if p.param == "params" => Problem::invalid("params", p.reason),
        SubmitError::Param(p) => Problem::invalid(&format!("params.{}", p.param), p.reason),
        SubmitError::Forbidden(role) => Problem::new(
            StatusCode::FORBIDDEN,
            format!("this job needs the {role} role"),
        ),
        SubmitError::Schedule(s) => Problem::invalid("cron", s.to_string()),
    }
}

/// Every job kind with the JSON Schema of its parameters.
#[utoipa::path(get, path = "/api/v1/jobs/kinds", tag = "jobs", responses(
    (status = 200, description = "Job kinds", body = KindList),
), security(("bearer" = [])))]
pub async fn list_kinds(State(state): State<AppState>) -> Json<KindList> {
    let registry = state.pipeline.jobs.registry();
    Json(KindList {
        items: registry
            .kinds()
            .map(|k| {
                let limits = registry.configured_limits(k);
                KindView {
                    name: k.name().to_owned(),
                    description: k.description().to_owned(),
                    params_schema: k.params_schema(),
                    concurrency: limits.concurrency,
                    max_attempts: limits.max_attempts,
                    timeout: limits.timeout.to_string(),
                }
            })
            .collect(),
    })
}

/// Reads a submission body, naming the field at fault.
fn parse_submit(body: &Value) -> Result<(String, Value), Problem> {
    let Some(obj) = body.as_object() else {
        return Err(Problem::invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "kind" | "params"))
    {
        return Err(Problem::invalid(
            unknown,
            "unknown field; accepted: kind, params",
        ));
    }
    let kind = match obj.get("kind") {
        Some(Value::String(k)) if !k.trim().is_empty() && k.len() <= 64 => k.trim().to_owned(),
        None => return Err(Problem::invalid("kind", "missing; give a job kind")),
        Some(_) => return Err(Problem::invalid("kind", "must be a job kind name")),
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(Problem::invalid("params", "must be a JSON object")),
    };
    Ok((kind, params))
}

/// Submits a job: the kind checks the parameters before anything is stored.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = SubmitJob, responses(
    (status = 201, description = "Enqueued", body = Job),
    (status = 400, description = "Invalid kind or parameter", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "The job needs a higher role", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn submit_job(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Job>), Problem> {
    let (kind, params) = parse_submit(&body)?;
    let actor = principal.actor();
    let job = match state
        .pipeline
        .jobs
        .submit(&kind, &params, &actor, role_of(&principal))
        .await
    {
        Ok(job) => job,
        Err(SubmitFailure::Refused(e)) => return Err(submit_problem(e)),
        Err(SubmitFailure::Store(e)) => return Err(e.into()),
    };
    audit(
        &state,
        Some(actor),
        "job.create",
        Some(format!("job {}", job.id)),
        true,
        &ip,
        Some(format!("{} {}", job.kind, job.params)),
    )
    .await;
    Ok((StatusCode::CREATED, Json(job)))
}

/// Lists jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobListParams), responses(
    (status = 200, description = "A page of jobs", body = JobPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    query: QueryPairs,
) -> Result<Json<JobPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, JOB_LIST_PARAMS)?;
    let (from, to) = p.time_range(Timestamp::now())?;
    let state_filter = p
        .get("state")?
        .map(|v| {
            JobState::parse(v.trim()).ok_or_else(|| {
                Problem::invalid(
                    "state",
                    "must be pending, running, succeeded, failed or cancelled",
                )
            })
        })
        .transpose()?;
    let schedule_id = p
        .get("schedule_id")?
        .map(|v| {
            crate::params::path_id(v.trim())
                .map_err(|_| Problem::invalid("schedule_id", "must be a positive integer"))
        })
        .transpose()?;
    let q = JobQuery {
        kind: p.text("kind", 64)?,
        state: state_filter,
        from,
        to,
        schedule_id,
        cursor: p.cursor()?,
        limit: p.limit()?,
    };
    let page = state.store.query_jobs(&q).await?;
    Ok(Json(JobPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

async fn load(state: &AppState, raw: &str) -> Result<Job, Problem> {
    let id = crate::params::path_id(raw)?;
    state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no job with id {id}")))
}

/// One job with its attempts.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses(
    (status = 200, description = "The job", body = JobDetail),
    (status = 400, description = "Invalid id", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<JobDetail>, Problem> {
    let job = load(&state, &raw).await?;
    let attempts = state.store.job_attempts(job.id).await?;
    Ok(Json(JobDetail { job, attempts }))
}

/// Stops a job: a pending one is cancelled (200), a running one is asked to stop and
/// stops within a heartbeat, its process group killed (202).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses(
    (status = 200, description = "Cancelled", body = Job),
    (status = 202, description = "Running: asked to stop", body = Job),
    (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Already finished", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn cancel_job(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Json<Job>), Problem> {
    let id = crate::params::path_id(&raw)?;
    let outcome = state
        .pipeline
        .jobs
        .cancel(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no job with id {id}")))?;
    let (status, job) = match outcome {
        CancelOutcome::Cancelled(job) => (StatusCode::OK, job),
        CancelOutcome::Requested(job) => (StatusCode::ACCEPTED, job),
        CancelOutcome::Finished(job) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                format!("job {id} already finished ({})", job.state.as_str()),
            ));
        }
    };
    audit(
        &state,
        Some(principal.actor()),
        "job.cancel",
        Some(format!("job {id}")),
        true,
        &ip,
        Some(job.kind.clone()),
    )
    .await;
    Ok((status, Json(job)))
}

/// Runs a failed or cancelled job again, with the kind's retries; its attempts, logs
/// and outputs so far are kept.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses(
    (status = 200, description = "Back in the queue", body = Job),
    (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Not failed or cancelled", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn retry_job(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<Json<Job>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let job = load(&state, &raw).await?;
    // A job is retried with the role that may submit it.
    if let Some(kind) = state.pipeline.jobs.registry().get(&job.kind) {
        let needed = kind.required_role(&job.params);
        if role_of(&principal) < needed {
            return Err(submit_problem(SubmitError::Forbidden(needed.as_str())));
        }
    }
    let job = state
        .pipeline
        .jobs
        .retry(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no job with id {id}")))?;
    if job.state != JobState::Pending {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "job {id} is {}: only failed or cancelled jobs are retried",
                job.state.as_str()
            ),
        ));
    }
    audit(
        &state,
        Some(principal.actor()),
        "job.retry",
        Some(format!("job {id}")),
        true,
        &ip,
        Some(job.kind.clone()),
    )
    .await;
    Ok(Json(job))
}

/// Reads `cursor`/`after` and `limit`: the id to continue after.
fn position(pairs: &[(String, String)]) -> Result<(i64, u32), Problem> {
    let p = Params::new(pairs, LINE_PARAMS)?;
    let cursor = p.cursor()?;
    let after = p
        .get("after")?
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| Problem::invalid("after", "must be a non-negative integer"))
        })
        .transpose()?;
    if cursor.is_some() && after.is_some() {
        return Err(Problem::invalid("after", "cannot be combined with cursor"));
    }
    let limit = p.limit()?;
    debug_assert!(limit <= MAX_LIMIT && DEFAULT_LIMIT <= MAX_LIMIT);
    Ok((cursor.map(|c| c.id).or(after).unwrap_or(0), limit))
}

/// A job's log lines in the order written, every attempt's (each line names its
/// attempt). Follow a running job by passing the last `last_id` as `after`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/logs", tag = "jobs", params(("id" = i64, Path, description = "Job id"), LineParams), responses(
    (status = 200, description = "Log lines", body = LogPage),
    (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn job_logs(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    query: QueryPairs,
) -> Result<Json<LogPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let (after, limit) = position(&pairs)?;
    let job = load(&state, &raw).await?;
    let page = state.store.job_logs(job.id, after, limit).await?;
    Ok(Json(LogPage {
        last_id: page.items.last().map(|l| l.id),
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// A job's structured outputs in the order produced.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/output", tag = "jobs", params(("id" = i64, Path, description = "Job id"), LineParams), responses(
    (status = 200, description = "Outputs", body = OutputPage),
    (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn job_output(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    query: QueryPairs,
) -> Result<Json<OutputPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let (after, limit) = position(&pairs)?;
    let job = load(&state, &raw).await?;
    let page = state.store.job_outputs(job.id, after, limit).await?;
    Ok(Json(OutputPage {
        last_id: page.items.last().map(|o| o.id),
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Deletes one finished job's log lines.
#[utoipa::path(delete, path = "/api/v1/jobs/{id}/logs", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses(
    (status = 200, description = "Deleted", body = Deleted),
    (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The job has not finished", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn delete_job_logs(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<Json<Deleted>, Problem> {
    let job = load(&state, &raw).await?;
    if !job.state.is_finished() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "job {} is {}: its logs are deleted once it finished",
                job.id,
                job.state.as_str()
            ),
        ));
    }
    let deleted = state.store.delete_job_logs(job.id).await?;
    audit(
        &state,
        Some(principal.actor()),
        "job.logs.delete",
        Some(format!("job {}", job.id)),
        true,
        &ip,
        Some(format!("{deleted} lines")),
    )
    .await;
    Ok(Json(Deleted { deleted }))
}

/// Deletes the log lines of every finished job.
#[utoipa::path(delete, path = "/api/v1/jobs/logs", tag = "jobs", responses(
    (status = 200, description = "Deleted", body = Deleted),
), security(("bearer" = [])))]
pub async fn delete_finished_logs(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
) -> Result<Json<Deleted>, Problem> {
    let deleted = state.store.delete_finished_job_logs().await?;
    audit(
        &state,
        Some(principal.actor()),
        "job.logs.delete",
        Some("finished jobs".into()),
        true,
        &ip,
        Some(format!("{deleted} lines")),
    )
    .await;
    Ok(Json(Deleted { deleted }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(body: Value) -> String {
        parse_submit(&body)
            .err()
            .and_then(|p| p.field)
            .unwrap_or_default()
    }

    #[test]
    fn submissions_are_checked_field_by_field() {
        let (kind, params) = parse_submit(&json!({"kind": "validate_data"})).unwrap();
        assert_eq!((kind.as_str(), params), ("validate_data", json!({})));
        assert_eq!(field(json!([])), "body");
        assert_eq!(field(json!({"params": {}})), "kind");
        assert_eq!(field(json!({"kind": 3})), "kind");
        assert_eq!(field(json!({"kind": "x", "params": [1]})), "params");
        assert_eq!(field(json!({"kind": "x", "priority": 1})), "priority");
        let p = submit_problem(SubmitError::Param(palisade_jobs::ParamError::new(
            "path", "no",
        )));
        assert_eq!(p.field.as_deref(), Some("params.path"));
    }
}
