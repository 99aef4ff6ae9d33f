//! Resuming inspection after a crash (issue 16): a source resumes after its stored
//! events, but the inspector works behind the store, so the events stored and not yet
//! inspected when the process died would never be inspected. At start-up, before the
//! source's new events, its stored events past its inspection mark
//! ([`palisade_store::InspectionStore`]) go to the inspector again, in bounded groups;
//! those that already have their signature threat (stored before the mark moved; a
//! scenario's threat, source `scenario`, says nothing of inspection) are left out, so
//! that no threat is stored twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use palisade_core::supervisor::Supervisor;
use palisade_core::{Event, Shutdown};
use palisade_sources::StoredBatches;
use palisade_store::{IngestBatch, SharedStore, StoreError, WriteOutcome};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::db_monitor::DbHealth;

/// Events read and handed to the inspector at a time: one group, as big as an
/// import's batch, so that memory stays bounded whatever the gap.
const GROUP: u32 = 5_000;

/// Hands `source`'s stored events past its mark to the inspector, oldest first; returns
/// how many. Waits for room in the inspector's queue, so it ends once the last group is
/// queued: the caller starts the source after it, and the inspector takes its new
/// events after these.
pub(crate) async fn reinspect(
    store: &SharedStore,
    inspector: &mpsc::Sender<StoredBatches>,
    source: &str,
) -> Result<u64, StoreError> {
    let mut after = store.inspected_through(source).await?;
    let mut handed = 0u64;
    loop {
        let events = store.events_after(source, after, GROUP).await?;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(handed);
        };
        let done: HashSet<i64> = store
            .threatened_events(source, first.id, last.id)
            .await?
            .into_iter()
            .collect();
        after = last.id;
        let (group, n) = group_of(
            events
                .into_iter()
                .filter(|e| !done.contains(&e.id))
                .map(|e| (e.id, e.event)),
        );
        handed += n;
        if n > 0 && inspector.send(group).await.is_err() {
            // The inspector has stopped (shutdown): the mark stays where it is.
            return Ok(handed);
        }
    }
}

/// [`reinspect`] for one source, logging what it handed over.
pub(crate) async fn reinspect_logged(
    store: &SharedStore,
    inspector: &mpsc::Sender<StoredBatches>,
    source: &str,
) -> Result<(), StoreError> {
    let events = reinspect(store, inspector, source).await?;
    if events > 0 {
        tracing::info!(
            message = "Inspected again the stored events a stop left uninspected.",
            source,
            events
        );
    }
    Ok(())
}

/// The service's re-inspection at start-up, as the supervised task `reinspect`: once
/// the store is ready, each source's stored events past its mark go to the inspector;
/// then `done` lets the sources start (before, the mark would move past events never
/// inspected). A store that fails is retried; a panic restarts the task at the source
/// it was at (handing a source's events again stores no threat twice, see
/// [`reinspect`]); a shutdown ends it, the sources not started and the marks where
/// they were.
pub(crate) fn spawn_at_start(
    supervisor: &Supervisor,
    store: SharedStore,
    db: Arc<DbHealth>,
    inspector: mpsc::Sender<StoredBatches>,
    names: Vec<String>,
    done: watch::Sender<bool>,
) -> JoinHandle<()> {
    let state = Arc::new(AtStart {
        store,
        db,
        names,
        next: AtomicUsize::new(0),
        inspector: Mutex::new(Some(inspector)),
        done,
    });
    let shutdown = supervisor.shutdown();
    supervisor.spawn("reinspect", move || state.clone().run(shutdown.clone()))
}

/// What the start-up re-inspection keeps across a restart.
struct AtStart {
    store: SharedStore,
    db: Arc<DbHealth>,
    names: Vec<String>,
    /// The first source not yet handed over in full.
    next: AtomicUsize,
    /// The inspector's queue, given up (so that the writer is its only sender again)
    /// once every source is handed over.
    inspector: Mutex<Option<mpsc::Sender<StoredBatches>>>,
    done: watch::Sender<bool>,
}

