//! The distribution of baseline deviation points on labelled corpora, to choose
//! `report_points` and check false positives at every operating point at once:
//! baselines learnt from the normal samples of `--train` files, then judged (frozen)
//! on the others.
//!
//! `cargo run --release -p palisade-models --example baseline_points -- \
//!    --train normalTrafficTraining.jsonl.gz normalTrafficTest.jsonl.gz anomalousTrafficTest.jsonl.gz`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use palisade_detect::HttpRequest;
use palisade_models::{Baselines, BaselinesConfig};

fn load(path: &str) -> Vec<(HttpRequest, bool)> {
    let Ok(file) = std::fs::File::open(path) else {
        eprintln!("{path}: cannot open");
        std::process::exit(1);
    };
    let reader: Box<dyn Read> = if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    for line in BufReader::new(reader).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
        let headers = v
            .get("headers")
            .and_then(|h| h.as_array())
            .map(|pairs| {
                pairs
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p.get(0)?.as_str()?.to_owned(),
                            p.get(1)?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let attack = matches!(text("label").as_str(), "attack" | "anomalous");
        out.push((
            HttpRequest {
                method: text("method"),
                uri: text("uri"),
                protocol: "HTTP/1.1".into(),
                headers,
                body: text("body").into_bytes(),
                client_ip: None,
            },
            attack,
        ));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut train = Vec::new();
    let mut test = Vec::new();
    let mut warmup = 200;
    let mut show = 0usize;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "--train" => {
                i += 1;
                train.extend(args.get(i).cloned());
            }
            "--warmup" => {
                i += 1;
                warmup = args.get(i).and_then(|w| w.parse().ok()).unwrap_or(200);
            }
            "--show" => {
                i += 1;
                show = args.get(i).and_then(|w| w.parse().ok()).unwrap_or(0);
            }
            f => test.push(f.to_owned()),
        }
        i += 1;
    }
    let b = Baselines::new(BaselinesConfig {
        warmup,
        ..Default::default()
    });
    let mut learnt = 0;
    for f in &train {
        for (r, attack) in load(f) {
            if !attack {
                b.train(&r, None);
                learnt += 1;
            }
        }
    }
    println!(
        "learnt {learnt} requests: {} endpoints, {} established",
        b.len(),
        b.established()
    );
    let mut hist: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    let mut kinds: BTreeMap<(&'static str, bool), usize> = BTreeMap::new();
    let mut shown = 0;
    let started = std::time::Instant::now();
    let mut n = 0;
    for f in &test {
        for (r, attack) in load(f) {
            n += 1;
            let o = b.judge(&r, None);
            let e = hist.entry(o.points).or_default();
            if attack {
                e.0 += 1;
            } else {
                e.1 += 1;
                if o.points >= 4 && shown < show {
                    shown += 1;
                    let why: Vec<&str> = o
                        .deviations
                        .iter()
                        .map(|d| d.explanation.as_str())
                        .collect();
                    println!(
                        "  normal at {} points: {} {} [{}]",
                        o.points,
                        r.method,
                        r.uri,
                        why.join("; ")
                    );
                }
            }
            for d in &o.deviations {
                *kinds.entry((d.kind, attack)).or_default() += 1;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (ta, tn): (usize, usize) = hist.values().fold((0, 0), |s, v| (s.0 + v.0, s.1 + v.1));
    println!(
        "judged {n} ({ta} attacks, {tn} normal) in {:.1} µs each",
        secs * 1e6 / n.max(1) as f64
    );
    println!("points  attacks  normal   | flagged at >= points: recall  FPR");
    let mut above = (ta, tn);
    for (p, (a, nn)) in &hist {
        println!(
            "{p:>6} {a:>8} {nn:>7}   | {:>6.4} {:>6.4}",
            above.0 as f64 / ta.max(1) as f64,
            above.1 as f64 / tn.max(1) as f64
        );
        above = (above.0 - a, above.1 - nn);
    }
    println!("deviations by kind (kind, attack?) : count");
    for ((k, a), c) in kinds {
        println!("  {k:<12} {} {c}", if a { "attack" } else { "normal" });
    }
}
