//! Behaviour tests: each built-in scenario fires on its attack and stays quiet on
//! realistic benign traffic; engine-wide properties (blackhole, reordering, bounds,
//! snapshots, threats, metrics).

use std::net::IpAddr;

use palisade_core::{Event, EventKind, Timestamp};

use crate::{Alert, EngineConfig, ScenarioEngine, ScenarioSet, Snapshot};

/// 2024-03-01T08:00:00Z.
const T0: i64 = 1_709_280_000;

fn engine() -> ScenarioEngine {
    ScenarioEngine::new(ScenarioSet::builtin().unwrap(), EngineConfig::default())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An HTTP event `secs` after [`T0`] (fractions allowed).
fn http(secs: f64, client: &str, method: &str, path: &str, status: u16) -> Event {
    Event {
        ts: Timestamp(T0 * 1_000_000 + (secs * 1e6) as i64),
        kind: EventKind::Http,
        source: "test".into(),
        client_ip: Some(ip(client)),
        method: Some(method.into()),
        path: Some(path.into()),
        status: Some(status),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0".into()),
        ..Event::default()
    }
}

fn login(secs: f64, client: &str, user: &str, status: u16) -> Event {
    Event {
        user: Some(user.into()),
        ..http(secs, client, "POST", "/login", status)
    }
}

fn ssh(secs: f64, client: &str, user: &str, outcome: &str) -> Event {
    Event {
        ts: Timestamp(T0 * 1_000_000 + (secs * 1e6) as i64),
        kind: EventKind::Auth,
        source: "auth.log".into(),
        client_ip: Some(ip(client)),
        user: Some(user.into()),
        extra: vec![
            ("program".into(), "sshd".into()),
            ("outcome".into(), outcome.into()),
            ("auth_method".into(), "password".into()),
        ],
        ..Event::default()
    }
}

fn run(engine: &mut ScenarioEngine, events: &[Event]) -> Vec<Alert> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        engine.observe_into(e, Some(i as i64 + 1), &mut out);
    }
    out
}

fn names(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.scenario.as_str()).collect()
}

fn fired(alerts: &[Alert], name: &str) -> usize {
    alerts.iter().filter(|a| a.scenario == name).count()
}

/// A small deterministic generator, so benign traffic is varied but reproducible.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A crawler fetching 2,000 pages over two hours, 3% of them gone (404), plus the
/// usual robots.txt and favicon misses.
fn googlebot() -> Vec<Event> {
    let mut r = Lcg(7);
    let mut out = vec![http(0.0, "66.249.66.1", "GET", "/robots.txt", 404)];
    for i in 0..2000 {
        let t = f64::from(i) * 3.6 + (r.below(1000) as f64) / 1000.0;
        let status = if r.below(100) < 3 { 404 } else { 200 };
        let path = format!("/blog/{}/post-{}", 2015 + r.below(10), r.below(5000));
        let mut e = http(t, "66.249.66.1", "GET", &path, status);
        e.user_agent = Some("Mozilla/5.0 (compatible; Googlebot/2.1)".into());
        out.push(e);
    }
    out.push(http(7300.0, "66.249.66.1", "GET", "/favicon.ico", 404));
    out
}

/// An office behind one NAT address: 60 people log in over an hour (three mistype
/// once), then browse and call the API.
fn office() -> Vec<Event> {
    let nat = "198.51.100.10";
    let mut r = Lcg(11);
    let mut out = Vec::new();
    for u in 0..60 {
        let t = f64::from(u) * 60.0 + r.below(50) as f64;
        let user = format!("employee{u}");
        if u % 20 == 7 {
            out.push(login(t - 8.0, nat, &user, 401));
        }
        out.push(login(t, nat, &user, 302));
        for k in 0..30 {
            let path = match k % 3 {
                0 => "/dashboard".to_owned(),
                1 => format!("/api/v1/items/{}", r.below(500)),
                _ => "/static/app.js".to_owned(),
            };
            out.push(http(t + 1.0 + f64::from(k) * 20.0, nat, "GET", &path, 200));
        }
    }
    out.sort_by_key(|e| e.ts);
    out
}

