//! `POST /api/v1/ingest`, dead letters and sources.

use crate::helpers::{line, spawn_app};

#[tokio::test]
async fn push_stores_events_and_dead_letters_with_reasons() {
    let app = spawn_app().await;
    let body = format!(
        "{}\nthis is not a log line\n\n{}\n",
        line(
            "1.2.3.4",
            "10/Oct/2023:13:55:36 +0000",
            "GET",
            "/a",
            200,
            "x"
        ),
        line(
            "1.2.3.5",
            "10/Oct/2023:13:55:37 +0000",
            "GET",
            "/b",
            200,
            "x"
        ),
    );
    let r = app.push("?source=web1", &body).await;
    assert_eq!(r.status(), 200);
    let out: serde_json::Value = r.json().await.expect("json");
    assert_eq!(out["events"], 2, "{out}");
    assert_eq!(out["dead_letters"], 1);
    assert_eq!(out["lines"], 3);
    assert_eq!(out["duplicate"], false);

    let (status, dl) = app.get_json("/api/v1/dead-letters?source=web1").await;
    assert_eq!(status, 200);
    let item = &dl["items"][0];
    assert_eq!(item["raw"], "this is not a log line");
    assert_eq!(item["line_no"], 2);
    assert!(!item["reason"].as_str().unwrap_or_default().is_empty());
    assert_eq!(app.store.count_events().await.expect("count"), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_push_with_the_same_key_stores_nothing_twice() {
    let app = spawn_app().await;
    let body = line(
        "1.2.3.4",
        "10/Oct/2023:13:55:36 +0000",
        "GET",
        "/a",
        200,
        "x",
    );
    for attempt in 0..3 {
        let r = app
            .req(reqwest::Method::POST, "/api/v1/ingest?format=combined")
            .header("Idempotency-Key", "batch-0001")
            .body(body.clone())
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 200);
        let out: serde_json::Value = r.json().await.expect("json");
        assert_eq!(out["events"], 1);
        assert_eq!(out["duplicate"], attempt > 0);
    }
    assert_eq!(app.store.count_events().await.expect("count"), 1);
    let bad = app
        .req(reqwest::Method::POST, "/api/v1/ingest")
        .header("Idempotency-Key", "x".repeat(300))
        .body(body)
        .send()
        .await
        .expect("req");
    assert_eq!(bad.status(), 400);
    let p: serde_json::Value = bad.json().await.expect("json");
    assert_eq!(p["field"], "Idempotency-Key");
    app.stop().await;
}

#[tokio::test]
async fn ndjson_and_custom_formats() {
    let app = spawn_app().await;
    let nd = r#"{"time":"2023-10-10T13:55:36Z","remote_addr":"9.9.9.9","request":"GET /nd?x=1 HTTP/1.1","status":200,"body_bytes_sent":10,"http_user_agent":"nd"}"#;
    let r = app
        .req(reqwest::Method::POST, "/api/v1/ingest")
        .header("content-type", "application/x-ndjson")
        .body(nd)
        .send()
        .await
        .expect("req");
    let out: serde_json::Value = r.json().await.expect("json");
    assert_eq!(out["events"], 1, "{out}");
    let fmt = "$remote_addr [$time_local] \"$request\" $status $request_time";
    let r = app
        .req(reqwest::Method::POST, "/api/v1/ingest")
        .query(&[("format", "nginx"), ("log_format", fmt)])
        .body("7.7.7.7 [10/Oct/2023:13:55:36 +0000] \"GET /custom HTTP/1.1\" 204 0.250")
        .send()
        .await
        .expect("req");
    let out: serde_json::Value = r.json().await.expect("json");
    assert_eq!(out["events"], 1, "{out}");
    let (_, page) = app.get_json("/api/v1/events?path_prefix=/custom").await;
    assert_eq!(page["items"][0]["duration_us"], 250_000);
    assert_eq!(page["items"][0]["status"], 204);
    app.stop().await;
}

#[tokio::test]
async fn bad_pushes_are_problems() {
    let app = spawn_app().await;
    let r = app.push("?format=yaml", "x").await;
    assert_eq!(r.status(), 400);
    let p: serde_json::Value = r.json().await.expect("json");
    assert_eq!(p["field"], "format");
    let r = app.push("?format=nginx", "x").await;
    let p: serde_json::Value = r.json().await.expect("json");
    assert_eq!(p["field"], "log_format");
    let r = app.push("", "   \n").await;
    let p: serde_json::Value = r.json().await.expect("json");
    assert_eq!(p["field"], "body");
    // The test app's body limit is 64 KiB.
    let big = "a".repeat(200 * 1024);
    let r = app.push("?format=combined", &big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(app.store.count_events().await.expect("count"), 0);
    app.stop().await;
}

#[tokio::test]
async fn sources_show_state_position_lag_and_checkpoint() {
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("web.log");
    let body: String = (0..40)
        .map(|i| {
            format!(
                "{}\n",
                line(
                    "5.5.5.5",
                    "10/Oct/2023:13:55:36 +0000",
                    "GET",
                    &format!("/s/{i}"),
                    200,
                    "x"
                )
            )
        })
        .collect();
    std::fs::write(&log, &body).expect("write");
    let mut settings = crate::helpers::test_settings(&dir, None);
    let mut tail = palisade_sources::tail::TailConfig::new(log.clone());
    tail.name = "web".into();
    tail.poll_interval = Duration::from_millis(50);
    tail.flush_interval = Duration::from_millis(50);
    settings.sources.push(tail);
    let mut app = crate::helpers::spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let mut source = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, page) = app.get_json("/api/v1/sources").await;
        source = page["items"][0].clone();
        if source["checkpoint"]["line_no"] == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(source["name"], "web", "{source}");
    assert_eq!(source["kind"], "file");
    assert_eq!(source["state"], "running");
    assert_eq!(source["format"], "combined");
    assert_eq!(source["lines"], 40);
    assert_eq!(source["offset"], body.len());
    assert_eq!(source["lag_bytes"], 0);
    assert_eq!(source["checkpoint"]["offset"], body.len());
    app.stop().await;
}
