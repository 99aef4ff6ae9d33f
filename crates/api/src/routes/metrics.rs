//! `GET /metrics` in the Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use palisade_core::metrics::registry;

use crate::AppState;

/// Updates the gauges that are cheaper to read at scrape time than to keep current.
fn refresh_gauges(state: &AppState) {
    let r = registry();
    for s in state.pipeline.sources.snapshot() {
        r.gauge(
            "palisade_source_lag_bytes",
            "Bytes of a file source not yet read.",
            &["source"],
            &[&s.name],
        )
        .set(s.lag_bytes as i64);
        r.gauge(
            "palisade_source_lines",
            "Lines a source has read since start.",
            &["source"],
            &[&s.name],
        )
        .set(s.lines as i64);
        r.gauge(
            "palisade_source_dead_letters",
            "Lines a source could not parse since start.",
            &["source"],
            &[&s.name],
        )
        .set(s.dead_letters as i64);
    }
    r.gauge(
        "palisade_uptime_seconds",
        "Seconds since the process started.",
        &[],
        &[],
    )
    .set(state.started.elapsed().as_secs() as i64);
    if let Some(rss) = resident_bytes() {
        r.gauge(
            "process_resident_memory_bytes",
            "Resident memory of the process.",
            &[],
            &[],
        )
        .set(rss);
    }
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Every metric, for Prometheus to scrape.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    refresh_gauges(&state);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        registry().render(),
    )
}
