//! Palisade's own security, end to end: every route protected by default, the role
//! matrix, token tampering, refresh reuse, lockout, rate limits and secrets.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::Method;

use crate::helpers::{ADMIN_PASSWORD, spawn_app, spawn_with, test_settings};

/// Every documented operation, with concrete paths.
async fn operations(app: &crate::helpers::TestApp) -> Vec<(Method, String, String)> {
    let (_, doc) = app.get_json("/api/v1/openapi.json").await;
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("ops") {
            let open = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if open {
                continue;
            }
            let concrete = path.replace("{id}", "999").replace("{name}", "nothing");
            ops.push((
                method.to_uppercase().parse().expect("method"),
                concrete,
                path.clone(),
            ));
        }
    }
    ops
}

#[tokio::test]
async fn every_operation_needs_credentials_and_the_right_role() {
    let app = spawn_app().await;
    let viewer = app.token_for("vera", "viewer").await;
    let analyst = app.token_for("anna", "analyst").await;
    let mut ops = operations(&app).await;
    // Logging out revokes the caller's access tokens (issue 19, finding 10), so it runs
    // last, once the shared tokens are no longer needed.
    ops.sort_by_key(|(method, _, template)| {
        *method == Method::POST && template == "/api/v1/auth/logout"
    });
    assert!(
        ops.len() >= 20,
        "only {} protected operations documented",
        ops.len()
    );
    for (method, path, template) in &ops {
        if palisade_api::auth::policy::access(method, template)
            == Some(palisade_api::auth::policy::Access::Bouncer)
        {
            // CrowdSec's Local API: every refusal is 403 (bouncers expect it), and only
            // a key with the bouncer scope passes, never a user.
            for token in [
                None,
                Some("not-a-token"),
                Some(viewer.as_str()),
                Some(app.token.as_str()),
            ] {
                let mut req = app.client.request(method.clone(), app.url(path));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let r = req.send().await.expect("req");
                assert_eq!(r.status(), 403, "{method} {template} with {token:?}");
            }
            continue;
        }
        let r = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 401, "{method} {template} without credentials");
        assert!(r.headers().contains_key("www-authenticate"));
        let r = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth("not-a-token")
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 401, "{method} {template} with garbage");

        let access = palisade_api::auth::policy::access(method, template).expect("declared");
        for (who, token, role) in [
            ("viewer", &viewer, palisade_core::security::Role::Viewer),
            ("analyst", &analyst, palisade_core::security::Role::Analyst),
        ] {
            let r = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(token)
                .send()
                .await
                .expect("req");
            let principal = palisade_api::auth::Principal::User {
                id: 0,
                username: who.into(),
                role,
            };
            if principal.allows(access) {
                assert_ne!(
                    r.status(),
                    403,
                    "{method} {template} must be allowed for {who}"
                );
                assert_ne!(
                    r.status(),
                    401,
                    "{method} {template} must be allowed for {who}"
                );
            } else {
                assert_eq!(
                    r.status(),
                    403,
                    "{method} {template} must be forbidden for {who}"
                );
            }
        }
        let r = app.req(method.clone(), path).send().await.expect("req");
        assert!(
            r.status() != 401 && r.status() != 403,
            "{method} {template} must be allowed for admin, got {}",
            r.status()
        );
        assert!(
            r.status().as_u16() < 500,
            "{method} {template} answered {}",
            r.status()
        );
    }
    // Every routed operation has a declared access (a route cannot be added without one).
    for (method, _, template) in &ops {
        assert!(
            palisade_api::auth::policy::access(method, template).is_some(),
            "{method} {template}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn api_keys_are_scoped_and_revocable() {
    let app = spawn_app().await;
    let ingest = app.api_key("sensor-1", &["ingest"]).await;
    let read = app.api_key("grafana", &["read"]).await;
    let line = "1.1.1.1 - - [10/Oct/2023:13:55:36 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"";
    let push = |key: &str| {
        app.client
            .post(app.url("/api/v1/ingest?format=combined"))
            .header("X-Api-Key", key)
            .body(line)
            .send()
    };
    assert_eq!(push(&ingest).await.expect("req").status(), 200);
    assert_eq!(push(&read).await.expect("req").status(), 403);
    let get = |key: &str| {
        app.client
            .get(app.url("/api/v1/events"))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(get(&read).await.expect("req").status(), 200);
    assert_eq!(get(&ingest).await.expect("req").status(), 403);
    assert_eq!(
        app.client
            .get(app.url("/api/v1/users"))
            .bearer_auth(&read)
            .send()
            .await
            .expect("req")
            .status(),
        403
    );
    // A key with one character changed is not a key.
    let mut forged = ingest.clone();
    let last = forged
        .pop()
        .map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    forged.push(last);
    assert_eq!(push(&forged).await.expect("req").status(), 401);
    // Listing never shows the key, revocation takes effect at once.
    let (_, keys) = app.get_json("/api/v1/api-keys").await;
    assert!(!keys.to_string().contains(&ingest));
    let id = keys["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|k| k["name"] == "sensor-1")
        .expect("key")["id"]
        .as_i64()
        .expect("id");
    assert_eq!(
        app.req(Method::DELETE, &format!("/api/v1/api-keys/{id}"))
            .send()
            .await
            .expect("req")
            .status(),
        204
    );
    assert_eq!(push(&ingest).await.expect("req").status(), 401);
    app.stop().await;
}

fn forge(header: &str, payload: &serde_json::Value, key: &[u8]) -> String {
    use hmac::Mac as _;
    let h = B64.encode(header);
    let p = B64.encode(payload.to_string());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
    mac.update(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", B64.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn tampered_expired_and_confused_tokens_are_rejected() {
    let app = spawn_app().await;
    let key = palisade_auth::jwt::load_or_create_key(&app.dir.path().join("jwt.key")).expect("key");
    let now = palisade_core::Timestamp::now().as_micros() / 1_000_000;
    let claims = |exp: i64, aud: &str| serde_json::json!({"sub": "admin", "uid": 1, "role": "admin", "iat": now, "nbf": now, "exp": exp, "jti": "x", "iss": "palisade", "aud": aud});
    let hs256 = r#"{"alg":"HS256","typ":"JWT"}"#;
    let good = forge(hs256, &claims(now + 600, "palisade-api"), &key);
    let status = |t: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/auth/me"))
                .bearer_auth(t)
                .send()
                .await
                .expect("req")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        status(good.clone()).await,
        200,
        "a correctly signed token works"
    );
    assert_eq!(
        status(forge(hs256, &claims(now - 600, "palisade-api"), &key)).await,
        401,
        "expired"
    );
    assert_eq!(
        status(forge(hs256, &claims(now + 600, "other"), &key)).await,
        401,
        "wrong audience"
    );
    assert_eq!(
        status(forge(
            r#"{"alg":"HS512","typ":"JWT"}"#,
            &claims(now + 600, "palisade-api"),
            &key
        ))
        .await,
        401,
        "algorithm confusion"
    );
    assert_eq!(
        status(forge(
            hs256,
            &claims(now + 600, "palisade-api"),
            b"another-key-of-enough-length-32b"
        ))
        .await,
        401,
        "other key"
    );
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims(now + 600, "palisade-api").to_string())
    );
    assert_eq!(status(none).await, 401, "alg none");
    // Change the role in the payload but keep the signature.
    let parts: Vec<&str> = good.split('.').collect();
    let mut promoted = claims(now + 600, "palisade-api");
    promoted["uid"] = serde_json::json!(2);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(promoted.to_string()),
        parts[2]
    );
    assert_eq!(status(tampered).await, 401, "tampered payload");
    app.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let (_, first) = app.login("admin", ADMIN_PASSWORD).await;
    let r1 = first["refresh_token"].as_str().expect("refresh").to_owned();
    let refresh = |t: String| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url("/api/v1/auth/refresh"))
                .json(&serde_json::json!({"refresh_token": t}))
                .send()
                .await
                .expect("req");
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, second) = refresh(r1.clone()).await;
    assert_eq!(status, 200);
    let r2 = second["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(r1, r2);
    // The spent token is replayed: refused, and the live one in its family dies too.
    assert_eq!(refresh(r1).await.0, 401);
    assert_eq!(refresh(r2).await.0, 401);
    // The replay also revoked the admin's access tokens (issue 19, finding 10): the
    // audit is read with a fresh login.
    let (_, fresh) = app.login("admin", ADMIN_PASSWORD).await;
    let audit: serde_json::Value = app
        .client
        .get(app.url("/api/v1/audit?action=refresh.reuse"))
        .bearer_auth(fresh["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    // Logout revokes.
    let (_, s) = app.login("admin", ADMIN_PASSWORD).await;
    let token = s["access_token"].as_str().expect("t");
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 204);
    assert_eq!(
        refresh(s["refresh_token"].as_str().expect("r").to_owned())
            .await
            .0,
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account() {
    let app = spawn_app().await;
    let _ = app.token_for("lucy", "viewer").await;
    for _ in 0..5 {
        assert_eq!(app.login("lucy", "wrong-password-here").await.0, 401);
    }
    assert_eq!(app.login("lucy", "wrong-password-here").await.0, 401);
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "lucy", "password": "lucy-Password-123"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 429, "locked even with the right password");
    assert!(r.headers().contains_key("retry-after"));
    // Unknown users get the same answer as wrong passwords.
    let (status, body) = app.login("nobody", "whatever-password").await;
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "invalid username or password");
    app.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.auth.config.limits.login_per_minute = 3;
    let app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    let mut limited = None;
    for _ in 0..5 {
        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "x", "password": "y"}))
            .send()
            .await
            .expect("req");
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the login rate limit never applied");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Other route classes are not affected.
    assert_eq!(
        app.client
            .get(app.url("/api/v1/events"))
            .send()
            .await
            .expect("req")
            .status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn secrets_are_masked_and_never_echoed() {
    let app = spawn_app().await;
    let value = "sk-live-0123456789abcdefXYZ";
    let r = app
        .req(Method::PUT, "/api/v1/secrets/nvd_api_key")
        .json(&serde_json::json!({"value": value}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 204);
    let body = app.get("/api/v1/secrets").await.text().await.expect("text");
    assert!(
        !body.contains(value) && !body.contains("0123456789"),
        "{body}"
    );
    assert!(
        body.contains("nvd_api_key") && body.contains("YZ"),
        "{body}"
    );
    let audit = app.get("/api/v1/audit").await.text().await.expect("text");
    assert!(!audit.contains(value));
    assert!(audit.contains("secret.set"));
    let bad = app
        .req(Method::PUT, "/api/v1/secrets/bad%20name")
        .json(&serde_json::json!({"value": "v"}))
        .send()
        .await
        .expect("req");
    assert_eq!(bad.status(), 400);
    // Stored encrypted: the raw database file does not hold the value.
    let db = std::fs::read(app.dir.path().join("palisade.db")).expect("db");
    assert!(!db.windows(value.len()).any(|w| w == value.as_bytes()));
    app.stop().await;
}

#[tokio::test]
async fn users_are_managed_by_admins_and_the_last_admin_stays() {
    let app = spawn_app().await;
    let r = app
        .req(Method::POST, "/api/v1/users")
        .json(&serde_json::json!({"username": "bob", "password": "short", "role": "viewer"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let p: serde_json::Value = r.json().await.expect("json");
    assert_eq!(p["field"], "password");
    let _ = app.token_for("bob", "analyst").await;
    let r = app.req(Method::POST, "/api/v1/users").json(&serde_json::json!({"username": "bob", "password": "bob-Password-123", "role": "viewer"})).send().await.expect("req");
    assert_eq!(r.status(), 409);
    let (_, users) = app.get_json("/api/v1/users").await;
    assert!(
        !users.to_string().contains("argon2"),
        "hashes must never be listed"
    );
    let admin_id = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|u| u["username"] == "admin")
        .expect("admin")["id"]
        .as_i64()
        .expect("id");
    let r = app
        .req(Method::DELETE, &format!("/api/v1/users/{admin_id}"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 409, "the last admin cannot be removed");
    let bob = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|u| u["username"] == "bob")
        .expect("bob")["id"]
        .as_i64()
        .expect("id");
    let r = app
        .req(Method::PATCH, &format!("/api/v1/users/{bob}"))
        .json(&serde_json::json!({"disabled": true}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.login("bob", "bob-Password-123").await.0,
        401,
        "disabled users cannot log in"
    );
    app.stop().await;
}
