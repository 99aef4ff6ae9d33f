//! The proxy's client connections: what each is doing, so that at the connection cap
//! an idle one can make room for a new client, and the bytes of the request head it is
//! reading, so that a head hyper's parser refuses can still be explained.
//!
//! A connection is *idle* from the moment it is accepted, and again from the end of
//! each answer, until hyper hands the service the next request: that covers keep-alive
//! connections with nothing to say and clients still trickling their headers (the
//! header read timeout closes both in the end). A flood of such connections must not
//! keep new clients out until then, so when every slot is taken the connection idle the
//! longest is closed to make room (nginx drains its reusable connections the same way).
//! A connection busy with a request is never shed; its body is bounded by the client
//! timeout.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::raw_head::Spare;

/// The most of an idle connection's input kept to explain a refused head (hyper's
/// parser refuses heads larger than this on its own anyway).
const HEAD_RECORD_LIMIT: usize = 16 * 1024;

/// The most header-line strings (their capacity in bytes) a connection keeps between
/// requests for the next head to be read into: a usual head's, so an idle connection
/// holds little.
const SPARE_LIMIT: usize = 4 * 1024;

/// The connection cap a proxy can keep within the process's descriptor limit: a
/// proxied connection holds two descriptors (the client's and, while a request is
/// forwarded, the upstream's), and the proxy leaves at least half of the limit to the
/// rest of the process (the API, the database, files), so a flood on the proxy cannot
/// take the descriptors the API needs. `None` limit (unknown): the configured cap.
pub fn cap_for_descriptors(configured: usize, open_files_limit: Option<u64>) -> usize {
    let Some(limit) = open_files_limit else {
        return configured;
    };
    let budget = usize::try_from(limit / 4).unwrap_or(usize::MAX).max(1);
    configured.min(budget)
}

/// The soft limit on open files (`RLIMIT_NOFILE`), read from `/proc/self/limits`;
/// `None` where that is not available.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Every open client connection of one proxy.
pub struct Connections {
    live: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

impl Connections {
    /// An empty set.
    pub fn new() -> Arc<Connections> {
        Arc::new(Connections {
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Adds a just-accepted connection; it leaves the set when the registration is
    /// dropped.
    pub fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            busy: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            shedding: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            shed: Notify::new(),
            head: Mutex::new(Vec::new()),
            spare: Mutex::new(Vec::new()),
            connections: Arc::downgrade(self),
        });
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, activity.clone());
        Registration {
            connections: self.clone(),
            id,
            activity,
        }
    }

