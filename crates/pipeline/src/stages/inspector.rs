//! The detection stage for stored events: every HTTP event that comes in through a
//! file tail, an import or a push is inspected by the same engine as `/api/v1/check`
//! and the proxy, and each finding becomes a threat pointing at its event.
//!
//! It runs after the store (so it knows the event ids) on its own blocking thread (the
//! engine is CPU work), fed by the writer's bounded observer channel: when it falls
//! behind, ingest slows down rather than events going uninspected.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use palisade_core::metrics::{Counter, registry};
use palisade_core::{Event, EventKind};
use palisade_detect::HttpRequest;
use palisade_sources::StoredBatches;
use tokio::sync::mpsc;

use palisade_core::supervisor::{SharedReceiver, Supervisor};

use palisade_core::threat::Threat;

use super::in_order::InOrder;
use super::slices::{self, Judged, PartsPool};
use crate::guard::{Front, Guard, Policy};

/// Groups of batches that may wait for inspection. Each group can hold thousands of
/// events (an import's batch), and this stage is the slowest after the store: one
/// waiting group keeps it busy while the writer stores the next, more would only let
/// the writer run further ahead and hold more in memory.
const QUEUE: usize = 1;

/// `palisade_ingest_inspected_events_total`: stored HTTP events inspected.
fn events_inspected() -> Arc<Counter> {
    registry().counter(
        "palisade_ingest_inspected_events_total",
        "Stored HTTP events inspected by the signature engine.",
        &[],
        &[],
    )
}

/// `palisade_ingest_threats_total`: threats the stage found in stored HTTP events (the
/// ingest command's summary reads it too).
pub fn threats_found() -> Arc<Counter> {
    registry().counter(
        "palisade_ingest_threats_total",
        "Threats found in stored HTTP events.",
        &[],
        &[],
    )
}

/// Rebuilds, from a log event, the part of the request a log keeps
/// ([`HttpRequest::from_log_event`]). `None` for events that are not requests.
pub fn request_of(event: &Event) -> Option<HttpRequest> {
    HttpRequest::from_log_event(event)
}

/// Whether a live front (the protecting proxy) judged the request as it happened: its
/// verdict, and any threat, were recorded then, so inspecting it again would only
/// record the same finding twice.
pub(crate) fn judged_live(event: &Event) -> bool {
    event.verdict.is_some()
}

/// Events in a group from which inspection is spread over threads (a push of a few
/// lines is not worth a hand-over).
const PARALLEL_FROM: usize = 2048;

/// Judges stored events with one policy; returns the threats they raise, in event
/// order.
pub(crate) fn inspect_all(policy: &Policy<'_>, events: &[(i64, &Event)]) -> Vec<Threat> {
    let mut threats = Vec::new();
    let mut request = HttpRequest::default();
    for (id, event) in events {
        if judged_live(event) || !request.refill_from_log_event(event) {
            continue;
        }
        let front = Front::Log {
            source: &event.source,
            event_id: *id,
            ts: event.ts,
        };
        if let (_, Some(threat)) = policy.assess_with_status(&request, front, event.status) {
            threats.push(threat);
        }
    }
    threats
}

/// The highest stored event id of each source in a group: how far inspection has gone
/// once the group's threats are stored. A group nearly always has one source.
fn marks_of(stored: &StoredBatches) -> Vec<(String, i64)> {
    let mut marks: Vec<(String, i64)> = Vec::with_capacity(1);
    for (id, event) in stored.events() {
        match marks.iter_mut().find(|(s, _)| *s == event.source) {
            Some((_, held)) => *held = (*held).max(id),
            None => marks.push((event.source.clone(), id)),
        }
    }
    marks
}

/// Starts the stage; it ends when the writer (the only sender once the start-up
/// re-inspection of `resume.rs` is done) goes away.
pub fn spawn(
    guard: Guard,
    supervisor: &Supervisor,
) -> (mpsc::Sender<StoredBatches>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<StoredBatches>(QUEUE);
    let rx = SharedReceiver::new(rx);
    let task = supervisor.spawn_blocking("inspector", move || {
        let (guard, rx) = (guard.clone(), rx.clone());
        move || inspect_stored(&guard, &rx)
    });
    (tx, task)
}

/// Stored events in one slice of a group: the unit the inspection threads take in turn.
/// Small enough that a thread finishing first waits at most one slice for the others;
/// large enough that taking one costs nothing next to inspecting it.
const SLICE: usize = 512;