impl AtStart {
    async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let inspector = self
            .inspector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(inspector) = inspector else { return };
        while let Some(source) = self.names.get(self.next.load(Ordering::Acquire)) {
            loop {
                while !self.db.ready() {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = shutdown.recv() => return,
                    }
                }
                let result = tokio::select! {
                    r = reinspect_logged(&self.store, &inspector, source) => r,
                    _ = shutdown.recv() => return,
                };
                let Err(error) = result else { break };
                tracing::warn!(
                    message = "Cannot read the stored events left uninspected yet; retrying.",
                    source,
                    %error
                );
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.recv() => return,
                }
            }
            self.next.fetch_add(1, Ordering::AcqRel);
        }
        drop(inspector);
        self.inspector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let _ = self.done.send(true);
    }
}

/// For an import that stores events without inspecting them (`palisade ingest
/// --no-detect`): a writer observer that moves each source's inspection mark over the
/// events stored, so that the next start does not take them for events a crash left
/// uninspected (the user chose not to inspect them) and keep that source's tail or
/// listener waiting while it inspects them all. The task ends when the writer does.
pub fn skip_inspection(store: SharedStore) -> (mpsc::Sender<StoredBatches>, JoinHandle<()>) {
    // One group in flight: the writer holds a group until every observer has taken it, so
    // a deeper queue would only keep more stored events in memory.
    let (tx, mut rx) = mpsc::channel::<StoredBatches>(1);
    let task = tokio::spawn(async move {
        while let Some(group) = rx.recv().await {
            let marks = highest_per_source(&group);
            if let Err(error) = store.mark_inspected(&marks).await {
                tracing::warn!(
                    message = "Cannot mark events stored without detection as not to inspect; the next start inspects them.",
                    %error
                );
            }
        }
    });
    (tx, task)
}

/// The highest event id of each source in a group.
fn highest_per_source(group: &StoredBatches) -> Vec<(String, i64)> {
    let mut marks: Vec<(String, i64)> = Vec::new();
    for (id, event) in group.events() {
        match marks.iter_mut().find(|(source, _)| *source == event.source) {
            Some((_, highest)) => *highest = (*highest).max(id),
            None => marks.push((event.source.clone(), id)),
        }
    }
    marks
}

/// Events with their ids (ascending) as the group the inspector takes: one batch per
/// run of consecutive ids (a batch's events have consecutive ids from its first).
fn group_of(events: impl Iterator<Item = (i64, Event)>) -> (StoredBatches, u64) {
    let mut batches: Vec<IngestBatch> = Vec::new();
    let mut outcomes: Vec<Option<WriteOutcome>> = Vec::new();
    let mut n = 0u64;
    for (id, event) in events {
        n += 1;
        let next = outcomes
            .last()
            .and_then(|o| *o)
            .and_then(|o| Some(o.first_event_id? + i64::try_from(o.events).ok()?));
        match (batches.last_mut(), outcomes.last_mut()) {
            (Some(batch), Some(Some(outcome))) if next == Some(id) => {
                batch.events.push(event);
                outcome.events += 1;
            }
            _ => {
                batches.push(IngestBatch {
                    events: vec![event],
                    ..IngestBatch::default()
                });
                outcomes.push(Some(WriteOutcome {
                    events: 1,
                    dead_letters: 0,
                    duplicate: false,
                    first_event_id: Some(id),
                }));
            }
        }
    }
    let group = StoredBatches {
        batches: batches.into(),
        outcomes: outcomes.into(),
    };
    (group, n)
}

#[cfg(test)]
mod tests {
    use palisade_core::ShutdownTrigger;
    use palisade_core::supervisor::TaskState;

    use super::*;

