//! The job queue through the API: kinds with their schemas, submission with every
//! parameter checked (problem+json naming it), roles, a real import run twice without
//! duplicates, cancel and retry, logs and outputs, log deletion, schedules.

use std::time::{Duration, Instant};

use palisade_core::config::Validate;
use palisade_jobs::JobConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, line, spawn_with, test_settings};

/// A service whose `[jobs]` section is `jobs` (TOML), with `import_dirs` set to a
/// directory of its own (returned).
async fn spawn_jobs(jobs: &str) -> (TestApp, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let imports = dir.path().join("imports");
    std::fs::create_dir_all(&imports).expect("imports dir");
    let mut settings = test_settings(&dir, None);
    let text = format!(
        "poll = \"50ms\"\nheartbeat = \"100ms\"\nlease = \"3s\"\nstop_grace = \"2s\"\nimport_dirs = [\"{}\"]\n{jobs}",
        imports.display()
    );
    let mut config: JobConfig = toml::from_str(&text).expect("jobs toml");
    let problems = config.finish();
    assert!(problems.is_empty(), "{problems:?}");
    settings.jobs = config;
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    (app, imports)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .req(Method::POST, path)
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn submit(app: &TestApp, kind: &str, params: Value) -> (u16, Value) {
    post(app, "/api/v1/jobs", json!({"kind": kind, "params": params})).await
}

async fn wait_finished(app: &TestApp, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, job) = app.get_json(&format!("/api/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if matches!(
            job["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} never finished: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn problem_field(body: &Value) -> &str {
    body["field"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_are_listed_with_schemas_and_roles_are_enforced() {
    let (app, _) = spawn_jobs(
        "[[commands]]\nname = \"admin-only\"\nprogram = \"/usr/bin/true\"\nrole = \"admin\"\n",
    )
    .await;
    let (status, kinds) = app.get_json("/api/v1/jobs/kinds").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = kinds["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "command",
            "fetch_circl",
            "fetch_nvd",
            "generate_report",
            "import_cves",
            "import_logs",
            "match_cves",
            "retention_cleanup",
            "validate_data"
        ]
    );
    let import = kinds["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "import_logs")
        .expect("import_logs listed");
    assert_eq!(import["params_schema"]["required"], json!(["path"]));
    assert_eq!(
        import["params_schema"]["additionalProperties"],
        json!(false)
    );
    assert_eq!(
        kinds["items"][0]["params_schema"]["oneOf"][0]["properties"]["command"]["const"],
        "admin-only"
    );

    let viewer = app.token_for("vera", "viewer").await;
    let analyst = app.token_for("ana", "analyst").await;
    let as_user = |token: &str, body: Value| {
        app.client
            .post(app.url("/api/v1/jobs"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let r = as_user(&viewer, json!({"kind": "validate_data"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = as_user(&analyst, json!({"kind": "validate_data"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A command declared for admins only.
    let r = as_user(
        &analyst,
        json!({"kind": "command", "params": {"command": "admin-only"}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let (status, _) = submit(&app, "command", json!({"command": "admin-only"})).await;
    assert_eq!(status, 201);
    // Viewers read; schedules are for admins.
    let r = app
        .client
        .get(app.url("/api/v1/jobs"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(app.url("/api/v1/jobs/schedules"))
        .bearer_auth(&analyst)
        .json(&json!({"name": "x", "kind": "validate_data", "cron": "@daily"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .delete(app.url("/api/v1/jobs/logs"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_are_problems_naming_the_parameter_and_nothing_is_stored() {
    let (app, imports) = spawn_jobs(
        "[[commands]]\nname = \"greet\"\nprogram = \"/usr/bin/echo\"\nargs = [\"{who}\"]\n\
         [commands.params.who]\ntype = \"string\"\npattern = \"[a-z]+\"\nmax_length = 10\nrequired = true\n",
    )
    .await;
    let outside = tempfile::NamedTempFile::new().unwrap();
    let cases = [
        (json!({"kind": "nope"}), "kind"),
        (json!({"params": {}}), "kind"),
        (json!({"kind": "validate_data", "params": [1]}), "params"),
        (
            json!({"kind": "validate_data", "params": {"x": 1}}),
            "params.x",
        ),
        (json!({"kind": "validate_data", "when": "now"}), "when"),
        (
            json!({"kind": "import_logs", "params": {"path": outside.path()}}),
            "params.path",
        ),
        (json!({"kind": "import_logs", "params": {}}), "params.path"),
        (
            json!({"kind": "import_logs", "params": {"path": imports.join("missing.log")}}),
            "params.path",
        ),
        (
            json!({"kind": "command", "params": {"command": "greet", "who": "bob", "shell": "sh -c id"}}),
            "params.shell",
        ),
        (
            json!({"kind": "command", "params": {"command": "greet", "who": "Bob; id"}}),
            "params.who",
        ),
        (
            json!({"kind": "command", "params": {"command": "greet", "who": "-rf"}}),
            "params.who",
        ),
        (
            json!({"kind": "command", "params": {"command": "rm"}}),
            "params.command",
        ),
        (
            json!({"kind": "retention_cleanup", "params": {"only": "everything"}}),
            "params.only",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .req(Method::POST, "/api/v1/jobs")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem_field(&problem), field, "{body}: {problem}");
    }
    let (_, page) = app.get_json("/api/v1/jobs").await;
    assert_eq!(page["items"], json!([]), "nothing was enqueued");
    for (query, field) in [
        ("state=done", "state"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
        ("bogus=1", "bogus"),
        ("schedule_id=-1", "schedule_id"),
    ] {
        let (status, body) = app.get_json(&format!("/api/v1/jobs?{query}")).await;
        assert_eq!((status, problem_field(&body)), (400, field), "{query}");
    }
    let (status, body) = app.get_json("/api/v1/jobs/abc").await;
    assert_eq!((status, problem_field(&body)), (400, "id"));
    let (status, _) = app.get_json("/api/v1/jobs/999").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_job_stores_a_file_once_even_when_run_twice() {
    let (app, imports) = spawn_jobs("").await;
    let log = imports.join("access.log");
    let text: String = (0..300)
        .map(|i| {
            line(
                &format!("10.1.0.{}", i % 200),
                "10/Oct/2023:13:55:36 +0000",
                "GET",
                &format!("/page/{i}"),
                200,
                "job-test",
            ) + "\n"
        })
        .collect();
    std::fs::write(&log, format!("{text}garbage line\n")).unwrap();
    let (status, job) = submit(
        &app,
        "import_logs",
        json!({"path": log, "format": "combined"}),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["state"], "pending");
    let done = wait_finished(&app, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"], 100);
    assert_eq!(done["attempts"][0]["outcome"], "succeeded");
    let (_, out) = app
        .get_json(&format!("/api/v1/jobs/{}/output", job["id"]))
        .await;
    assert_eq!(out["items"][0]["value"]["events"], 300, "{out}");
    assert_eq!(out["items"][0]["value"]["dead_letters"], 1);
    assert_eq!(app.store.count_events().await.unwrap(), 300);

    // The same file again: resumed after its stored lines, nothing stored twice.
    let (_, again) = submit(&app, "import_logs", json!({"path": log})).await;
    let again = wait_finished(&app, again["id"].as_i64().unwrap()).await;
    assert_eq!(again["state"], "succeeded");
    let (_, out) = app
        .get_json(&format!("/api/v1/jobs/{}/output", again["id"]))
        .await;
    assert_eq!(out["items"][0]["value"]["lines"], 0, "{out}");
    assert_eq!(app.store.count_events().await.unwrap(), 300);

    // Listing with filters and pages.
    let (_, page) = app
        .get_json("/api/v1/jobs?kind=import_logs&state=succeeded&limit=1")
        .await;
    assert_eq!(page["items"][0]["id"], again["id"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = app
        .get_json(&format!(
            "/api/v1/jobs?kind=import_logs&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(page["items"][0]["id"], job["id"]);
    assert!(page["next_cursor"].is_null());
    let (_, none) = app.get_json("/api/v1/jobs?state=failed&range=1h").await;
    assert_eq!(none["items"], json!([]));
    // The import's log.
    let (_, logs) = app
        .get_json(&format!("/api/v1/jobs/{}/logs", job["id"]))
        .await;
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap_or("").contains("300 events")),
        "{logs}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_retry_logs_outputs_and_log_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("work.py");
    std::fs::write(
        &script,
        "import json, sys, time\n\
         print(json.dumps({'step': 'begin'}), flush=True)\n\
         print('working', flush=True)\n\
         time.sleep(float(sys.argv[1]))\n\
         print(json.dumps({'step': 'end'}))\n",
    )
    .unwrap();
    let (app, _) = spawn_jobs(&format!(
        "[[commands]]\nname = \"work\"\nprogram = \"/usr/bin/python3\"\nargs = [\"{}\", \"{{secs}}\"]\n\
         [commands.params.secs]\ntype = \"integer\"\nminimum = 0\nmaximum = 600\ndefault = 0\n",
        script.display()
    ))
    .await;
    let (status, job) = submit(&app, "command", json!({"command": "work", "secs": 300})).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    // Follow the log until the program said it works.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = 0;
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m == "working") {
        assert!(Instant::now() < deadline, "never started: {seen:?}");
        let (_, logs) = app
            .get_json(&format!("/api/v1/jobs/{id}/logs?after={after}"))
            .await;
        for l in logs["items"].as_array().unwrap() {
            seen.push(l["message"].as_str().unwrap().to_owned());
        }
        if let Some(last) = logs["last_id"].as_i64() {
            after = last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, running) = post(&app, &format!("/api/v1/jobs/{id}/cancel"), json!({})).await;
    assert_eq!(status, 202, "{running}");
    assert_eq!(running["cancel_requested"], true);
    let done = wait_finished(&app, id).await;
    assert_eq!(done["state"], "cancelled");
    let (status, again) = post(&app, &format!("/api/v1/jobs/{id}/cancel"), json!({})).await;
    assert_eq!((status, again["status"].as_u64()), (409, Some(409)));
    let (_, out) = app.get_json(&format!("/api/v1/jobs/{id}/output")).await;
    assert_eq!(out["items"][0]["value"], json!({"step": "begin"}));
    assert_eq!(out["items"].as_array().unwrap().len(), 1);

    // Retry: the job runs again (quickly this time? no: same params); cancel it again
    // while pending or running, then check both attempts are kept.
    let (status, retried) = post(&app, &format!("/api/v1/jobs/{id}/retry"), json!({})).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["state"], "pending");
    let running = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, j) = app.get_json(&format!("/api/v1/jobs/{id}")).await;
            if j["attempt"] == 2 {
                break j;
            }
            assert!(Instant::now() < deadline, "{j}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(running["attempts"].as_array().unwrap().len(), 2);
    post(&app, &format!("/api/v1/jobs/{id}/cancel"), json!({})).await;
    let done = wait_finished(&app, id).await;
    assert_eq!(done["state"], "cancelled");
    let outcomes: Vec<&str> = done["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["cancelled", "cancelled"]);
    let (_, logs) = app
        .get_json(&format!("/api/v1/jobs/{id}/logs?limit=1000"))
        .await;
    let attempts: std::collections::BTreeSet<i64> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts.into_iter().collect::<Vec<_>>(), [1, 2]);
    let (status, _) = post(&app, &format!("/api/v1/jobs/{}/retry", id + 100), json!({})).await;
    assert_eq!(status, 404);

    // A succeeded job cannot be retried; its logs can be deleted, then all finished ones.
    let (_, quick) = submit(&app, "command", json!({"command": "work"})).await;
    let quick_id = quick["id"].as_i64().unwrap();
    assert_eq!(wait_finished(&app, quick_id).await["state"], "succeeded");
    let (status, _) = post(&app, &format!("/api/v1/jobs/{quick_id}/retry"), json!({})).await;
    assert_eq!(status, 409);
    let r = app
        .req(Method::DELETE, &format!("/api/v1/jobs/{quick_id}/logs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deleted: Value = r.json().await.unwrap();
    assert!(deleted["deleted"].as_u64().unwrap() >= 2);
    let (_, logs) = app.get_json(&format!("/api/v1/jobs/{quick_id}/logs")).await;
    assert_eq!(logs["items"], json!([]));
    let r = app
        .req(Method::DELETE, "/api/v1/jobs/logs")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, logs) = app.get_json(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(logs["items"], json!([]));
    // Every change is in the audit log.
    let (_, audit) = app.get_json("/api/v1/audit?action=job.cancel").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_managed_fire_and_config_ones_are_read_only() {
    let (app, _) = spawn_jobs("[retention]\nevents = \"30d\"\nschedule = \"0 3 * * *\"\n").await;
    // The retention schedule comes from the configuration.
    let deadline = Instant::now() + Duration::from_secs(10);
    let retention = loop {
        let (_, list) = app.get_json("/api/v1/jobs/schedules").await;
        if let Some(s) = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "retention")
        {
            break s.clone();
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(retention["origin"], "config");
    assert_eq!(retention["kind"], "retention_cleanup");
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/jobs/schedules/{}", retention["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    for (body, field) in [
        (
            json!({"name": "a", "kind": "validate_data", "cron": "61 * * * *"}),
            "cron",
        ),
        (
            json!({"name": "a", "kind": "validate_data", "cron": "@daily", "timezone": "Mars/Base"}),
            "timezone",
        ),
        (
            json!({"name": "a", "kind": "nope", "cron": "@daily"}),
            "kind",
        ),
        (
            json!({"name": "a", "kind": "validate_data", "cron": "@daily", "params": {"x": 1}}),
            "params.x",
        ),
        (
            json!({"name": "retention", "kind": "validate_data", "cron": "@daily"}),
            "name",
        ),
    ] {
        let (status, problem) = post(&app, "/api/v1/jobs/schedules", body.clone()).await;
        assert_eq!((status, problem_field(&problem)), (400, field), "{body}");
    }
    // Every second (6 fields): it fires, and each firing enqueues one job.
    let (status, every) = post(
        &app,
        "/api/v1/jobs/schedules",
        json!({"name": "often", "kind": "validate_data", "cron": "* * * * * *", "timezone": "Europe/Paris"}),
    )
    .await;
    assert_eq!(status, 201, "{every}");
    assert_eq!(every["origin"], "api");
    assert!(every["next_run_at"].is_string());
    let (status, _) = post(
        &app,
        "/api/v1/jobs/schedules",
        json!({"name": "often", "kind": "validate_data", "cron": "@daily"}),
    )
    .await;
    assert_eq!(status, 409);
    let sid = every["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, jobs) = app
            .get_json(&format!("/api/v1/jobs?schedule_id={sid}"))
            .await;
        if jobs["items"].as_array().unwrap().len() >= 2 {
            assert_eq!(jobs["items"][0]["created_by"], "schedule:often");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule never fired twice: {jobs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Disabled: it stops firing.
    let r = app
        .req(Method::PUT, &format!("/api/v1/jobs/schedules/{sid}"))
        .json(&json!({"name": "often", "kind": "validate_data", "cron": "* * * * * *", "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["enabled"], false);
    assert!(updated["next_run_at"].is_null());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, before) = app
        .get_json(&format!("/api/v1/jobs?schedule_id={sid}&limit=1000"))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, after) = app
        .get_json(&format!("/api/v1/jobs?schedule_id={sid}&limit=1000"))
        .await;
    assert_eq!(
        before["items"].as_array().unwrap().len(),
        after["items"].as_array().unwrap().len()
    );
    let r = app
        .req(Method::DELETE, &format!("/api/v1/jobs/schedules/{sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, _) = app.get_json(&format!("/api/v1/jobs/schedules/{sid}")).await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// Issue 10's pipeline scripts as jobs: import CVE files, match an uploaded inventory,
/// generate a report; each with its output, and the match visible in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vulnerability_pipeline_runs_as_jobs() {
    let (app, imports) = spawn_jobs("").await;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../vuln/tests/data/nvd");
    for page in [
        "nvdcve-2.0-page-000.json",
        "nvdcve-2.0-page-001.json",
        "nvdcve-2.0-page-002.json",
    ] {
        std::fs::copy(format!("{data}/{page}"), imports.join(page)).expect("copy page");
        let (status, job) = submit(
            &app,
            "import_cves",
            json!({"path": imports.join(page).display().to_string()}),
        )
        .await;
        assert_eq!(status, 201, "{job}");
        let done = wait_finished(&app, job["id"].as_i64().unwrap()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    // A file outside jobs.import_dirs is refused before anything runs.
    let (status, body) = submit(&app, "import_cves", json!({"path": data})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(problem_field(&body), "params.path", "{body}");

    let inventory = "Desired=Unknown/Install/Remove/Purge/Hold\n|| Name Version Architecture Description\n+++-====-=======-============-===========\nii  apache2  2.4.49-1  amd64  Apache HTTP Server\n";
    let r = app
        .req(Method::POST, "/api/v1/assets/web1/inventory")
        .body(inventory)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let (status, job) = submit(&app, "match_cves", json!({})).await;
    assert_eq!(status, 201, "{job}");
    let done = wait_finished(&app, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let (_, page) = app
        .get_json("/api/v1/vulnerabilities?asset=web1&cve=CVE-2021-41773")
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");

    let (status, job) = submit(
        &app,
        "generate_report",
        json!({"kind": "vulnerabilities", "range": "30d"}),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    let done = wait_finished(&app, id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let (_, output) = app.get_json(&format!("/api/v1/jobs/{id}/output")).await;
    let report_id = output["items"][0]["value"]["id"]
        .as_i64()
        .or_else(|| output["items"][0]["id"].as_i64())
        .expect("report id in the output");
    let r = app
        .get(&format!("/api/v1/reports/{report_id}?format=html"))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("CVE-2021-41773"));
    app.stop().await;
}
