//! Every proxied request as an event, so the traffic explorer, analytics and the
//! behaviour scenarios see proxied traffic like a tailed access log.
//!
//! ```text
//! request ─► answer body ends ─► Traffic::record (a push under a short lock, never waits)
//!                                   │ bounded buffer (10,000 events)
//!                                   ▼
//!              flusher (supervised): 500 events or 1 s ─► BatchWriter::send_within(1 s)
//! ```
//!
//! The event is built when the answer's body ends (or the client goes away), so it
//! carries the status, the bytes sent and the whole duration, and costs the request
//! nothing but a push onto the buffer. The buffer is a list under a lock, not a channel:
//! a channel wakes the flusher for every event (a task wake-up, often another thread's,
//! per request); the list wakes it once per [`BATCH_EVENTS`] events, and its clock once
//! a second takes whatever is there. The proxy is a source like any other (its name, kind
//! `proxy`, in `/api/v1/sources`), with one difference: it never makes a client wait
//! for the store. When the buffer or the writer's queue stays full the events are
//! dropped and counted (`palisade_proxy_events_total{outcome="dropped"}`, the source's
//! `dropped` and an `error` state naming the cause) instead. Like the syslog listener's,
//! its batches carry no checkpoint: there is no position to resume from.
//!
//! Events are `http` events with `source` = the proxy's name and `verdict` = what the
//! [`palisade_pipeline::Guard`] decided; the ingest inspector skips events with a
//! verdict (their threats were recorded live), the behaviour scenarios see them all.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use palisade_core::metrics::{Counter, registry};
use palisade_core::supervisor::Supervisor;
use palisade_core::verdict::Action;
use palisade_core::{Event, EventKind, Shutdown, Timestamp};
use palisade_sources::status::SourceState;
use palisade_sources::{BatchWriter, SourceRegistry, SourceStatus, WriterError};
use palisade_store::IngestBatch;
use tokio::sync::Notify;

use crate::connections::Activity;
use crate::{BoxError, ProxyBody};

/// Events that may wait for the flusher.
const BUFFER_EVENTS: usize = 10_000;
/// Events per batch handed to the writer.
const BATCH_EVENTS: usize = 500;
/// Longest an event waits in a partial batch, and longest the flusher waits for room
/// in the writer's queue before it drops a batch.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// After shutdown, how long the flusher keeps taking events from requests still being
/// answered (the proxy drains its connections for at most 35 s).
const DRAIN_FOR: Duration = Duration::from_secs(40);
/// Longest text kept from one request field.
const MAX_FIELD: usize = 8 * 1024;

/// What the proxy needs from the pipeline to store its traffic: the one bounded
/// writer, the registry `/api/v1/sources` lists, and the supervisor its flusher runs
/// under.
#[derive(Clone)]
pub struct TrafficContext {
    /// The store writer every source uses.
    pub writer: BatchWriter,
    /// Where the proxy registers as a source.
    pub sources: SourceRegistry,
    /// Supervises the flusher task.
    pub supervisor: Supervisor,
}

/// `palisade_proxy_events_total` for one proxy.
struct Meters {
    queued: Arc<Counter>,
    dropped: Arc<Counter>,
}

impl Meters {
    fn new(proxy: &str) -> Meters {
        let counter = |outcome: &str| {
            registry().counter(
                "palisade_proxy_events_total",
                "Proxied requests handed to the store writer as events (queued) or given up because the writer's queue stayed full (dropped).",
                &["proxy", "outcome"],
                &[proxy, outcome],
            )
        };
        Meters {
            queued: counter("queued"),
            dropped: counter("dropped"),
        }
    }
}

/// The events waiting for the flusher, shared by the proxy's requests and its flusher.
struct Buffer {
    state: Mutex<Waiting>,
    /// Wakes the flusher: a full batch is waiting, or the last sender went away.
    wake: Notify,
}

