//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::OpenApi;

use crate::routes;

/// The API's description. Every route in `routes::routes` is listed here; a test in
/// `tests/openapi.rs` checks that the two agree.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Palisade API",
        description = "Self-hosted security monitoring: ingest, detection, alerts and live views.",
        license(name = "Apache-2.0")
    ),
    paths(
        routes::health::livez,
        routes::health::readyz,
        routes::health::health,
        routes::health::health_detailed,
        routes::metrics::metrics,
        routes::events::list_events,
        routes::events::get_event,
        routes::dead_letters::list_dead_letters,
        routes::sources::list_sources,
        routes::ingest::ingest,
    ),
    components(schemas(crate::problem::Problem, crate::problem::InvalidParam)),
    tags(
        (name = "events", description = "Stored events"),
        (name = "ingest", description = "Getting data in: push, sources, dead letters"),
        (name = "health", description = "Liveness, readiness, health and metrics"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc.to_json().unwrap_or_else(|_| "{}".to_owned())
    })
}
