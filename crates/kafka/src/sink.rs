//! `[kafka_sink]`: every stored threat produced to a topic as JSON.
//!
//! ```text
//! ThreatRecorder ─► bounded channel ─► "kafka-sink" task ─► librdkafka queue
//!                   (stored threats)   (serialize, key)     (bounded: `queue`)
//!                                                           ─► broker (idempotent,
//!                                                              acks=all, retried)
//! ```
//!
//! The record is the threat as the API shows it (`GET /api/v1/threats/{id}`: `id`,
//! `ts`, `category`, `severity`, `score`, `rule_ids`, `client_ip`, `method`, `uri`,
//! `source`, `event_id`, `decision`, `evidence`), keyed by the client IP so one
//! client's threats keep their order on one partition. The producer is idempotent
//! (`enable.idempotence`, `acks=all`): librdkafka's own retries never duplicate or
//! reorder a record. Recording never waits for Kafka: `send` only enqueues; when the
//! producer's queue is full (the broker down for long) the threat is dropped from the
//! sink and counted, and it stays in the store. Failed deliveries are counted too.
//!
//! With `decisions_topic`, IP decisions go to a second topic: a task reads the store's
//! decision changes (as a CrowdSec bouncer does: created, extended, deleted or expired
//! since the last look) every [`DECISIONS_EVERY`] and produces each as the store holds
//! it (`id`, `kind`, `scope`, `value`, `origin`, `scenario`, `expires_at`, `deleted_at`,
//! …), keyed by the decision's value. Decisions from every node reach it, since they
//! are read from the shared store; changes made while this process was not running are
//! not produced (they stay in the store and `/api/v1/decisions`).
//!
//! With `alerts_topic`, every alert change this process makes (the alerts component
//! publishes them on the live bus: opened, updated, reopened, absorbed by the rule
//! stage; acknowledged, resolved, dismissed through the API) is produced as the bus
//! carries it, `{"change": …, "alert": {…}}`, keyed by the alert's id. Changes relayed
//! from other nodes of a topology are left to the node that made them, so each change
//! is produced once.
//!
//! With `predictions_topic`, the request model's predictions: the Guard hands one
//! record per request the model scored to a bounded channel without waiting (full:
//! dropped and counted, `palisade_model_predictions_dropped_total`), and a task
//! produces each, keyed by the client IP (`palisade_pipeline::predictions`). The
//! schemas: `crates/kafka/README.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use palisade_core::metrics::{Counter, registry};
use palisade_core::supervisor::SharedReceiver;
use palisade_core::threat::StoredThreat;
use palisade_core::{Shutdown, Timestamp};
use palisade_store::SharedStore;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::config::KafkaSinkConfig;

/// Stored threat groups that may wait between the recorder and the sink task.
pub const CHANNEL_GROUPS: usize = 64;

/// How often the store's decision changes are read for `decisions_topic`.
pub const DECISIONS_EVERY: Duration = Duration::from_secs(1);

/// Decisions read from the store at a time.
const DECISIONS_PAGE: u32 = 500;

/// Longest the sink waits at shutdown for queued records to be delivered.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// Counts of what the sink did, for health and tests.
#[derive(Debug, Default)]
pub struct SinkCounts {
    /// Records the broker acknowledged.
    pub delivered: AtomicU64,
    /// Records that failed delivery after librdkafka's retries.
    pub failed: AtomicU64,
    /// Threats never queued because the producer's queue was full.
    pub dropped: AtomicU64,
}

struct SinkContext {
    counts: Arc<SinkCounts>,
    delivered: Arc<Counter>,
    failed: Arc<Counter>,
}

impl ClientContext for SinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(message = "Kafka sink client error.", %error, reason);
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(_) => {
                self.counts.delivered.fetch_add(1, Ordering::Relaxed);
                self.delivered.inc();
            }
            Err((error, _)) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                self.failed.inc();
                tracing::warn!(message = "A threat was not delivered to Kafka.", %error);
            }
        }
    }
}

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// librdkafka refused the configuration (an unknown or invalid `options` key).
    #[error("the Kafka client refused the sink configuration: {0}")]
    Client(#[from] KafkaError),
}

