//! The authentication findings of the penetration test (issue 19), each reproduced
//! through the real service: rate-limit keys, lockout counting under concurrency, who
//! a lockout can hit, token revocation, password-change guessing and problem fields.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_with, test_settings};

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the
/// loopback listener), so one test can play several source addresses.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// One login answer: status, body and `Retry-After`.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

async fn login_with(app: &TestApp, client: &reqwest::Client, user: &str, password: &str) -> Answer {
    let r = client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login");
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Answer {
        status,
        body: r.json().await.unwrap_or(Value::Null),
        retry_after,
    }
}

/// The password `TestApp::token_for` gives a user.
fn password_of(user: &str) -> String {
    format!("{user}-Password-123")
}

/// Finding 3: a random `X-Api-Key` or `Authorization` header must not buy a fresh
/// rate-limit bucket, neither on an open route (login) nor on a protected one.
#[tokio::test]
async fn random_credential_headers_share_the_address_bucket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.auth.config.limits.login_per_minute = 10;
    settings.auth.config.limits.read_per_second = 5;
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    // Different usernames, so that only the rate limiter (not a lockout) can refuse.
    let mut limited = None;
    for i in 0..30 {
        let mut req = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": format!("user{i}"), "password": "wrong-password-1"}));
        req = if i % 2 == 0 {
            req.header("X-Api-Key", format!("pal_random{i}_{}", i * 7919))
        } else {
            req.bearer_auth(format!("random-token-{i}"))
        };
        let r = req.send().await.expect("login");
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = limited.expect("30 logins with random credential headers never hit 429");
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.expect("json");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("rate limit"),
        "{body}"
    );

    // A protected route: garbage credentials are limited per address too.
    let mut limited = false;
    for i in 0..30 {
        let r = app
            .client
            .get(app.url("/api/v1/events"))
            .header("X-Api-Key", format!("pal_garbage{i}"))
            .send()
            .await
            .expect("get");
        if r.status() == 429 {
            limited = true;
            break;
        }
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    assert!(
        limited,
        "30 reads with random API keys from one address never hit 429"
    );
    // The buckets are the address's: the same admin token from another address is
    // not refused.
    let r = client_from("127.0.0.2")
        .get(app.url("/api/v1/events"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    app.stop().await;
}

/// Finding 2: password checks beyond the hashers and their waiting line are refused
/// at once (503 with `Retry-After`) instead of each taking 19 MiB.
#[tokio::test]
async fn a_login_flood_beyond_the_hashing_bound_gets_503() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.auth.config.password_hashers = 1;
    settings.auth.config.password_queue = 0;
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let mut refused = None;
    let mut statuses = Vec::new();
    // Unknown names, each checked against the dummy hash: one at a time fits, the rest
    // of a parallel burst does not. A few rounds, in case one burst arrives spread out.
    for round in 0..5 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..40 {
            let client = app.client.clone();
            let url = app.url("/api/v1/auth/login");
            set.spawn(async move {
                client
                    .post(url)
                    .json(&json!({"username": format!("flood{round}-{i}"), "password": "guess-guess-guess"}))
                    .send()
                    .await
                    .expect("login")
            });
        }
        while let Some(r) = set.join_next().await {
            let r = r.expect("task");
            statuses.push(r.status().as_u16());
            if r.status() == 503 && refused.is_none() {
                refused = Some(r);
            }
        }
        if refused.is_some() {
            break;
        }
    }
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 503)),
        "{statuses:?}"
    );
    let r = refused.expect("no login was refused although one hasher and no waiting line");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // The service is fine afterwards.
    assert_eq!(
        login_with(&app, &app.client, "admin", crate::helpers::ADMIN_PASSWORD)
            .await
            .status,
        200
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains("palisade_password_checks_refused_total"),
        "{metrics}"
    );
    app.stop().await;
}

