//! Kafka in and out against a real broker (`scripts/lib/kafka.sh`, address in
//! `PALISADE_TEST_KAFKA`; tests that need it say so and skip when it is unset): records
//! become events exactly once across restarts and re-deliveries, a broker that is down
//! degrades health without blocking start-up, and stored threats arrive on the sink's
//! topic. Built with `--features kafka`.

use std::time::{Duration, Instant};

use palisade_kafka::KafkaSourceConfig;

use crate::helpers::{
    TestApp, line, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with,
    test_settings, unique_schema,
};

/// The broker's bootstrap address, or `None` (with a message) to skip.
fn broker() -> Option<String> {
    match std::env::var("PALISADE_TEST_KAFKA") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            eprintln!(
                "PALISADE_TEST_KAFKA is unset: skipped (start a broker with `bash scripts/lib/kafka.sh start` and export PALISADE_TEST_KAFKA=127.0.0.1:9092)"
            );
            None
        }
    }
}

fn source(name: &str, brokers: &str, topic: &str, group: &str) -> KafkaSourceConfig {
    let mut k = KafkaSourceConfig::new(name, brokers, vec![topic.to_owned()]);
    k.group = group.to_owned();
    k.format = palisade_formats::FormatSpec::Combined;
    k.session_timeout = Duration::from_secs(6);
    k.flush_interval = Duration::from_millis(50);
    k.batch_size = 500;
    k
}

/// `n` distinct combined lines starting at `from`.
fn lines(from: usize, n: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| {
            line(
                "198.51.100.7",
                "10/Oct/2025:13:55:36 +0000",
                "GET",
                &format!("/page/{i}"),
                200,
                "Mozilla/5.0",
            )
            .into_bytes()
        })
        .collect()
}

async fn produce(brokers: &str, topic: &str, payloads: Vec<Vec<u8>>) {
    let (b, t) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || palisade_kafka::tools::produce(&b, &t, &payloads))
        .await
        .expect("join")
        .expect("produce");
}

/// Waits until the store holds `want` events, then a little longer to see that no
/// more arrive; returns the final count.
async fn settle(app: &TestApp, want: u64, within: Duration) -> u64 {
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < within {
        n = app.store.count_events().await.expect("count");
        if n >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.store.count_events().await.expect("count").max(n)
}

/// Every stored event's path, each once: `/page/0` … `/page/{n-1}`.
async fn assert_each_page_once(app: &TestApp, n: usize) {
    let mut seen = vec![0u32; n];
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/events?limit=1000&cursor={c}"),
            None => "/api/v1/events?limit=1000".to_owned(),
        };
        let (status, page) = app.get_json(&q).await;
        assert_eq!(status, 200, "{page}");
        for e in page["items"].as_array().into_iter().flatten() {
            let path = e["path"].as_str().unwrap_or_default();
            let i: usize = path
                .strip_prefix("/page/")
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("unexpected event {e}"));
            seen[i] += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let wrong: Vec<(usize, u32)> = seen
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 1)
        .map(|(i, c)| (i, *c))
        .take(10)
        .collect();
    assert!(wrong.is_empty(), "pages not stored exactly once: {wrong:?}");
}

/// Records become events; a second consumer that never saw the first one's commits
/// (what a `kill -9` between store and commit leaves) stores nothing again; records
/// produced later are stored once.
async fn exactly_once_into_the_store(database_url: Option<String>) {
    let Some(brokers) = broker() else { return };
    let topic = format!("web-{}", unique_schema());
    palisade_kafka::tools::create_topic(&brokers, &topic, 3)
        .await
        .expect("create topic");
    produce(&brokers, &topic, lines(0, 1500)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, database_url.clone());
    settings
        .kafka
        .push(source("web", &brokers, &topic, &format!("{topic}-a")));
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    assert_eq!(settle(&app, 1500, Duration::from_secs(60)).await, 1500);
    let (_, sources) = app.get_json("/api/v1/sources").await;
    let web = sources["items"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "web"))
        .cloned()
        .unwrap_or_else(|| panic!("no kafka source listed: {sources}"));
    assert_eq!(web["kind"], "kafka", "{web}");
    assert_eq!(web["state"], "running", "{web}");
    let dir = app.stop_keep_dir().await;

    // Another group: no committed offsets, so every record is delivered again.
    let mut settings = test_settings(&dir, database_url);
    settings
        .kafka
        .push(source("web", &brokers, &topic, &format!("{topic}-b")));
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    produce(&brokers, &topic, lines(1500, 500)).await;
    assert_eq!(settle(&app, 2000, Duration::from_secs(60)).await, 2000);
    assert_each_page_once(&app, 2000).await;
    let (_, metrics) = app.get_text("/metrics").await;
    let skipped = metrics
        .lines()
        .find(|l| l.starts_with("palisade_kafka_redelivered_skipped_total{source=\"web\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(skipped >= 1500.0, "re-delivered records skipped: {skipped}");
    app.stop().await;
}

#[tokio::test]
async fn kafka_records_are_stored_exactly_once_sqlite() {
    exactly_once_into_the_store(None).await;
}

#[tokio::test]
async fn kafka_records_are_stored_exactly_once_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    exactly_once_into_the_store(Some(url)).await;
    pg_drop_schema(&base, &schema).await;
}

