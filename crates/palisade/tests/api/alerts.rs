//! Alerts through the real service, on SQLite and PostgreSQL: attacks checked by
//! `/api/v1/check/request` become threats, the built-in rule groups them into one alert
//! per client and category, a webhook channel created through the API receives signed
//! notifications at a real receiver on loopback (verified here with HMAC-SHA256 as a
//! receiver would), analysts move the alert through its lifecycle with comments, the
//! activity feed shows it, and roles and bad input are refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use palisade_core::duration::Span;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    TestApp, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with, test_settings,
};

pub(crate) type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

pub(crate) async fn receiver() -> (std::net::SocketAddr, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let g = g.clone();
            async move {
                g.lock().expect("lock").push((headers, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, got)
}

/// What a Standard Webhooks receiver checks.
pub(crate) fn verify(headers: &HeaderMap, body: &str, secret: &str) {
    let h = |name: &str| headers[name].to_str().expect("header").to_owned();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(h("webhook-signature"), expected, "signature");
}

async fn spawn_on(database_url: Option<String>) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, database_url);
    settings.alerts.group_wait = Span::from_secs(0);
    settings.alerts.poll_every = Span::from_millis(20);
    settings.alerts.retry_base_delay = Span::from_millis(100);
    settings.alerts.retry_max_delay = Span::from_millis(300);
    settings.alerts.activity_every = Span::from_millis(50);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    app
}

async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn attack(app: &TestApp, client_ip: &str) {
    let r = app
        .req(reqwest::Method::POST, "/api/v1/check/request")
        .json(&json!({
            "method": "GET",
            "uri": "/item?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
            "headers": [["host", "shop"]],
            "client_ip": client_ip,
        }))
        .send()
        .await
        .expect("check");
    assert_eq!(r.status(), 403, "{:?}", r.text().await);
}

async fn eventually(app: &TestApp, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let (status, v) = app.get_json(path).await;
        if status == 200 && ok(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, v) = app.get_json(path).await;
    panic!("{path} never matched: {v}");
}

