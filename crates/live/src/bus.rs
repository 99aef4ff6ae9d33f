//! The bus: one sequence, one replay buffer, one broadcast.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use palisade_core::Timestamp;
use palisade_core::metrics::{Counter, Gauge, registry};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::topic::Topic;

/// Bounds of the bus.
#[derive(Debug, Clone, Copy)]
pub struct BusConfig {
    /// Messages kept for clients that reconnect with `since`.
    pub replay: usize,
    /// Messages a subscriber may fall behind before it is cut off.
    pub client_buffer: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            replay: 10_000,
            client_buffer: 4_096,
        }
    }
}

/// One published event, serialized once and shared by every subscriber.
#[derive(Debug)]
pub struct Message {
    /// Its place in the server-wide sequence.
    pub seq: u64,
    /// Its topic.
    pub topic: Topic,
    /// `{"seq":N,"topic":"…","data":{…}}`, as sent.
    pub json: Arc<str>,
    /// Published by this process, or relayed from another node of a scale-out
    /// topology (a relay must not send those back).
    pub origin: Origin,
    /// Where `data` starts in `json` (it runs to the last byte but one).
    data_start: usize,
}

/// Where a message was first published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// By this process.
    Local,
    /// By another node, relayed here (`Bus::publish_relayed`).
    Relayed,
}

impl Message {
    /// The `data` part of the message, as JSON text (what a relay forwards).
    pub fn data_json(&self) -> &str {
        let end = self.json.len().saturating_sub(1);
        self.json.get(self.data_start..end).unwrap_or("null")
    }
}

/// What a subscriber gets next.
#[derive(Debug)]
pub enum Next {
    /// A message (from the replay backlog first, then live).
    Message(Arc<Message>),
    /// The subscriber fell this many messages behind and lost them: cut it off.
    Lagged(u64),
    /// The bus is gone (shutdown).
    Closed,
}

struct Inner {
    next_seq: u64,
    replay: VecDeque<Arc<Message>>,
}

/// Messages waiting for the next batch ([`Bus::publish_later`]), already serialized.
#[derive(Default)]
struct Deferred {
    waiting: VecDeque<(Topic, String)>,
}

/// The live event bus (see the crate documentation).
pub struct Bus {
    inner: Mutex<Inner>,
    deferred: Mutex<Deferred>,
    tx: broadcast::Sender<Arc<Message>>,
    config: BusConfig,
    published: Arc<Counter>,
    deferred_dropped: Arc<Counter>,
    subscribers: Arc<Gauge>,
}

