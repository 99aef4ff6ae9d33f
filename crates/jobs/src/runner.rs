//! Running one claimed job to the end of its attempt: the kind's `run` in a task of its
//! own (a panic becomes a failed attempt), watched for its timeout, a cancel request
//! (from this process at once, from another through the heartbeat), a lost lease and
//! shutdown; the lease renewed on every heartbeat; the outcome reported to the store,
//! with a retry time (exponential backoff with jitter) while attempts are left.
//!
//! A job asked to stop gets `jobs.stop_grace` to return, then its task is aborted
//! (whatever it holds is dropped: a command's process group is killed by its guard).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use palisade_core::Timestamp;
use palisade_core::job::{AttemptOutcome, Job, JobState};
use palisade_core::metrics::{Counter, Gauge, Histogram, registry};
use palisade_core::shutdown::{Shutdown, ShutdownTrigger};
use palisade_store::{AttemptEnd, JobFinish, StoreError};

use crate::config::JobConfig;
use crate::context::JobContext;
use crate::events::{JobEventBody, JobEvents};
use crate::kind::{JobError, KindLimits, Services};
use crate::registry::SharedRegistry;

/// How often a finish report is tried when the store is down, and the first pause.
const FINISH_TRIES: u32 = 12;

/// The cancel triggers of the jobs running in this process, by job id: a cancel
/// through this process stops its job at once instead of at the next heartbeat.
#[derive(Clone, Default)]
pub struct RunningJobs(Arc<Mutex<HashMap<i64, Arc<ShutdownTrigger>>>>);

impl RunningJobs {
    fn insert(&self, id: i64, trigger: Arc<ShutdownTrigger>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, trigger);
    }

    fn remove(&self, id: i64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Stops a job running here; false when it is not running here.
    pub fn cancel(&self, id: i64) -> bool {
        let trigger = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        trigger.map(|t| t.trigger()).is_some()
    }

    /// How many are running here.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a run was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    TimedOut,
    LostLease,
    Shutdown,
}

/// Everything needed to run claimed jobs.
pub(crate) struct Runner {
    pub registry: SharedRegistry,
    pub services: Arc<Services>,
    pub config: Arc<JobConfig>,
    pub events: JobEvents,
    pub running: RunningJobs,
    pub worker: String,
}

fn started_total(kind: &str) -> Arc<Counter> {
    registry().counter(
        "palisade_jobs_started_total",
        "Job attempts started, by kind.",
        &["kind"],
        &[kind],
    )
}

fn finished_total(kind: &str, outcome: &str) -> Arc<Counter> {
    registry().counter(
        "palisade_jobs_finished_total",
        "Job attempts ended, by kind and outcome (succeeded, failed, timed_out, cancelled, interrupted).",
        &["kind", "outcome"],
        &[kind, outcome],
    )
}

fn running_gauge() -> Arc<Gauge> {
    registry().gauge(
        "palisade_jobs_running",
        "Jobs running in this process.",
        &[],
        &[],
    )
}

fn start_latency(kind: &str) -> Arc<Histogram> {
    registry().histogram(
        "palisade_job_start_latency_seconds",
        "Time from a job becoming ready (submitted, or its retry due) to its attempt starting, by kind.",
        &["kind"],
        &[kind],
    )
}

fn run_seconds(kind: &str) -> Arc<Histogram> {
    registry().histogram(
        "palisade_job_run_seconds",
        "Duration of job attempts, by kind.",
        &["kind"],
        &[kind],
    )
}

