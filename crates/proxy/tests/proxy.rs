//! The protecting proxy driven over real sockets: a real upstream (axum), real client
//! connections, and the real detection engine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{any, get};
use palisade_core::ShutdownTrigger;
use palisade_core::threat::Threat;
use palisade_detect::EngineConfig;
use palisade_pipeline::Guard;
use palisade_pipeline::detection::{Detection, DetectionTuning, Mode};
use palisade_pipeline::recorder::ThreatRecorder;
use palisade_proxy::{BoundProxy, OversizePolicy, ProxyConfig, ProxyContext, Upstream};
use palisade_vuln::SoftwareObserver;
use palisade_vuln::observe::Observation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

async fn echo(
    State(hits): State<Hits>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<serde_json::Value> {
    hits.0.fetch_add(1, Ordering::SeqCst);
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into()))
        .collect();
    axum::Json(serde_json::json!({
        "method": method.as_str(),
        "uri": uri.to_string(),
        "headers": headers,
        "body_len": body.len(),
        "body": String::from_utf8_lossy(&body[..body.len().min(200)]),
    }))
}

async fn upstream() -> (SocketAddr, Hits) {
    let hits = Hits::default();
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 5 * 1024 * 1024] }))
        .fallback(any(echo))
        .with_state(hits.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

struct Harness {
    addr: SocketAddr,
    threats: mpsc::Receiver<Threat>,
    detection: Arc<Detection>,
    software: mpsc::Receiver<Observation>,
    _stop: ShutdownTrigger,
}

async fn proxy_to(upstream: &str, tune: impl FnOnce(&mut ProxyConfig)) -> Harness {
    let detection = Arc::new(Detection::builtin(EngineConfig::default(), Mode::Block).unwrap());
    let (threats, rx) = ThreatRecorder::channel(100);
    let mut config = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(upstream).unwrap(),
    );
    config.name = "shop".into();
    tune(&mut config);
    let (observer, software) = SoftwareObserver::channel(1, Duration::from_secs(600));
    let bound = BoundProxy::bind(
        config,
        ProxyContext {
            software: Some(observer),
            ..ProxyContext::new(Guard::new(detection.clone(), None, threats))
        },
    )
    .await
    .unwrap();
    let addr = bound.local_addr().unwrap();
    let stop = ShutdownTrigger::new();
    tokio::spawn(bound.serve(stop.subscribe()));
    Harness {
        addr,
        threats: rx,
        detection,
        software,
        _stop: stop,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn benign_requests_reach_the_upstream_with_forwarding_headers() {
    let (up, hits) = upstream().await;
    let h = proxy_to(&format!("http://{up}"), |_| {}).await;
    let resp = client()
        .get(format!("http://{}/shop/item?id=42&q=blue+shoes", h.addr))
        .header("Host", "shop.example")
        .header("Connection", "keep-alive, X-Hop")
        .header("X-Hop", "secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let seen: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(seen["uri"], "/shop/item?id=42&q=blue+shoes");
    let headers = &seen["headers"];
    assert_eq!(headers["host"], "shop.example");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "shop.example");
    assert!(headers.get("x-hop").is_none(), "{headers}");
    assert!(headers["x-request-id"].as_str().is_some());
    assert_eq!(hits.0.load(Ordering::SeqCst), 1);

    // Keep-alive: many requests over the client's pooled connection.
    let c = client();
    for i in 0..20 {
        let r = c
            .post(format!("http://{}/form", h.addr))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("name=Ana+Garcia&n={i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let seen: serde_json::Value = r.json().await.unwrap();
        assert_eq!(seen["body"], format!("name=Ana+Garcia&n={i}"));
    }
}

#[tokio::test]
async fn attacks_in_the_query_and_in_the_body_are_blocked_before_the_upstream() {
    let (up, hits) = upstream().await;
    let mut h = proxy_to(&format!("http://{up}"), |_| {}).await;
    let resp = client()
        .get(format!(
            "http://{}/item?id=1%27%20OR%20%271%27=%271",
            h.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let page = resp.text().await.unwrap();
    assert!(page.contains(&id), "{page}");
    // (The request id is random hex and may itself contain "942".)
    assert!(
        !page.replace(&id, "").contains("942"),
        "the page must not name rules: {page}"
    );

    // A body attack: exactly what auth_request cannot see.
    let resp = client()
        .post(format!("http://{}/login", h.addr))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("user=admin&pass=x%27%20UNION%20SELECT%20password%20FROM%20users--")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = client()
        .post(format!("http://{}/api", h.addr))
        .header("Content-Type", "application/json")
        .body(r#"{"comment":{"text":"<script>alert(document.cookie)</script>"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        hits.0.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );

    let first = tokio::time::timeout(Duration::from_secs(2), h.threats.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.source, "shop");
    assert_eq!(first.decision.as_str(), "block");
    assert_eq!(first.client_ip, Some("127.0.0.1".parse().unwrap()));
    assert!(first.uri.as_deref().unwrap().starts_with("/item?id=1"));
    let second = h.threats.recv().await.unwrap();
    assert!(
        second
            .evidence
            .iter()
            .any(|e| e.location.contains("body") && e.part == "pass"),
        "{:?}",
        second.evidence
    );
}

#[tokio::test]
async fn detect_mode_lets_attacks_through_and_still_records_them() {
    let (up, hits) = upstream().await;
    let mut h = proxy_to(&format!("http://{up}"), |_| {}).await;
    h.detection
        .apply(DetectionTuning {
            mode: Mode::Detect,
            paranoia: 1,
            threshold: 5,
        })
        .unwrap();
    let resp = client()
        .get(format!("http://{}/?file=../../../../etc/passwd", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(hits.0.load(Ordering::SeqCst), 1);
    let t = h.threats.recv().await.unwrap();
    assert_eq!(t.decision.as_str(), "detect");
}

#[tokio::test]
async fn oversized_bodies_follow_the_configured_policy() {
    let (up, hits) = upstream().await;
    let big = "a=".to_owned() + &"b".repeat(200_000);
    let h = proxy_to(&format!("http://{up}"), |c| c.max_body_bytes = 64 * 1024).await;
    let resp = client()
        .post(format!("http://{}/upload", h.addr))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(hits.0.load(Ordering::SeqCst), 0);

    let h = proxy_to(&format!("http://{up}"), |c| {
        c.max_body_bytes = 64 * 1024;
        c.oversize = OversizePolicy::InspectPrefix;
    })
    .await;
    let resp = client()
        .post(format!("http://{}/upload", h.addr))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(seen["body_len"], big.len());
    // The inspected prefix is still inspected.
    let attack = "a=1%27%20OR%201=1--&pad=".to_owned() + &"b".repeat(200_000);
    let resp = client()
        .post(format!("http://{}/upload", h.addr))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(attack)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn upstream_failures_become_502_and_504_pages() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let h = proxy_to(&format!("http://{dead_addr}"), |_| {}).await;
    let resp = client()
        .get(format!("http://{}/", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert!(resp.headers().contains_key("x-request-id"));

    let (up, _) = upstream().await;
    let h = proxy_to(&format!("http://{up}"), |c| {
        c.response_timeout = Duration::from_millis(300)
    })
    .await;
    let resp = client()
        .get(format!("http://{}/slow", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
}

#[tokio::test]
async fn large_responses_stream_back_intact() {
    let (up, _) = upstream().await;
    let h = proxy_to(&format!("http://{up}"), |_| {}).await;
    let body = client()
        .get(format!("http://{}/big", h.addr))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 5 * 1024 * 1024);
    assert!(body.iter().all(|b| *b == b'x'));
}

/// A raw upstream that switches protocols and then echoes bytes, like a WebSocket
/// echo server without the framing.
async fn upgrading_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                assert!(head.contains("upgrade: websocket"), "{head}");
                s.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                )
                .await
                .unwrap();
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn websocket_upgrades_are_tunnelled_and_their_handshake_inspected() {
    let up = upgrading_upstream().await;
    let h = proxy_to(&format!("http://{up}"), |_| {}).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"hello through the tunnel").await.unwrap();
    let mut got = vec![0u8; 24];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"hello through the tunnel");

    // A handshake carrying an attack never reaches the upstream.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(
        b"GET /chat?room=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nHost: x\r\n\
          Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 12];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 403");
}

/// An upstream that names its software, as real ones do.
async fn talkative_upstream() -> SocketAddr {
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [
                        ("server", "Apache/2.4.49 (Unix)"),
                        ("x-powered-by", "PHP/8.1.28"),
                    ],
                    "hello",
                )
            }),
        )
        .route(
            "/other",
            get(|| async { ([("server", "nginx/1.20.0")], "other") }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn the_upstreams_software_is_handed_over_without_holding_answers() {
    let up = talkative_upstream().await;
    let mut h = proxy_to(&format!("http://{up}"), |_| {}).await;
    let c = client();
    for _ in 0..5 {
        let r = c.get(format!("http://{}/", h.addr)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["server"], "Apache/2.4.49 (Unix)");
        assert_eq!(r.text().await.unwrap(), "hello");
    }
    // The queue (one slot) is full: the answer still flows, the new sighting is dropped.
    let r = c
        .get(format!("http://{}/other", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "other");
    match h.software.try_recv() {
        Ok(Observation::Http {
            asset,
            server,
            powered_by,
        }) => {
            assert_eq!(asset, up.to_string(), "the asset is the upstream");
            assert_eq!(server.as_deref(), Some("Apache/2.4.49 (Unix)"));
            assert_eq!(powered_by.as_deref(), Some("PHP/8.1.28"));
        }
        other => panic!("expected the upstream's software, got {other:?}"),
    }
    assert!(
        h.software.try_recv().is_err(),
        "repeats were skipped and the sighting that found the queue full was dropped"
    );
    // With room again, the dropped sighting is handed over when next seen.
    c.get(format!("http://{}/other", h.addr))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        h.software.try_recv(),
        Ok(Observation::Http { server: Some(s), .. }) if s == "nginx/1.20.0"
    ));
}

/// The upstream's answers teach the baselines' status mix: an endpoint the proxy saw
/// answer 200 twenty times then has a 5xx judged as a deviation (on a log line, where
/// the status comes with the request), and an endpoint that always fails does not.
#[tokio::test]
async fn upstream_statuses_feed_the_baselines_status_mix() {
    use palisade_models::{Baselines, BaselinesConfig};
    let app = Router::new()
        .route("/orders", get(|| async { "ok" }))
        .route(
            "/broken",
            get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let detection = Arc::new(Detection::builtin(EngineConfig::default(), Mode::Block).unwrap());
    let (threats, _rx) = ThreatRecorder::channel(100);
    let baselines = Arc::new(Baselines::new(BaselinesConfig {
        warmup: 10,
        ..BaselinesConfig::default()
    }));
    let guard = Guard::new(detection, None, threats).with_baselines(baselines.clone());
    let config = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(&format!("http://{up}")).unwrap(),
    );
    let bound = BoundProxy::bind(config, ProxyContext::new(guard))
        .await
        .unwrap();
    let addr = bound.local_addr().unwrap();
    let stop = ShutdownTrigger::new();
    tokio::spawn(bound.serve(stop.subscribe()));
    let c = client();
    for i in 0..20 {
        for path in ["orders", "broken"] {
            let r = c
                .get(format!("http://{addr}/{path}?page={}", i % 3))
                .header("Host", "shop.example")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), if path == "orders" { 200 } else { 503 });
        }
    }
    let request = |path: &str| palisade_detect::HttpRequest {
        method: "GET".into(),
        uri: format!("/{path}?page=1"),
        protocol: "HTTP/1.1".into(),
        headers: vec![("Host".into(), "shop.example".into())],
        body: Vec::new(),
        client_ip: None,
    };
    let o = baselines.judge(&request("orders"), Some(500));
    let status: Vec<_> = o.deviations.iter().filter(|d| d.kind == "status").collect();
    assert_eq!(status.len(), 1, "{o:?}");
    assert!(
        status[0]
            .explanation
            .contains("answered 500; 0 of 20 earlier answers were 5xx"),
        "{o:?}"
    );
    let o = baselines.judge(&request("broken"), Some(503));
    assert!(
        o.deviations.iter().all(|d| d.kind != "status"),
        "20 of 20 answers were 5xx there: {o:?}"
    );
    let saved = baselines.snapshot().changed;
    let orders = saved
        .iter()
        .find(|s| s.endpoint.ends_with("GET /orders"))
        .expect("orders learnt");
    let profile: serde_json::Value = serde_json::from_str(&orders.profile).unwrap();
    assert_eq!(profile["status"], serde_json::json!([0, 20, 0, 0, 0]));
    drop(stop);
}
