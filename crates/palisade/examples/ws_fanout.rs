//! Live feed fan-out benchmark: N WebSocket clients on `/api/v1/ws` subscribed to
//! `threats`, one more that never reads (a stalled peer), then a burst of blocked
//! `/api/v1/check` requests. Reports, per delivered threat, the time from sending the
//! request that caused it to each client receiving it (p50/p99/max), what was missed,
//! whether the stalled client was cut off, and the server's RSS before and after.
//! `--batch true` opens the feed with `&batch=true` (messages waiting together come as
//! one JSON-array frame), to compare with one frame per message in the same run.
//!
//! Run against a server started with room for the clients, e.g.
//! `PALISADE_HTTP__MAX_CONNECTIONS=4096 PALISADE_RATE_LIMIT__WRITE_PER_SECOND=100000
//! PALISADE_RATE_LIMIT__INGEST_PER_SECOND=100000 palisade serve`, then
//! `cargo run --release -p palisade --example ws_fanout -- --url http://127.0.0.1:8080
//! --user admin --password … --clients 1000 --burst 50 --pid <server pid>`
//! (`scripts/bench-live.sh` does all of it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

/// Command-line options (`--name value` pairs).
struct Options {
    url: String,
    user: String,
    password: String,
    clients: usize,
    burst: usize,
    pid: Option<u32>,
    batch: bool,
}

