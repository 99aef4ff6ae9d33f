//! The activity feed's system events through the real service, on SQLite and
//! PostgreSQL: a followed file that vanishes and comes back, and a syslog listener
//! that cannot bind and then can, each make exactly one `source.down` and one
//! `source.up` (however often the source polls meanwhile), stored for
//! `GET /api/v1/activities` and sent on the live `activities` topic in batches, one
//! message (and one `seq`) per activity; then the `retention_cleanup` job expires old
//! activities, closed alerts and finished deliveries.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use palisade_core::duration::Span;
use palisade_sources::syslog::SyslogConfig;
use palisade_sources::tail::TailConfig;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    TestApp, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with, test_settings,
};

const LINE: &str =
    "203.0.113.5 - - [10/Oct/2025:13:55:36 +0000] \"GET /a HTTP/1.1\" 200 5 \"-\" \"t\"\n";

/// The `source.*` activities, oldest first, once `want` of them exist.
async fn source_activities(app: &TestApp, want: usize) -> Vec<Value> {
    for _ in 0..400 {
        let (status, v) = app.get_json("/api/v1/activities?kind=source.").await;
        assert_eq!(status, 200, "{v}");
        let mut items = v["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= want {
            items.reverse();
            return items;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, v) = app.get_json("/api/v1/activities?kind=source.").await;
    panic!("fewer than {want} source activities: {v}");
}

fn summary(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or_default().to_owned(),
                a["detail"]["source"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

async fn flow(database_url: Option<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    std::fs::write(&log, LINE).expect("log");
    // A port someone else holds: the syslog listener cannot bind it yet.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr");

    let mut settings = test_settings(&dir, database_url);
    settings.alerts.activity_every = Span::from_millis(100);
    let day = Some(Span::from_secs(86_400));
    settings.jobs.retention.alerts = day;
    settings.jobs.retention.alert_deliveries = day;
    settings.jobs.retention.activities = day;
    settings.sources = vec![TailConfig {
        name: "web".into(),
        poll_interval: Duration::from_millis(50),
        ..TailConfig::new(&log)
    }];
    settings.syslog = vec![SyslogConfig {
        tcp: Some(taken),
        ..SyslogConfig::new("syslog-in")
    }];
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;

    // Live: the activities topic, batched frames.
    let t = app
        .req(reqwest::Method::POST, "/api/v1/auth/ws-ticket")
        .send()
        .await
        .expect("ticket");
    let t: Value = t.json().await.expect("ticket json");
    let url = format!(
        "{}/api/v1/ws?ticket={}&batch=true&topics=activities",
        app.address.replace("http://", "ws://"),
        t["ticket"].as_str().expect("ticket")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");

    // The listener that cannot bind is down (once, though it keeps retrying).
    let items = source_activities(&app, 1).await;
    assert_eq!(
        summary(&items),
        [("source.down".into(), "syslog-in".into())],
        "{items:?}"
    );
    assert!(
        items[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("syslog-in") && s.contains("down")),
        "{items:?}"
    );

    // The followed file vanishes: down once, whatever the polls in between.
    std::fs::remove_file(app.dir.path().join("access.log")).expect("remove");
    let items = source_activities(&app, 2).await;
    assert_eq!(summary(&items)[1], ("source.down".into(), "web".into()));
    assert!(
        items[1]["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("gone")),
        "{items:?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(source_activities(&app, 2).await.len(), 2, "no repeats");

    // Both come back: up once each.
    std::fs::write(app.dir.path().join("access.log"), LINE).expect("recreate");
    drop(holder);
    let items = source_activities(&app, 4).await;
    let mut ups: Vec<(String, String)> = summary(&items)[2..].to_vec();
    ups.sort();
    assert_eq!(
        ups,
        [
            ("source.up".into(), "syslog-in".into()),
            ("source.up".into(), "web".into())
        ]
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(source_activities(&app, 4).await.len(), 4, "no repeats");

    // The three made after the client connected went out live, each its own message
    // with its own seq, in order.
    let want: Vec<i64> = items[1..].iter().filter_map(|a| a["id"].as_i64()).collect();
    let mut live: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while live.len() < want.len() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Some(Ok(msg))) = tokio::time::timeout(left, ws.next()).await else {
            panic!("only {live:?} of activities {want:?} live");
        };
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).expect("json frame");
        let messages = match v {
            Value::Array(many) => many,
            one => vec![one],
        };
        for m in messages {
            if m["topic"] == "activities"
                && m["data"]["id"]
                    .as_i64()
                    .is_some_and(|id| want.contains(&id))
            {
                live.push(m);
            }
        }
    }
    let ids: Vec<i64> = live
        .iter()
        .filter_map(|m| m["data"]["id"].as_i64())
        .collect();
    assert_eq!(ids, want);
    let seqs: Vec<u64> = live.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert_eq!(seqs.len(), want.len(), "{live:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let _ = ws.send(Message::Close(None)).await;

    retention_job_expires_old_alerting_data(&app).await;
    app.stop().await;
}

/// `retention_cleanup` (the job kind, through the API) removes activities, closed
/// alerts and finished deliveries older than their periods (1 day here), and keeps
/// the rest.
async fn retention_job_expires_old_alerting_data(app: &TestApp) {
    use palisade_core::Timestamp;
    use palisade_store::{
        AlertHit, AlertState, AlertTransition, DeliveryState, DeliveryUpdate, NewActivity,
        NewDelivery,
    };
    let day = 86_400_000_000i64;
    let old = Timestamp::now().add_micros(-3 * day);
    let s = &app.store;
    let activity = s
        .insert_activity(&NewActivity {
            at: old,
            kind: "job.failed".into(),
            actor: None,
            summary: "long ago".into(),
            detail: serde_json::json!({}),
        })
        .await
        .expect("old activity");
    let hit = AlertHit {
        rule_id: 999,
        rule_name: "old".into(),
        group_key: "client_ip=192.0.2.1".into(),
        title: "old".into(),
        severity: palisade_core::severity::Severity::Error,
        category: "sqli".into(),
        threat_ids: vec![],
        first_seen: old,
        last_seen: old,
        at: old,
        window_us: 60_000_000,
        group_wait_us: 0,
        group_interval_us: 60_000_000,
    };
    let alert = s.record_alert_hits(&[hit]).await.expect("alert")[0]
        .alert
        .id;
    s.transition_alert(
        alert,
        &AlertTransition {
            to: AlertState::Dismissed,
            actor: "ana".into(),
            comment: None,
            at: old,
        },
    )
    .await
    .expect("dismiss");
    let delivery = s
        .enqueue_delivery(
            &NewDelivery {
                channel_id: 1,
                message_id: "msg_old".into(),
                event: "test".into(),
                payload: "{}".into(),
            },
            old,
        )
        .await
        .expect("delivery");
    s.finish_delivery(
        delivery,
        &DeliveryUpdate {
            state: DeliveryState::Delivered,
            next_at: old,
            at: old,
            status: Some(200),
            error: None,
        },
    )
    .await
    .expect("finish");

    let r = app
        .req(reqwest::Method::POST, "/api/v1/jobs")
        .json(&serde_json::json!({"kind": "retention_cleanup", "params": {}}))
        .send()
        .await
        .expect("submit");
    assert_eq!(r.status(), 201);
    let job: Value = r.json().await.expect("job");
    let id = job["id"].as_i64().expect("id");
    let mut done = Value::Null;
    for _ in 0..600 {
        let (_, j) = app.get_json(&format!("/api/v1/jobs/{id}")).await;
        if matches!(
            j["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            done = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["state"], "succeeded", "{done}");
    let (_, out) = app.get_json(&format!("/api/v1/jobs/{id}/output")).await;
    let deleted = |kind: &str| {
        out["items"]
            .as_array()
            .and_then(|a| a.iter().find(|o| o["value"]["kind"] == kind))
            .map(|o| o["value"]["deleted"].clone())
    };
    assert_eq!(deleted("activities"), Some(1.into()), "{out}");
    assert_eq!(deleted("alerts"), Some(1.into()), "{out}");
    assert_eq!(deleted("alert_deliveries"), Some(1.into()), "{out}");
    assert!(s.get_alert(alert).await.expect("get").is_none());
    assert!(s.get_delivery(delivery).await.expect("get").is_none());
    // Today's source activities stay.
    let (_, feed) = app.get_json("/api/v1/activities?limit=100").await;
    let ids: Vec<i64> = feed["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_i64()).collect())
        .unwrap_or_default();
    assert!(!ids.contains(&activity.id), "{feed}");
    assert!(ids.len() >= 4, "{feed}");
}

#[tokio::test]
async fn activities_report_sources_going_down_and_back_up() {
    flow(None).await;
}

#[tokio::test]
async fn activities_report_sources_going_down_and_back_up_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    flow(Some(url)).await;
    pg_drop_schema(&base, &schema).await;
}
