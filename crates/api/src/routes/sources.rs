//! `GET /api/v1/sources`: every source's state, position, lag and counters.

use axum::Json;
use axum::extract::State;
use palisade_core::Checkpoint;
use palisade_sources::status::SourceSnapshot;
use serde::Serialize;

use crate::AppState;
use crate::problem::Problem;

/// A source as listed: its live state (or `idle` when only its checkpoint is known)
/// and the durable checkpoint a restart resumes from.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceView {
    /// Name, kind (`file`, `import`, `push`, `stored`), target, state, last error,
    /// format, counters since start, offset and lag in bytes.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub live: SourceSnapshot,
    /// The durable checkpoint: the position a restart resumes from.
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<Checkpoint>,
}

/// The sources listing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SourcePage {
    /// Sources.
    pub items: Vec<SourceView>,
    /// Always null: the list is never paginated.
    pub next_cursor: Option<String>,
}

/// Lists sources with their state, offsets, lag and counters.
#[utoipa::path(
    get,
    path = "/api/v1/sources",
    tag = "ingest",
    responses((status = 200, description = "All sources", body = SourcePage))
)]
pub async fn list_sources(State(state): State<AppState>) -> Result<Json<SourcePage>, Problem> {
    // Checkpoints are a bonus: when the database is down the live view still answers.
    let mut checkpoints = state.store.checkpoints().await.unwrap_or_default();
    let mut items: Vec<SourceView> = state
        .pipeline
        .sources
        .snapshot()
        .into_iter()
        .map(|live| {
            let checkpoint = checkpoints
                .iter()
                .position(|c| c.source == live.name)
                .map(|i| checkpoints.swap_remove(i));
            SourceView { live, checkpoint }
        })
        .collect();
    items.extend(checkpoints.into_iter().map(|c| SourceView {
        live: SourceSnapshot::idle(&c.source, c.offset),
        checkpoint: Some(c),
    }));
    Ok(Json(SourcePage {
        items,
        next_cursor: None,
    }))
}