/// Reads `--name value` pairs; a bad or unknown one is an error naming it.
fn options() -> Result<Options, String> {
    let mut o = Options {
        url: "http://127.0.0.1:8080".into(),
        user: "admin".into(),
        password: String::new(),
        clients: 1000,
        burst: 50,
        pid: None,
        batch: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let (name, value) = match pair {
            [name, value] => (name.as_str(), value.clone()),
            [name] => return Err(format!("{name} needs a value")),
            _ => continue,
        };
        let number = |v: &str| v.parse().map_err(|_| format!("{name}: not a number: {v}"));
        match name {
            "--url" => o.url = value,
            "--user" => o.user = value,
            "--password" => o.password = value,
            "--clients" => o.clients = number(&value)?,
            "--burst" => o.burst = number(&value)?,
            "--pid" => o.pid = Some(number(&value)? as u32),
            "--batch" => {
                o.batch = value
                    .parse()
                    .map_err(|_| format!("--batch: true or false, not {value}"))?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What ends a run early: a failed request or an unexpected answer, said by `main`.
type Fail = Box<dyn std::error::Error + Send + Sync>;

async fn connect(http: &reqwest::Client, o: &Options, token: &str) -> Result<Socket, Fail> {
    let ticket: serde_json::Value = http
        .post(format!("{}/api/v1/auth/ws-ticket", o.url))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let url = format!(
        "{}/api/v1/ws?ticket={}{}",
        o.url.replace("http://", "ws://"),
        ticket["ticket"].as_str().ok_or("no ticket in the answer")?,
        if o.batch { "&batch=true" } else { "" }
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    socket
        .send(Message::text(r#"{"subscribe": ["threats"]}"#))
        .await?;
    // The subscription's acknowledgement: from here on the client gets every threat.
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) if t.contains("subscribed") => break,
            Some(Ok(_)) => continue,
            other => return Err(format!("no subscription answer: {other:?}").into()),
        }
    }
    Ok(socket)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "ws_fanout: {e}\nusage: ws_fanout --url URL --user NAME --password P --clients N --burst N [--pid PID] [--batch true|false]"
            );
            return std::process::ExitCode::from(2);
        }
    };
    match run(o).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws_fanout: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(o: Options) -> Result<(), Fail> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()?;
    // Logins answer 503 until the first admin exists (created just after start).
    let mut answer = None;
    for _ in 0..100 {
        let r = http
            .post(format!("{}/api/v1/auth/login", o.url))
            .json(&serde_json::json!({"username": o.user, "password": o.password}))
            .send()
            .await?;
        if r.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let login: serde_json::Value = answer
        .ok_or("the admin was never created")?
        .error_for_status()?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .ok_or("no access token in the login answer")?
        .to_owned();
    let rss_idle = rss_kib(o.pid);

    let started = Instant::now();
    let mut sockets = Vec::with_capacity(o.clients);
    for _ in 0..o.clients {
        sockets.push(connect(&http, &o, &token).await?);
    }
    let stalled = connect(&http, &o, &token).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    let rss_connected = rss_kib(o.pid);

    // Markers → the instant their request was sent.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut readers = Vec::with_capacity(o.clients);
    for mut socket in sockets {
        let sent = sent.clone();
        let burst = o.burst;
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(burst);
            let deadline = Instant::now() + Duration::from_secs(60);
            while latencies.len() < burst {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(Some(Ok(msg))) = tokio::time::timeout(left, socket.next()).await else {
                    break;
                };
                let Message::Text(text) = msg else { continue };
                let now = Instant::now();
                // Every distinct marker in the frame is one threat delivered (a batched
                // frame holds several; a marker may repeat inside its own threat).
                let mut seen: Vec<String> = Vec::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("fanout-") {
                    let marker: String = rest[start..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    rest = &rest[start + marker.len()..];
                    if !seen.contains(&marker) {
                        seen.push(marker);
                    }
                }
                let sent = sent.lock().await;
                for marker in seen {
                    if let Some(at) = sent.get(&marker) {
                        latencies.push(now.duration_since(*at).as_secs_f64() * 1000.0);
                    }
                }
            }
            latencies
        }));
    }

    let burst_started = Instant::now();
    let mut requests = Vec::with_capacity(o.burst);
    for i in 0..o.burst {
        // Unique per run, so that two runs against one server never mix up threats.
        let marker = format!("fanout-{}x{i}", std::process::id());
        sent.lock().await.insert(marker.clone(), Instant::now());
        let request = http
            .get(format!("{}/api/v1/check", o.url))
            .bearer_auth(&token)
            .header(
                "X-Original-URI",
                format!("/item?id=1%27%20or%201%3D1--&m={marker}"),
            )
            // Another range per mode: a ban left by the previous run (behaviour
            // scenarios) must not turn this run's requests away before detection.
            .header(
                "X-Forwarded-For",
                format!(
                    "{}.{}",
                    if o.batch { "198.51.100" } else { "203.0.113" },
                    i % 250 + 1
                ),
            )
            .send();
        requests.push(tokio::spawn(request));
    }
    for r in requests {
        let _ = r.await;
    }
    let burst_secs = burst_started.elapsed().as_secs_f64();

    let mut all = Vec::new();
    let mut short = 0usize;
    for r in readers {
        let l = r.await?;
        if l.len() < o.burst {
            short += 1;
        }
        all.extend(l);
    }
    all.sort_by(f64::total_cmp);
    let rss_after = rss_kib(o.pid);

    // The stalled client: still open, or cut off by the server?
    let mut stalled = stalled;
    let mut stalled_fate = "still connected (its queue did not fill)".to_owned();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(2), stalled.next()).await {
        match msg {
            Ok(Message::Close(frame)) => {
                stalled_fate = format!(
                    "closed by the server: {}",
                    frame.map(|f| f.reason.to_string()).unwrap_or_default()
                );
                break;
            }
            Ok(_) => continue,
            Err(e) => {
                stalled_fate = format!("connection ended: {e}");
                break;
            }
        }
    }

    println!(
        "clients {} (+1 stalled), burst {} threats, frames: {}",
        o.clients,
        o.burst,
        if o.batch {
            "batched (&batch=true)"
        } else {
            "one per message"
        }
    );
    println!("connect all: {connect_secs:.2} s; burst sent in {burst_secs:.3} s");
    println!(
        "deliveries {} of {} expected; clients missing some: {short}",
        all.len(),
        o.clients * o.burst
    );
    println!(
        "latency send→receive ms: p50 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN)
    );
    println!("stalled client: {stalled_fate}");
    if let (Some(a), Some(b), Some(c)) = (rss_idle, rss_connected, rss_after) {
        println!(
            "server RSS: {} MiB idle, {} MiB with clients, {} MiB after the burst",
            a / 1024,
            b / 1024,
            c / 1024
        );
    }
    Ok(())
}