fn quiet(events: &[Event]) {
    let mut e = engine();
    let alerts = run(&mut e, events);
    assert!(
        alerts.is_empty(),
        "benign traffic alerted: {:?}",
        names(&alerts)
    );
}

#[test]
fn benign_crawler_office_and_typos_stay_quiet() {
    quiet(&googlebot());
    quiet(&office());
    // A person who mistypes a password twice.
    quiet(&[
        login(0.0, "192.0.2.50", "carol", 401),
        login(6.0, "192.0.2.50", "carol", 401),
        login(15.0, "192.0.2.50", "carol", 302),
    ]);
    // An admin who mistypes an SSH password twice, and key logins.
    quiet(&[
        ssh(0.0, "192.0.2.60", "deploy", "failure"),
        ssh(5.0, "192.0.2.60", "deploy", "failure"),
        ssh(9.0, "192.0.2.60", "deploy", "success"),
        ssh(100.0, "192.0.2.61", "deploy", "success"),
    ]);
    // Someone who typed the wrong user name three times.
    quiet(&[
        ssh(0.0, "192.0.2.62", "ubunt", "invalid_user"),
        ssh(4.0, "192.0.2.62", "ubunt", "invalid_user"),
        ssh(8.0, "192.0.2.62", "ubunt", "invalid_user"),
    ]);
    // A browser loading a page with 80 assets at once, and a missing favicon.
    let mut page: Vec<Event> = (0..80)
        .map(|i| {
            http(
                f64::from(i) * 0.02,
                "192.0.2.70",
                "GET",
                &format!("/static/{i}.png"),
                200,
            )
        })
        .collect();
    page.push(http(2.0, "192.0.2.70", "GET", "/favicon.ico", 404));
    page.push(http(
        2.1,
        "192.0.2.70",
        "GET",
        "/apple-touch-icon-precomposed.png",
        404,
    ));
    quiet(&page);
    // An API client at a steady 3 requests a second for an hour.
    let api: Vec<Event> = (0..10_800)
        .map(|i| {
            http(
                f64::from(i) / 3.0,
                "192.0.2.80",
                "GET",
                "/api/v1/items",
                200,
            )
        })
        .collect();
    quiet(&api);
    // One stray probe for /.env and one for wp-login.php from a background bot.
    quiet(&[
        http(0.0, "192.0.2.90", "GET", "/.env", 404),
        http(900.0, "192.0.2.91", "GET", "/wp-login.php", 404),
    ]);
    // A WordPress site's own users.
    quiet(&[
        http(0.0, "192.0.2.95", "GET", "/wp-login.php", 200),
        Event {
            user: Some("editor".into()),
            ..http(5.0, "192.0.2.95", "POST", "/wp-login.php", 302)
        },
        http(6.0, "192.0.2.95", "GET", "/wp-admin/", 200),
        http(9.0, "192.0.2.95", "GET", "/wp-admin/edit.php", 200),
    ]);
}

#[test]
fn path_probing_fires_with_samples_and_a_ban() {
    let mut e = engine();
    let words = [
        "admin", "backup", "old", "test", "dev", "api2", "cms", "portal", "staging", "tmp",
        "files", "private", "upload", "db", "secret",
    ];
    let events: Vec<Event> = words
        .iter()
        .enumerate()
        .map(|(i, w)| http(i as f64 * 0.5, "203.0.113.5", "GET", &format!("/{w}/"), 404))
        .collect();
    let alerts = run(&mut e, &events);
    assert_eq!(
        fired(&alerts, "http-path-probing"),
        1,
        "{:?}",
        names(&alerts)
    );
    let a = &alerts[0];
    assert_eq!(a.client_ip, Some(ip("203.0.113.5")));
    assert_eq!(a.events, 11);
    assert_eq!(a.distinct, Some(11));
    assert_eq!(a.samples.len(), 10);
    assert_eq!(a.samples[0], "/admin/");
    assert_eq!(a.event_ids, (1..=11).collect::<Vec<i64>>());
    let d = a.decision.as_ref().unwrap();
    assert_eq!(
        (
            d.kind.as_str(),
            d.target.to_string().as_str(),
            d.duration_secs
        ),
        ("ban", "203.0.113.5", 4 * 3600)
    );
    assert_eq!(a.key(), "client_ip=203.0.113.5");
}

