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
/// Most threats written in one transaction. An import can raise a threat on one line
/// in nine, tens of thousands a second: each transaction rewrites the threat indexes'
/// touched pages, so fewer, larger ones cost less (the store inserts them many rows per
/// statement).
const BATCH: usize = 2_000;

/// The sending side, held by the API.
#[derive(Clone)]
pub struct ThreatRecorder {
    tx: Tx,
    counts: Arc<Outcomes>,
}

/// What goes to the writer task, in order.
enum Item {
    /// A threat to store.
    Threat(Threat),
    /// Inspection marks (source, event id), written once every threat queued before
    /// them is stored: the inspector's events up to them are done (issue 16).
    Inspected(Vec<(String, i64)>),
}

/// Where the recorder sends: the writer task, or a plain channel of threats (tests,
/// `palisade eval`), which has no store and so no marks.
#[derive(Clone)]
enum Tx {
    Store(mpsc::Sender<Item>),
    Plain(mpsc::Sender<Threat>),
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
    fn new(tx: Tx) -> ThreatRecorder {
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
        let queued = match &self.tx {
            Tx::Store(tx) => tx.try_send(Item::Threat(threat)).is_ok(),
            Tx::Plain(tx) => tx.try_send(threat).is_ok(),
        };
        self.count(queued);
    }

    /// Queues a threat from a blocking thread, waiting for room: for pipeline stages
    /// where falling behind should slow ingest rather than lose threats. Never call
    /// it from async code.
    pub fn record_blocking(&self, threat: Threat) {
        let queued = match &self.tx {
            Tx::Store(tx) => tx.blocking_send(Item::Threat(threat)).is_ok(),
            Tx::Plain(tx) => tx.blocking_send(threat).is_ok(),
        };
        self.count(queued);
    }

    /// Queues inspection marks (source, highest event id inspected) from a blocking
    /// thread, after the threats of the events up to them: the writer task stores each
    /// mark only once those threats are stored, so that a restart inspects again
    /// whatever a crash left without its threats (issue 16). A plain channel drops them.
    pub fn inspected_blocking(&self, marks: Vec<(String, i64)>) {
        if let (Tx::Store(tx), false) = (&self.tx, marks.is_empty()) {
            // A writer that has gone only means the marks stay behind: more to inspect
            // again at the next start, nothing lost.
            let _ = tx.blocking_send(Item::Inspected(marks));
        }
    }

