//! Signature-engine work per stored log line, for a load-independent before/after
//! figure: under `valgrind --tool=callgrind --toggle-collect='*measured_pass*'` the
//! instructions counted are those of one pass over the lines, after a first pass that
//! warms the per-thread memo as a long ingest does. `scripts/callgrind-engine.sh`
//! runs it and divides by the line count.
//!
//! ```sh
//! cargo build --release -p palisade-detect --example engine_lines
//! engine_lines ../shared/data/access-logs/elastic_apache_logs.log [benign|all|findings]
//! PALISADE_TIME_PASSES=20 engine_lines LOG benign   # also: µs per line, timed
//! ```
//!
//! Lines are read as the combined format and rebuilt into the request the ingest
//! inspector builds (method, target, protocol, Host, User-Agent, Referer), as the
//! criterion bench (`benches/engine.rs`) does. `benign` (the default) keeps only the
//! lines with no finding, like the bench's `benign_log_line`; `findings` keeps only
//! the lines with one (their cost alone, not `all` less `benign`). Prints the line count, a
//! checksum of scores and part counts, a digest of every finding, and one of every
//! part the parse gives. A CSIC 2010
//! `.jsonl.gz` (`../shared/data/csic2010/`) is read as whole requests instead, its POSTs
//! (form posts with their headers and bodies, each with its own values: the proxy's
//! case when the memo cannot answer).

use std::hint::black_box;

use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};
use palisade_formats::{FormatSpec, build};

fn requests(path: &str) -> Result<Vec<HttpRequest>, Box<dyn std::error::Error>> {
    if path.ends_with(".jsonl.gz") {
        return csic_requests(path);
    }
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

/// Whole requests (headers and bodies: the form posts a proxy sees) from CSIC 2010's
/// JSONL (`{"method","uri","version","headers":[[name, value]...],"body"}`, gzipped),
/// POST requests only, the first 20,000.
fn csic_requests(path: &str) -> Result<Vec<HttpRequest>, Box<dyn std::error::Error>> {
    use std::io::BufRead;
    let file = flate2::read::GzDecoder::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        if text("method") != "POST" {
            continue;
        }
        let uri = text("uri");
        let uri = match uri
            .find("://")
            .and_then(|i| uri.get(i + 3..)?.find('/').map(|j| i + 3 + j))
        {
            Some(start) => uri.get(start..).unwrap_or("/").to_string(),
            None => uri,
        };
        let headers = v
            .get("headers")
            .and_then(|h| h.as_array())
            .map(|h| {
                h.iter()
                    .filter_map(|pair| {
                        let name = pair.get(0)?.as_str()?;
                        let value = pair.get(1)?.as_str()?;
                        Some((name.to_string(), value.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(HttpRequest {
            method: text("method"),
            uri,
            protocol: text("version"),
            headers,
            body: text("body").into_bytes(),
            client_ip: None,
        });
        if out.len() == 20_000 {
            break;
        }
    }
    Ok(out)
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
        eprintln!("usage: engine_lines ACCESS_LOG [benign|all|findings]");
        std::process::exit(2);
    };
    let mode = args.get(1).map_or("benign", String::as_str);
    let engine = Engine::new(RuleSet::builtin()?, EngineConfig::default());
    let mut reqs = requests(path)?;
    match mode {
        "benign" => reqs.retain(|r| engine.inspect(r).findings.is_empty()),
        "findings" => reqs.retain(|r| !engine.inspect(r).findings.is_empty()),
        _ => {}
    }
    // Warm pass: the memo holds what a long ingest keeps.
    black_box(warm_up(&engine, &reqs));
    let total = measured_pass(&engine, &reqs);
    println!("lines {} checksum {total}", reqs.len());
    println!("findings {:016x}", findings_digest(&engine, &reqs));
    println!("parts {:016x}", parts_digest(&reqs));
    if let Some(n) = std::env::var("PALISADE_TIME_PASSES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        timed_passes(&engine, &reqs, n);
    }
    Ok(())
}

/// With `PALISADE_TIME_PASSES=N`: N more passes timed one by one (the wall-clock
/// figure that goes with the instruction count; not under callgrind), printed as the
/// minimum and median µs per line.
#[inline(never)]
fn timed_passes(engine: &Engine, reqs: &[HttpRequest], n: usize) {
    let mut per_line: Vec<f64> = (0..n)
        .map(|_| {
            let start = std::time::Instant::now();
            for r in reqs {
                black_box(engine.inspect_parsed(black_box(r)));
            }
            start.elapsed().as_secs_f64() * 1e6 / reqs.len().max(1) as f64
        })
        .collect();
    per_line.sort_by(f64::total_cmp);
    let (min, median) = (
        per_line.first().copied().unwrap_or(0.0),
        per_line.get(n / 2).copied().unwrap_or(0.0),
    );
    println!("timed {n} passes: min {min:.2} us/line, median {median:.2} us/line");
}

/// A digest of every part the parse gives every line, at paranoia 1 and 3 (location,
/// name and value of each part in order, and the decoded path): equal digests before
/// and after a change to the parse say it gives the same parts.
fn parts_digest(reqs: &[HttpRequest]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for paranoia in [1, 3] {
        for r in reqs {
            let parsed = palisade_detect::parse(r, paranoia);
            parsed.path.hash(&mut h);
            parsed.parts.len().hash(&mut h);
            for p in &parsed.parts {
                (p.location.as_str(), &p.name, &p.value).hash(&mut h);
            }
        }
    }
    h.finish()
}

/// A digest of every finding of every line (rule, place, decoded value, matched text)
/// with each line's score, in order: equal digests before and after a change say the
/// engine found the same things, not only the same scores.
fn findings_digest(engine: &Engine, reqs: &[HttpRequest]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in reqs {
        let v = engine.inspect(r);
        v.score.hash(&mut h);
        for f in &v.findings {
            (f.rule_id, &f.location, &f.name_of_part).hash(&mut h);
            (&f.decoded_value, &f.matched).hash(&mut h);
        }
    }
    h.finish()
}

/// The same work as [`measured_pass`], not counted.
#[inline(never)]
fn warm_up(engine: &Engine, reqs: &[HttpRequest]) -> u64 {
    reqs.iter()
        .map(|r| u64::from(engine.inspect(black_box(r)).score))
        .sum()
}
