//! Proxied requests stored as events through the real bounded writer into a real
//! store, and dropped (counted, shown in the source's status) rather than making
//! clients wait when the writer's queue stays full.

mod common;

use std::time::Duration;

use common::*;
use palisade_core::ShutdownTrigger;
use palisade_core::supervisor::Supervisor;
use palisade_core::verdict::Action;
use palisade_core::{EventKind, Timestamp};
use palisade_proxy::TrafficContext;
use palisade_sources::{BatchWriter, SourceRegistry, SourceState, WriterConfig};
use palisade_store::{EventQuery, SharedStore};

struct Pipeline {
    store: SharedStore,
    traffic: TrafficContext,
    _stop: ShutdownTrigger,
}

async fn pipeline(store: SharedStore, queue_batches: usize) -> Pipeline {
    let stop = ShutdownTrigger::new();
    let supervisor = Supervisor::new(stop.subscribe());
    let config = WriterConfig {
        queue_batches,
        ..WriterConfig::default()
    };
    let (writer, _task) = BatchWriter::spawn(store.clone(), config, &supervisor);
    Pipeline {
        store,
        traffic: TrafficContext {
            writer,
            sources: SourceRegistry::default(),
            supervisor,
        },
        _stop: stop,
    }
}

async fn stored(store: &SharedStore, at_least: usize) -> Vec<palisade_core::event::StoredEvent> {
    for _ in 0..200 {
        let page = store
            .query_events(&EventQuery {
                source: Some("shop".into()),
                limit: 100,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        if page.items.len() >= at_least {
            return page.items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {at_least} events were stored");
}

#[tokio::test]
async fn every_proxied_request_becomes_an_event_with_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let store = palisade_store::open("sqlite://events.db", dir.path()).unwrap();
    store.migrate().await.unwrap();
    let pl = pipeline(store, 8).await;
    let (up, _) = raw_upstream().await;
    let before = Timestamp::now();
    let p = proxy(&format!("http://{up}"), Some(pl.traffic.clone()), |_| {}).await;

    let (_s, ok) = exchange(
        p.addr,
        b"GET /shop/item?id=42&q=blue HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0 test\r\nReferer: https://ref.example/\r\n\r\n",
    )
    .await;
    assert_eq!(ok.status, 200);
    let (_s, blocked) = exchange(
        p.addr,
        b"GET /item?id=1%27%20union%20select%20password%20from%20users-- HTTP/1.1\r\nHost: shop.example\r\n\r\n",
    )
    .await;
    assert_eq!(blocked.status, 403);
    let (_s, refused) = exchange(
        p.addr,
        b"GET /q?x=\"<b>\" HTTP/1.1\r\nHost: shop.example\r\n\r\n",
    )
    .await;
    assert_eq!(refused.status, 400);

    let events = stored(&pl.store, 3).await;
    let find = |path: &str| {
        events
            .iter()
            .map(|e| &e.event)
            .find(|e| e.path.as_deref() == Some(path))
            .unwrap_or_else(|| panic!("an event for {path}: {events:?}"))
    };
    let e = find("/shop/item");
    assert_eq!(e.kind, EventKind::Http);
    assert_eq!(e.source, "shop");
    assert_eq!(e.method.as_deref(), Some("GET"));
    assert_eq!(e.host.as_deref(), Some("shop.example"));
    assert_eq!(e.query.as_deref(), Some("id=42&q=blue"));
    assert_eq!(e.status, Some(200));
    assert_eq!(e.bytes, Some(ok.body.len() as u64));
    assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0 test"));
    assert_eq!(e.referer.as_deref(), Some("https://ref.example/"));
    assert_eq!(e.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(e.verdict, Some(Action::Allow));
    assert!(e.duration_us.is_some());
    assert!(e.ts >= before);
    assert!(e.extra.iter().any(|(k, _)| k == "request_id"));
    let e = find("/item");
    assert_eq!((e.status, e.verdict), (Some(403), Some(Action::Block)));
    let e = find("/q");
    assert_eq!((e.status, e.verdict), (Some(400), Some(Action::Block)));
    assert_eq!(e.query.as_deref(), Some("x=\"<b>\""));

    let source = pl
        .traffic
        .sources
        .get("shop")
        .expect("registered as a source");
    let snap = source.snapshot();
    assert_eq!(snap.kind, "proxy");
    assert_eq!(snap.state, SourceState::Running);
    assert_eq!((snap.lines, snap.events, snap.dropped), (3, 3, 0));
}

#[tokio::test]
async fn a_full_writer_queue_drops_events_and_never_holds_a_request() {
    // A store that is down: the writer retries its first batch for ever, one more
    // waits in its queue, and every later batch finds the queue full.
    let dir = tempfile::tempdir().unwrap();
    let dead = free_port();
    let store = palisade_store::open(
        &format!("postgres://postgres@127.0.0.1:{dead}/none"),
        dir.path(),
    )
    .unwrap();
    let pl = pipeline(store, 1).await;
    let (up, _) = raw_upstream().await;
    let p = proxy(&format!("http://{up}"), Some(pl.traffic.clone()), |_| {}).await;
    let source = pl.traffic.sources.get("shop").expect("registered");
    let mut answered = 0;
    while source.snapshot().dropped == 0 {
        assert!(answered < 100_000, "nothing was ever dropped");
        let (_s, answer) = exchange(p.addr, b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(answer.status, 200);
        answered += 1;
    }
    let snap = source.snapshot();
    assert_eq!(snap.state, SourceState::Error);
    assert!(
        snap.last_error
            .as_deref()
            .unwrap_or("")
            .contains("dropping"),
        "{snap:?}"
    );
    let dropped = palisade_core::metrics::registry()
        .counter(
            "palisade_proxy_events_total",
            "Proxied requests handed to the store writer as events (queued) or given up because the writer's queue stayed full (dropped).",
            &["proxy", "outcome"],
            &["shop", "dropped"],
        )
        .get();
    assert_eq!(dropped, snap.dropped);
}