/// One stored group under inspection, shared by this stage's threads: each takes the
/// next slice not yet taken until none is left, so no thread waits while another still
/// has several slices to do (halves cut in advance left one core idle whenever the
/// other half ran slower, and with it the whole import, which waits for the stage).
///
/// A slice is judged in two steps ([`super::slices`]): what reads no learnt state on the
/// thread that took it, then the baselines' part in slice order, by whichever thread
/// hands in the next slice in order ([`InOrder`]). So the baselines learn a group's
/// events in event order, as on one thread and as the replay of a resumed import does.
struct Work {
    stored: StoredBatches,
    /// Slices in the group.
    slices: usize,
    /// The next slice to take.
    next: AtomicUsize,
    /// Judged slices waiting for the baselines, settled in slice order.
    settling: InOrder<Judged>,
    /// Buffers for the argument parts the judged slices keep.
    pool: Arc<PartsPool>,
    /// Each slice's threats, in event order, once settled.
    found: Mutex<Vec<Option<Vec<Threat>>>>,
    /// Slices not yet settled, and the signal when none is left.
    left: Mutex<usize>,
    all_done: Condvar,
}

impl Work {
    fn new(stored: StoredBatches, events: usize, pool: Arc<PartsPool>) -> Work {
        let slices = if events < PARALLEL_FROM {
            1
        } else {
            events.div_ceil(SLICE)
        };
        Work {
            stored,
            slices,
            next: AtomicUsize::new(0),
            settling: InOrder::new(slices),
            pool,
            found: Mutex::new((0..slices).map(|_| None).collect()),
            left: Mutex::new(slices),
            all_done: Condvar::new(),
        }
    }

    /// Inspects slices until none is left to take (and settles those whose turn it is).
    fn run(&self, guard: &Guard) {
        if self.next.load(Ordering::Relaxed) >= self.slices {
            return;
        }
        let events: Vec<(i64, &Event)> = self.stored.events().collect();
        let size = if self.slices == 1 {
            events.len()
        } else {
            SLICE
        };
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.slices {
                return;
            }
            let from = (i * size).min(events.len());
            let to = (from + size).min(events.len());
            let judged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                slices::judge(&guard.policy(), &events, from..to, &self.pool)
            }))
            .unwrap_or_else(|_| {
                tracing::error!(
                    message = "Inspecting a slice of stored events failed; it has no threats.",
                    events = to - from
                );
                Judged::failed()
            });
            self.settling.complete(i, judged, |n, judged| {
                let threats = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    slices::settle(&guard.policy(), &events, judged, &self.pool)
                }))
                .unwrap_or_else(|_| {
                    tracing::error!(
                        message = "Settling a slice of stored events failed; it has no threats."
                    );
                    Vec::new()
                });
                self.settled(n, threats);
            });
        }
    }

    /// Records slice `i`'s threats, and signals once every slice is settled.
    fn settled(&self, i: usize, threats: Vec<Threat>) {
        if let Some(slot) = lock(&self.found).get_mut(i) {
            *slot = Some(threats);
        }
        let mut left = lock(&self.left);
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.all_done.notify_all();
        }
    }

    /// Waits until every slice is settled; their threats, in event order.
    fn threats(&self) -> Vec<Threat> {
        let mut left = lock(&self.left);
        while *left > 0 {
            left = self
                .all_done
                .wait(left)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(left);
        lock(&self.found)
            .iter_mut()
            .filter_map(Option::take)
            .flatten()
            .collect()
    }
}

