//! `GET /api/v1/activities`: the activity feed (alert changes, failed jobs, …),
//! readable by analysts, unlike the admin-only audit log.

use axum::Json;
use axum::extract::{Query, State};
use palisade_core::Timestamp;
use palisade_store::{Activity, ActivityQuery};
use serde::Serialize;

use crate::AppState;
use crate::params::Params;
use crate::problem::Problem;

/// One page of the feed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ActivityPage {
    /// Activities, newest first.
    pub items: Vec<Activity>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of the feed.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ActivityParams {
    /// Kinds starting with this (`alert.` for every alert change, `job.failed`).
    kind: Option<String>,
    /// At or after this time.
    from: Option<String>,
    /// Before this time.
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

const ACTIVITY_PARAMS: &[&str] = &["kind", "from", "to", "range", "cursor", "limit"];

/// Lists the activity feed, newest first.
#[utoipa::path(get, path = "/api/v1/activities", tag = "alerts", params(ActivityParams), responses(
    (status = 200, description = "A page of activities", body = ActivityPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_activities(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ActivityPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, ACTIVITY_PARAMS)?;
    let (from, to) = p.time_range(Timestamp::now())?;
    let page = state
        .store
        .query_activities(&ActivityQuery {
            kind_prefix: p.text("kind", 64)?,
            from,
            to,
            cursor: p.cursor()?,
            limit: p.limit()?,
        })
        .await?;
    Ok(Json(ActivityPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