/// Sends `password` for `user` from each client at once; the statuses.
async fn burst(app: &TestApp, clients: &[reqwest::Client], user: &str, password: &str) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for client in clients {
        let request = client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": user, "password": password}));
        set.spawn(async move {
            let r = request.send().await.expect("login");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = set.join_next().await {
        let (status, body) = done.expect("task");
        assert!(matches!(status, 401 | 429 | 503), "{status} {body}");
        statuses.push(status);
    }
    statuses
}

/// Finding 4: parallel wrong passwords are all counted, none lost: from one address at
/// most the 5 free attempts and the one that locks are ever checked, however they
/// arrive; from many addresses at once the account-wide count is exact.
#[tokio::test]
async fn parallel_wrong_passwords_are_all_counted() {
    let app = spawn_app().await;
    let _ = app.token_for("lucy", "viewer").await;
    let _ = app.token_for("mia", "viewer").await;

    // 60 at once from one address, then one at a time until the lock.
    let same = vec![app.client.clone(); 60];
    let mut checked = burst(&app, &same, "lucy", "wrong-password-here")
        .await
        .iter()
        .filter(|s| **s == 401)
        .count();
    let mut locked = false;
    for _ in 0..10 {
        let a = login_with(&app, &app.client, "lucy", "wrong-password-here").await;
        match a.status {
            401 => checked += 1,
            429 if a.body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("failed password attempts") =>
            {
                locked = true;
                break;
            }
            other => panic!("{other} {}", a.body),
        }
    }
    assert!(locked, "never locked");
    assert_eq!(
        checked, 6,
        "exactly the 5 free attempts and the one that locks are checked"
    );
    let a = login_with(&app, &app.client, "lucy", &password_of("lucy")).await;
    assert_eq!(a.status, 429, "locked even with the right password");

    // 30 at once from 30 addresses: each is checked, and each is counted account-wide.
    let many: Vec<_> = (10..40)
        .map(|n| client_from(&format!("127.0.0.{n}")))
        .collect();
    let statuses = burst(&app, &many, "mia", "wrong-password-here").await;
    assert_eq!(statuses, vec![401; 30]);
    let horizon = palisade_core::Timestamp::now().add_micros(-3_600_000_000);
    let wide = app
        .store
        .login_failures("mia", "*", horizon)
        .await
        .expect("store")
        .expect("a run");
    assert_eq!(wide.failures, 30, "no failure lost under concurrency");
    let a = login_with(&app, &client_from("127.0.0.99"), "mia", &password_of("mia")).await;
    assert_eq!(a.status, 429, "past 20, new addresses are locked out");
    app.stop().await;
}

/// Finding 5: failures from one address lock that address only; everyone else,
/// including the real user, still logs in.
#[tokio::test]
async fn failures_from_one_address_do_not_lock_out_the_others() {
    let app = spawn_app().await;
    let _ = app.token_for("lucy", "viewer").await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..6 {
        assert_eq!(
            login_with(&app, &attacker, "lucy", "wrong-password-here")
                .await
                .status,
            401
        );
    }
    let a = login_with(&app, &attacker, "lucy", &password_of("lucy")).await;
    assert_eq!(a.status, 429, "the attacking address is locked");
    assert!(a.retry_after.is_some());
    let elsewhere = client_from("127.0.0.3");
    let a = login_with(&app, &elsewhere, "lucy", &password_of("lucy")).await;
    assert_eq!(a.status, 200, "another address is not locked: {}", a.body);
    let a = login_with(&app, &app.client, "lucy", &password_of("lucy")).await;
    assert_eq!(a.status, 200, "the user's own address is not locked");
    app.stop().await;
}

/// Finding 5: a locked unknown name answers exactly like a locked existing one, so
/// the lockout does not reveal which names exist.
#[tokio::test]
async fn lockout_answers_alike_for_unknown_and_existing_users() {
    let app = spawn_app().await;
    let _ = app.token_for("lucy", "viewer").await;
    let attacker = client_from("127.0.0.4");
    let mut answers = Vec::new();
    for user in ["lucy", "nobody"] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(
                login_with(&app, &attacker, user, "wrong-password-here")
                    .await
                    .status,
            );
        }
        assert_eq!(statuses, vec![401; 6], "{user}");
        answers.push(login_with(&app, &attacker, user, "wrong-password-here").await);
    }
    let (lucy, nobody) = (&answers[0], &answers[1]);
    assert_eq!(lucy.status, 429);
    assert_eq!(nobody.status, lucy.status, "{}", nobody.body);
    assert_eq!(nobody.body, lucy.body);
    assert_eq!(nobody.retry_after, lucy.retry_after);
    app.stop().await;
}

