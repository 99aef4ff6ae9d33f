//! Evaluates the built-in rules on the CSIC 2010 test split, reporting TPR, FPR,
//! precision, F1 and per-category counts at paranoia 1 and 2 (threshold 5).
//!
//! Usage: `cargo run --release -p palisade-detect --example eval [DATA_DIR] [--misses N]`

use std::collections::BTreeMap;
use std::io::BufRead;

use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};

fn load(path: &str) -> Vec<HttpRequest> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line.expect("read line");
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).expect("json line");
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let headers = match v.get("headers") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    Some((
                        p.first()?.as_str()?.to_string(),
                        p.get(1)?.as_str()?.to_string(),
                    ))
                })
                .collect(),
            Some(serde_json::Value::Object(o)) => o
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect(),
            _ => Vec::new(),
        };
        out.push(HttpRequest {
            method: s("method"),
            uri: s("uri"),
            protocol: s("version"),
            headers,
            body: s("body").into_bytes(),
            client_ip: None,
        });
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "/work/shared/data/csic2010".to_string());
    let misses: usize = args
        .iter()
        .position(|a| a == "--misses")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let normal = load(&format!("{dir}/normalTrafficTest.jsonl.gz"));
    let attack = load(&format!("{dir}/anomalousTrafficTest.jsonl.gz"));
    println!(
        "loaded {} normal, {} attack requests",
        normal.len(),
        attack.len()
    );
    let rules = RuleSet::builtin().expect("built-in rules");
    for pl in [1u8, 2] {
        let engine = Engine::new(
            rules.clone(),
            EngineConfig {
                paranoia: pl,
                threshold: 5,
            },
        );
        if !engine.unsupported_rules().is_empty() {
            println!(
                "PL{pl}: unsupported (not enforced) rules: {:?}",
                engine.unsupported_rules()
            );
        }
        let start = std::time::Instant::now();
        let mut tp = 0usize;
        let mut fp = 0usize;
        let mut cats_tp: BTreeMap<String, usize> = BTreeMap::new();
        let mut cats_fp: BTreeMap<String, usize> = BTreeMap::new();
        let mut rules_fp: BTreeMap<u32, usize> = BTreeMap::new();
        let mut rules_attack: BTreeMap<u32, usize> = BTreeMap::new();
        let mut rules_normal: BTreeMap<u32, usize> = BTreeMap::new();
        let mut shown = 0;
        for r in &attack {
            let v = engine.inspect(r);
            for f in &v.findings {
                *rules_attack.entry(f.rule_id).or_default() += 1;
            }
            if v.blocked {
                tp += 1;
                let mut cats: Vec<String> =
                    v.findings.iter().map(|f| f.category.to_string()).collect();
                cats.dedup();
                for c in cats {
                    *cats_tp.entry(c).or_default() += 1;
                }
            } else if shown < misses && pl == 1 {
                shown += 1;
                println!(
                    "MISS score={} {} {} body={}",
                    v.score,
                    r.method,
                    r.uri,
                    String::from_utf8_lossy(&r.body)
                );
            }
        }
        for r in &normal {
            let v = engine.inspect(r);
            for f in &v.findings {
                *rules_normal.entry(f.rule_id).or_default() += 1;
            }
            if v.blocked {
                fp += 1;
                let mut cats: Vec<String> =
                    v.findings.iter().map(|f| f.category.to_string()).collect();
                cats.dedup();
                for c in cats {
                    *cats_fp.entry(c).or_default() += 1;
                }
                for f in &v.findings {
                    *rules_fp.entry(f.rule_id).or_default() += 1;
                }
                if misses > 0 && pl == 1 {
                    println!("FP {:?}", v.findings);
                }
            }
        }
        let elapsed = start.elapsed();
        let fn_ = attack.len() - tp;
        let tn = normal.len() - fp;
        let tpr = tp as f64 / attack.len().max(1) as f64;
        let fpr = fp as f64 / normal.len().max(1) as f64;
        let precision = tp as f64 / (tp + fp).max(1) as f64;
        let f1 = if precision + tpr > 0.0 {
            2.0 * precision * tpr / (precision + tpr)
        } else {
            0.0
        };
        println!(
            "PL{pl} threshold 5: TP {tp} FN {fn_} FP {fp} TN {tn} | TPR {tpr:.3} FPR {fpr:.4} precision {precision:.3} F1 {f1:.3} | {:.1} µs/request",
            elapsed.as_secs_f64() * 1e6 / (attack.len() + normal.len()).max(1) as f64
        );
        println!("  detected attacks by category: {cats_tp:?}");
        println!("  false positives by category: {cats_fp:?}");
        println!("  false positives by rule: {rules_fp:?}");
        println!("  rule hits on attack requests: {rules_attack:?}");
        println!("  rule hits on normal requests: {rules_normal:?}");
    }
}