/// A started sink: hand [`KafkaSink::sender`] to the recorder, then run
/// [`KafkaSink::run`] as a task.
pub struct KafkaSink {
    producer: ThreadedProducer<SinkContext>,
    topic: String,
    decisions_topic: Option<String>,
    alerts_topic: Option<String>,
    predictions_topic: Option<String>,
    counts: Arc<SinkCounts>,
    dropped: Arc<Counter>,
}

impl KafkaSink {
    /// Builds the producer. Never connects here: a broker that is down only delays
    /// delivery (the queue holds records until `queue` is reached).
    pub fn new(config: &KafkaSinkConfig) -> Result<KafkaSink, SinkError> {
        let mut c = ClientConfig::new();
        for (k, v) in &config.options {
            c.set(k, v);
        }
        c.set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", config.queue.to_string());
        let r = registry();
        let counts = Arc::new(SinkCounts::default());
        let context = SinkContext {
            counts: counts.clone(),
            delivered: r.counter(
                "palisade_kafka_sink_delivered_total",
                "Threats the Kafka broker acknowledged.",
                &[],
                &[],
            ),
            failed: r.counter(
                "palisade_kafka_sink_failed_total",
                "Threats whose delivery to Kafka failed after retries.",
                &[],
                &[],
            ),
        };
        let producer = c.create_with_context(context)?;
        Ok(KafkaSink {
            producer,
            topic: config.threats_topic.clone(),
            decisions_topic: config.decisions_topic.clone(),
            alerts_topic: config.alerts_topic.clone(),
            predictions_topic: config.predictions_topic.clone(),
            counts,
            dropped: r.counter(
                "palisade_kafka_sink_dropped_total",
                "Threats not produced to Kafka because the producer's queue was full.",
                &[],
                &[],
            ),
        })
    }

    /// What the sink has done so far.
    pub fn counts(&self) -> Arc<SinkCounts> {
        self.counts.clone()
    }

    /// Queues one threat; counts it as dropped when the producer's queue is full.
    fn produce(&self, threat: &StoredThreat) {
        let key = threat
            .threat
            .client_ip
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        self.send(&self.topic, &key, threat);
    }

    /// Queues one record as JSON; counts it as dropped when the queue is full.
    fn send(&self, topic: &str, key: &str, value: &impl serde::Serialize) {
        match serde_json::to_vec(value) {
            Ok(payload) => self.send_raw(topic, key, &payload),
            Err(error) => {
                tracing::warn!(message = "A record could not be serialized for Kafka.", %error);
            }
        }
    }

    /// Whether alert changes are produced too (`alerts_topic`).
    pub fn produces_alerts(&self) -> bool {
        self.alerts_topic.is_some()
    }

    /// Produces the alert changes published on this process's live bus to
    /// `alerts_topic` until shutdown. A bus subscriber that falls behind loses the
    /// changes it missed (counted as dropped; the alerts stay in the store).
    pub async fn run_alerts(self: Arc<Self>, bus: Arc<palisade_live::Bus>, mut shutdown: Shutdown) {
        use palisade_live::{Next, Origin, Topic};
        let Some(topic) = self.alerts_topic.clone() else {
            return;
        };
        let mut sub = bus.subscribe(None);
        loop {
            let next = tokio::select! {
                n = sub.next() => n,
                _ = shutdown.recv() => return,
            };
            match next {
                Next::Message(m) if m.topic == Topic::Alerts && m.origin == Origin::Local => {
                    let data = m.data_json();
                    let key = alert_key(data);
                    self.send_raw(&topic, &key, data.as_bytes());
                }
                Next::Message(_) => {}
                Next::Lagged(n) => {
                    self.counts.dropped.fetch_add(n, Ordering::Relaxed);
                    self.dropped.add(n);
                }
                Next::Closed => return,
            }
        }
    }