/// Finding 5: failures spread over many addresses lock the account for addresses it
/// never logged in from, but not for an address it logged in from before; and
/// `palisade user unlock` lifts every lock.
#[tokio::test]
async fn known_addresses_keep_working_and_the_cli_unlocks() {
    let app = spawn_app().await;
    // lucy logs in from 127.0.0.1 (token_for): a known-good address from now on.
    let _ = app.token_for("lucy", "viewer").await;
    // 5 failures from each of 4 addresses (none of them locked on its own), then the
    // 21st from a fifth.
    for n in 2..=6 {
        let attacker = client_from(&format!("127.0.0.{n}"));
        for _ in 0..(if n == 6 { 1 } else { 5 }) {
            let a = login_with(&app, &attacker, "lucy", "wrong-password-here").await;
            assert_eq!(a.status, 401, "from 127.0.0.{n}");
        }
    }
    let fresh = client_from("127.0.0.9");
    let a = login_with(&app, &fresh, "lucy", &password_of("lucy")).await;
    assert_eq!(
        a.status, 429,
        "21 failures from 5 addresses lock the account for new addresses: {}",
        a.body
    );
    let unknown = login_with(&app, &fresh, "nobody", "wrong-password-here").await;
    assert_eq!(unknown.status, 401, "other names are not affected");
    let a = login_with(&app, &app.client, "lucy", &password_of("lucy")).await;
    assert_eq!(
        a.status, 200,
        "an address lucy logged in from before still works: {}",
        a.body
    );

    // The documented reset, on the same data directory while the server runs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("--data-dir")
        .arg(app.dir.path())
        .args(["user", "unlock", "lucy"])
        .env("PALISADE_LOG", "warn")
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG")
        .env_remove("PALISADE_ADMIN_PASSWORD")
        .output()
        .expect("run palisade user unlock");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("lucy"), "{text}");
    for ip in ["127.0.0.9", "127.0.0.2"] {
        let a = login_with(&app, &client_from(ip), "lucy", &password_of("lucy")).await;
        assert_eq!(a.status, 200, "after unlock, from {ip}: {}", a.body);
    }
    app.stop().await;
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me")
        .status()
        .as_u16()
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().expect(name)
}

/// Finding 10: an access token dies with the logout, with the refresh-token replay
/// that revoked its family, and with a password change; tokens issued right after
/// (in the same second) work.
#[tokio::test]
async fn access_tokens_are_revoked_with_their_sessions() {
    let app = spawn_app().await;
    let _ = app.token_for("lucy", "viewer").await;
    let pw = password_of("lucy");

    // Logout.
    let s = login_with(&app, &app.client, "lucy", &pw).await.body;
    let access = field(&s, "access_token");
    assert_eq!(me_status(&app, access).await, 200);
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 204);
    assert_eq!(
        me_status(&app, access).await,
        401,
        "access token after logout"
    );
    let again = login_with(&app, &app.client, "lucy", &pw).await.body;
    assert_eq!(
        me_status(&app, field(&again, "access_token")).await,
        200,
        "a login right after the logout works"
    );

    // Refresh-token replay.
    let s = login_with(&app, &app.client, "lucy", &pw).await.body;
    let refresh = |t: String| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url("/api/v1/auth/refresh"))
                .json(&json!({"refresh_token": t}))
                .send()
                .await
                .expect("refresh");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, rotated) = refresh(field(&s, "refresh_token").to_owned()).await;
    assert_eq!(status, 200);
    assert_eq!(me_status(&app, field(&rotated, "access_token")).await, 200);
    assert_eq!(refresh(field(&s, "refresh_token").to_owned()).await.0, 401);
    for (what, t) in [
        ("the first", field(&s, "access_token")),
        ("the rotated", field(&rotated, "access_token")),
    ] {
        assert_eq!(
            me_status(&app, t).await,
            401,
            "{what} access token after the replay revoked its family"
        );
    }

    // Password change.
    let s = login_with(&app, &app.client, "lucy", &pw).await.body;
    let access = field(&s, "access_token");
    let r = app
        .client
        .post(app.url("/api/v1/auth/password"))
        .bearer_auth(access)
        .json(&json!({"current_password": pw, "new_password": "lucy-New-Password-456"}))
        .send()
        .await
        .expect("password");
    assert_eq!(r.status(), 204);
    assert_eq!(
        me_status(&app, access).await,
        401,
        "access token after a password change"
    );
    let s = login_with(&app, &app.client, "lucy", "lucy-New-Password-456")
        .await
        .body;
    assert_eq!(me_status(&app, field(&s, "access_token")).await, 200);
    app.stop().await;
}

