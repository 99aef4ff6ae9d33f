//! Scale-out roles (`palisade serve --role all|api|worker`) and the live bus relay that
//! joins the nodes of a topology (see docs/ARCHITECTURE.md, "Topology").
//!
//! ```text
//!                    ┌────────────── PostgreSQL (one, shared) ──────────────┐
//!  clients ─► api ───┤ events, threats, decisions, jobs, alerts, settings,  ├─── worker ◄─ Kafka
//!  (HTTP, /check,    │ checkpoints; LISTEN/NOTIFY palisade_live (live bus)   │    (sources, stages,
//!   WebSocket)       └───────────────────────────────────────────────────────┘     jobs, alerts)
//! ```
//!
//! An API node serves HTTP, `/check`, the proxies and the WebSocket and runs no
//! sources, no stages over stored batches and no job workers. A worker consumes its
//! sources (Kafka), runs the stages, the jobs and the alerts component, and serves only
//! health and metrics. Both forward the events they publish on their live bus to the
//! others through PostgreSQL ([`palisade_store::postgres::relay`]); an API node also
//! listens, so its WebSocket clients see what every worker publishes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use palisade_core::metrics::registry;
use palisade_core::supervisor::Supervisor;
use palisade_live::{Bus, Next, Origin, Topic};
use palisade_pipeline::Purpose;
use palisade_store::postgres::relay::{LiveRelay, Relayed};
use tokio::task::JoinHandle;

/// What a `palisade serve` process does in a topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// Everything in one process (the default; SQLite or PostgreSQL).
    #[default]
    All,
    /// HTTP API, `/check`, proxies and the WebSocket; no sources, stages or job
    /// workers (PostgreSQL only).
    Api,
    /// Sources (Kafka), detection stages, jobs and alerts; HTTP serves only health and
    /// metrics (PostgreSQL only).
    Worker,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Worker => "worker",
        })
    }
}

impl Role {
    /// What the pipeline is built for in this role.
    pub fn purpose(self) -> Purpose {
        match self {
            Role::Api => Purpose::Api,
            Role::All | Role::Worker => Purpose::Serve,
        }
    }

    /// Whether this process works on stored batches, sources and jobs.
    pub fn works(self) -> bool {
        self != Role::Api
    }

    /// Whether this process serves the whole HTTP API (a worker serves health only).
    pub fn serves_api(self) -> bool {
        self != Role::Worker
    }

    /// Refuses a split role on a database only one process can use.
    pub fn check_backend(self, backend: &str) -> anyhow::Result<()> {
        if self != Role::All && backend != "postgres" {
            anyhow::bail!(
                "--role {self} needs PostgreSQL: the nodes of a topology share one database, and a {backend} database belongs to one process. Set --database-url postgres://… (PALISADE_DATABASE_URL), or run --role all (the default) on {backend}."
            );
        }
        Ok(())
    }
}

/// Paths a worker answers: liveness, readiness, health and metrics.
const WORKER_PATHS: &[&str] = &[
    "/livez",
    "/readyz",
    "/metrics",
    "/api/v1/health",
    "/api/v1/health/detailed",
];

/// A worker's HTTP face: health and metrics only; every other path is a problem
/// document pointing at the API nodes.
pub async fn worker_only(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if WORKER_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": format!(
            "{} is not served by a worker node (--role worker serves only /livez, /readyz, /metrics and /api/v1/health); call an API node",
            request.uri().path()
        ),
    });
    (
        axum::http::StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// This process's name in the relay: role, host, process id and start time.
pub fn node_name(role: Role) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!(
        "{role}-{host}-{}-{}",
        std::process::id(),
        palisade_core::Timestamp::now().as_micros()
    )
}

/// Topics that stay on their node: real-time figures are per node (each node samples
/// its own), control messages belong to one connection.
fn relayed_topic(topic: &Topic) -> bool {
    !matches!(topic, Topic::Metrics | Topic::Control)
}

/// Events sent per notification at most (more wait for the next round trip).
const BATCH_EVENTS: usize = 256;

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Relayed batches kept in `live_relay` this long.
const RELAY_KEEP: Duration = Duration::from_secs(300);

/// Starts the relay under `supervisor`: every node publishes its local events; API
/// nodes (whose WebSocket clients watch) also listen and republish the others'.
pub fn start_relay(
    role: Role,
    url: &str,
    bus: &Arc<Bus>,
    supervisor: &Supervisor,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let relay = LiveRelay::new(url, node_name(role))?;
    tracing::info!(message = "Live bus relay over PostgreSQL.", node = %relay.node(), channel = %relay.channel());
    let mut tasks = Vec::new();
    let (r, b, shutdown) = (relay.clone(), bus.clone(), supervisor.shutdown());
    tasks.push(supervisor.spawn("live-relay-out", move || {
        publish(r.clone(), b.clone(), shutdown.clone())
    }));
    if role.serves_api() {
        let (r, b, shutdown) = (relay, bus.clone(), supervisor.shutdown());
        tasks.push(supervisor.spawn("live-relay-in", move || {
            listen(r.clone(), b.clone(), shutdown.clone())
        }));
    }
    Ok(tasks)
}

