//! Liveness, readiness, health, metrics and the headers every answer carries.

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_endpoints_report_a_working_service() {
    let app = spawn_app().await;
    assert_eq!(app.get("/livez").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let (status, h) = app.get_json("/api/v1/health").await;
    assert_eq!(status, 200);
    assert_eq!(h["status"], "healthy", "{h}");
    let (status, d) = app.get_json("/api/v1/health/detailed").await;
    assert_eq!(status, 200);
    assert_eq!(d["database"]["backend"], "sqlite");
    assert_eq!(d["database"]["reachable"], true);
    assert!(d["database"]["latency_ms"].as_f64().is_some(), "{d}");
    assert!(d["ingest_queue"]["capacity"].as_u64().unwrap_or(0) > 0);
    // Every pipeline stage runs under the supervisor and shows here.
    let tasks: Vec<&str> = d["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["state"] == "running" && t["restarts"] == 0)
        .filter_map(|t| t["name"].as_str())
        .collect();
    for stage in [
        "writer",
        "inspector",
        "behaviour",
        "threat-recorder",
        "decisions",
        "database-monitor",
        "jobs-workers",
        "jobs-scheduler",
    ] {
        assert!(tasks.contains(&stage), "{stage} not running in {d}");
    }
    assert_eq!(d["jobs"]["counts"]["pending"], 0, "{d}");
    assert_eq!(d["jobs"]["running_here"], 0);
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_http_and_ingest_series() {
    let app = spawn_app().await;
    let _ = app
        .push(
            "?format=combined",
            "1.1.1.1 - - [10/Oct/2023:13:55:36 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"",
        )
        .await;
    let _ = app.get("/api/v1/events").await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = r.text().await.expect("text");
    for needle in [
        "# TYPE palisade_http_request_duration_seconds histogram",
        "route=\"/api/v1/events\"",
        "palisade_ingested_events_total",
        "palisade_store_write_seconds_bucket",
        "palisade_ingest_queue_depth",
        "palisade_database_up{backend=\"sqlite\"} 1",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_answer_has_a_request_id_and_security_headers() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/events").await;
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap_or("")
            .contains("frame-ancestors 'none'")
    );
    let r = app
        .req(reqwest::Method::GET, "/livez")
        .header("x-request-id", "trace-42")
        .send()
        .await
        .expect("req");
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    let r = app
        .req(reqwest::Method::GET, "/livez")
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("req");
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
    app.stop().await;
}

#[tokio::test]
async fn oversized_targets_and_headers_are_refused() {
    let app = spawn_app().await;
    let long = format!("/api/v1/events?q={}", "a".repeat(9000));
    let r = app.get(&long).await;
    assert_eq!(r.status(), 414);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let mut req = app.req(reqwest::Method::GET, "/api/v1/events");
    for i in 0..120 {
        req = req.header(format!("x-filler-{i}"), "v");
    }
    assert_eq!(req.send().await.expect("req").status(), 431);
    let big = app
        .req(reqwest::Method::GET, "/api/v1/events")
        .header("x-big", "b".repeat(40 * 1024))
        .send()
        .await
        .expect("req");
    assert_eq!(big.status(), 431);
    app.stop().await;
}
