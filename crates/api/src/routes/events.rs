//! `GET /api/v1/events` and `GET /api/v1/events/{id}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_core::Timestamp;
use palisade_core::event::StoredEvent;
use serde::Serialize;

use crate::AppState;
use crate::params::event_query;
use crate::problem::Problem;

/// One page of events (the shape of every list endpoint).
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// Events, newest first.
    pub items: Vec<StoredEvent>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of the events listing (documentation; parsing is in `params`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventParams {
    /// Events at or after this time (RFC 3339 or epoch seconds).
    from: Option<String>,
    /// Events before this time (RFC 3339 or epoch seconds).
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d (not with from/to).
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// Client address or CIDR network (IPv4 or IPv6).
    client_ip: Option<String>,
    /// Exact HTTP method, e.g. GET.
    #[param(pattern = "^[A-Za-z0-9_-]{1,32}$")]
    method: Option<String>,
    /// Status code (404) or class (4xx).
    #[param(pattern = "^([1-5][0-9][0-9]|[1-5][xX][xX])$")]
    status: Option<String>,
    /// Path starts with this (case-sensitive, as logged).
    path_prefix: Option<String>,
    /// Exact host.
    host: Option<String>,
    /// Exact source name.
    source: Option<String>,
    /// Event kind: http, error_log, auth, syslog or flow.
    #[param(pattern = "^(http|error_log|auth|syslog|flow)$")]
    kind: Option<String>,
    /// Case-insensitive text searched in path, query, user agent, referer, message, user.
    #[param(min_length = 1, max_length = 256, pattern = "[^ ]")]
    q: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Lists events matching the filters, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventParams),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let q = event_query(&pairs, Timestamp::now())?;
    let page = state.store.query_events(&q).await?;
    Ok(Json(EventPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One event by id.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event", body = StoredEvent),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_event(
    State(state): State<AppState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<StoredEvent>, Problem> {
    let Path(raw) = id.map_err(|e| Problem::invalid("id", e.body_text()))?;
    let id = crate::params::path_id(&raw)?;
    match state.store.get_event(id).await? {
        Some(e) => Ok(Json(e)),
        None => Err(Problem::not_found(format!("no event with id {id}"))),
    }
}
