//! The request model's predictions as records for other systems (`[kafka_sink]
//! predictions_topic`): one per request the model scored, wherever it was judged
//! (`/api/v1/check`, the protecting proxy, the ingest inspector).
//!
//! The Guard hands each record to a bounded channel with `try_send`: a judgement never
//! waits for the consumer, and a record that finds the channel full is dropped and
//! counted (`palisade_model_predictions_dropped_total`). Which requests reach the model
//! follows the fusion policy: with the advisory default only those the rules found
//! something in; with `model_weight` or `block_probability` set, every request.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use palisade_core::Timestamp;
use palisade_core::metrics::{Counter, registry};
use serde::Serialize;
use tokio::sync::mpsc;

/// Records that may wait for the consumer before new ones are dropped.
pub const PREDICTION_QUEUE: usize = 10_000;

/// The threat a prediction's request raised, to join the two (the threat's id is
/// given by the store later; its `ts`, client and URI are the prediction's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictedThreat {
    /// The threat's category (`sqli`, …, `anomaly`).
    pub category: String,
    /// Its fused score.
    pub score: u32,
    /// What was done: `block`, `detect`, `ban`.
    pub decision: String,
}

/// One prediction, as produced to Kafka (JSON), keyed by the client IP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionRecord {
    /// When the request was judged (the threat's `ts` when it raised one).
    pub ts: Timestamp,
    /// The model that scored it (`http-…`).
    pub model_version: String,
    /// The threat detector's probability that the request is an attack.
    pub probability: f32,
    /// Whether that probability reaches the model's own threshold.
    pub malicious: bool,
    /// The attack classifier's family (`sqli`, `xss`, …).
    pub class: String,
    /// The classifier's probability for that family.
    pub class_probability: f32,
    /// The rules' score.
    pub rule_score: u32,
    /// Points the model added under the fusion policy.
    pub model_points: u32,
    /// The final score (rules + model + baselines).
    pub score: u32,
    /// The outcome: `allow`, `detect`, `block`.
    pub decision: String,
    /// The client, when known; the record's key.
    pub client_ip: Option<IpAddr>,
    /// The request's method.
    pub method: String,
    /// The request's target (at most 2,048 characters).
    pub uri: String,
    /// Where it was judged: `check`, a proxy's name, an ingest source.
    pub source: String,
    /// The stored event, for a log line.
    pub event_id: Option<i64>,
    /// The threat it raised, if any.
    pub threat: Option<PredictedThreat>,
}

impl PredictionRecord {
    /// The Kafka key: the client IP (one client's predictions in order on one
    /// partition), empty when unknown.
    pub fn key(&self) -> String {
        self.client_ip.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// Where the Guard hands predictions: a bounded channel, never waited on.
#[derive(Clone)]
pub struct PredictionTap {
    tx: mpsc::Sender<PredictionRecord>,
    dropped: Arc<AtomicU64>,
    dropped_metric: Arc<Counter>,
}

impl std::fmt::Debug for PredictionTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionTap")
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl PredictionTap {
    /// A tap holding at most `capacity` records, and the consumer's end.
    pub fn channel(capacity: usize) -> (PredictionTap, mpsc::Receiver<PredictionRecord>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let tap = PredictionTap {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            dropped_metric: registry().counter(
                "palisade_model_predictions_dropped_total",
                "Model predictions not handed to the Kafka sink because its queue was full.",
                &[],
                &[],
            ),
        };
        (tap, rx)
    }

    /// Queues one record without waiting; counts it as dropped when the queue is full
    /// or its consumer is gone.
    pub fn offer(&self, record: PredictionRecord) {
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_metric.inc();
        }
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: i64) -> PredictionRecord {
        PredictionRecord {
            ts: Timestamp(n),
            model_version: "m".into(),
            probability: 0.9,
            malicious: true,
            class: "sqli".into(),
            class_probability: 0.8,
            rule_score: 5,
            model_points: 0,
            score: 5,
            decision: "block".into(),
            client_ip: "192.0.2.7".parse().ok(),
            method: "GET".into(),
            uri: "/".into(),
            source: "check".into(),
            event_id: None,
            threat: None,
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let (tap, mut rx) = PredictionTap::channel(2);
        for n in 0..5 {
            tap.offer(record(n));
        }
        assert_eq!(tap.dropped(), 3);
        assert_eq!(rx.try_recv().map(|r| r.ts), Ok(Timestamp(0)));
        assert_eq!(rx.try_recv().map(|r| r.key()), Ok("192.0.2.7".to_owned()));
        assert!(rx.try_recv().is_err(), "the dropped ones never arrive");
        drop(rx);
        tap.offer(record(9));
        assert_eq!(tap.dropped(), 4, "no consumer: dropped, never blocked");
    }
}
