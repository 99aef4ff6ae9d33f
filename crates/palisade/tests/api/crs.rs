//! OWASP CRS rule files loaded as they are (`[detection] crs_dir`, issue 17): a CRS
//! regression payload is blocked through `/api/v1/check` with the CRS rule id, message
//! and category on the threat, and a `ctl:ruleRemoveById` exclusion in a REQUEST-900
//! file removes it — on SQLite and PostgreSQL. The CRS files are the unmodified 3.3.4
//! excerpt in `crates/detect/tests/fixtures/crs-3.3.4` (Apache-2.0, notice kept there),
//! so the test does not depend on Debian's `modsecurity-crs` package.

use std::path::{Path, PathBuf};
use std::time::Duration;

use palisade_pipeline::detection::CrsMode;

use crate::helpers::{
    TestApp, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with, test_settings,
};

/// CRS regression test 942100-2 (`var=-1839' or '1'='1`), as a query argument.
const PAYLOAD: &str = "var=-1839%27%20or%20%271%27%3D%271";

/// A copy of the fixture CRS directory plus a REQUEST-900 exclusion file, as a user
/// switching from ModSecurity would have it.
fn crs_dir(root: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../detect/tests/fixtures/crs-3.3.4");
    let dst = root.join("crs");
    std::fs::create_dir_all(dst.join("rules")).expect("mkdir");
    std::fs::copy(src.join("crs-setup.conf"), dst.join("crs-setup.conf")).expect("copy");
    for entry in std::fs::read_dir(src.join("rules")).expect("read fixture") {
        let p = entry.expect("entry").path();
        std::fs::copy(&p, dst.join("rules").join(p.file_name().expect("name"))).expect("copy");
    }
    std::fs::write(
        dst.join("rules/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf"),
        "# The legacy search form sends SQL-like text on purpose.\n\
         SecRule REQUEST_FILENAME \"@beginsWith /legacy/\" \\\n    \
         \"id:1000,phase:1,pass,nolog,ctl:ruleRemoveById=942100\"\n",
    )
    .expect("write exclusion");
    dst
}

async fn spawn_crs(database_url: Option<String>) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, database_url);
    settings.detection.crs_dir = Some(crs_dir(dir.path()));
    // CRS alone, so the verdicts below are CRS's and not the built-in rules'.
    settings.detection.crs_mode = CrsMode::Replace;
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    app
}

async fn check(app: &TestApp, key: &str, uri: &str, ip: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/check"))
        .header("X-Api-Key", key)
        .header("X-Original-URI", uri)
        .header("X-Original-Method", "GET")
        .header("X-Real-IP", ip)
        .header("Host", "localhost")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
        )
        .header("Accept", "text/html")
        .send()
        .await
        .expect("check")
}

async fn crs_flow(app: &TestApp) {
    let key = app.api_key("edge", &["check"]).await;

    let r = check(app, &key, &format!("/shop/item?{PAYLOAD}"), "203.0.113.71").await;
    assert_eq!(r.status(), 403);
    let rules = r.headers()["x-palisade-rules"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(rules.split(',').any(|id| id.trim() == "942100"), "{rules}");
    let body: serde_json::Value = r.json().await.expect("json");
    let hit = body["rules"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["id"] == 942100))
        .cloned()
        .expect("942100 in the answer");
    assert_eq!(
        hit["name"],
        "SQL Injection Attack Detected via libinjection"
    );
    assert_eq!(hit["part"], "var");

    let mut threat = None;
    for _ in 0..200 {
        let (_, page) = app
            .get_json("/api/v1/threats?client_ip=203.0.113.71&limit=10")
            .await;
        threat = page["items"].as_array().and_then(|i| i.first()).cloned();
        if threat.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let threat = threat.expect("threat recorded");
    assert_eq!(threat["category"], "sqli", "{threat}");
    assert_eq!(threat["decision"], "block", "{threat}");
    assert!(
        threat["rule_ids"]
            .as_array()
            .is_some_and(|r| r.contains(&serde_json::json!(942100))),
        "{threat}"
    );
    // The CRS rules' tags are stored with the threat, returned by the listing and the
    // single read, and filter the listing.
    let tags = threat["tags"].as_array().cloned().unwrap_or_default();
    for tag in ["attack-sqli", "paranoia-level/1", "OWASP_CRS"] {
        assert!(tags.contains(&serde_json::json!(tag)), "{tag}: {threat}");
    }
    let (_, one) = app
        .get_json(&format!("/api/v1/threats/{}", threat["id"]))
        .await;
    assert_eq!(one["tags"], threat["tags"]);
    let (status, page) = app
        .get_json("/api/v1/threats?tag=attack-sqli&client_ip=203.0.113.0/24&limit=10")
        .await;
    assert_eq!(status, 200);
    assert!(
        page["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|t| t["id"] == threat["id"])),
        "{page}"
    );
    let (_, page) = app
        .get_json("/api/v1/threats?tag=attack-xss&client_ip=203.0.113.0/24&limit=10")
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{page}");
    let (status, _) = app.get_json("/api/v1/threats?tag=").await;
    assert_eq!(status, 400);

    // The REQUEST-900 exclusion removes 942100 under /legacy/: nothing else in the
    // loaded files scores this payload, so it passes.
    let r = check(
        app,
        &key,
        &format!("/legacy/search?{PAYLOAD}"),
        "203.0.113.72",
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-decision"], "allow");

    // A benign request passes CRS at paranoia 1.
    let r = check(app, &key, "/shop/list?page=2&sort=price", "203.0.113.73").await;
    assert_eq!(r.status(), 200);

    // What loaded is visible to operators.
    let (status, rules) = app.get_json("/api/v1/detection/rules").await;
    assert_eq!(status, 200);
    assert_eq!(rules["crs"]["mode"], "replace", "{rules}");
    assert!(
        rules["crs"]["rules_loaded"]
            .as_u64()
            .is_some_and(|n| n > 150),
        "{rules}"
    );
    // 942130 (backreference) and 920120 (look-behind) run natively: no regex skipped.
    assert!(rules["crs"]["skipped"].get("regex").is_none(), "{rules}");
    assert_eq!(rules["crs"]["skipped"]["transformation"], 2, "{rules}");
}

#[tokio::test]
async fn crs_rule_files_block_with_their_ids_and_exclusions_apply() {
    let app = spawn_crs(None).await;
    crs_flow(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn crs_rule_files_block_with_their_ids_and_exclusions_apply_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let app = spawn_crs(Some(url)).await;
    crs_flow(&app).await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}
