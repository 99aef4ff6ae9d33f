//! The bounded queue between sources and the store, and the task that drains it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use palisade_core::Shutdown;
use palisade_core::config::{ConfigProblem, Validate, check_range};
use palisade_core::metrics::{Counter, Gauge, Histogram, registry};
use palisade_core::supervisor::{SharedReceiver, Supervisor};
use palisade_core::{DeadLetter, Event};
use palisade_store::{IngestBatch, SharedStore, WriteOutcome};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// `[ingest]`: how sources batch lines and the writer queues and retries.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterConfig {
    /// Lines per batch (one store transaction) that sources build.
    pub batch_size: usize,
    /// Batches that may wait in the queue; beyond this, senders wait (backpressure).
    pub queue_batches: usize,
    /// Longest pause between retries while the store is down.
    #[serde(skip)]
    pub max_backoff: Duration,
    /// Later pipeline stages (detection, scenarios) that receive every group of
    /// batches once it is stored, with the ids its events were given.
    #[serde(skip)]
    pub observers: Vec<mpsc::Sender<StoredBatches>>,
    /// Most rows the writer takes into one group commit (at least one batch is always
    /// taken). A group is held until every observer has seen it, so this sets most of
    /// the memory in flight behind the store; an import with big batches lowers it
    /// (`palisade ingest`: one batch per group).
    #[serde(skip)]
    pub group_rows: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_size: 2000,
            queue_batches: 8,
            max_backoff: Duration::from_secs(5),
            observers: Vec::new(),
            group_rows: MAX_GROUP_ROWS,
        }
    }
}

impl Validate for WriterConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        check_range(&mut problems, "batch_size", self.batch_size, 1..=100_000);
        check_range(&mut problems, "queue_batches", self.queue_batches, 1..=1024);
        problems
    }
}

/// Batches just committed, for the pipeline stages after the store. `outcomes[i]`
/// belongs to `batches[i]`; `None` when that batch was not stored. A batch whose
/// outcome has fewer events than the batch was quarantined (its events became dead
/// letters) and has no event ids.
#[derive(Debug, Clone)]
pub struct StoredBatches {
    /// The batches as the sources built them.
    pub batches: Arc<[IngestBatch]>,
    /// What the store did with each.
    pub outcomes: Arc<[Option<WriteOutcome>]>,
}

impl StoredBatches {
    /// Every stored event with its id, in order.
    pub fn events(&self) -> impl Iterator<Item = (i64, &Event)> {
        self.batches
            .iter()
            .zip(self.outcomes.iter())
            .filter_map(|(b, o)| {
                let o = (*o)?;
                let first = o.first_event_id?;
                (!o.duplicate && o.events == b.events.len() as u64).then_some((first, b))
            })
            .flat_map(|(first, b)| b.events.iter().zip(first..).map(|(e, id)| (id, e)))
    }
}

/// Why a batch was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriterError {
    /// The writer has shut down; nothing more is accepted.
    #[error("the store writer has stopped")]
    Closed,
    /// The store is unreachable; the batch may still be written once it is back.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store rejected the batch and its dead-letter fallback.
    #[error("the store rejected the batch: {0}")]
    Rejected(String),
    /// The queue stayed full for as long as the sender was willing to wait.
    #[error("the store writer's queue is full")]
    Full,
}

struct Job {
    batch: IngestBatch,
    ack: Option<oneshot::Sender<Result<WriteOutcome, WriterError>>>,
}

/// A handle for sending batches to the store. Cloneable; the writer task stops when
/// every handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct BatchWriter {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    store_up: AtomicBool,
    /// When the current run of failed writes began (`None` while writes succeed).
    down_since: std::sync::Mutex<Option<Instant>>,
    last_error: std::sync::Mutex<Option<String>>,
    depth: Arc<Gauge>,
    capacity: usize,
}

struct Meters {
    write_seconds: Arc<Histogram>,
    events: Arc<Counter>,
    dead_letters: Arc<Counter>,
    errors: Arc<Counter>,
    duplicates: Arc<Counter>,
    quarantined: Arc<Counter>,
}