#[test]
fn request_flood_fires_on_a_flood_only() {
    let mut e = engine();
    let events: Vec<Event> = (0..2000)
        .map(|i| http(f64::from(i) / 50.0, "203.0.113.6", "GET", "/search", 200))
        .collect();
    let alerts = run(&mut e, &events);
    assert_eq!(
        fired(&alerts, "http-request-flood"),
        1,
        "{:?}",
        names(&alerts)
    );
    let a = alerts
        .iter()
        .find(|a| a.scenario == "http-request-flood")
        .unwrap();
    // 50/s against a leak of 10/s: 301 in the bucket after about 7.5 s.
    assert!(a.events > 300 && a.events < 400, "{}", a.events);
    assert_eq!(a.event_ids.len(), 50, "evidence is bounded");
}

#[test]
fn http_auth_bruteforce_fires_on_failed_logins() {
    let mut e = engine();
    let events: Vec<Event> = (0..20)
        .map(|i| login(f64::from(i) * 3.0, "203.0.113.7", "admin", 401))
        .collect();
    let alerts = run(&mut e, &events);
    assert_eq!(
        fired(&alerts, "http-auth-bruteforce"),
        1,
        "{:?}",
        names(&alerts)
    );
    let a = &alerts[0];
    assert_eq!(a.samples, vec!["admin".to_owned()]);
    assert_eq!(a.events, 6);
    // HTTP Basic failures on any path count too.
    let mut e = engine();
    let basic: Vec<Event> = (0..10)
        .map(|i| Event {
            user: Some("admin".into()),
            ..http(f64::from(i), "203.0.113.8", "GET", "/private/", 401)
        })
        .collect();
    assert_eq!(fired(&run(&mut e, &basic), "http-auth-bruteforce"), 1);
}

#[test]
fn login_flood_catches_apps_that_answer_200() {
    let mut e = engine();
    let events: Vec<Event> = (0..60)
        .map(|i| login(f64::from(i) * 2.0, "203.0.113.9", "admin", 200))
        .collect();
    let alerts = run(&mut e, &events);
    assert_eq!(names(&alerts), vec!["http-login-flood"]);
}

#[test]
fn sshd_bruteforce_slow_bruteforce_and_enumeration() {
    let mut e = engine();
    let fast: Vec<Event> = (0..10)
        .map(|i| ssh(f64::from(i) * 3.0, "203.0.113.10", "root", "failure"))
        .collect();
    let alerts = run(&mut e, &fast);
    assert_eq!(names(&alerts), vec!["sshd-bruteforce"]);
    assert_eq!(alerts[0].samples, vec!["root".to_owned()]);

    let mut e = engine();
    let slow: Vec<Event> = (0..40)
        .map(|i| ssh(f64::from(i) * 120.0, "203.0.113.11", "root", "failure"))
        .collect();
    let alerts = run(&mut e, &slow);
    assert_eq!(names(&alerts), vec!["sshd-slow-bruteforce"]);

    let mut e = engine();
    let users = ["admin", "oracle", "test", "postgres", "ubuntu"];
    let enumeration: Vec<Event> = users
        .iter()
        .enumerate()
        .map(|(i, u)| ssh(i as f64 * 5.0, "203.0.113.12", u, "invalid_user"))
        .collect();
    let alerts = run(&mut e, &enumeration);
    assert_eq!(
        fired(&alerts, "sshd-user-enumeration"),
        1,
        "{:?}",
        names(&alerts)
    );
    let a = alerts
        .iter()
        .find(|a| a.scenario == "sshd-user-enumeration")
        .unwrap();
    assert_eq!(a.distinct, Some(4));
    assert_eq!(a.samples, vec!["admin", "oracle", "test", "postgres"]);
}

