//! Inspection marks (issue 16): how far the inspector has gone in each source, and what
//! resuming from them reads.

use palisade_core::threat::Threat;
use palisade_core::verdict::Action;
use palisade_core::{Event, Timestamp};
use palisade_store::IngestBatch;

use crate::harness::{Db, T0, contract, ev};

contract!(
    marks_start_at_zero_and_never_move_back,
    events_after_a_mark_are_the_sources_own_oldest_first,
    threatened_events_are_those_a_threat_points_at
);

async fn marks_start_at_zero_and_never_move_back(db: Db) {
    let s = &db.store;
    assert_eq!(s.inspected_through("web").await.unwrap(), 0);
    s.mark_inspected(&[("web".into(), 10), ("api".into(), 4)])
        .await
        .unwrap();
    s.mark_inspected(&[("web".into(), 7)]).await.unwrap();
    assert_eq!(s.inspected_through("web").await.unwrap(), 10);
    assert_eq!(s.inspected_through("api").await.unwrap(), 4);
    s.mark_inspected(&[("api".into(), 12)]).await.unwrap();
    s.mark_inspected(&[]).await.unwrap();
    assert_eq!(s.inspected_through("api").await.unwrap(), 12);
    assert_eq!(s.inspected_through("other").await.unwrap(), 0);
}

/// Stores `events` in one batch; their ids.
async fn store(db: &Db, events: Vec<Event>) -> Vec<i64> {
    let n = events.len() as i64;
    let out = db
        .store
        .write_batch(IngestBatch {
            events,
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    let first = out.first_event_id.unwrap();
    (first..first + n).collect()
}

fn of(source: &str, ts: i64) -> Event {
    Event {
        source: source.into(),
        path: Some(format!("/{ts}")),
        ..ev(ts)
    }
}

async fn events_after_a_mark_are_the_sources_own_oldest_first(db: Db) {
    let s = &db.store;
    let a = store(&db, (0..5).map(|i| of("web", i)).collect()).await;
    let b = store(&db, (5..8).map(|i| of("api", i)).collect()).await;
    let c = store(&db, (8..11).map(|i| of("web", i)).collect()).await;
    let ids = |events: Vec<palisade_core::event::StoredEvent>| -> Vec<i64> {
        events.iter().map(|e| e.id).collect()
    };
    let web: Vec<i64> = a.iter().chain(&c).copied().collect();
    assert_eq!(ids(s.events_after("web", 0, 100).await.unwrap()), web);
    assert_eq!(
        ids(s.events_after("web", a[2], 3).await.unwrap()),
        vec![a[3], a[4], c[0]]
    );
    assert_eq!(
        ids(s.events_after("web", c[2], 100).await.unwrap()),
        Vec::<i64>::new()
    );
    let api = s.events_after("api", a[4], 100).await.unwrap();
    assert_eq!(ids(api.clone()), b);
    assert_eq!(api[1].event.path.as_deref(), Some("/6"));
    assert_eq!(api[1].event.source, "api");
}

async fn threatened_events_are_those_a_threat_points_at(db: Db) {
    let s = &db.store;
    let ids = store(&db, (0..6).map(|i| of("web", i)).collect()).await;
    let threat = |event_id: Option<i64>, source: &str| Threat {
        tags: Vec::new(),
        ts: Timestamp(T0),
        category: "sqli".into(),
        severity: "critical".parse().unwrap(),
        score: 5,
        rule_ids: vec![942100],
        client_ip: None,
        method: Some("GET".into()),
        uri: Some("/".into()),
        source: source.into(),
        event_id,
        decision: Action::Detect,
        evidence: Vec::new(),
    };
    // A scenario's threat points at an event too, but says nothing of its inspection.
    s.insert_threats(&[
        threat(Some(ids[4]), "web"),
        threat(None, "web"),
        threat(Some(ids[1]), "web"),
        threat(Some(ids[4]), "web"),
        threat(Some(ids[2]), "scenario"),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.threatened_events("web", ids[0], ids[5]).await.unwrap(),
        vec![ids[1], ids[4]]
    );
    assert_eq!(
        s.threatened_events("web", ids[2], ids[3]).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        s.threatened_events("web", ids[4], ids[4]).await.unwrap(),
        vec![ids[4]]
    );
    assert_eq!(
        s.threatened_events("scenario", ids[0], ids[5])
            .await
            .unwrap(),
        vec![ids[2]]
    );
}
