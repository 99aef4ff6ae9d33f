//! The job queue through the real binary: a job enqueued with `palisade jobs run`, the
//! server killed with `kill -9` while the job runs, then started again: the job is taken
//! up again when its lease runs out, finishes once, and the orphaned process of the
//! cut-off attempt is killed rather than left running beside the new one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_core::job::{AttemptOutcome, JobState};
use palisade_store::SharedStore;
use serde_json::json;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

fn palisade(config: &Path, data: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("PALISADE_LOG", "warn")
        .env("PALISADE_ADMIN_PASSWORD", "kill-test-Password-42")
        .env_remove("PALISADE_DATABASE_URL");
    cmd
}

fn serve(config: &Path, data: &Path) -> Child {
    palisade(config, data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start palisade")
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

async fn wait_until<F: Fn() -> bool>(what: &str, secs: u64, f: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cut_off_by_kill_9_runs_again_after_restart_and_finishes_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data: PathBuf = dir.path().join("data");
    let marker = dir.path().join("marker");
    let script = dir.path().join("slow.py");
    std::fs::write(
        &script,
        format!(
            "import json, os, time\n\
             n = os.environ['PALISADE_JOB_ATTEMPT']\n\
             with open('{m}', 'a') as f: f.write(f'start {{n}} {{os.getpid()}}\\n')\n\
             time.sleep(4)\n\
             print(json.dumps({{'done': int(n)}}), flush=True)\n\
             with open('{m}', 'a') as f: f.write(f'end {{n}}\\n')\n",
            m = marker.display()
        ),
    )
    .expect("script");
    let config = dir.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[jobs]\nlease = \"2s\"\nheartbeat = \"200ms\"\npoll = \"100ms\"\n\
             [[jobs.commands]]\nname = \"slow\"\nprogram = \"/usr/bin/python3\"\nargs = [\"{}\"]\n",
            script.display()
        ),
    )
    .expect("config");

    let mut server = serve(&config, &data);
    wait_until("database never created", 20, || {
        data.join("palisade.db").exists()
    })
    .await;
    // Enqueued from the command line, into the store the server shares.
    let out = palisade(&config, &data)
        .args(["jobs", "run", "command", "--param", "command=slow"])
        .output()
        .expect("jobs run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("job 1 enqueued"), "{said}");

    let read_marker = || std::fs::read_to_string(&marker).unwrap_or_default();
    wait_until("the server never started the job", 30, || {
        read_marker().contains("start 1")
    })
    .await;
    let first_pid: u32 = read_marker()
        .split_whitespace()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .expect("pid of the first attempt");
    server.kill().expect("kill -9");
    let _ = server.wait();
    assert!(
        alive(first_pid),
        "the cut-off attempt's process outlives the server"
    );

    let mut server = serve(&config, &data);
    let store: SharedStore = palisade_store::open("sqlite://palisade.db", &data).expect("store");
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = store.get_job(1).await.expect("read job").expect("job 1");
        if job.state.is_finished() {
            break job;
        }
        assert!(Instant::now() < deadline, "the job never finished: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!((job.attempt, job.failures, job.interruptions), (2, 0, 1));
    let attempts = store.job_attempts(1).await.expect("attempts");
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Some(AttemptOutcome::Interrupted),
            Some(AttemptOutcome::Succeeded)
        ]
    );
    assert_ne!(
        attempts[0].worker, attempts[1].worker,
        "a new process took it"
    );
    let outputs = store.job_outputs(1, 0, 100).await.expect("outputs").items;
    let values: Vec<_> = outputs.iter().map(|o| o.value.clone()).collect();
    assert_eq!(values, [json!({"done": 2})], "it finished once");
    // The orphan of attempt 1 was killed when attempt 2 started: it never finished.
    assert!(!alive(first_pid), "the orphaned attempt is still running");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines: Vec<String> = read_marker().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("start 1 ") && lines[1].starts_with("start 2 "));
    assert_eq!(lines[2], "end 2");
    let logs = store.job_logs(1, 0, 1000).await.expect("logs").items;
    assert!(
        logs.iter().any(|l| l.attempt == 2
            && l.message
                .contains("left running by an attempt that was cut off")),
        "{logs:?}"
    );
    server.kill().expect("stop");
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_wait_runs_the_job_here_when_no_server_takes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let imports = dir.path().join("imports");
    std::fs::create_dir_all(&imports).expect("imports");
    let log = imports.join("access.log");
    let mut text = String::new();
    for n in 0..50 {
        text.push_str(&format!(
            "10.0.0.{n} - - [10/Oct/2023:13:55:36 +0000] \"GET /cli/{n} HTTP/1.1\" 200 5 \"-\" \"cli\"\n"
        ));
    }
    std::fs::write(&log, text).expect("log");
    let config = dir.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!("[jobs]\nimport_dirs = [\"{}\"]\n", imports.display()),
    )
    .expect("config");
    let out = palisade(&config, &data)
        .args(["jobs", "run", "import_logs", "--wait", "-p"])
        .arg(format!("path={}", log.display()))
        .output()
        .expect("jobs run --wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("job 1 succeeded after 1 attempt(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("\"events\":50"), "{stdout}");
    let store: SharedStore = palisade_store::open("sqlite://palisade.db", &data).expect("store");
    assert_eq!(store.count_events().await.expect("count"), 50);

    // Refused before anything is stored, with the parameter named; exit status 1.
    let out = palisade(&config, &data)
        .args(["jobs", "run", "import_logs", "-p", "path=/etc/passwd"])
        .output()
        .expect("jobs run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("path"), "{err}");
    let out = palisade(&config, &data)
        .args(["jobs", "list"])
        .output()
        .expect("jobs list");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.lines().count(), 2, "one job: {listed}");
    assert!(
        listed.contains("import_logs") && listed.contains("succeeded"),
        "{listed}"
    );
    let out = palisade(&config, &data)
        .args(["jobs", "cancel", "1"])
        .output()
        .expect("jobs cancel");
    assert!(!out.status.success(), "a finished job cannot be cancelled");
}