fn counter(name: &'static str, help: &'static str) -> Arc<palisade_core::metrics::Counter> {
    registry().counter(name, help, &[], &[])
}

/// Local events ─► PostgreSQL. While the database is unreachable events are counted
/// as lost (the store keeps the record; the live feed is a view).
async fn publish(relay: LiveRelay, bus: Arc<Bus>, mut shutdown: palisade_core::Shutdown) {
    let sent = counter(
        "palisade_live_relay_sent_total",
        "Live events sent to the other nodes of the topology.",
    );
    let lost = counter(
        "palisade_live_relay_lost_total",
        "Live events not sent to the other nodes (database unreachable, or the relay fell behind).",
    );
    let mut sub = bus.subscribe(None);
    let mut last_prune = tokio::time::Instant::now();
    'connect: loop {
        let Some(publisher) = connect_with_backoff(
            "Live relay cannot connect; retrying.",
            &mut shutdown,
            || relay.publisher(),
        )
        .await
        else {
            return;
        };
        loop {
            let first = tokio::select! {
                n = sub.next() => n,
                _ = shutdown.recv() => return,
            };
            let mut batch: Vec<Relayed> = Vec::new();
            let mut next = Some(first);
            while let Some(n) = next.take() {
                match n {
                    Next::Message(m) => {
                        if m.origin == Origin::Local && relayed_topic(&m.topic) {
                            batch.push((m.topic.to_string(), m.data_json().to_owned()));
                        }
                    }
                    Next::Lagged(n) => lost.add(n),
                    Next::Closed => return,
                }
                if batch.len() < BATCH_EVENTS {
                    next = sub.next().now_or_never();
                }
            }
            if batch.is_empty() {
                continue;
            }
            let count = batch.len() as u64;
            if let Err(error) = publisher.send(&batch).await {
                lost.add(count);
                tracing::warn!(message = "Live relay lost its connection; reconnecting.", %error);
                continue 'connect;
            }
            sent.add(count);
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = tokio::time::Instant::now();
                if let Err(error) = publisher.prune(RELAY_KEEP).await {
                    tracing::debug!(message = "Cannot prune the live relay table.", %error);
                }
            }
        }
    }
}

/// Calls `connect` until it succeeds, waiting 200 ms, then twice as long after each
/// failure (up to `MAX_BACKOFF`), so a database that is down is retried without
/// flooding it or the log. `None` when the service stops while waiting.
async fn connect_with_backoff<T, E, F, Fut>(
    what: &'static str,
    shutdown: &mut palisade_core::Shutdown,
    mut connect: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        match connect().await {
            Ok(connected) => return Some(connected),
            Err(error) => {
                tracing::warn!(message = what, %error);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.recv() => return None,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Other nodes' events ─► the local bus (under this node's sequence numbers).
async fn listen(relay: LiveRelay, bus: Arc<Bus>, mut shutdown: palisade_core::Shutdown) {
    let received = counter(
        "palisade_live_relay_received_total",
        "Live events received from the other nodes of the topology.",
    );
    loop {
        let Some(mut listener) =
            connect_with_backoff("Live relay cannot listen; retrying.", &mut shutdown, || {
                relay.listen()
            })
            .await
        else {
            return;
        };
        loop {
            let got = tokio::select! {
                g = listener.next() => g,
                _ = shutdown.recv() => return,
            };
            match got {
                None => break,
                Some(Err(error)) => {
                    tracing::warn!(message = "Cannot read a relayed batch.", %error);
                }
                Some(Ok(events)) => {
                    for (topic, data) in events {
                        if let Ok(topic) = topic.parse::<Topic>() {
                            bus.publish_relayed(topic, &data);
                            received.inc();
                        }
                    }
                }
            }
        }
        tracing::warn!(message = "Live relay listener disconnected; reconnecting.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_roles_refuse_sqlite_with_a_way_out() {
        assert!(Role::All.check_backend("sqlite").is_ok());
        assert!(Role::Api.check_backend("postgres").is_ok());
        for role in [Role::Api, Role::Worker] {
            let err = role.check_backend("sqlite").unwrap_err().to_string();
            assert!(err.contains("needs PostgreSQL"), "{err}");
            assert!(err.contains("--role all"), "{err}");
        }
    }

    #[test]
    fn roles_split_the_work() {
        assert_eq!(Role::Api.purpose(), Purpose::Api);
        assert_eq!(Role::Worker.purpose(), Purpose::Serve);
        assert!(!Role::Api.works() && Role::Worker.works() && Role::All.works());
        assert!(!Role::Worker.serves_api() && Role::Api.serves_api());
        assert!(!relayed_topic(&Topic::Metrics) && relayed_topic(&Topic::Threats));
    }
}
