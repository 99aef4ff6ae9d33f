//! Request smuggling through the upgrade path (issue 19, finding 1), against upstreams
//! that frame differently: a raw socket server that records the bytes it receives,
//! nginx (reads and discards an announced body after answering) and Node's `http`
//! (waits for the announced body before answering).
//!
//! Before the fix an upgrade request with a body was forwarded with its
//! `Content-Length` but without its body, over a pooled connection that went back to
//! the pool: the upstream then took the next client's request as that body.

mod common;

use std::time::Duration;

use common::*;

/// A WebSocket handshake announcing a 29-byte body that is itself a request line.
const UPGRADE_WITH_BODY: &[u8] = b"POST /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
Upgrade: websocket\r\nContent-Length: 29\r\n\r\nGET /smuggled HTTP/1.1\r\nX: y";

/// The same handshake with a chunked body.
const UPGRADE_CHUNKED: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
Upgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

/// A handshake without a body.
const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

const SECOND_CLIENT: &[u8] = b"GET /second-client HTTP/1.1\r\nHost: x\r\n\r\n";

/// The attack and an unrelated client after it, through a proxy in front of
/// `upstream`: the handshake with a body is refused (400, connection closed, a threat
/// recorded) and the next client gets its own answer, `"<who> saw /second-client"`.
async fn refused_and_the_next_client_is_unaffected(upstream: &str, who: &str) {
    let mut p = proxy(upstream, None, |_| {}).await;
    for attack in [UPGRADE_WITH_BODY, UPGRADE_CHUNKED] {
        let (mut a, answer) = exchange(p.addr, attack).await;
        assert_eq!(answer.status, 400, "{}", answer.head);
        assert!(
            closed(&mut a).await,
            "the connection is closed after the refusal"
        );
        let t = p.threat().await;
        assert_eq!(t.rule_ids[0], 975130, "{t:?}");
        assert_eq!(t.decision.as_str(), "block");
        assert_eq!(t.source, "shop");

        let (_b, answer) = exchange(p.addr, SECOND_CLIENT).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            String::from_utf8_lossy(&answer.body),
            format!("{who} saw /second-client\n")
        );
    }
}

#[tokio::test]
async fn raw_upstream_never_sees_an_upgrade_body_nor_a_reused_upgrade_connection() {
    let (up, recorded) = raw_upstream().await;
    refused_and_the_next_client_is_unaffected(&format!("http://{up}"), "raw").await;
    let seen = recorded.lock().unwrap().concat();
    let seen = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    assert!(
        !seen.contains("/chat"),
        "a refused handshake reached the upstream: {seen}"
    );
    assert!(!seen.contains("smuggled"), "{seen}");

    // A handshake without a body goes over a connection of its own; when the upstream
    // does not switch protocols, that connection is not reused for the next client.
    let (up, recorded) = raw_upstream().await;
    let p = proxy(&format!("http://{up}"), None, |_| {}).await;
    let (_a, answer) = exchange(p.addr, UPGRADE).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"raw saw /chat\n");
    for _ in 0..3 {
        let (_b, answer) = exchange(p.addr, SECOND_CLIENT).await;
        assert_eq!(answer.body, b"raw saw /second-client\n");
    }
    let connections = recorded.lock().unwrap().clone();
    let with_chat: Vec<String> = connections
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .filter(|c| c.contains("/chat"))
        .collect();
    assert_eq!(with_chat.len(), 1, "{connections:?}");
    let handshake = &with_chat[0];
    eprintln!("the upstream's connection for the handshake carried:\n{handshake}");
    assert!(
        !handshake.contains("/second-client"),
        "the handshake's connection was reused: {handshake}"
    );
    let lower = handshake.to_ascii_lowercase();
    assert!(!lower.contains("content-length"), "{handshake}");
    assert!(!lower.contains("transfer-encoding"), "{handshake}");
    assert!(
        handshake.contains("Upgrade: websocket"),
        "title case: {handshake}"
    );
}

#[tokio::test]
async fn nginx_upstream_is_not_desynchronised() {
    let dir = tempfile::tempdir().unwrap();
    let Some((port, nginx)) = nginx_upstream(dir.path()).await else {
        return;
    };
    refused_and_the_next_client_is_unaffected(&format!("http://127.0.0.1:{port}"), "nginx").await;
    // The bodiless handshake nginx answers with 200, then ordinary requests.
    let p = proxy(&format!("http://127.0.0.1:{port}"), None, |_| {}).await;
    let (_a, answer) = exchange(p.addr, UPGRADE).await;
    assert_eq!(answer.body, b"nginx saw /chat\n");
    let (_b, answer) = exchange(p.addr, SECOND_CLIENT).await;
    assert_eq!(answer.body, b"nginx saw /second-client\n");

    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_default();
    assert!(!log.contains("smuggled"), "{log}");
    assert!(!log.contains("POST /chat"), "{log}");
    drop(nginx);
    assert!(port_closed(port).await, "nginx left nothing listening");
}

#[tokio::test]
async fn node_upstream_is_not_desynchronised() {
    let (port, node) = node_upstream().await;
    refused_and_the_next_client_is_unaffected(&format!("http://127.0.0.1:{port}"), "node").await;
    let p = proxy(&format!("http://127.0.0.1:{port}"), None, |c| {
        c.response_timeout = Duration::from_secs(10)
    })
    .await;
    let (_a, answer) = exchange(p.addr, UPGRADE).await;
    assert_eq!(answer.body, b"node saw /chat\n");
    let (_b, answer) = exchange(p.addr, SECOND_CLIENT).await;
    assert_eq!(answer.body, b"node saw /second-client\n");
    let (_c, answer) = exchange(p.addr, b"GET /__seen HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let seen: Vec<String> = serde_json::from_slice(&answer.body).unwrap();
    assert!(!seen.iter().any(|s| s.contains("smuggled")), "{seen:?}");
    assert!(
        !seen.iter().any(|s| s.starts_with("POST /chat")),
        "{seen:?}"
    );
    drop(node);
    assert!(port_closed(port).await);
}
