//! Resuming inspection after a crash (issue 16): a source resumes after its stored
//! events, but the inspector works behind the store, so the events stored and not yet
//! inspected when the process died would never be inspected. At start-up, before the
//! source's new events, its stored events past its inspection mark
//! ([`palisade_store::InspectionStore`]) go to the inspector again, in bounded groups;
//! those that already have their signature threat (stored before the mark moved; a
//! scenario's threat, source `scenario`, says nothing of inspection) are left out, so
//! that no threat is stored twice.

use std::collections::HashSet;

use palisade_core::Event;
use palisade_sources::StoredBatches;
use palisade_store::{IngestBatch, SharedStore, StoreError, WriteOutcome};
use tokio::sync::mpsc;

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
    use super::*;

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
}
