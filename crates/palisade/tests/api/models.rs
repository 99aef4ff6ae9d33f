//! The request model through the real app: status and reload over the API, health,
//! degradation to rules only, and fusion on `/api/v1/check` with threats that say
//! which parts fired — on SQLite and PostgreSQL.

use std::path::Path;

use palisade_models::file::{FORMAT_VERSION, Metadata};
use palisade_models::linear::{LogisticHead, SoftmaxHead};
use palisade_models::{Category, FeatureSettings, Model};

use crate::helpers::{
    TestApp, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with, test_settings,
};

/// A model whose only weight is its bias: it says `p = sigmoid(bias)` for every
/// request, and `xss` as the class, so the fusion outcome is known in advance.
fn constant_model(path: &Path, bias: f32, version: &str) {
    let features = FeatureSettings {
        buckets_log2: 10,
        ..FeatureSettings::default()
    };
    let dim = features.dimension();
    let mut threat = vec![0.0; dim];
    threat[1 << 10] = bias;
    let mut classes = vec![0.0; dim * 9];
    classes[(1 << 10) * 9 + Category::Xss.index()] = 5.0;
    let meta = Metadata {
        format_version: FORMAT_VERSION,
        model_version: version.into(),
        data_digest: "test".into(),
        training_data: vec![],
        generated_attacks: 0,
        generated_normal: 0,
        seed: 1,
        epochs: 1,
        features,
        classes: Category::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        threshold: 0.5,
        held_out: None,
        is_real: false,
        threat_scale: 0.0,
        class_scale: 0.0,
        operating_point: None,
    };
    Model::new(
        meta,
        LogisticHead::from_weights(threat),
        SoftmaxHead::from_weights(classes, 9),
    )
    .save(path)
    .expect("save model");
}

async fn spawn_on(database_url: Option<String>, block_probability: Option<f32>) -> TestApp {
    spawn_weighted(database_url, block_probability, None).await
}

async fn spawn_weighted(
    database_url: Option<String>,
    block_probability: Option<f32>,
    model_weight: Option<u32>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = test_settings(&dir, database_url);
    s.models.path = Some(dir.path().join("http.pmodel"));
    s.models.block_probability = block_probability;
    if let Some(w) = model_weight {
        s.models.model_weight = w;
    }
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
        .header("X-Real-IP", "203.0.113.50")
        .send()
        .await
        .expect("check")
}