/// No broker at all: the service starts and serves, the source says why it is not
/// reading, health is degraded (not down).
#[tokio::test]
async fn kafka_broker_down_degrades_without_blocking_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    // Port 1: nothing listens there.
    settings
        .kafka
        .push(source("feed", "127.0.0.1:1", "feed", "palisade-test"));
    let started = Instant::now();
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "start-up blocked"
    );
    app.login_admin().await;
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, health) = app.get_json("/api/v1/health/detailed").await;
        let feed = health["sources"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == "feed"))
            .cloned();
        if let Some(feed) = feed
            && feed["state"] == "error"
        {
            assert_eq!(feed["kind"], "kafka");
            assert!(
                feed["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("kafka")),
                "{feed}"
            );
            assert_eq!(health["status"], "degraded", "{health}");
            app.stop().await;
            return;
        }
        last = health;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the unreachable broker never showed in health: {last}");
}

/// A stored threat arrives on the sink's topic as JSON, and a ban made through the API
/// on the decisions topic.
#[tokio::test]
async fn kafka_sink_produces_stored_threats() {
    let Some(brokers) = broker() else { return };
    let topic = format!("threats-{}", unique_schema());
    let decisions = format!("decisions-{}", unique_schema());
    let alerts = format!("alerts-{}", unique_schema());
    for t in [&topic, &decisions, &alerts] {
        palisade_kafka::tools::create_topic(&brokers, t, 1)
            .await
            .expect("create topic");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.kafka_sink = Some(
        toml::from_str(&format!(
            "brokers = \"{brokers}\"\nthreats_topic = \"{topic}\"\ndecisions_topic = \"{decisions}\"\nalerts_topic = \"{alerts}\"\n"
        ))
        .expect("sink config"),
    );
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let attack = line(
        "203.0.113.9",
        "10/Oct/2025:13:55:37 +0000",
        "GET",
        "/item.php?id=1%27%20UNION%20SELECT%20user,password%20FROM%20users--",
        200,
        "Mozilla/5.0",
    );
    let r = app.push("?source=web&format=combined", &attack).await;
    assert_eq!(r.status(), 200);
    let (b, t) = (brokers.clone(), topic.clone());
    let got = tokio::task::spawn_blocking(move || {
        palisade_kafka::tools::read_topic(&b, &t, 1, Duration::from_secs(30))
    })
    .await
    .expect("join")
    .expect("read");
    assert_eq!(got.len(), 1, "one threat produced");
    let threat: serde_json::Value = serde_json::from_slice(&got[0]).expect("json");
    assert_eq!(threat["category"], "sqli", "{threat}");
    assert_eq!(threat["client_ip"], "203.0.113.9", "{threat}");
    assert!(threat["id"].as_i64().is_some(), "{threat}");
    // The threat opened an alert (built-in rules): its change is on the alerts topic.
    let (b, t) = (brokers.clone(), alerts.clone());
    let got = tokio::task::spawn_blocking(move || {
        palisade_kafka::tools::read_topic(&b, &t, 1, Duration::from_secs(30))
    })
    .await
    .expect("join")
    .expect("read");
    assert!(!got.is_empty(), "an alert change produced");
    let change: serde_json::Value = serde_json::from_slice(&got[0]).expect("json");
    assert_eq!(change["change"], "opened", "{change}");
    assert!(change["alert"]["id"].as_i64().is_some(), "{change}");

    let r = app
        .req(reqwest::Method::POST, "/api/v1/decisions")
        .json(&serde_json::json!({"kind": "ban", "value": "192.0.2.44", "duration": "1h"}))
        .send()
        .await
        .expect("ban");
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let (b, t) = (brokers.clone(), decisions.clone());
    let got = tokio::task::spawn_blocking(move || {
        palisade_kafka::tools::read_topic(&b, &t, 1, Duration::from_secs(30))
    })
    .await
    .expect("join")
    .expect("read");
    assert_eq!(got.len(), 1, "one decision produced");
    let decision: serde_json::Value = serde_json::from_slice(&got[0]).expect("json");
    assert_eq!(decision["kind"], "ban", "{decision}");
    assert_eq!(decision["value"], "192.0.2.44", "{decision}");
    app.stop().await;
}

/// The request model's predictions reach their topic: one per scored request, keyed
/// by the client, with the model version and the threat the request raised; and a
/// `/check` request the rules found nothing in (advisory model) produces none.
#[tokio::test]
async fn kafka_sink_produces_model_predictions() {
    let Some(brokers) = broker() else { return };
    let threats = format!("threats-{}", unique_schema());
    let predictions = format!("predictions-{}", unique_schema());
    for t in [&threats, &predictions] {
        palisade_kafka::tools::create_topic(&brokers, t, 1)
            .await
            .expect("create topic");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.kafka_sink = Some(
        toml::from_str(&format!(
            "brokers = \"{brokers}\"\nthreats_topic = \"{threats}\"\npredictions_topic = \"{predictions}\"\n"
        ))
        .expect("sink config"),
    );
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let (_, models) = app.get_json("/api/v1/models").await;
    let version = models[0]["version"].as_str().unwrap_or("").to_owned();
    assert!(version.starts_with("http-"), "{models}");
    let key = app.api_key("edge", &["check"]).await;
    let check = |uri: &'static str| {
        app.client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", key.clone())
            .header("X-Original-URI", uri)
            .header("X-Real-IP", "203.0.113.10")
            .send()
    };
    assert_eq!(
        check("/products?page=2").await.expect("check").status(),
        200
    );
    let attack = line(
        "203.0.113.9",
        "10/Oct/2025:13:55:37 +0000",
        "GET",
        "/item.php?id=1%27%20UNION%20SELECT%20user,password%20FROM%20users--",
        200,
        "Mozilla/5.0",
    );
    let r = app.push("?source=web&format=combined", &attack).await;
    assert_eq!(r.status(), 200);
    let (b, t) = (brokers.clone(), predictions.clone());
    let got = tokio::task::spawn_blocking(move || {
        palisade_kafka::tools::read_topic(&b, &t, 1, Duration::from_secs(30))
    })
    .await
    .expect("join")
    .expect("read");
    assert_eq!(got.len(), 1, "only the attack reached the (advisory) model");
    let p: serde_json::Value = serde_json::from_slice(&got[0]).expect("json");
    assert_eq!(p["model_version"], version.as_str(), "{p}");
    assert_eq!(p["client_ip"], "203.0.113.9", "{p}");
    assert_eq!(p["source"], "web", "{p}");
    assert!(p["event_id"].as_i64().is_some(), "{p}");
    let probability = p["probability"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&probability), "{p}");
    assert!(p["class"].as_str().is_some_and(|c| !c.is_empty()), "{p}");
    assert_eq!(p["threat"]["category"], "sqli", "{p}");
    assert_eq!(p["decision"], "detect", "a log line is detected: {p}");
    app.stop().await;
}

