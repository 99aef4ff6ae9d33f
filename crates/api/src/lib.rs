//! The HTTP face of Palisade: the REST API, health and readiness, Prometheus metrics and
//! the OpenAPI document (generated from these handlers, so it cannot drift).
//!
//! One module per resource under [`routes`]; cross-cutting concerns (request ids, the
//! per-request log line, metrics, limits, CORS) live in [`middleware`] and are applied
//! once in [`router`].

// `Problem` (about 150 bytes) is the error of every handler and parser here. It is only
// built on the error path, once per request, so boxing it would cost more clarity than
// the copies it saves.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod json;
pub mod middleware;
pub mod openapi;
pub mod params;
pub mod problem;
pub mod routes;
pub mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method};
use palisade_core::config::{ConfigProblem, Validate, check_range};
use palisade_core::duration::Span;
use palisade_pipeline::PipelineHandle;
use palisade_store::SharedStore;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use problem::Problem;

/// `[http]`: limits and policies of the HTTP layer.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 408.
    #[serde(alias = "request_timeout_secs")]
    pub request_timeout: Span,
    /// Origins allowed to call the API from a browser; empty means none.
    pub cors_origins: Vec<String>,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Longest a client may take to send a request head (slowloris).
    pub header_timeout: Span,
    /// Longest a connection may stay silent (idle keep-alive included).
    pub idle_timeout: Span,
}

impl ApiConfig {
    /// The listener's limits.
    pub fn listener_limits(&self) -> server::ListenerLimits {
        server::ListenerLimits {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout.to_std(),
            idle_timeout: self.idle_timeout.to_std(),
            drain_timeout: self.request_timeout.to_std(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 10 * 1024 * 1024,
            request_timeout: Span::from_secs(30),
            cors_origins: Vec::new(),
            max_connections: 1024,
            header_timeout: Span::from_secs(10),
            idle_timeout: Span::from_secs(60),
        }
    }
}

impl Validate for ApiConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        check_range(
            &mut problems,
            "max_body_bytes",
            self.max_body_bytes,
            1024..=1024 * 1024 * 1024,
        );
        if !self
            .request_timeout
            .within(Span::from_secs(1), Span::from_secs(3600))
        {
            problems.push(ConfigProblem::new(
                "request_timeout",
                "must be between 1s and 1h",
            ));
        }
        check_range(
            &mut problems,
            "max_connections",
            self.max_connections,
            1..=1_000_000,
        );
        for (key, span) in [
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if !span.within(Span::from_millis(100), Span::from_secs(3600)) {
                problems.push(ConfigProblem::new(key, "must be between 100ms and 1h"));
            }
        }
        for origin in &self.cors_origins {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && !origin.contains('*');
            if !ok {
                problems.push(ConfigProblem::new(
                    "cors_origins",
                    format!("'{origin}' must be an exact origin like https://soc.example.com (scheme, host, optional port; no path, no wildcard)"),
                ));
            }
        }
        problems
    }
}

/// Everything a handler may need, shared by reference count.
#[derive(Clone)]
pub struct AppState {
    /// The store, for reads.
    pub store: SharedStore,
    /// The running pipeline: writer, sources, detection, decisions, health.
    pub pipeline: Arc<PipelineHandle>,
    /// HTTP limits.
    pub config: Arc<ApiConfig>,
    /// When the process started.
    pub started: Instant,
    /// Tokens, keys, secrets and rate limits.
    pub auth: Arc<auth::AuthContext>,
    /// `[check]`: whose `X-Forwarded-For` `/api/v1/check` believes.
    pub check: Arc<routes::check::CheckConfig>,
    /// Real-time figures and posture checks.
    pub analytics: Arc<palisade_analytics::Analytics>,
}

/// Builds the whole router with its middleware.
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let api = routes::routes()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware::gate,
        ))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state);
    let mut app = api
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.request_timeout.to_std(),
        ))
        .layer(axum::middleware::from_fn(middleware::request_limits))
        .layer(axum::middleware::from_fn(middleware::observe));
    if let Some(cors) = cors_layer(&config.cors_origins) {
        app = app.layer(cors);
    }
    app
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if allowed.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(600)),
    )
}