async fn reload(app: &TestApp) -> (u16, serde_json::Value) {
    let r = app
        .req(reqwest::Method::POST, "/api/v1/models/reload")
        .send()
        .await
        .expect("reload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

async fn models_flow(app: &TestApp) {
    let model_file = app.dir.path().join("http.pmodel");
    let key = app.api_key("edge", &["check"]).await;

    // No file yet: rules alone, and health says so.
    let (status, list) = app.get_json("/api/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["loaded"], false, "{list}");
    assert!(list[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    let (_, d) = app.get_json("/api/v1/health/detailed").await;
    assert_eq!(d["status"], "degraded", "{d}");
    assert_eq!(d["models"][0]["loaded"], false);
    assert!(
        d["reasons"].as_array().is_some_and(|r| r
            .iter()
            .any(|x| x.as_str().unwrap_or("").contains("rules decide alone"))),
        "{d}"
    );
    let r = check(app, &key, "/products?page=2").await;
    assert_eq!(r.status(), 200);
    let r = check(
        app,
        &key,
        "/item?id=1%20union%20select%20password%20from%20users--",
    )
    .await;
    assert_eq!(r.status(), 403, "rules still block");

    // A damaged file: reload answers 422 and nothing changes.
    std::fs::write(&model_file, b"PALISADE-MODEL\nnot gzip").expect("write");
    let (status, p) = reload(app).await;
    assert_eq!(status, 422, "{p}");
    assert!(
        p["detail"].as_str().unwrap_or("").contains("not reloaded"),
        "{p}"
    );

    // A model sure of everything (p ≈ 1): loaded on reload, shown everywhere.
    constant_model(&model_file, 12.0, "always-sure");
    let (status, list) = reload(app).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["loaded"], true);
    assert_eq!(list[0]["version"], "always-sure");
    assert_eq!(list[0]["is_real"], false);
    let (_, d) = app.get_json("/api/v1/health/detailed").await;
    assert_eq!(d["status"], "healthy", "{d}");
    assert_eq!(d["models"][0]["version"], "always-sure");
    assert_eq!(d["models"][0]["metadata"]["features"]["buckets_log2"], 10);
    // Both reloads are in the activity feed analysts read: the refused one, then this.
    let (status, feed) = app.get_json("/api/v1/activities?kind=model.").await;
    assert_eq!(status, 200, "{feed}");
    let items = feed["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{feed}");
    assert_eq!(items[0]["kind"], "model.reloaded");
    assert_eq!(items[0]["actor"], "admin");
    assert_eq!(items[0]["detail"]["ok"], true);
    assert_eq!(items[0]["detail"]["models"][0]["version"], "always-sure");
    assert_eq!(items[1]["detail"]["ok"], false);
    assert!(
        items[1]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("failed")),
        "{feed}"
    );
    let r = app
        .req(
            reqwest::Method::POST,
            "/api/v1/posture/checks/models_loaded/run",
        )
        .send()
        .await
        .expect("posture");
    let posture: serde_json::Value = r.json().await.expect("json");
    assert_eq!(posture["results"][0]["status"], "pass", "{posture}");
}

#[tokio::test]
async fn models_load_reload_and_show_in_health_sqlite() {
    let app = spawn_on(None, None).await;
    models_flow(&app).await;
    // The default policy is advisory: the sure model adds nothing to the score.
    let key = app.api_key("edge2", &["check"]).await;
    let r = check(&app, &key, "/products?page=2").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-score"], "0");
    // What the rules find still carries the advisory model's opinion. The flow above
    // stored a threat for the same URI before this model was loaded, and threats are
    // recorded off the decision path: wait for this check's own threat (the newest).
    let union_threats = || async {
        let (_, p) = app.get_json("/api/v1/threats?category=sqli").await;
        let mut found: Vec<serde_json::Value> = p["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["uri"].as_str().is_some_and(|u| u.contains("union")))
            .cloned()
            .collect();
        found.sort_by_key(|t| std::cmp::Reverse(t["id"].as_i64()));
        found
    };
    let before = union_threats().await.len();
    let r = check(
        &app,
        &key,
        "/item?id=1%20union%20select%20password%20from%20users--",
    )
    .await;
    assert_eq!(r.status(), 403, "the rules decide");
    let mut evidence = serde_json::Value::Null;
    for _ in 0..100 {
        let found = union_threats().await;
        if found.len() > before {
            evidence = found[0]["evidence"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let model = evidence
        .as_array()
        .and_then(|e| e.iter().find(|x| x["location"] == "model"))
        .unwrap_or_else(|| panic!("the model's opinion on the threat: {evidence}"));
    assert!(
        model["matched"]
            .as_str()
            .unwrap_or("")
            .contains("+ model 0 ="),
        "{model}"
    );
    app.stop().await;
    // Given weight, it adds its points, and alone (3 < threshold 5) still never blocks.
    let app = spawn_weighted(None, None, Some(3)).await;
    constant_model(&app.dir.path().join("http.pmodel"), 12.0, "always-sure");
    let (status, _) = reload(&app).await;
    assert_eq!(status, 200);
    let key = app.api_key("edge3", &["check"]).await;
    let r = check(&app, &key, "/products?page=2").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-score"], "3");
    app.stop().await;
}

#[tokio::test]
async fn models_load_reload_and_show_in_health_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let app = spawn_on(Some(url), None).await;
    models_flow(&app).await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}

#[tokio::test]
async fn a_confident_model_blocks_alone_when_configured_and_the_threat_says_why() {
    let app = spawn_on(None, Some(0.99)).await;
    constant_model(&app.dir.path().join("http.pmodel"), 12.0, "always-sure");
    assert_eq!(reload(&app).await.0, 200);
    let key = app.api_key("edge", &["check"]).await;
    let r = check(&app, &key, "/products?page=2").await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-palisade-decision"], "block");
    let mut threat = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, p) = app.get_json("/api/v1/threats?category=xss").await;
        if p["items"].as_array().is_some_and(|i| !i.is_empty()) {
            threat = p["items"][0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(threat["decision"], "block", "{threat}");
    let ev = &threat["evidence"][0];
    assert_eq!(ev["location"], "model", "{threat}");
    assert!(
        ev["decoded_value"]
            .as_str()
            .unwrap_or("")
            .starts_with("probability 1.0000"),
        "{ev}"
    );
    assert!(
        ev["matched"].as_str().unwrap_or("").contains("model alone"),
        "{ev}"
    );

    // A model sure of nothing adds nothing: the rules' verdict and evidence stand alone.
    constant_model(&app.dir.path().join("http.pmodel"), -12.0, "never-sure");
    assert_eq!(reload(&app).await.0, 200);
    assert_eq!(check(&app, &key, "/products?page=2").await.status(), 200);
    let r = check(
        &app,
        &key,
        "/item?id=1%20union%20select%20password%20from%20users--",
    )
    .await;
    assert_eq!(r.status(), 403);
    app.stop().await;
}

/// The flow model beside the request model: a missing file degrades health (the flow
/// rules and the online score stay), `POST /api/v1/models/reload` loads it once written,
/// and both models are listed with version and is_real.
#[tokio::test]
async fn flow_model_missing_degrades_then_reloads_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow_file = dir.path().join("flow.pmodel");
    let mut s = test_settings(&dir, None);
    s.models.flow_path = Some(flow_file.clone());
    let mut app = spawn_with(s, dir).await;
    app.wait_ready().await;
    app.login_admin().await;

    let (status, list) = app.get_json("/api/v1/models").await;
    assert_eq!(status, 200);
    let flow = |l: &serde_json::Value| {
        l.as_array()
            .and_then(|a| a.iter().find(|m| m["name"] == "flow").cloned())
            .unwrap_or_default()
    };
    assert_eq!(flow(&list)["loaded"], false, "{list}");
    let (_, d) = app.get_json("/api/v1/health/detailed").await;
    assert_eq!(d["status"], "degraded", "{d}");
    assert!(
        d["reasons"].as_array().is_some_and(|r| r
            .iter()
            .any(|x| x.as_str().unwrap_or("").starts_with("flow model flow"))),
        "{d}"
    );

    std::fs::write(&flow_file, palisade_models::flow::scorer::BUILTIN_FLOW).expect("write");
    let (status, list) = reload(&app).await;
    assert_eq!(status, 200, "{list}");
    let f = flow(&list);
    assert_eq!(f["loaded"], true, "{list}");
    assert_eq!(f["is_real"], true);
    assert!(
        f["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("flow-1."))
    );
    assert!(
        f["metadata"]["held_out"]["recall"].as_f64().is_some(),
        "{f}"
    );
    let (_, d) = app.get_json("/api/v1/health/detailed").await;
    assert_eq!(flow(&d["models"])["loaded"], true, "{d}");
}