impl Bus {
    /// A bus whose sequence starts at this process's start time in microseconds, so that
    /// numbers keep growing across restarts and a client's old `since` reads as a gap.
    pub fn new(config: BusConfig) -> Bus {
        let (tx, _) = broadcast::channel(config.client_buffer.max(16));
        let start = u64::try_from(Timestamp::now().as_micros())
            .unwrap_or(1)
            .max(1);
        Bus {
            inner: Mutex::new(Inner {
                next_seq: start,
                replay: VecDeque::with_capacity(config.replay.min(100_000)),
            }),
            deferred: Mutex::new(Deferred::default()),
            tx,
            config,
            published: registry().counter(
                "palisade_live_messages_total",
                "Messages published on the live bus.",
                &[],
                &[],
            ),
            deferred_dropped: registry().counter(
                "palisade_live_deferred_dropped_total",
                "Batched live messages dropped because no batch went out in time (the oldest go first).",
                &[],
                &[],
            ),
            subscribers: registry().gauge(
                "palisade_live_subscribers",
                "Live feed subscribers (WebSocket clients).",
                &[],
                &[],
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `data` on `topic`; returns its sequence number. Never waits on a
    /// subscriber. A value that cannot be serialized is published as `null` (and
    /// logged): the sequence stays without holes.
    pub fn publish(&self, topic: Topic, data: &impl Serialize) -> u64 {
        let data = serde_json::to_string(data).unwrap_or_else(|error| {
            tracing::warn!(message = "Live event not serializable; sent as null.", %error);
            "null".to_owned()
        });
        self.publish_json(topic, &data)
    }

    /// Publishes data already serialized as JSON.
    pub fn publish_json(&self, topic: Topic, data_json: &str) -> u64 {
        self.publish_from(Origin::Local, topic, data_json)
    }

    /// Publishes an event relayed from another node of a scale-out topology: local
    /// clients see it under this node's next sequence number, and relays do not send
    /// it on again.
    pub fn publish_relayed(&self, topic: Topic, data_json: &str) -> u64 {
        self.publish_from(Origin::Relayed, topic, data_json)
    }

    fn publish_from(&self, origin: Origin, topic: Topic, data_json: &str) -> u64 {
        let mut inner = self.lock();
        let seq = self.append(&mut inner, origin, topic, data_json);
        drop(inner);
        self.published.inc();
        seq
    }

    /// Gives the next sequence number to one message, keeps it for replay and
    /// broadcasts it (under the lock, so numbers go out in order).
    fn append(&self, inner: &mut Inner, origin: Origin, topic: Topic, data_json: &str) -> u64 {
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let head = format!(
            "{{\"seq\":{seq},\"topic\":{},\"data\":",
            serde_json::Value::String(topic.to_string())
        );
        let data_start = head.len();
        let json: Arc<str> = Arc::from(format!("{head}{data_json}}}"));
        let message = Arc::new(Message {
            seq,
            topic,
            json,
            origin,
            data_start,
        });
        if inner.replay.len() >= self.config.replay.max(1) {
            inner.replay.pop_front();
        }
        inner.replay.push_back(message.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(message);
        seq
    }

    /// Queues `data` on `topic` for the next batch instead of sending it at once: the
    /// topics people watch as a trickle (activities) go out every couple of seconds
    /// together ([`Bus::flush_later`]), each message still with its own `seq`. At most
    /// the replay buffer's size waits; beyond that the oldest are dropped and counted.
    pub fn publish_later(&self, topic: Topic, data: &impl Serialize) {
        let data = serde_json::to_string(data).unwrap_or_else(|error| {
            tracing::warn!(message = "Live event not serializable; sent as null.", %error);
            "null".to_owned()
        });
        let mut d = self.deferred.lock().unwrap_or_else(PoisonError::into_inner);
        if d.waiting.len() >= self.config.replay.max(1) {
            d.waiting.pop_front();
            self.deferred_dropped.inc();
        }
        d.waiting.push_back((topic, data));
    }

    /// Publishes every message queued by [`Bus::publish_later`], in the order queued,
    /// with consecutive sequence numbers; returns how many.
    pub fn flush_later(&self) -> usize {
        let waiting = std::mem::take(
            &mut self
                .deferred
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .waiting,
        );
        if waiting.is_empty() {
            return 0;
        }
        let mut inner = self.lock();
        for (topic, data) in &waiting {
            self.append(&mut inner, Origin::Local, topic.clone(), data);
        }
        drop(inner);
        self.published.add(waiting.len() as u64);
        waiting.len()
    }

    /// The last sequence number given (0 before the first publish).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq.saturating_sub(1)
    }

    /// A subscription to everything published from now on, preceded by what was
    /// published after `since` (when given) if the replay buffer still holds it.
    pub fn subscribe(&self, since: Option<u64>) -> Subscription {
        // Subscribing under the lock: nothing is published between the backlog copy
        // and the live receiver, so nothing is missed or sent twice.
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let mut backlog = VecDeque::new();
        let mut gap = None;
        if let Some(since) = since {
            let oldest = inner.replay.front().map(|m| m.seq);
            match oldest {
                Some(oldest) if since + 1 < oldest => gap = Some(Gap { since, oldest }),
                None if since + 1 < inner.next_seq => {
                    gap = Some(Gap {
                        since,
                        oldest: inner.next_seq,
                    })
                }
                _ => {}
            }
            backlog.extend(inner.replay.iter().filter(|m| m.seq > since).cloned());
        }
        drop(inner);
        self.subscribers.add(1);
        Subscription {
            backlog,
            gap,
            rx,
            gauge: self.subscribers.clone(),
        }
    }
}

/// Messages a reconnecting client asked for that are no longer in the replay buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The client's last sequence number.
    pub since: u64,
    /// The oldest sequence number still held.
    pub oldest: u64,
}

/// One subscriber's view of the bus.
pub struct Subscription {
    backlog: VecDeque<Arc<Message>>,
    gap: Option<Gap>,
    rx: broadcast::Receiver<Arc<Message>>,
    gauge: Arc<Gauge>,
}

impl Subscription {
    /// Set when the client asked for messages older than the replay buffer holds.
    pub fn gap(&self) -> Option<Gap> {
        self.gap
    }

    /// The next message if one is waiting now, without waiting (`None`: nothing yet).
    pub fn try_next(&mut self) -> Option<Next> {
        if let Some(m) = self.backlog.pop_front() {
            return Some(Next::Message(m));
        }
        match self.rx.try_recv() {
            Ok(m) => Some(Next::Message(m)),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Next::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Some(Next::Closed),
        }
    }

    /// The next message (cancel-safe).
    pub async fn next(&mut self) -> Next {
        if let Some(m) = self.backlog.pop_front() {
            return Next::Message(m);
        }
        match self.rx.recv().await {
            Ok(m) => Next::Message(m),
            Err(broadcast::error::RecvError::Lagged(n)) => Next::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Next::Closed,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.gauge.add(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(m: &Message) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&m.json).unwrap()["data"].clone()
    }

    async fn take(sub: &mut Subscription, n: usize) -> Vec<Arc<Message>> {
        let mut out = Vec::new();
        while out.len() < n {
            match sub.next().await {
                Next::Message(m) => out.push(m),
                other => panic!("{other:?}"),
            }
        }
        out
    }

    #[tokio::test]
    async fn one_sequence_replay_and_live_without_holes_or_repeats() {
        let bus = Bus::new(BusConfig {
            replay: 5,
            client_buffer: 64,
        });
        let first = bus.publish(Topic::Threats, &serde_json::json!({"n": 1}));
        let mut live = bus.subscribe(None);
        for n in 2..=8 {
            bus.publish(Topic::Alerts, &serde_json::json!({ "n": n }));
        }
        let got = take(&mut live, 7).await;
        assert_eq!(got[0].seq, first + 1);
        assert!(got.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert_eq!(data(&got[6])["n"], 8);
        let text: serde_json::Value = serde_json::from_str(&got[0].json).unwrap();
        assert_eq!(text["topic"], "alerts");

        // Reconnecting with the last seq seen: only what was missed (the buffer holds
        // the last 5), then live.
        let mut back = bus.subscribe(Some(first + 5));
        assert!(back.gap().is_none());
        let missed = take(&mut back, 2).await;
        assert_eq!((missed[0].seq, missed[1].seq), (first + 6, first + 7));
        bus.publish(Topic::Metrics, &1);
        assert_eq!(take(&mut back, 1).await[0].seq, first + 8);

        // Older than the buffer: a gap.
        let old = bus.subscribe(Some(first));
        assert_eq!(
            old.gap(),
            Some(Gap {
                since: first,
                oldest: first + 4
            })
        );
    }

    #[tokio::test]
    async fn relayed_messages_are_marked_and_keep_their_data() {
        let bus = Bus::new(BusConfig::default());
        let mut sub = bus.subscribe(None);
        bus.publish(Topic::Threats, &serde_json::json!({"id": 7, "s": "a}b"}));
        bus.publish_relayed(Topic::Alerts, r#"{"id":8}"#);
        let got = take(&mut sub, 2).await;
        assert_eq!(got[0].origin, Origin::Local);
        assert_eq!(got[0].data_json(), r#"{"id":7,"s":"a}b"}"#);
        assert_eq!(got[1].origin, Origin::Relayed);
        assert_eq!(got[1].data_json(), r#"{"id":8}"#);
        assert_eq!(got[1].seq, got[0].seq + 1);
        assert_eq!(data(&got[1])["id"], 8);
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_alone() {
        let bus = Bus::new(BusConfig {
            replay: 10,
            client_buffer: 16,
        });
        let mut slow = bus.subscribe(None);
        let mut fast = bus.subscribe(None);
        for n in 0..40 {
            bus.publish(Topic::Traffic, &n);
            if let Next::Message(m) = fast.next().await {
                assert_eq!(data(&m), n);
            }
        }
        assert!(matches!(slow.next().await, Next::Lagged(n) if n > 0));
    }

    #[tokio::test]
    async fn batched_messages_wait_for_the_flush_and_keep_one_seq_each() {
        let bus = Bus::new(BusConfig {
            replay: 3,
            client_buffer: 64,
        });
        let mut sub = bus.subscribe(None);
        bus.publish_later(Topic::Activities, &"a");
        bus.publish_later(Topic::Activities, &"b");
        assert!(sub.try_next().is_none(), "nothing before the flush");
        let now = bus.publish(Topic::Alerts, &"urgent");
        assert_eq!(bus.flush_later(), 2);
        assert_eq!(bus.flush_later(), 0);
        let got = take(&mut sub, 3).await;
        assert_eq!(got[0].seq, now);
        assert_eq!((got[1].seq, got[2].seq), (now + 1, now + 2));
        assert_eq!((data(&got[1]), data(&got[2])), ("a".into(), "b".into()));
        assert!(got[1].topic == Topic::Activities);
        assert!(sub.try_next().is_none());
        // Never flushed: the oldest beyond the bound are dropped, not kept forever.
        for n in 0..5 {
            bus.publish_later(Topic::Activities, &n);
        }
        assert_eq!(bus.flush_later(), 3);
        let kept: Vec<serde_json::Value> = (0..3)
            .map(|_| match sub.try_next() {
                Some(Next::Message(m)) => data(&m),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kept, [2, 3, 4]);
    }
}
