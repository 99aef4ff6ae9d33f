//! The API's listener: bounded connections, a header read timeout and an idle timeout,
//! so that half-sent requests and idle keep-alive connections cannot hold the API's
//! descriptors (a penetration test made the API and the proxy unreachable with 260 idle
//! connections under a 256-descriptor limit).
//!
//! hyper's HTTP/1 connection reads the request head under `header_timeout`; an
//! [`Activity`] wrapper around the socket records the last byte in or out, and a
//! connection that has moved nothing for `idle_timeout` is closed (after its response,
//! between requests). Over `max_connections`, a new connection gets an immediate
//! `503` with `Retry-After` and is closed, instead of waiting in the kernel's backlog.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use palisade_core::Shutdown;
use palisade_core::metrics::registry;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// The connection limits of the API listener (from `[http]`).
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Longest a client may take to send a request head.
    pub header_timeout: Duration,
    /// Longest a connection may move no byte before it is closed.
    pub idle_timeout: Duration,
    /// Longest a graceful shutdown waits for open connections.
    pub drain_timeout: Duration,
}

/// The answer to a connection over the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: application/problem+json\r\nContent-Length: 94\r\n\r\n{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"too many connections\"}";

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish
/// (up to `drain_timeout`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = registry().gauge(
        "palisade_http_connections",
        "Connections open on the API listener.",
        &[],
        &[],
    );
    let refused = registry().counter(
        "palisade_http_connections_refused_total",
        "Connections to the API answered 503 because max_connections were open.",
        &[],
        &[],
    );
    let accept_errors = registry().counter(
        "palisade_http_accept_errors_total",
        "Failed accepts on the API listener (e.g. out of file descriptors).",
        &[],
        &[],
    );
    let mut backoff = Duration::from_millis(10);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => { backoff = Duration::from_millis(10); pair }
                Err(error) => {
                    accept_errors.inc();
                    tracing::warn!(message = "Accept failed on the API listener; backing off.", %error);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused.inc();
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let open = open.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            open.add(1);
            serve_connection(stream, peer, router, limits, stop).await;
            open.add(-1);
            drop(permit);
        });
    }
    // Wait until every connection has given its permit back (or the drain times out).
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.drain_timeout, slots.acquire_many(all)).await;
}

/// Tells a client over the cap to come back, without reading its request.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(BUSY).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ListenerLimits,
    mut shutdown: Shutdown,
) {
    let activity = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let io = TokioIo::new(Activity {
        inner: stream,
        last: activity.clone(),
        started,
    });
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let tick = (limits.idle_timeout / 4).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(message = "API connection ended with an error.", %peer, %error);
                }
                return;
            }
            _ = tokio::time::sleep(tick) => {
                let last = Duration::from_micros(activity.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(last) >= limits.idle_timeout {
                    tracing::debug!(message = "Closing an idle API connection.", %peer);
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await;
                    return;
                }
            }
            _ = shutdown.recv() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(limits.drain_timeout, conn.as_mut()).await;
                return;
            }
        }
    }
}

/// A socket that remembers when it last moved a byte (microseconds since `started`).
struct Activity {
    inner: TcpStream,
    last: Arc<AtomicU64>,
    started: Instant,
}

impl Activity {
    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }
}

impl AsyncRead for Activity {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Activity {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