/// Finding 11: wrong current passwords at `POST /api/v1/auth/password` count like
/// failed logins and end in the same lockout.
#[tokio::test]
async fn wrong_current_passwords_are_counted_like_failed_logins() {
    let app = spawn_app().await;
    let token = app.token_for("lucy", "viewer").await;
    let change = |current: &str| {
        app.client
            .post(app.url("/api/v1/auth/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": current, "new_password": "lucy-New-Password-456"}))
            .send()
    };
    for i in 0..6 {
        let r = change("not-my-password").await.expect("password");
        assert_eq!(r.status(), 403, "guess {i}");
    }
    let r = change("not-my-password").await.expect("password");
    assert_eq!(r.status(), 429, "the seventh guess is refused unchecked");
    assert!(r.headers().contains_key("retry-after"));
    let r = change(&password_of("lucy")).await.expect("password");
    assert_eq!(r.status(), 429, "even the right one, while locked");
    let a = login_with(&app, &app.client, "lucy", &password_of("lucy")).await;
    assert_eq!(a.status, 429, "the same lockout guards the login");
    app.stop().await;
}

/// Finding 13: a wrongly typed value is reported under its JSON key, never under the
/// value itself.
#[tokio::test]
async fn problem_fields_name_the_json_key() {
    let app = spawn_app().await;
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        (
            Method::POST,
            "/api/v1/auth/login",
            json!({"username": "a", "password": 123}),
            "password",
        ),
        (
            Method::POST,
            "/api/v1/auth/login",
            json!({"username": 5, "password": "x"}),
            "username",
        ),
        (
            Method::POST,
            "/api/v1/auth/login",
            json!({"username": "a"}),
            "password",
        ),
        (
            Method::POST,
            "/api/v1/auth/login",
            json!({"username": "a", "password": "b", "extra": 1}),
            "extra",
        ),
        (
            Method::POST,
            "/api/v1/users",
            json!({"username": "bob", "password": "bob-Password-123", "role": true}),
            "role",
        ),
        (
            Method::PATCH,
            "/api/v1/users/1",
            json!({"disabled": "yes"}),
            "disabled",
        ),
        (
            Method::POST,
            "/api/v1/auth/password",
            json!({"current_password": ["x"], "new_password": "y"}),
            "current_password",
        ),
        (
            Method::POST,
            "/api/v1/auth/logout",
            json!({"refresh_token": 42}),
            "refresh_token",
        ),
    ];
    for (method, path, body, expected) in cases {
        let r = app
            .req(method.clone(), path)
            .json(&body)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 400, "{method} {path} {body}");
        let p: Value = r.json().await.expect("json");
        assert_eq!(p["field"], expected, "{method} {path} {body}: {p}");
        assert_eq!(p["invalid-params"][0]["name"], expected, "{p}");
    }
    let r = app
        .req(Method::POST, "/api/v1/auth/login")
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let p: Value = r.json().await.expect("json");
    assert_eq!(p["field"], "body", "{p}");
    app.stop().await;
}
