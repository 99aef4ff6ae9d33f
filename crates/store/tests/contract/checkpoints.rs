//! Source checkpoints: written in the same transaction as the batch they cover.

use palisade_core::Checkpoint;
use palisade_store::IngestBatch;

use crate::harness::{Db, contract, ev};

contract!(checkpoint_is_written_with_the_batch);

async fn checkpoint_is_written_with_the_batch(db: Db) {
    let s = &db.store;
    assert_eq!(s.checkpoint("a").await.unwrap(), None);
    assert!(s.checkpoints().await.unwrap().is_empty());
    let cp = |source: &str, offset: u64| Checkpoint {
        source: source.into(),
        file_id: "dev:1/ino:2".into(),
        offset,
        line_no: offset / 10,
        fingerprint: u64::MAX - offset,
    };
    s.write_batch(IngestBatch {
        events: vec![ev(1)],
        checkpoint: Some(cp("b", 100)),
        ..IngestBatch::default()
    })
    .await
    .unwrap();
    s.write_batch(IngestBatch {
        checkpoint: Some(cp("a", 5)),
        ..IngestBatch::default()
    })
    .await
    .unwrap();
    assert_eq!(s.checkpoint("b").await.unwrap(), Some(cp("b", 100)));
    s.write_batch(IngestBatch {
        events: vec![ev(2)],
        checkpoint: Some(Checkpoint {
            file_id: "rotated".into(),
            ..cp("b", 250)
        }),
        ..IngestBatch::default()
    })
    .await
    .unwrap();
    let b = s.checkpoint("b").await.unwrap().unwrap();
    assert_eq!(
        (b.offset, b.line_no, b.file_id.as_str()),
        (250, 25, "rotated")
    );
    assert_eq!(b.fingerprint, u64::MAX - 250);
    let all = s.checkpoints().await.unwrap();
    let names: Vec<&str> = all.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(s.count_events().await.unwrap(), 2);
}
