//! IP decisions: the `/api/v1/decisions` resource, enforcement in `/api/v1/check`, and
//! the CrowdSec bouncer stream, each over the real router.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_app, spawn_with,
    test_settings,
};

async fn create(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/decisions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("req");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn delete(app: &TestApp, token: &str, id: i64) -> u16 {
    app.client
        .delete(app.url(&format!("/api/v1/decisions/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("req")
        .status()
        .as_u16()
}

#[tokio::test]
async fn decisions_are_created_listed_and_deleted_by_role_with_audit() {
    let app = spawn_app().await;
    let admin = app.token.clone();
    let analyst = app.token_for("ana", "analyst").await;
    let viewer = app.token_for("vic", "viewer").await;

    let (status, ban) = create(
        &app,
        &analyst,
        json!({"kind": "ban", "value": "203.0.113.7/24", "duration": "4h", "reason": "scanner"}),
    )
    .await;
    assert_eq!(status, 201, "{ban}");
    assert_eq!(ban["outcome"], "created");
    assert_eq!(ban["value"], "203.0.113.0/24");
    assert_eq!(ban["scope"], "range");
    assert_eq!(ban["origin"], "manual");
    assert_eq!(ban["created_by"], "ana");
    assert_eq!(ban["scenario"], "scanner");
    assert_eq!(ban["active"], true);
    assert!(ban["expires_at"].is_string());
    let id = ban["id"].as_i64().expect("id");
    // Again, for good: the same decision, extended.
    let (status, again) = create(
        &app,
        &admin,
        json!({"kind": "ban", "value": "203.0.113.0/24", "duration": null}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["outcome"].clone(), again["id"].clone()),
        (json!("extended"), json!(id))
    );
    assert!(again["expires_at"].is_null());
    let (status, allow) = create(
        &app,
        &admin,
        json!({"kind": "allow", "value": "2001:db8::1"}),
    )
    .await;
    assert_eq!(status, 201, "{allow}");
    assert!(allow["expires_at"].is_null());

    // Viewers read; they cannot change.
    let (status, _) = create(&app, &viewer, json!({"kind": "ban", "value": "192.0.2.1"})).await;
    assert_eq!(status, 403);
    assert_eq!(delete(&app, &viewer, id).await, 403);
    let list = |token: &str, query: &str| {
        let token = token.to_owned();
        let url = app.url(&format!("/api/v1/decisions{query}"));
        let client = app.client.clone();
        async move {
            let r = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("req");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, page) = list(&viewer, "").await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    let (_, page) = list(&viewer, "?ip=203.0.113.99").await;
    assert_eq!(page["items"][0]["id"], id);
    let (_, page) = list(&viewer, "?kind=allow&scope=ip&origin=manual").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let (_, page) = list(&viewer, "?scenario=scanner").await;
    assert_eq!(page["items"][0]["id"], id);
    let (_, page) = list(&viewer, "?limit=1").await;
    assert!(page["next_cursor"].is_string());
    let (status, one) = list(&viewer, "").await;
    assert_eq!(status, 200, "{one}");
    let r = app
        .client
        .get(app.url(&format!("/api/v1/decisions/{id}")))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);

    // Bad input names the field.
    for (body, field) in [
        (json!({"kind": "ban", "value": "10.0.0.0/33"}), "value"),
        (json!({"kind": "ban", "value": "0.0.0.0/0"}), "value"),
        (json!({"kind": "ban", "value": "not-an-ip"}), "value"),
        (
            json!({"kind": "ban", "value": "10.0.0.1", "duration": 0}),
            "duration",
        ),
        (
            json!({"kind": "ban", "value": "10.0.0.1", "duration": "-1h"}),
            "duration",
        ),
        (
            json!({"kind": "ban", "value": "10.0.0.1", "duration": "soon"}),
            "duration",
        ),
        (json!({"kind": "captcha", "value": "10.0.0.1"}), "kind"),
        (
            json!({"kind": "ban", "value": "10.0.0.1", "extra": 1}),
            "extra",
        ),
    ] {
        let r = app
            .client
            .post(app.url("/api/v1/decisions"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let p: Value = r.json().await.expect("json");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    for (query, field) in [
        ("?kind=x", "kind"),
        ("?ip=300.1.1.1", "ip"),
        ("?active=maybe", "active"),
        ("?bogus=1", "bogus"),
    ] {
        let (status, p) = list(&viewer, query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(p["field"], field, "{query}");
    }
    let (status, _) = list(&viewer, "/0").await;
    assert_eq!(status, 400);
    let (status, _) = list(&viewer, "/999999").await;
    assert_eq!(status, 404);

    // Deleting: soft, once, by analysts and admins.
    assert_eq!(delete(&app, &analyst, id).await, 204);
    assert_eq!(delete(&app, &analyst, id).await, 404);
    let (_, gone) = list(&viewer, &format!("/{id}")).await;
    assert_eq!(gone["active"], false);
    assert_eq!(gone["deleted_by"], "ana");
    let (_, page) = list(&viewer, "?active=false").await;
    assert_eq!(page["items"][0]["id"], id);
    let (_, page) = list(&viewer, "?active=any").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));

    let (_, audit) = app.get_json("/api/v1/audit?action=decision.create").await;
    let entries = audit["items"].as_array().expect("items");
    assert_eq!(entries.len(), 3, "{audit}");
    assert!(entries.iter().any(|e| e["actor"] == "ana"
        && e["target"] == "203.0.113.0/24"
        && e["detail"].as_str().is_some_and(|d| d.contains("created"))));
    let (_, audit) = app.get_json("/api/v1/audit?action=decision.delete").await;
    assert_eq!(audit["items"][0]["actor"], "ana");
    app.stop().await;
}

#[tokio::test]
async fn check_refuses_banned_clients_and_allow_list_entries_win() {
    let app = spawn_app().await;
    let key = app.api_key("edge", &["check"]).await;
    let check = |ip: &'static str, uri: &'static str| {
        app.client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", &key)
            .header("X-Real-IP", ip)
            .header("X-Original-URI", uri)
            .send()
    };
    let (status, ban) = create(
        &app,
        &app.token,
        json!({"kind": "ban", "value": "198.51.100.0/24", "reason": "botnet"}),
    )
    .await;
    assert_eq!(status, 201);
    let id = ban["id"].as_i64().expect("id");

    let r = check("198.51.100.20", "/").await.expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-palisade-decision"], "ban");
    assert_eq!(
        r.headers()["x-palisade-decision-id"],
        id.to_string().as_str()
    );
    let reason = r.headers()["x-palisade-reason"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        reason.contains(&format!("decision {id}")) && reason.contains("botnet"),
        "{reason}"
    );
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["decision"], "ban");
    assert_eq!(body["ban"]["id"], id);
    // Others pass.
    let r = check("198.51.101.20", "/").await.expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-decision"], "allow");

    // An allow-list entry wins over the ban, but the WAF still inspects.
    let (status, _) = create(
        &app,
        &app.token,
        json!({"kind": "allow", "value": "198.51.100.20"}),
    )
    .await;
    assert_eq!(status, 201);
    let r = check("198.51.100.20", "/").await.expect("req");
    assert_eq!(r.status(), 200);
    let r = check(
        "198.51.100.20",
        "/?id=1%27%20union%20select%20password%20from%20users--",
    )
    .await
    .expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-palisade-decision"], "block");

    // The JSON form too.
    let r = app
        .client
        .post(app.url("/api/v1/check/request"))
        .header("X-Api-Key", &key)
        .json(&json!({"method": "GET", "uri": "/", "client_ip": "198.51.100.21"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-palisade-decision"], "ban");

    // Detect-only mode reports the ban without refusing.
    let r = app
        .req(Method::PUT, "/api/v1/detection/config")
        .json(&json!({"mode": "detect", "paranoia": 1, "threshold": 5}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = check("198.51.100.21", "/").await.expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-palisade-decision"], "detect");
    assert_eq!(
        r.headers()["x-palisade-decision-id"],
        id.to_string().as_str()
    );

    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("palisade_check_bans_total{mode=\"block\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("palisade_check_bans_total{mode=\"detect\"}"));
    app.stop().await;
}

async fn pull(app: &TestApp, key: Option<&str>, query: &str) -> (u16, Value) {
    let mut req = app
        .client
        .get(app.url(&format!("/v1/decisions/stream{query}")));
    if let Some(key) = key {
        req = req.header("X-Api-Key", key);
    }
    let r = req.send().await.expect("req");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn values(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The CrowdSec bouncer conversation, as the bats tests of CrowdSec's own Local API
/// run it (`test/bats/99_lapi-stream-mode.bats`).
async fn bouncer_stream(app: &TestApp) {
    let key = app.api_key("firewall", &["bouncer"]).await;
    let other = app.api_key("proxy", &["check", "read"]).await;

    // Wrong, missing or unfit credentials: CrowdSec's 403.
    for credential in [None, Some("pal_nope_nope"), Some(other.as_str())] {
        let (status, body) = pull(app, credential, "?startup=true").await;
        assert_eq!(status, 403, "{credential:?}");
        assert_eq!(body, json!({"message": "access forbidden"}));
    }
    let r = app
        .client
        .get(app.url("/v1/decisions/stream"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403, "a user's token is not a bouncer key");

    let (status, body) = pull(app, Some(&key), "?startup=true").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"deleted": null, "new": null}));

    for value in [
        "1111:2222:3333:4444:5555:6666:7777:8888",
        "1.2.3.4",
        "1.2.4.0/24",
    ] {
        let (status, _) = create(app, &app.token, json!({"kind": "ban", "value": value})).await;
        assert_eq!(status, 201);
    }
    let (_, body) = pull(app, Some(&key), "?startup=true").await;
    let mut new = values(&body["new"]);
    new.sort();
    assert_eq!(
        new,
        vec![
            "1.2.3.4",
            "1.2.4.0/24",
            "1111:2222:3333:4444:5555:6666:7777:8888"
        ]
    );
    let first = &body["new"][0];
    assert_eq!(first["type"], "ban");
    assert_eq!(first["origin"], "cscli");
    assert!(
        first["duration"]
            .as_str()
            .is_some_and(|d| d.starts_with("3h59m")),
        "{first}"
    );
    assert!(matches!(first["scope"].as_str(), Some("Ip" | "Range")));
    assert!(first["id"].is_i64() && first["scenario"].is_string());

    // Nothing changed: nothing to send.
    let (_, body) = pull(app, Some(&key), "").await;
    assert_eq!(body["new"], Value::Null, "{body}");

    // Add through the API: new.
    let (_, added) = create(
        app,
        &app.token,
        json!({"kind": "ban", "value": "1.2.3.5", "duration": 60}),
    )
    .await;
    let (_, body) = pull(app, Some(&key), "").await;
    assert_eq!(values(&body["new"]), vec!["1.2.3.5"], "{body}");
    assert!(
        body["new"][0]["duration"]
            .as_str()
            .is_some_and(|d| d.starts_with("59") || d.starts_with("1m"))
    );

    // Delete through the API: deleted.
    let (_, page) = app.get_json("/api/v1/decisions?ip=1.2.3.4").await;
    let id = page["items"][0]["id"].as_i64().expect("id");
    let r = app
        .req(Method::DELETE, &format!("/api/v1/decisions/{id}"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 204);
    let (_, body) = pull(app, Some(&key), "").await;
    assert_eq!(values(&body["deleted"]), vec!["1.2.3.4"], "{body}");
    assert_eq!(body["new"], Value::Null);

    // An allow-list entry takes the bans it overlaps away from bouncers, and gives them
    // back when it goes.
    let (_, allow) = create(
        app,
        &app.token,
        json!({"kind": "allow", "value": "1.2.4.9"}),
    )
    .await;
    let (_, body) = pull(app, Some(&key), "").await;
    // (Removals are looked for 2 s before the last pull, as CrowdSec does: the
    // deletion just before it may be repeated.)
    assert!(
        values(&body["deleted"]).contains(&"1.2.4.0/24".to_owned()),
        "{body}"
    );
    assert_eq!(body["new"], Value::Null);
    let (_, body) = pull(app, Some(&key), "?startup=true").await;
    let mut new = values(&body["new"]);
    new.sort();
    assert_eq!(
        new,
        vec!["1.2.3.5", "1111:2222:3333:4444:5555:6666:7777:8888"]
    );
    let mut deleted = values(&body["deleted"]);
    deleted.sort();
    assert_eq!(deleted, vec!["1.2.3.4", "1.2.4.0/24"]);
    let allow_id = allow["id"].as_i64().expect("id");
    let r = app
        .req(Method::DELETE, &format!("/api/v1/decisions/{allow_id}"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 204);
    let (_, body) = pull(app, Some(&key), "").await;
    assert_eq!(values(&body["new"]), vec!["1.2.4.0/24"], "{body}");

    // Filters bouncers send.
    let (_, body) = pull(app, Some(&key), "?startup=true&scopes=range").await;
    assert_eq!(values(&body["new"]), vec!["1.2.4.0/24"]);

    // The lookup, answered from memory.
    let lookup = |q: &'static str| {
        let key = key.clone();
        async move {
            let r = app
                .client
                .get(app.url(&format!("/v1/decisions{q}")))
                .header("X-Api-Key", key)
                .send()
                .await
                .expect("req");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, found) = lookup("?ip=1.2.4.200").await;
    assert_eq!(status, 200);
    assert_eq!(values(&found), vec!["1.2.4.0/24"]);
    let (_, found) = lookup("?ip=1.2.3.5").await;
    assert_eq!(found[0]["id"], added["id"]);
    assert_eq!(lookup("?ip=9.9.9.9").await.1, Value::Null);
    assert_eq!(lookup("?ip=1.2.4.200&contains=false").await.1, Value::Null);
    let mut within = values(&lookup("?range=1.2.0.0/16&contains=false").await.1);
    within.sort();
    assert_eq!(within, vec!["1.2.3.5", "1.2.4.0/24"]);
    assert_eq!(
        values(&lookup("?scope=range&value=1.2.4.0/25").await.1),
        vec!["1.2.4.0/24"]
    );
    assert_eq!(lookup("?scope=username&value=bob").await.1, Value::Null);
    assert_eq!(lookup("?ip=1.2.3.5&type=captcha").await.1, Value::Null);
    assert_eq!(lookup("?bogus=1").await.0, 400);
    assert_eq!(lookup("?ip=nope").await.0, 400);
}

#[tokio::test]
async fn bouncers_pull_decisions_as_from_crowdsec_sqlite() {
    let app = spawn_app().await;
    bouncer_stream(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn bouncers_pull_decisions_as_from_crowdsec_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = spawn_with(test_settings(&dir, Some(url)), dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    bouncer_stream(&app).await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}

#[tokio::test]
async fn bans_written_by_another_instance_are_enforced_after_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    settings.decisions.resync = std::time::Duration::from_millis(100);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let key = app.api_key("edge", &["check"]).await;
    // Written straight into the store, as another instance or the scenario engine would.
    let other = palisade_pipeline::decisions::Decisions::new(app.store.clone());
    other
        .ban(
            "192.0.2.200".parse().expect("target"),
            std::time::Duration::from_secs(600),
            "palisade/ssh-bf",
            None,
        )
        .await
        .expect("ban");
    let mut status = 0;
    for _ in 0..50 {
        let r = app
            .client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", &key)
            .header("X-Original-URI", "/")
            .header("X-Real-IP", "192.0.2.200")
            .send()
            .await
            .expect("req");
        status = r.status().as_u16();
        if status == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 403);
    app.stop().await;
}

#[tokio::test]
async fn bans_of_loopback_own_trusted_and_too_wide_ranges_are_refused() {
    // Finding 12 of the penetration test: analysts could ban up to a /1 and loopback.
    let app = spawn_app().await;
    let analyst = app.token_for("andy", "analyst").await;
    for value in [
        "127.0.0.1",
        "127.0.0.0/8",
        "::1",
        "64.0.0.0/2",
        "203.0.0.0/8",
        "2001:db8::/16",
        "0.0.0.0/1",
    ] {
        let (status, body) = create(&app, &analyst, json!({"kind": "ban", "value": value})).await;
        assert_eq!(status, 400, "{value}: {body}");
        assert_eq!(body["field"], "value", "{value}: {body}");
    }
    // A narrower ban and a private address (manual bans may) are fine.
    for value in ["203.0.113.0/24", "192.168.7.9", "2001:db8:1::/48"] {
        let (status, body) = create(&app, &analyst, json!({"kind": "ban", "value": value})).await;
        assert_eq!(status, 201, "{value}: {body}");
    }
    // Allow-list entries are not bans: loopback may be allow-listed.
    let (status, _) = create(
        &app,
        &analyst,
        json!({"kind": "allow", "value": "127.0.0.1"}),
    )
    .await;
    assert_eq!(status, 201);
    app.stop().await;
}
