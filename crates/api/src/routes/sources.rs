//! `GET /api/v1/sources`: every source's state, position, lag and counters.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use palisade_core::Checkpoint;
use palisade_sources::status::SourceSnapshot;
use palisade_store::SourceTotals;
use serde::Serialize;

use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
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
    /// What the source has stored over all time and every process (imports included),
    /// as the store counts it; the live counters above are since this process started.
    pub stored: Option<SourceTotals>,
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
    // Checkpoints and totals are a bonus: when the database is down the live view
    // still answers.
    let mut checkpoints = state.store.checkpoints().await.unwrap_or_default();
    let mut totals = state.store.source_totals().await.unwrap_or_default();
    let mut take_totals = |name: &str| {
        totals
            .iter()
            .position(|t| t.source == name)
            .map(|i| totals.swap_remove(i))
    };
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
            let stored = take_totals(&live.name);
            SourceView {
                live,
                checkpoint,
                stored,
            }
        })
        .collect();
    for c in checkpoints {
        let mut live = SourceSnapshot::idle(&c.source, c.offset);
        live.lines = c.line_no;
        let stored = take_totals(&c.source);
        items.push(SourceView {
            live,
            checkpoint: Some(c),
            stored,
        });
    }
    // Sources known only from what they stored (pushes, syslog, another process).
    for t in std::mem::take(&mut totals) {
        items.push(SourceView {
            live: SourceSnapshot::idle(&t.source, 0),
            checkpoint: None,
            stored: Some(t),
        });
    }
    Ok(Json(SourcePage {
        items,
        next_cursor: None,
    }))
}

/// A source's runtime switch after a change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceSwitch {
    /// The source.
    pub name: String,
    /// Whether it is switched off.
    pub paused: bool,
}

/// Switches a Kafka source off: its consumers (on every node) store and commit what
/// they read, leave the group, and stay off across restarts until resumed.
#[utoipa::path(
    post,
    path = "/api/v1/sources/{name}/pause",
    tag = "ingest",
    params(("name" = String, Path, description = "The source's name")),
    responses(
        (status = 200, description = "Paused (every node follows within a few seconds)", body = SourceSwitch),
        (status = 404, description = "No such source", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a source that can be switched", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn pause_source(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<Json<SourceSwitch>, Problem> {
    switch(&state, &principal, &ip, name, true).await
}

/// Switches a paused Kafka source on again: it rejoins its group and reads on from
/// the committed offsets.
#[utoipa::path(
    post,
    path = "/api/v1/sources/{name}/resume",
    tag = "ingest",
    params(("name" = String, Path, description = "The source's name")),
    responses(
        (status = 200, description = "Resumed (every node follows within a few seconds)", body = SourceSwitch),
        (status = 404, description = "No such source", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a source that can be switched", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn resume_source(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<Json<SourceSwitch>, Problem> {
    switch(&state, &principal, &ip, name, false).await
}

/// Kinds of source with a runtime switch.
const SWITCHABLE: &[&str] = &["kafka"];

async fn switch(
    state: &AppState,
    principal: &Principal,
    ip: &str,
    name: String,
    paused: bool,
) -> Result<Json<SourceSwitch>, Problem> {
    let Some(kind) = state.pipeline.sources.kind_of(&name) else {
        return Err(Problem::not_found(format!(
            "name: no source named '{}' is configured",
            name.chars().take(64).collect::<String>()
        )));
    };
    if !SWITCHABLE.contains(&kind) {
        return Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            format!(
                "name: '{name}' is a {kind} source; only Kafka sources can be paused and resumed"
            ),
        ));
    }
    palisade_sources::switch::set_paused(&state.store, &name, paused).await?;
    super::auth::audit(
        state,
        Some(principal.actor()),
        if paused {
            "source.pause"
        } else {
            "source.resume"
        },
        Some(name.clone()),
        true,
        ip,
        None,
    )
    .await;
    Ok(Json(SourceSwitch { name, paused }))
}
