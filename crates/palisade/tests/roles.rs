//! `palisade serve --role all|api|worker` through the real binary on one PostgreSQL
//! schema (no Kafka needed): a worker follows a log file and raises a threat that an
//! API node's WebSocket client sees (the live bus relayed through PostgreSQL), a worker
//! serves only health and metrics, jobs submitted on the API node run exactly once on
//! two workers, and split roles refuse SQLite.

mod topology;

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use topology::{Node, base_url, login, schema, start, until, wait_live, watch};

#[test]
fn role_api_and_worker_refuse_sqlite_and_say_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    for role in ["api", "worker"] {
        let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["serve", "--role", role, "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--database-url", "sqlite://palisade.db"])
            .env("PALISADE_LOG", "warn")
            .env_remove("PALISADE_DATABASE_URL")
            .env_remove("PALISADE_CONFIG")
            .output()
            .expect("run palisade");
        assert!(!out.status.success(), "--role {role} on SQLite must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("needs PostgreSQL"), "{stderr}");
        assert!(stderr.contains("--role all"), "{stderr}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["serve", "--role", "everything"])
        .output()
        .expect("run palisade");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values"));
}

async fn count_events(client: &tokio_postgres::Client, schema: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {schema}.events"), &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_split_relays_worker_threats_to_the_api_websocket_and_runs_jobs_once() {
    let Some(base) = base_url() else { return };
    let (client, url, schema) = schema(&base, "roles").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").expect("log file");
    let log_arg = log.display().to_string();

    let api = start("api", &dir.path().join("api"), None, &url, &[]);
    wait_live(&api).await;
    let mut worker_a = start(
        "worker",
        &dir.path().join("a"),
        None,
        &url,
        &["--tail", &log_arg, "--format", "combined"],
    );
    let worker_b = start("worker", &dir.path().join("b"), None, &url, &[]);
    wait_live(&worker_a).await;
    wait_live(&worker_b).await;
    let token = login(&api).await;
    let http = reqwest::Client::new();

    // A worker answers health and metrics, nothing else.
    let r = http
        .get(worker_a.url("/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("worker events");
    assert_eq!(r.status(), 404);
    let problem: serde_json::Value = r.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("worker node")),
        "{problem}"
    );
    let r = http
        .get(worker_a.url("/api/v1/health"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("worker health");
    assert!(
        r.status().is_success(),
        "a worker serves health with an API node's token"
    );
    assert!(
        http.get(worker_a.url("/metrics"))
            .send()
            .await
            .is_ok_and(|r| r.status() != 404)
    );

    // A threat raised on the worker reaches the API node's WebSocket.
    let mut socket = watch(&api, &token, &["threats"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open log");
        for n in 0..20 {
            writeln!(
                f,
                "198.51.100.{n} - - [10/Oct/2023:13:55:36 +0000] \"GET /ok/{n} HTTP/1.1\" 200 10 \"-\" \"roles-test\""
            )
            .expect("write");
        }
        writeln!(
            f,
            "203.0.113.9 - - [10/Oct/2023:13:55:37 +0000] \"GET /item?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1\" 200 10 \"-\" \"roles-test\""
        )
        .expect("write");
    }
    let threat = until(&mut socket, "threats", Duration::from_secs(30), |m| {
        m["data"]["client_ip"] == "203.0.113.9"
    })
    .await
    .expect("the worker's threat on the API node's WebSocket");
    assert!(
        threat["data"]["uri"]
            .as_str()
            .is_some_and(|u| u.contains("UNION")),
        "{threat}"
    );
    // Stored once, by the worker that follows the file (the API node runs no sources).
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_events(&client, &schema).await < 21 {
        assert!(Instant::now() < deadline, "events not stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count_events(&client, &schema).await, 21);

    // Jobs submitted on the API node run exactly once across the two workers.
    let mut ids = Vec::new();
    for _ in 0..6 {
        let r = http
            .post(api.url("/api/v1/jobs"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"kind": "validate_data"}))
            .send()
            .await
            .expect("submit");
        assert!(r.status().is_success(), "submit: {}", r.status());
        let job: serde_json::Value = r.json().await.expect("job");
        ids.push(job["id"].as_i64().expect("job id"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut workers = std::collections::BTreeSet::new();
    for id in &ids {
        loop {
            let job: serde_json::Value = http
                .get(api.url(&format!("/api/v1/jobs/{id}")))
                .bearer_auth(&token)
                .send()
                .await
                .expect("job")
                .json()
                .await
                .expect("job body");
            if job["state"] == "succeeded" {
                assert_eq!(job["attempt"], 1, "one attempt: {job}");
                if let Some(w) = job["worker"].as_str() {
                    workers.insert(w.to_owned());
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} not run by a worker: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!("jobs ran on {} worker(s): {workers:?}", workers.len());
    let rows = client
        .query(
            &format!("SELECT job_id, worker FROM {schema}.job_attempts WHERE job_id = ANY($1)"),
            &[&ids],
        )
        .await
        .expect("attempts");
    assert_eq!(rows.len(), ids.len(), "one attempt per job");
    let by: std::collections::BTreeSet<String> = rows.iter().map(|r| r.get(1)).collect();
    eprintln!("attempts by {} worker(s): {by:?}", by.len());

    assert!(worker_a.stop(), "worker stops cleanly");
    drop::<Node>(worker_b);
    drop(api);
    let _ = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await;
}
