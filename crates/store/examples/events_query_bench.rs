//! Latency of the events listing (`Store::query_events`, what `GET /api/v1/events`
//! runs) on a large store, without and with the free-text index. Run by
//! `scripts/bench-events-query.sh`, or by hand:
//!
//! ```text
//! cargo run --release -p palisade-store --example events_query_bench -- \
//!     sqlite|postgres EVENTS ACCESS_LOG [QUERIES_PER_SHAPE]
//! ```
//!
//! 1. Samples 50,000 requests (method, path, query, status, referer, user agent, user)
//!    from ACCESS_LOG (nginx combined, e.g. `tools/gen_access_log.py` output) into a
//!    table, then generates EVENTS events from them directly in SQL (`INSERT … SELECT`
//!    with the secondary indexes dropped, then rebuilt; timed): spread over 30 days,
//!    10 sources, 4 hosts, 30% of the traffic from 50 addresses of one /24 and the rest
//!    from 200,000 addresses.
//! 2. Runs a documented mix of queries (each shape QUERIES_PER_SHAPE times, default 30,
//!    page size 100, values drawn like an investigator's: addresses and paths of random
//!    events, common and rare words) and prints p50/p95/p99/max per shape and overall.
//! 3. Builds the free-text index (`[search] text_index = true`, timed) and runs the
//!    same mix again, checking that every query returns the same events.
//! 4. Deletes what it made (the SQLite file; the PostgreSQL schema `bench_events`).
//!
//! SQLite file: `$PALISADE_BENCH_DIR/events-query.db` (default /tmp/palisade-bench).
//! PostgreSQL: `PALISADE_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). `KEEP=1` keeps the data and skips the
//! generation when it is already there (for looking at plans). `SKIP_UNINDEXED=1` runs
//! only the pass with the index. `DETAIL=1` prints every query with its time.
//! `IDS=FILE` writes the ids each query of the pass with the index returned, one query
//! per line, so that two builds (before and after a change of the query code) can be
//! compared on the same kept store (`cmp`) when the unindexed pass is skipped.
//! "With the index" means `[search] text_index` and `prefix_text_index` (PostgreSQL's
//! second, tagged index); `PREFIX_TEXT_INDEX=0` leaves the second one out (a kept
//! store then loses it). `ANALYZE=0` (PostgreSQL) skips the `ANALYZE` before the
//! indexed pass, so that passes on a kept store share its statistics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_core::Timestamp;
use palisade_store::postgres::PgStore;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{EventQuery, SearchConfig, SharedStore, StatusFilter};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const DAY: i64 = 86_400_000_000;
const SAMPLES: usize = 50_000;
/// 198.51.100.0: the first address of the generated clients.
const IP_BASE: u64 = 3_325_256_704;
const WORDS: [&str; 9] = [
    "mozilla",
    "admin",
    "php",
    "bot",
    "select",
    "login",
    "windows",
    "curl",
    "zzqx-rare",
];

/// One sampled request.
struct Sample {
    method: String,
    path: String,
    query: Option<String>,
    protocol: String,
    status: i32,
    bytes: i64,
    referer: Option<String>,
    user_agent: Option<String>,
    user_name: Option<String>,
}

