//! The keep-alive pool of upstream connections: hyper's HTTP/1 client connections kept
//! in a list, the one used last taken first.
//!
//! It replaces hyper-util's general pool (keyed by scheme and authority, racing a new
//! connection against a checkout, a boxed future and a key per request), whose own
//! work was about one request in twenty-five of the proxy's instructions for one
//! upstream. It keeps what that pool gave the proxy: at most `max_idle` idle
//! connections, closed after `idle_timeout` unused, new ones opened within the connect
//! timeout with `TCP_NODELAY` and conventional header case, and a request that an idle
//! connection closed under before sending it (the upstream's keep-alive timeout won
//! the race) sent again, once, on a new connection.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use palisade_core::supervisor::Supervisor;
use tokio::net::TcpStream;

use crate::ProxyBody;
use crate::upstream::UpstreamError;

/// One idle connection.
struct Idle {
    sender: SendRequest<ProxyBody>,
    since: Instant,
}

/// The idle connections to one upstream.
pub struct Pool {
    authority: String,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Idle>>,
}

impl Pool {
    /// An empty pool, and the task that closes connections idle longer than
    /// `idle_timeout` (it ends with the pool): supervised as `proxy-pool:<name>` when a
    /// supervisor is given (the service), otherwise a plain task on the current Tokio
    /// runtime if there is one (tests, embedding).
    pub fn new(
        authority: &str,
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
        supervisor: Option<(&Supervisor, &str)>,
    ) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            authority: authority.to_owned(),
            connect_timeout,
            idle_timeout,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&pool);
        match supervisor {
            Some((supervisor, name)) => {
                supervisor.spawn(&format!("proxy-pool:{name}"), move || {
                    reap(weak.clone(), idle_timeout)
                });
            }
            None => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(reap(weak, idle_timeout));
                }
            }
        }
        pool
    }

    /// Sends a request (origin-form, `Host` set) and returns the answer's head; its
    /// connection goes back to the pool when it can take the next request.
    pub async fn send(
        self: &Arc<Self>,
        request: http::Request<ProxyBody>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let request = match self.checkout() {
            Some(sender) => match self.try_send(sender, request).await {
                Ok(response) => return Ok(response),
                Err(Failed::NotSent(request, _)) => *request,
                Err(Failed::Sent(error)) => return Err(error),
            },
            None => request,
        };
        let sender = self.connect().await?;
        match self.try_send(sender, request).await {
            Ok(response) => Ok(response),
            Err(Failed::NotSent(_, error) | Failed::Sent(error)) => Err(error),
        }
    }

    async fn try_send(
        self: &Arc<Self>,
        mut sender: SendRequest<ProxyBody>,
        request: http::Request<ProxyBody>,
    ) -> Result<http::Response<Incoming>, Failed> {
        match sender.try_send_request(request).await {
            Ok(response) => {
                if sender.is_ready() {
                    self.checkin(sender);
                } else {
                    // The answer's body is still coming: the connection is ready for
                    // another request once it has been read.
                    let pool = Arc::downgrade(self);
                    tokio::spawn(async move {
                        if sender.ready().await.is_ok()
                            && let Some(pool) = pool.upgrade()
                        {
                            pool.checkin(sender);
                        }
                    });
                }
                Ok(response)
            }
            Err(mut error) => match error.take_message() {
                Some(request) => Err(Failed::NotSent(
                    Box::new(request),
                    UpstreamError::Exchange(error.into_error()),
                )),
                None => Err(Failed::Sent(UpstreamError::Exchange(error.into_error()))),
            },
        }
    }

    /// The idle connection used last that can take a request now; closed and expired
    /// ones met on the way are dropped.
    fn checkout(&self) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(Idle { sender, since }) = idle.pop() {
            if sender.is_ready() && since.elapsed() < self.idle_timeout {
                return Some(sender);
            }
        }
        None
    }

    fn checkin(&self, sender: SendRequest<ProxyBody>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Drops the connections idle longer than the timeout (closing them).
    fn reap_expired(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|i| !i.sender.is_closed() && i.since.elapsed() < self.idle_timeout);
    }

    async fn connect(&self) -> Result<SendRequest<ProxyBody>, UpstreamError> {
        let stream = connect_stream(&self.authority, self.connect_timeout).await?;
        let (sender, connection) = http1::Builder::new()
            .title_case_headers(true)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(message = "Upstream connection ended with an error.", %error);
            }
        });
        Ok(sender)
    }
}

/// A TCP connection to the upstream within the connect timeout, with `TCP_NODELAY`
/// (a proxied answer must not wait for Nagle): what the pool and an upgrade's own
/// connection both open.
pub(crate) async fn connect_stream(
    authority: &str,
    timeout: std::time::Duration,
) -> Result<TcpStream, UpstreamError> {
    let failed = |reason: String| UpstreamError::Connect {
        authority: authority.to_owned(),
        reason,
    };
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(authority)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(failed(error.to_string())),
        Err(_) => return Err(failed("timed out".to_owned())),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Why a request got no answer, and whether it can be sent again.
enum Failed {
    /// The connection closed before the request was written: it comes back.
    NotSent(Box<http::Request<ProxyBody>>, UpstreamError),
    /// Written (or partly): it cannot be sent again.
    Sent(UpstreamError),
}

/// Closes idle connections past the timeout, until the pool is gone.
async fn reap(pool: Weak<Pool>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        pool.reap_expired();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Empty};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// An upstream that answers `ok` to every request and, with `close_after_each`,
    /// closes the connection after each answer (without saying so); counts connections.
    async fn upstream(close_after_each: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                            if stream.write_all(answer).await.is_err() {
                                return;
                            }
                            if close_after_each {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    async fn get(pool: &Arc<Pool>) -> String {
        let request = http::Request::builder()
            .uri("/x")
            .header("host", "upstream")
            .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
            .unwrap();
        let response = pool.send(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn one_connection_serves_requests_in_turn() {
        let (addr, accepted) = upstream(false).await;
        let pool = Pool::new(
            &addr,
            Duration::from_secs(5),
            Duration::from_secs(60),
            8,
            None,
        );
        for _ in 0..5 {
            assert_eq!(get(&pool).await, "ok");
            // Let the connection task see the end of the answer.
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn connections_the_upstream_closed_are_replaced() {
        let (addr, accepted) = upstream(true).await;
        let pool = Pool::new(
            &addr,
            Duration::from_secs(5),
            Duration::from_secs(60),
            8,
            None,
        );
        for _ in 0..4 {
            assert_eq!(get(&pool).await, "ok");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn idle_connections_expire_and_the_idle_list_is_bounded() {
        let (addr, accepted) = upstream(false).await;
        let pool = Pool::new(
            &addr,
            Duration::from_secs(5),
            Duration::from_millis(50),
            1,
            None,
        );
        assert_eq!(get(&pool).await, "ok");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(get(&pool).await, "ok");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "the expired one is not reused"
        );
        // Two requests at once need two connections; only one stays idle.
        let (a, b) = tokio::join!(get(&pool), get(&pool));
        assert_eq!((a.as_str(), b.as_str()), ("ok", "ok"));
        tokio::task::yield_now().await;
        assert!(pool.idle.lock().unwrap().len() <= 1);
    }

    #[tokio::test]
    async fn an_upstream_that_is_not_there_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let pool = Pool::new(
            &addr,
            Duration::from_secs(5),
            Duration::from_secs(60),
            8,
            None,
        );
        let request = http::Request::builder()
            .uri("/")
            .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
            .unwrap();
        assert!(matches!(
            pool.send(request).await,
            Err(UpstreamError::Connect { .. })
        ));
    }
}