    #[tokio::test]
    async fn the_start_up_task_hands_over_every_source_then_lets_the_sources_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://", dir.path()).unwrap();
        store.migrate().await.unwrap();
        for source in ["a", "b"] {
            let events = (0..3)
                .map(|i| Event {
                    source: source.into(),
                    path: Some(format!("/{i}")),
                    ..Event::default()
                })
                .collect();
            let batch = IngestBatch {
                events,
                ..IngestBatch::default()
            };
            store.write_batch(batch).await.unwrap();
        }
        let trigger = ShutdownTrigger::new();
        let db = Arc::new(DbHealth::new("sqlite"));
        let monitor = tokio::spawn(crate::db_monitor::monitor(
            store.clone(),
            db.clone(),
            Duration::from_millis(20),
            trigger.subscribe(),
        ));
        let supervisor = Supervisor::new(trigger.subscribe());
        let (tx, mut rx) = mpsc::channel(1);
        let (done, mut gate) = watch::channel(false);
        let names = vec!["a".to_owned(), "b".to_owned()];
        let task = spawn_at_start(&supervisor, store, db, tx, names, done);

        let mut handed = Vec::new();
        // Ends when every sender is gone: the task gives its queue up when it is done.
        while let Some(group) = rx.recv().await {
            handed.extend(
                group
                    .events()
                    .map(|(_, e)| format!("{}{}", e.source, e.path.clone().unwrap_or_default())),
            );
        }
        assert_eq!(handed, ["a/0", "a/1", "a/2", "b/0", "b/1", "b/2"]);
        gate.wait_for(|done| *done).await.unwrap();
        task.await.unwrap();
        let status = supervisor.statuses();
        assert!(
            status
                .iter()
                .any(|s| s.name == "reinspect" && s.state == TaskState::Finished),
            "{status:?}"
        );
        trigger.trigger();
        monitor.await.unwrap();
    }

    #[test]
    fn runs_of_ids_become_batches_that_give_back_each_id() {
        let ids = [3i64, 4, 5, 9, 10, 12];
        let events = ids.iter().map(|&id| {
            (
                id,
                Event {
                    path: Some(format!("/{id}")),
                    ..Event::default()
                },
            )
        });
        let (group, n) = group_of(events);
        assert_eq!(n, 6);
        assert_eq!(group.batches.len(), 3);
        let back: Vec<(i64, String)> = group
            .events()
            .map(|(id, e)| (id, e.path.clone().unwrap_or_default()))
            .collect();
        let expected: Vec<(i64, String)> = ids.iter().map(|&id| (id, format!("/{id}"))).collect();
        assert_eq!(back, expected);
    }

    #[tokio::test]
    async fn events_stored_without_detection_are_not_inspected_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://", dir.path()).unwrap();
        store.migrate().await.unwrap();
        let (observer, marking) = skip_inspection(store.clone());
        let supervisor = Supervisor::new(Shutdown::never());
        let config = palisade_sources::WriterConfig {
            observers: vec![observer],
            ..palisade_sources::WriterConfig::default()
        };
        let (writer, task) =
            palisade_sources::BatchWriter::spawn(store.clone(), config, &supervisor);
        for source in ["a", "b", "a"] {
            let batch = IngestBatch {
                events: vec![
                    Event {
                        source: source.into(),
                        ..Event::default()
                    };
                    3
                ],
                ..IngestBatch::default()
            };
            writer.write(batch).await.unwrap();
        }
        drop(writer);
        task.await.unwrap();
        marking.await.unwrap();

        assert_eq!(store.inspected_through("a").await.unwrap(), 9);
        assert_eq!(store.inspected_through("b").await.unwrap(), 6);
        let (tx, mut rx) = mpsc::channel(4);
        for source in ["a", "b"] {
            assert_eq!(reinspect(&store, &tx, source).await.unwrap(), 0);
        }
        drop(tx);
        assert!(rx.recv().await.is_none());
    }
}