/// The wait before retry number `failures` (1 = the first retry): the backoff doubled
/// per failure, capped, then "equal jitter" (half fixed, half random) so that many
/// jobs failing together do not retry together.
pub(crate) fn retry_delay(limits: &KindLimits, failures: u32) -> Duration {
    let base = limits.backoff.to_std();
    let cap = limits.max_backoff.to_std().max(base);
    let exp = failures.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(cap);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

impl Runner {
    /// Runs a claimed job's attempt and reports how it ended; the job as stored
    /// afterwards (`None` when the report could not be stored or the lease was lost).
    pub(crate) async fn execute(&self, job: Job, mut shutdown: Shutdown) -> Option<Job> {
        let started = Instant::now();
        let now = Timestamp::now();
        started_total(&job.kind).inc();
        let waited = (now.as_micros() - job.run_after.as_micros()).max(0) as f64 / 1e6;
        start_latency(&job.kind).observe(waited);
        running_gauge().add(1);
        self.events.publish(
            job.id,
            &job.kind,
            JobEventBody::State {
                state: JobState::Running,
                attempt: job.attempt,
                error: None,
            },
        );

        let Some(kind) = self.registry.get(&job.kind).cloned() else {
            running_gauge().add(-1);
            let end = AttemptEnd::Failed {
                outcome: AttemptOutcome::Failed,
                error: format!(
                    "no job kind '{}' in this process (kinds: {})",
                    job.kind,
                    self.registry.names().join(", ")
                ),
                retry_at: None,
            };
            return self.report(&job, end, "failed", started).await;
        };
        let limits = self.registry.limits(&kind, &job.params);
        let trigger = Arc::new(ShutdownTrigger::new());
        self.running.insert(job.id, trigger.clone());
        let (ctx, sink) = JobContext::new(
            job.clone(),
            self.services.clone(),
            trigger.subscribe(),
            self.events.clone(),
            self.worker.clone(),
            self.config.max_log_lines,
        );
        let ctx = Arc::new(ctx);
        let mut run = {
            let (ctx, kind) = (ctx.clone(), kind.clone());
            tokio::spawn(async move { kind.run(&ctx).await })
        };

        let deadline = tokio::time::Instant::now() + limits.timeout.to_std();
        let mut beat = tokio::time::interval(self.config.heartbeat.to_std());
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        let mut local = trigger.subscribe();
        let mut stop: Option<Stop> = None;
        let finished = loop {
            // Biased, cancel first: a kind that sees the cancel returns at once, and when
            // its end and the cancel are both ready the attempt must count as cancelled,
            // not as a job that stopped itself.
            tokio::select! {
                biased;
                () = local.recv() => {
                    stop = Some(Stop::Cancelled);
                    break None;
                }
                result = &mut run => {
                    // `biased` orders the polls of one round, not the events: the thread
                    // may pause after `local` was polled (not yet cancelled) while the
                    // kind sees the cancel and returns; that end still counts as a cancel.
                    if local.is_shutdown() {
                        stop = Some(Stop::Cancelled);
                    }
                    break Some(result);
                }
                () = tokio::time::sleep_until(deadline) => {
                    stop = Some(Stop::TimedOut);
                    break None;
                }
                () = shutdown.recv() => {
                    stop = Some(Stop::Shutdown);
                    break None;
                }
                _ = beat.tick() => {
                    let until = Timestamp::now().add_micros(self.config.lease.as_micros());
                    match self.services.store.renew_job_lease(job.id, &self.worker, until).await {
                        Ok(lease) if !lease.held => {
                            stop = Some(Stop::LostLease);
                            break None;
                        }
                        Ok(lease) if lease.cancel_requested => {
                            stop = Some(Stop::Cancelled);
                            break None;
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(
                            message = "Cannot renew a running job's lease; will try at the next heartbeat.",
                            job_id = job.id,
                            %error
                        ),
                    }
                }
            }
        };
        let result = match finished {
            Some(result) => result,
            None => {
                trigger.trigger();
                if let Some(why) = stop {
                    ctx.warn(format!("stopping: {}", stop_reason(why, &limits)))
                        .await;
                }
                // The kind gets the grace period (and a second more, so that a command
                // waiting out the same grace returns on its own); the lease is kept
                // meanwhile so that nobody takes the job up again.
                let grace = tokio::time::Instant::now()
                    + self.config.stop_grace.to_std()
                    + Duration::from_secs(1);
                loop {
                    tokio::select! {
                        result = &mut run => break result,
                        () = tokio::time::sleep_until(grace) => {
                            run.abort();
                            break (&mut run).await;
                        }
                        _ = beat.tick() => {
                            let until = Timestamp::now().add_micros(self.config.lease.as_micros());
                            let _ = self.services.store.renew_job_lease(job.id, &self.worker, until).await;
                        }
                    }
                }
            }
        };
        self.running.remove(job.id);
        running_gauge().add(-1);

        let failures = job.failures + 1;
        let retry_at = |limits: &KindLimits| {
            (failures < job.max_attempts).then(|| {
                let d = retry_delay(limits, failures);
                Timestamp::now().add_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            })
        };
        let (end, outcome) = match (result, stop) {
            (Ok(Ok(())), _) => (Some(AttemptEnd::Succeeded), "succeeded"),
            (_, Some(Stop::LostLease)) => (None, "interrupted"),
            (_, Some(Stop::Cancelled)) => (Some(AttemptEnd::Cancelled), "cancelled"),
            (_, Some(Stop::Shutdown)) => (
                Some(AttemptEnd::Interrupted {
                    reason: "the process was shutting down; taken up again at the next start"
                        .into(),
                }),
                "interrupted",
            ),
            (_, Some(Stop::TimedOut)) => (
                Some(AttemptEnd::Failed {
                    outcome: AttemptOutcome::TimedOut,
                    error: format!("ran longer than its timeout ({})", limits.timeout),
                    retry_at: retry_at(&limits),
                }),
                "timed_out",
            ),
            (Ok(Err(JobError::Retryable(error))), None) => (
                Some(AttemptEnd::Failed {
                    outcome: AttemptOutcome::Failed,
                    error,
                    retry_at: retry_at(&limits),
                }),
                "failed",
            ),
            (Ok(Err(JobError::Fatal(error))), None) => (
                Some(AttemptEnd::Failed {
                    outcome: AttemptOutcome::Failed,
                    error,
                    retry_at: None,
                }),
                "failed",
            ),
            (Ok(Err(JobError::Cancelled)), None) => (
                Some(AttemptEnd::Failed {
                    outcome: AttemptOutcome::Failed,
                    error: "the job stopped itself without a cancel request".into(),
                    retry_at: None,
                }),
                "failed",
            ),
            (Err(join), None) => (
                Some(AttemptEnd::Failed {
                    outcome: AttemptOutcome::Failed,
                    error: if join.is_panic() {
                        format!("the job panicked: {}", panic_text(join.into_panic()))
                    } else {
                        "the job's task was aborted".into()
                    },
                    retry_at: retry_at(&limits),
                }),
                "failed",
            ),
        };
        if let Some(AttemptEnd::Failed { error, .. }) = &end {
            ctx.log(palisade_core::job::LogLevel::Error, error.clone())
                .await;
        }
        // Every report is stored before the job shows as finished.
        match Arc::try_unwrap(ctx) {
            Ok(ctx) => ctx.close().await,
            Err(shared) => drop(shared),
        }
        sink.flush().await;
        match end {
            Some(end) => self.report(&job, end, outcome, started).await,
            None => {
                finished_total(&job.kind, outcome).inc();
                tracing::warn!(
                    message = "A job's lease was taken over (this process was cut off from the store too long); it runs elsewhere.",
                    job_id = job.id
                );
                None
            }
        }
    }

    /// Stores the end of an attempt, trying again while the store is unavailable.
    async fn report(
        &self,
        job: &Job,
        end: AttemptEnd,
        outcome: &str,
        started: Instant,
    ) -> Option<Job> {
        finished_total(&job.kind, outcome).inc();
        run_seconds(&job.kind).observe(started.elapsed().as_secs_f64());
        let finish = JobFinish {
            id: job.id,
            attempt: job.attempt,
            worker: self.worker.clone(),
            now: Timestamp::now(),
            end,
        };
        let mut pause = Duration::from_millis(100);
        for _ in 0..FINISH_TRIES {
            match self.services.store.finish_job(&finish).await {
                Ok(stored) => {
                    if let Some(j) = &stored {
                        self.events.publish(
                            j.id,
                            &j.kind,
                            JobEventBody::State {
                                state: j.state,
                                attempt: job.attempt,
                                error: j.error.clone(),
                            },
                        );
                        tracing::info!(
                            message = "Job attempt ended.",
                            job_id = j.id,
                            kind = %j.kind,
                            attempt = job.attempt,
                            outcome,
                            state = j.state.as_str()
                        );
                    }
                    return stored;
                }
                Err(StoreError::Unavailable(error)) => {
                    tracing::warn!(message = "Cannot record a job's end; will retry.", job_id = job.id, %error);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::error!(message = "Cannot record a job's end.", job_id = job.id, %error);
                    return None;
                }
            }
        }
        None
    }
}

fn stop_reason(stop: Stop, limits: &KindLimits) -> String {
    match stop {
        Stop::Cancelled => "cancel requested".into(),
        Stop::TimedOut => format!("timeout ({}) reached", limits.timeout),
        Stop::LostLease => "another worker holds the job now".into(),
        Stop::Shutdown => "the process is shutting down".into(),
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::duration::Span;

    #[test]
    fn retry_delays_double_up_to_the_cap_with_jitter() {
        let limits = KindLimits {
            backoff: Span::from_secs(10),
            max_backoff: Span::from_secs(60),
            ..KindLimits::default()
        };
        for _ in 0..50 {
            let first = retry_delay(&limits, 1);
            assert!(first >= Duration::from_secs(5) && first <= Duration::from_secs(10));
            let third = retry_delay(&limits, 3);
            assert!(third >= Duration::from_secs(20) && third <= Duration::from_secs(40));
            let late = retry_delay(&limits, 40);
            assert!(late >= Duration::from_secs(30) && late <= Duration::from_secs(60));
        }
    }
}
