//! Database health, measured in the background so that health checks answer at once
//! and never wait on a database that is down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use palisade_core::Shutdown;
use palisade_core::Timestamp;
use palisade_core::metrics::registry;
use palisade_store::SharedStore;
use serde::Serialize;

/// The rolled-up health of the service or of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Everything works.
    Healthy,
    /// Working, but something needs attention (a source failing, a queue filling).
    Degraded,
    /// Not doing its job (the database is unreachable).
    Unhealthy,
}

/// The database as last seen by the monitor.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DbStatus {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Whether the last ping succeeded.
    pub reachable: bool,
    /// Whether the schema is in place (migrations applied).
    pub migrated: bool,
    /// Round-trip time of the last successful ping, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Why the database is not usable, when it is not.
    pub error: Option<String>,
    /// When it was last checked.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_at: Option<Timestamp>,
}

/// Shared, always-current database status.
#[derive(Debug)]
pub struct DbHealth {
    status: Mutex<DbStatus>,
}

impl DbHealth {
    /// Status before the first check: not yet known to work.
    pub fn new(backend: &'static str) -> Self {
        DbHealth {
            status: Mutex::new(DbStatus {
                backend,
                reachable: false,
                migrated: false,
                latency_ms: None,
                error: Some("not checked yet".into()),
                checked_at: None,
            }),
        }
    }

    /// A copy of the current status.
    pub fn snapshot(&self) -> DbStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the service can serve data: the database answers and has its schema.
    pub fn ready(&self) -> bool {
        let s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.reachable && s.migrated
    }

    fn update(&self, f: impl FnOnce(&mut DbStatus)) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
        s.checked_at = Some(Timestamp::now());
    }
}

/// Applies migrations until they succeed, then pings the database every `interval`,
/// keeping [`DbHealth`] current, until shutdown. Never gives up: a database that comes
/// back is picked up without a restart.
pub async fn monitor(
    store: SharedStore,
    health: std::sync::Arc<DbHealth>,
    interval: Duration,
    mut shutdown: Shutdown,
) {
    let up = registry().gauge(
        "palisade_database_up",
        "1 when the database answered the last ping.",
        &["backend"],
        &[store.backend()],
    );
    let latency = registry().histogram(
        "palisade_database_ping_seconds",
        "Round-trip time of the database health ping.",
        &["backend"],
        &[store.backend()],
    );
    let failures = registry().counter(
        "palisade_database_check_failures_total",
        "Failed database pings and migrations.",
        &["backend"],
        &[store.backend()],
    );
    let mut migrated = false;
    loop {
        if !migrated {
            let started = Instant::now();
            match store.migrate().await {
                Ok(()) => {
                    migrated = true;
                    tracing::info!(
                        message = "Database schema is up to date.",
                        backend = store.backend(),
                        elapsed_ms = started.elapsed().as_millis() as u64
                    );
                    health.update(|s| s.migrated = true);
                }
                Err(error) => {
                    failures.inc();
                    tracing::warn!(message = "Cannot apply migrations yet; will retry.", %error);
                    health.update(|s| {
                        s.reachable = false;
                        s.error = Some(error.to_string());
                    });
                }
            }
        }
        if migrated {
            match ping_twice_if_up(&store, health.ready()).await {
                Ok(rtt) => {
                    up.set(1);
                    latency.observe(rtt.as_secs_f64());
                    let was_down = !health.snapshot().reachable;
                    health.update(|s| {
                        s.reachable = true;
                        s.latency_ms = Some(rtt.as_secs_f64() * 1000.0);
                        s.error = None;
                    });
                    if was_down {
                        tracing::info!(message = "Database reachable.", backend = store.backend());
                    }
                }
                Err(error) => {
                    up.set(0);
                    failures.inc();
                    let was_up = health.snapshot().reachable;
                    health.update(|s| {
                        s.reachable = false;
                        s.latency_ms = None;
                        s.error = Some(error.to_string());
                    });
                    if was_up {
                        tracing::warn!(message = "Database unreachable.", %error);
                    }
                }
            }
        }
        let wait = if health.ready() {
            interval
        } else {
            interval.min(Duration::from_millis(500))
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// Pings the store; when the database was up, a failure is tried once more at once.
/// One pooled connection cut while it sat idle (a server restart or a network blip
/// already over) fails its first use: that is not an outage, and calling it one made
/// readiness flap for a moment right after a recovery.
async fn ping_twice_if_up(
    store: &SharedStore,
    was_up: bool,
) -> Result<Duration, palisade_store::StoreError> {
    match store.ping().await {
        Err(_) if was_up => store.ping().await,
        other => other,
    }
}
