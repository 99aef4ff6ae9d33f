//! The detection stage for stored events: every HTTP event that comes in through a
//! file tail, an import or a push is inspected by the same engine as `/api/v1/check`
//! and the proxy, and each finding becomes a threat pointing at its event.
//!
//! It runs after the store (so it knows the event ids) on its own blocking thread (the
//! engine is CPU work), fed by the writer's bounded observer channel: when it falls
//! behind, ingest slows down rather than events going uninspected.

use std::sync::Arc;

use palisade_core::metrics::{Counter, registry};
use palisade_core::{Event, EventKind};
use palisade_detect::HttpRequest;
use palisade_sources::StoredBatches;
use tokio::sync::mpsc;

use palisade_core::supervisor::{SharedReceiver, Supervisor};

use palisade_core::threat::Threat;

use crate::guard::{Front, Guard, Policy};

/// Groups of batches that may wait for inspection. Each group can hold tens of
/// thousands of events (an import's group commit), so two bound an import's memory;
/// more would only let the writer run further ahead.
const QUEUE: usize = 2;

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

/// Rebuilds, from a log event, the part of the request a log keeps: method, target,
/// protocol and the headers logs usually carry. `None` for events that are not
/// requests.
pub fn request_of(event: &Event) -> Option<HttpRequest> {
    if event.kind != EventKind::Http {
        return None;
    }
    let uri = event.uri()?;
    let mut headers = Vec::with_capacity(3);
    // Most log formats do not record the Host header: its absence from a log line says
    // nothing about the request, so it must not read as a protocol anomaly.
    headers.push((
        "host".to_owned(),
        event
            .host
            .clone()
            .unwrap_or_else(|| "unrecorded".to_owned()),
    ));
    if let Some(ua) = &event.user_agent {
        headers.push(("user-agent".to_owned(), ua.clone()));
    }
    if let Some(referer) = &event.referer {
        headers.push(("referer".to_owned(), referer.clone()));
    }
    Some(HttpRequest {
        method: event.method.clone().unwrap_or_else(|| "GET".to_owned()),
        uri,
        protocol: event
            .protocol
            .clone()
            .unwrap_or_else(|| "HTTP/1.1".to_owned()),
        headers,
        body: Vec::new(),
        client_ip: event.client_ip,
    })
}

/// Whether a live front (the protecting proxy) judged the request as it happened: its
/// verdict, and any threat, were recorded then, so inspecting it again would only
/// record the same finding twice.
fn judged_live(event: &Event) -> bool {
    event.verdict.is_some()
}

/// Events in a group from which inspection is spread over threads.
const PARALLEL_FROM: usize = 2048;

/// Judges stored events with one policy; returns the threats they raise, in event
/// order.
fn inspect_all(policy: &Policy<'_>, events: &[(i64, &Event)]) -> Vec<Threat> {
    let mut threats = Vec::new();
    for (id, event) in events {
        if judged_live(event) {
            continue;
        }
        let Some(request) = request_of(event) else {
            continue;
        };
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

/// Starts the stage; it ends when the writer (the only sender) goes away.
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

/// A part of a group handed to a helper thread: the group and the range of its stored
/// events to inspect.
type Share = (StoredBatches, usize, usize);

/// Where the threats of one share of a group will come from.
enum Pending<'a> {
    /// A helper thread is inspecting it.
    Helper(&'a std::sync::mpsc::Receiver<Vec<Threat>>),
    /// This thread inspects it (its helper is gone): skip, take.
    Here(usize, usize),
}

/// The stage's loop: one run of the supervised task.
///
/// Large groups are split over the cores: this thread inspects the first share and one
/// long-lived helper per other core the rest. The helpers live as long as the loop, so
/// the engine's per-thread memo of repeated parts (user agents, referers, common paths)
/// stays warm from group to group; threads spawned for each group started it empty
/// every time, and paid for their start and their memory each time.
fn inspect_stored(guard: &Guard, rx: &SharedReceiver<StoredBatches>) {
    let mut rx = rx.blocking_lock();
    let inspected = events_inspected();
    let found = threats_found();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let lanes: Vec<_> = (1..workers)
            .map(|_| {
                let (share_tx, share_rx) = std::sync::mpsc::channel::<Share>();
                let (out_tx, out_rx) = std::sync::mpsc::channel::<Vec<Threat>>();
                scope.spawn(move || {
                    while let Ok((stored, skip, take)) = share_rx.recv() {
                        let events: Vec<(i64, &Event)> =
                            stored.events().skip(skip).take(take).collect();
                        if out_tx.send(inspect_all(&guard.policy(), &events)).is_err() {
                            break;
                        }
                    }
                });
                (share_tx, out_rx)
            })
            .collect();
        while let Some(stored) = rx.blocking_recv() {
            let events: Vec<(i64, &Event)> = stored.events().collect();
            // A push of a few lines is not worth a hand-over.
            let threads = if events.len() < PARALLEL_FROM {
                1
            } else {
                lanes.len() + 1
            };
            let chunk = events.len().div_ceil(threads).max(1);
            let policy = guard.policy();
            // Shares 1.. go to the helpers; a helper that is gone (it panicked) leaves
            // its share to this thread.
            let mut pending = Vec::new();
            for (k, (share_tx, out_rx)) in lanes.iter().enumerate().take(threads - 1) {
                let skip = (k + 1) * chunk;
                if skip >= events.len() {
                    break;
                }
                let take = chunk.min(events.len() - skip);
                pending.push(if share_tx.send((stored.clone(), skip, take)).is_ok() {
                    Pending::Helper(out_rx)
                } else {
                    Pending::Here(skip, take)
                });
            }
            let mut found_here = inspect_all(&policy, &events[..chunk.min(events.len())]);
            // Shares were cut in event order and are collected in it: threats keep it.
            for share in pending {
                match share {
                    Pending::Helper(out_rx) => found_here.extend(out_rx.recv().unwrap_or_else(|_| {
                        tracing::error!(message = "An inspection thread stopped; its part of the batch has no threats.");
                        Vec::new()
                    })),
                    Pending::Here(skip, take) => {
                        found_here.extend(inspect_all(&policy, &events[skip..skip + take]));
                    }
                }
            }
            inspected.add(
                events
                    .iter()
                    .filter(|(_, e)| e.kind == EventKind::Http && !judged_live(e))
                    .count() as u64,
            );
            found.add(found_here.len() as u64);
            for threat in found_here {
                guard.threats().record_blocking(threat);
            }
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
}
