//! OWASP CRS regression tests as pass rates per rule file: rule level (does the test's
//! rule fire, or stay silent, exactly as the test expects?) for the loaded CRS files,
//! and verdict level (attack tests blocked, silent tests let through) for the built-in
//! rules, the CRS files, and both.
//!
//! ```sh
//! python3 scripts/crs-corpus.py --all-files ../shared/data/crs-regression/v3.3.4/tests > /tmp/crs-all.jsonl
//! cargo run --release -p palisade-detect --example crs_regression -- \
//!     /tmp/crs-all.jsonl /usr/share/modsecurity-crs [VERDICT_PARANOIA=1] [--failures]
//! ```
//!
//! Rule level runs CRS at paranoia 4 (as CRS's own test setup does), so every rule is
//! active; verdict level at the given paranoia with threshold 5.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;

use palisade_detect::seclang::Program;
use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};

#[derive(Default)]
struct Row {
    tests: usize,
    /// Tests that name their rule (the rule-level denominator).
    rule_tests: usize,
    rule_pass: usize,
    rule_not_loaded: usize,
    verdict: [usize; 3],
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(corpus), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: crs_regression CORPUS.jsonl CRS_DIR [VERDICT_PARANOIA] [--failures]");
        std::process::exit(2);
    };
    let pl: u8 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(1);
    let show_failures = args.iter().any(|a| a == "--failures");
    let program = Arc::new(Program::load_dir(std::path::Path::new(dir))?);
    eprintln!("CRS: {}", program.report().summary());
    let loaded: std::collections::HashSet<u32> = program.rule_ids().into_iter().collect();
    let cfg = EngineConfig {
        paranoia: pl,
        threshold: 5,
    };
    let engines = [
        Engine::new(RuleSet::builtin()?, cfg),
        Engine::with_crs(RuleSet::default(), cfg, Some(program.clone())),
        Engine::with_crs(RuleSet::builtin()?, cfg, Some(program.clone())),
    ];
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut elapsed = [std::time::Duration::ZERO; 3];
    let file = std::fs::File::open(corpus)?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let req = HttpRequest {
            method: s("method"),
            uri: s("uri"),
            protocol: s("version"),
            headers: v["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|h| {
                            Some((h[0].as_str()?.to_string(), h[1].as_str()?.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            body: s("body").into_bytes(),
            client_ip: None,
        };
        let mut req = req;
        // go-ftw computes Content-Length for bodies, as any client does.
        if !req.body.is_empty()
            && !req
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            req.headers
                .push(("Content-Length".into(), req.body.len().to_string()));
        }
        let fires = s("expect") == "fires";
        let rule = v["rule"].as_u64().and_then(|r| u32::try_from(r).ok());
        let row = rows.entry(s("rule_file")).or_default();
        row.tests += 1;
        if let Some(rule) = rule {
            row.rule_tests += 1;
            let out = program.run(&req, 4, 100_000);
            let fired = out.findings.iter().any(|f| f.rule_id == rule);
            if fired == fires {
                row.rule_pass += 1;
            } else {
                if !loaded.contains(&rule) {
                    row.rule_not_loaded += 1;
                }
                if show_failures {
                    let got: Vec<u32> = out.findings.iter().map(|f| f.rule_id).collect();
                    println!(
                        "FAIL {} rule {rule} expect {} got {got:?}: {} {}",
                        s("source"),
                        s("expect"),
                        req.method,
                        req.uri
                    );
                }
            }
        }
        for ((e, slot), spent) in engines
            .iter()
            .zip(row.verdict.iter_mut())
            .zip(elapsed.iter_mut())
        {
            let started = std::time::Instant::now();
            let blocked = e.inspect(&req).blocked;
            *spent += started.elapsed();
            if blocked == fires {
                *slot += 1;
            }
        }
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * a as f64 / b as f64)
        }
    };
    println!(
        "| rule file | tests | CRS rule level (PL4) | of which rule not loaded | verdict PL{pl}: built-in | CRS files | both |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut total = Row::default();
    for (name, r) in &rows {
        println!(
            "| {name} | {} | {} ({}) | {} | {} | {} | {} |",
            r.tests,
            pct(r.rule_pass, r.rule_tests),
            r.rule_pass,
            r.rule_not_loaded,
            pct(r.verdict[0], r.tests),
            pct(r.verdict[1], r.tests),
            pct(r.verdict[2], r.tests)
        );
        total.tests += r.tests;
        total.rule_tests += r.rule_tests;
        total.rule_pass += r.rule_pass;
        total.rule_not_loaded += r.rule_not_loaded;
        for i in 0..3 {
            total.verdict[i] += r.verdict[i];
        }
    }
    println!(
        "| **all** | {} | {} ({}) | {} | {} | {} | {} |",
        total.tests,
        pct(total.rule_pass, total.rule_tests),
        total.rule_pass,
        total.rule_not_loaded,
        pct(total.verdict[0], total.tests),
        pct(total.verdict[1], total.tests),
        pct(total.verdict[2], total.tests)
    );
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / total.tests.max(1) as f64;
    println!(
        "\nµs per request at PL{pl} (in-process, this build): built-in {:.0}, CRS files {:.0}, both {:.0}",
        per(elapsed[0]),
        per(elapsed[1]),
        per(elapsed[2])
    );
    Ok(())
}