/// What [`Buffer`] guards.
struct Waiting {
    events: Vec<Event>,
    /// Every [`Traffic`] handle is gone: nothing more will come.
    closed: bool,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            state: Mutex::new(Waiting {
                events: Vec::with_capacity(BATCH_EVENTS),
                closed: false,
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one event; false (the event dropped) when [`BUFFER_EVENTS`] are already
    /// waiting. Wakes the flusher when this event completes a batch.
    fn push(&self, event: Event) -> bool {
        let mut waiting = self.lock();
        if waiting.events.len() >= BUFFER_EVENTS {
            return false;
        }
        waiting.events.push(event);
        let full = waiting.events.len() == BATCH_EVENTS;
        drop(waiting);
        if full {
            self.wake.notify_one();
        }
        true
    }

    /// Everything waiting (the buffer is left empty, with room for a batch), and
    /// whether the senders are all gone.
    fn take(&self) -> (Vec<Event>, bool) {
        let mut waiting = self.lock();
        if waiting.events.is_empty() {
            return (Vec::new(), waiting.closed);
        }
        let events = std::mem::replace(&mut waiting.events, Vec::with_capacity(BATCH_EVENTS));
        (events, waiting.closed)
    }
}

/// Held by every [`Traffic`] handle; when the last one goes, the flusher is told to
/// store what is left and stop (as a channel's receiver sees its senders gone).
struct Senders(Arc<Buffer>);

impl Drop for Senders {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.wake.notify_one();
    }
}

/// The sending side: cheap to clone, held by the proxy and by answers in flight.
#[derive(Clone)]
pub struct Traffic {
    buffer: Arc<Buffer>,
    _senders: Arc<Senders>,
    status: Arc<SourceStatus>,
    meters: Arc<Meters>,
}

impl Traffic {
    /// Registers the proxy as a source and starts its flusher.
    pub fn start(proxy: &str, target: &str, context: &TrafficContext) -> Traffic {
        let status = context.sources.register(proxy, "proxy", target);
        let meters = Arc::new(Meters::new(proxy));
        let buffer = Arc::new(Buffer::new());
        let flusher = Flusher {
            writer: context.writer.clone(),
            status: status.clone(),
            meters: meters.clone(),
            buffer: buffer.clone(),
        };
        let shutdown = context.supervisor.shutdown();
        // Detached: the writer's drain waits for the flusher's handle on the writer.
        let _task = context
            .supervisor
            .spawn(&format!("proxy-traffic:{proxy}"), move || {
                flusher.clone().run(shutdown.clone())
            });
        Traffic {
            _senders: Arc::new(Senders(buffer.clone())),
            buffer,
            status,
            meters,
        }
    }

    /// The proxy is serving (or has stopped).
    pub fn set_serving(&self, serving: bool) {
        let state = if serving {
            SourceState::Running
        } else {
            SourceState::Stopped
        };
        self.status.set_state(state, None);
    }

    /// Hands one event to the flusher without waiting.
    pub fn record(&self, event: Event) {
        self.status.count(1, 0, 0);
        self.status.saw_event_at(event.ts);
        if !self.buffer.push(event) {
            give_up(
                &self.status,
                &self.meters,
                1,
                "the proxy's event buffer is full: the store writer is not keeping up",
            );
        }
    }
}

fn give_up(status: &SourceStatus, meters: &Meters, events: u64, why: &str) {
    meters.dropped.add(events);
    status.count_dropped(events);
    if status.state() != SourceState::Error {
        tracing::warn!(message = "Dropping proxied-request events.", source = %status.name(), reason = why);
    }
    status.set_state(
        SourceState::Error,
        Some(format!("dropping proxied-request events: {why}")),
    );
}

/// The task that batches events and hands them to the writer.
#[derive(Clone)]
struct Flusher {
    writer: BatchWriter,
    status: Arc<SourceStatus>,
    meters: Arc<Meters>,
    buffer: Arc<Buffer>,
}

impl Flusher {
    /// Takes what waits when a batch is full and once a second; stops when the
    /// senders are gone, or [`DRAIN_FOR`] after shutdown, storing what is left.
    async fn run(self, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let stop_at = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.buffer.wake.notified() => {}
                _ = tick.tick() => {}
                _ = shutdown.recv(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + DRAIN_FOR);
                    continue;
                }
                _ = stop_at => break,
            }
            let (events, closed) = self.buffer.take();
            self.flush(events).await;
            if closed {
                return;
            }
        }
        let (events, _) = self.buffer.take();
        self.flush(events).await;
    }

    /// Hands `events` to the writer in batches of at most [`BATCH_EVENTS`].
    async fn flush(&self, mut events: Vec<Event>) {
        while !events.is_empty() {
            let rest = events.split_off(events.len().min(BATCH_EVENTS));
            self.flush_batch(events).await;
            events = rest;
        }
    }

    async fn flush_batch(&self, events: Vec<Event>) {
        let n = events.len() as u64;
        let sent = self
            .writer
            .send_within(
                IngestBatch {
                    events,
                    ..IngestBatch::default()
                },
                FLUSH_EVERY,
            )
            .await;
        match sent {
            Ok(()) => {
                self.meters.queued.add(n);
                self.status.count(0, n, 0);
                if self.status.state() == SourceState::Error {
                    tracing::info!(message = "Storing proxied-request events again.", source = %self.status.name());
                    self.status.set_state(SourceState::Running, None);
                }
            }
            Err(WriterError::Full) => give_up(
                &self.status,
                &self.meters,
                n,
                "the store writer's queue is full (the store is slow or down)",
            ),
            Err(error) => give_up(&self.status, &self.meters, n, &error.to_string()),
        }
    }
}