    /// A recorder whose threats go to the returned receiver rather than the store: for
    /// embedding the engine where the caller decides what to do with threats (tests,
    /// `palisade eval`).
    pub fn channel(capacity: usize) -> (ThreatRecorder, mpsc::Receiver<Threat>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ThreatRecorder::new(Tx::Plain(tx)), rx)
    }

    /// Starts the writer task under `supervisor`. It ends once `producers_done` fires
    /// (the pipeline fires it after every stage that records threats has drained, or
    /// drops it) and then every sender is gone or nothing has come for a while. Not the
    /// service's shutdown signal: stages still record threats while they drain, and an
    /// import's inspector can be seconds behind its writer (a large group commit), so a
    /// quiet spell during the drain is not the end.
    pub fn spawn(
        store: SharedStore,
        outlets: ThreatOutlets,
        supervisor: &Supervisor,
        producers_done: Shutdown,
    ) -> (ThreatRecorder, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Item>(QUEUE);
        let rx = SharedReceiver::new(rx);
        let task = supervisor.spawn("threat-recorder", move || {
            write_threats(
                store.clone(),
                outlets.clone(),
                rx.clone(),
                producers_done.clone(),
            )
        });
        (ThreatRecorder::new(Tx::Store(tx)), task)
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

/// Takes one item: a threat into the batch, marks into the marks to write after it
/// (one per source, the highest).
fn take(item: Item, batch: &mut Vec<Threat>, marks: &mut Vec<(String, i64)>) {
    match item {
        Item::Threat(t) => batch.push(t),
        Item::Inspected(new) => {
            for (source, id) in new {
                match marks.iter_mut().find(|(s, _)| *s == source) {
                    Some((_, held)) => *held = (*held).max(id),
                    None => marks.push((source, id)),
                }
            }
        }
    }
}

/// Stores the marks taken so far: every threat queued before them is stored (or was
/// rejected for good). A failure leaves the marks behind, which only means more events
/// inspected again at the next start (their stored threats are not stored twice).
async fn write_marks(store: &SharedStore, marks: &mut Vec<(String, i64)>) {
    if marks.is_empty() {
        return;
    }
    if let Err(error) = store.mark_inspected(marks).await {
        tracing::warn!(message = "Cannot store the inspection marks; they stay behind.", %error);
    }
    marks.clear();
}

async fn write_threats(
    store: SharedStore,
    outlets: ThreatOutlets,
    rx: SharedReceiver<Item>,
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
    let mut marks: Vec<(String, i64)> = Vec::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        if batch.is_empty() && marks.is_empty() {
            // Once the producers are done, keep taking threats until every sender is
            // gone (clones held by the HTTP side) or nothing has come for a while.
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
                Some(item) => take(item, &mut batch, &mut marks),
                None => return,
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(item) => take(item, &mut batch, &mut marks),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            write_marks(&store, &mut marks).await;
            continue;
        }
        match store.insert_threats(&batch).await {
            Ok(ids) => {
                // Stored copies only for someone to tell (a one-shot import has nobody).
                if outlets.live.is_some() || !outlets.observers.is_empty() {
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
                }
                batch.clear();
                write_marks(&store, &mut marks).await;
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
                    write_marks(&store, &mut marks).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::severity::Severity;
    use palisade_core::verdict::Action;
    use palisade_core::{ShutdownTrigger, Timestamp};
    use palisade_store::ThreatQuery;

    fn threat() -> Threat {
        Threat {
            tags: Vec::new(),
            ts: Timestamp::now(),
            category: "sqli".into(),
            severity: Severity::Critical,
            score: 5,
            rule_ids: vec![942100],
            client_ip: Some("192.0.2.7".parse().expect("ip")),
            method: Some("GET".into()),
            uri: Some("/item?id=1%27%20or%201=1--".into()),
            source: "ingest".into(),
            event_id: None,
            decision: Action::Detect,
            evidence: Vec::new(),
        }
    }

    /// A recorder over a fresh SQLite store: the store (and its directory, kept for
    /// the test's length), the service's and the producers' stop triggers, the
    /// recorder and its task.
    async fn recorder_on_sqlite() -> (
        tempfile::TempDir,
        SharedStore,
        ShutdownTrigger,
        ShutdownTrigger,
        ThreatRecorder,
        tokio::task::JoinHandle<()>,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let store = palisade_store::open("sqlite://", dir.path()).expect("store");
        store.migrate().await.expect("migrate");
        let service = ShutdownTrigger::new();
        let supervisor = Supervisor::new(service.subscribe());
        let producers = ShutdownTrigger::new();
        let (recorder, task) = ThreatRecorder::spawn(
            store.clone(),
            ThreatOutlets::default(),
            &supervisor,
            producers.subscribe(),
        );
        (dir, store, service, producers, recorder, task)
    }

    /// Lets the recorder go, says the producers are done, and waits for it to end.
    async fn finish(
        recorder: ThreatRecorder,
        producers: &ShutdownTrigger,
        task: tokio::task::JoinHandle<()>,
    ) {
        drop(recorder);
        producers.trigger();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the recorder ends once the producers are done")
            .expect("join");
    }

    /// An import's inspector can be seconds behind its writer, so the service's stop
    /// signal followed by a quiet spell longer than the recorder's idle grace is not
    /// the end: threats recorded after it are stored (before, the recorder had left
    /// and they were dropped: 2,876 of 23,239 stored for a 200k-line import).
    #[tokio::test]
    async fn threats_recorded_after_a_quiet_drain_are_stored() {
        let (_dir, store, service, producers, recorder, task) = recorder_on_sqlite().await;
        service.trigger();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let late = recorder.clone();
        tokio::task::spawn_blocking(move || late.record_blocking(threat()))
            .await
            .expect("record");
        finish(recorder, &producers, task).await;
        let stored = store
            .query_threats(&ThreatQuery::default())
            .await
            .expect("query");
        assert_eq!(stored.items.len(), 1, "the late threat is stored");
    }

    /// Inspection marks are stored once the threats queued before them are, each
    /// source's highest (issue 16); a plain channel has no store and drops them.
    #[tokio::test]
    async fn inspection_marks_follow_the_threats_before_them() {
        let (_dir, store, _service, producers, recorder, task) = recorder_on_sqlite().await;
        let sender = recorder.clone();
        tokio::task::spawn_blocking(move || {
            sender.record_blocking(threat());
            sender.inspected_blocking(vec![("web".into(), 40), ("api".into(), 7)]);
            sender.record_blocking(threat());
            sender.inspected_blocking(vec![("web".into(), 90)]);
            sender.inspected_blocking(vec![("web".into(), 60)]);
        })
        .await
        .expect("record");
        finish(recorder, &producers, task).await;
        let stored = store
            .query_threats(&ThreatQuery {
                limit: 10,
                ..ThreatQuery::default()
            })
            .await
            .expect("query");
        assert_eq!(stored.items.len(), 2);
        assert_eq!(store.inspected_through("web").await.expect("mark"), 90);
        assert_eq!(store.inspected_through("api").await.expect("mark"), 7);

        let (plain, mut rx) = ThreatRecorder::channel(4);
        tokio::task::spawn_blocking(move || {
            plain.inspected_blocking(vec![("web".into(), 1)]);
            plain.record_blocking(threat());
        })
        .await
        .expect("record");
        assert!(rx.recv().await.is_some(), "the threat, and nothing else");
        assert!(rx.recv().await.is_none());
    }
}
