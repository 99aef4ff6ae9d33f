//! Syslog listener: receives syslog messages over UDP (one message per datagram, RFC
//! 5426) and TCP (RFC 6587 framing, see [`framing`]), parses each with the syslog
//! parser and its authentication layer, and hands them to the store through the same
//! [`Batcher`] and [`BatchWriter`] as every other source.
//!
//! ```text
//! UDP socket ───────────────┐
//! TCP accept ─► connection ─┼─► bounded queue ─► Batcher (parse) ─► BatchWriter
//!               (framing)   │   (messages)        size or timer
//! ```
//!
//! Everything is bounded, so a flood or a hostile sender costs a fixed amount of
//! memory: messages longer than `max_message_bytes` are cut and kept as dead letters
//! (the rest is skipped, never buffered), TCP connections are limited in number and
//! closed when idle, and the queue between the receivers and the batcher is bounded:
//! when the store is slow, TCP senders are slowed down by TCP's own flow control and
//! UDP datagrams wait in the kernel's socket buffer (and are dropped there when it is
//! full, as UDP syslog always has been).
//!
//! Network sources have no position to resume from, so batches carry no checkpoint.
//! A bind failure (port in use, no permission for port 514) is shown in the source's
//! status and retried with backoff until shutdown.

pub mod framing;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_core::Shutdown;
use palisade_core::config::{ConfigProblem, Validate};
use palisade_core::duration::Span;
use palisade_formats::{FormatSpec, SyslogOptions};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::batcher::{Batcher, choose_parser};
use crate::status::{SourceState, SourceStatus};
use crate::writer::BatchWriter;
use framing::{Decoder, Frame};

/// Default longest message: 64 KiB, as large as a UDP datagram can be.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Messages that may wait between the receivers and the batcher before receivers
/// wait too. With the message limit this bounds the queue's memory.
const QUEUE_MESSAGES: usize = 1024;

/// Bytes read from a TCP connection at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Longest pause between two bind attempts.
const MAX_BIND_BACKOFF: Duration = Duration::from_secs(30);

/// `[[syslog]]`: what to listen on and how. Deserializes itself from the configuration
/// (`name`, `udp`, `tcp`, `max_message_bytes`, `max_connections`, `idle_timeout`,
/// `year`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "SyslogSection")]
pub struct SyslogConfig {
    /// Stable source name, used in events, dead letters and the source status.
    pub name: String,
    /// UDP address to receive on (e.g. `0.0.0.0:514`); `None` for no UDP.
    pub udp: Option<SocketAddr>,
    /// TCP address to accept on (e.g. `0.0.0.0:514`); `None` for no TCP.
    pub tcp: Option<SocketAddr>,
    /// Longest message kept whole; a longer one is cut here and stored as a dead
    /// letter.
    pub max_message_bytes: usize,
    /// Most TCP connections served at once; more are accepted and closed at once.
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Messages per batch.
    pub batch_size: usize,
    /// Longest time a message waits for its batch to fill before it is written.
    pub flush_interval: Duration,
    /// Year for BSD timestamps, which carry none; `None` takes it from the clock
    /// (see [`SyslogOptions::year`]).
    pub year: Option<i32>,
}

impl SyslogConfig {
    /// Defaults for a named source with no listener yet: set `udp` and/or `tcp`.
    pub fn new(name: impl Into<String>) -> Self {
        SyslogConfig {
            name: name.into(),
            udp: None,
            tcp: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            batch_size: 1000,
            flush_interval: Duration::from_millis(200),
            year: None,
        }
    }

    /// What the listener is bound to, for the source status (`udp://0.0.0.0:514,
    /// tcp://0.0.0.0:514`).
    pub fn target(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = self.udp {
            parts.push(format!("udp://{a}"));
        }
        if let Some(a) = self.tcp {
            parts.push(format!("tcp://{a}"));
        }
        parts.join(", ")
    }
}

/// `[[syslog]]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SyslogSection {
    name: Option<String>,
    udp: Option<String>,
    tcp: Option<String>,
    max_message_bytes: Option<usize>,
    max_connections: Option<usize>,
    idle_timeout: Option<Span>,
    year: Option<i32>,
}

/// The smallest message limit accepted: RFC 5426 says every receiver takes 480 bytes.
const MIN_MESSAGE_BYTES: usize = 480;

impl TryFrom<SyslogSection> for SyslogConfig {
    type Error = ConfigProblem;

