//! `GET /api/v1/posture` (the current posture, its compliance score and history),
//! `POST /api/v1/posture/run` (every check) and `POST /api/v1/posture/checks/{id}/run`
//! (one check).

use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_analytics::AnalyticsError;
use palisade_analytics::posture::{PostureReport, PostureView};
use palisade_core::Timestamp;
use palisade_store::PostureRunQuery;

use crate::AppState;
use crate::params::Params;
use crate::problem::Problem;

/// History page size when `limit` is not given, and the largest.
const HISTORY_DEFAULT: u32 = 20;
const HISTORY_MAX: u32 = 100;

impl From<AnalyticsError> for Problem {
    fn from(e: AnalyticsError) -> Self {
        match e {
            AnalyticsError::Store(e) => e.into(),
            AnalyticsError::UnknownCheck(id) => Problem::not_found(format!(
                "no posture check '{id}' (see catalog in GET /api/v1/posture)"
            )),
        }
    }
}

/// Query parameters of the posture view.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PostureParams {
    /// History: runs started at or after this time.
    from: Option<String>,
    /// History: runs started before this time.
    to: Option<String>,
    /// History: a window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// The next_cursor of the previous history page.
    cursor: Option<String>,
    /// History page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// The latest result of every check with the compliance score, the check catalog, and
/// a page of the run history.
#[utoipa::path(get, path = "/api/v1/posture", tag = "posture", params(PostureParams), responses(
    (status = 200, description = "The posture", body = PostureView),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn view(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PostureView>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, &["from", "to", "range", "cursor", "limit"])?;
    let (from, to) = p.time_range(Timestamp::now())?;
    let limit = match p.get("limit")? {
        None => HISTORY_DEFAULT,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=HISTORY_MAX).contains(n))
            .ok_or_else(|| {
                Problem::invalid(
                    "limit",
                    format!("must be an integer from 1 to {HISTORY_MAX}"),
                )
            })?,
    };
    let q = PostureRunQuery {
        from,
        to,
        cursor: p.cursor()?,
        limit,
    };
    Ok(Json(state.analytics.posture.view(&q).await?))
}

/// Runs every check now and returns the results with the new score.
#[utoipa::path(post, path = "/api/v1/posture/run", tag = "posture", responses(
    (status = 200, description = "The run", body = PostureReport),
    (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn run_all(State(state): State<AppState>) -> Result<Json<PostureReport>, Problem> {
    Ok(Json(state.analytics.posture.run_all("manual").await?))
}

/// Runs one check now.
#[utoipa::path(post, path = "/api/v1/posture/checks/{id}/run", tag = "posture",
    params(("id" = String, Path, description = "The check's id, as the catalog lists it")),
    responses(
        (status = 200, description = "The run", body = PostureReport),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such check", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    ), security(("bearer" = [])))]
pub async fn run_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PostureReport>, Problem> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(Problem::invalid(
            "id",
            "must be a check id such as key_files",
        ));
    }
    Ok(Json(state.analytics.posture.run_one(&id).await?))
}