#[test]
fn credential_stuffing_over_http_and_ssh() {
    let mut e = engine();
    // Slow enough (one every 40 s) that the per-address brute-force scenarios stay quiet.
    let events: Vec<Event> = (0..12)
        .map(|i| {
            login(
                f64::from(i) * 40.0,
                "203.0.113.13",
                &format!("user{i}@example.com"),
                401,
            )
        })
        .collect();
    let alerts = run(&mut e, &events);
    assert_eq!(names(&alerts), vec!["credential-stuffing"]);
    assert_eq!(alerts[0].distinct, Some(6));
    assert_eq!(
        alerts[0].decision.as_ref().unwrap().duration_secs,
        24 * 3600
    );

    let mut e = engine();
    let events: Vec<Event> = (0..8)
        .map(|i| {
            ssh(
                f64::from(i) * 45.0,
                "203.0.113.14",
                &format!("user{i}"),
                "failure",
            )
        })
        .collect();
    assert_eq!(fired(&run(&mut e, &events), "credential-stuffing"), 1);
}

#[test]
fn distributed_bruteforce_groups_by_user() {
    let mut e = engine();
    let events: Vec<Event> = (0..15)
        .map(|i| login(f64::from(i) * 240.0, &format!("198.18.{i}.7"), "alice", 401))
        .collect();
    let alerts = run(&mut e, &events);
    assert_eq!(names(&alerts), vec!["distributed-bruteforce"]);
    let a = &alerts[0];
    assert_eq!(a.group, vec![("user".to_owned(), "alice".to_owned())]);
    assert_eq!(a.client_ip, None);
    assert_eq!(a.decision, None);
    assert_eq!(a.distinct, Some(10));
    assert_eq!(a.samples.len(), 10);
    assert_eq!(a.samples[0], "198.18.0.7");
    // Found at the tenth address, 36 minutes in.
    assert_eq!(
        a.last_ts.as_micros() - a.first_ts.as_micros(),
        9 * 240 * 1_000_000
    );
    // The same user failing from three places, and sshd guesses at a user that does not
    // exist, stay quiet.
    let mut e = engine();
    let mut benign = vec![
        login(0.0, "192.0.2.1", "alice", 401),
        login(600.0, "192.0.2.2", "alice", 401),
        login(1200.0, "198.51.100.10", "alice", 401),
    ];
    benign.extend((0..30).map(|i| {
        ssh(
            f64::from(i) * 60.0,
            &format!("198.18.{i}.9"),
            "nosuchuser",
            "invalid_user",
        )
    }));
    let alerts = run(&mut e, &benign);
    assert_eq!(
        fired(&alerts, "distributed-bruteforce"),
        0,
        "{:?}",
        names(&alerts)
    );
}

#[test]
fn sensitive_files_and_secret_served() {
    let mut e = engine();
    let events = [
        http(0.0, "203.0.113.15", "GET", "/.env", 404),
        http(1.0, "203.0.113.15", "GET", "/.git/config", 404),
        http(2.0, "203.0.113.15", "GET", "/wp-login.php", 404),
    ];
    let alerts = run(&mut e, &events);
    assert_eq!(names(&alerts), vec!["http-sensitive-files"]);
    assert_eq!(
        alerts[0].samples,
        vec!["/.env", "/.git/config", "/wp-login.php"]
    );

    let mut e = engine();
    let alerts = run(
        &mut e,
        &[http(0.0, "203.0.113.16", "GET", "/.git/HEAD", 200)],
    );
    assert_eq!(names(&alerts), vec!["http-secret-file-served"]);
    assert_eq!(alerts[0].severity, crate::Severity::Critical);
    assert_eq!(alerts[0].samples, vec!["/.git/HEAD"]);
}

#[test]
fn blackhole_suppresses_repeats_then_realerts() {
    let mut e = engine();
    // sshd-bruteforce: blackhole 4 h. 30 failures in a minute: one alert.
    let burst: Vec<Event> = (0..30)
        .map(|i| ssh(f64::from(i) * 2.0, "203.0.113.17", "root", "failure"))
        .collect();
    assert_eq!(fired(&run(&mut e, &burst), "sshd-bruteforce"), 1);
    // Five hours later the attack resumes: a new alert.
    let again: Vec<Event> = (0..10)
        .map(|i| {
            ssh(
                5.0 * 3600.0 + f64::from(i),
                "203.0.113.17",
                "root",
                "failure",
            )
        })
        .collect();
    assert_eq!(fired(&run(&mut e, &again), "sshd-bruteforce"), 1);
}

