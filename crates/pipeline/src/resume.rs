//! Resuming inspection after a crash (issue 16): a source resumes after its stored
//! events, but the inspector works behind the store, so the events stored and not yet
//! inspected when the process died would never be inspected. At start-up, before the
//! source's new events, its stored events past its inspection mark
//! ([`palisade_store::InspectionStore`]) go to the inspector again, in bounded groups;
//! those that already have their signature threat (stored before the mark moved; a
//! scenario's threat, source `scenario`, says nothing of inspection) are left out, so
//! that no threat is stored twice.
//!
//! # The stateful detectors of a resumed import ([`replay`])
//!
//! Two detectors judge a request by what came before it: the per-endpoint baselines
//! (learnt from the clean requests) and the behaviour scenarios (buckets per address).
//! Their state is in memory; an import killed part-way and run again used to start
//! them cold at the resume point, and stored fewer anomaly threats than an import
//! nothing stopped (−55 to −79 of 531 on the 1M-line log, docs/BENCHMARKS.md). So a
//! `palisade ingest` whose file resumes from its checkpoint first passes every stored
//! event of that source, oldest first, through the same judgement as the inspector's
//! and through the scenario engine ([`replay`]), storing only what is not stored yet.
//!
//! Why it is exact: the baselines' state after an event is a function of the events
//! judged before it, in order (whether an event is learnt depends on the engine's
//! verdict of that event alone, and the sampling of `learn_every` on a counter of the
//! requests judged); the scenario engine sees events in stored order on one thread, in
//! log time. The replay gives both the same events in the same order (ids ascend in
//! line order; a killed COPY leaves a gap in the ids, not in the order), so at the
//! resume point they hold what an uninterrupted import held there, and judge the rest
//! alike. The import itself keeps that order although the inspector spreads a group of
//! 2,048 events or more over its threads in 512-event slices: each thread does the
//! engine's work of its slices, and the baselines' step (observe, then score and build
//! the threat) runs slice after slice in event order (`stages/slices.rs`,
//! `stages/in_order.rs`), so two uninterrupted imports of one log, and a resumed one,
//! store the same anomaly threats (docs/BENCHMARKS.md, order1; before that, two
//! uninterrupted imports of a 100k-line log gave 34 and 37). Measured on the 1M-line
//! generated log (docs/BENCHMARKS.md, resume2): killed at eight points on SQLite and
//! PostgreSQL, the rerun stores the very threats of an uninterrupted import, anomaly and
//! scenario threats included.
//!
//! Where it is not exact: (1) an event that overflowed two scenarios at once, one of
//! whose threats was stored before the kill and not the other, loses the other (stored
//! scenario threats are matched by event); (2) a source name shared with earlier
//! imports of other files (`--source`) replays those files' events too, which an
//! uninterrupted import had not learnt from; (3) the replay costs about what inspecting
//! the stored part did, on one thread, once, at the resume.
//!
//! The service (`palisade serve` tailing a file) is not covered: its history has no
//! end, so it is not replayed; it restores the baselines saved every `snapshot_every`
//! and the scenario buckets saved every minute, which after a kill can be up to that
//! much behind (or ahead of) the inspection mark.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use palisade_core::event::StoredEvent;
use palisade_core::supervisor::Supervisor;
use palisade_core::{Event, Shutdown};
use palisade_sources::StoredBatches;
use palisade_store::{IngestBatch, SharedStore, StoreError, WriteOutcome};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::db_monitor::DbHealth;
use crate::guard::Guard;
use crate::stages::behaviour::{BanGate, Behaviour};
use crate::stages::inspector::inspect_all;

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

/// What [`replay`] went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Stored events passed through the stateful detectors again.
    pub events: u64,
    /// Of those, past the inspection mark (their threats, if not stored yet, are).
    pub past_mark: u64,
    /// Threats recorded: the inspector's for events past the mark that had none
    /// stored, and scenario alerts whose event had no scenario threat stored.
    pub threats: u64,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking pass over a group failed (it panicked).
    #[error("replaying stored events failed: {0}")]
    Join(String),
}