    /// Queues one record already serialized; counts it as dropped when the queue is
    /// full.
    fn send_raw(&self, topic: &str, key: &str, payload: &[u8]) {
        let record = BaseRecord::to(topic).payload(payload).key(key);
        if let Err((error, _)) = self.producer.send(record) {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped.inc();
            if !matches!(
                error,
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
            ) {
                tracing::warn!(message = "A record could not be queued for Kafka.", %error);
            }
        }
    }

    /// Whether model predictions are produced too (`predictions_topic`).
    pub fn produces_predictions(&self) -> bool {
        self.predictions_topic.is_some()
    }

    /// Produces every record received to `predictions_topic` (JSON, keyed by `key`)
    /// until the senders are gone or shutdown; never slows the sender (it hands records
    /// over with `try_send`), and a full producer queue drops and counts.
    pub async fn run_predictions<T, K>(
        self: Arc<Self>,
        records: SharedReceiver<T>,
        key: K,
        mut shutdown: Shutdown,
    ) where
        T: serde::Serialize + Send + 'static,
        K: Fn(&T) -> String + Send + Sync + 'static,
    {
        let Some(topic) = self.predictions_topic.clone() else {
            return;
        };
        let mut rx = records.lock().await;
        loop {
            let next = tokio::select! {
                r = rx.recv() => r,
                _ = shutdown.recv() => None,
            };
            let Some(record) = next else { return };
            self.send(&topic, &key(&record), &record);
        }
    }

    /// Whether decisions are produced too (`decisions_topic`).
    pub fn produces_decisions(&self) -> bool {
        self.decisions_topic.is_some()
    }

    /// Produces the store's decision changes to `decisions_topic` until shutdown,
    /// starting with those made from now on. A store error is logged and the same
    /// window read again at the next tick.
    pub async fn run_decisions(self: Arc<Self>, store: SharedStore, mut shutdown: Shutdown) {
        let Some(topic) = self.decisions_topic.clone() else {
            return;
        };
        let mut since = Timestamp::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(DECISIONS_EVERY) => {}
                _ = shutdown.recv() => return,
            }
            let now = Timestamp::now();
            let mut after = 0;
            loop {
                match store
                    .decision_changes(since, now, after, DECISIONS_PAGE)
                    .await
                {
                    Ok(page) => {
                        for d in &page {
                            self.send(&topic, &d.value, d);
                        }
                        after = page.last().map_or(after, |d| d.id);
                        if page.len() < DECISIONS_PAGE as usize {
                            since = now;
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(message = "Cannot read decision changes for Kafka; will retry.", %error);
                        break;
                    }
                }
            }
        }
    }

    /// Produces every stored threat received until the recorder lets go of the
    /// channel (it drains last at shutdown), then waits briefly for the queued ones to
    /// be delivered.
    pub async fn run(self: Arc<Self>, threats: SharedReceiver<Arc<[StoredThreat]>>) {
        let mut rx = threats.lock().await;
        while let Some(group) = rx.recv().await {
            for threat in group.iter() {
                self.produce(threat);
            }
        }
        let sink = self.clone();
        let flushed =
            tokio::task::spawn_blocking(move || sink.producer.flush(SHUTDOWN_FLUSH)).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!(
                message = "Kafka sink stopped with threats not yet delivered.",
                queued = self.producer.in_flight_count()
            );
        }
    }
}

/// An alert change's key: the alert's id (one alert's changes stay in order on one
/// partition); empty when the change has none.
fn alert_key(data: &str) -> String {
    serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("alert")?.get("id")?.as_i64())
        .map(|id| id.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_changes_are_keyed_by_alert_id() {
        assert_eq!(alert_key(r#"{"change":"opened","alert":{"id":42}}"#), "42");
        assert_eq!(alert_key(r#"{"change":"opened"}"#), "");
        assert_eq!(alert_key("not json"), "");
    }
}
