//! `GET /api/v1/sources`: every source's state, position, lag and counters.

use axum::Json;
use axum::extract::State;
use palisade_core::Checkpoint;
use serde::Serialize;

use crate::AppState;
use crate::problem::Problem;

/// A source as listed: live state when it runs in this process, and its stored
/// checkpoint when it has one (so imports and stopped sources show too).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceView {
    /// Stable source name.
    pub name: String,
    /// `file`, `import` or `push`; `stored` for a checkpoint with no live source.
    pub kind: String,
    /// What it reads.
    pub target: Option<String>,
    /// starting, running, waiting, error, stopped; `idle` when not running here.
    pub state: String,
    /// Last error or wait reason.
    pub last_error: Option<String>,
    /// Format in use.
    pub format: Option<String>,
    /// Lines read since start.
    pub lines: u64,
    /// Events parsed since start.
    pub events: u64,
    /// Dead letters since start.
    pub dead_letters: u64,
    /// Byte offset read up to.
    pub offset: u64,
    /// Bytes not yet read.
    pub lag_bytes: u64,
    /// Newest event time read.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<palisade_core::Timestamp>,
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
        .sources
        .snapshot()
        .into_iter()
        .map(|s| {
            let checkpoint = checkpoints
                .iter()
                .position(|c| c.source == s.name)
                .map(|i| checkpoints.swap_remove(i));
            SourceView {
                name: s.name,
                kind: s.kind.to_owned(),
                target: Some(s.target),
                state: serde_json::to_value(s.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                last_error: s.last_error,
                format: s.format,
                lines: s.lines,
                events: s.events,
                dead_letters: s.dead_letters,
                offset: s.offset,
                lag_bytes: s.lag_bytes,
                last_event_at: s.last_event_at,
                checkpoint,
            }
        })
        .collect();
    items.extend(checkpoints.into_iter().map(|c| SourceView {
        name: c.source.clone(),
        kind: "stored".into(),
        target: None,
        state: "idle".into(),
        last_error: None,
        format: None,
        lines: 0,
        events: 0,
        dead_letters: 0,
        offset: c.offset,
        lag_bytes: 0,
        last_event_at: None,
        checkpoint: Some(c),
    }));
    Ok(Json(SourcePage {
        items,
        next_cursor: None,
    }))
}
