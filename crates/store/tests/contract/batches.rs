//! Batch writes: several batches in one transaction report the ids of their events,
//! and a batch that fails leaves nothing behind.

use palisade_core::{Checkpoint, DeadLetter, Event};
use palisade_store::{DeadLetterQuery, IngestBatch, StoreError};

use crate::harness::{Db, T0, contract, ev, write};

contract!(
    batches_report_the_ids_of_their_events,
    failed_batch_leaves_nothing,
    source_totals_count_what_is_stored_once,
);

async fn source_totals_count_what_is_stored_once(db: Db) {
    let s = &db.store;
    let of = |source: &str, n: i64, dead: usize| IngestBatch {
        events: (0..n)
            .map(|i| Event {
                source: source.into(),
                ..ev(i)
            })
            .collect(),
        dead_letters: (0..dead)
            .map(|_| DeadLetter::new(source, None, None, b"x", "bad"))
            .collect(),
        ..IngestBatch::default()
    };
    s.write_batch(of("web", 3, 1)).await.unwrap();
    let group: std::sync::Arc<[IngestBatch]> = vec![of("web", 2, 0), of("auth", 0, 2)].into();
    s.write_batches(group).await.unwrap();
    // A retried push with the same key stores nothing and counts nothing.
    let keyed = IngestBatch {
        idempotency_key: Some("k1".into()),
        ..of("push", 4, 0)
    };
    s.write_batch(keyed.clone()).await.unwrap();
    s.write_batch(keyed).await.unwrap();
    let totals = s.source_totals().await.unwrap();
    let get = |name: &str| {
        totals
            .iter()
            .find(|t| t.source == name)
            .map(|t| (t.events, t.dead_letters))
    };
    assert_eq!(get("web"), Some((5, 1)), "{totals:?}");
    assert_eq!(get("auth"), Some((0, 2)), "{totals:?}");
    assert_eq!(get("push"), Some((4, 0)), "{totals:?}");
}

async fn batches_report_the_ids_of_their_events(db: Db) {
    let s = &db.store;
    write(s, vec![ev(1)]).await;
    let batch = |from: i64| IngestBatch {
        events: (from..from + 5).map(ev).collect(),
        ..IngestBatch::default()
    };
    let empty = IngestBatch {
        dead_letters: vec![palisade_core::DeadLetter::new(
            "web", None, None, b"x", "bad",
        )],
        ..IngestBatch::default()
    };
    let group: std::sync::Arc<[IngestBatch]> = vec![batch(100), empty, batch(200)].into();
    let outcomes = s.write_batches(group).await.unwrap();
    assert_eq!(outcomes[1].first_event_id, None);
    for (outcome, from) in [(outcomes[0], 100), (outcomes[2], 200)] {
        let first = outcome
            .first_event_id
            .expect("an id for a batch with events");
        for i in 0..5 {
            let e = s.get_event(first + i).await.unwrap().unwrap();
            assert_eq!(e.event.ts.as_micros() - T0, from + i);
        }
    }
}

async fn failed_batch_leaves_nothing(db: Db) {
    let s = &db.store;
    db.install_failure_trigger().await;
    let cp = Checkpoint {
        source: "web".into(),
        file_id: "f".into(),
        offset: 10,
        line_no: 1,
        fingerprint: 7,
    };
    let mut events: Vec<Event> = (0..50).map(ev).collect();
    events.push(Event {
        message: Some("boom".into()),
        ..ev(50)
    });
    let err = s
        .write_batch(IngestBatch {
            events: events.clone(),
            dead_letters: vec![DeadLetter::new("web", Some(1), Some(0), b"x", "bad")],
            checkpoint: Some(cp.clone()),
            idempotency_key: Some("k".into()),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(s.count_events().await.unwrap(), 0);
    assert_eq!(s.checkpoint("web").await.unwrap(), None);
    let dls = s
        .query_dead_letters(&DeadLetterQuery {
            limit: 10,
            ..DeadLetterQuery::default()
        })
        .await
        .unwrap();
    assert!(dls.items.is_empty());
    // The key was not consumed and the store still works.
    events.pop();
    let out = s
        .write_batch(IngestBatch {
            events,
            dead_letters: vec![],
            checkpoint: Some(cp.clone()),
            idempotency_key: Some("k".into()),
        })
        .await
        .unwrap();
    assert_eq!((out.events, out.duplicate), (50, false));
    assert_eq!(s.count_events().await.unwrap(), 50);
    assert_eq!(s.checkpoint("web").await.unwrap(), Some(cp));
}
