//! Signature-engine work per stored log line, for a load-independent before/after
//! figure: under `valgrind --tool=callgrind --toggle-collect='*measured_pass*'` the
//! instructions counted are those of one pass over the lines, after a first pass that
//! warms the per-thread memo as a long ingest does. `scripts/callgrind-engine.sh`
//! runs it and divides by the line count.
//!
//! ```sh
//! cargo build --release -p palisade-detect --example engine_lines
//! engine_lines ../shared/data/access-logs/elastic_apache_logs.log [benign|all]
//! ```
//!
//! Lines are read as the combined format and rebuilt into the request the ingest
//! inspector builds (method, target, protocol, Host, User-Agent, Referer), as the
//! criterion bench (`benches/engine.rs`) does. `benign` (the default) keeps only the
//! lines with no finding, like the bench's `benign_log_line`.

use std::hint::black_box;

use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};
use palisade_formats::{FormatSpec, build};

fn requests(path: &str) -> Result<Vec<HttpRequest>, Box<dyn std::error::Error>> {
    let parser = build(&FormatSpec::Combined)?;
    let data = std::fs::read(path)?;
    Ok(data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .take(20_000)
        .filter_map(|l| parser.parse(l).ok())
        .filter_map(|e| HttpRequest::from_log_event(&e))
        .collect())
}

/// The pass callgrind counts (its name is what `--toggle-collect` selects).
#[inline(never)]
fn measured_pass(engine: &Engine, reqs: &[HttpRequest]) -> u64 {
    let mut total = 0u64;
    for r in reqs {
        let (verdict, parsed) = engine.inspect_parsed(black_box(r));
        total += u64::from(verdict.score) + parsed.map_or(0, |p| p.parts.len() as u64);
    }
    total
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: engine_lines ACCESS_LOG [benign|all]");
        std::process::exit(2);
    };
    let benign_only = args.get(1).is_none_or(|m| m == "benign");
    let engine = Engine::new(RuleSet::builtin()?, EngineConfig::default());
    let mut reqs = requests(path)?;
    if benign_only {
        reqs.retain(|r| engine.inspect(r).findings.is_empty());
    }
    // Warm pass: the memo holds what a long ingest keeps.
    black_box(warm_up(&engine, &reqs));
    let total = measured_pass(&engine, &reqs);
    println!("lines {} checksum {total}", reqs.len());
    Ok(())
}

/// The same work as [`measured_pass`], not counted.
#[inline(never)]
fn warm_up(engine: &Engine, reqs: &[HttpRequest]) -> u64 {
    reqs.iter()
        .map(|r| u64::from(engine.inspect(black_box(r)).score))
        .sum()
}