/// Splits an nginx combined line; `None` for the malformed ones.
fn parse(line: &str) -> Option<Sample> {
    let (head, rest) = line.split_once(" [")?;
    let mut head_parts = head.split(' ');
    let _ip = head_parts.next()?;
    let _ident = head_parts.next()?;
    let user = head_parts.next()?;
    let (_, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut req = request.split(' ');
    let method = req.next()?.to_owned();
    let target = req.next()?;
    let protocol = req.next().unwrap_or("HTTP/1.0").to_owned();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let mut nums = rest.splitn(3, ' ');
    let status: i32 = nums.next()?.parse().ok()?;
    let bytes: i64 = nums.next()?.parse().unwrap_or(0);
    let quoted: Vec<&str> = nums.next()?.split('"').collect();
    let dash = |s: &str| (s != "-" && !s.is_empty()).then(|| s.to_owned());
    Some(Sample {
        method,
        path,
        query,
        protocol,
        status,
        bytes,
        referer: dash(quoted.get(1)?),
        user_agent: dash(quoted.get(3)?),
        user_name: dash(user),
    })
}

fn samples(log: &str) -> Result<Vec<Sample>, BoxError> {
    let text = std::fs::read(log)?;
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let step = (lines.len() / SAMPLES).max(1);
    Ok(lines
        .iter()
        .step_by(step)
        .filter_map(|l| std::str::from_utf8(l).ok().and_then(parse))
        .take(SAMPLES)
        .collect())
}

/// A small deterministic generator, so that runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The generated client of event `i` (the same formula as the SQL).
fn client_of(i: u64) -> std::net::Ipv4Addr {
    let offset = if i % 10 < 3 {
        (i * 31) % 50
    } else {
        50 + (i.wrapping_mul(2_654_435_761)) % 200_000
    };
    std::net::Ipv4Addr::from(u32::try_from(IP_BASE + offset).unwrap_or(0))
}

/// The statement inserting events `first..first + count` of `n`, spread over 30 days
/// from `start`.
fn generator(postgres: bool, n: i64, first: i64, count: i64, start: i64, nsample: usize) -> String {
    let step = 30 * DAY / n;
    let last = first + count - 1;
    let offset = "CASE WHEN i % 10 < 3 THEN (i * 31) % 50 ELSE 50 + (i * 2654435761) % 200000 END";
    let (rows, ip) = if postgres {
        (
            format!("generate_series({first}::bigint, {last}::bigint) AS g(i)"),
            format!(
                "'\\x00000000000000000000ffff'::bytea || decode(lpad(to_hex({IP_BASE} + {offset}), 8, '0'), 'hex')"
            ),
        )
    } else {
        (
            format!(
                "(WITH RECURSIVE g(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM g WHERE i < {last}) SELECT i FROM g) AS g"
            ),
            format!("unhex('00000000000000000000ffff' || printf('%08x', {IP_BASE} + {offset}))"),
        )
    };
    format!(
        "INSERT INTO events (ts, received_at, kind, source, client_ip, host, method, path, query, protocol, status, bytes, referer, user_agent, user_name) \
         SELECT {start} + i * {step} + (i * 7919) % {step}, {start} + i * {step}, 'http', 'copy' || (i % 10), {ip}, \
         CASE i % 4 WHEN 0 THEN 'shop.example' WHEN 1 THEN 'api.example' WHEN 2 THEN 'www.example' ELSE 'static.example' END, \
         s.method, s.path, s.query, s.protocol, s.status, s.bytes, s.referer, s.user_agent, s.user_name \
         FROM {rows} CROSS JOIN bench_sample s WHERE s.k = (i * 40503) % {nsample}"
    )
}

/// Raw access to the database behind the store, for the generator.
enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres(tokio_postgres::Client),
}

impl Raw {
    async fn exec(&self, sql: &str) -> Result<(), BoxError> {
        match self {
            Raw::Sqlite(path) => rusqlite::Connection::open(path)?.execute_batch(sql)?,
            Raw::Postgres(c) => c.batch_execute(sql).await?,
        }
        Ok(())
    }

    async fn count(&self, sql: &str) -> Result<i64, BoxError> {
        Ok(match self {
            Raw::Sqlite(path) => {
                rusqlite::Connection::open(path)?.query_row(sql, [], |r| r.get(0))?
            }
            Raw::Postgres(c) => c.query_one(sql, &[]).await?.get(0),
        })
    }

