//! Threat recording off the decision path: `/check` hands threats to a bounded queue
//! and answers at once; a background task writes them in batches. When the store is
//! down the queue holds what it can and counts what it must drop: a decision is never
//! delayed by storage.

use std::time::Duration;

use palisade_core::metrics::registry;
use palisade_core::threat::Threat;
use palisade_store::SharedStore;
use tokio::sync::{mpsc, watch};

/// Threats that may wait for the store.
pub const QUEUE: usize = 10_000;
/// Most threats written in one transaction.
const BATCH: usize = 500;

/// The sending side, held by the API.
#[derive(Clone)]
pub struct ThreatRecorder {
    tx: mpsc::Sender<Threat>,
}

impl ThreatRecorder {
    /// Queues a threat without waiting; a full queue drops it and counts the drop.
    pub fn record(&self, threat: Threat) {
        let outcome = if self.tx.try_send(threat).is_ok() {
            "queued"
        } else {
            "dropped"
        };
        registry()
            .counter(
                "palisade_threats_recorded_total",
                "Threats handed to the recorder, by outcome.",
                &["outcome"],
                &[outcome],
            )
            .inc();
    }

    /// Starts the writer task; it ends at shutdown after a last flush.
    pub fn spawn(
        store: SharedStore,
        mut shutdown: watch::Receiver<bool>,
    ) -> (ThreatRecorder, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Threat>(QUEUE);
        let task = tokio::spawn(async move {
            let failures = registry().counter(
                "palisade_threat_write_failures_total",
                "Failed threat batch writes (retried).",
                &[],
                &[],
            );
            let mut batch: Vec<Threat> = Vec::with_capacity(BATCH);
            let mut backoff = Duration::from_millis(100);
            loop {
                if batch.is_empty() {
                    tokio::select! {
                        got = rx.recv() => match got {
                            Some(t) => batch.push(t),
                            None => return,
                        },
                        _ = shutdown.changed() => {
                            while let Ok(t) = rx.try_recv() { batch.push(t); }
                            if !batch.is_empty() { let _ = store.insert_threats(&batch).await; }
                            return;
                        }
                    }
                }
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(t) => batch.push(t),
                        Err(_) => break,
                    }
                }
                match store.insert_threats(&batch).await {
                    Ok(_) => {
                        batch.clear();
                        backoff = Duration::from_millis(100);
                    }
                    Err(error) => {
                        failures.inc();
                        tracing::warn!(message = "Cannot store threats yet; retrying.", %error, held = batch.len());
                        if !error.is_transient() {
                            // A batch the store rejects for good would block every later one.
                            tracing::error!(message = "Threat batch rejected; dropping it.", %error);
                            registry()
                                .counter(
                                    "palisade_threats_recorded_total",
                                    "Threats handed to the recorder, by outcome.",
                                    &["outcome"],
                                    &["rejected"],
                                )
                                .add(batch.len() as u64);
                            batch.clear();
                            continue;
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
        (ThreatRecorder { tx }, task)
    }
}
