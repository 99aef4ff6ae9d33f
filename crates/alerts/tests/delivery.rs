//! The whole path on a real SQLite store and a real HTTP receiver on loopback: stored
//! threats → rule stage → alert → notifier → durable queue → signed webhook, checked
//! the way a receiver checks it (Standard Webhooks signature over id, timestamp and
//! body). The receiver is down first and the component is restarted in between: the
//! notification queued before the restart is delivered after it, exactly once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use palisade_alerts::channel::webhook::{generate_secret, secret_key, sign};
use palisade_alerts::{AlertsConfig, AlertsSetup, ChannelSpec, start, threat_feed};
use palisade_core::severity::Severity;
use palisade_core::shutdown::ShutdownTrigger;
use palisade_core::supervisor::Supervisor;
use palisade_core::threat::{StoredThreat, Threat};
use palisade_core::verdict::Action;
use palisade_core::{Timestamp, duration::Span};
use palisade_jobs::SecretSource;
use palisade_live::{Bus, BusConfig};
use palisade_store::{AlertQuery, DeliveryState, SharedStore, SpecInput, SpecTable, Store};

/// What the receiver got: (headers, body, when).
type Received = Arc<Mutex<Vec<(HeaderMap, String, Instant)>>>;

struct FixedSecret(String);

#[async_trait::async_trait]
impl SecretSource for FixedSecret {
    async fn reveal(&self, name: &str) -> Result<Option<String>, String> {
        Ok(name.starts_with("alert_channel.").then(|| self.0.clone()))
    }
}

