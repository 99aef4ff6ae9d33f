//! Analytics latency on a large store, run by `scripts/bench-analytics.sh`:
//!
//! ```text
//! cargo run --release -p palisade-analytics --example analytics_bench -- sqlite 10000000 /tmp/bench.db
//! cargo run --release -p palisade-analytics --example analytics_bench -- postgres 10000000
//! ```
//!
//! 1. Generates EVENTS events spread over the last 30 days straight in SQL (one
//!    `INSERT … SELECT` with the secondary indexes dropped, then rebuilt), with a
//!    realistic skew: 30% of the traffic from 50 addresses, 20,000 others, 2,000 paths,
//!    2% auth events, 4xx/5xx/3xx mixed in; and a threat (with its rules) for 1% of
//!    them.
//! 2. Rolls everything up (the worker's catch-up after an import) and computes the
//!    hourly top keys, timed.
//! 3. Times each analytics query 30 times over periods ending at random minutes of the
//!    last 6 hours, and checks the 30-day total against `count(*)` (timed too).
//! 4. Measures what the roll-up costs ingest: 200,000 events written through the store
//!    alone, then with a roll-up catch-up every second beside them (the worker's
//!    default is every 10 s).
//! 5. Deletes everything it made (the SQLite file, the PostgreSQL schema).
//!
//! With `PALISADE_BENCH_KEEP` set it stops after step 2 and keeps the store (used by
//! `scripts/bench-dashboard.sh … generated` to load the dashboard over 10M events).
//!
//! PostgreSQL: `PALISADE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), schema `bench_analytics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_analytics::query::{self, Metric, TimeseriesQuery, TopBy, TopListQuery};
use palisade_core::{Event, EventKind, Timestamp};
use palisade_store::postgres::PgStore;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{IngestBatch, SharedStore, Width};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const DAY: i64 = 86_400_000_000;
const SECONDARY: &[(&str, &str)] = &[
    ("events_ts", "ts"),
    ("events_client_ip", "client_ip, ts"),
    ("events_status", "status, ts"),
    ("events_method", "method, ts"),
    ("events_host", "host, ts"),
    ("events_method_status_path", "method, status, path, ts"),
];

/// Raw access to the database behind the store, for the generator.
enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres(tokio_postgres::Client),
}

impl Raw {
    async fn exec(&self, sql: &str) -> Result<(), BoxError> {
        match self {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                conn.execute_batch(sql)?;
            }
            Raw::Postgres(c) => c.batch_execute(sql).await?,
        }
        Ok(())
    }

    async fn count(&self, sql: &str) -> Result<i64, BoxError> {
        Ok(match self {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                conn.query_row(sql, [], |r| r.get(0))?
            }
            Raw::Postgres(c) => c.query_one(sql, &[]).await?.get(0),
        })
    }
}

/// The statement inserting events `first..first + count` of `n` spread over 30 days
/// from `start`.
fn generator(postgres: bool, n: i64, first: i64, count: i64, start: i64) -> String {
    let step = 30 * DAY / n;
    let last = first + count - 1;
    let (rows, i, ip) = if postgres {
        (
            format!("generate_series({first}::bigint, {last}::bigint) AS g(i)"),
            "i",
            "'\\x00000000000000000000ffff'::bytea || decode(lpad(to_hex(3325256704 + CASE WHEN i % 10 < 3 THEN (i * 31) % 50 ELSE 50 + (i * 2654435761) % 20000 END), 8, '0'), 'hex')",
        )
    } else {
        (
            format!(
                "(WITH RECURSIVE g(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM g WHERE i < {last}) SELECT i FROM g)"
            ),
            "i",
            "unhex('00000000000000000000ffff' || printf('%08x', 3325256704 + CASE WHEN i % 10 < 3 THEN (i * 31) % 50 ELSE 50 + (i * 2654435761) % 20000 END))",
        )
    };
    format!(
        "INSERT INTO events (ts, received_at, kind, source, client_ip, host, method, path, status, bytes) \
         SELECT {start} + {i} * {step} + ({i} * 7919) % {step}, {start} + {i} * {step}, \
         CASE WHEN {i} % 50 = 0 THEN 'auth' ELSE 'http' END, 'bench', {ip}, 'shop.example', \
         CASE WHEN {i} % 9 = 0 THEN 'POST' ELSE 'GET' END, '/p/' || (({i} * 48271) % 2000), \
         CASE WHEN {i} % 50 = 0 THEN NULL WHEN {i} % 23 = 0 THEN 404 WHEN {i} % 97 = 0 THEN 500 \
              WHEN {i} % 11 = 0 THEN 304 ELSE 200 END, 512 FROM {rows}"
    )
}

