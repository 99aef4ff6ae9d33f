//! Vulnerabilities through the service: software seen in traffic becomes an asset with
//! its CVEs without any upload; inventory uploads; the matches listing and triage;
//! reports in three formats.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, spawn_app, spawn_with, test_settings};

fn vuln_data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vuln/tests/data")
        .join(path)
}

/// Loads the recorded NVD pages into the app's store.
pub(crate) async fn import_cves(app: &TestApp) {
    let files: Vec<PathBuf> = (0..3)
        .map(|i| vuln_data(&format!("nvd/nvdcve-2.0-page-{i:03}.json")))
        .collect();
    let s = palisade_vuln::import_files(&app.store, &files, &palisade_vuln::TaskContext::silent())
        .await
        .expect("import");
    assert_eq!(s.records, 145);
}

/// An application that says what it runs, as real ones do.
async fn apache_2_4_49() -> SocketAddr {
    let app = Router::new().fallback(get(|| async {
        (
            [
                ("server", "Apache/2.4.49 (Unix)"),
                ("content-type", "text/html"),
            ],
            "<h1>It works!</h1>",
        )
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Polls `check` until it gives a value (the observer records in the background).
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_seen_through_the_proxy_becomes_an_asset_with_its_cves() {
    let upstream = apache_2_4_49().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.proxies.push(palisade_proxy::ProxyConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        palisade_proxy::Upstream::parse(&format!("http://{upstream}")).expect("upstream"),
    ));
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    import_cves(&app).await;

    // A visitor browses the protected application. Nobody uploads anything.
    let proxy = app.proxies[0];
    let page = reqwest::get(format!("http://{proxy}/index.html"))
        .await
        .expect("through the proxy");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["server"], "Apache/2.4.49 (Unix)");

    let asset = upstream.to_string();
    let matches: Vec<Value> = eventually("the CVE match", async || {
        let (status, body) = app
            .get_json(&format!("/api/v1/vulnerabilities?asset={asset}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array()?.clone();
        items
            .iter()
            .any(|m| m["cve_id"] == "CVE-2021-41773")
            .then_some(items)
    })
    .await;
    let m = matches
        .iter()
        .find(|m| m["cve_id"] == "CVE-2021-41773")
        .expect("CVE-2021-41773");
    assert_eq!(m["software"], "Apache");
    assert_eq!(m["version"], "2.4.49");
    assert_eq!(m["product"], "apache:http_server");
    assert_eq!(m["status"], "open");
    assert_eq!(m["confidence"], "high");
    assert_eq!(m["kev"], true);
    assert!(matches.iter().any(|m| m["cve_id"] == "CVE-2021-42013"));

    let (status, detail) = app.get_json(&format!("/api/v1/assets/{asset}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["name"], asset);
    assert_eq!(detail["inventory"][0]["source"], "http");
    assert_eq!(detail["inventory"][0]["name"], "Apache");
    assert!(
        detail["open"]
            .as_array()
            .expect("counts")
            .iter()
            .any(|c| c["severity"] == "critical")
    );
    // The critical match (CVE-2021-42013, 9.8) raised a threat for alerting.
    let threat = eventually("the vulnerability threat", async || {
        let (_, body) = app.get_json("/api/v1/threats?category=vulnerability").await;
        body["items"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(threat["severity"], "critical");
    assert_eq!(threat["source"], "vuln");
    assert_eq!(threat["evidence"][0]["part"], asset);
    assert!(
        threat["evidence"][0]["matched"]
            .as_str()
            .expect("matched")
            .starts_with("CVE-2021-42013")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventories_upload_list_filter_and_triage() {
    let app = spawn_app().await;
    import_cves(&app).await;
    let dpkg = std::fs::read(vuln_data("sbom/dpkg-query.tsv")).expect("dpkg list");

    // An ingest-scoped key (a CI job or an agent) uploads; the format is detected.
    let key = app.api_key("inventory-agent", &["ingest"]).await;
    let r = app
        .client
        .post(app.url("/api/v1/assets/debian-12/inventory"))
        .bearer_auth(&key)
        .body(dpkg.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    let up: Value = r.json().await.expect("json");
    assert_eq!(up["format"], "dpkg");
    assert_eq!(up["items"], 743);
    assert!(up["opened"].as_u64().expect("opened") >= 4, "{up}");

    // A read-only key cannot upload; junk is a problem naming the body.
    let reader = app.api_key("reader", &["read"]).await;
    let r = app
        .client
        .post(app.url("/api/v1/assets/x/inventory"))
        .bearer_auth(&reader)
        .body("ii  a 1 all x\n")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    for (path, body, field) in [
        ("/api/v1/assets/x/inventory", "hello there", "body"),
        ("/api/v1/assets/x/inventory", "", "body"),
        ("/api/v1/assets/x/inventory?format=msi", "{}", "format"),
        ("/api/v1/assets/x/inventory?fmt=rpm", "{}", "fmt"),
        (
            "/api/v1/assets/x/inventory?format=cyclonedx",
            "{\"bomFormat\": 1",
            "body",
        ),
    ] {
        let r = app
            .req(Method::POST, path)
            .body(body)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 400, "{path} {body}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let p: Value = r.json().await.expect("problem");
        assert_eq!(p["field"], field, "{p}");
    }

    // Listing and filters.
    let (status, assets) = app.get_json("/api/v1/assets").await;
    assert_eq!(status, 200);
    assert_eq!(assets["items"][0]["name"], "debian-12");
    assert_eq!(assets["items"][0]["software"], 743);
    let (_, all) = app
        .get_json("/api/v1/vulnerabilities?asset=debian-12")
        .await;
    let all = all["items"].as_array().expect("items").clone();
    assert!(
        all.iter()
            .all(|m| m["confidence"] == "needs_distro_advisory")
    );
    let (_, critical) = app
        .get_json("/api/v1/vulnerabilities?severity=critical&status=open")
        .await;
    let critical = critical["items"].as_array().expect("items").clone();
    assert!(!critical.is_empty());
    assert!(critical.iter().all(|m| m["severity"] == "critical"));
    let (_, one) = app
        .get_json("/api/v1/vulnerabilities?cve=cve-2024-6387")
        .await;
    assert_eq!(one["items"].as_array().expect("items").len(), 1);
    let (_, page) = app.get_json("/api/v1/vulnerabilities?limit=2").await;
    assert_eq!(page["items"].as_array().expect("items").len(), 2);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (status, rest) = app
        .get_json(&format!(
            "/api/v1/vulnerabilities?limit=1000&cursor={cursor}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        rest["items"].as_array().expect("items").len(),
        all.len() - 2
    );
    for (query, field) in [
        ("severity=severe", "severity"),
        ("status=closed", "status"),
        ("cve=log4shell", "cve"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
        ("asset=a%20b", "asset"),
        ("colour=red", "colour"),
    ] {
        let (status, p) = app
            .get_json(&format!("/api/v1/vulnerabilities?{query}"))
            .await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(p["field"], field, "{query}: {p}");
    }

    // Triage: a comment is required to accept or fix; viewers cannot change it.
    let id = one["items"][0]["id"].as_i64().expect("id");
    let path = format!("/api/v1/vulnerabilities/{id}");
    let r = app
        .req(Method::PATCH, &path)
        .json(&json!({"status": "fixed"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 400);
    let p: Value = r.json().await.expect("problem");
    assert_eq!(p["field"], "comment");
    let r = app
        .req(Method::PATCH, &path)
        .json(&json!({"status": "wontfix", "comment": "x"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 400);
    let viewer = app.token_for("vera", "viewer").await;
    let r = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&viewer)
        .json(&json!({"status": "fixed", "comment": "DSA-5724-1"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 403);
    let r = app
        .req(Method::PATCH, &path)
        .json(&json!({"status": "fixed", "comment": "DSA-5724-1: fixed in 1:9.2p1-2+deb12u3"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 200);
    let changed: Value = r.json().await.expect("json");
    assert_eq!(changed["status"], "fixed");
    assert_eq!(changed["status_by"], "admin");
    assert_eq!(
        changed["status_comment"],
        "DSA-5724-1: fixed in 1:9.2p1-2+deb12u3"
    );
    // The same list again: the person's word stands for the same version.
    let r = app
        .req(Method::POST, "/api/v1/assets/debian-12/inventory")
        .body(dpkg)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    let (_, detail) = app.get_json(&path).await;
    assert_eq!(detail["status"], "fixed");
    assert_eq!(detail["cve"]["id"], "CVE-2024-6387");
    let (_, audit) = app
        .get_json("/api/v1/audit?action=vulnerability.status")
        .await;
    assert_eq!(audit["items"][0]["actor"], "admin");
    let (status, cve) = app.get_json("/api/v1/cves/CVE-2021-44228").await;
    assert_eq!(status, 200);
    assert_eq!(cve["kev"]["added"], "2021-12-10");
    assert_eq!(app.get("/api/v1/cves/CVE-1999-0001").await.status(), 404);
    assert_eq!(
        app.get("/api/v1/vulnerabilities/999999").await.status(),
        404
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_generated_stored_and_served_in_three_formats() {
    let app = spawn_app().await;
    import_cves(&app).await;
    let cdx = json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
        {"type": "library", "name": "log4j-core", "version": "2.14.1",
         "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}]});
    let r = app
        .req(Method::POST, "/api/v1/assets/billing%3C%3E/inventory")
        .json(&cdx)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    let r = app
        .req(Method::POST, "/api/v1/reports")
        .json(&json!({"kind": "vulnerabilities", "range": "24h"}))
        .send()
        .await
        .expect("report");
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["kind"], "vulnerabilities");
    assert_eq!(created["created_by"], "admin");
    let json_link = created["links"]["json"].as_str().expect("link");
    let (status, doc) = app.get_json(json_link).await;
    assert_eq!(status, 200);
    assert_eq!(doc["vulnerabilities"]["assets"][0]["asset"], "billing<>");
    assert_eq!(doc["vulnerabilities"]["total"], 2);
    let csv = app.get(&format!("/api/v1/reports/{id}?format=csv")).await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.expect("csv");
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.contains("billing<>,CVE-2021-44228,critical,10.0,open,high,yes,"));
    let html = app
        .req(Method::GET, &format!("/api/v1/reports/{id}"))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("html");
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    let html = html.text().await.expect("html");
    assert!(html.contains("billing&lt;&gt;"), "escaped");
    assert!(!html.contains("billing<>"));
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));
    let r = app
        .req(Method::POST, "/api/v1/reports")
        .json(&json!({"kind": "security", "from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"}))
        .send()
        .await
        .expect("report");
    assert_eq!(r.status(), 201);
    let (_, list) = app.get_json("/api/v1/reports").await;
    assert_eq!(list["items"].as_array().expect("items").len(), 2);
    assert_eq!(list["items"][0]["kind"], "security");
    for (body, field) in [
        (json!({"kind": "pdf", "range": "24h"}), "kind"),
        (json!({"kind": "security"}), "from"),
        (json!({"kind": "security", "range": "1y"}), "range"),
        (json!({"kind": "security", "from": "yesterday"}), "from"),
    ] {
        let r = app
            .req(Method::POST, "/api/v1/reports")
            .json(&body)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 400, "{body}");
        let p: Value = r.json().await.expect("problem");
        assert_eq!(p["field"], field, "{body}");
    }
    let (status, p) = app
        .get_json(&format!("/api/v1/reports/{id}?format=pdf"))
        .await;
    assert_eq!((status, p["field"].as_str()), (400, Some("format")));
    assert_eq!(app.get("/api/v1/reports/999999").await.status(), 404);
    let viewer = app.token_for("vic", "viewer").await;
    let r = app
        .client
        .post(app.url("/api/v1/reports"))
        .bearer_auth(&viewer)
        .json(&json!({"kind": "security", "range": "24h"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    app.stop().await;
}