async fn receiver(addr: SocketAddr, got: Received) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let got = got.clone();
            async move {
                got.lock().unwrap().push((headers, body, Instant::now()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

fn config() -> AlertsConfig {
    AlertsConfig {
        group_wait: Span::from_secs(0),
        poll_every: Span::from_millis(20),
        retry_base_delay: Span::from_millis(100),
        retry_max_delay: Span::from_millis(300),
        breaker_failures: 100,
        ..AlertsConfig::default()
    }
}

async fn store(dir: &tempfile::TempDir) -> SharedStore {
    let s = palisade_store::sqlite::SqliteStore::open(&dir.path().join("p.db")).unwrap();
    s.migrate().await.unwrap();
    Arc::new(s)
}

async fn threats(store: &SharedStore, n: usize) -> Arc<[StoredThreat]> {
    let batch: Vec<Threat> = (0..n)
        .map(|i| Threat {
            tags: Vec::new(),
            ts: Timestamp::now(),
            category: "sqli".into(),
            severity: Severity::Error,
            score: 5,
            rule_ids: vec![942100],
            client_ip: Some("203.0.113.7".parse().unwrap()),
            method: Some("GET".into()),
            uri: Some(format!("/item?id={i}'--")),
            source: "web".into(),
            event_id: None,
            decision: Action::Detect,
            evidence: Vec::new(),
        })
        .collect();
    let ids = store.insert_threats(&batch).await.unwrap();
    ids.into_iter()
        .zip(batch)
        .map(|(id, threat)| StoredThreat { id, threat })
        .collect()
}

struct Running {
    trigger: ShutdownTrigger,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tx: tokio::sync::mpsc::Sender<Arc<[StoredThreat]>>,
}

fn run(store: &SharedStore, secret: &str, bus: Arc<Bus>) -> Running {
    run_with(store, secret, bus, config())
}

fn run_with(store: &SharedStore, secret: &str, bus: Arc<Bus>, config: AlertsConfig) -> Running {
    let trigger = ShutdownTrigger::new();
    let supervisor = Supervisor::new(trigger.subscribe());
    let (tx, feed) = threat_feed(&config);
    let tasks = start(
        AlertsSetup {
            config,
            store: store.clone(),
            bus,
            secrets: Some(Arc::new(FixedSecret(secret.to_owned()))),
            job_events: None,
            sources: None,
        },
        feed,
        &supervisor,
    );
    Running { trigger, tasks, tx }
}

impl Running {
    async fn stop(self) {
        drop(self.tx);
        self.trigger.trigger();
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

async fn webhook_channel(store: &SharedStore, addr: SocketAddr) -> i64 {
    store
        .insert_spec(
            SpecTable::Channels,
            &SpecInput {
                name: "ops".into(),
                kind: "webhook".into(),
                enabled: true,
                spec: serde_json::to_value(ChannelSpec::Webhook {
                    url: format!("http://{addr}/hook"),
                })
                .unwrap(),
            },
        )
        .await
        .unwrap()
        .id
}

async fn wait_for(mut check: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn verify(headers: &HeaderMap, body: &str, secret: &str) {
    let id = headers["webhook-id"].to_str().unwrap();
    let ts: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = headers["webhook-signature"].to_str().unwrap();
    assert!(id.starts_with("msg_"));
    assert!((Timestamp::now().as_micros() / 1_000_000 - ts).abs() < 60);
    assert_eq!(sig, sign(&secret_key(secret).unwrap(), id, ts, body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_becomes_one_signed_notification_delivered_once_after_outage_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    // A free port nobody listens on yet: the receiver is down.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let channel = webhook_channel(&store, addr).await;
    let secret = generate_secret().unwrap();

    let first = run(&store, &secret, Arc::new(Bus::new(BusConfig::default())));
    first.tx.send(threats(&store, 50).await).await.unwrap();
    // The alert opens and its notification fails against the closed port, twice.
    let mut failed = Vec::new();
    let start = Instant::now();
    while failed
        .iter()
        .all(|d: &palisade_store::Delivery| d.attempts < 2)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no failed attempt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let alerts = store
            .query_alerts(&AlertQuery {
                limit: 10,
                ..AlertQuery::default()
            })
            .await
            .unwrap();
        if let Some(a) = alerts.items.first() {
            failed = store.alert_deliveries(a.id).await.unwrap();
        }
    }
    let alerts = store
        .query_alerts(&AlertQuery {
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(alerts.items.len(), 1, "a burst is one alert");
    let alert = &alerts.items[0];
    assert_eq!(alert.count, 50);
    assert_eq!(alert.rule_name, "Attacks by client and category");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].state, DeliveryState::Pending);
    assert_eq!(failed[0].channel_id, channel);
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("connect")
    );
    first.stop().await;

    // Receiver up, component restarted: the queued notification goes out once.
    let got: Received = Arc::default();
    let server = receiver(addr, got.clone()).await;
    let second = run(&store, &secret, Arc::new(Bus::new(BusConfig::default())));
    wait_for(|| !got.lock().unwrap().is_empty(), "delivery after restart").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1, "delivered exactly once");
        let (headers, body, _) = &got[0];
        verify(headers, body, &secret);
        let doc: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(doc["type"], "alert.firing");
        assert_eq!(doc["data"]["id"], alert.id);
        assert_eq!(doc["data"]["count"], 50);
        assert_eq!(
            headers["webhook-id"].to_str().unwrap(),
            failed[0].message_id
        );
    }
    let log = store.alert_deliveries(alert.id).await.unwrap();
    assert_eq!(log[0].state, DeliveryState::Delivered);
    assert_eq!(log[0].last_status, Some(204));
    assert!(log[0].attempts >= 3);
    second.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat_to_delivered_webhook_latency() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    webhook_channel(&store, addr).await;
    let secret = generate_secret().unwrap();
    let got: Received = Arc::default();
    let server = receiver(addr, got.clone()).await;
    let bus = Arc::new(Bus::new(BusConfig::default()));
    let mut live = bus.subscribe(None);
    let running = run(&store, &secret, bus);
    let mut latencies = Vec::new();
    for i in 0..20u8 {
        let mut batch = threats(&store, 1).await.to_vec();
        // A new client each time: a new alert, notified at once (group_wait 0).
        batch[0].threat.client_ip = Some(format!("198.51.100.{i}").parse().unwrap());
        let before = got.lock().unwrap().len();
        let sent = Instant::now();
        running.tx.send(batch.into()).await.unwrap();
        wait_for(|| got.lock().unwrap().len() > before, "delivery").await;
        let at = got.lock().unwrap().last().map(|g| g.2).unwrap();
        latencies.push(at.duration_since(sent));
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "threat → alert → webhook delivered over {} alerts: p50 {:.1} ms, max {:.1} ms",
        latencies.len(),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() - 1])
    );
    for (h, b, _) in got.lock().unwrap().iter() {
        verify(h, b, &secret);
    }
    // Every new alert went out on the live `alerts` topic (and into the activity feed).
    let mut opened = 0;
    while opened < 20 {
        let next = tokio::time::timeout(Duration::from_secs(5), live.next()).await;
        let Ok(palisade_live::Next::Message(m)) = next else {
            panic!("live feed ended after {opened} alerts");
        };
        if m.topic == palisade_live::Topic::Alerts {
            assert!(m.json.contains("\"change\":\"opened\""), "{}", m.json);
            opened += 1;
        }
    }
    running.stop().await;
    server.abort();
}

/// The deliveries of the only alert, once there is one.
async fn deliveries(store: &SharedStore) -> Vec<palisade_store::Delivery> {
    let alerts = store
        .query_alerts(&AlertQuery {
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    match alerts.items.first() {
        Some(a) => store.alert_deliveries(a.id).await.unwrap(),
        None => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resting_circuit_leaves_its_notifications_untried_and_uncounted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    webhook_channel(&store, addr).await;
    let secret = generate_secret().unwrap();
    // One failure opens the circuit for 3 s; retries would otherwise come every
    // ~100-300 ms.
    let running = run_with(
        &store,
        &secret,
        Arc::new(Bus::new(BusConfig::default())),
        AlertsConfig {
            breaker_failures: 1,
            breaker_cooldown: Span::from_secs(3),
            ..config()
        },
    );
    running.tx.send(threats(&store, 3).await).await.unwrap();
    let start = Instant::now();
    let first = loop {
        let d = deliveries(&store).await;
        if d.first().is_some_and(|d| d.last_error.is_some()) {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(first[0].attempts, 1);
    // Resting: dozens of passes, no attempt taken or counted.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resting = deliveries(&store).await;
    assert_eq!(resting[0].state, DeliveryState::Pending);
    assert_eq!(resting[0].attempts, 1, "a rest is not an attempt");
    assert_eq!(resting[0].last_attempt_at, first[0].last_attempt_at);

    // The receiver is up: the trial after the rest delivers, on the second attempt.
    let got: Received = Arc::default();
    let server = receiver(addr, got.clone()).await;
    wait_for(
        || !got.lock().unwrap().is_empty(),
        "delivery after the rest",
    )
    .await;
    let start = Instant::now();
    let done = loop {
        let d = deliveries(&store).await;
        if d[0].state == DeliveryState::Delivered {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done[0].attempts, 2);
    assert_eq!(got.lock().unwrap().len(), 1);
    running.stop().await;
    server.abort();
}