    fn try_from(f: SyslogSection) -> Result<Self, Self::Error> {
        let mut c = SyslogConfig::new(f.name.unwrap_or_else(|| "syslog".into()));
        let addr = |key: &str, v: Option<String>| {
            v.map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    ConfigProblem::new(key, format!("'{a}' is not an address like 0.0.0.0:514"))
                })
            })
            .transpose()
        };
        c.udp = addr("udp", f.udp)?;
        c.tcp = addr("tcp", f.tcp)?;
        if c.udp.is_none() && c.tcp.is_none() {
            return Err(ConfigProblem::new("udp", "set udp, tcp or both"));
        }
        if let Some(n) = f.max_message_bytes {
            if n < MIN_MESSAGE_BYTES {
                return Err(ConfigProblem::new(
                    "max_message_bytes",
                    format!("must be at least {MIN_MESSAGE_BYTES} (RFC 5426)"),
                ));
            }
            c.max_message_bytes = n;
        }
        if let Some(n) = f.max_connections {
            if n == 0 {
                return Err(ConfigProblem::new("max_connections", "must be at least 1"));
            }
            c.max_connections = n;
        }
        if let Some(t) = f.idle_timeout {
            c.idle_timeout = t.to_std();
        }
        c.year = f.year;
        Ok(c)
    }
}

impl Validate for SyslogConfig {
    /// Everything is checked while deserializing.
    fn finish(&mut self) -> Vec<ConfigProblem> {
        Vec::new()
    }
}

/// The addresses actually bound (a configured port 0 becomes a real port).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundAddrs {
    /// The UDP socket's address, when UDP is configured.
    pub udp: Option<SocketAddr>,
    /// The TCP listener's address, when TCP is configured.
    pub tcp: Option<SocketAddr>,
}

/// One message from a receiver to the batcher.
struct Inbound {
    frame: Frame,
    peer: SocketAddr,
}

/// Runs the listener until shutdown: binds (retrying with backoff, failures shown in
/// `status`), receives, parses and writes. Returns once shutdown is signalled and
/// everything received has been handed to the writer.
pub async fn run(
    config: SyslogConfig,
    writer: BatchWriter,
    status: Arc<SourceStatus>,
    shutdown: Shutdown,
) {
    serve(config, writer, status, shutdown, None).await;
}

