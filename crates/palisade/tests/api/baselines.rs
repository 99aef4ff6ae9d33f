//! Per-endpoint baselines through the real app: warm-up, an anomaly the rules do not
//! see recorded as a threat with a plain explanation (and, in block mode by default,
//! not blocked), baseline evidence on a rule threat, persistence to the database and a
//! restart that judges at once without a new warm-up — on SQLite and PostgreSQL.

use std::time::Duration;

use crate::helpers::{
    TestApp, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with, test_settings,
};

/// 40 lower-case letters: nothing for the rules, everything for a numeric parameter.
const ODD_ID: &str = "abcdefghijklmnopqrstuvwxyzabcdefghijklmn";

async fn spawn(dir: tempfile::TempDir, database_url: Option<String>) -> TestApp {
    let mut s = test_settings(&dir, database_url);
    s.baselines.warmup = 10;
    s.baselines.snapshot_every = palisade_core::duration::Span::from_secs(1);
    let mut app = spawn_with(s, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    app
}

async fn check(app: &TestApp, key: &str, uri: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/check"))
        .header("X-Api-Key", key)
        .header("X-Original-URI", uri)
        .header("X-Real-IP", "203.0.113.77")
        .send()
        .await
        .expect("check")
}

/// The first threat whose URI contains `needle`, waiting for the recorder.
async fn threat_with(app: &TestApp, needle: &str) -> serde_json::Value {
    for _ in 0..200 {
        let (_, p) = app.get_json("/api/v1/threats?limit=100").await;
        if let Some(t) = p["items"].as_array().and_then(|i| {
            i.iter()
                .find(|t| t["uri"].as_str().is_some_and(|u| u.contains(needle)))
        }) {
            return t.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no threat for {needle}");
}

fn baseline_evidence(threat: &serde_json::Value) -> Vec<serde_json::Value> {
    threat["evidence"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["location"] == "baseline")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The `baselines` entry of a model list read from `path` (`list` picks the list).
async fn baselines_status(
    app: &TestApp,
    path: &str,
    list: impl Fn(&serde_json::Value) -> serde_json::Value,
) -> serde_json::Value {
    let (status, body) = app.get_json(path).await;
    assert_eq!(status, 200, "{body}");
    list(&body)
        .as_array()
        .and_then(|l| l.iter().find(|m| m["name"] == "baselines").cloned())
        .unwrap_or_else(|| panic!("no baselines entry in {path}: {body}"))
}

async fn baselines_flow(database_url: Option<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(dir, database_url.clone()).await;
    let key = app.api_key("edge", &["check"]).await;
    for i in 0..12 {
        let r = check(&app, &key, &format!("/shop/items/{i}?id={}&lang=en", i * 7)).await;
        assert_eq!(r.status(), 200);
    }
    // Past the warm-up: an id of 40 letters is an anomaly, recorded but (block mode,
    // points_block = 0) not blocked and not scored.
    let r = check(&app, &key, &format!("/shop/items/3?id={ODD_ID}&lang=en")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-score"], "0");
    let t = threat_with(&app, ODD_ID).await;
    assert_eq!(t["category"], "anomaly", "{t}");
    assert_eq!(t["decision"], "detect", "{t}");
    let ev = baseline_evidence(&t);
    let first = ev[0]["decoded_value"].as_str().unwrap_or("");
    assert!(
        first.starts_with("parameter `id` is numeric in 100% of 12 requests; got 40 characters with lower-case letters")
            || first.starts_with("parameter `id` was at most"),
        "{t}"
    );
    assert!(
        ev.iter().any(|e| e["matched"]
            .as_str()
            .is_some_and(|m| m.starts_with("rules 0 + model 0 + baseline 0 ="))),
        "the parts and their values: {t}"
    );
    // What the rules find carries the baselines' view too.
    let r = check(
        &app,
        &key,
        "/shop/items/4?id=1%27%20or%20%271%27=%271&lang=en",
    )
    .await;
    assert_eq!(r.status(), 403);
    let t = threat_with(&app, "%27%20or").await;
    assert_ne!(t["category"], "anomaly");
    assert!(!baseline_evidence(&t).is_empty(), "{t}");
    // Saved within the snapshot interval. A snapshot taken while the first requests
    // were still arriving (a loaded machine) holds fewer; the next one holds all 12.
    let mut saved = Vec::new();
    for _ in 0..100 {
        saved = app.store.load_baselines(100).await.expect("load");
        if saved
            .iter()
            .any(|r| r.endpoint.ends_with("GET /shop/items/{n}") && r.requests >= 12)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = saved
        .iter()
        .find(|r| r.endpoint.ends_with("GET /shop/items/{n}"))
        .unwrap_or_else(|| panic!("baseline saved: {saved:?}"));
    assert_eq!(
        row.requests, 12,
        "the anomaly and the attack were not learnt"
    );
    // The model list and health show what they learnt and the save.
    let mut shown = serde_json::Value::Null;
    for _ in 0..50 {
        shown = baselines_status(&app, "/api/v1/models", |v| v.clone()).await;
        if !shown["baselines"]["last_save"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown["source"], "online", "{shown}");
    assert_eq!(shown["loaded"], true, "{shown}");
    assert_eq!(shown["baselines"]["enabled"], true, "{shown}");
    assert_eq!(shown["baselines"]["endpoints"], 1, "{shown}");
    assert_eq!(shown["baselines"]["established"], 1, "{shown}");
    assert_eq!(shown["baselines"]["warmup"], 10, "{shown}");
    assert!(
        shown["baselines"]["last_save_rows"].as_u64() >= Some(1),
        "{shown}"
    );
    assert!(shown["baselines"]["last_save_error"].is_null(), "{shown}");
    let in_health =
        baselines_status(&app, "/api/v1/health/detailed", |d| d["models"].clone()).await;
    assert_eq!(in_health["baselines"]["established"], 1, "{in_health}");

    // A restart loads it: judged at once, no new warm-up.
    let dir = app.stop_keep_dir().await;
    let app = spawn(dir, database_url).await;
    let key = app.api_key("edge2", &["check"]).await;
    let mut found = false;
    for attempt in 0..50 {
        let odd = format!("{ODD_ID}{attempt}");
        check(&app, &key, &format!("/shop/items/5?id={odd}&lang=en")).await;
        let (_, p) = app.get_json("/api/v1/threats?category=anomaly").await;
        if p["items"].as_array().is_some_and(|i| {
            i.iter()
                .any(|t| t["uri"].as_str().is_some_and(|u| u.contains("items/5")))
        }) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the restored baseline judges after a restart");
    let shown = baselines_status(&app, "/api/v1/models", |v| v.clone()).await;
    assert!(
        shown["baselines"]["restored"].as_u64() >= Some(2),
        "endpoint and host rows: {shown}"
    );
    assert!(!shown["baselines"]["restored_at"].is_null(), "{shown}");
    app.stop().await;
}

#[tokio::test]
async fn baselines_warm_up_explain_and_survive_a_restart_sqlite() {
    baselines_flow(None).await;
}

#[tokio::test]
async fn baselines_warm_up_explain_and_survive_a_restart_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    baselines_flow(Some(url)).await;
    pg_drop_schema(&base, &schema).await;
}