impl Meters {
    fn new(backend: &str) -> Self {
        let r = registry();
        Meters {
            write_seconds: r.histogram(
                "palisade_store_write_seconds",
                "Time to write one ingest batch to the store.",
                &["backend"],
                &[backend],
            ),
            events: r.counter(
                "palisade_ingested_events_total",
                "Events durably stored.",
                &[],
                &[],
            ),
            dead_letters: r.counter(
                "palisade_dead_letters_total",
                "Lines stored as dead letters (parse errors and rejected events).",
                &[],
                &[],
            ),
            errors: r.counter(
                "palisade_store_write_errors_total",
                "Failed attempts to write a batch (each retry counts).",
                &["backend"],
                &[backend],
            ),
            duplicates: r.counter(
                "palisade_ingest_duplicates_total",
                "Batches skipped because their idempotency key was already stored.",
                &[],
                &[],
            ),
            quarantined: r.counter(
                "palisade_ingest_quarantined_batches_total",
                "Batches the store rejected whose events were kept as dead letters instead.",
                &[],
                &[],
            ),
        }
    }
}

impl BatchWriter {
    /// Starts the writer task for a store under `supervisor` (a panic restarts it on
    /// the same queue). The supervisor's shutdown only interrupts retry waits: the task
    /// itself ends when every handle is dropped and the queue is empty.
    pub fn spawn(
        store: SharedStore,
        config: WriterConfig,
        supervisor: &Supervisor,
    ) -> (BatchWriter, JoinHandle<()>) {
        let capacity = config.queue_batches.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            store_up: AtomicBool::new(true),
            down_since: std::sync::Mutex::new(None),
            last_error: std::sync::Mutex::new(None),
            depth: registry().gauge(
                "palisade_ingest_queue_depth",
                "Batches waiting for the store writer.",
                &[],
                &[],
            ),
            capacity,
        });
        let rx = SharedReceiver::new(rx);
        let shutdown = supervisor.shutdown();
        let task = {
            let shared = shared.clone();
            supervisor.spawn("writer", move || {
                run(
                    store.clone(),
                    config.clone(),
                    rx.clone(),
                    shared.clone(),
                    shutdown.clone(),
                )
            })
        };
        (BatchWriter { tx, shared }, task)
    }

    /// Queues a batch, waiting while the queue is full. Returns once queued, not stored:
    /// sources whose batches carry a checkpoint need no more, since a batch lost in a
    /// crash is read again from the stored checkpoint.
    pub async fn send(&self, batch: IngestBatch) -> Result<(), WriterError> {
        self.shared.depth.add(1);
        let sent = self.tx.send(Job { batch, ack: None }).await;
        if sent.is_err() {
            self.shared.depth.add(-1);
            return Err(WriterError::Closed);
        }
        Ok(())
    }

    /// Queues a batch, waiting at most `wait` for room: for sources that must never
    /// fall behind their own clients (the protecting proxy's traffic), which give a
    /// batch up and count it rather than wait longer. [`WriterError::Full`] when the
    /// queue stayed full.
    pub async fn send_within(&self, batch: IngestBatch, wait: Duration) -> Result<(), WriterError> {
        self.shared.depth.add(1);
        match self.tx.send_timeout(Job { batch, ack: None }, wait).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.shared.depth.add(-1);
                Err(WriterError::Full)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                self.shared.depth.add(-1);
                Err(WriterError::Closed)
            }
        }
    }

    /// Queues a batch and waits until it is durably stored (or has failed).
    pub async fn write(&self, batch: IngestBatch) -> Result<WriteOutcome, WriterError> {
        let (ack, done) = oneshot::channel();
        self.shared.depth.add(1);
        if self
            .tx
            .send(Job {
                batch,
                ack: Some(ack),
            })
            .await
            .is_err()
        {
            self.shared.depth.add(-1);
            return Err(WriterError::Closed);
        }
        done.await.unwrap_or(Err(WriterError::Closed))
    }

    /// Whether the last write attempt reached the store.
    pub fn store_available(&self) -> bool {
        self.shared.store_up.load(Ordering::Relaxed)
    }

    /// How long writes have been failing without a success in between (`None` while
    /// they succeed). One failed attempt on a pooled connection that was cut while
    /// idle flips [`Self::store_available`] for a moment, so callers that answer
    /// "unavailable" at once look at how long it has lasted.
    pub fn store_down_for(&self) -> Option<Duration> {
        self.shared
            .down_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|since| since.elapsed())
    }

    /// The last write error while the store is unavailable.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Batches waiting in the queue.
    pub fn depth(&self) -> usize {
        self.shared.capacity - self.tx.capacity().min(self.shared.capacity)
    }

    /// The queue's bound.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

