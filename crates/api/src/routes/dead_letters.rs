//! `GET /api/v1/dead-letters`: lines that could not be parsed, with the reason.

use axum::Json;
use axum::extract::{Query, State};
use palisade_core::Timestamp;
use palisade_core::dead_letter::StoredDeadLetter;
use serde::Serialize;

use crate::AppState;
use crate::params::dead_letter_query;
use crate::problem::Problem;

/// One page of dead letters.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    /// Dead letters, newest first.
    pub items: Vec<StoredDeadLetter>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of the dead-letter listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeadLetterParams {
    /// Rejected at or after this time.
    from: Option<String>,
    /// Rejected before this time.
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// Exact source name.
    source: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Lists dead letters, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "ingest",
    params(DeadLetterParams),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetterPage),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeadLetterPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let q = dead_letter_query(&pairs, Timestamp::now())?;
    let page = state.store.query_dead_letters(&q).await?;
    Ok(Json(DeadLetterPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
