//! The WAF's request parser and full inspection on arbitrary requests: the first bytes
//! choose method, target, a content type and headers; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let rules = RuleSet::builtin().expect("built-in rules load");
        Engine::new(rules, EngineConfig { paranoia: 4, threshold: 5 })
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(4, '\n');
    let uri = lines.next().unwrap_or("/").to_owned();
    let content_type = match data.first().copied().unwrap_or(0) % 4 {
        0 => "application/x-www-form-urlencoded",
        1 => "application/json",
        2 => "multipart/form-data; boundary=XyZ",
        _ => "text/xml",
    };
    let headers: Vec<(String, String)> = lines
        .next()
        .unwrap_or("")
        .split('\t')
        .filter_map(|h| h.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain([("content-type".to_owned(), content_type.to_owned()), ("host".to_owned(), "x".to_owned())])
        .collect();
    let body = lines.next().unwrap_or("").as_bytes().to_vec();
    let request = HttpRequest { method: "POST".into(), uri, protocol: "HTTP/1.1".into(), headers, body, client_ip: None };
    let verdict = engine().inspect(&request);
    assert_eq!(verdict.blocked, verdict.score >= verdict.threshold);
});
