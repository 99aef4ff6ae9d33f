//! Stored traffic on the live feed: every event the writer stores is summarised and
//! published on the `traffic` topic in batches, about every two seconds (a page that
//! shows traffic wants a steady trickle, not one message per request).
//!
//! A batch carries how many events were stored in the period and the summaries of at
//! most [`MAX_PER_BATCH`] of them (the latest), so a burst of a million lines costs the
//! feed a few messages, not a million.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_core::supervisor::{SharedReceiver, Supervisor};
use palisade_core::{Event, EventKind, Timestamp};
use palisade_live::{Bus, Topic};
use palisade_sources::StoredBatches;
use serde::Serialize;
use tokio::sync::mpsc;

/// How often a batch goes out.
pub const BATCH_EVERY: Duration = Duration::from_secs(2);
/// Most event summaries in one batch.
pub const MAX_PER_BATCH: usize = 200;
/// Groups of stored batches that may wait.
const QUEUE: usize = 8;

/// One stored event, as the traffic topic shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficItem {
    /// The event's id (`/api/v1/events/{id}`).
    pub id: i64,
    /// When it happened.
    pub ts: Timestamp,
    /// `http`, `auth`, `syslog`, …
    pub kind: EventKind,
    /// The source that read it.
    pub source: String,
    /// The client.
    pub client_ip: Option<IpAddr>,
    /// Method, for HTTP.
    pub method: Option<String>,
    /// Path, for HTTP (capped).
    pub path: Option<String>,
    /// Status, for HTTP.
    pub status: Option<u16>,
    /// The user, for authentication events.
    pub user: Option<String>,
}

impl TrafficItem {
    fn of(id: i64, e: &Event) -> TrafficItem {
        TrafficItem {
            id,
            ts: e.ts,
            kind: e.kind,
            source: e.source.clone(),
            client_ip: e.client_ip,
            method: e.method.clone(),
            path: e.path.as_ref().map(|p| p.chars().take(256).collect()),
            status: e.status,
            user: e.user.clone(),
        }
    }
}

/// One message of the `traffic` topic.
#[derive(Debug, Serialize)]
pub struct TrafficBatch {
    /// Events stored since the last batch.
    pub stored: u64,
    /// The latest of them (at most [`MAX_PER_BATCH`]), oldest first.
    pub items: Vec<TrafficItem>,
}

/// Counts a group of stored batches and keeps the summaries of the latest
/// [`MAX_PER_BATCH`] events (`items` holds the earlier groups' latest, oldest first).
/// Only the events that can still be in the next message are summarised: at the
/// proxy's rates a group holds one or more 500-event batches, and a summary (three
/// strings copied) is about 1.7k instructions an event, for an item that would be
/// dropped (docs/BENCHMARKS.md, proxy11).
fn keep_latest(batches: &StoredBatches, stored: &mut u64, items: &mut VecDeque<TrafficItem>) {
    let count = batches.events().count();
    *stored += count as u64;
    for (id, e) in batches.events().skip(count.saturating_sub(MAX_PER_BATCH)) {
        if items.len() == MAX_PER_BATCH {
            items.pop_front();
        }
        items.push_back(TrafficItem::of(id, e));
    }
}

/// Starts the stage; it ends when the writer (the only sender) goes away.
pub fn spawn(
    bus: Arc<Bus>,
    supervisor: &Supervisor,
) -> (mpsc::Sender<StoredBatches>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<StoredBatches>(QUEUE);
    let rx = SharedReceiver::new(rx);
    let task = supervisor.spawn("live-traffic", move || publish(bus.clone(), rx.clone()));
    (tx, task)
}

async fn publish(bus: Arc<Bus>, rx: SharedReceiver<StoredBatches>) {
    let mut rx = rx.lock().await;
    let mut stored = 0u64;
    let mut items: VecDeque<TrafficItem> = VecDeque::with_capacity(MAX_PER_BATCH);
    let mut tick = tokio::time::interval(BATCH_EVERY);
    let mut last = Instant::now();
    let send = |stored: &mut u64, items: &mut VecDeque<TrafficItem>| {
        bus.publish(
            Topic::Traffic,
            &TrafficBatch {
                stored: *stored,
                items: items.drain(..).collect(),
            },
        );
        *stored = 0;
    };
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(batches) => keep_latest(&batches, &mut stored, &mut items),
                None => break,
            },
            _ = tick.tick() => {}
        }
        if stored > 0 && last.elapsed() >= BATCH_EVERY {
            send(&mut stored, &mut items);
            last = Instant::now();
        }
    }
    if stored > 0 {
        send(&mut stored, &mut items);
    }
}

#[cfg(test)]
mod tests {
    use palisade_store::{IngestBatch, WriteOutcome};

    use super::*;

    /// A group of batches of these sizes (ids from 1,000 apart), one more not stored.
    fn group(sizes: &[usize]) -> StoredBatches {
        let batch = |n: usize| IngestBatch {
            events: (0..n)
                .map(|i| Event {
                    kind: EventKind::Http,
                    source: "shop".into(),
                    method: Some("GET".into()),
                    path: Some(format!("/item/{i}")),
                    ..Event::default()
                })
                .collect(),
            ..IngestBatch::default()
        };
        let mut batches: Vec<IngestBatch> = sizes.iter().map(|&n| batch(n)).collect();
        let mut outcomes: Vec<Option<WriteOutcome>> = (0..sizes.len())
            .map(|k| {
                Some(WriteOutcome {
                    events: sizes[k] as u64,
                    dead_letters: 0,
                    duplicate: false,
                    first_event_id: (sizes[k] > 0).then_some(1_000 * k as i64),
                })
            })
            .collect();
        batches.push(batch(50));
        outcomes.push(None);
        StoredBatches {
            batches: batches.into(),
            outcomes: outcomes.into(),
        }
    }

    /// What the stage kept before it skipped the events no message can show: every
    /// event summarised, the oldest dropped past the cap.
    fn keep_every(batches: &StoredBatches, stored: &mut u64, items: &mut VecDeque<TrafficItem>) {
        for (id, e) in batches.events() {
            *stored += 1;
            if items.len() == MAX_PER_BATCH {
                items.pop_front();
            }
            items.push_back(TrafficItem::of(id, e));
        }
    }

    fn ids(items: &VecDeque<TrafficItem>) -> Vec<(i64, Option<String>)> {
        items.iter().map(|t| (t.id, t.path.clone())).collect()
    }

    #[test]
    fn the_latest_are_kept_as_when_every_event_was_summarised() {
        let groups: [&[usize]; 7] = [
            &[],
            &[0],
            &[3],
            &[150, 60],
            &[199, 1],
            &[200, 201, 0, 5],
            &[900],
        ];
        // Each group alone, and every group after another (items left from the first).
        for first in groups {
            for second in groups {
                let (mut a, mut b) = ((0u64, VecDeque::new()), (0u64, VecDeque::new()));
                for g in [group(first), group(second)] {
                    keep_latest(&g, &mut a.0, &mut a.1);
                    keep_every(&g, &mut b.0, &mut b.1);
                    assert_eq!(a.0, b.0, "{first:?} {second:?}");
                    assert_eq!(ids(&a.1), ids(&b.1), "{first:?} {second:?}");
                }
            }
        }
    }
}