#[test]
fn out_of_order_events_within_tolerance_still_fire_once() {
    let mut events: Vec<Event> = (0..20)
        .map(|i| ssh(f64::from(i) * 2.0, "203.0.113.18", "root", "failure"))
        .collect();
    // Swap neighbours in blocks, as two interleaved files would.
    for pair in events.chunks_mut(4) {
        pair.reverse();
    }
    let mut e = engine();
    let alerts = run(&mut e, &events);
    assert_eq!(fired(&alerts, "sshd-bruteforce"), 1, "{:?}", names(&alerts));
    // An event far older than its bucket is ignored rather than counted.
    let mut e = engine();
    let mut late: Vec<Event> = (0..5)
        .map(|i| ssh(10_000.0 + f64::from(i), "203.0.113.19", "root", "failure"))
        .collect();
    late.extend((0..5).map(|i| ssh(f64::from(i), "203.0.113.19", "root", "failure")));
    assert_eq!(fired(&run(&mut e, &late), "sshd-bruteforce"), 0);
}

#[test]
fn snapshot_carries_an_attack_across_a_restart() {
    let attack: Vec<Event> = (0..6)
        .map(|i| {
            login(
                f64::from(i) * 40.0,
                "203.0.113.20",
                &format!("victim{i}"),
                401,
            )
        })
        .collect();
    let (first, second) = attack.split_at(3);
    let mut before = engine();
    assert!(run(&mut before, first).is_empty());
    let bytes = before.snapshot().to_json();
    drop(before);

    // Without the snapshot the second half alone is not enough…
    let mut cold = engine();
    assert_eq!(fired(&run(&mut cold, second), "credential-stuffing"), 0);

    // …with it, the alert fires, with the first half's evidence.
    let mut after = engine();
    let report = after.restore(Snapshot::from_json(&bytes).unwrap()).unwrap();
    assert!(report.restored >= 2, "{report:?}");
    let mut out = Vec::new();
    for (i, ev) in second.iter().enumerate() {
        after.observe_into(ev, Some(100 + i as i64), &mut out);
    }
    assert_eq!(names(&out), vec!["credential-stuffing"]);
    assert_eq!(out[0].event_ids[..3], [1, 2, 3]);
    assert_eq!(out[0].samples[0], "victim0");
    assert_eq!(after.now(), Some(second.last().unwrap().ts));

    // A changed scenario's buckets are not restored; unknown versions are refused.
    let mut snap = Snapshot::from_json(&bytes).unwrap();
    for s in &mut snap.scenarios {
        s.fingerprint ^= 1;
    }
    let report = engine().restore(snap.clone()).unwrap();
    assert_eq!(report.restored, 0);
    snap.version = 99;
    assert!(engine().restore(snap).is_err());
    assert!(Snapshot::from_json(b"{\"version\":2}").is_err());
}

#[test]
fn buckets_are_capped_and_expire() {
    let config = EngineConfig {
        max_buckets: 100,
        ..EngineConfig::default()
    };
    let mut e = ScenarioEngine::new(ScenarioSet::builtin().unwrap(), config);
    let evictions = e.meters.evictions.clone();
    let evictions = || evictions.get();
    let before = evictions();
    for i in 0..1000u32 {
        let client = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        e.observe(&http(f64::from(i) * 0.01, &client, "GET", "/", 200), None);
    }
    assert_eq!(e.stats().buckets, 100);
    assert!(evictions() - before >= 900);
    // The most recent keys are the ones kept.
    let snap = e.snapshot();
    assert!(
        snap.scenarios[0]
            .buckets
            .iter()
            .any(|b| b.ip == Some(ip("10.0.3.231")))
    );
    // Everything drains: a sweep far in the future empties the engine.
    let removed = e.sweep(Timestamp((T0 + 86_400) * 1_000_000));
    assert_eq!(removed, 100);
    assert_eq!(e.stats().buckets, 0);
}

#[test]
fn automatic_sweeps_keep_only_live_buckets() {
    let mut e = engine();
    // 5,000 addresses each send one request, one a second: with a 60 s sweep interval
    // and a 100 ms leak interval, only the last minute's buckets can be alive.
    for i in 0..5000u32 {
        let client = format!("10.1.{}.{}", i >> 8, i & 255);
        e.observe(&http(f64::from(i), &client, "GET", "/", 200), None);
    }
    assert!(e.stats().buckets <= 61, "{}", e.stats().buckets);
}

