//! Throughput and memory of the scenario engine.
//!
//! ```text
//! python3 tools/gen_behaviour_log.py /tmp/behaviour.log --lines 1000000 --truth /tmp/t.json
//! cargo run --release -p palisade-scenarios --example bench -- /tmp/behaviour.log
//! cargo run --release -p palisade-scenarios --example bench -- --keys 1000000
//! ```
//!
//! The first form parses the log once with the `combined` parser, then times the
//! built-in scenarios (filters and buckets only) over every event, best of three fresh
//! engines. The second feeds N distinct client addresses and reports the memory held by
//! their buckets, counted by a wrapping global allocator and from VmRSS, and the size of
//! a snapshot of them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use palisade_core::{Event, EventKind, Timestamp};
use palisade_formats::{FormatSpec, build};
use palisade_scenarios::{EngineConfig, ScenarioEngine, ScenarioSet};

/// Counts live heap bytes so bucket memory is measured, not estimated. A global
/// allocator can only be written with `unsafe` (the workspace denies it everywhere
/// else); it forwards every call to the system allocator unchanged.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn engine(config: EngineConfig) -> ScenarioEngine {
    ScenarioEngine::new(ScenarioSet::builtin().expect("built-in scenarios"), config)
}

fn throughput(path: PathBuf) {
    let parser = build(&FormatSpec::Combined).expect("combined parser");
    let data = std::fs::read(&path).expect("read log");
    let t = Instant::now();
    let events: Vec<Event> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| parser.parse(l).ok())
        .collect();
    drop(data);
    println!(
        "parsed {} events from {} in {:.2} s",
        events.len(),
        path.display(),
        t.elapsed().as_secs_f64()
    );
    let mut best = f64::MAX;
    for run in 0..3 {
        let mut e = engine(EngineConfig::default());
        let mut alerts = Vec::new();
        let t = Instant::now();
        for (i, ev) in events.iter().enumerate() {
            e.observe_into(ev, Some(i as i64), &mut alerts);
        }
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        println!(
            "run {run}: {:.3} s, {:.0} events/s, {} alerts, {} live buckets",
            secs,
            events.len() as f64 / secs,
            alerts.len(),
            e.stats().buckets
        );
    }
    println!(
        "best: {:.0} events/s ({:.0} ns/event)",
        events.len() as f64 / best,
        best * 1e9 / events.len() as f64
    );
}

fn memory(keys: u32) {
    for (label, status) in [
        ("200 (flood bucket only)", 200u16),
        ("404 (flood + probing buckets)", 404),
    ] {
        let config = EngineConfig {
            max_buckets: 4_000_000,
            sweep_interval: std::time::Duration::ZERO,
            ..EngineConfig::default()
        };
        let rss0 = rss_kib();
        let live0 = LIVE.load(Ordering::Relaxed);
        let mut e = engine(config);
        let t = Instant::now();
        let mut ev = Event {
            ts: Timestamp::from_secs(1_709_280_000),
            kind: EventKind::Http,
            method: Some("GET".into()),
            path: Some("/missing-page".into()),
            status: Some(status),
            ..Event::default()
        };
        for i in 0..keys {
            ev.client_ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                0x0b00_0000 + i,
            )));
            e.observe(&ev, Some(i64::from(i)));
        }
        let secs = t.elapsed().as_secs_f64();
        let live = LIVE.load(Ordering::Relaxed) - live0;
        let buckets = e.stats().buckets;
        println!(
            "{keys} keys, status {label}: {buckets} buckets, {:.1} MiB heap ({:.0} B/bucket, {:.0} B/key), \
             VmRSS +{:.1} MiB, engine estimate {:.1} MiB, {:.0} events/s",
            live as f64 / 1048576.0,
            live as f64 / buckets as f64,
            live as f64 / f64::from(keys),
            (rss_kib().saturating_sub(rss0)) as f64 / 1024.0,
            e.stats().approx_bytes as f64 / 1048576.0,
            f64::from(keys) / secs
        );
        let t = Instant::now();
        let json = e.snapshot().to_json();
        println!(
            "  snapshot: {:.1} MiB JSON ({:.0} B/bucket) in {:.2} s",
            json.len() as f64 / 1048576.0,
            json.len() as f64 / buckets as f64,
            t.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, n] if flag == "--keys" => memory(n.parse().expect("--keys N")),
        [path] => throughput(PathBuf::from(path)),
        [] => throughput(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/behaviour.log"),
        ),
        _ => eprintln!("usage: bench [LOG] | bench --keys N"),
    }
}
