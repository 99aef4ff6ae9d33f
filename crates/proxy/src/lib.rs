//! The inline protecting proxy: Palisade in front of an application, the way
//! ModSecurity sits in nginx. Unlike `/api/v1/check` behind `auth_request`, it sees the
//! whole request, body included, before anything reaches the upstream.
//!
//! Flow per request ([`service`]): refuse a banned client, read the body up to the
//! inspection limit ([`body`]; compressed bodies decoded for inspection, [`decode`]),
//! judge it with the pipeline's `Guard`, answer 403 with a small page ([`page`]) or
//! forward it with hop-by-hop headers removed and `X-Forwarded-*` set ([`headers`])
//! over a keep-alive pool ([`upstream`], [`pool`]), and stream the upstream's answer
//! back. Every request becomes an event ([`traffic`]). WebSocket upgrades go over a
//! connection of their own and are tunnelled ([`tunnel`]). What cannot be inspected or
//! forwarded safely is refused and recorded ([`refusal`]). [`server`] accepts
//! connections, bounds them, sheds idle ones at the cap ([`connections`]), counts the
//! requests hyper's parser refuses, and drains them at shutdown. [`observe`] keeps what
//! the application's answers looked like (security headers, version banners) for the
//! posture checks.

#![warn(missing_docs)]

mod body;
pub mod config;
mod connections;
pub mod decode;
mod headers;
pub mod observe;
mod page;
mod parse_errors;
mod pool;
mod raw_head;
mod refusal;
pub mod server;
mod service;
mod traffic;
mod tunnel;
mod upstream;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use palisade_core::metrics::{Counter, Histogram, registry};
use palisade_core::verdict::Action;
use palisade_pipeline::{Guard, PipelineHandle};

pub use config::{OversizePolicy, ProxyConfig, Upstream, UpstreamError};
pub use server::{BoundProxy, ProxyError, ProxyObservations};
pub use traffic::TrafficContext;

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
    /// Where proxied requests are stored as events; `None` stores none.
    pub traffic: Option<TrafficContext>,
}

impl ProxyContext {
    /// A proxy that judges requests but stores no events (tests, embedding).
    pub fn new(guard: Guard) -> ProxyContext {
        ProxyContext {
            guard,
            traffic: None,
            software: None,
        }
    }

    /// A proxy on the running pipeline: its guard, and its writer, source registry and
    /// supervisor for the proxied requests' events.
    pub fn from_pipeline(pipeline: &PipelineHandle) -> ProxyContext {
        ProxyContext {
            guard: pipeline.guard.clone(),
            software: pipeline.software.clone(),
            traffic: Some(TrafficContext {
                writer: pipeline.writer.clone(),
                sources: pipeline.sources.clone(),
                supervisor: pipeline.supervisor.clone(),
            }),
        }
    }
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
    "malformed",
    "unsupported_encoding",
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
        self.count(outcome);
        self.latency.observe(secs);
    }

    /// Counts a request that never reached the service (refused by hyper's parser).
    fn count(&self, outcome: &str) {
        self.outcomes
            .iter()
            .find(|(o, _)| *o == outcome)
            .map_or(&self.other, |(_, c)| c)
            .inc();
    }
}

/// Everything one proxy's requests need.
struct Shared {
    config: ProxyConfig,
    guard: Guard,
    upstream: upstream::Upstream,
    metrics: Metrics,
    traffic: Option<traffic::Traffic>,
    connections: Arc<connections::Connections>,
    software: Option<palisade_vuln::SoftwareObserver>,
    /// What the application's answers looked like (posture checks).
    responses: Arc<observe::ResponseObservations>,
}

impl Shared {
    fn new(config: ProxyConfig, context: ProxyContext) -> Shared {
        let traffic = context
            .traffic
            .as_ref()
            .filter(|_| config.store_events)
            .map(|t| {
                let target = format!("{} -> {}", config.listen, config.upstream.authority);
                traffic::Traffic::start(&config.name, &target, t)
            });
        Shared {
            metrics: Metrics::new(&config.name),
            upstream: upstream::Upstream::new(
                &config,
                context.traffic.as_ref().map(|t| &t.supervisor),
            ),
            responses: Arc::default(),
            guard: context.guard,
            traffic,
            connections: connections::Connections::new(),
            config,
            software: context.software,
        }
    }
}
