//! Accepting client connections: bounded in number (the connection idle the longest
//! makes room at the cap), each served by hyper's HTTP/1 connection (keep-alive, the
//! client timeout for headers and idle keep-alive, upgrades, conventional header case),
//! requests hyper's parser refuses counted and explained, and drained gracefully when
//! Palisade stops.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use palisade_core::Shutdown;
use palisade_core::metrics::{Counter, Gauge, registry};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::connections::{RecordingIo, cap_for_descriptors, open_files_limit};
use crate::headers::Peer;
use crate::{ProxyConfig, ProxyContext, Shared, parse_errors, service};

/// Why a proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listen address is taken or not ours.
    #[error("proxy '{name}': cannot listen on {addr}: {source}")]
    Bind {
        /// The proxy's name.
        name: String,
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// A handle on one proxy's response observations, kept by whoever composes the
/// service (it outlives the proxy's serving task).
#[derive(Clone)]
pub struct ProxyObservations {
    /// The proxy's name.
    pub name: String,
    /// The upstream's authority.
    pub upstream: String,
    /// The live counters.
    pub responses: Arc<crate::observe::ResponseObservations>,
}

/// A proxy whose socket is bound (so a port conflict fails start-up) but which does
/// not serve yet.
pub struct BoundProxy {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl BoundProxy {
    /// Binds the listen address.
    pub async fn bind(
        mut config: ProxyConfig,
        context: ProxyContext,
    ) -> Result<BoundProxy, ProxyError> {
        let limit = open_files_limit();
        let cap = cap_for_descriptors(config.max_connections, limit);
        if cap < config.max_connections {
            tracing::warn!(
                message = "Proxy connection cap lowered to stay within the open-files limit; raise the limit (e.g. LimitNOFILE) to serve more.",
                proxy = %config.name,
                configured = config.max_connections,
                cap,
                open_files_limit = limit.unwrap_or(0),
            );
            config.max_connections = cap;
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ProxyError::Bind {
                    name: config.name.clone(),
                    addr: config.listen,
                    source,
                })?;
        Ok(BoundProxy {
            listener,
            shared: Arc::new(Shared::new(config, context)),
        })
    }

    /// What the application's answers looked like so far (security headers, version
    /// banners), with the proxy's name and upstream, for the posture checks.
    pub fn observations(&self) -> ProxyObservations {
        ProxyObservations {
            name: self.shared.config.name.clone(),
            upstream: self.shared.config.upstream.authority.clone(),
            responses: self.shared.responses.clone(),
        }
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` turns true, then lets open requests finish (up to the
    /// client timeout) before returning.
    pub async fn serve(self, mut shutdown: Shutdown) {
        let BoundProxy { listener, shared } = self;
        let name = shared.config.name.clone();
        let slots = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
        let meters = Arc::new(ConnectionMeters::new(&name));
        if let Some(traffic) = &shared.traffic {
            traffic.set_serving(true);
        }
        tracing::info!(message = "Protecting proxy listening.", proxy = %name, listen = %shared.config.listen, upstream = %shared.config.upstream.authority);
        let mut backoff = Duration::from_millis(10);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => { backoff = Duration::from_millis(10); pair }
                    Err(error) => {
                        meters.accept_errors.inc();
                        tracing::warn!(message = "Accept failed; backing off.", proxy = %name, %error);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                },
                _ = shutdown.recv() => break,
            };
            // At the cap, the connection idle the longest makes room for this one; with
            // none idle, this one waits for a request to finish.
            let permit = match slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    if shared.connections.shed_oldest_idle() {
                        meters.shed.inc();
                    }
                    tokio::select! {
                        p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                        _ = shutdown.recv() => break,
                    }
                }
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                shared: shared.clone(),
                meters: meters.clone(),
                peer,
                stop: shutdown.clone(),
            };
            tokio::spawn(async move {
                connection.serve(stream).await;
                drop(permit);
            });
        }
        // Wait for open connections to drain (each bounded by its own timeout).
        let total = u32::try_from(shared.config.max_connections.max(1)).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(Duration::from_secs(35), slots.acquire_many(total)).await;
        if let Some(traffic) = &shared.traffic {
            traffic.set_serving(false);
        }
        tracing::info!(message = "Protecting proxy stopped.", proxy = %name);
    }
}

/// Per-proxy connection metrics.
struct ConnectionMeters {
    open: Arc<Gauge>,
    accept_errors: Arc<Counter>,
    shed: Arc<Counter>,
}

impl ConnectionMeters {
    fn new(proxy: &str) -> ConnectionMeters {
        let r = registry();
        ConnectionMeters {
            open: r.gauge(
                "palisade_proxy_connections",
                "Client connections open on the protecting proxy.",
                &["proxy"],
                &[proxy],
            ),
            accept_errors: r.counter(
                "palisade_proxy_accept_errors_total",
                "Failed accepts on the protecting proxy (e.g. out of file descriptors).",
                &["proxy"],
                &[proxy],
            ),
            shed: r.counter(
                "palisade_proxy_connections_shed_total",
                "Idle client connections closed to make room for a new one at max_connections.",
                &["proxy"],
                &[proxy],
            ),
        }
    }
}

/// One accepted client connection.
struct Connection {
    shared: Arc<Shared>,
    meters: Arc<ConnectionMeters>,
    peer: SocketAddr,
    stop: Shutdown,
}

impl Connection {
    /// Serves the connection's requests with hyper until it closes, is shed, or the
    /// proxy stops (then its open request may finish).
    async fn serve(mut self, stream: TcpStream) {
        self.meters.open.add(1);
        let registration = self.shared.connections.register();
        let activity = registration.activity.clone();
        let io = TokioIo::new(RecordingIo::new(stream, activity.clone()));
        let shared = self.shared.clone();
        // The peer's address as its requests forward it, made once for the connection.
        let peer = Arc::new(Peer::new(self.peer.ip()));
        let svc_activity = activity.clone();
        let svc = service_fn(move |req| {
            let (shared, peer, activity) = (shared.clone(), peer.clone(), svc_activity.clone());
            // Not boxed: a box saves hyper's moves of this future (~0.3k instructions
            // a GET net of the allocation) but measured dearer in CPU time a GET in
            // alternated runs (docs/BENCHMARKS.md, proxy11).
            async move { Ok::<_, Infallible>(service::handle(shared, peer, req, activity).await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.shared.config.client_timeout)
            .keep_alive(true)
            .title_case_headers(true)
            .serve_connection(io, svc)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    parse_errors::connection_failed(&self.shared, self.peer.ip(), &error, &activity);
                }
            }
            _ = activity.shed_requested() => {
                tracing::debug!(message = "Idle connection closed to make room.", peer = %self.peer);
            }
            _ = self.stop.recv() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
            }
        }
        drop(registration);
        self.meters.open.add(-1);
    }
}