/// What is known about a request when its head arrives; completed into an event when
/// its answer ends.
pub struct RequestRecord {
    event: Event,
    started: Instant,
}

/// At most [`MAX_FIELD`] characters of `value`. A value of at most that many bytes
/// (every one a request's fields hold, nearly) is copied whole, not character by
/// character.
fn text(value: &str) -> String {
    if value.len() <= MAX_FIELD {
        return value.to_owned();
    }
    match value.char_indices().nth(MAX_FIELD) {
        Some((end, _)) => value.get(..end).unwrap_or(value).to_owned(),
        None => value.to_owned(),
    }
}

/// A header value as an event field: lossy UTF-8, at most [`MAX_FIELD`] characters.
fn header_text(value: Option<&HeaderValue>) -> Option<String> {
    value.map(|v| text(&String::from_utf8_lossy(v.as_bytes())))
}

impl RequestRecord {
    /// The request as the proxy received it.
    pub fn new<B>(
        proxy: &str,
        client: IpAddr,
        request: &http::Request<B>,
        request_id: &str,
    ) -> RequestRecord {
        let (headers, uri) = (request.headers(), request.uri());
        let host = header_text(headers.get(header::HOST))
            .or_else(|| uri.authority().map(|a| text(a.as_str())));
        RequestRecord {
            event: Event {
                ts: Timestamp::now(),
                kind: EventKind::Http,
                source: proxy.to_owned(),
                client_ip: Some(client),
                host,
                method: Some(text(request.method().as_str())),
                path: Some(text(uri.path())),
                query: uri.query().map(text),
                protocol: Some(crate::headers::version_text(request.version()).to_owned()),
                referer: header_text(headers.get(header::REFERER)),
                user_agent: header_text(headers.get(header::USER_AGENT)),
                extra: vec![("request_id".to_owned(), request_id.to_owned())],
                ..Event::default()
            },
            started: Instant::now(),
        }
    }

    /// A request hyper's parser refused, rebuilt from its head.
    pub fn refused(
        proxy: &str,
        client: IpAddr,
        method: &str,
        target: &str,
        headers: &[(String, String)],
    ) -> RequestRecord {
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| text(v))
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(text(q))),
            None => (target, None),
        };
        RequestRecord {
            event: Event {
                ts: Timestamp::now(),
                kind: EventKind::Http,
                source: proxy.to_owned(),
                client_ip: Some(client),
                host: find("host"),
                method: Some(text(method)),
                path: Some(text(path)),
                query,
                protocol: Some("HTTP/1.1".to_owned()),
                referer: find("referer"),
                user_agent: find("user-agent"),
                ..Event::default()
            },
            started: Instant::now(),
        }
    }

    /// The event, once the answer is known.
    pub fn finish(self, status: u16, verdict: Option<Action>, bytes: u64) -> Event {
        let mut event = self.event;
        event.status = Some(status);
        event.bytes = Some(bytes);
        event.verdict = verdict;
        event.duration_us =
            Some(u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX));
        event
    }
}

