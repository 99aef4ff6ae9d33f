//! Write throughput of both backends, run by hand:
//!
//! ```text
//! cargo run --release -p palisade-store --example store_bench [-- EVENTS BATCH]
//! ```
//!
//! Writes EVENTS (default 200,000) generated HTTP events in batches of BATCH (default
//! 5,000) to a fresh SQLite file and to a fresh schema in the PostgreSQL database named
//! by `PALISADE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`;
//! skipped with `PALISADE_SKIP_POSTGRES=1`), then times a few indexed queries.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use palisade_core::{Checkpoint, Event, EventKind, Timestamp};
use palisade_store::postgres::PgStore;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{EventQuery, IngestBatch, SharedStore, StatusFilter};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A small deterministic generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = (self.next() % items.len() as u64) as usize;
        items.get(i).copied().unwrap_or_default()
    }
}

fn batches(total: usize, batch: usize) -> Vec<IngestBatch> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0 = Timestamp::now().as_micros() - 86_400_000_000;
    let methods = ["GET", "GET", "GET", "POST", "HEAD", "PUT"];
    let paths = [
        "/",
        "/index.html",
        "/api/v1/users",
        "/api/v1/orders",
        "/static/app.js",
        "/static/style.css",
        "/wp-login.php",
        "/.env",
        "/login",
        "/search",
    ];
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
        "curl/8.5.0",
        "sqlmap/1.7",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
    ];
    let statuses = [200u16, 200, 200, 304, 404, 500, 301, 403];
    let hosts = ["example.org", "api.example.org", "static.example.org"];
    let mut out = Vec::new();
    let mut n = 0usize;
    while n < total {
        let size = batch.min(total - n);
        let events = (0..size)
            .map(|i| {
                let k = n + i;
                let ip = format!(
                    "10.{}.{}.{}",
                    rng.next() % 4,
                    rng.next() % 64,
                    rng.next() % 250
                );
                Event {
                    ts: Timestamp(t0 + (k as i64) * 400),
                    kind: EventKind::Http,
                    source: "access.log".into(),
                    client_ip: ip.parse().ok(),
                    host: Some(rng.pick(&hosts).into()),
                    method: Some(rng.pick(&methods).into()),
                    path: Some(format!("{}/{}", rng.pick(&paths), rng.next() % 1000)),
                    query: k
                        .is_multiple_of(3)
                        .then(|| format!("id={}&page={}", k, k % 7)),
                    protocol: Some("HTTP/1.1".into()),
                    status: statuses.get((rng.next() % 8) as usize).copied(),
                    bytes: Some(rng.next() % 100_000),
                    referer: Some("https://example.org/".into()),
                    user_agent: Some(rng.pick(&agents).into()),
                    user: None,
                    duration_us: Some(rng.next() % 2_000_000),
                    message: None,
                    verdict: None,
                    extra: Vec::new(),
                }
            })
            .collect();
        n += size;
        out.push(IngestBatch {
            events,
            dead_letters: Vec::new(),
            checkpoint: Some(Checkpoint {
                source: "access.log".into(),
                file_id: "1:2".into(),
                offset: n as u64 * 200,
                line_no: n as u64,
                fingerprint: 42,
            }),
            idempotency_key: None,
        });
    }
    out
}

async fn run(name: &str, store: SharedStore, total: usize, batch: usize) -> Result<(), BoxError> {
    store.migrate().await?;
    let work = batches(total, batch);
    let start = Instant::now();
    for b in work {
        store.write_batch(b).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let stored = store.count_events().await?;
    println!(
        "{name:8} wrote {stored} events in {secs:.2}s: {:.0} events/s (batches of {batch})",
        stored as f64 / secs
    );
    let queries = [
        ("newest 50", EventQuery::default()),
        (
            "client 10.1.0.0/16",
            EventQuery {
                client: "10.1.0.0/16".parse().ok(),
                ..EventQuery::default()
            },
        ),
        (
            "status 5xx",
            EventQuery {
                status: Some(StatusFilter::Class(5)),
                ..EventQuery::default()
            },
        ),
        (
            "status 404",
            EventQuery {
                status: Some(StatusFilter::Exact(404)),
                ..EventQuery::default()
            },
        ),
        (
            "path /wp-login",
            EventQuery {
                path_prefix: Some("/wp-login".into()),
                ..EventQuery::default()
            },
        ),
        (
            "text sqlmap",
            EventQuery {
                text: Some("SQLMAP".into()),
                ..EventQuery::default()
            },
        ),
        (
            "rare text",
            EventQuery {
                text: Some("no-such-thing".into()),
                ..EventQuery::default()
            },
        ),
    ];
    for (label, q) in queries {
        let q = EventQuery { limit: 50, ..q };
        let start = Instant::now();
        let page = store.query_events(&q).await?;
        println!(
            "{name:8}   {label:20} {:>3} rows in {:.2} ms",
            page.items.len(),
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let batch: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5_000);

    let dir = tempfile::tempdir()?;
    let sqlite = SqliteStore::open(&dir.path().join("bench.db"))?;
    run("sqlite", Arc::new(sqlite), total, batch).await?;

    if std::env::var("PALISADE_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    let base = std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let schema = format!("bench_{}_{nanos}", std::process::id());
    let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    let pg = PgStore::connect_lazy(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))?;
    let result = run("postgres", Arc::new(pg), total, batch).await;
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await?;
    result
}
