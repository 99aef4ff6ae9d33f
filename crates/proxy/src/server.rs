//! Accepting client connections: bounded in number, each served by hyper's HTTP/1
//! connection (keep-alive, header read timeout, upgrades), and drained gracefully when
//! Palisade stops.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use palisade_core::Shutdown;
use palisade_core::metrics::registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::{ProxyConfig, ProxyContext, Shared, service};

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

/// A proxy whose socket is bound (so a port conflict fails start-up) but which does
/// not serve yet.
pub struct BoundProxy {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl BoundProxy {
    /// Binds the listen address.
    pub async fn bind(
        config: ProxyConfig,
        context: ProxyContext,
    ) -> Result<BoundProxy, ProxyError> {
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
        let open = registry().gauge(
            "palisade_proxy_connections",
            "Client connections open on the protecting proxy.",
            &["proxy"],
            &[&name],
        );
        let accept_errors = registry().counter(
            "palisade_proxy_accept_errors_total",
            "Failed accepts on the protecting proxy (e.g. out of file descriptors).",
            &["proxy"],
            &[&name],
        );
        tracing::info!(message = "Protecting proxy listening.", proxy = %name, listen = %shared.config.listen, upstream = %shared.config.upstream.authority);
        let mut backoff = Duration::from_millis(10);
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.recv() => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => { backoff = Duration::from_millis(10); pair }
                    Err(error) => {
                        accept_errors.inc();
                        tracing::warn!(message = "Accept failed; backing off.", proxy = %name, %error);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                },
                _ = shutdown.recv() => break,
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            let mut stop = shutdown.clone();
            let open = open.clone();
            tokio::spawn(async move {
                open.add(1);
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(service::handle(shared, peer, req).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades();
                tokio::pin!(conn);
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(message = "Client connection ended with an error.", %peer, %error);
                        }
                    }
                    _ = stop.recv() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
                    }
                }
                open.add(-1);
                drop(permit);
            });
        }
        // Wait for open connections to drain (each bounded by its own timeout).
        let total = u32::try_from(shared.config.max_connections.max(1)).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(Duration::from_secs(35), slots.acquire_many(total)).await;
        tracing::info!(message = "Protecting proxy stopped.", proxy = %name);
    }
}
