//! The inline protecting proxy: Palisade in front of an application, the way
//! ModSecurity sits in nginx. Unlike `/api/v1/check` behind `auth_request`, it sees the
//! whole request, body included, before anything reaches the upstream.
//!
//! Flow per request ([`service`]): read the body up to the inspection limit
//! ([`body`]), inspect it with the shared detection engine, record a threat off the
//! decision path, answer 403 with a small page ([`page`]) or forward the request with
//! hop-by-hop headers removed and `X-Forwarded-*` set ([`headers`]) over a keep-alive
//! pool, and stream the upstream's answer back. WebSocket upgrades are tunnelled
//! ([`tunnel`]). [`server`] accepts connections, bounds them and drains them at
//! shutdown.

#![warn(missing_docs)]

mod body;
pub mod config;
mod headers;
mod page;
pub mod server;
mod service;
mod tunnel;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use palisade_core::metrics::{Counter, Histogram, registry};
use palisade_core::verdict::Action;
use palisade_pipeline::Guard;

pub use config::{OversizePolicy, ProxyConfig, Upstream, UpstreamError};
pub use server::{BoundProxy, ProxyError};

/// Errors a body can carry on its way through.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the proxy sends, to either side.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the proxy shares with the rest of Palisade.
#[derive(Clone)]
pub struct ProxyContext {
    /// The decision policy: IP decisions, then the engine and mode (the same ones
    /// `/api/v1/check` uses, so a change through `/api/v1/detection/config` applies to
    /// both at once), threats recorded off the request path.
    pub guard: Guard,
    /// Where the upstream's `Server` / `X-Powered-By` answers go, to be matched
    /// against CVEs (`None`: not observed).
    pub software: Option<palisade_vuln::SoftwareObserver>,
}

/// Per-proxy handles on its metrics, looked up once rather than per request.
struct Metrics {
    outcomes: Vec<(&'static str, Arc<Counter>)>,
    other: Arc<Counter>,
    latency: Arc<Histogram>,
}

const OUTCOMES: &[&str] = &[
    Action::Allow.as_str(),
    Action::Ban.as_str(),
    Action::Block.as_str(),
    Action::Detect.as_str(),
    "too_large",
    "client_timeout",
    "bad_request",
    "upstream_error",
    "upstream_timeout",
];

impl Metrics {
    fn new(name: &str) -> Metrics {
        let counter = |outcome: &str| {
            registry().counter(
                "palisade_proxy_requests_total",
                "Requests through the protecting proxy, by outcome.",
                &["proxy", "outcome"],
                &[name, outcome],
            )
        };
        Metrics {
            outcomes: OUTCOMES.iter().map(|o| (*o, counter(o))).collect(),
            other: counter("other"),
            latency: registry().histogram(
                "palisade_proxy_request_duration_seconds",
                "Time from request head to response head, upstream included.",
                &["proxy"],
                &[name],
            ),
        }
    }

    fn finish(&self, outcome: &str, secs: f64) {
        self.outcomes
            .iter()
            .find(|(o, _)| *o == outcome)
            .map_or(&self.other, |(_, c)| c)
            .inc();
        self.latency.observe(secs);
    }
}

/// Everything one proxy's requests need.
struct Shared {
    config: ProxyConfig,
    guard: Guard,
    client: Client<HttpConnector, ProxyBody>,
    metrics: Metrics,
    software: Option<palisade_vuln::SoftwareObserver>,
}

impl Shared {
    fn new(config: ProxyConfig, context: ProxyContext) -> Shared {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .build(connector);
        Shared {
            metrics: Metrics::new(&config.name),
            config,
            guard: context.guard,
            software: context.software,
            client,
        }
    }
}