/// A broker of our own on a spare port, started and stopped with
/// `scripts/lib/kafka.sh` (what CI uses to start the shared one).
struct OwnBroker {
    port: u16,
}

impl OwnBroker {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/kafka.sh")
    }

    fn run(&self, what: &str) {
        let status = std::process::Command::new("bash")
            .arg(Self::script())
            .arg(what)
            .env("PALISADE_KAFKA_PORT", self.port.to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("kafka.sh");
        assert!(status.success(), "kafka.sh {what} failed");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.run("stop");
    }
}

/// The broker is down when the service starts: health is degraded with the reason;
/// once a broker comes up the source recovers by itself and stores what is produced.
#[tokio::test]
async fn kafka_source_recovers_when_the_broker_comes_up() {
    if broker().is_none() {
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let own = OwnBroker { port };
    let brokers = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings
        .kafka
        .push(source("late", &brokers, "late", "late-group"));
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let state = |h: &serde_json::Value| {
        h["sources"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == "late"))
            .map(|s| s["state"].clone())
            .unwrap_or_default()
    };
    let mut health = serde_json::Value::Null;
    for _ in 0..100 {
        (_, health) = app.get_json("/api/v1/health/detailed").await;
        if state(&health) == "error" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state(&health), "error", "{health}");

    own.run("start");
    palisade_kafka::tools::create_topic(&brokers, "late", 2)
        .await
        .expect("create topic");
    produce(&brokers, "late", lines(0, 300)).await;
    assert_eq!(settle(&app, 300, Duration::from_secs(60)).await, 300);
    let (_, health) = app.get_json("/api/v1/health/detailed").await;
    assert_eq!(state(&health), "running", "{health}");
    app.stop().await;
}

