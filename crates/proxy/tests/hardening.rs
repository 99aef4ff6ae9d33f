//! The proxy's protocol hardening over real sockets: conventional header case,
//! requests hyper's parser refuses (counted and explained), compressed bodies
//! (inspected decoded, refused when they cannot be), idle and half-sent connection
//! floods, and stalled bodies.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::any;
use common::*;
use palisade_core::metrics::registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn requests(proxy: &str, outcome: &str) -> u64 {
    registry()
        .counter(
            "palisade_proxy_requests_total",
            "Requests through the protecting proxy, by outcome.",
            &["proxy", "outcome"],
            &[proxy, outcome],
        )
        .get()
}

/// An upstream that answers with lower-case header names, as some servers write them.
async fn lowercase_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                // Echo the head the proxy sent, so the test sees its header case too.
                let body = seen;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nserver: app/1.0\r\ncontent-type: text/plain\r\nx-app-thing: 1\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn headers_keep_conventional_case_both_ways() {
    let up = lowercase_upstream().await;
    let p = proxy(&format!("http://{up}"), None, |_| {}).await;
    let (_s, answer) = exchange(
        p.addr,
        b"GET /page HTTP/1.1\r\nhost: shop\r\nuser-agent: curl/8\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 200);
    for name in [
        "Server: app/1.0",
        "Content-Type: text/plain",
        "X-App-Thing: 1",
        "Content-Length: ",
        "X-Request-Id: ",
    ] {
        assert!(
            answer.head.contains(&format!("\r\n{name}")),
            "{name} in {}",
            answer.head
        );
    }
    assert!(!answer.head.contains("\r\nserver:"), "{}", answer.head);
    let upstream_saw = String::from_utf8_lossy(&answer.body);
    for name in [
        "Host: shop",
        "User-Agent: curl/8",
        "X-Forwarded-For: 127.0.0.1",
    ] {
        assert!(upstream_saw.contains(name), "{name} in {upstream_saw}");
    }
    // The proxy's own pages too.
    let (_s, answer) = exchange(
        p.addr,
        b"GET /?id=1%27%20union%20select%20password%20from%20users-- HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 403);
    assert!(
        answer.head.contains("\r\nContent-Type: text/html"),
        "{}",
        answer.head
    );
}

#[tokio::test]
async fn requests_the_parser_refuses_are_counted_and_explained() {
    let (up, recorded) = raw_upstream().await;
    let mut p = proxy(&format!("http://{up}"), None, |c| c.name = "parser".into()).await;
    let before = requests("parser", "malformed");

    // nginx accepts raw quotes and angle brackets in the query; hyper's URI type does
    // not. The proxy refuses them deliberately, and says so.
    let (mut s, answer) = exchange(
        p.addr,
        b"GET /search?q=\"<script>alert(1)</script>\" HTTP/1.1\r\nHost: shop\r\nUser-Agent: t\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(closed(&mut s).await);
    let t = p.threat().await;
    assert_eq!(t.source, "parser");
    assert_eq!(t.decision.as_str(), "block");
    assert_eq!(t.rule_ids[0], 975100, "{t:?}");
    assert_eq!(t.evidence[0].matched, "\"<>");
    assert_eq!(
        t.uri.as_deref(),
        Some("/search?q=\"<script>alert(1)</script>\"")
    );
    assert!(
        t.rule_ids.iter().any(|r| (941000..942000).contains(r)),
        "the engine judged what could be read (XSS): {t:?}"
    );
    assert_eq!(t.client_ip, Some("127.0.0.1".parse().unwrap()));

    // A head refused for its framing (a header name with a space: some servers trim
    // it, some do not) is read back as sent and explained: 975140 with hyper's reason,
    // and the engine's 920320 naming the header.
    let (_s, answer) = exchange(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: shop\r\nBad Header: x\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 400);
    let t = p.threat().await;
    assert_eq!(t.rule_ids[0], 975140, "{t:?}");
    assert!(t.rule_ids.contains(&920320), "{t:?}");
    assert!(t.evidence.iter().any(|e| e.part == "Bad Header"), "{t:?}");
    assert_eq!(requests("parser", "malformed"), before + 2);

    // Bytes that are not an HTTP request at all are counted, not explained.
    let (_s, answer) = exchange(p.addr, b"\x16\x03\x01\x00\x05hello\r\n\r\n").await;
    assert_eq!(answer.status, 400);
    assert_eq!(requests("parser", "malformed"), before + 3);
    assert!(
        p.threats.try_recv().is_err(),
        "no threat for bytes that are not a request head"
    );
    assert!(
        recorded.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );

    // A refused head after a good request on the same keep-alive connection.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"GET /fine HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut s).await.status, 200);
    s.write_all(b"GET /a`b<c> HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut s).await.status, 400);
    let t = p.threat().await;
    assert_eq!(t.evidence[0].matched, "`<>");
    assert_eq!(requests("parser", "malformed"), before + 4);
}

/// An upstream that counts requests and echoes the body it got, byte for byte.
async fn echo_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .fallback(any(
            |State(hits): State<Arc<AtomicUsize>>, headers: HeaderMap, body: Bytes| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let coding = headers
                    .get("content-encoding")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                ([("x-seen-encoding", coding)], body)
            },
        ))
        .with_state(hits.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
    }
    out
}

async fn post(
    addr: SocketAddr,
    coding: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{addr}/api/comments"))
        .header("Content-Type", content_type)
        .header("Content-Encoding", coding)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn compressed_bodies_are_inspected_decoded_and_forwarded_as_sent() {
    let (up, hits) = echo_upstream().await;
    let mut p = proxy(&format!("http://{up}"), None, |_| {}).await;
    let json = br#"{"comment":"1' UNION SELECT password FROM users--","html":"<script>alert(document.cookie)</script>"}"#;
    let form = b"user=admin&pass=x%27%20UNION%20SELECT%20password%20FROM%20users--";
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("gzip", "application/json", gzip(json)),
        ("deflate", "application/json", deflate(json)),
        ("br", "application/json", brotli(json)),
        (
            "gzip, br",
            "application/x-www-form-urlencoded",
            brotli(&gzip(form)),
        ),
        ("x-gzip", "application/x-www-form-urlencoded", gzip(form)),
    ];
    for (coding, content_type, body) in cases {
        let resp = post(p.addr, coding, content_type, body).await;
        assert_eq!(resp.status(), 403, "{coding} {content_type}");
        let t = p.threat().await;
        assert!(
            t.evidence.iter().any(|e| e.location.contains("body")),
            "{coding}: {:?}",
            t.evidence
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no attack reached the upstream"
    );

    // A benign compressed body reaches the upstream exactly as the client sent it.
    let benign = gzip(br#"{"comment":"Great shoes, would buy again!","stars":5}"#);
    let resp = post(p.addr, "gzip", "application/json", benign.clone()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-seen-encoding"], "gzip");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), benign);
}

#[tokio::test]
async fn bodies_that_cannot_be_inspected_are_refused() {
    let (up, hits) = echo_upstream().await;
    let mut p = proxy(&format!("http://{up}"), None, |c| {
        c.name = "codings".into();
        c.max_body_bytes = 8 * 1024 * 1024;
    })
    .await;

    // A bomb: 8 MiB of zeros in about 8 KiB, far past 100:1.
    let bomb = gzip(&vec![0u8; 8 * 1024 * 1024]);
    let resp = post(p.addr, "gzip", "application/json", bomb).await;
    assert_eq!(resp.status(), 413);
    let t = p.threat().await;
    assert_eq!(t.rule_ids[0], 975120, "{t:?}");

    // Not the gzip it claims to be.
    let resp = post(
        p.addr,
        "gzip",
        "application/json",
        b"{\"plain\":true}".to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 415);
    let t = p.threat().await;
    assert_eq!(t.rule_ids[0], 975110, "{t:?}");
    assert_eq!(t.evidence[0].decoded_value, "content-encoding: gzip");

    // A coding the proxy does not decode: refused and counted, not a threat.
    let before = requests("codings", "unsupported_encoding");
    let resp = post(p.addr, "zstd", "application/json", b"(zstd bytes)".to_vec()).await;
    assert_eq!(resp.status(), 415);
    assert_eq!(requests("codings", "unsupported_encoding"), before + 1);
    assert!(p.threats.try_recv().is_err());
    // ...unless its head is an attack, which is blocked as one.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/?id=1%27%20or%20%271%27=%271", p.addr))
        .header("Content-Encoding", "zstd")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(p.threat().await.decision.as_str(), "block");
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    // A decoded body over the inspection limit is too large, as a plain one would be;
    // inspecting prefixes instead, its decoded prefix is inspected.
    let big_form = {
        let mut f = b"q=1%27%20UNION%20SELECT%20password%20FROM%20users--&pad=".to_vec();
        f.extend(
            (0..300_000u32)
                .flat_map(|i| format!("{:x}", i.wrapping_mul(2_654_435_761)).into_bytes()),
        );
        gzip(&f)
    };
    let p = proxy(&format!("http://{up}"), None, |c| {
        c.max_body_bytes = 64 * 1024
    })
    .await;
    let resp = post(
        p.addr,
        "gzip",
        "application/x-www-form-urlencoded",
        big_form.clone(),
    )
    .await;
    assert_eq!(resp.status(), 413);
    let p = proxy(&format!("http://{up}"), None, |c| {
        c.max_body_bytes = 64 * 1024;
        c.oversize = palisade_proxy::OversizePolicy::InspectPrefix;
    })
    .await;
    let resp = post(
        p.addr,
        "gzip",
        "application/x-www-form-urlencoded",
        big_form,
    )
    .await;
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn a_flood_of_idle_and_half_sent_connections_does_not_keep_a_new_client_out() {
    let (up, _) = raw_upstream().await;
    // Without shedding, a new client would wait for the header timeout: an hour.
    let p = proxy(&format!("http://{up}"), None, |c| {
        c.name = "flooded".into();
        c.max_connections = 16;
        c.client_timeout = Duration::from_secs(3600);
    })
    .await;
    let mut flood = Vec::new();
    for i in 0..64 {
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /slowloris HTTP/1.1\r\nHost: x\r\nX-A: ")
                .await
                .unwrap();
        }
        flood.push(s);
    }
    // A keep-alive client that finished its request is idle too.
    let mut kept = TcpStream::connect(p.addr).await.unwrap();
    kept.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    let (_s, answer) = exchange(p.addr, b"GET /new-client HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"raw saw /new-client\n");
    let shed = registry()
        .counter(
            "palisade_proxy_connections_shed_total",
            "Idle client connections closed to make room for a new one at max_connections.",
            &["proxy"],
            &["flooded"],
        )
        .get();
    assert!(shed >= 49, "the flood made room: {shed} shed");
    // The oldest idle connections were the ones closed.
    let mut closed_count = 0;
    for s in flood.iter_mut().take(8) {
        if closed(s).await {
            closed_count += 1;
        }
    }
    assert_eq!(closed_count, 8);
}

#[tokio::test]
async fn idle_keep_alive_and_stalled_bodies_are_bounded_by_the_client_timeout() {
    let (up, _) = echo_upstream().await;
    let p = proxy(&format!("http://{up}"), None, |c| {
        c.client_timeout = Duration::from_millis(500);
        c.response_timeout = Duration::from_secs(3600);
        c.max_body_bytes = 1024;
        c.oversize = palisade_proxy::OversizePolicy::InspectPrefix;
    })
    .await;
    // Idle keep-alive: closed after the client timeout.
    let (mut s, answer) = exchange(p.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer.status, 200);
    assert!(
        closed(&mut s).await,
        "an idle keep-alive connection is closed"
    );
    // Half a head: closed too.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    assert!(closed(&mut s).await, "a half-sent head is closed");
    // A body streamed past the inspection limit that then stalls: the upstream
    // exchange is cut instead of waiting for the (hour-long) response timeout.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&vec![b'a'; 4096]).await.unwrap();
    let answer = read_answer(&mut s).await;
    assert_eq!(answer.status, 502, "{}", answer.head);
}
