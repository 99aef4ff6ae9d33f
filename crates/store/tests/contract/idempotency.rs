//! Idempotency keys: a batch pushed twice (or by racing writers) is stored once.

use palisade_core::{Checkpoint, DeadLetter};
use palisade_store::{DeadLetterQuery, IngestBatch};

use crate::harness::{Db, contract, ev};

contract!(idempotency_key_duplicates_store_nothing);

async fn idempotency_key_duplicates_store_nothing(db: Db) {
    let s = &db.store;
    let batch = |n: i64, d: usize, offset: u64| IngestBatch {
        events: (0..n).map(ev).collect(),
        dead_letters: (0..d)
            .map(|i| DeadLetter::new("push", None, None, b"junk", format!("bad {i}")))
            .collect(),
        checkpoint: Some(Checkpoint {
            source: "push".into(),
            file_id: "f".into(),
            offset,
            line_no: 1,
            fingerprint: 1,
        }),
        idempotency_key: Some("key-1".into()),
    };
    let first = s.write_batch(batch(3, 2, 10)).await.unwrap();
    assert_eq!(
        (first.events, first.dead_letters, first.duplicate),
        (3, 2, false)
    );
    let again = s.write_batch(batch(7, 0, 99)).await.unwrap();
    assert_eq!(
        (again.events, again.dead_letters, again.duplicate),
        (3, 2, true)
    );
    assert_eq!(s.count_events().await.unwrap(), 3);
    let dls = s
        .query_dead_letters(&DeadLetterQuery {
            limit: 10,
            ..DeadLetterQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(dls.items.len(), 2);
    assert_eq!(s.checkpoint("push").await.unwrap().unwrap().offset, 10);
    // Another key, and no key, both write.
    let other = s
        .write_batch(IngestBatch {
            idempotency_key: Some("key-2".into()),
            ..batch(1, 0, 20)
        })
        .await
        .unwrap();
    assert!(!other.duplicate);
    let none = s
        .write_batch(IngestBatch {
            idempotency_key: None,
            ..batch(1, 0, 30)
        })
        .await
        .unwrap();
    assert!(!none.duplicate);
    assert_eq!(s.count_events().await.unwrap(), 5);
    // Concurrent writers with one key: exactly one stores.
    let outs = futures_util::future::join_all((0..4).map(|_| {
        s.write_batch(IngestBatch {
            idempotency_key: Some("key-3".into()),
            ..batch(2, 0, 40)
        })
    }))
    .await;
    let stored = outs
        .iter()
        .filter(|o| !o.as_ref().unwrap().duplicate)
        .count();
    assert_eq!(stored, 1);
    assert!(outs.iter().all(|o| o.as_ref().unwrap().events == 2));
    assert_eq!(s.count_events().await.unwrap(), 7);
}