/// The runtime switch: `POST /api/v1/sources/{name}/pause` stops consumption (stored,
/// so a restart stays paused), `/resume` reads on from the committed offsets; the
/// detailed health shows brokers, assigned partitions, lag and the last commit.
#[tokio::test]
async fn kafka_source_pauses_and_resumes_from_the_api_across_a_restart() {
    let Some(brokers) = broker() else { return };
    let topic = format!("switch-{}", unique_schema());
    palisade_kafka::tools::create_topic(&brokers, &topic, 2)
        .await
        .expect("create topic");
    produce(&brokers, &topic, lines(0, 300)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    let config = source("web", &brokers, &topic, &topic);
    settings.kafka.push(config.clone());
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    assert_eq!(settle(&app, 300, Duration::from_secs(60)).await, 300);

    // Health: brokers, assigned partitions with lag, the last commit.
    let mut health = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, h) = app.get_json("/api/v1/health/detailed").await;
        let d = &h["kafka"][0]["detail"];
        if d["partitions"].as_array().is_some_and(|p| p.len() == 2)
            && d["last_commit"]["offsets"].as_array().is_some()
        {
            health = h;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let k = &health["kafka"][0];
    assert_eq!(k["source"], "web", "{health}");
    assert_eq!(k["detail"]["group"], topic.as_str(), "{k}");
    assert!(
        k["detail"]["brokers"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["state"] == "UP")),
        "{k}"
    );
    assert!(
        k["detail"]["partitions"][0]["lag"].as_i64().is_some(),
        "{k}"
    );

    // Unknown sources are named.
    let r = app
        .req(reqwest::Method::POST, "/api/v1/sources/nope/pause")
        .send()
        .await
        .expect("pause");
    assert_eq!(r.status(), 404);
    let r = app
        .req(reqwest::Method::POST, "/api/v1/sources/web/pause")
        .send()
        .await
        .expect("pause");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("body");
    assert_eq!(body["paused"], true);
    let paused = |v: &serde_json::Value| {
        v["items"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == "web"))
            .is_some_and(|w| w["state"] == "paused")
    };
    let mut seen = false;
    for _ in 0..100 {
        let (_, s) = app.get_json("/api/v1/sources").await;
        if paused(&s) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the source shows paused");
    produce(&brokers, &topic, lines(300, 200)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        app.store.count_events().await.expect("count"),
        300,
        "paused: nothing read"
    );

    // Still paused after a restart (the switch is stored).
    let dir = app.stop_keep_dir().await;
    let mut settings = test_settings(&dir, None);
    settings.kafka.push(config);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let mut seen = false;
    for _ in 0..100 {
        let (_, s) = app.get_json("/api/v1/sources").await;
        if paused(&s) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "paused after a restart");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.store.count_events().await.expect("count"), 300);

    let r = app
        .req(reqwest::Method::POST, "/api/v1/sources/web/resume")
        .send()
        .await
        .expect("resume");
    assert_eq!(r.status(), 200);
    assert_eq!(settle(&app, 500, Duration::from_secs(60)).await, 500);
    assert_each_page_once(&app, 500).await;
    app.stop().await;
}