const THREATS: &str = "INSERT INTO threats (ts, category, severity, score, client_ip, method, uri, source, event_id, decision, evidence, rule_ids) \
     SELECT ts, CASE id % 5 WHEN 0 THEN 'sqli' WHEN 1 THEN 'xss' WHEN 2 THEN 'lfi' WHEN 3 THEN 'scanner' ELSE 'rce' END, \
     CASE id % 4 WHEN 0 THEN 'critical' WHEN 1 THEN 'error' WHEN 2 THEN 'warning' ELSE 'notice' END, 5, client_ip, method, path, 'ingest', id, \
     CASE WHEN id % 7 = 0 THEN 'block' ELSE 'detect' END, '[]', '[942100]' FROM events WHERE id % 100 = 0 ORDER BY id";

const THREAT_RULES: &str = "INSERT INTO threat_rules (threat_id, rule_id, ts) \
     SELECT id, 942100 + (id % 40), ts FROM threats UNION ALL \
     SELECT id, 930000 + (id % 7), ts FROM threats WHERE id % 3 = 0";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn batch(n: usize, at: i64) -> IngestBatch {
    IngestBatch {
        events: (0..n)
            .map(|i| Event {
                ts: Timestamp(at + i as i64),
                kind: EventKind::Http,
                source: "ingest-bench".into(),
                client_ip: Some(
                    format!("10.{}.{}.{}", i % 7, (i / 7) % 250, i % 250)
                        .parse()
                        .unwrap_or([10, 0, 0, 1].into()),
                ),
                method: Some("GET".into()),
                path: Some(format!("/item/{}", i % 5000)),
                status: Some(200),
                ..Event::default()
            })
            .collect(),
        ..IngestBatch::default()
    }
}