/// [`run`], also reporting the bound addresses once every configured listener is
/// bound: for tests and for logging the port a configured port 0 got.
pub async fn serve(
    config: SyslogConfig,
    writer: BatchWriter,
    status: Arc<SourceStatus>,
    mut shutdown: Shutdown,
    bound: Option<oneshot::Sender<BoundAddrs>>,
) {
    let options = SyslogOptions { year: config.year };
    let parser = match choose_parser(&FormatSpec::Syslog(options), &[]) {
        Ok(p) => p,
        Err(error) => {
            // Cannot happen for the syslog format; shown rather than panicking.
            status.set_state(SourceState::Error, Some(error.to_string()));
            return;
        }
    };
    if config.udp.is_none() && config.tcp.is_none() {
        status.set_state(
            SourceState::Error,
            Some("no listen address: set udp and/or tcp".into()),
        );
        shutdown.recv().await;
        status.set_state(SourceState::Stopped, None);
        return;
    }

    let listeners = Arc::new(Listeners {
        state: Mutex::new(ListenState {
            udp: config.udp.map(|_| Bind::Pending),
            tcp: config.tcp.map(|_| Bind::Pending),
            report: bound,
        }),
        status: status.clone(),
    });
    let (tx, rx) = mpsc::channel(QUEUE_MESSAGES);
    let batcher = Batcher::new(
        &config.name,
        parser,
        Some(status.clone()),
        config.batch_size,
    );
    let batching = tokio::spawn(batch_loop(
        rx,
        batcher,
        writer,
        status.clone(),
        config.flush_interval,
        config.max_message_bytes,
    ));

    let mut receivers = JoinSet::new();
    if let Some(addr) = config.udp {
        receivers.spawn(udp_loop(
            addr,
            config.clone(),
            tx.clone(),
            listeners.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(addr) = config.tcp {
        receivers.spawn(tcp_loop(
            addr,
            config.clone(),
            tx.clone(),
            listeners.clone(),
            shutdown.clone(),
        ));
    }
    drop(tx);
    while receivers.join_next().await.is_some() {}
    // Every sender is gone: the batcher drains the queue, writes and ends.
    let _ = batching.await;
    status.set_state(SourceState::Stopped, None);
}

/// Where each listener is, so that the status says `running` only when all are bound
/// and names every bind failure.
struct Listeners {
    state: Mutex<ListenState>,
    status: Arc<SourceStatus>,
}

struct ListenState {
    udp: Option<Bind>,
    tcp: Option<Bind>,
    report: Option<oneshot::Sender<BoundAddrs>>,
}

#[derive(Debug, Clone)]
enum Bind {
    Pending,
    Bound(SocketAddr),
    Failed(String),
}

#[derive(Clone, Copy)]
enum Proto {
    Udp,
    Tcp,
}

impl Listeners {
    fn set(&self, proto: Proto, bind: Bind) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match proto {
            Proto::Udp => s.udp = Some(bind),
            Proto::Tcp => s.tcp = Some(bind),
        }
        let errors: Vec<String> = [&s.udp, &s.tcp]
            .into_iter()
            .flatten()
            .filter_map(|b| match b {
                Bind::Failed(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let addr = |b: &Option<Bind>| match b {
            Some(Bind::Bound(a)) => Some(Some(*a)),
            None => Some(None),
            _ => None,
        };
        if !errors.is_empty() {
            self.status
                .set_state(SourceState::Error, Some(errors.join("; ")));
        } else if let (Some(udp), Some(tcp)) = (addr(&s.udp), addr(&s.tcp)) {
            self.status.set_state(SourceState::Running, None);
            if let Some(report) = s.report.take() {
                let _ = report.send(BoundAddrs { udp, tcp });
            }
        }
    }
}

/// Waits `backoff` or until shutdown; true when shutting down.
async fn pause(backoff: Duration, shutdown: &mut Shutdown) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(backoff) => {}
        _ = shutdown.recv() => {}
    }
    shutdown.is_shutdown()
}

/// Binds with backoff until it works or Palisade stops (`None`), showing each failure
/// in the source's status: a port taken at start-up is retried, not fatal.
async fn bind_with_retry<T, F, Fut>(
    proto: Proto,
    addr: SocketAddr,
    source: &str,
    listeners: &Listeners,
    shutdown: &mut Shutdown,
    bind: F,
) -> Option<T>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    let scheme = match proto {
        Proto::Udp => "udp",
        Proto::Tcp => "tcp",
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        if shutdown.is_shutdown() {
            return None;
        }
        match bind(addr).await {
            Ok(bound) => return Some(bound),
            Err(error) => {
                tracing::warn!(message = "Cannot bind a syslog listener; retrying.", source = %source, %scheme, %addr, %error);
                listeners.set(
                    proto,
                    Bind::Failed(format!("binding {scheme}://{addr}: {error}")),
                );
                if pause(backoff, shutdown).await {
                    return None;
                }
                backoff = (backoff * 2).min(MAX_BIND_BACKOFF);
            }
        }
    }
}

async fn udp_loop(
    addr: SocketAddr,
    config: SyslogConfig,
    tx: mpsc::Sender<Inbound>,
    listeners: Arc<Listeners>,
    mut shutdown: Shutdown,
) {
    let Some(socket) = bind_with_retry(
        Proto::Udp,
        addr,
        &config.name,
        &listeners,
        &mut shutdown,
        UdpSocket::bind,
    )
    .await
    else {
        return;
    };
    let local = socket.local_addr().unwrap_or(addr);
    tracing::info!(message = "Receiving syslog over UDP.", source = %config.name, addr = %local);
    listeners.set(Proto::Udp, Bind::Bound(local));

    // One byte more than the largest datagram, so that no datagram is cut by the read.
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = shutdown.recv() => return,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(error) => {
                // ICMP errors reported on the socket and the like: not fatal.
                tracing::debug!(message = "Syslog UDP receive failed.", source = %config.name, %error);
                continue;
            }
        };
        let data = trim_end(buf.get(..n).unwrap_or_default());
        if data.is_empty() {
            continue;
        }
        let frame = if data.len() > config.max_message_bytes {
            Frame::Oversized {
                head: data
                    .get(..config.max_message_bytes)
                    .unwrap_or_default()
                    .to_vec(),
                len: Some(data.len()),
            }
        } else {
            Frame::Message(data.to_vec())
        };
        tokio::select! {
            sent = tx.send(Inbound { frame, peer }) => if sent.is_err() { return },
            _ = shutdown.recv() => return,
        }
    }
}

/// A datagram without the LF, CR or NUL senders append.
fn trim_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b'\0'] = b {
        b = rest;
    }
    b
}

async fn tcp_loop(
    addr: SocketAddr,
    config: SyslogConfig,
    tx: mpsc::Sender<Inbound>,
    listeners: Arc<Listeners>,
    mut shutdown: Shutdown,
) {
    let Some(listener) = bind_with_retry(
        Proto::Tcp,
        addr,
        &config.name,
        &listeners,
        &mut shutdown,
        TcpListener::bind,
    )
    .await
    else {
        return;
    };
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(message = "Accepting syslog over TCP.", source = %config.name, addr = %local);
    listeners.set(Proto::Tcp, Bind::Bound(local));

    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut refused: u64 = 0;
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = shutdown.recv() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                // Out of file descriptors and the like: wait a little, keep serving.
                tracing::warn!(message = "Syslog TCP accept failed.", source = %config.name, %error);
                if pause(Duration::from_millis(100), &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                tracing::warn!(message = "Too many syslog TCP connections; refusing new ones.", source = %config.name, %peer, max_connections = config.max_connections, refused);
                last_refusal_log = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        connections.spawn(connection(
            stream,
            peer,
            config.clone(),
            tx.clone(),
            shutdown.clone(),
            permit,
        ));
    }
    // Shutdown: connections see the same signal and end; wait for them so that their
    // last messages reach the queue.
    while connections.join_next().await.is_some() {}
}