/// A lock that a panic elsewhere did not make unusable (the data is per slice, so a
/// slice that panicked leaves the others' intact).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The stage's loop: one run of the supervised task.
///
/// Large groups are shared with one long-lived helper per other core, each taking
/// slices in turn ([`Work`]). The helpers live as long as the loop, so the engine's
/// per-thread memo of repeated parts (user agents, referers, common paths) stays warm
/// from group to group; threads spawned for each group started it empty every time, and
/// paid for their start and their memory each time.
fn inspect_stored(guard: &Guard, rx: &SharedReceiver<StoredBatches>) {
    let mut rx = rx.blocking_lock();
    let inspected = events_inspected();
    let found = threats_found();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = Arc::new(PartsPool::default());
    std::thread::scope(|scope| {
        let lanes: Vec<_> = (1..workers)
            .map(|_| {
                let (work_tx, work_rx) = std::sync::mpsc::channel::<Arc<Work>>();
                scope.spawn(move || {
                    while let Ok(work) = work_rx.recv() {
                        work.run(guard);
                    }
                });
                work_tx
            })
            .collect();
        while let Some(stored) = rx.blocking_recv() {
            let (events, http) = stored.events().fold((0usize, 0u64), |(n, h), (_, e)| {
                (
                    n + 1,
                    h + u64::from(e.kind == EventKind::Http && !judged_live(e)),
                )
            });
            let work = Arc::new(Work::new(stored, events, pool.clone()));
            // A helper that is gone (it panicked) leaves its slices to the others.
            if work.slices > 1 {
                for lane in &lanes {
                    let _ = lane.send(work.clone());
                }
            }
            work.run(guard);
            let found_here = work.threats();
            inspected.add(http);
            found.add(found_here.len() as u64);
            for threat in found_here {
                guard.threats().record_blocking(threat);
            }
            // After the group's threats: stored once they are (issue 16).
            guard.threats().inspected_blocking(marks_of(&work.stored));
        }
        // Dropping the lanes ends the helpers; the scope waits for them.
        drop(lanes);
        tracing::debug!(message = "Ingest inspection stopped.");
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::{Detection, Mode};

    #[test]
    fn log_events_become_requests_with_their_headers() {
        let e = Event {
            kind: EventKind::Http,
            method: Some("GET".into()),
            path: Some("/a".into()),
            query: Some("id=1%27%20or%201=1--".into()),
            user_agent: Some("sqlmap/1.7".into()),
            host: Some("shop".into()),
            ..Event::default()
        };
        let r = request_of(&e).unwrap();
        assert_eq!(r.uri, "/a?id=1%27%20or%201=1--");
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "user-agent" && v == "sqlmap/1.7")
        );
        let d = Detection::builtin(Default::default(), Mode::Block).unwrap();
        assert!(d.engine().inspect(&r).blocked);
        let no_host = Event {
            host: None,
            query: Some("page=2".into()),
            user_agent: Some("Mozilla/5.0".into()),
            ..e.clone()
        };
        let v = d.engine().inspect(&request_of(&no_host).unwrap());
        assert!(v.findings.is_empty(), "{v:?}");
        let auth = Event {
            kind: EventKind::Auth,
            ..e
        };
        assert!(request_of(&auth).is_none());
    }

    #[test]
    fn events_a_live_front_judged_are_not_inspected_again() {
        let attack = Event {
            kind: EventKind::Http,
            source: "shop".into(),
            method: Some("GET".into()),
            path: Some("/a".into()),
            query: Some("id=1%27%20or%201=1--".into()),
            ..Event::default()
        };
        let judged = Event {
            verdict: Some(palisade_core::verdict::Action::Block),
            ..attack.clone()
        };
        let detection =
            std::sync::Arc::new(Detection::builtin(Default::default(), Mode::Block).unwrap());
        let (recorder, _rx) = crate::recorder::ThreatRecorder::channel(4);
        let guard = Guard::new(detection, None, recorder);
        let threats = inspect_all(&guard.policy(), &[(1, &judged), (2, &attack)]);
        assert_eq!(threats.len(), 1, "{threats:?}");
        assert_eq!(threats[0].event_id, Some(2));
    }

    #[test]
    fn a_group_shared_by_threads_gives_each_threat_once_in_event_order() {
        use palisade_store::{IngestBatch, WriteOutcome};
        let attack = |i: usize| Event {
            kind: EventKind::Http,
            source: "shop".into(),
            method: Some("GET".into()),
            path: Some(format!("/item/{i}")),
            query: Some("id=1%27%20or%201=1--".into()),
            ..Event::default()
        };
        let benign = |i: usize| Event {
            query: Some(format!("page={i}")),
            ..attack(i)
        };
        // Two batches (ids from 100 and from 5,000), enough events for many slices;
        // one batch not stored (no outcome) must not be inspected.
        let batch = |n: usize| IngestBatch {
            events: (0..n)
                .map(|i| if i % 7 == 3 { attack(i) } else { benign(i) })
                .collect(),
            ..IngestBatch::default()
        };
        let (a, b, lost) = (batch(2_000), batch(1_700), batch(300));
        let mut expected: Vec<i64> = (0..2_000).filter(|i| i % 7 == 3).map(|i| 100 + i).collect();
        expected.extend((0..1_700).filter(|i| i % 7 == 3).map(|i| 5_000 + i));
        let outcome = |first: i64, n: usize| {
            Some(WriteOutcome {
                events: n as u64,
                dead_letters: 0,
                duplicate: false,
                first_event_id: Some(first),
            })
        };
        let stored = StoredBatches {
            batches: vec![a, lost, b].into(),
            outcomes: vec![outcome(100, 2_000), None, outcome(5_000, 1_700)].into(),
        };
        let detection =
            std::sync::Arc::new(Detection::builtin(Default::default(), Mode::Block).unwrap());
        let (recorder, _rx) = crate::recorder::ThreatRecorder::channel(4);
        let guard = Guard::new(detection, None, recorder);
        let work = Arc::new(Work::new(stored, 3_700, Arc::default()));
        assert!(work.slices > 2, "{}", work.slices);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                let (work, guard) = (work.clone(), &guard);
                scope.spawn(move || work.run(guard));
            }
            work.run(&guard);
            let ids: Vec<i64> = work.threats().iter().filter_map(|t| t.event_id).collect();
            assert_eq!(ids, expected);
        });
    }

    /// Events of one source where the order of learning decides: in each pair of
    /// slices, twenty endpoints learn past their warm-up (10 here) in the first slice,
    /// and the second opens with a value each never had (reported only when the
    /// warm-up was learnt before it). Every endpoint is seen once at the start.
    fn order_sensitive(n: usize) -> Vec<Event> {
        const ENDPOINTS: usize = 20;
        let pairs = n.div_ceil(2 * SLICE);
        (0..n)
            .map(|i| {
                let (pair, at) = (i / (2 * SLICE), i % (2 * SLICE));
                let unseen = at
                    .checked_sub(SLICE + 4)
                    .filter(|d| d % 10 == 0 && d / 10 < ENDPOINTS);
                let (path, query) = if i < pairs * ENDPOINTS {
                    (
                        format!("/p{}/e{}", i / ENDPOINTS, i % ENDPOINTS),
                        format!("id={}", 1000 + i),
                    )
                } else if at < ENDPOINTS * 20 {
                    (
                        format!("/p{pair}/e{}", at % ENDPOINTS),
                        format!("id={}", 1000 + (i * 7) % 9000),
                    )
                } else if let Some(d) = unseen {
                    (
                        format!("/p{pair}/e{}", d / 10),
                        format!("id={}", "zq".repeat(10 + (d / 10) % 9)),
                    )
                } else {
                    (format!("/list{}", i % 4), format!("page={}", i % 97))
                };
                Event {
                    kind: EventKind::Http,
                    source: "shop".into(),
                    method: Some("GET".into()),
                    path: Some(path),
                    query: Some(query),
                    status: Some(200),
                    ..Event::default()
                }
            })
            .collect()
    }

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    fn baseline_guard() -> TestResult<(Guard, Arc<palisade_models::Baselines>)> {
        let detection = Arc::new(Detection::builtin(Default::default(), Mode::Block)?);
        let (recorder, _rx) = crate::recorder::ThreatRecorder::channel(4);
        let baselines = Arc::new(palisade_models::Baselines::new(
            palisade_models::BaselinesConfig {
                warmup: 10,
                ..Default::default()
            },
        ));
        Ok((
            Guard::new(detection, None, recorder).with_baselines(baselines.clone()),
            baselines,
        ))
    }

    #[test]
    fn threads_sharing_a_group_learn_and_judge_it_as_one_thread_in_event_order() -> TestResult {
        use palisade_store::{IngestBatch, WriteOutcome};
        const EVENTS: usize = 8 * SLICE;
        let events = order_sensitive(EVENTS);
        let pairs: Vec<(i64, &Event)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (1 + i as i64, e))
            .collect();
        // One thread, event after event: what the replay of a resumed import does.
        let (guard, baselines) = baseline_guard()?;
        let expected = inspect_all(&guard.policy(), &pairs);
        let expected_profiles = baselines.snapshot().learnt();
        let anomalies = expected.iter().filter(|t| t.category == "anomaly").count();
        if anomalies < 40 {
            return Err(format!("the log does not test the order: {anomalies} anomalies").into());
        }
        for round in 0..4 {
            let stored = StoredBatches {
                batches: vec![IngestBatch {
                    events: events.clone(),
                    ..IngestBatch::default()
                }]
                .into(),
                outcomes: vec![Some(WriteOutcome {
                    events: EVENTS as u64,
                    dead_letters: 0,
                    duplicate: false,
                    first_event_id: Some(1),
                })]
                .into(),
            };
            let (guard, baselines) = baseline_guard()?;
            let work = Arc::new(Work::new(stored, EVENTS, Arc::default()));
            let threats = std::thread::scope(|scope| {
                // Three threads, started together, so that slices overlap.
                for _ in 0..2 {
                    let (work, guard) = (work.clone(), &guard);
                    scope.spawn(move || work.run(guard));
                }
                work.run(&guard);
                work.threats()
            });
            if threats != expected {
                let count = threats.iter().filter(|t| t.category == "anomaly").count();
                return Err(format!(
                    "round {round}: {count} anomalies, {anomalies} in event order"
                )
                .into());
            }
            if baselines.snapshot().learnt() != expected_profiles {
                return Err(format!("round {round}: the baselines learnt otherwise").into());
            }
        }
        Ok(())
    }
}