/// Writes 200,000 events in batches of 5,000; returns events per second.
async fn ingest(store: &SharedStore) -> Result<f64, BoxError> {
    let started = Instant::now();
    let at = Timestamp::now().as_micros();
    for b in 0..40 {
        store
            .write_batches(Arc::from(vec![batch(5_000, at + b * 5_000)]))
            .await?;
    }
    Ok(200_000.0 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str).to_owned();
    let n: i64 = args
        .get(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let postgres = backend == "postgres";
    let (store, raw): (SharedStore, Raw) = if postgres {
        let base = std::env::var("PALISADE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute("DROP SCHEMA IF EXISTS bench_analytics CASCADE; CREATE SCHEMA bench_analytics; SET search_path TO bench_analytics")
            .await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3Dbench_analytics");
        (
            Arc::new(PgStore::connect_lazy(&url)?),
            Raw::Postgres(client),
        )
    } else {
        let path = std::path::PathBuf::from(
            args.get(3)
                .map_or("/tmp/palisade-analytics-bench.db", String::as_str),
        );
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        (Arc::new(SqliteStore::open(&path)?), Raw::Sqlite(path))
    };
    store.migrate().await?;
    println!("backend {backend}, {n} events");

    // 1. Data.
    let now = Timestamp::now().as_micros();
    let started = Instant::now();
    let drops: Vec<String> = SECONDARY
        .iter()
        .map(|(name, _)| format!("DROP INDEX {name};"))
        .collect();
    raw.exec(&drops.join(" ")).await?;
    // In chunks of a million rows: one transaction each, so SQLite's WAL is
    // checkpointed between them instead of growing to the size of the data.
    let mut first = 0;
    while first < n {
        let count = (n - first).min(1_000_000);
        raw.exec(&generator(postgres, n, first, count, now - 30 * DAY))
            .await?;
        first += count;
    }
    let inserted = started.elapsed();
    let creates: Vec<String> = SECONDARY
        .iter()
        .map(|(name, cols)| {
            let cols = if postgres {
                format!("{cols}, id")
            } else {
                (*cols).to_owned()
            };
            format!("CREATE INDEX {name} ON events ({cols});")
        })
        .collect();
    raw.exec(&creates.join(" ")).await?;
    let indexed = started.elapsed();
    raw.exec(THREATS).await?;
    raw.exec(THREAT_RULES).await?;
    if postgres {
        raw.exec("ANALYZE").await?;
    }
    let generated = started.elapsed();
    println!(
        "generate: rows {:.1} s, indexes {:.1} s, threats {:.1} s, total {:.1} s ({:.0} events/s)",
        inserted.as_secs_f64(),
        (indexed - inserted).as_secs_f64(),
        (generated - indexed).as_secs_f64(),
        generated.as_secs_f64(),
        n as f64 / generated.as_secs_f64()
    );
    if let Raw::Sqlite(path) = &raw {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!("sqlite file: {:.2} GB", size as f64 / 1e9);
    }

    // 2. Roll-up catch-up and the hourly top keys.
    let started = Instant::now();
    let mut passes = 0;
    loop {
        passes += 1;
        if !store.roll_up(100_000, Timestamp::now()).await?.more {
            break;
        }
    }
    let rolled = started.elapsed();
    let mut hours = 0;
    loop {
        let done = store
            .refresh_top(Timestamp::now(), Duration::from_secs(120), 100, 100)
            .await?;
        hours += done;
        if done < 100 {
            break;
        }
    }
    let topped = started.elapsed() - rolled;
    println!(
        "roll-up: {passes} passes, {:.1} s ({:.0} rows/s); top keys of {hours} hours {:.1} s",
        rolled.as_secs_f64(),
        n as f64 / rolled.as_secs_f64(),
        topped.as_secs_f64()
    );

    // With PALISADE_BENCH_KEEP set, stop here and keep the store (rolled up, as a
    // running server keeps it) for `scripts/bench-dashboard.sh` to serve.
    if std::env::var_os("PALISADE_BENCH_KEEP").is_some() {
        println!("kept the generated store (PALISADE_BENCH_KEEP)");
        return Ok(());
    }

    // 3. Query latency.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random_end = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Timestamp(
            Timestamp::now().as_micros()
                - (seed % 360) as i64 * 60_000_000
                - (seed % 59_000_000) as i64,
        )
    };
    let mut all: Vec<Duration> = Vec::new();
    println!("| query | p50 | p99 | max |");
    println!("| --- | --- | --- | --- |");
    let names = [
        "overview 24h",
        "overview 7d",
        "overview 30d",
        "trends 7d (two overviews)",
        "timeseries events by status_class, hour, 30d",
        "timeseries http_errors, minute, 24h",
        "top client_ip 30d",
        "top path 7d",
        "top rule 30d",
        "top status 30d",
        "top category 24h",
    ];
    for (qi, name) in names.iter().enumerate() {
        let mut times = Vec::with_capacity(30);
        for _ in 0..30 {
            let to = random_end();
            let back = |days: i64| to.add_micros(-days * DAY);
            let started = Instant::now();
            match qi {
                0 => drop(query::overview(&store, back(1), to).await?),
                1 => drop(query::overview(&store, back(7), to).await?),
                2 => drop(query::overview(&store, back(30), to).await?),
                3 => drop(query::trends(&store, back(7), to).await?),
                4 | 5 => {
                    let (metric, bucket, days, by) = if qi == 4 {
                        (
                            Metric::Events,
                            Width::Hour,
                            30,
                            Metric::Events.breakdowns().get(2).copied(),
                        )
                    } else {
                        (Metric::HttpErrors, Width::Minute, 1, None)
                    };
                    drop(
                        query::timeseries(
                            &store,
                            &TimeseriesQuery {
                                metric,
                                bucket,
                                from: back(days),
                                to,
                                by,
                            },
                        )
                        .await?,
                    );
                }
                _ => {
                    let (by, days) = match qi {
                        6 => (TopBy::ClientIp, 30),
                        7 => (TopBy::Path, 7),
                        8 => (TopBy::Rule, 30),
                        9 => (TopBy::Status, 30),
                        _ => (TopBy::Category, 1),
                    };
                    drop(
                        query::top(
                            &store,
                            &TopListQuery {
                                by,
                                from: back(days),
                                to,
                                limit: 10,
                                offset: 0,
                            },
                        )
                        .await?,
                    );
                }
            }
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "| {name} | {} | {} | {} |",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap_or(&Duration::ZERO))
        );
        all.extend(times);
    }
    all.sort();
    println!(
        "all {} queries: p50 {}, p99 {}",
        all.len(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99))
    );

    // The 30-day total against count(*).
    let to = Timestamp::now();
    let from = to.add_micros(-30 * DAY);
    let started = Instant::now();
    let o = query::overview(&store, from, to).await?;
    let fast = started.elapsed();
    let started = Instant::now();
    let counted = raw
        .count(&format!(
            "SELECT count(*) FROM events WHERE ts >= {} AND ts < {}",
            from.as_micros(),
            to.as_micros()
        ))
        .await?;
    let slow = started.elapsed();
    println!(
        "30 d total: overview {} in {}, count(*) {counted} in {} — {}",
        o.events.total,
        ms(fast),
        ms(slow),
        if o.events.total == counted as u64 {
            "equal"
        } else {
            "DIFFERENT"
        }
    );
    let top = query::top(
        &store,
        &TopListQuery {
            by: TopBy::ClientIp,
            from,
            to,
            limit: 3,
            offset: 0,
        },
    )
    .await?;
    let heavy = &top.items[0];
    let exact = raw
        .count(&format!(
            "SELECT count(*) FROM events WHERE ts >= {} AND ts < {} AND client_ip = {}",
            from.as_micros(),
            to.as_micros(),
            if postgres {
                format!("'\\x{}'::bytea", hex(&heavy.key))
            } else {
                format!("x'{}'", hex(&heavy.key))
            }
        ))
        .await?;
    println!(
        "top client_ip 30 d: {} with {} (count(*): {exact}; list exact flag {})",
        heavy.key, heavy.count, top.exact
    );

    // 4. Ingest with and without the roll-up beside it.
    let alone = ingest(&store).await?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let roller = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut passes = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                while let Ok(p) = store.roll_up(100_000, Timestamp::now()).await {
                    passes += 1;
                    if !p.more {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            passes
        })
    };
    let beside = ingest(&store).await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let passes = roller.await?;
    println!(
        "ingest 200k events: {alone:.0} events/s alone, {beside:.0} events/s with a roll-up catch-up every second ({passes} passes)"
    );

    // 5. Clean up.
    drop(store);
    match raw {
        Raw::Postgres(c) => {
            c.batch_execute("DROP SCHEMA bench_analytics CASCADE")
                .await?
        }
        Raw::Sqlite(path) => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
    println!("cleaned up");
    Ok(())
}

/// The hex of an IPv4 address's 16-byte storage key.
fn hex(ip: &str) -> String {
    let key = ip
        .parse()
        .map(palisade_core::net::ip_key)
        .unwrap_or([0; 16]);
    key.iter().map(|b| format!("{b:02x}")).collect()
}
