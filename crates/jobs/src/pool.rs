//! The background tasks: the worker pool (claims ready jobs while a slot is free and
//! runs them) and the scheduler (fires due cron schedules into the queue). Both are
//! started under the pipeline's supervisor and stop at its shutdown: running jobs are
//! handed back (`interrupted`, taken up again at the next start) after at most
//! `jobs.stop_grace`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use palisade_core::Timestamp;
use palisade_core::job::{JobState, NewJob, Schedule};
use palisade_core::shutdown::Shutdown;
use palisade_store::{JobClaim, StoreError};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::events::JobEventBody;
use crate::handle::JobsHandle;
use crate::runner::Runner;
use crate::schedule::CronSchedule;

/// Whether the store is ready (schema applied); the tasks wait for it.
pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

/// The longest pause after store errors.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(30);

/// Claims and runs jobs until shutdown, within `jobs.workers` and each kind's
/// concurrency.
pub(crate) async fn work(
    runner: Arc<Runner>,
    notify: Arc<Notify>,
    ready: Readiness,
    mut shutdown: Shutdown,
) {
    let config = runner.config.clone();
    let store = runner.services.store.clone();
    let mut running: JoinSet<String> = JoinSet::new();
    let mut per_kind: HashMap<String, usize> = HashMap::new();
    let mut pause = Duration::from_millis(200);
    let done = |kind: Result<String, tokio::task::JoinError>,
                per_kind: &mut HashMap<String, usize>| {
        if let Ok(kind) = kind
            && let Some(n) = per_kind.get_mut(&kind)
        {
            *n = n.saturating_sub(1);
        }
    };
    while !shutdown.is_shutdown() {
        while let Some(finished) = running.try_join_next() {
            done(finished, &mut per_kind);
        }
        if ready() && running.len() < config.workers {
            let kinds: Vec<String> = runner
                .registry
                .kinds()
                .filter(|k| {
                    per_kind.get(k.name()).copied().unwrap_or(0)
                        < runner.registry.configured_limits(k).concurrency
                })
                .map(|k| k.name().to_owned())
                .collect();
            let now = Timestamp::now();
            let claim = JobClaim {
                worker: runner.worker.clone(),
                now,
                lease_until: now.add_micros(config.lease.as_micros()),
                kinds,
                only_id: None,
            };
            match store.claim_job(&claim).await {
                Ok(Some(job)) => {
                    pause = Duration::from_millis(200);
                    *per_kind.entry(job.kind.clone()).or_default() += 1;
                    let (runner, shutdown) = (runner.clone(), shutdown.clone());
                    running.spawn(async move {
                        let kind = job.kind.clone();
                        runner.execute(job, shutdown).await;
                        kind
                    });
                    // There may be more ready: look again at once.
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(message = "Cannot claim jobs; will retry.", %error, retry_ms = pause.as_millis() as u64);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.recv() => break,
                    }
                    pause = (pause * 2).min(MAX_ERROR_PAUSE);
                    continue;
                }
            }
        }
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(config.poll.to_std()) => {}
            Some(finished) = running.join_next(), if !running.is_empty() => {
                done(finished, &mut per_kind);
            }
            () = shutdown.recv() => break,
        }
    }
    // The running jobs saw the same shutdown: they hand their jobs back and end.
    while running.join_next().await.is_some() {}
}

/// Keeps the configuration's schedules in the store, then fires due schedules until
/// shutdown. Several processes may run it: a fire is a compare-and-set on the
/// schedule's next time, so each run is enqueued once.
pub(crate) async fn schedule(handle: JobsHandle, ready: Readiness, mut shutdown: Shutdown) {
    let store = handle.store().clone();
    let tick = handle
        .config()
        .poll
        .to_std()
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut pause = Duration::from_millis(200);
    loop {
        if ready() {
            let wanted = match handle
                .registry()
                .config_schedules(handle.config(), Timestamp::now())
            {
                Ok(w) => w,
                Err(problems) => {
                    tracing::error!(message = "The configured schedules are unusable; none is kept.", problems = %problems.join("; "));
                    Vec::new()
                }
            };
            match store.sync_config_schedules(&wanted, Timestamp::now()).await {
                Ok(()) => break,
                Err(StoreError::Conflict(why)) => {
                    tracing::error!(message = "Cannot store the configured schedules; fix the names.", error = %why);
                    break;
                }
                Err(error) => {
                    tracing::warn!(message = "Cannot store the configured schedules; will retry.", %error);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.recv() => return,
        }
        pause = (pause * 2).min(MAX_ERROR_PAUSE);
    }
    loop {
        if ready() {
            let now = Timestamp::now();
            match store.due_schedules(now).await {
                Ok(due) => {
                    for s in due {
                        fire(&handle, &s, now).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(message = "Cannot read the due schedules; will retry.", %error)
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = shutdown.recv() => return,
        }
    }
}

/// Enqueues one run of a due schedule and moves it to its next time. A run missed
/// while nothing was running (a stopped server) fires once, not once per missed time.
async fn fire(handle: &JobsHandle, s: &Schedule, now: Timestamp) {
    let Some(expected) = s.next_run_at else {
        return;
    };
    let next = match CronSchedule::parse(&s.cron, &s.timezone) {
        Ok(c) => c.next_after(now),
        Err(error) => {
            tracing::warn!(message = "A stored schedule no longer parses; it stops firing.", schedule = %s.name, %error);
            None
        }
    };
    let max_attempts = handle
        .registry()
        .get(&s.kind)
        .map_or(1, |k| handle.registry().limits(k, &s.params).max_attempts);
    let job = NewJob {
        kind: s.kind.clone(),
        params: s.params.clone(),
        max_attempts,
        created_by: format!("schedule:{}", s.name),
        schedule_id: Some(s.id),
        run_after: now,
    };
    match handle
        .store()
        .fire_schedule(s.id, expected, next, &job, now)
        .await
    {
        Ok(Some(job)) => {
            tracing::info!(message = "Schedule fired.", schedule = %s.name, job_id = job.id, kind = %job.kind);
            handle.events().publish(
                job.id,
                &job.kind,
                JobEventBody::State {
                    state: JobState::Pending,
                    attempt: 0,
                    error: None,
                },
            );
            handle.announce();
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(message = "Cannot fire a schedule; will retry.", schedule = %s.name, %error)
        }
    }
}