/// Rebuilds the stateful detectors' state for an import that resumes after a kill
/// (issue 16), then finishes its inspection: every stored event of `source`, oldest
/// first, goes again through the same judgement as the inspector's (so the
/// per-endpoint baselines learn exactly what they had learnt, in the same order) and
/// through the scenario engine (so its buckets hold what they held). Nothing already
/// stored is stored twice:
///
/// - an event at or under the inspection mark had its threats stored: its judgement
///   only teaches the baselines, its threat is dropped;
/// - an event past the mark is inspected as [`reinspect`] would, its threat recorded
///   unless one of `source` points at it already (stored before the mark moved);
/// - a scenario alert is recorded unless its event already has a scenario threat.
///
/// The pass is single-threaded and in id order, the order the import stored (and the
/// stages saw) them in. It reads everything the source has stored, so it costs about
/// what inspecting that part of the import did; it is for `palisade ingest` only (an
/// import is its own window), not for a service, whose history has no end.
pub(crate) async fn replay(
    store: &SharedStore,
    guard: &Guard,
    behaviour: &Arc<Behaviour>,
    source: &str,
) -> Result<Replayed, ReplayError> {
    let mark = store.inspected_through(source).await?;
    let mut after = 0i64;
    let mut done = Replayed::default();
    loop {
        let events = store.events_after(source, after, GROUP).await?;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(done);
        };
        let (first, last) = (first.id, last.id);
        let signed: HashSet<i64> = if last > mark {
            store
                .threatened_events(source, first.max(mark + 1), last)
                .await?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        let alerted: HashSet<i64> = store
            .threatened_events(palisade_scenarios::THREAT_SOURCE, first, last)
            .await?
            .into_iter()
            .collect();
        after = last;
        let (guard, behaviour, source) = (guard.clone(), behaviour.clone(), source.to_owned());
        let group = tokio::task::spawn_blocking(move || {
            replay_group(
                &guard, &behaviour, &source, &events, mark, &signed, &alerted,
            )
        })
        .await
        .map_err(|e| ReplayError::Join(e.to_string()))?;
        done.events += group.events;
        done.past_mark += group.past_mark;
        done.threats += group.threats;
    }
}

/// [`replay`]'s blocking pass over one group of stored events.
fn replay_group(
    guard: &Guard,
    behaviour: &Behaviour,
    source: &str,
    events: &[StoredEvent],
    mark: i64,
    signed: &HashSet<i64>,
    alerted: &HashSet<i64>,
) -> Replayed {
    let pairs: Vec<(i64, &Event)> = events.iter().map(|e| (e.id, &e.event)).collect();
    let threats = inspect_all(&guard.policy(), &pairs);
    let recorder = guard.threats();
    let mut recorded = 0u64;
    for threat in threats {
        let Some(id) = threat.event_id else { continue };
        if id > mark && !signed.contains(&id) {
            recorded += 1;
            recorder.record_blocking(threat);
        }
    }
    let past_mark = pairs.iter().filter(|(id, _)| *id > mark).count() as u64;
    if let Some(&(last, _)) = pairs.last().filter(|(id, _)| *id > mark) {
        // After the group's threats, as the inspector does.
        recorder.inspected_blocking(vec![(source.to_owned(), last)]);
    }
    recorded += behaviour.replay(pairs.iter().copied(), alerted, &BanGate::Import, recorder);
    Replayed {
        events: pairs.len() as u64,
        past_mark,
        threats: recorded,
    }
}

