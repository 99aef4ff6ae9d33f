//! The detection stage across the pipeline: pushed log lines become threats pointing at
//! their events, rule files reload while running, and the protecting proxy runs inside
//! the service sharing its engine.

use std::time::Duration;

use crate::helpers::{line, spawn_app, spawn_with, test_settings};

async fn threats(app: &crate::helpers::TestApp, query: &str, want: usize) -> serde_json::Value {
    let mut page = serde_json::Value::Null;
    for _ in 0..200 {
        let (_, p) = app.get_json(&format!("/api/v1/threats{query}")).await;
        if p["items"].as_array().is_some_and(|i| i.len() >= want) {
            return p;
        }
        page = p;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no threats for {query}: {page}");
}

#[tokio::test]
async fn pushed_attack_lines_become_threats_pointing_at_their_events() {
    let app = spawn_app().await;
    let body = [
        line(
            "198.51.100.7",
            "10/Oct/2025:13:55:36 +0000",
            "GET",
            "/index.html",
            200,
            "Mozilla/5.0",
        ),
        line(
            "203.0.113.9",
            "10/Oct/2025:13:55:37 +0000",
            "GET",
            "/item.php?id=1%27%20UNION%20SELECT%20user,password%20FROM%20users--",
            200,
            "Mozilla/5.0",
        ),
        line(
            "198.51.100.7",
            "10/Oct/2025:13:55:38 +0000",
            "GET",
            "/about",
            200,
            "Mozilla/5.0",
        ),
    ]
    .join("\n");
    let r = app.push("?source=web&format=combined", &body).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let page = threats(&app, "?category=sqli", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, all) = app.get_json("/api/v1/threats").await;
    assert_eq!(
        all["items"].as_array().map(Vec::len),
        Some(1),
        "only the attack line: {all}"
    );
    let items = page["items"].as_array().unwrap();
    let t = &items[0];
    assert_eq!(t["client_ip"], "203.0.113.9");
    assert_eq!(t["source"], "web");
    assert_eq!(t["decision"], "detect", "a log line was not blocked");
    assert!(
        t["ts"].as_str().unwrap().starts_with("2025-10-10T13:55:37"),
        "{t}"
    );
    let event_id = t["event_id"]
        .as_i64()
        .expect("the threat points at its event");
    let (status, event) = app.get_json(&format!("/api/v1/events/{event_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(event["path"], "/item.php");
    assert_eq!(event["client_ip"], "203.0.113.9");
    app.stop().await;
}

const SITE_RULE: &str = r#"
[[rule]]
id = 990001
name = "Internal admin tool"
category = "protocol"
severity = "critical"
targets = ["path"]
transforms = ["lowercase"]
match = { contains_any = ["/secret-admin"] }
"#;

#[tokio::test]
async fn rule_files_reload_while_running_and_bad_edits_keep_the_old_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir, None);
    settings.detection.rules_dir = Some(rules.path().to_path_buf());
    settings.detection.reload_every = Some(Duration::from_millis(100));
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let check = |app: &crate::helpers::TestApp| {
        app.req(reqwest::Method::GET, "/api/v1/check")
            .header("X-Original-URI", "/Secret-Admin/users")
            .send()
    };
    assert_eq!(check(&app).await.unwrap().status(), 200);
    let (_, before) = app.get_json("/api/v1/detection/rules").await;

    std::fs::write(rules.path().join("site.toml"), SITE_RULE).unwrap();
    let mut status = 0;
    for _ in 0..100 {
        status = check(&app).await.unwrap().status().as_u16();
        if status == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 403, "the watcher loaded the new file");
    let (_, after) = app.get_json("/api/v1/detection/rules").await;
    assert_eq!(
        after["rules"].as_u64(),
        before["rules"].as_u64().map(|n| n + 1)
    );
    // The reload the watcher made is in the activity feed.
    let mut feed = serde_json::Value::Null;
    for _ in 0..100 {
        feed = app.get_json("/api/v1/activities?kind=rules.").await.1;
        if feed["items"][0]["kind"] == "rules.reloaded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(feed["items"][0]["kind"], "rules.reloaded", "{feed}");
    assert_eq!(
        feed["items"][0]["detail"]["trigger"], "file change",
        "{feed}"
    );
    assert_eq!(feed["items"][0]["detail"]["ok"], true, "{feed}");

    std::fs::write(
        rules.path().join("zz.toml"),
        "[[rule]]\nid = 1\nnme = \"typo\"\n",
    )
    .unwrap();
    let r = app
        .req(reqwest::Method::POST, "/api/v1/detection/rules/reload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("zz.toml"),
        "{problem}"
    );
    assert_eq!(
        check(&app).await.unwrap().status(),
        403,
        "old rules still in force"
    );
    let (_, status_now) = app.get_json("/api/v1/detection/rules").await;
    assert!(
        status_now["error"]
            .as_str()
            .is_some_and(|e| e.contains("zz.toml"))
    );

    let viewer = app.token_for("vera", "viewer").await;
    let r = app
        .client
        .post(app.url("/api/v1/detection/rules/reload"))
        .bearer_auth(viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "only admins reload rules");
    app.stop().await;
}

#[tokio::test]
async fn the_protecting_proxy_shares_the_services_engine_and_records_threats() {
    // A small upstream.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "hello from the app" });
        axum::serve(upstream, app).await.unwrap();
    });

    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir, None);
    let mut proxy = palisade_proxy::ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        palisade_proxy::Upstream::parse(&format!("http://{up_addr}")).unwrap(),
    );
    proxy.name = "shop-proxy".into();
    // The test client stands for a front proxy on loopback forwarding for clients.
    proxy.trusted_proxies.push("127.0.0.1".parse().unwrap());
    settings.proxies.push(proxy);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let front = format!("http://{}", app.proxies[0]);
    let c = reqwest::Client::builder().no_proxy().build().unwrap();

    let ok = c
        .get(format!("{front}/products?page=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "hello from the app");
    let blocked = c
        .post(format!("{front}/comment"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("text=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 403);
    let page = threats(&app, "?category=xss", 1).await;
    assert_eq!(page["items"][0]["source"], "shop-proxy");
    assert_eq!(page["items"][0]["decision"], "block");

    // A ban through the API is enforced by the proxy at once, before inspection.
    let r = app
        .req(reqwest::Method::POST, "/api/v1/decisions")
        .json(&serde_json::json!({"kind": "ban", "value": "203.0.113.50", "duration": "1h", "reason": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let ban: serde_json::Value = r.json().await.unwrap();
    let refused = c
        .get(format!("{front}/products"))
        .header("X-Forwarded-For", "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "banned client refused");
    let other = c.get(format!("{front}/products")).send().await.unwrap();
    assert_eq!(other.status(), 200, "other clients are not");
    let r = app
        .req(
            reqwest::Method::DELETE,
            &format!("/api/v1/decisions/{}", ban["id"]),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let again = c
        .get(format!("{front}/products"))
        .header("X-Forwarded-For", "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "ban lifted");

    // Detect-only through the API applies to the proxy at once.
    let r = app
        .req(reqwest::Method::PUT, "/api/v1/detection/config")
        .json(&serde_json::json!({"mode": "detect", "paranoia": 1, "threshold": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let through = c
        .post(format!("{front}/comment"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("text=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .send()
        .await
        .unwrap();
    assert_eq!(through.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn sshd_brute_force_pushed_as_syslog_becomes_a_scenario_threat() {
    let app = spawn_app().await;
    let lines: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "Dec 10 07:27:{:02} LabSZ sshd[2420{i}]: Failed password for root from 112.95.230.3 port {} ssh2",
                10 + i,
                40000 + i
            )
        })
        .collect();
    let r = app
        .push("?source=auth&format=syslog:2025", &lines.join("\n"))
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let page = threats(&app, "?rule_id=970400", 1).await;
    let t = &page["items"][0];
    assert_eq!(t["client_ip"], "112.95.230.3", "{page}");
    assert_eq!(t["source"], "scenario");
    assert!(t["event_id"].as_i64().is_some());
    let (status, scenarios) = app.get_json("/api/v1/scenarios").await;
    assert_eq!(status, 200);
    let ssh = scenarios["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "sshd-bruteforce")
        .expect("built-in scenario listed")
        .clone();
    assert!(ssh["overflows"].as_u64().unwrap() >= 1, "{ssh}");
    app.stop().await;
}

#[tokio::test]
async fn a_live_sshd_brute_force_bans_its_source_for_check() {
    // Pushed events may cause bans only from sources listed in [decisions] ban_sources.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir, None);
    settings.decisions.ban_sources = Some(vec!["auth".into()]);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let key = app.api_key("edge", &["check"]).await;
    let (year, month, day, hour, minute, _, _) = palisade_core::Timestamp::now().to_civil();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mon = MONTHS[(month as usize).saturating_sub(1) % 12];
    let lines: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "{mon} {day:>2} {hour:02}:{minute:02}:{:02} gate sshd[900{i}]: Failed password for invalid user admin from 198.51.100.66 port {} ssh2",
                i * 2,
                50000 + i
            )
        })
        .collect();
    let r = app
        .push(
            &format!("?source=auth&format=syslog:{year}"),
            &lines.join("\n"),
        )
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let mut status = 0;
    for _ in 0..100 {
        status = app
            .client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", &key)
            .header("X-Original-URI", "/")
            .header("X-Real-IP", "198.51.100.66")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 403, "the scenario's ban is enforced by /check");
    let (_, list) = app.get_json("/api/v1/decisions?ip=198.51.100.66").await;
    let d = &list["items"][0];
    assert_eq!(d["origin"], "scenario", "{list}");
    app.stop().await;
}

#[tokio::test]
async fn an_attack_straddling_a_restart_is_still_caught() {
    let app = spawn_app().await;
    let line = |i: u32| {
        format!(
            "Dec 10 07:27:{:02} LabSZ sshd[3100{i}]: Failed password for root from 203.0.113.200 port {} ssh2",
            10 + i,
            41000 + i
        )
    };
    // Four failures: under the scenario's capacity of five.
    let first: Vec<String> = (0..4).map(line).collect();
    let r = app
        .push("?source=auth&format=syslog:2025", &first.join("\n"))
        .await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, none) = app.get_json("/api/v1/threats?rule_id=970400").await;
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0), "{none}");

    let dir = app.stop_keep_dir().await;
    assert!(
        dir.path().join("scenarios.state.json").exists(),
        "state saved at shutdown"
    );
    let mut again = spawn_with(test_settings(&dir, None), dir).await;
    again.wait_ready().await;
    again.login_admin().await;
    let rest: Vec<String> = (4..8).map(line).collect();
    let r = again
        .push("?source=auth&format=syslog:2025", &rest.join("\n"))
        .await;
    assert_eq!(r.status(), 200);
    let page = threats(&again, "?rule_id=970400", 1).await;
    assert_eq!(page["items"][0]["client_ip"], "203.0.113.200");
    again.stop().await;
}

/// Syslog lines of an sshd brute force from `ip`, timestamped now.
fn live_sshd_failures(ip: &str, n: u32) -> (i64, String) {
    let (year, month, day, hour, minute, _, _) = palisade_core::Timestamp::now().to_civil();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mon = MONTHS[(month as usize).saturating_sub(1) % 12];
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{mon} {day:>2} {hour:02}:{minute:02}:{:02} gate sshd[700{i}]: Failed password for root from {ip} port {} ssh2",
                i * 2 % 60,
                51000 + i
            )
        })
        .collect();
    (year, lines.join("\n"))
}

#[tokio::test]
async fn forged_pushes_cannot_ban_loopback_or_anyone() {
    // Finding 8 of the penetration test: an ingest key pushed lines that tripped a
    // scenario and got loopback banned. By default pushes cause no bans at all, and
    // loopback is never banned by anyone.
    let app = spawn_app().await;
    for ip in ["127.0.0.1", "198.51.100.77"] {
        let (year, body) = live_sshd_failures(ip, 8);
        let r = app
            .push(&format!("?source=pusher&format=syslog:{year}"), &body)
            .await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
    // The scenario still records its threats (evidence), without a ban in them.
    let page = threats(&app, "?rule_id=970400", 2).await;
    for t in page["items"].as_array().unwrap() {
        assert!(
            !t["evidence"][0]["matched"]
                .as_str()
                .unwrap_or("")
                .contains("ban "),
            "a threat must not claim a ban that was not made: {t}"
        );
    }
    let (_, list) = app.get_json("/api/v1/decisions").await;
    assert_eq!(list["items"], serde_json::json!([]), "no bans: {list}");
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("palisade_scenario_bans_skipped_total{reason=\"source\"} 2"),
        "{metrics}"
    );

    // Even from a source allowed to ban, loopback and private addresses are left alone.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir, None);
    settings.decisions.ban_sources = Some(vec!["auth".into()]);
    let mut app2 = spawn_with(settings, dir).await;
    app2.wait_ready().await;
    app2.login_admin().await;
    for ip in ["127.0.0.1", "10.1.2.3"] {
        let (year, body) = live_sshd_failures(ip, 8);
        let r = app2
            .push(&format!("?source=auth&format=syslog:{year}"), &body)
            .await;
        assert_eq!(r.status(), 200);
    }
    threats(&app2, "?rule_id=970400", 2).await;
    let (_, list) = app2.get_json("/api/v1/decisions").await;
    assert_eq!(list["items"], serde_json::json!([]), "no bans: {list}");
    app.stop().await;
    app2.stop().await;
}

#[tokio::test]
async fn pushes_are_listed_as_sources_and_counted_once() {
    let app = spawn_app().await;
    let body = [
        line(
            "203.0.113.1",
            "10/Oct/2023:13:55:36 +0000",
            "GET",
            "/a",
            200,
            "x",
        ),
        line(
            "203.0.113.2",
            "10/Oct/2023:13:55:37 +0000",
            "GET",
            "/b",
            404,
            "x",
        ),
        "not a log line".to_owned(),
    ]
    .join("\n");
    for _ in 0..2 {
        let r = app
            .client
            .post(app.url("/api/v1/ingest?format=combined&source=web-push"))
            .bearer_auth(&app.token)
            .header("Idempotency-Key", "once")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (_, sources) = app.get_json("/api/v1/sources").await;
    let push = sources["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web-push")
        .expect("the push source is listed")
        .clone();
    assert_eq!(push["kind"], "push", "{push}");
    assert_eq!(push["events"], 2, "the retry stored nothing: {push}");
    assert_eq!(push["dead_letters"], 1, "{push}");
    assert_eq!(push["stored"]["events"], 2, "{push}");
    assert_eq!(push["stored"]["dead_letters"], 1, "{push}");

    // An import by another process (a checkpointed batch in the store) is listed with
    // the lines it read and what it stored, not zeros.
    let imported = palisade_store::IngestBatch {
        events: (0..3)
            .map(|i| palisade_core::Event {
                source: "old-import".into(),
                ts: palisade_core::Timestamp(1_500_000_000_000_000 + i),
                ..palisade_core::Event::default()
            })
            .collect(),
        checkpoint: Some(palisade_core::Checkpoint {
            source: "old-import".into(),
            file_id: "1:2".into(),
            offset: 300,
            line_no: 4,
            fingerprint: 9,
        }),
        ..palisade_store::IngestBatch::default()
    };
    app.store.write_batch(imported).await.unwrap();
    let (_, sources) = app.get_json("/api/v1/sources").await;
    let old = sources["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "old-import")
        .expect("listed")
        .clone();
    assert_eq!(old["lines"], 4, "{old}");
    assert_eq!(old["stored"]["events"], 3, "{old}");
    let (_, metrics) = app.get_text("/metrics").await;
    let stored = metrics
        .lines()
        .find(|l| l.starts_with("palisade_ingested_events_total"))
        .unwrap_or("");
    assert!(stored.ends_with(" 2"), "counted once: {stored}");
    app.stop().await;
}
