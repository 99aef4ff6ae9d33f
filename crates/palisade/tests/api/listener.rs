//! The API listener under a connection flood (finding 6 of the penetration test:
//! half-sent requests stayed open forever, and 260 idle connections made both the API
//! and the proxy unreachable).

use std::time::{Duration, Instant};

use palisade_core::duration::Span;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_with, test_settings};

/// Reads until the server closes the connection (or `within` passes); true if closed.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn half_sent_and_idle_connections_are_closed_and_the_cap_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir, None);
    settings.api.max_connections = 8;
    settings.api.header_timeout = Span::from_millis(600);
    settings.api.idle_timeout = Span::from_millis(900);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    let addr = app.address.trim_start_matches("http://").to_owned();

    // A half-sent request head: closed after the header timeout.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut slow, Duration::from_secs(10)).await,
        "a half-sent request is not kept open"
    );

    // An idle keep-alive connection after a request: closed after the idle timeout.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_by_server(&mut idle, Duration::from_secs(10)).await,
        "an idle keep-alive connection is not kept open"
    );

    // A flood of silent connections over the cap: the extra ones get 503 at once.
    let mut flood = Vec::new();
    for _ in 0..8 {
        flood.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");

    // Once the flood times out, a normal client is served again.
    let mut served = false;
    for _ in 0..100 {
        if let Ok(r) = app.client.get(app.url("/livez")).send().await
            && r.status() == 200
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served,
        "the API answers again once the silent connections are gone"
    );
    let (_, metrics) = {
        app.login_admin().await;
        app.get_text("/metrics").await
    };
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("palisade_http_connections_refused_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
    drop(flood);
    app.stop().await;
}