#[tokio::test]
async fn attacks_become_one_alert_notified_signed_and_handled_by_analysts() {
    let app = spawn_on(None).await;
    alerts_flow(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn attacks_become_one_alert_notified_signed_and_handled_by_analysts_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let app = spawn_on(Some(url)).await;
    alerts_flow(&app).await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}

async fn alerts_flow(app: &TestApp) {
    use reqwest::Method;
    let admin = app.token.clone();
    let analyst = app.token_for("ana", "analyst").await;
    let viewer = app.token_for("vic", "viewer").await;
    let (addr, got) = receiver().await;

    // Built-in rules exist; analysts read them, only admins change them.
    let rules = eventually(app, "/api/v1/alert-rules", |v| {
        v["items"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    assert!(
        rules["items"]
            .as_array()
            .expect("rules")
            .iter()
            .all(|r| r["origin"] == "builtin")
    );
    let (s, _) = send(app, &analyst, Method::GET, "/api/v1/alert-rules", None).await;
    assert_eq!(s, 200);
    let (s, _) = send(
        app,
        &analyst,
        Method::POST,
        "/api/v1/alert-rules",
        Some(json!({"name": "x", "spec": {}})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, p) = send(
        app,
        &admin,
        Method::POST,
        "/api/v1/alert-rules",
        Some(json!({"name": "x", "spec": {"window": "90d"}})),
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (400, Some("spec.window")), "{p}");
    let (s, p) = send(
        app,
        &admin,
        Method::POST,
        "/api/v1/alert-rules",
        Some(json!({"name": "x", "spec": {"group_by": ["nope"]}})),
    )
    .await;
    assert_eq!(s, 400, "{p}");
    assert!(
        p["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("spec.group_by")),
        "{p}"
    );
    let (s, rule) = send(app, &admin, Method::POST, "/api/v1/alert-rules", Some(json!({"name": "Scanners", "enabled": false, "spec": {"categories": ["scanner"], "group_by": ["source"]}}))).await;
    assert_eq!(s, 201, "{rule}");
    let rule_path = format!("/api/v1/alert-rules/{}", rule["id"]);
    let (s, _) = send(
        app,
        &admin,
        Method::POST,
        "/api/v1/alert-rules",
        Some(json!({"name": "Scanners", "spec": {}})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, upd) = send(
        app,
        &admin,
        Method::PUT,
        &rule_path,
        Some(json!({"name": "Scanners 2", "enabled": false, "spec": {"window": "1h"}})),
    )
    .await;
    assert_eq!(
        (s, upd["spec"]["window"].as_str()),
        (200, Some("1h")),
        "{upd}"
    );
    let (s, _) = send(app, &admin, Method::DELETE, &rule_path, None).await;
    assert_eq!(s, 204);
    let (s, _) = send(app, &admin, Method::GET, &rule_path, None).await;
    assert_eq!(s, 404);

    // A webhook channel: the secret is shown once.
    let (s, _) = send(app, &analyst, Method::GET, "/api/v1/channels", None).await;
    assert_eq!(s, 403);
    let (s, p) = send(
        app,
        &admin,
        Method::POST,
        "/api/v1/channels",
        Some(json!({"name": "ops", "spec": {"kind": "webhook", "url": "ftp://x"}})),
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (400, Some("spec.url")), "{p}");
    let (s, p) = send(app, &admin, Method::POST, "/api/v1/channels", Some(json!({"name": "ops", "spec": {"kind": "webhook", "url": format!("http://{addr}/hook")}, "secret": "nope"}))).await;
    assert_eq!((s, p["field"].as_str()), (400, Some("secret")), "{p}");
    let (s, ch) = send(app, &admin, Method::POST, "/api/v1/channels", Some(json!({"name": "ops", "spec": {"kind": "webhook", "url": format!("http://{addr}/hook")}}))).await;
    assert_eq!(s, 201, "{ch}");
    let secret = ch["secret"].as_str().expect("secret shown once").to_owned();
    assert!(secret.starts_with("whsec_"));
    let ch_path = format!("/api/v1/channels/{}", ch["id"]);
    let (s, shown) = send(app, &admin, Method::GET, &ch_path, None).await;
    assert_eq!(s, 200);
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(
        !app.get_text("/api/v1/secrets")
            .await
            .1
            .contains(&secret[8..])
    );

    // The test notification arrives signed.
    let (s, t) = send(app, &admin, Method::POST, &format!("{ch_path}/test"), None).await;
    assert_eq!((s, &t["delivered"]), (200, &json!(true)), "{t}");
    {
        let got = got.lock().expect("lock");
        assert_eq!(got.len(), 1);
        verify(&got[0].0, &got[0].1, &secret);
        assert_eq!(
            got[0].0["webhook-id"].to_str().expect("id"),
            t["message_id"]
        );
        assert_eq!(
            serde_json::from_str::<Value>(&got[0].1).expect("json")["type"],
            "test"
        );
    }

    // Five attacks from one client: one alert of five threats, notified once.
    for _ in 0..5 {
        attack(app, "198.51.100.9").await;
    }
    let list = eventually(app, "/api/v1/alerts?state=active&category=sqli", |v| {
        v["items"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["rule_name"] == "Attacks by client and category" && x["count"] == 5)
        })
    })
    .await;
    let alert = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|x| x["rule_name"] == "Attacks by client and category")
        .expect("alert")
        .clone();
    assert_eq!(alert["group_key"], "client_ip=198.51.100.9 category=sqli");
    let id = alert["id"].as_i64().expect("id");
    let path = format!("/api/v1/alerts/{id}");
    let detail = eventually(app, &path, |v| {
        v["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x["state"] == "delivered"))
    })
    .await;
    assert_eq!(
        detail["threats"].as_array().map(Vec::len),
        Some(5),
        "{detail}"
    );
    assert!(
        detail["threats"]
            .as_array()
            .expect("threats")
            .iter()
            .all(|t| t["client_ip"] == "198.51.100.9")
    );
    assert_eq!(detail["history"][0]["action"], "opened");
    {
        let got = got.lock().expect("lock");
        let mine: Vec<&(HeaderMap, String)> = got
            .iter()
            .filter(|(_, b)| serde_json::from_str::<Value>(b).is_ok_and(|d| d["data"]["id"] == id))
            .collect();
        assert!(!mine.is_empty());
        for (h, b) in &mine {
            verify(h, b, &secret);
        }
        let first: Value = serde_json::from_str(&mine[0].1).expect("json");
        assert_eq!(first["type"], "alert.firing");
    }

    // Roles: viewers see no alerts; analysts act on them.
    let (s, _) = send(app, &viewer, Method::GET, "/api/v1/alerts", None).await;
    assert_eq!(s, 403);
    let (s, p) = send(
        app,
        &analyst,
        Method::GET,
        "/api/v1/alerts?state=bogus",
        None,
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (400, Some("state")), "{p}");
    let (s, p) = send(
        app,
        &analyst,
        Method::POST,
        &format!("{path}/acknowledge"),
        Some(json!({"comment": 5})),
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (400, Some("comment")), "{p}");
    let (s, a) = send(
        app,
        &analyst,
        Method::POST,
        &format!("{path}/acknowledge"),
        Some(json!({"comment": "looking"})),
    )
    .await;
    assert_eq!((s, a["state"].as_str()), (200, Some("acknowledged")), "{a}");
    assert_eq!(
        (a["state_by"].as_str(), a["state_comment"].as_str()),
        (Some("ana"), Some("looking"))
    );
    let (s, _) = send(
        app,
        &analyst,
        Method::POST,
        &format!("{path}/acknowledge"),
        None,
    )
    .await;
    assert_eq!(s, 409);
    let (s, a) = send(
        app,
        &analyst,
        Method::POST,
        &format!("{path}/resolve"),
        None,
    )
    .await;
    assert_eq!((s, a["state"].as_str()), (200, Some("resolved")), "{a}");
    let (s, _) = send(
        app,
        &analyst,
        Method::POST,
        &format!("{path}/dismiss"),
        None,
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = send(
        app,
        &analyst,
        Method::POST,
        "/api/v1/alerts/999999/resolve",
        None,
    )
    .await;
    assert_eq!(s, 404);

    // The resolution is notified too.
    eventually(app, &path, |v| {
        v["deliveries"].as_array().is_some_and(|d| {
            d.iter()
                .any(|x| x["event"] == "resolved" && x["state"] == "delivered")
        })
    })
    .await;

    // The group fires again: the same alert reopens, with its history kept.
    attack(app, "198.51.100.9").await;
    let again = eventually(app, &path, |v| v["alert"]["state"] == "active").await;
    assert_eq!(again["alert"]["count"], 6);
    let actions: Vec<&str> = again["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["action"].as_str())
        .collect();
    assert_eq!(actions, ["opened", "acknowledged", "resolved", "reopened"]);
    assert_eq!(again["history"][1]["comment"], "looking");
    assert_eq!(again["history"][1]["actor"], "ana");

    // The activity feed shows who did what; analysts read it, viewers do not.
    let feed = eventually(app, "/api/v1/activities?kind=alert.", |v| {
        v["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["kind"] == "alert.reopened"))
    })
    .await;
    let kinds: Vec<&str> = feed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|x| x["detail"]["alert_id"] == id)
        .filter_map(|x| x["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "alert.reopened",
            "alert.resolved",
            "alert.acknowledged",
            "alert.opened"
        ]
    );
    // Receivers are told it reopened, not that it grew.
    eventually(app, &path, |v| {
        v["deliveries"].as_array().is_some_and(|d| {
            d.iter()
                .any(|x| x["event"] == "reopened" && x["state"] == "delivered")
        })
    })
    .await;
    {
        let got = got.lock().expect("lock");
        let reopened: Vec<Value> = got
            .iter()
            .filter_map(|(_, b)| serde_json::from_str::<Value>(b).ok())
            .filter(|d| d["data"]["id"] == id && d["type"] == "alert.reopened")
            .collect();
        assert_eq!(reopened.len(), 1, "one reopened notification");
        assert_eq!(reopened[0]["data"]["state"], "active");
    }
    let (s, _) = send(
        app,
        &analyst,
        Method::GET,
        "/api/v1/activities?limit=1",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(app, &viewer, Method::GET, "/api/v1/activities", None).await;
    assert_eq!(s, 403);

    // Decisions and settings changes are in the feed too.
    let (s, d) = send(
        app,
        &admin,
        Method::POST,
        "/api/v1/decisions",
        Some(json!({"kind": "ban", "value": "192.0.2.77", "duration": "1h", "reason": "by hand"})),
    )
    .await;
    assert_eq!(s, 201, "{d}");
    let feed = eventually(app, "/api/v1/activities?kind=decision.", |v| {
        v["items"].as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x["detail"]["decisions"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["value"] == "192.0.2.77"))
            })
        })
    })
    .await;
    assert_eq!(feed["items"][0]["kind"], "decision.added");
    let (s, _) = send(
        app,
        &admin,
        Method::PUT,
        "/api/v1/detection/config",
        Some(json!({"mode": "block", "paranoia": 2, "threshold": 5})),
    )
    .await;
    assert_eq!(s, 200);
    let feed = eventually(app, "/api/v1/activities?kind=settings.", |v| {
        v["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(feed["items"][0]["actor"], "admin");
    assert_eq!(feed["items"][0]["detail"]["paranoia"], 2);

    // Deleting the channel removes its secret.
    let (s, _) = send(app, &admin, Method::DELETE, &ch_path, None).await;
    assert_eq!(s, 204);
    assert!(
        app.store
            .secret(&format!("alert_channel.{}", ch["id"]))
            .await
            .expect("secret")
            .is_none()
    );
    slack_urls_are_sealed(app, &got, &addr.to_string()).await;
}

/// A Slack channel's URL is a credential: sealed in the secrets store, never shown
/// back, kept when a replace leaves it out; one stored in plain before sealing still
/// delivers, shows only its host, and is sealed when next saved.
async fn slack_urls_are_sealed(app: &TestApp, got: &Received, addr: &str) {
    use reqwest::Method;
    let admin = app.token.clone();
    let url = format!("http://{addr}/hook");
    let (s, p) = send(
        app,
        &admin,
        Method::POST,
        "/api/v1/channels",
        Some(json!({"name": "chat", "spec": {"kind": "slack"}})),
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (400, Some("spec.url")), "{p}");
    let (s, ch) = send(
        app,
        &admin,
        Method::POST,
        "/api/v1/channels",
        Some(json!({"name": "chat", "spec": {"kind": "slack", "url": url}})),
    )
    .await;
    assert_eq!(s, 201, "{ch}");
    let id = ch["id"].as_i64().expect("id");
    let path = format!("/api/v1/channels/{id}");
    assert_eq!(
        ch["spec"],
        json!({"kind": "slack", "host": format!("http://{addr}")})
    );
    assert!(ch.get("secret").is_none(), "{ch}");
    let (_, shown) = send(app, &admin, Method::GET, "/api/v1/channels", None).await;
    assert!(!shown.to_string().contains("/hook"), "{shown}");
    let stored = app
        .store
        .get_spec(palisade_store::SpecTable::Channels, id)
        .await
        .expect("spec")
        .expect("stored");
    assert!(
        !stored.input.spec.to_string().contains("/hook"),
        "stored sealed"
    );
    assert!(
        app.store
            .secret(&format!("alert_channel.{id}"))
            .await
            .expect("secret")
            .is_some()
    );
    let texts = |got: &Received| -> usize {
        got.lock()
            .expect("lock")
            .iter()
            .filter(|(_, b)| b.contains("\"text\":\"[TEST]"))
            .count()
    };
    let before = texts(got);
    let (s, t) = send(app, &admin, Method::POST, &format!("{path}/test"), None).await;
    assert_eq!((s, &t["delivered"]), (200, &json!(true)), "{t}");
    assert_eq!(texts(got), before + 1);
    // Renamed without its URL: the sealed one stays and still delivers.
    let (s, up) = send(
        app,
        &admin,
        Method::PUT,
        &path,
        Some(json!({"name": "chat-2", "spec": {"kind": "slack"}})),
    )
    .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["spec"]["host"], format!("http://{addr}"));
    let (_, t) = send(app, &admin, Method::POST, &format!("{path}/test"), None).await;
    assert_eq!(t["delivered"], true, "{t}");
    assert_eq!(texts(got), before + 2);

    // Stored in plain by an older version: delivered to, never shown.
    let legacy = app
        .store
        .insert_spec(
            palisade_store::SpecTable::Channels,
            &palisade_store::SpecInput {
                name: "old-chat".into(),
                kind: "slack".into(),
                enabled: true,
                spec: json!({"kind": "slack", "url": url}),
            },
        )
        .await
        .expect("legacy channel");
    let legacy_path = format!("/api/v1/channels/{}", legacy.id);
    let (s, shown) = send(app, &admin, Method::GET, &legacy_path, None).await;
    assert_eq!(s, 200);
    assert_eq!(
        shown["spec"],
        json!({"kind": "slack", "host": format!("http://{addr}")})
    );
    let (_, t) = send(
        app,
        &admin,
        Method::POST,
        &format!("{legacy_path}/test"),
        None,
    )
    .await;
    assert_eq!(t["delivered"], true, "{t}");
    assert_eq!(texts(got), before + 3);
    // Saved again: sealed now.
    let (s, _) = send(
        app,
        &admin,
        Method::PUT,
        &legacy_path,
        Some(json!({"name": "old-chat", "spec": {"kind": "slack"}})),
    )
    .await;
    assert_eq!(s, 200);
    let stored = app
        .store
        .get_spec(palisade_store::SpecTable::Channels, legacy.id)
        .await
        .expect("spec")
        .expect("stored");
    assert!(
        !stored.input.spec.to_string().contains("/hook"),
        "sealed on save"
    );
    let (_, t) = send(
        app,
        &admin,
        Method::POST,
        &format!("{legacy_path}/test"),
        None,
    )
    .await;
    assert_eq!(t["delivered"], true, "{t}");
    assert_eq!(texts(got), before + 4);
}