    /// The events table's secondary indexes as `(name, CREATE statement)`.
    async fn indexes(&self) -> Result<Vec<(String, String)>, BoxError> {
        Ok(match self {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                let mut stmt = conn.prepare(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            }
            Raw::Postgres(c) => c
                .query(
                    "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'events' AND indexname <> 'events_pkey'",
                    &[],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        })
    }

    async fn load_samples(&self, samples: &[Sample]) -> Result<(), BoxError> {
        self.exec(
            "DROP TABLE IF EXISTS bench_sample; CREATE TABLE bench_sample (k BIGINT PRIMARY KEY, method TEXT, path TEXT, query TEXT, protocol TEXT, status INTEGER, bytes BIGINT, referer TEXT, user_agent TEXT, user_name TEXT)",
        )
        .await?;
        match self {
            Raw::Sqlite(path) => {
                let mut conn = rusqlite::Connection::open(path)?;
                let tx = conn.transaction()?;
                {
                    let mut stmt = tx.prepare(
                        "INSERT INTO bench_sample VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )?;
                    for (k, s) in samples.iter().enumerate() {
                        stmt.execute(rusqlite::params![
                            k as i64,
                            s.method,
                            s.path,
                            s.query,
                            s.protocol,
                            s.status,
                            s.bytes,
                            s.referer,
                            s.user_agent,
                            s.user_name
                        ])?;
                    }
                }
                tx.commit()?;
            }
            Raw::Postgres(c) => {
                let k: Vec<i64> = (0..samples.len() as i64).collect();
                let col = |f: &dyn Fn(&Sample) -> Option<String>| -> Vec<Option<String>> {
                    samples.iter().map(f).collect()
                };
                let method = col(&|s| Some(s.method.clone()));
                let path = col(&|s| Some(s.path.clone()));
                let query = col(&|s| s.query.clone());
                let protocol = col(&|s| Some(s.protocol.clone()));
                let status: Vec<i32> = samples.iter().map(|s| s.status).collect();
                let bytes: Vec<i64> = samples.iter().map(|s| s.bytes).collect();
                let referer = col(&|s| s.referer.clone());
                let agent = col(&|s| s.user_agent.clone());
                let user = col(&|s| s.user_name.clone());
                c.execute(
                    "INSERT INTO bench_sample SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[], $8::text[], $9::text[], $10::text[])",
                    &[&k, &method, &path, &query, &protocol, &status, &bytes, &referer, &agent, &user],
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// One query of the mix.
struct Planned {
    shape: usize,
    query: EventQuery,
    /// Pages to follow with the cursor (the last one is timed alone).
    pages: usize,
}

const SHAPES: [&str; 8] = [
    "client /24 + status class + q",
    "path prefix + method + q",
    "1 h window + status + q",
    "q alone",
    "client /32",
    "path prefix + status class",
    "1 h window",
    "page 3 of path prefix + method + q",
];

fn plan(per_shape: usize, n: i64, start: i64, samples: &[Sample]) -> Vec<Planned> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::new();
    for shape in 0..SHAPES.len() {
        for _ in 0..per_shape {
            let event = rng.below(n as u64);
            let ip = client_of(event);
            let sample = samples
                .get(((event * 40503) % samples.len() as u64) as usize)
                .or(samples.first());
            let prefix = sample
                .map(|s| {
                    let end = s
                        .path
                        .get(1..)
                        .and_then(|rest| rest.find('/'))
                        .map_or(s.path.len(), |i| i + 1);
                    s.path.get(..end).unwrap_or("/").to_owned()
                })
                .unwrap_or_else(|| "/".into());
            let word = WORDS[rng.below(WORDS.len() as u64) as usize].to_owned();
            let hour = start + (rng.below(30 * 24) as i64) * 3_600_000_000;
            let mut q = EventQuery {
                limit: 100,
                ..EventQuery::default()
            };
            match shape {
                0 => {
                    let o = ip.octets();
                    q.client = format!("{}.{}.{}.0/24", o[0], o[1], o[2]).parse().ok();
                    q.status = StatusFilter::parse(if rng.below(2) == 0 { "2xx" } else { "4xx" });
                    q.text = Some(word);
                }
                1 | 7 => {
                    q.path_prefix = Some(prefix);
                    q.method = Some("GET".into());
                    q.text = Some(word);
                }
                2 => {
                    q.from = Some(Timestamp(hour));
                    q.to = Some(Timestamp(hour + 3_600_000_000));
                    q.status = Some(StatusFilter::Exact(200));
                    q.text = Some(word);
                }
                3 => q.text = Some(word),
                4 => q.client = format!("{ip}/32").parse().ok(),
                5 => {
                    q.path_prefix = Some(prefix);
                    q.status = StatusFilter::parse(if rng.below(2) == 0 { "2xx" } else { "4xx" });
                }
                _ => {
                    q.from = Some(Timestamp(hour));
                    q.to = Some(Timestamp(hour + 3_600_000_000));
                }
            }
            out.push(Planned {
                shape,
                query: q,
                pages: if shape == 7 { 3 } else { 1 },
            });
        }
    }
    out
}

/// CPU time the process's threads have used so far (the store's queries run on the
/// blocking pool's threads), from `/proc/self/task/*/schedstat`, in ns: on a shared
/// machine the wall time of a query is mostly the wait for a core, its CPU time is not.
/// Threads that have exited are not counted; the pool keeps its threads between queries.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Runs the mix; returns the ids each query returned (for the comparison).
async fn run_mix(
    store: &SharedStore,
    mix: &[Planned],
    label: &str,
) -> Result<Vec<Vec<i64>>, BoxError> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); SHAPES.len()];
    let mut hits = vec![0usize; SHAPES.len()];
    let mut cpu: Vec<Vec<u64>> = vec![Vec::new(); SHAPES.len()];
    let mut ids = Vec::with_capacity(mix.len());
    for p in mix {
        let mut q = p.query.clone();
        let mut page = None;
        let mut took = Duration::ZERO;
        let mut used = 0;
        for _ in 0..p.pages {
            let on_cpu = cpu_ns();
            let started = Instant::now();
            let result = store.query_events(&q).await?;
            took = started.elapsed();
            used = cpu_ns().saturating_sub(on_cpu);
            q.cursor = result
                .next_cursor
                .as_deref()
                .and_then(palisade_store::Cursor::decode);
            let done = q.cursor.is_none();
            page = Some(result);
            if done {
                break;
            }
        }
        let items = page.map(|p| p.items).unwrap_or_default();
        if !items.is_empty() {
            hits[p.shape] += 1;
        }
        if std::env::var("DETAIL").is_ok_and(|v| v == "1") {
            let q = &p.query;
            println!(
                "detail | {label} | {} | {} ms | cpu {:.1} ms | {} rows | client {:?} | prefix {:?} | method {:?} | status {:?} | q {:?} | from {:?}",
                SHAPES[p.shape],
                ms(took),
                used as f64 / 1e6,
                items.len(),
                q.client.map(|n| std::net::Ipv6Addr::from(n.first)),
                q.path_prefix,
                q.method,
                q.status,
                q.text,
                q.from.map(|t| t.as_micros())
            );
        }
        ids.push(items.iter().map(|e| e.id).collect());
        times[p.shape].push(took);
        cpu[p.shape].push(used);
    }
    println!("\n{label}\n");
    println!("| shape | p50 ms | p95 ms | p99 ms | max ms | non-empty | CPU p50 / max / sum ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let cpu_ms = |ns: u64| format!("{:.1}", ns as f64 / 1e6);
    let mut all = Vec::new();
    let mut all_cpu = Vec::new();
    for (shape, t) in times.iter_mut().enumerate() {
        t.sort();
        all.extend_from_slice(t);
        let c = &mut cpu[shape];
        c.sort();
        all_cpu.extend_from_slice(c);
        println!(
            "| {} | {} | {} | {} | {} | {}/{} | {} / {} / {} |",
            SHAPES[shape],
            ms(percentile(t, 0.5)),
            ms(percentile(t, 0.95)),
            ms(percentile(t, 0.99)),
            ms(*t.last().unwrap_or(&Duration::ZERO)),
            hits[shape],
            t.len(),
            cpu_ms(c.get(c.len() / 2).copied().unwrap_or(0)),
            cpu_ms(c.last().copied().unwrap_or(0)),
            cpu_ms(c.iter().sum())
        );
    }
    all.sort();
    all_cpu.sort();
    println!(
        "| **all {}** | **{}** | **{}** | **{}** | {} | | {} / {} / **{}** |",
        all.len(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.95)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap_or(&Duration::ZERO)),
        cpu_ms(all_cpu.get(all_cpu.len() / 2).copied().unwrap_or(0)),
        cpu_ms(all_cpu.last().copied().unwrap_or(0)),
        cpu_ms(all_cpu.iter().sum())
    );
    Ok(ids)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str).to_owned();
    let n: i64 = args
        .get(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let log = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "/tmp/palisade-bench/access-1000000.log".into());
    let per_shape: usize = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(30);
    let keep = std::env::var("KEEP").is_ok_and(|v| v == "1");
    let postgres = backend == "postgres";
    let dir = std::env::var("PALISADE_BENCH_DIR").unwrap_or_else(|_| "/tmp/palisade-bench".into());
    let path = std::path::PathBuf::from(&dir).join("events-query.db");
    let base = std::env::var("PALISADE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let sep = if base.contains('?') { '&' } else { '?' };
    let pg_url = format!("{base}{sep}options=-c%20search_path%3Dbench_events");
    let open = |search: SearchConfig| -> Result<SharedStore, BoxError> {
        Ok(if postgres {
            Arc::new(PgStore::connect_lazy(&pg_url)?.with_search(search))
        } else {
            Arc::new(SqliteStore::open(&path)?.with_search(search))
        })
    };
    let raw = if postgres {
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        if !keep {
            client
                .batch_execute("DROP SCHEMA IF EXISTS bench_events CASCADE")
                .await?;
        }
        client
            .batch_execute(
                "CREATE SCHEMA IF NOT EXISTS bench_events; SET search_path TO bench_events",
            )
            .await?;
        Raw::Postgres(client)
    } else {
        std::fs::create_dir_all(&dir)?;
        if !keep {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        Raw::Sqlite(path.clone())
    };
    let off = SearchConfig::default();
    // "With the index" means both PostgreSQL indexes (`prefix_text_index`; SQLite
    // ignores it), unless `PREFIX_TEXT_INDEX=0`.
    let prefix_text_index = std::env::var("PREFIX_TEXT_INDEX").map_or(true, |v| v != "0");
    let on = SearchConfig {
        text_index: true,
        prefix_text_index,
    };
    // `SKIP_UNINDEXED=1`: only the pass with the index (at 10M the unindexed pass reads
    // every row for each rare word, which takes a long while), and no comparison. On a
    // kept store that already holds the events, the index is kept too: migrating with
    // it off would drop it, and rebuilding it at 10M takes 10–20 minutes.
    let skip_unindexed = std::env::var("SKIP_UNINDEXED").is_ok_and(|v| v == "1");
    let kept = keep && raw.count("SELECT count(*) FROM events").await.ok() == Some(n);
    let store = open(if kept && skip_unindexed { on } else { off })?;
    store.migrate().await?;
    let samples = samples(&log)?;
    println!(
        "backend {backend}, {n} events, {} sampled requests from {log}",
        samples.len()
    );
    let start = Timestamp::now().as_micros() - 30 * DAY;
    let stored = raw.count("SELECT count(*) FROM events").await?;
    let start = if stored == n {
        println!("keeping the {stored} events already stored");
        raw.count("SELECT min(received_at) FROM events").await?
    } else {
        let started = Instant::now();
        raw.load_samples(&samples).await?;
        let indexes = raw.indexes().await?;
        let drops: Vec<String> = indexes
            .iter()
            .map(|(name, _)| format!("DROP INDEX {name};"))
            .collect();
        raw.exec(&drops.join(" ")).await?;
        let mut first = 0;
        while first < n {
            let count = (n - first).min(1_000_000);
            raw.exec(&generator(postgres, n, first, count, start, samples.len()))
                .await?;
            first += count;
        }
        let inserted = started.elapsed();
        let creates: Vec<String> = indexes.iter().map(|(_, sql)| format!("{sql};")).collect();
        raw.exec(&creates.join(" ")).await?;
        if postgres {
            raw.exec("VACUUM ANALYZE events").await?;
        }
        let total = started.elapsed();
        println!(
            "generate: rows {:.1} s, indexes {:.1} s, total {:.1} s",
            inserted.as_secs_f64(),
            (total - inserted).as_secs_f64(),
            total.as_secs_f64()
        );
        start
    };
    let mix = plan(per_shape, n, start, &samples);
    // Warm the caches once (both passes then read from memory).
    raw.count("SELECT count(*) FROM events WHERE status > 0")
        .await?;
    let without = if skip_unindexed {
        Vec::new()
    } else {
        run_mix(&store, &mix, "without the text index").await?
    };

    let started = Instant::now();
    let indexed = open(on)?;
    indexed.migrate().await?;
    // `ANALYZE=0` keeps the statistics of the kept store: each `ANALYZE` samples anew,
    // and the planner's estimates (a rare word's rows) moved 100× between two of them
    // (pgquery2), so passes compared query by query should share one; it also lets a
    // pass run while another index is being built (`ANALYZE` waits for its lock).
    if postgres && std::env::var("ANALYZE").map_or(true, |v| v != "0") {
        raw.exec("ANALYZE events").await?;
    }
    println!(
        "\ntext index built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let with = run_mix(&indexed, &mix, "with the text index").await?;
    if let Ok(file) = std::env::var("IDS") {
        let lines: Vec<String> = with
            .iter()
            .map(|ids| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
            .collect();
        std::fs::write(&file, lines.join("\n") + "\n")?;
    }
    let differ = without.iter().zip(&with).filter(|(a, b)| a != b).count();
    if !skip_unindexed {
        println!(
            "\nqueries whose results differ with the index: {differ} of {}",
            mix.len()
        );
    }
    if !keep {
        open(off)?.migrate().await?;
        match &raw {
            Raw::Postgres(c) => c.batch_execute("DROP SCHEMA bench_events CASCADE").await?,
            Raw::Sqlite(p) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
                }
            }
        }
    }
    if differ > 0 {
        return Err("the text index changed results".into());
    }
    Ok(())
}
