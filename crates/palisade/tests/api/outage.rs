//! A PostgreSQL outage degrades the service and it recovers by itself: a TCP proxy in
//! front of the real PostgreSQL is switched off and on under a running service.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{
    line, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with, test_settings,
};

/// A switchable TCP proxy: when off, it refuses (accepts and closes) and cuts every
/// open connection, which is what a database crash looks like to a client.
struct Proxy {
    port: u16,
    on: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let on = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (on2, conns2) = (on.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !on2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns2.lock().expect("lock").push(h);
            }
        });
        Proxy { port, on, conns }
    }

    fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
        if !on {
            for h in self.conns.lock().expect("lock").drain(..) {
                h.abort();
            }
        }
    }
}

async fn push_one(app: &crate::helpers::TestApp) -> reqwest::Response {
    let one = line(
        "1.1.1.1",
        "10/Oct/2023:13:55:36 +0000",
        "GET",
        "/x",
        200,
        "u",
    );
    app.push("?format=combined", &one).await
}

async fn wait_for(app: &crate::helpers::TestApp, path: &str, code: u16, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if app.get(path).await.status().as_u16() == code {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} did not answer {code} within {within:?}");
}

#[tokio::test]
async fn postgres_outage_degrades_and_recovers_without_restart() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (schema_url, schema) = pg_schema_url(&base).await;
    let proxy = Proxy::start("127.0.0.1:5432".into()).await;
    let via_proxy = schema_url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
    assert_ne!(
        via_proxy, schema_url,
        "the test URL must point at 127.0.0.1:5432"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let mut settings = test_settings(&dir, Some(via_proxy));
    let mut tail = palisade_sources::tail::TailConfig::new(log.clone());
    tail.name = "web".into();
    tail.poll_interval = Duration::from_millis(50);
    tail.flush_interval = Duration::from_millis(50);
    settings.sources.push(tail);

    // Start with the database down: serving at once, not ready, and saying why.
    let started = Instant::now();
    let app = spawn_with(settings, dir).await;
    assert_eq!(app.get("/livez").await.status(), 200);
    // Serving at all while the database is unreachable is the property; the bound only
    // catches a start-up that waits on a connection timeout (PostgreSQL's is tens of
    // seconds). How fast start-up is on a quiet machine is a benchmark figure, not a
    // test's (a loaded CI machine must not fail it).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} to serve",
        started.elapsed()
    );
    wait_for(&app, "/readyz", 503, Duration::from_secs(5)).await;
    let (_, ready) = app.get_json("/readyz").await;
    assert!(
        ready["detail"].as_str().unwrap_or("").contains("database"),
        "{ready}"
    );
    // Nobody can log in without the database; protected routes say so, they do not hang.
    let (status, _) = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    assert_eq!(status, 503);

    // Lines written while the database is down are held, not lost.
    let mut body = String::new();
    for i in 0..50 {
        body.push_str(&line(
            "2.2.2.2",
            "10/Oct/2023:13:55:36 +0000",
            "GET",
            &format!("/a/{i}"),
            200,
            "u",
        ));
        body.push('\n');
    }
    std::fs::write(&log, &body).expect("write log");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The database comes back: ready without a restart, and the held lines land.
    proxy.set(true);
    wait_for(&app, "/readyz", 200, Duration::from_secs(15)).await;
    let mut app = app;
    app.login_admin().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.store.count_events().await.unwrap_or(0) < 50 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.store.count_events().await.expect("count"), 50);

    // An outage in the middle of running.
    proxy.set(false);
    wait_for(&app, "/readyz", 503, Duration::from_secs(10)).await;
    // A logged-in operator still sees why: the token is verified without the database.
    let (status, h) = app.get_json("/api/v1/health/detailed").await;
    assert_eq!(status, 503);
    assert_eq!(h["status"], "unhealthy");
    assert!(
        h["reasons"][0].as_str().unwrap_or("").contains("database"),
        "{h}"
    );
    let r = push_one(&app).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let mut more = String::new();
    for i in 0..30 {
        more.push_str(&line(
            "3.3.3.3",
            "10/Oct/2023:13:56:36 +0000",
            "GET",
            &format!("/b/{i}"),
            200,
            "u",
        ));
        more.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open");
    std::io::Write::write_all(&mut f, more.as_bytes()).expect("append");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, _) = app.get_json("/api/v1/events").await;
    assert_eq!(
        status, 503,
        "reads during the outage are 503 problems, not hangs or 500s"
    );

    proxy.set(true);
    wait_for(&app, "/readyz", 200, Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.store.count_events().await.unwrap_or(0) < 80 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.store.count_events().await.expect("count"),
        80,
        "no line lost, none doubled"
    );
    // Right after a recovery a push is stored, not refused because one write on a
    // connection cut by the outage failed a moment ago.
    let r = push_one(&app).await;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}
