//! The worker pool on a real SQLite store with real processes: a command's output
//! becomes logs and outputs, a cancel kills the whole process group, failures are
//! retried with every attempt and log line kept, timeouts stop a run, and a command
//! with an undeclared or invalid parameter is refused before anything runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_core::ShutdownTrigger;
use palisade_core::job::{AttemptOutcome, Job, JobState, LogLevel};
use palisade_core::security::Role;
use palisade_core::supervisor::Supervisor;
use palisade_jobs::{JobConfig, JobRegistry, JobsHandle, Services, SubmitError, SubmitFailure};
use palisade_store::SharedStore;
use serde_json::{Value, json};

struct Harness {
    handle: JobsHandle,
    store: SharedStore,
    trigger: ShutdownTrigger,
    dir: tempfile::TempDir,
}

const PYTHON: &str = "/usr/bin/python3";

/// A pool on a fresh SQLite file, with `commands` (TOML `[[commands]]` entries).
async fn harness(commands: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore =
        Arc::new(palisade_store::sqlite::SqliteStore::open(&dir.path().join("p.db")).unwrap());
    store.migrate().await.unwrap();
    let text = format!(
        "heartbeat = \"100ms\"\nlease = \"2s\"\npoll = \"50ms\"\nstop_grace = \"2s\"\n{}\n{commands}",
        "[kinds.command]\nbackoff = \"10ms\"\nmax_backoff = \"20ms\"\n"
    );
    let mut config: JobConfig = toml::from_str(&text).unwrap();
    let problems = palisade_core::config::Validate::finish(&mut config);
    assert!(problems.is_empty(), "{problems:?}");
    let registry = JobRegistry::builtin(&config);
    let handle = JobsHandle::new(store.clone(), registry, config);
    let trigger = ShutdownTrigger::new();
    let supervisor = Supervisor::new(trigger.subscribe());
    handle.start(
        Services {
            store: store.clone(),
            writer: None,
            secrets: None,
        },
        &supervisor,
        Arc::new(|| true),
    );
    Harness {
        handle,
        store,
        trigger,
        dir,
    }
}

