//! Dead letters: lines that could not be parsed, listed newest first and filtered.

use palisade_core::{DeadLetter, Timestamp};
use palisade_store::{Cursor, DeadLetterQuery, IngestBatch};

use crate::harness::{Db, T0, contract};

contract!(dead_letters_are_listed_and_filtered);

async fn dead_letters_are_listed_and_filtered(db: Db) {
    let s = &db.store;
    let dl = |source: &str, at: i64, line: Option<u64>| DeadLetter {
        source: source.into(),
        line_no: line,
        offset: line.map(|l| l * 100),
        raw: format!("raw \u{e9} {at}"),
        reason: "no format matched".into(),
        received_at: Timestamp(T0 + at),
    };
    let all: Vec<DeadLetter> = (0..9)
        .map(|i| dl(if i % 3 == 0 { "a" } else { "b" }, i / 2, Some(i as u64)))
        .chain([dl("c", 100, None)])
        .collect();
    let out = s
        .write_batch(IngestBatch {
            dead_letters: all.clone(),
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    assert_eq!((out.events, out.dead_letters), (0, 10));
    // Walk everything two at a time.
    let mut q = DeadLetterQuery {
        limit: 2,
        ..DeadLetterQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = s.query_dead_letters(&q).await.unwrap();
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Cursor::decode(&c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(seen[0].dead_letter, all[9]);
    let keys: Vec<(Timestamp, i64)> = seen
        .iter()
        .map(|d| (d.dead_letter.received_at, d.id))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]));
    let mut got: Vec<DeadLetter> = seen.into_iter().map(|d| d.dead_letter).collect();
    got.sort_by_key(|d| (d.received_at, d.line_no));
    let mut want = all.clone();
    want.sort_by_key(|d| (d.received_at, d.line_no));
    assert_eq!(got, want);
    // Filters.
    let count = |q: DeadLetterQuery| async move {
        let page = s
            .query_dead_letters(&DeadLetterQuery { limit: 100, ..q })
            .await
            .unwrap();
        page.items
            .iter()
            .map(|d| d.dead_letter.line_no)
            .collect::<Vec<_>>()
    };
    let by_source = count(DeadLetterQuery {
        source: Some("a".into()),
        ..DeadLetterQuery::default()
    })
    .await;
    assert_eq!(by_source, vec![Some(6), Some(3), Some(0)]);
    let by_time = count(DeadLetterQuery {
        from: Some(Timestamp(T0 + 1)),
        to: Some(Timestamp(T0 + 3)),
        ..DeadLetterQuery::default()
    })
    .await;
    assert_eq!(by_time, vec![Some(5), Some(4), Some(3), Some(2)]);
    let both = count(DeadLetterQuery {
        from: Some(Timestamp(T0 + 1)),
        source: Some("b".into()),
        ..DeadLetterQuery::default()
    })
    .await;
    assert_eq!(both, vec![Some(8), Some(7), Some(5), Some(4), Some(2)]);
}