#[test]
fn networks_group_and_ban_as_a_range() {
    let mut set = ScenarioSet::default();
    set.add_source(
        "net.toml",
        r#"
[[scenario]]
id = 1000100
name = "net-probing"
description = "404 bursts from one /24"
category = "scanner"
severity = "notice"
type = "leaky"
capacity = 3
leak = "1 per 1m"
group_by = ["client_net"]
filter = { kind = "http", status = "4xx" }
decision = { type = "ban", duration = "1h", scope = "range" }
"#,
    )
    .unwrap();
    let mut e = ScenarioEngine::new(set, EngineConfig::default());
    let events: Vec<Event> = (0..4)
        .map(|i| {
            http(
                f64::from(i),
                &format!("203.0.113.{}", 10 + i),
                "GET",
                "/x",
                404,
            )
        })
        .collect();
    let alerts = run(&mut e, &events);
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.network.as_deref(), Some("203.0.113.0/24"));
    assert_eq!(a.client_ip, Some(ip("203.0.113.13")));
    assert_eq!(
        a.decision.as_ref().unwrap().target.to_string(),
        "203.0.113.0/24"
    );
    assert_eq!(a.key(), "client_ip/24/64=203.0.113.0/24");
}

#[test]
fn alerts_convert_to_threats_and_count_in_metrics() {
    let mut e = engine();
    let events: Vec<Event> = (0..6)
        .map(|i| login(f64::from(i), "203.0.113.21", "admin", 401))
        .collect();
    let alerts = run(&mut e, &events);
    let a = alerts.first().unwrap();
    let t = a.to_threat();
    assert_eq!(t.rule_ids, vec![a.scenario_id]);
    assert_eq!(t.category, "bruteforce");
    assert_eq!(t.severity.as_str(), "error");
    assert_eq!(t.score, 4);
    assert_eq!(t.client_ip, Some(ip("203.0.113.21")));
    assert_eq!(t.source, "scenario");
    assert_eq!(t.decision.as_str(), "block");
    assert_eq!(t.event_id, Some(6));
    assert_eq!(t.method.as_deref(), Some("POST"));
    assert_eq!(t.uri.as_deref(), Some("/login"));
    assert_eq!(t.ts, a.last_ts);
    let locations: Vec<&str> = t.evidence.iter().map(|e| e.location.as_str()).collect();
    assert_eq!(locations, vec!["behaviour", "samples", "events"]);
    let summary: serde_json::Value = serde_json::from_str(&t.evidence[0].decoded_value).unwrap();
    assert_eq!(summary["events"], 6);
    assert_eq!(summary["group"]["client_ip"], "203.0.113.21");
    assert_eq!(summary["decision"]["target"], "203.0.113.21");
    assert!(
        t.evidence[0]
            .matched
            .starts_with("6 events in 5s from client_ip=203.0.113.21; ban"),
        "{}",
        t.evidence[0].matched
    );
    let ids: Vec<i64> = serde_json::from_str(&t.evidence[2].decoded_value).unwrap();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6]);
    let text = palisade_core::metrics::registry().render();
    assert!(
        text.contains("palisade_scenario_overflows_total{scenario=\"http-auth-bruteforce\"}"),
        "{text}"
    );
    assert!(text.contains("palisade_scenario_buckets "));
}

#[test]
fn other_event_kinds_cost_nothing() {
    let mut e = engine();
    let ev = Event {
        kind: EventKind::Flow,
        client_ip: Some(ip("192.0.2.1")),
        ..Event::default()
    };
    for _ in 0..10 {
        assert!(e.observe(&ev, None).is_empty());
    }
    assert_eq!(e.stats().buckets, 0);
}

/// An sshd failure as old Red Hat syslogs report it: only PAM speaks, under the tag
/// `sshd(pam_unix)`, so the event's program is not `sshd` but its PAM service is.
fn pam_ssh(secs: f64, client: &str, outcome: &str) -> Event {
    Event {
        ts: Timestamp(T0 * 1_000_000 + (secs * 1e6) as i64),
        kind: EventKind::Auth,
        source: "messages".into(),
        client_ip: Some(ip(client)),
        user: Some("root".into()),
        extra: vec![
            ("program".into(), "sshd(pam_unix)".into()),
            ("outcome".into(), outcome.into()),
            ("pam_service".into(), "sshd".into()),
        ],
        ..Event::default()
    }
}