    /// Asks the connection idle the longest to close; false when none is idle.
    pub fn shed_oldest_idle(&self) -> bool {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = live
            .values()
            .filter(|a| a.is_idle())
            .min_by_key(|a| a.idle_since_ms.load(Ordering::Relaxed));
        match oldest {
            Some(activity) => {
                activity.shedding.store(true, Ordering::Relaxed);
                activity.shed.notify_one();
                true
            }
            None => false,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A connection's place in [`Connections`]; dropping it removes the connection.
pub struct Registration {
    connections: Arc<Connections>,
    id: u64,
    /// What the connection is doing.
    pub activity: Arc<Activity>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// What one connection is doing, updated by its requests and read by the accept loop.
pub struct Activity {
    busy: AtomicBool,
    upgraded: AtomicBool,
    shedding: AtomicBool,
    idle_since_ms: AtomicU64,
    shed: Notify,
    head: Mutex<Vec<u8>>,
    spare: Mutex<Spare>,
    connections: std::sync::Weak<Connections>,
}

impl Activity {
    /// hyper handed the service a request: the connection is busy until its answer
    /// ends.
    pub fn request_started(&self) {
        self.busy.store(true, Ordering::Relaxed);
    }

    /// The answer ended: the connection waits for the next head.
    pub fn request_finished(&self) {
        self.head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        if let Some(c) = self.connections.upgrade() {
            self.idle_since_ms.store(c.now_ms(), Ordering::Relaxed);
        }
        self.busy.store(false, Ordering::Relaxed);
    }

    /// The connection became a tunnel: never idle again, nothing more to record.
    pub fn upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
        self.busy.store(true, Ordering::Relaxed);
    }

    fn is_idle(&self) -> bool {
        !self.busy.load(Ordering::Relaxed)
            && !self.upgraded.load(Ordering::Relaxed)
            && !self.shedding.load(Ordering::Relaxed)
    }

    /// Completes when the accept loop wants this connection closed.
    pub async fn shed_requested(&self) {
        self.shed.notified().await;
    }

    /// The bytes read since the connection last became idle (at most
    /// [`HEAD_RECORD_LIMIT`]): the head being read, when hyper refuses it.
    pub fn recorded_head(&self) -> Vec<u8> {
        self.head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the bytes [`Activity::recorded_head`] would copy, in place: for the head
    /// of every request, which needs only a look at them.
    pub fn with_recorded_head<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.head.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The header-line strings the last judged request on this connection gave back
    /// ([`Activity::give_back`]), for the next head to be read into
    /// (`raw_head::parse_reusing`); empty when there are none.
    pub fn take_spare(&self) -> Spare {
        std::mem::take(&mut *self.spare.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keeps a judged request's header-line strings for the next head, unless they
    /// hold more than [`SPARE_LIMIT`] bytes.
    pub fn give_back(&self, headers: Spare) {
        let held: usize = headers
            .iter()
            .map(|(n, v)| n.capacity() + v.capacity())
            .sum();
        if held <= SPARE_LIMIT {
            *self.spare.lock().unwrap_or_else(PoisonError::into_inner) = headers;
        }
    }

    fn record(&self, bytes: &[u8]) {
        if bytes.is_empty() || !self.is_recording() {
            return;
        }
        let mut head = self.head.lock().unwrap_or_else(PoisonError::into_inner);
        let room = HEAD_RECORD_LIMIT.saturating_sub(head.len());
        head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn is_recording(&self) -> bool {
        !self.busy.load(Ordering::Relaxed) && !self.upgraded.load(Ordering::Relaxed)
    }
}

/// A client socket that copies what it reads while the connection is idle into its
/// [`Activity`] (the head hyper is about to parse). Everything else passes through.
pub struct RecordingIo<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> RecordingIo<S> {
    /// Wraps a socket.
    pub fn new(inner: S, activity: Arc<Activity>) -> RecordingIo<S> {
        RecordingIo { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RecordingIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            this.activity.record(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RecordingIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_idle_longest_is_shed_and_busy_ones_never() {
        let c = Connections::new();
        let a = c.register();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = c.register();
        let busy = c.register();
        busy.activity.request_started();
        assert!(c.shed_oldest_idle());
        assert!(a.activity.shedding.load(Ordering::Relaxed));
        assert!(!b.activity.shedding.load(Ordering::Relaxed));
        assert!(c.shed_oldest_idle());
        assert!(b.activity.shedding.load(Ordering::Relaxed));
        assert!(!c.shed_oldest_idle(), "only a busy connection is left");
        drop((a, b));
        assert_eq!(c.live.lock().unwrap().len(), 1);
        drop(busy);
        assert!(c.live.lock().unwrap().is_empty());
    }

    #[test]
    fn spare_strings_are_kept_within_their_bound() {
        let c = Connections::new();
        let r = c.register();
        assert!(r.activity.take_spare().is_empty());
        r.activity
            .give_back(vec![("Host".to_owned(), "x".to_owned())]);
        assert_eq!(r.activity.take_spare().len(), 1);
        assert!(r.activity.take_spare().is_empty(), "taken once");
        r.activity
            .give_back(vec![("a".repeat(SPARE_LIMIT + 1), String::new())]);
        assert!(r.activity.take_spare().is_empty(), "too much to keep");
    }

    #[test]
    fn the_cap_keeps_within_a_quarter_of_the_descriptor_limit() {
        assert_eq!(cap_for_descriptors(4096, Some(256)), 64);
        assert_eq!(cap_for_descriptors(4096, Some(1_048_576)), 4096);
        assert_eq!(cap_for_descriptors(100, None), 100);
        assert_eq!(cap_for_descriptors(100, Some(2)), 1);
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }

    #[test]
    fn only_idle_input_is_recorded_and_a_new_request_starts_afresh() {
        let c = Connections::new();
        let r = c.register();
        r.activity.record(b"GET /a\"b HTTP/1.1\r\n");
        assert_eq!(r.activity.recorded_head(), b"GET /a\"b HTTP/1.1\r\n");
        r.activity.request_started();
        r.activity.record(b"body bytes");
        r.activity.request_finished();
        assert!(r.activity.recorded_head().is_empty());
        r.activity.record(&vec![b'x'; HEAD_RECORD_LIMIT * 2]);
        assert_eq!(r.activity.recorded_head().len(), HEAD_RECORD_LIMIT);
        r.activity.upgraded();
        r.activity.request_finished();
        r.activity.record(b"tunnel");
        assert!(!c.shed_oldest_idle(), "a tunnel is never idle");
    }
}