/// Reads one TCP connection until it closes, idles out or shutdown.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: SyslogConfig,
    tx: mpsc::Sender<Inbound>,
    mut shutdown: Shutdown,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut decoder = Decoder::new(config.max_message_bytes);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut frames = Vec::new();
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(config.idle_timeout, stream.read(&mut buf)) => r,
            _ = shutdown.recv() => break,
        };
        match read {
            Ok(Ok(0)) => {
                decoder.finish(&mut frames);
                let _ = forward(&tx, &mut frames, peer).await;
                return;
            }
            Ok(Ok(n)) => {
                decoder.feed(buf.get(..n).unwrap_or_default(), &mut frames);
                if !forward(&tx, &mut frames, peer).await {
                    return;
                }
            }
            Ok(Err(error)) => {
                tracing::debug!(message = "Syslog TCP connection failed.", source = %config.name, %peer, %error);
                break;
            }
            Err(_) => {
                tracing::debug!(message = "Closing an idle syslog TCP connection.", source = %config.name, %peer);
                break;
            }
        }
    }
    // Ended without a clean close: what is buffered may be cut short, so an
    // octet-counted remainder becomes a dead letter and an LF-framed one a message.
    decoder.finish(&mut frames);
    let _ = forward(&tx, &mut frames, peer).await;
}

/// Hands frames to the batcher, waiting while its queue is full (which, by not
/// reading, slows the sender down); false when the batcher is gone. The batcher runs
/// until every receiver has ended, so this also completes during shutdown.
async fn forward(tx: &mpsc::Sender<Inbound>, frames: &mut Vec<Frame>, peer: SocketAddr) -> bool {
    for frame in frames.drain(..) {
        if tx.send(Inbound { frame, peer }).await.is_err() {
            return false;
        }
    }
    true
}

/// Parses queued messages into batches, written when full or when the oldest pending
/// message has waited `flush_interval`.
async fn batch_loop(
    mut rx: mpsc::Receiver<Inbound>,
    mut batcher: Batcher,
    writer: BatchWriter,
    status: Arc<SourceStatus>,
    flush_interval: Duration,
    limit: usize,
) {
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let inbound = tokio::select! {
            m = rx.recv() => m,
            _ = sleep_until(deadline) => {
                if !send(&writer, &mut batcher, &status).await {
                    return;
                }
                deadline = None;
                continue;
            }
        };
        let Some(Inbound { frame, peer }) = inbound else {
            break;
        };
        push(&mut batcher, frame, peer, limit);
        if batcher.is_full() {
            if !send(&writer, &mut batcher, &status).await {
                return;
            }
            deadline = None;
        } else if deadline.is_none() && !batcher.is_empty() {
            deadline = Some(tokio::time::Instant::now() + flush_interval);
        }
    }
    let _ = send(&writer, &mut batcher, &status).await;
}

/// Sleeps until the deadline, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Parses one frame into the batch, with the sender's address: in `extra` as `peer`,
/// and as the host when the message names none.
fn push(batcher: &mut Batcher, frame: Frame, peer: SocketAddr, limit: usize) {
    match frame {
        Frame::Message(m) => batcher.push_line_with(&m, None, None, |ev| {
            let ip = peer.ip().to_string();
            if ev.host.is_none() {
                ev.host = Some(ip.clone());
            }
            ev.extra.push(("peer".into(), ip));
        }),
        Frame::Oversized { head, len } => {
            let size = match len {
                Some(n) => format!("{n} bytes"),
                None => format!("more than {limit} bytes"),
            };
            batcher.push_dead_letter(
                &head,
                format!(
                    "message from {peer} is {size}, over max_message_bytes ({limit}): cut; only its start is kept here"
                ),
            );
        }
        Frame::Truncated { head, len } => batcher.push_dead_letter(
            &head,
            format!(
                "connection from {peer} ended {} bytes into a {len}-byte message",
                head.len()
            ),
        ),
    }
}

/// Writes what the batcher holds; false when the writer has stopped.
async fn send(writer: &BatchWriter, batcher: &mut Batcher, status: &SourceStatus) -> bool {
    if batcher.is_empty() {
        return true;
    }
    let batch = batcher.take(None);
    if !writer.store_available() {
        status.set_state(SourceState::Waiting, writer.last_error());
    }
    if let Err(error) = writer.send(batch).await {
        tracing::error!(message = "Syslog batch not queued; the writer has stopped.", %error);
        return false;
    }
    if status.state() == SourceState::Waiting && writer.store_available() {
        status.set_state(SourceState::Running, None);
    }
    true
}
