//! Access lines built from CSIC 2010 HTTP requests (normal and attack traffic: SQL
//! injection, XSS, traversal...) parse with method, path and query split right.
//!
//! `fixtures/csic2010_combined.jsonl` holds 63 combined lines built from the dataset's
//! samples with the expected fields computed independently (in Python); the second test
//! converts all 600 sample requests when `../shared/data` is present.

use std::path::Path;

use palisade_formats::{FormatSpec, build};
use serde_json::Value;

#[test]
fn fixture_lines_split_right() {
    let p = build(&FormatSpec::Combined).unwrap();
    let fixture = include_str!("fixtures/csic2010_combined.jsonl");
    let mut attacks = 0;
    for row in fixture.lines() {
        let row: Value = serde_json::from_str(row).unwrap();
        let line = row["line"].as_str().unwrap();
        let ev = p
            .parse(line.as_bytes())
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(ev.method.as_deref(), row["method"].as_str(), "{line}");
        assert_eq!(ev.path.as_deref(), row["path"].as_str(), "{line}");
        assert_eq!(ev.query.as_deref(), row["query"].as_str(), "{line}");
        assert_eq!(ev.protocol.as_deref(), row["protocol"].as_str(), "{line}");
        assert_eq!(
            ev.user_agent.as_deref(),
            row["user_agent"].as_str(),
            "{line}"
        );
        assert_eq!(ev.status.map(u64::from), row["status"].as_u64(), "{line}");
        assert!(ev.client_ip.is_some());
        assert_eq!(
            ev.uri().as_deref(),
            line.split('"').nth(1).and_then(|r| r.split(' ').nth(1))
        );
        attacks += usize::from(row["label"] == "attack");
    }
    assert_eq!(fixture.lines().count(), 63);
    assert_eq!(attacks, 33);
}

#[test]
fn all_sample_requests_as_vhost_lines() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/csic2010/sample");
    if !dir.is_dir() {
        eprintln!("skipping: {} not found", dir.display());
        return;
    }
    let fmt = r#"$host $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time"#;
    let p = build(&FormatSpec::Nginx(fmt.into())).unwrap();
    let mut n = 0;
    for file in [
        "normalTrafficTest.head300.jsonl",
        "normalTrafficTraining.head300.jsonl",
        "anomalousTrafficTest.head300.jsonl",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for row in text.lines() {
            let r: Value = serde_json::from_str(row).unwrap();
            let method = r["method"].as_str().unwrap();
            let uri = r["uri"].as_str().unwrap();
            let headers = r["headers"].as_array().unwrap();
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
                    .and_then(|h| h[1].as_str())
                    .unwrap_or("-")
            };
            // Origin form (`/tienda1/...`) as a server logs it.
            let after_scheme = uri.split_once("://").map_or(uri, |(_, r)| r);
            let target = match after_scheme.find('/') {
                Some(i) => &after_scheme[i..],
                None => uri,
            };
            let line = format!(
                "{} 10.{}.{}.{} - - [13/Dec/2010:10:00:{:02} +0100] \"{method} {target} {}\" 200 {} \"-\" \"{}\" rt=0.{:03}",
                header("Host"),
                n % 200,
                n % 7,
                n % 250 + 1,
                n % 60,
                r["version"].as_str().unwrap(),
                n * 13,
                header("User-Agent"),
                n % 1000,
            );
            let ev = p
                .parse(line.as_bytes())
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, (!q.is_empty()).then_some(q)),
                None => (target, None),
            };
            assert_eq!(ev.method.as_deref(), Some(method), "{line}");
            assert_eq!(ev.path.as_deref(), Some(path), "{line}");
            assert_eq!(ev.query.as_deref(), query, "{line}");
            assert_eq!(ev.host.as_deref(), Some(header("Host")), "{line}");
            assert_eq!(
                ev.user_agent.as_deref(),
                Some(header("User-Agent")),
                "{line}"
            );
            assert_eq!(ev.duration_us, Some((n % 1000) as u64 * 1000), "{line}");
            n += 1;
        }
    }
    assert_eq!(n, 900);
}
