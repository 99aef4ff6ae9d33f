//! Posture checks over the real service: a protecting proxy in front of a real
//! upstream that leaks its version and sends no security headers, detect-only mode,
//! key files as the service created them; a run of every check, one check after a key
//! file is opened up, the history, the score, and who may see it.

use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use palisade_core::Timestamp;
use palisade_pipeline::detection::Mode;

use crate::helpers::{spawn_with, test_settings};

async fn upstream() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/",
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, "text/html"),
                    (header::SERVER, "Apache/2.4.49 (Unix)"),
                ],
                "<html>shop</html>",
            )
                .into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn status_of<'a>(results: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    results
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["check_id"] == id)
        .map_or(&serde_json::Value::Null, |r| &r["status"])
}

#[tokio::test]
async fn checks_find_real_problems_and_keep_history() {
    let up = upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.detection.mode = Mode::Detect;
    settings.analytics.posture_every = palisade_analytics::config::PostureSchedule(None);
    settings.proxies.push(palisade_proxy::ProxyConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        palisade_proxy::Upstream::parse(&format!("http://{up}")).expect("upstream"),
    ));
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    // The admin's login is recorded for the stale-credentials check.
    let creds = app.store.credential_use().await.expect("credentials");
    let admin = creds.iter().find(|c| c.name == "admin").expect("admin");
    assert!(admin.last_used_at.is_some_and(|t| t <= Timestamp::now()));
    // With no CVE data the vulnerable-software check says nothing can be matched.
    let r = app
        .req(
            reqwest::Method::POST,
            "/api/v1/posture/checks/vulnerable_software/run",
        )
        .send()
        .await
        .expect("run one");
    assert_eq!(r.status(), 200);
    let one: serde_json::Value = r.json().await.expect("json");
    assert_eq!(one["results"][0]["status"], "warn", "{one}");
    assert!(
        one["results"][0]["found"]
            .as_str()
            .is_some_and(|f| f.contains("no CVE records")),
        "{one}"
    );
    crate::vulnerabilities::import_cves(&app).await;

    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for _ in 0..3 {
        let r = client
            .get(format!("http://{}/", app.proxies[0]))
            .send()
            .await
            .expect("proxied");
        assert_eq!(r.status(), 200);
    }
    // The proxy saw `Server: Apache/2.4.49`; the matcher finds its CVEs in the
    // background.
    let asset = up.to_string();
    for attempt in 0.. {
        let (_, body) = app
            .get_json(&format!(
                "/api/v1/vulnerabilities?asset={asset}&status=open"
            ))
            .await;
        if body["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        assert!(attempt < 400, "no CVE match for the proxied Apache: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let r = app
        .req(reqwest::Method::POST, "/api/v1/posture/run")
        .send()
        .await
        .expect("run");
    assert_eq!(r.status(), 200);
    let run: serde_json::Value = r.json().await.expect("json");
    let results = &run["results"];
    assert_eq!(results.as_array().expect("results").len(), 10, "{run}");
    assert_eq!(status_of(results, "detection_mode"), "fail");
    assert_eq!(status_of(results, "rules_loaded"), "pass");
    assert_eq!(status_of(results, "models_loaded"), "pass");
    assert_eq!(status_of(results, "stale_credentials"), "pass");
    assert_eq!(status_of(results, "key_files"), "pass");
    assert_eq!(status_of(results, "public_listener"), "pass");
    assert_eq!(status_of(results, "retention"), "warn");
    assert_eq!(status_of(results, "security_headers"), "fail");
    assert_eq!(status_of(results, "version_banners"), "fail");
    assert_eq!(status_of(results, "vulnerable_software"), "fail");
    let vulnerable = results
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["check_id"] == "vulnerable_software")
        .expect("vulnerable_software");
    let found = vulnerable["found"].as_str().expect("found");
    assert!(
        found.contains("Apache 2.4.49") && found.contains("CVE-2021-41773"),
        "{vulnerable}"
    );
    let banners = results
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["check_id"] == "version_banners")
        .expect("banners");
    assert!(
        banners["found"]
            .as_str()
            .expect("found")
            .contains("Server: Apache/2.4.49 (Unix)"),
        "{banners}"
    );
    assert!(
        banners["fix"]
            .as_str()
            .is_some_and(|f| f.contains("ServerTokens"))
    );
    let first_score = run["score"].as_u64().expect("score");
    assert!(first_score > 0 && first_score < 100, "{first_score}");

    // Open up the JWT key file: that one check, run alone, now fails, and the score
    // drops.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = app.dir.path().join("jwt.key");
        assert!(
            key.exists(),
            "the service keeps its JWT key in the data dir"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let r = app
            .req(
                reqwest::Method::POST,
                "/api/v1/posture/checks/key_files/run",
            )
            .send()
            .await
            .expect("run one");
        assert_eq!(r.status(), 200);
        let one: serde_json::Value = r.json().await.expect("json");
        assert_eq!(one["results"].as_array().expect("results").len(), 1);
        assert_eq!(one["results"][0]["status"], "fail");
        assert!(
            one["results"][0]["found"]
                .as_str()
                .expect("found")
                .contains("0644")
        );
        assert!(one["score"].as_u64().expect("score") < first_score);
    }

    let (status, view) = app.get_json("/api/v1/posture?limit=1").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["catalog"].as_array().expect("catalog").len(), 10);
    assert_eq!(view["checks"].as_array().expect("checks").len(), 10);
    assert_eq!(view["history"].as_array().expect("history").len(), 1);
    let cursor = view["next_cursor"].as_str().expect("an older run");
    let (_, older) = app
        .get_json(&format!("/api/v1/posture?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(older["history"][0]["cause"], "manual");
    // The oldest run is the vulnerable-software check run alone before any CVE data.
    let cursor = older["next_cursor"].as_str().expect("the oldest run");
    let (_, oldest) = app
        .get_json(&format!("/api/v1/posture?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(oldest["history"][0]["cause"], "manual:vulnerable_software");
    assert!(oldest["next_cursor"].is_null(), "{oldest}");
    #[cfg(unix)]
    {
        assert_eq!(status_of(&view["checks"], "key_files"), "fail");
        assert_eq!(view["history"][0]["cause"], "manual:key_files");
        assert_eq!(view["score"], view["history"][0]["score"]);
    }

    let r = app
        .req(
            reqwest::Method::POST,
            "/api/v1/posture/checks/no_such_check/run",
        )
        .send()
        .await
        .expect("run");
    assert_eq!(r.status(), 404);
    let r = app
        .req(reqwest::Method::POST, "/api/v1/posture/checks/Bad-Id/run")
        .send()
        .await
        .expect("run");
    assert_eq!(r.status(), 400);

    // Viewers see analytics, not the posture.
    let viewer = app.token_for("watcher", "viewer").await;
    let r = app
        .client
        .get(app.url("/api/v1/posture"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .get(app.url("/api/v1/analytics/overview"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(10)).await;
    app.stop().await;
}
