//! Durable notifications through the real binary: an attack becomes an alert whose
//! signed webhook notification is queued while the receiver does not answer (it takes
//! the request and hangs), the server is killed with `kill -9` in the middle of that
//! attempt, the receiver comes back, the server starts again — and every notification
//! is delivered exactly once, with the same `webhook-id` as the attempt that was cut
//! off, after the claim lease (`[alerts] claim_lease`) of the dead process ran out.
//! On SQLite and on PostgreSQL (a schema of `PALISADE_TEST_DATABASE_URL`).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use palisade_store::{DeliveryState, SharedStore};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::AsyncReadExt;

const PASSWORD: &str = "alerts-kill-Password-42";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn serve(config: &Path, data: &Path, port: u16, database_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .arg("--database-url")
        .arg(database_url)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("PALISADE_LOG", "warn")
        .env("PALISADE_ADMIN_PASSWORD", PASSWORD)
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start palisade")
}

async fn login(http: &reqwest::Client, api: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .post(format!("{api}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == 200
        {
            let body: Value = r.json().await.expect("login json");
            return body["access_token"].as_str().expect("token").to_owned();
        }
        assert!(Instant::now() < deadline, "could not log in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A receiver that takes requests and never answers: records each request's
/// `webhook-id` and holds the connection open until it is stopped.
fn hanging_receiver(
    listener: tokio::net::TcpListener,
) -> (tokio::task::JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = ids.clone();
    let task = tokio::spawn(async move {
        let mut held = tokio::task::JoinSet::new();
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            held.spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                if let Some(id) = text.lines().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("webhook-id")
                        .then(|| value.trim().to_owned())
                }) {
                    seen.lock().expect("lock").push(id);
                }
                // Never answers; the connection stays open until the task is dropped.
                std::future::pending::<()>().await;
                drop(conn);
            });
        }
    });
    (task, ids)
}

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn answering_receiver(listener: tokio::net::TcpListener) -> Received {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let g = g.clone();
            async move {
                g.lock().expect("lock").push((headers, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    got
}

fn verify(headers: &HeaderMap, body: &str, secret: &str) {
    let h = |name: &str| headers[name].to_str().expect("header").to_owned();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(h("webhook-signature"), expected, "signature");
}

async fn kill_9_flow(database_url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("palisade.toml");
    // Short waits so the test takes seconds: the claim of the killed process runs out
    // after 3 s (each attempt is cut at 1 s, so a live one is never taken over).
    std::fs::write(
        &config,
        "[alerts]\ngroup_wait = \"10ms\"\npoll_every = \"50ms\"\ndelivery_timeout = \"1s\"\n\
         claim_lease = \"3s\"\nretry_base_delay = \"200ms\"\nretry_max_delay = \"1s\"\n",
    )
    .expect("config");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    let hook = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let hook_addr = hook.local_addr().expect("addr");
    let (hanging, attempted) = hanging_receiver(hook);

    let mut server = serve(&config, &data, port, database_url);
    let token = login(&http, &api).await;
    let r = http
        .post(format!("{api}/api/v1/channels"))
        .bearer_auth(&token)
        .json(&json!({"name": "ops", "spec": {"kind": "webhook", "url": format!("http://{hook_addr}/hook")}}))
        .send()
        .await
        .expect("create channel");
    assert_eq!(r.status(), 201);
    let channel: Value = r.json().await.expect("channel");
    let secret = channel["secret"].as_str().expect("secret").to_owned();

    // Built-in rules are created at start; an attack raises an alert at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .post(format!("{api}/api/v1/check/request"))
            .bearer_auth(&token)
            .json(&json!({
                "method": "GET",
                "uri": "/item?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
                "headers": [["host", "shop"]],
                "client_ip": "198.51.100.77",
            }))
            .send()
            .await
            .expect("check");
        assert_eq!(r.status(), 403);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !attempted.lock().expect("lock").is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no notification reached the receiver"
        );
    }
    // An attempt is in flight (the receiver holds it): kill -9 now.
    server.kill().expect("kill -9");
    let _ = server.wait();
    let cut_off: Vec<String> = attempted.lock().expect("lock").clone();
    hanging.abort();
    let _ = hanging.await;

    // The receiver is back (same address), then the server.
    let hook = tokio::net::TcpListener::bind(hook_addr)
        .await
        .expect("rebind receiver");
    let got = answering_receiver(hook).await;
    let restarted = Instant::now();
    let mut server = serve(&config, &data, port, database_url);
    let store: SharedStore = palisade_store::open(database_url, &data).expect("store");

    // Every queued notification ends delivered.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alerts = loop {
        let page = store
            .query_alerts(&palisade_store::AlertQuery {
                limit: 100,
                ..palisade_store::AlertQuery::default()
            })
            .await;
        if let Ok(page) = page
            && !page.items.is_empty()
        {
            let mut all = Vec::new();
            for a in &page.items {
                all.extend(store.alert_deliveries(a.id).await.expect("deliveries"));
            }
            if !all.is_empty() && all.iter().all(|d| d.state == DeliveryState::Delivered) {
                break all;
            }
        }
        assert!(
            Instant::now() < deadline,
            "notifications not delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = restarted.elapsed();
    eprintln!("every notification delivered {took:?} after the restart");
    // Anything sent twice would arrive now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill().expect("stop");
    let _ = server.wait();

    let got = got.lock().expect("lock").clone();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for (headers, body) in &got {
        verify(headers, body, &secret);
        let id = headers["webhook-id"].to_str().expect("id").to_owned();
        *per_id.entry(id).or_default() += 1;
    }
    for d in &alerts {
        assert_eq!(
            per_id.get(&d.message_id),
            Some(&1),
            "{} delivered exactly once: {per_id:?}",
            d.message_id
        );
        if cut_off.contains(&d.message_id) {
            assert!(d.attempts >= 2, "the cut-off attempt counted: {d:?}");
        }
    }
    assert_eq!(per_id.len(), alerts.len(), "nothing else was sent");
    for id in &cut_off {
        assert_eq!(
            per_id.get(id),
            Some(&1),
            "the notification cut off by kill -9 ({id}) arrived once with its webhook-id"
        );
    }
    assert!(
        took < Duration::from_secs(30),
        "delivered {took:?} after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_queued_notification_survives_kill_9_and_is_delivered_once() {
    kill_9_flow("sqlite://palisade.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_queued_notification_survives_kill_9_and_is_delivered_once_postgres() {
    if std::env::var("PALISADE_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!(
        "alerts_kill_{}_{}",
        std::process::id(),
        stamp % 1_000_000_000
    );
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must be reachable for this test");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    kill_9_flow(&url).await;
    let _ = client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await;
}
