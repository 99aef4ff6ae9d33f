//! Analytics over the real service: overviews that match what was ingested exactly
//! (before and after the roll-up worker ran), chart series, top lists, trends, the
//! real-time figures computed from live `/api/v1/check` traffic and published on the
//! live feed, and problems that name the bad parameter.

use std::time::Duration;

use futures_util::StreamExt;
use palisade_core::Timestamp;
use palisade_store::SharedStore;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    TestApp, line, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with,
    test_settings,
};

/// A CLF time (`10/Oct/2023:13:55:36 +0000`) `secs_ago` seconds before now.
fn clf(secs_ago: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, _) = Timestamp::now()
        .add_micros(-secs_ago * 1_000_000)
        .to_civil();
    format!(
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000",
        MONTHS[(mo - 1) as usize]
    )
}

async fn spawn() -> TestApp {
    spawn_on(None).await
}

async fn spawn_on(database_url: Option<String>) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, database_url);
    settings.analytics.sample_every = "1s".parse().expect("span");
    settings.analytics.realtime_window = "5s".parse().expect("span");
    settings.analytics.rollup_every = "1s".parse().expect("span");
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    app
}

/// What was pushed, to compare with.
struct Pushed {
    total: u64,
    errors: u64,
    last_hour: u64,
    heavy_ip: u64,
}

/// Pushes 300 lines over the last 20 hours: one address sends a third of them, every
/// fifth line is a 404 and every seventh a 500.
async fn push_traffic(app: &TestApp) -> Pushed {
    let mut body = String::new();
    let mut p = Pushed {
        total: 0,
        errors: 0,
        last_hour: 0,
        heavy_ip: 0,
    };
    for i in 0..300i64 {
        let ago = 60 + i * 240 + (i % 13);
        let status = if i % 5 == 0 {
            404
        } else if i % 7 == 0 {
            500
        } else {
            200
        };
        let ip = if i % 3 == 0 {
            "203.0.113.7".to_owned()
        } else {
            format!("198.51.100.{}", i % 50)
        };
        body.push_str(&line(
            &ip,
            &clf(ago),
            "GET",
            &format!("/page/{}", i % 4),
            status,
            "t",
        ));
        body.push('\n');
        p.total += 1;
        p.errors += u64::from(status >= 400);
        p.last_hour += u64::from(ago < 3600);
        p.heavy_ip += u64::from(i % 3 == 0);
    }
    let r = app.push("?source=web&format=combined", &body).await;
    assert_eq!(r.status(), 200);
    let out: serde_json::Value = r.json().await.expect("json");
    assert_eq!(out["events"], 300, "{out}");
    p
}