impl Harness {
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    }

    async fn submit(&self, params: Value) -> Result<Job, SubmitFailure> {
        self.handle
            .submit("command", &params, "tester", Role::Analyst)
            .await
    }

    async fn wait_for(&self, id: i64, what: impl Fn(&Job) -> bool) -> Job {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = self.store.get_job(id).await.unwrap().unwrap();
            if what(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job never got there: {job:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finished(&self, id: i64) -> Job {
        self.wait_for(id, |j| j.state.is_finished()).await
    }

    async fn logs(&self, id: i64) -> Vec<(u32, LogLevel, String)> {
        self.store
            .job_logs(id, 0, 1000)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|l| (l.attempt, l.level, l.message))
            .collect()
    }
}

fn command(name: &str, script: &Path, extra: &str) -> String {
    format!(
        "[[commands]]\nname = \"{name}\"\nprogram = \"{PYTHON}\"\nargs = [\"{}\"]\n{extra}\n",
        script.display()
    )
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_runs_with_typed_arguments_and_its_json_lines_become_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("report.py");
    std::fs::write(
        &script,
        "import json, os, sys\n\
         print('args', sys.argv[1:])\n\
         print('secret-free env', sorted(k for k in os.environ if k.startswith('PALISADE_') or k == 'HOME'))\n\
         print(json.dumps({'rows': int(sys.argv[1]), 'target': sys.argv[3]}))\n\
         print('{not json')\n\
         print('warning on stderr', file=sys.stderr)\n",
    )
    .unwrap();
    let h = harness(&format!(
        "[[commands]]\nname = \"report\"\nprogram = \"{PYTHON}\"\n\
         args = [\"{}\", \"{{rows}}\", \"--target\", \"{{target}}\", \"--opt={{opt}}\"]\n\
         env = {{ REPORT_MODE = \"full\" }}\n\
         [commands.params.rows]\ntype = \"integer\"\nmaximum = 100\ndefault = 5\n\
         [commands.params.target]\ntype = \"string\"\npattern = \"[a-z ;]+\"\nrequired = true\n\
         [commands.params.opt]\ntype = \"string\"\n",
        script.display()
    ))
    .await;
    let job = h
        .submit(json!({"command": "report", "rows": "7", "target": "a b; rm"}))
        .await
        .unwrap();
    assert_eq!(
        job.params,
        json!({"command": "report", "rows": 7, "target": "a b; rm"})
    );
    let done = h.finished(job.id).await;
    assert_eq!(
        done.state,
        JobState::Succeeded,
        "{:?}",
        h.logs(job.id).await
    );
    assert_eq!(done.progress, 100);
    let logs = h.logs(job.id).await;
    let stdout: Vec<&str> = logs
        .iter()
        .filter(|(_, l, _)| *l == LogLevel::Stdout)
        .map(|(_, _, m)| m.as_str())
        .collect();
    // One argv element per template entry, nothing split or expanded by a shell; the
    // optional parameter that was not given drops its argument.
    assert_eq!(stdout[0], "args ['7', '--target', 'a b; rm']");
    assert_eq!(
        stdout[1],
        "secret-free env ['PALISADE_JOB_ATTEMPT', 'PALISADE_JOB_ID', 'PALISADE_JOB_KEY']"
    );
    assert!(
        logs.iter()
            .any(|(_, l, m)| *l == LogLevel::Stderr && m == "warning on stderr")
    );
    let outputs = h.store.job_outputs(job.id, 0, 10).await.unwrap().items;
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].value, json!({"rows": 7, "target": "a b; rm"}));
    h.trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_or_invalid_parameters_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = dir.path().join("touch.py");
    std::fs::write(
        &script,
        format!("open('{}', 'w').write('ran')\n", marker.display()),
    )
    .unwrap();
    let h = harness(&format!(
        "{}[commands.params.n]\ntype = \"integer\"\nminimum = 1\nmaximum = 3\n",
        command("touch", &script, "")
    ))
    .await;
    for (params, field) in [
        (json!({"command": "touch", "shell": "rm -rf /"}), "shell"),
        (json!({"command": "touch", "n": 9}), "n"),
        (json!({"command": "touch", "n": "1; reboot"}), "n"),
        (json!({"command": "nope"}), "command"),
        (json!({}), "command"),
        (json!("touch"), "params"),
    ] {
        match h.submit(params.clone()).await {
            Err(SubmitFailure::Refused(SubmitError::Param(e))) => {
                assert_eq!(e.param, field, "{params}")
            }
            other => panic!("{params}: {other:?}"),
        }
    }
    assert!(matches!(
        h.handle
            .submit("no_such_kind", &json!({}), "t", Role::Admin)
            .await,
        Err(SubmitFailure::Refused(SubmitError::UnknownKind(_)))
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = h.store.job_counts().await.unwrap();
    assert_eq!(
        counts,
        palisade_store::JobCounts::default(),
        "nothing was stored"
    );
    assert!(!marker.exists(), "nothing ran");
    h.trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_command_kills_its_whole_process_group() {
    let h = harness("").await;
    let pids = h.dir.path().join("pids");
    let script = h.script(
        "tree.py",
        &format!(
            "import subprocess, os, time\n\
             child = subprocess.Popen(['/usr/bin/sleep', '300'])\n\
             open('{pids}.tmp', 'w').write(f'{{os.getpid()}} {{child.pid}}')\n\
             os.rename('{pids}.tmp', '{pids}')\n\
             print('started', flush=True)\n\
             time.sleep(300)\n",
            pids = pids.display()
        ),
    );
    // A harness whose command is the script (the file had to exist first).
    let h2 = harness(&command("tree", &script, "")).await;
    h.trigger.trigger();
    let job = h2.submit(json!({"command": "tree"})).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pids.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = std::fs::read_to_string(&pids).unwrap();
    let ids: Vec<u32> = text.split(' ').map(|p| p.parse().unwrap()).collect();
    assert!(ids.iter().all(|p| !gone(*p)), "both processes run");
    h2.handle.cancel(job.id).await.unwrap().unwrap();
    let done = h2.finished(job.id).await;
    if done.state != JobState::Cancelled {
        // Everything the store kept, so that a rare failure says which way it went.
        let attempts = h2.store.job_attempts(job.id).await.unwrap();
        let logs = h2.logs(job.id).await;
        panic!(
            "the cancelled job ended {:?}\njob: {done:?}\nattempts: {attempts:?}\nlogs: {logs:?}",
            done.state
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ids.iter().all(|p| gone(*p)) {
        assert!(
            Instant::now() < deadline,
            "a process of the group survived the cancel: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let attempts = h2.store.job_attempts(job.id).await.unwrap();
    assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Cancelled));
    h2.trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_and_every_attempt_and_log_line_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("flaky.py");
    std::fs::write(
        &script,
        "import os, sys\n\
         n = int(os.environ['PALISADE_JOB_ATTEMPT'])\n\
         print(f'attempt {n} starting')\n\
         sys.exit(0 if n == 3 else 4)\n",
    )
    .unwrap();
    let h = harness(&command("flaky", &script, "max_attempts = 3")).await;
    let job = h.submit(json!({"command": "flaky"})).await.unwrap();
    assert_eq!(job.max_attempts, 3);
    let done = h.finished(job.id).await;
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!((done.attempt, done.failures), (3, 2));
    let attempts = h.store.job_attempts(job.id).await.unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Some(AttemptOutcome::Failed),
            Some(AttemptOutcome::Failed),
            Some(AttemptOutcome::Succeeded)
        ]
    );
    assert_eq!(attempts[0].error.as_deref(), Some("exited with status 4"));
    let logs = h.logs(job.id).await;
    for n in 1..=3u32 {
        assert!(
            logs.iter().any(|(a, l, m)| *a == n
                && *l == LogLevel::Stdout
                && *m == format!("attempt {n} starting")),
            "attempt {n}'s output kept: {logs:?}"
        );
    }
    // A manual retry of a failed job adds attempts after the old ones.
    let always = h.script("fail.py", "import sys\nprint('no')\nsys.exit(1)\n");
    let h2 = harness(&command("fail", &always, "")).await;
    let job = h2.submit(json!({"command": "fail"})).await.unwrap();
    let failed = h2.finished(job.id).await;
    assert_eq!((failed.state, failed.attempt), (JobState::Failed, 1));
    h2.handle.retry(job.id).await.unwrap().unwrap();
    let again = h2
        .wait_for(job.id, |j| j.attempt == 2 && j.state.is_finished())
        .await;
    assert_eq!(again.state, JobState::Failed);
    assert_eq!(h2.store.job_attempts(job.id).await.unwrap().len(), 2);
    let attempts_logged: Vec<u32> = h2
        .logs(job.id)
        .await
        .iter()
        .filter(|(_, l, _)| *l == LogLevel::Stdout)
        .map(|(a, _, _)| *a)
        .collect();
    assert_eq!(attempts_logged, [1, 2]);
    h.trigger.trigger();
    h2.trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_past_its_timeout_is_stopped_and_counted_as_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow.py");
    std::fs::write(
        &script,
        "import time\nprint('working', flush=True)\ntime.sleep(60)\n",
    )
    .unwrap();
    let h = harness(&command("slow", &script, "timeout = \"300ms\"")).await;
    let job = h.submit(json!({"command": "slow"})).await.unwrap();
    let done = h.finished(job.id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(done.error.unwrap().contains("timeout"));
    let attempts = h.store.job_attempts(job.id).await.unwrap();
    assert_eq!(attempts[0].outcome, Some(AttemptOutcome::TimedOut));
    h.trigger.trigger();
}