/// What happens when an answer's body ends: its event is recorded and the connection
/// becomes idle again (or stays a tunnel).
pub struct Completion {
    /// The request's record and where it goes; `None` when events are not stored.
    pub record: Option<(RequestRecord, Traffic)>,
    /// The status sent.
    pub status: u16,
    /// What the Guard decided.
    pub verdict: Option<Action>,
    /// The client connection.
    pub activity: Arc<Activity>,
    /// The connection became a tunnel.
    pub upgraded: bool,
}

impl Completion {
    fn complete(self, bytes: u64) {
        if self.upgraded {
            self.activity.upgraded();
        } else {
            self.activity.request_finished();
        }
        if let Some((record, traffic)) = self.record {
            traffic.record(record.finish(self.status, self.verdict, bytes));
        }
    }
}

/// An answer's body, counted as it goes out; its [`Completion`] runs when it ends or
/// is dropped (the client went away).
pub struct ObservedBody {
    inner: ProxyBody,
    bytes: u64,
    completion: Option<Completion>,
}

impl ObservedBody {
    /// Wraps an answer's body.
    pub fn new(inner: ProxyBody, completion: Completion) -> ObservedBody {
        ObservedBody {
            inner,
            bytes: 0,
            completion: Some(completion),
        }
    }

    fn complete(&mut self) {
        if let Some(c) = self.completion.take() {
            c.complete(self.bytes);
        }
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        self.complete();
    }
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.complete(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> Event {
        Event {
            bytes: Some(n),
            ..Event::default()
        }
    }

    /// Completes when the flusher would be woken now (a stored permit included).
    async fn woken(buffer: &Buffer) -> bool {
        tokio::time::timeout(Duration::from_millis(50), buffer.wake.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_buffer_wakes_the_flusher_once_a_batch_and_holds_at_most_its_bound() {
        let buffer = Buffer::new();
        for n in 0..BATCH_EVENTS as u64 - 1 {
            assert!(buffer.push(event(n)));
        }
        assert!(!woken(&buffer).await, "no wake-up before a batch is full");
        assert!(buffer.push(event(0)));
        assert!(
            woken(&buffer).await,
            "the batch's last event wakes the flusher"
        );
        for n in BATCH_EVENTS..BUFFER_EVENTS {
            assert!(buffer.push(event(n as u64)));
        }
        assert!(!buffer.push(event(7)), "the buffer is full");
        let (events, closed) = buffer.take();
        assert_eq!((events.len(), closed), (BUFFER_EVENTS, false));
        assert_eq!(events.first().and_then(|e| e.bytes), Some(0));
        assert!(buffer.take().0.is_empty(), "taking empties it");
        assert!(buffer.push(event(1)), "and makes room again");
    }

    #[tokio::test]
    async fn the_last_sender_gone_closes_the_buffer_and_wakes_the_flusher() {
        let buffer = Arc::new(Buffer::new());
        let senders = Arc::new(Senders(buffer.clone()));
        let second = senders.clone();
        drop(senders);
        assert!(!buffer.take().1, "a sender is left");
        assert!(!woken(&buffer).await);
        assert!(buffer.push(event(3)));
        drop(second);
        assert!(woken(&buffer).await);
        let (events, closed) = buffer.take();
        assert!(closed);
        assert_eq!(events.len(), 1, "what was waiting is still taken");
    }

    #[test]
    fn fields_keep_at_most_max_field_characters() {
        let take = |v: &str| v.chars().take(MAX_FIELD).collect::<String>();
        for v in [
            String::new(),
            "GET".to_owned(),
            "é".repeat(MAX_FIELD),
            "é".repeat(MAX_FIELD + 3),
            "a".repeat(MAX_FIELD),
            "a".repeat(MAX_FIELD + 1),
            format!("{}é", "a".repeat(MAX_FIELD - 1)),
        ] {
            assert_eq!(text(&v), take(&v), "{} bytes", v.len());
        }
    }
}
