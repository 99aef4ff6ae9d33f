//! Queue benchmark: jobs/s through the queue and enqueue-to-start latency, on SQLite or
//! PostgreSQL, with a no-op kind so that only the queue is measured (enqueue, claim,
//! lease, log line, finish).
//!
//! ```text
//! cargo run --release -p palisade-jobs --example queue_bench -- [sqlite|postgres URL] [JOBS] [WORKERS]
//! ```
//!
//! - throughput: JOBS jobs enqueued first, then the pool started; time until all have
//!   succeeded;
//! - latency: jobs submitted one at a time to an idle pool (the submitting process is the
//!   worker, so it is woken at once); time from submit to the `running` event, and
//!   from submit to `succeeded` as stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use palisade_core::ShutdownTrigger;
use palisade_core::job::JobState;
use palisade_core::security::Role;
use palisade_core::supervisor::Supervisor;
use palisade_jobs::params::ParamSet;
use palisade_jobs::{
    JobConfig, JobContext, JobError, JobEventBody, JobKind, JobRegistry, JobsHandle, KindLimits,
    ParamError, Services,
};
use palisade_store::{JobQuery, SharedStore};
use serde_json::{Value, json};

struct Noop;

#[async_trait]
impl JobKind for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn description(&self) -> &str {
        "Does nothing but one log line."
    }
    fn params_schema(&self) -> Value {
        ParamSet::default().schema()
    }
    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        ParamSet::default().check(params, &[]).map(Value::Object)
    }
    fn default_limits(&self) -> KindLimits {
        KindLimits {
            concurrency: 64,
            max_attempts: 1,
            ..KindLimits::default()
        }
    }
    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        ctx.info("noop").await;
        Ok(())
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn open(target: &str) -> SharedStore {
    if target.starts_with("postgres") {
        palisade_store::open(target, std::path::Path::new(".")).expect("postgres url")
    } else {
        let dir = std::env::temp_dir().join(format!("palisade-queue-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        palisade_store::open("sqlite://bench.db", &dir).expect("sqlite")
    }
}

async fn count_done(store: &SharedStore) -> u64 {
    store.job_counts().await.map(|c| c.succeeded).unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = args.first().cloned().unwrap_or_else(|| "sqlite".into());
    let jobs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let workers: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let store = open(&target).await;
    store.migrate().await.expect("migrate");
    let config = JobConfig {
        workers,
        poll: palisade_core::duration::Span::from_millis(100),
        ..JobConfig::default()
    };
    let mut registry = JobRegistry::builtin(&config);
    registry.register(Arc::new(Noop));
    let handle = JobsHandle::new(store.clone(), registry, config);

    // Throughput: a backlog, then the pool.
    let started = Instant::now();
    for _ in 0..jobs {
        handle
            .submit("noop", &json!({}), "bench", Role::Admin)
            .await
            .expect("submit");
    }
    let enqueue = started.elapsed();
    let trigger = ShutdownTrigger::new();
    let supervisor = Supervisor::new(trigger.subscribe());
    let services = Services {
        store: store.clone(),
        writer: None,
        secrets: None,
    };
    let started = Instant::now();
    handle.start(services, &supervisor, Arc::new(|| true));
    while count_done(&store).await < jobs as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run = started.elapsed();
    println!(
        "{} {jobs} jobs, {workers} workers: enqueue {:.0} jobs/s ({:.2}s); through the pool {:.0} jobs/s ({:.2}s)",
        store.backend(),
        jobs as f64 / enqueue.as_secs_f64(),
        enqueue.as_secs_f64(),
        jobs as f64 / run.as_secs_f64(),
        run.as_secs_f64()
    );

    // Latency: one at a time on an idle pool.
    let mut events = handle.events().subscribe();
    let mut to_start = Vec::new();
    let mut to_done = Vec::new();
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let t0 = Instant::now();
        let job = handle
            .submit("noop", &json!({}), "bench", Role::Admin)
            .await
            .expect("submit");
        loop {
            let ev = events.recv().await.expect("event");
            if ev.job_id == job.id
                && matches!(
                    ev.body,
                    JobEventBody::State {
                        state: JobState::Running,
                        ..
                    }
                )
            {
                to_start.push(t0.elapsed());
                break;
            }
        }
        loop {
            let ev = events.recv().await.expect("event");
            if ev.job_id == job.id
                && matches!(
                    ev.body,
                    JobEventBody::State {
                        state: JobState::Succeeded,
                        ..
                    }
                )
            {
                to_done.push(t0.elapsed());
                break;
            }
        }
    }
    to_start.sort();
    to_done.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} enqueue-to-start (same process, woken at once): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms; enqueue-to-succeeded p50 {:.2} ms, p99 {:.2} ms",
        store.backend(),
        ms(quantile(&to_start, 0.5)),
        ms(quantile(&to_start, 0.95)),
        ms(quantile(&to_start, 0.99)),
        ms(quantile(&to_done, 0.5)),
        ms(quantile(&to_done, 0.99)),
    );
    let page = store
        .query_jobs(&JobQuery {
            state: Some(JobState::Failed),
            limit: 1,
            ..JobQuery::default()
        })
        .await
        .expect("query");
    assert!(page.items.is_empty(), "a job failed: {:?}", page.items);
    trigger.trigger();
}