/// [`replay`] for one source, logging what it did.
pub(crate) async fn replay_logged(
    store: &SharedStore,
    guard: &Guard,
    behaviour: &Arc<Behaviour>,
    source: &str,
) -> Result<(), ReplayError> {
    let done = replay(store, guard, behaviour, source).await?;
    if done.events > 0 {
        tracing::info!(
            message =
                "Replayed the stored events of a resumed import through the stateful detectors.",
            source,
            events = done.events,
            past_mark = done.past_mark,
            threats = done.threats
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

    /// Requests to one endpoint: benign, a value it never saw now and then, an SQL
    /// injection one in 50, and 404s from one address.
    fn replay_events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event {
                kind: palisade_core::EventKind::Http,
                source: "shop".into(),
                ts: palisade_core::Timestamp::from_secs(1_700_000_000)
                    .add_micros(i as i64 * 50_000),
                method: Some("GET".into()),
                path: Some(if i % 13 == 0 {
                    format!("/missing-{i}")
                } else {
                    "/item".into()
                }),
                query: Some(match i {
                    _ if i % 50 == 7 => format!("id={i}%27%20or%201=1--"),
                    _ if i > 300 && i % 211 == 0 => format!("page={}", "zq".repeat(10 + i % 9)),
                    _ => format!("page={}", i % 97),
                }),
                status: Some(if i % 13 == 0 { 404 } else { 200 }),
                client_ip: Some(std::net::IpAddr::from(if i % 13 == 0 {
                    [192, 0, 2, 7]
                } else {
                    [10, 0, 0, 1]
                })),
                ..Event::default()
            })
            .collect()
    }

    /// What the replay tests return: a setup step that fails says why.
    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    fn replay_guard() -> TestResult<(
        crate::guard::Guard,
        Arc<palisade_models::Baselines>,
        mpsc::Receiver<palisade_core::threat::Threat>,
    )> {
        let detection = Arc::new(crate::detection::Detection::builtin(
            Default::default(),
            crate::detection::Mode::Block,
        )?);
        let (recorder, rx) = crate::recorder::ThreatRecorder::channel(100_000);
        let baselines = Arc::new(palisade_models::Baselines::new(Default::default()));
        let guard =
            crate::guard::Guard::new(detection, None, recorder).with_baselines(baselines.clone());
        Ok((guard, baselines, rx))
    }

    fn behaviour() -> TestResult<Arc<Behaviour>> {
        let set = palisade_scenarios::ScenarioSet::load(None)?;
        let engine = palisade_scenarios::ScenarioEngine::new(set, Default::default());
        Ok(Arc::new(Behaviour::new(engine, None)))
    }

    fn drain(
        rx: &mut mpsc::Receiver<palisade_core::threat::Threat>,
    ) -> Vec<(Option<i64>, String, String)> {
        let mut out = Vec::new();
        while let Ok(t) = rx.try_recv() {
            out.push((t.event_id, t.source, t.category));
        }
        out.sort();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replay_rebuilds_the_detectors_and_stores_only_what_is_missing() -> TestResult {
        let all = replay_events(3_000);
        // What a run nothing stopped finds and learns, every event in order.
        let (guard, reference, mut rx) = replay_guard()?;
        let engine = behaviour()?;
        let pairs: Vec<(i64, &Event)> = all
            .iter()
            .enumerate()
            .map(|(i, e)| (1 + i as i64, e))
            .collect();
        let threats = crate::stages::inspector::inspect_all(&guard.policy(), &pairs);
        // Recording blocks: off the runtime's threads.
        let alerts = tokio::task::block_in_place(|| {
            engine.replay(
                pairs.iter().copied(),
                &HashSet::new(),
                &BanGate::Import,
                guard.threats(),
            )
        });
        assert!(alerts > 0);
        let mut expected = drain(&mut rx);
        expected.extend(
            threats
                .iter()
                .map(|t| (t.event_id, t.source.clone(), t.category.clone())),
        );
        expected.sort();
        let expected_learnt = reference.snapshot().learnt();
        assert!(expected.iter().any(|t| t.2 == "anomaly"), "{expected:?}");

        // A stop left: every event stored, inspected through 1,000, the inspector's
        // threats stored through 1,500, the scenarios' through 2,000.
        let dir = tempfile::tempdir()?;
        let store = palisade_store::open("sqlite://", dir.path())?;
        store.migrate().await?;
        store
            .write_batch(IngestBatch {
                events: all.clone(),
                ..IngestBatch::default()
            })
            .await?;
        store.mark_inspected(&[("shop".to_owned(), 1_000)]).await?;
        let mut stored: Vec<palisade_core::threat::Threat> = threats
            .iter()
            .filter(|t| t.event_id.is_some_and(|id| id <= 1_500))
            .cloned()
            .collect();
        let (scenario_guard, _, mut scenario_rx) = replay_guard()?;
        let scenarios = behaviour()?;
        tokio::task::block_in_place(|| {
            scenarios.replay(
                pairs.iter().copied(),
                &HashSet::new(),
                &BanGate::Import,
                scenario_guard.threats(),
            )
        });
        while let Ok(t) = scenario_rx.try_recv() {
            if t.event_id.is_some_and(|id| id <= 2_000) {
                stored.push(t);
            }
        }
        store.insert_threats(&stored).await?;
        let stored_keys: Vec<_> = {
            let mut k: Vec<_> = stored
                .iter()
                .map(|t| (t.event_id, t.source.clone(), t.category.clone()))
                .collect();
            k.sort();
            k
        };

        let (guard, rebuilt, mut rx) = replay_guard()?;
        let done = replay(&store, &guard, &behaviour()?, "shop").await?;
        assert_eq!(done.events, 3_000);
        assert_eq!(done.past_mark, 2_000);
        let mut recorded = drain(&mut rx);
        assert_eq!(done.threats, recorded.len() as u64);
        // Together with what was stored: every threat once.
        recorded.extend(stored_keys);
        recorded.sort();
        assert_eq!(recorded, expected);
        assert_eq!(rebuilt.snapshot().learnt(), expected_learnt);
        Ok(())
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