async fn wait_rolled_up(store: &SharedStore, events: i64) {
    for _ in 0..200 {
        if store.rollup_status().await.expect("status").events_id >= events {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the roll-up worker never caught up");
}

#[tokio::test]
async fn overview_series_top_and_trends_match_what_was_ingested() {
    let app = spawn().await;
    analytics_match_what_was_ingested(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn overview_series_top_and_trends_match_what_was_ingested_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let app = spawn_on(Some(url)).await;
    analytics_match_what_was_ingested(&app).await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}

async fn analytics_match_what_was_ingested(app: &TestApp) {
    let pushed = push_traffic(app).await;
    // Right away (rows not rolled up yet, or partly) and after the worker ran: the same
    // exact numbers.
    for pass in 0..2 {
        let (status, o) = app.get_json("/api/v1/analytics/overview?range=24h").await;
        assert_eq!(status, 200, "{o}");
        assert_eq!(o["events"]["total"], pushed.total, "pass {pass}: {o}");
        assert_eq!(o["http"]["requests"], pushed.total);
        assert_eq!(o["http"]["errors"], pushed.errors);
        let (_, last) = app.get_json("/api/v1/analytics/overview?range=1h").await;
        assert_eq!(
            last["events"]["total"], pushed.last_hour,
            "pass {pass}: {last}"
        );
        wait_rolled_up(&app.store, 300).await;
    }
    assert_eq!(app.store.count_events().await.expect("count"), pushed.total);

    // Per-minute chart of the last hour: its points add up to the hour's total.
    let (status, ts) = app
        .get_json("/api/v1/analytics/timeseries?metric=http_requests&bucket=minute&range=1h")
        .await;
    assert_eq!(status, 200, "{ts}");
    let points = ts["lines"][0]["points"].as_array().expect("points");
    assert!(points.len() >= 60, "{}", points.len());
    let sum: f64 = points.iter().filter_map(|p| p["v"].as_f64()).sum();
    assert_eq!(sum as u64, pushed.last_hour);
    // By status class, hourly over the day.
    let (status, by) = app
        .get_json("/api/v1/analytics/timeseries?metric=events&by=status_class&range=24h")
        .await;
    assert_eq!(status, 200, "{by}");
    assert_eq!(by["bucket"], "hour");
    let total_of = |key: &str| -> u64 {
        by["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .filter(|l| l["key"] == key)
            .flat_map(|l| l["points"].as_array().expect("points").iter())
            .filter_map(|p| p["v"].as_f64())
            .sum::<f64>() as u64
    };
    assert_eq!(total_of("4xx") + total_of("5xx"), pushed.errors);

    // Top addresses: the heavy one first, counted exactly.
    let (status, top) = app
        .get_json("/api/v1/analytics/top?dimension=client_ip&range=24h&limit=3")
        .await;
    assert_eq!(status, 200, "{top}");
    assert_eq!(top["items"][0]["key"], "203.0.113.7");
    assert_eq!(top["items"][0]["count"], pushed.heavy_ip);
    assert_eq!(top["exact"], true);
    let next = top["next_cursor"].as_str().expect("more addresses");
    let (_, page2) = app
        .get_json(&format!(
            "/api/v1/analytics/top?dimension=client_ip&range=24h&limit=3&cursor={next}"
        ))
        .await;
    assert_eq!(page2["items"].as_array().expect("items").len(), 3);
    assert_ne!(page2["items"][0]["key"], top["items"][0]["key"]);
    let (_, statuses) = app
        .get_json("/api/v1/analytics/top?dimension=status&range=24h")
        .await;
    assert_eq!(statuses["items"][0]["key"], "200");
    let listed: u64 = statuses["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["count"].as_u64())
        .sum();
    assert_eq!(listed, pushed.total);
    let (_, paths) = app
        .get_json("/api/v1/analytics/top?dimension=path&range=24h")
        .await;
    assert_eq!(paths["items"].as_array().expect("items").len(), 4);

    // Trends: nothing the day before.
    let (status, tr) = app.get_json("/api/v1/analytics/trends?range=24h").await;
    assert_eq!(status, 200, "{tr}");
    let events = tr["trends"]
        .as_array()
        .expect("trends")
        .iter()
        .find(|t| t["metric"] == "events")
        .expect("events trend");
    assert_eq!(events["current"], pushed.total);
    assert_eq!(events["previous"], 0);
    assert!(events["change_pct"].is_null());
}

#[tokio::test]
async fn bad_parameters_are_problems_that_name_them() {
    let app = spawn().await;
    for (query, field) in [
        ("/api/v1/analytics/timeseries", "metric"),
        ("/api/v1/analytics/timeseries?metric=cpu", "metric"),
        (
            "/api/v1/analytics/timeseries?metric=events&bucket=day",
            "bucket",
        ),
        ("/api/v1/analytics/timeseries?metric=events&by=planet", "by"),
        (
            "/api/v1/analytics/timeseries?metric=check_latency_p99&by=kind",
            "by",
        ),
        (
            "/api/v1/analytics/timeseries?metric=events&bucket=minute&range=30d",
            "bucket",
        ),
        (
            "/api/v1/analytics/timeseries?metric=events&range=2h",
            "range",
        ),
        (
            "/api/v1/analytics/overview?from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z",
            "to",
        ),
        ("/api/v1/analytics/overview?from=1&to=99999999999", "from"),
        ("/api/v1/analytics/overview?color=red", "color"),
        ("/api/v1/analytics/top", "dimension"),
        ("/api/v1/analytics/top?dimension=user_agent", "dimension"),
        ("/api/v1/analytics/top?dimension=path&limit=0", "limit"),
        ("/api/v1/analytics/top?dimension=path&limit=101", "limit"),
        (
            "/api/v1/analytics/top?dimension=path&cursor=garbage",
            "cursor",
        ),
        ("/api/v1/posture?limit=1000", "limit"),
    ] {
        let r = app.get(query).await;
        assert_eq!(r.status(), 400, "{query}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{query}"
        );
        let p: serde_json::Value = r.json().await.expect("json");
        assert_eq!(p["field"], field, "{query}: {p}");
    }
    app.stop().await;
}

#[tokio::test]
async fn realtime_figures_come_from_live_checks_and_reach_the_live_feed() {
    let app = spawn().await;
    // Subscribe to the metrics topic first.
    let r = app
        .req(reqwest::Method::POST, "/api/v1/auth/ws-ticket")
        .send()
        .await
        .expect("ticket");
    let ticket: serde_json::Value = r.json().await.expect("json");
    let url = format!(
        "{}/api/v1/ws?ticket={}",
        app.address.replace("http://", "ws://"),
        ticket["ticket"].as_str().expect("ticket")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    use futures_util::SinkExt;
    socket
        .send(Message::Text(r#"{"subscribe": ["metrics"]}"#.into()))
        .await
        .expect("subscribe");

    let key = app.api_key("edge", &["check"]).await;
    let check = |uri: &str| {
        app.client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", &key)
            .header("X-Original-URI", uri.to_owned())
            .header("X-Original-Method", "GET")
            .send()
    };
    for i in 0..20 {
        let r = check(&format!("/products?page={i}")).await.expect("check");
        assert_eq!(r.status(), 200);
    }
    for _ in 0..5 {
        let r = check("/search?q=1'%20union%20select%20password%20from%20users--")
            .await
            .expect("check");
        assert_eq!(r.status(), 403);
    }
    // The sampler's next window sees them.
    let mut figures = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body) = app.get_json("/api/v1/metrics/realtime").await;
        if status == 200
            && body["requests_per_sec"]["check"].as_f64().unwrap_or(0.0) > 0.0
            && body["blocked_per_sec"].as_f64().unwrap_or(0.0) > 0.0
        {
            figures = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!figures.is_null(), "no window with the checks");
    assert!(
        figures["latency"]["check"]["requests"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{figures}"
    );
    assert!(
        figures["latency"]["check"]["p99_ms"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    assert!(figures["process"]["memory_bytes"].as_u64().unwrap_or(0) > 1 << 20);
    assert!(figures["ingest"]["queue_capacity"].as_u64().unwrap_or(0) > 0);
    assert!(figures["window_secs"].as_f64().unwrap_or(0.0) <= 6.0);

    // The same figures go out on the live feed.
    let mut seen = None;
    for _ in 0..50 {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let m: serde_json::Value = serde_json::from_str(&t).expect("json");
                if m["topic"] == "metrics" {
                    seen = Some(m);
                    break;
                }
            }
            Ok(Some(Ok(_))) => continue,
            _ => break,
        }
    }
    let m = seen.expect("a metrics message");
    assert!(m["seq"].as_u64().is_some());
    assert!(m["data"]["requests_per_sec"]["check"].is_number(), "{m}");

    // And into the history: the live roll-ups count them.
    let mut counted = 0;
    for _ in 0..50 {
        let (_, o) = app.get_json("/api/v1/analytics/overview?range=15m").await;
        counted = o["live"]["requests"].as_u64().unwrap_or(0);
        if counted >= 25 && o["live"]["blocked"].as_u64().unwrap_or(0) >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(counted >= 25, "{counted}");
    let (_, ts) = app
        .get_json("/api/v1/analytics/timeseries?metric=check_latency_p99&range=15m")
        .await;
    assert_eq!(ts["unit"], "ms");
    assert!(
        ts["lines"][0]["points"]
            .as_array()
            .expect("points")
            .iter()
            .any(|p| p["v"].as_f64().is_some_and(|v| v > 0.0)),
        "{ts}"
    );
    app.stop().await;
}
