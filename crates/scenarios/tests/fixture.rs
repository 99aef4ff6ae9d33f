//! End to end on a generated access log (`tools/gen_behaviour_log.py --lines 5000
//! --seed 1`): parsed with the real `combined` parser, run through the built-in
//! scenarios, checked against the generator's ground truth: every attack is detected by
//! one of its expected scenarios, no benign address (nor benign user) is flagged, and
//! the time to first detection (log time) is reported.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use palisade_core::{Event, Timestamp};
use palisade_formats::{FormatSpec, build};
use palisade_scenarios::{Alert, EngineConfig, ScenarioEngine, ScenarioSet};
use serde_json::Value;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn parse_log(path: &Path) -> Vec<Event> {
    let parser = build(&FormatSpec::Combined).unwrap();
    let text = std::fs::read(path).unwrap();
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut e = parser.parse(l).unwrap();
            e.source = "fixture".into();
            e
        })
        .collect()
}

fn ips(v: &Value) -> HashSet<IpAddr> {
    v["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn fixture_attacks_detected_benign_quiet() {
    evaluate(&fixture("behaviour.log"), &fixture("behaviour.truth.json"));
}

/// The same check on a bigger generated log:
/// `PALISADE_BEHAVIOUR_LOG=/tmp/b.log PALISADE_BEHAVIOUR_TRUTH=/tmp/b.json cargo test
/// --release -p palisade-scenarios --test fixture -- --ignored --nocapture`.
#[test]
#[ignore = "needs a generated log named by PALISADE_BEHAVIOUR_LOG and _TRUTH"]
fn generated_log_attacks_detected_benign_quiet() {
    let log = std::env::var("PALISADE_BEHAVIOUR_LOG").expect("PALISADE_BEHAVIOUR_LOG");
    let truth = std::env::var("PALISADE_BEHAVIOUR_TRUTH").expect("PALISADE_BEHAVIOUR_TRUTH");
    evaluate(Path::new(&log), Path::new(&truth));
}

fn evaluate(log: &Path, truth: &Path) {
    let events = parse_log(log);
    let truth: Value = serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap();
    assert_eq!(events.len(), truth["lines"].as_u64().unwrap() as usize);

    let mut engine = ScenarioEngine::new(ScenarioSet::builtin().unwrap(), EngineConfig::default());
    let mut alerts: Vec<Alert> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        engine.observe_into(e, Some(i as i64 + 1), &mut alerts);
    }

    let mut per_scenario: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &alerts {
        *per_scenario.entry(a.scenario.as_str()).or_default() += 1;
    }
    println!(
        "{} events, {} alerts: {per_scenario:?}",
        events.len(),
        alerts.len()
    );

    let mut attack_ips: HashSet<IpAddr> = HashSet::new();
    let mut attacked_users: HashSet<String> = HashSet::new();
    for attack in truth["attacks"].as_array().unwrap() {
        let kind = attack["type"].as_str().unwrap();
        let set = ips(attack);
        attack_ips.extend(set.iter().copied());
        let user = attack["user"].as_str();
        let expected: Vec<&str> = attack["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let start = Timestamp::parse_api(attack["start"].as_str().unwrap()).unwrap();
        let matching: Vec<&Alert> = alerts
            .iter()
            .filter(|a| {
                a.client_ip.is_some_and(|ip| set.contains(&ip))
                    || (a.client_ip.is_none()
                        && user.is_some_and(|u| a.group.iter().any(|(k, v)| k == "user" && v == u)))
            })
            .collect();
        let hit: Vec<&Alert> = matching
            .iter()
            .copied()
            .filter(|a| expected.contains(&a.scenario.as_str()))
            .collect();
        let first = hit.iter().map(|a| a.last_ts).min();
        let names: Vec<&str> = matching.iter().map(|a| a.scenario.as_str()).collect();
        match first {
            Some(t) => println!(
                "{kind:24} detected after {:>5.0} s (log time) by {names:?}",
                (t.as_micros() - start.as_micros()) as f64 / 1e6
            ),
            None => println!("{kind:24} MISSED (alerts for its addresses: {names:?})"),
        }
        assert!(
            first.is_some(),
            "{kind} not detected by any of {expected:?}"
        );
        if let Some(u) = user {
            attacked_users.insert(u.to_owned());
        }
    }

    for actor in truth["benign"].as_array().unwrap() {
        let set = ips(actor);
        assert!(
            set.is_disjoint(&attack_ips),
            "truth is inconsistent: {actor}"
        );
        let flagged: Vec<String> = alerts
            .iter()
            .filter(|a| a.client_ip.is_some_and(|ip| set.contains(&ip)))
            .map(|a| format!("{} {}", a.scenario, a.key()))
            .collect();
        assert!(
            flagged.is_empty(),
            "benign {} flagged: {flagged:?}",
            actor["actor"]
        );
    }
    // Alerts keyed by user only (distributed brute force) must be about attacked users.
    for a in alerts.iter().filter(|a| a.client_ip.is_none()) {
        let user = a
            .group
            .iter()
            .find(|(k, _)| k == "user")
            .map(|(_, v)| v.clone());
        assert!(
            user.as_ref().is_some_and(|u| attacked_users.contains(u)),
            "benign user flagged: {}",
            a.key()
        );
    }
    // Every alert is about an attack.
    for a in &alerts {
        if let Some(ip) = a.client_ip {
            assert!(attack_ips.contains(&ip), "unexpected alert {}", a.key());
        }
    }
}
