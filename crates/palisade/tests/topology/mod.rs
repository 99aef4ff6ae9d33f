//! Helpers for the scale-out tests: real `palisade serve --role …` processes on one
//! PostgreSQL schema, logged in over HTTP, watched over the WebSocket.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// The bootstrap admin's password on every node.
pub const PASSWORD: &str = "Topology-Test-Password-1";
/// The JWT key every node shares (a token from one API node is valid on another).
pub const JWT_KEY: &str = "topology-test-jwt-key-0123456789abcdef";

/// A WebSocket to an API node.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running node.
pub struct Node {
    pub child: Child,
    pub addr: String,
}

impl Node {
    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; true when it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts `palisade serve --role ROLE` with its own data directory.
pub fn start(role: &str, data: &Path, config: Option<&Path>, url: &str, extra: &[&str]) -> Node {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(["serve", "--role", role, "--listen", &addr])
        .arg("--data-dir")
        .arg(data)
        .arg("--database-url")
        .arg(url)
        .args(extra)
        .env("PALISADE_LOG", "warn")
        .env("PALISADE_ADMIN_PASSWORD", PASSWORD)
        .env("PALISADE_JWT_KEY", JWT_KEY)
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG")
        .env_remove("PALISADE_ROLE")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    Node {
        child: cmd.spawn().expect("start palisade"),
        addr,
    }
}

/// Waits until the node answers `/livez`.
pub async fn wait_live(node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(node.url("/livez")).await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{} never came up", node.addr);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The test database URL, or `None` (skipped) with `PALISADE_SKIP_POSTGRES=1`.
pub fn base_url() -> Option<String> {
    if std::env::var("PALISADE_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return None;
    }
    Some(
        std::env::var("PALISADE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
    )
}

/// A fresh schema: (admin client, URL confined to it, schema name).
pub async fn schema(base: &str, prefix: &str) -> (tokio_postgres::Client, String, String) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!("{prefix}_{}_{}", std::process::id(), stamp % 1_000_000_000);
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must be reachable for this test");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    (client, url, schema)
}

/// Logs in as the bootstrap admin (waiting for it to exist); returns the token.
pub async fn login(node: &Node) -> String {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = http
            .post(node.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == 200
        {
            let body: serde_json::Value = r.json().await.expect("login body");
            return body["access_token"].as_str().expect("token").to_owned();
        }
        assert!(Instant::now() < deadline, "cannot log in on {}", node.addr);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A WebSocket on `node` subscribed to `topics`.
pub async fn watch(node: &Node, token: &str, topics: &[&str]) -> Socket {
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/auth/ws-ticket"))
        .bearer_auth(token)
        .send()
        .await
        .expect("ws-ticket");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("ticket body");
    let ticket = body["ticket"].as_str().expect("ticket");
    let url = format!("ws://{}/api/v1/ws?ticket={ticket}", node.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    socket
        .send(Message::text(
            serde_json::json!({ "subscribe": topics }).to_string(),
        ))
        .await
        .expect("subscribe");
    socket
}

/// The first message of `topic` for which `pred` holds, within `wait`.
pub async fn until(
    socket: &mut Socket,
    topic: &str,
    wait: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let m: serde_json::Value = serde_json::from_str(&t).ok()?;
                if m["topic"] == topic && pred(&m) {
                    return Some(m);
                }
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}