async fn run(
    store: SharedStore,
    config: WriterConfig,
    rx: SharedReceiver<Job>,
    shared: Arc<Shared>,
    mut shutdown: Shutdown,
) {
    let meters = Meters::new(store.backend());
    let mut rx = rx.lock().await;
    while let Some(first) = rx.recv().await {
        // Group commit: whatever else is already queued goes into the same transaction.
        // Memory stays bounded by the queue; only the commit count changes.
        let mut jobs = vec![first];
        let mut rows = jobs.iter().map(|j| j.batch.rows()).sum::<usize>();
        while rows < config.group_rows {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.batch.rows();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        shared.depth.add(-(jobs.len() as i64));
        let (batches, acks): (Vec<IngestBatch>, Vec<_>) =
            jobs.into_iter().map(|j| (j.batch, j.ack)).unzip();
        let group: Arc<[IngestBatch]> = Arc::from(batches);
        let results = write_group(
            &store,
            &config,
            &shared,
            &meters,
            group.clone(),
            &mut shutdown,
        )
        .await;
        if !config.observers.is_empty() {
            let outcomes: Vec<Option<WriteOutcome>> =
                results.iter().map(|r| r.as_ref().ok().copied()).collect();
            let stored = StoredBatches {
                batches: group,
                outcomes: outcomes.into(),
            };
            for observer in &config.observers {
                // Waiting here is backpressure: a stage that falls behind slows ingest
                // rather than losing events. A stage that has stopped is skipped.
                let _ = observer.send(stored.clone()).await;
            }
        }
        for (result, ack) in results.into_iter().zip(acks) {
            match &result {
                Ok(outcome) => {
                    // A duplicate stored nothing: its figures are the first write's.
                    if outcome.duplicate {
                        meters.duplicates.inc();
                    } else {
                        meters.events.add(outcome.events);
                        meters.dead_letters.add(outcome.dead_letters);
                    }
                }
                Err(error) => tracing::error!(message = "Batch not stored.", %error),
            }
            if let Some(ack) = ack {
                let _ = ack.send(result);
            }
        }
    }
}

/// Most rows written in one grouped transaction by default ([`WriterConfig::group_rows`]).
/// A group is held in memory until every later stage has seen it: the inspector holds
/// one group and queues one more, the scenarios hold one and queue two, so the group
/// size sets most of the memory in flight with detection on. With SQLite's hour-leading
/// indexes (or none, during a bulk load) a commit costs little more than its rows, so
/// 10,000 rows keep commits few while the groups in flight stay small
/// (docs/BENCHMARKS.md has peak RSS with 25,000 and 10,000).
const MAX_GROUP_ROWS: usize = 10_000;

trait Rows {
    fn rows(&self) -> usize;
}

impl Rows for IngestBatch {
    fn rows(&self) -> usize {
        self.events.len() + self.dead_letters.len()
    }
}

/// Writes a group of batches in one transaction, retrying while the store is down. If
/// the store rejects the group, each batch is written on its own so that one bad batch
/// cannot hold back the others.
async fn write_group(
    store: &SharedStore,
    config: &WriterConfig,
    shared: &Shared,
    meters: &Meters,
    group: Arc<[IngestBatch]>,
    shutdown: &mut Shutdown,
) -> Vec<Result<WriteOutcome, WriterError>> {
    let n = group.len();
    if n == 1 {
        return vec![write_with_retry(store, config, shared, meters, group, shutdown).await];
    }
    match attempt(store, config, shared, meters, group.clone(), shutdown).await {
        Ok(outcomes) if outcomes.len() == n => outcomes.into_iter().map(Ok).collect(),
        Err(e @ WriterError::Unavailable(_)) | Err(e @ WriterError::Closed) => {
            (0..n).map(|_| Err(e.clone())).collect()
        }
        _ => {
            let mut results = Vec::with_capacity(n);
            for batch in group.iter() {
                let single: Arc<[IngestBatch]> = Arc::from(vec![batch.clone()]);
                results
                    .push(write_with_retry(store, config, shared, meters, single, shutdown).await);
            }
            results
        }
    }
}

/// One write of a group, retried with backoff for as long as the store is unreachable
/// (until shutdown). A rejection is returned at once.
async fn attempt(
    store: &SharedStore,
    config: &WriterConfig,
    shared: &Shared,
    meters: &Meters,
    group: Arc<[IngestBatch]>,
    shutdown: &mut Shutdown,
) -> Result<Vec<WriteOutcome>, WriterError> {
    let mut backoff = Duration::from_millis(50);
    loop {
        let started = Instant::now();
        match store.write_batches(group.clone()).await {
            Ok(outcomes) => {
                meters
                    .write_seconds
                    .observe(started.elapsed().as_secs_f64());
                if !shared.store_up.swap(true, Ordering::Relaxed) {
                    tracing::info!(message = "Store is reachable again; writes resumed.");
                }
                *shared.down_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
                *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                return Ok(outcomes);
            }
            Err(error) if error.is_transient() => {
                meters.errors.inc();
                if shared.store_up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(message = "Store unavailable; holding batches and retrying.", %error);
                }
                shared
                    .down_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(Instant::now);
                *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(error.to_string());
                if shutdown.is_shutdown() {
                    return Err(WriterError::Unavailable(error.to_string()));
                }
                let jitter =
                    Duration::from_millis(u64::from(started.elapsed().subsec_nanos() % 50));
                tokio::select! {
                    _ = tokio::time::sleep(backoff + jitter) => {}
                    _ = shutdown.recv() => {}
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
            Err(error) => {
                meters.errors.inc();
                tracing::error!(message = "Store rejected a batch.", %error);
                return Err(WriterError::Rejected(error.to_string()));
            }
        }
    }
}

/// Writes one batch: retried while the store is down; after three rejections its
/// events are kept as dead letters instead (see [`quarantine`]).
async fn write_with_retry(
    store: &SharedStore,
    config: &WriterConfig,
    shared: &Shared,
    meters: &Meters,
    mut group: Arc<[IngestBatch]>,
    shutdown: &mut Shutdown,
) -> Result<WriteOutcome, WriterError> {
    let mut rejections = 0;
    loop {
        match attempt(store, config, shared, meters, group.clone(), shutdown).await {
            Ok(mut outcomes) => {
                return outcomes
                    .pop()
                    .ok_or_else(|| WriterError::Rejected("the store returned no outcome".into()));
            }
            Err(WriterError::Rejected(reason)) => {
                rejections += 1;
                if rejections >= 3 {
                    let batch = group.first().cloned().unwrap_or_default();
                    if batch.events.is_empty() {
                        return Err(WriterError::Rejected(reason));
                    }
                    meters.quarantined.inc();
                    group = Arc::from(vec![quarantine(batch, &reason)]);
                }
            }
            Err(other) => return Err(other),
        }
    }
}

/// Turns a batch the store keeps rejecting into dead letters (one per event, with the
/// event as JSON and the store's reason), so that nothing is lost and the checkpoint
/// still advances.
fn quarantine(batch: IngestBatch, error: &str) -> IngestBatch {
    let reason = format!("store rejected the event: {error}");
    let mut dead_letters = batch.dead_letters;
    dead_letters.extend(batch.events.iter().map(|e: &Event| {
        let raw = serde_json_line(e);
        DeadLetter::new(&e.source, None, None, raw.as_bytes(), reason.clone())
    }));
    IngestBatch {
        events: Vec::new(),
        dead_letters,
        checkpoint: batch.checkpoint,
        idempotency_key: batch.idempotency_key,
    }
}

fn serde_json_line(e: &Event) -> String {
    serde_json::to_string(e).unwrap_or_else(|_| format!("{e:?}"))
}
