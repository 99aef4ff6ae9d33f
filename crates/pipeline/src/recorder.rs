//! Threat recording off the decision path: `/check` hands threats to a bounded queue
//! and answers at once; a background task writes them in batches. When the store is
//! down the queue holds what it can and counts what it must drop: a decision is never
//! delayed by storage.

use std::sync::Arc;
use std::time::Duration;

use palisade_core::Shutdown;
use palisade_core::metrics::{Counter, registry};
use palisade_core::supervisor::{SharedReceiver, Supervisor};
use palisade_core::threat::{StoredThreat, Threat};
use palisade_live::{Bus, Topic};
use palisade_store::SharedStore;
use tokio::sync::mpsc;

/// Threats that may wait for the store.
pub const QUEUE: usize = 10_000;
/// Most threats written in one transaction.
const BATCH: usize = 500;

/// The sending side, held by the API.
#[derive(Clone)]
pub struct ThreatRecorder {
    tx: mpsc::Sender<Threat>,
    counts: Arc<Outcomes>,
}

/// `palisade_threats_recorded_total` by outcome, looked up once: recording sits on the
/// request path of `/check` and the proxy.
struct Outcomes {
    queued: Arc<Counter>,
    dropped: Arc<Counter>,
}

fn outcome_counter(outcome: &str) -> Arc<Counter> {
    registry().counter(
        "palisade_threats_recorded_total",
        "Threats handed to the recorder, by outcome.",
        &["outcome"],
        &[outcome],
    )
}

impl ThreatRecorder {
    fn new(tx: mpsc::Sender<Threat>) -> ThreatRecorder {
        ThreatRecorder {
            tx,
            counts: Arc::new(Outcomes {
                queued: outcome_counter("queued"),
                dropped: outcome_counter("dropped"),
            }),
        }
    }

    fn count(&self, queued: bool) {
        if queued {
            self.counts.queued.inc();
        } else {
            self.counts.dropped.inc();
        }
    }

    /// Queues a threat without waiting; a full queue drops it and counts the drop.
    pub fn record(&self, threat: Threat) {
        self.count(self.tx.try_send(threat).is_ok());
    }

    /// Queues a threat from a blocking thread, waiting for room: for pipeline stages
    /// where falling behind should slow ingest rather than lose threats. Never call
    /// it from async code.
    pub fn record_blocking(&self, threat: Threat) {
        self.count(self.tx.blocking_send(threat).is_ok());
    }

    /// A recorder whose threats go to the returned receiver rather than the store: for
    /// embedding the engine where the caller decides what to do with threats (tests,
    /// `palisade eval`).
    pub fn channel(capacity: usize) -> (ThreatRecorder, mpsc::Receiver<Threat>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ThreatRecorder::new(tx), rx)
    }

    /// Starts the writer task under `supervisor`; it ends at shutdown after a last
    /// flush, once every sender is gone or nothing has come for a while.
    pub fn spawn(
        store: SharedStore,
        outlets: ThreatOutlets,
        supervisor: &Supervisor,
    ) -> (ThreatRecorder, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Threat>(QUEUE);
        let rx = SharedReceiver::new(rx);
        let shutdown = supervisor.shutdown();
        let task = supervisor.spawn("threat-recorder", move || {
            write_threats(store.clone(), outlets.clone(), rx.clone(), shutdown.clone())
        });
        (ThreatRecorder::new(tx), task)
    }
}

/// Where stored threats go next, with the ids the store gave them.
#[derive(Clone, Default)]
pub struct ThreatOutlets {
    /// The live feed (`threats` topic): best effort, never waits.
    pub live: Option<Arc<Bus>>,
    /// Stages that must see every stored threat (alert rules): bounded channels the
    /// recorder waits on, so a stage that falls behind slows recording rather than
    /// losing threats.
    pub observers: Vec<mpsc::Sender<Arc<[StoredThreat]>>>,
}

impl std::fmt::Debug for ThreatOutlets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatOutlets")
            .field("live", &self.live.is_some())
            .field("observers", &self.observers.len())
            .finish()
    }
}

async fn write_threats(
    store: SharedStore,
    outlets: ThreatOutlets,
    rx: SharedReceiver<Threat>,
    mut shutdown: Shutdown,
) {
    let mut rx = rx.lock().await;
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
            // At shutdown, keep taking threats until every sender is gone (the proxies
            // and the ingest inspector finish their last requests) or nothing has come
            // for a while.
            let next = if shutdown.is_shutdown() {
                tokio::time::timeout(Duration::from_secs(5), rx.recv())
                    .await
                    .unwrap_or(None)
            } else {
                tokio::select! {
                    got = rx.recv() => got,
                    _ = shutdown.recv() => continue,
                }
            };
            match next {
                Some(t) => batch.push(t),
                None => return,
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(t) => batch.push(t),
                Err(_) => break,
            }
        }
        match store.insert_threats(&batch).await {
            Ok(ids) => {
                let stored: Arc<[StoredThreat]> = ids
                    .into_iter()
                    .zip(batch.drain(..))
                    .map(|(id, threat)| StoredThreat { id, threat })
                    .collect();
                // Stored: on the live feed at once, with the ids they were given.
                if let Some(bus) = &outlets.live {
                    for t in stored.iter() {
                        bus.publish(Topic::Threats, t);
                    }
                }
                for observer in &outlets.observers {
                    // A stage that has stopped is skipped.
                    let _ = observer.send(stored.clone()).await;
                }
                batch.clear();
                backoff = Duration::from_millis(100);
            }
            Err(error) => {
                failures.inc();
                tracing::warn!(message = "Cannot store threats yet; retrying.", %error, held = batch.len());
                if !error.is_transient() {
                    // A batch the store rejects for good would block every later one.
                    tracing::error!(message = "Threat batch rejected; dropping it.", %error);
                    outcome_counter("rejected").add(batch.len() as u64);
                    batch.clear();
                    continue;
                }
                if shutdown.is_shutdown() {
                    tracing::warn!(
                        message = "Stopping with threats the store did not take.",
                        dropped = batch.len()
                    );
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.recv() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