#[test]
fn pam_reported_sshd_failures_count_as_sshd_failures() {
    let mut e = engine();
    let events: Vec<Event> = (0..8)
        .map(|i| pam_ssh(f64::from(i) * 2.0, "203.0.113.40", "failure"))
        .collect();
    let alerts = run(&mut e, &events);
    assert_eq!(fired(&alerts, "sshd-bruteforce"), 1, "{:?}", names(&alerts));
    // OpenSSH 9.8+ logs as sshd-session: the same scenario.
    let mut e = engine();
    let events: Vec<Event> = (0..8)
        .map(|i| {
            let mut ev = ssh(f64::from(i) * 2.0, "203.0.113.41", "root", "failure");
            ev.extra[0].1 = "sshd-session".into();
            ev
        })
        .collect();
    assert_eq!(fired(&run(&mut e, &events), "sshd-bruteforce"), 1);
    // A modern sshd logs both its own line and PAM's for one attempt: two failures from
    // an admin's typo (four events) stay under the threshold.
    let mut typo = Vec::new();
    for t in [0.0, 5.0] {
        typo.push(ssh(t, "192.0.2.63", "deploy", "failure"));
        let mut p = pam_ssh(t, "192.0.2.63", "failure");
        p.extra[0].1 = "sshd".into();
        typo.push(p);
    }
    quiet(&typo);
    // PAM failures of another service (sudo) are not sshd failures.
    let sudo: Vec<Event> = (0..8)
        .map(|i| {
            let mut ev = pam_ssh(f64::from(i), "203.0.113.42", "failure");
            ev.extra[0].1 = "sudo".into();
            ev.extra[2].1 = "sudo".into();
            ev
        })
        .collect();
    let mut e = engine();
    assert_eq!(fired(&run(&mut e, &sudo), "sshd-bruteforce"), 0);
}

#[test]
fn unauthorized_flood_fires_without_a_user_on_any_path() {
    // HTTP Basic guessing as nginx logs it: 401, no user, 80 tries in 95 s.
    let events: Vec<Event> = (0..80)
        .map(|i| http(f64::from(i) * 1.2, "203.0.113.50", "GET", "/private/", 401))
        .collect();
    let mut e = engine();
    let alerts = run(&mut e, &events);
    assert_eq!(
        fired(&alerts, "http-unauthorized-flood"),
        1,
        "{:?}",
        names(&alerts)
    );
    // A form login on an unlisted path answering 403.
    let events: Vec<Event> = (0..40)
        .map(|i| {
            http(
                f64::from(i) * 2.0,
                "203.0.113.51",
                "POST",
                "/portal/enter",
                403,
            )
        })
        .collect();
    let mut e = engine();
    assert_eq!(fired(&run(&mut e, &events), "http-unauthorized-flood"), 1);
}

#[test]
fn unauthorized_flood_stays_quiet_on_benign_401s() {
    // A tab with an expired token polling every 10 s for an hour.
    quiet(
        &(0..360)
            .map(|i| {
                http(
                    f64::from(i) * 10.0,
                    "192.0.2.110",
                    "GET",
                    "/api/notifications",
                    401,
                )
            })
            .collect::<Vec<_>>(),
    );
    // A burst of 401s from a page whose 15 API calls fail at once, then a login.
    let mut burst: Vec<Event> = (0..15)
        .map(|i| {
            http(
                f64::from(i) * 0.05,
                "192.0.2.111",
                "GET",
                &format!("/api/w/{i}"),
                401,
            )
        })
        .collect();
    burst.push(login(20.0, "192.0.2.111", "dana", 302));
    quiet(&burst);
    // GET requests answered 403 (forbidden pages) are not login failures.
    quiet(
        &(0..60)
            .map(|i| http(f64::from(i), "192.0.2.112", "GET", "/admin/reports", 403))
            .collect::<Vec<_>>(),
    );
}
