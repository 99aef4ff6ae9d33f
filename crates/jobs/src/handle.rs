//! [`JobsHandle`]: what the rest of Palisade holds to use the queue — submit, cancel and
//! retry jobs, list kinds, subscribe to events — and the start of the background tasks.

use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_core::job::{Job, JobState};
use palisade_core::security::Role;
use palisade_core::shutdown::Shutdown;
use palisade_core::supervisor::Supervisor;
use palisade_store::{CancelOutcome, JobClaim, SharedStore, StoreError};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::JobConfig;
use crate::events::{JobEventBody, JobEvents};
use crate::kind::Services;
use crate::pool::{self, Readiness};
use crate::registry::{JobRegistry, SharedRegistry, SubmitError};
use crate::runner::{Runner, RunningJobs};

/// Why a submission did not become a job.
#[derive(Debug, thiserror::Error)]
pub enum SubmitFailure {
    /// The kind, a parameter or the caller's role was refused.
    #[error(transparent)]
    Refused(#[from] SubmitError),
    /// The store could not take it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Inner {
    store: SharedStore,
    registry: SharedRegistry,
    config: Arc<JobConfig>,
    events: JobEvents,
    notify: Arc<Notify>,
    running: RunningJobs,
    worker: String,
}

/// The job queue as the rest of Palisade sees it. Cheap to clone.
#[derive(Clone)]
pub struct JobsHandle {
    inner: Arc<Inner>,
}

/// This process's worker name: `host:pid:random`, unique across restarts.
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}:{}:{:06x}",
        std::process::id(),
        fastrand::u32(..0x100_0000)
    )
}

impl JobsHandle {
    /// A handle on the store's queue with these kinds and settings.
    pub fn new(store: SharedStore, registry: JobRegistry, config: JobConfig) -> JobsHandle {
        JobsHandle {
            inner: Arc::new(Inner {
                store,
                registry: Arc::new(registry),
                config: Arc::new(config),
                events: JobEvents::default(),
                notify: Arc::new(Notify::new()),
                running: RunningJobs::default(),
                worker: worker_name(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    /// The registered kinds.
    pub fn registry(&self) -> &JobRegistry {
        &self.inner.registry
    }

    /// The settings.
    pub fn config(&self) -> &JobConfig {
        &self.inner.config
    }

    /// The event bus (subscribe for live progress and logs).
    pub fn events(&self) -> &JobEvents {
        &self.inner.events
    }

    /// This process's worker name.
    pub fn worker(&self) -> &str {
        &self.inner.worker
    }

    /// Jobs running in this process.
    pub fn running_here(&self) -> usize {
        self.inner.running.len()
    }

    /// Tells this process's pool that a job is waiting.
    pub fn announce(&self) {
        self.inner.notify.notify_one();
    }

    /// Checks and enqueues a job; this process's pool is told at once.
    pub async fn submit(
        &self,
        kind: &str,
        params: &Value,
        created_by: &str,
        role: Role,
    ) -> Result<Job, SubmitFailure> {
        let prepared = self
            .inner
            .registry
            .prepare(kind, params, created_by, role)?;
        let job = self
            .inner
            .store
            .enqueue_job(&prepared.job, Timestamp::now())
            .await?;
        self.inner.events.publish(
            job.id,
            &job.kind,
            JobEventBody::State {
                state: JobState::Pending,
                attempt: 0,
                error: None,
            },
        );
        self.announce();
        Ok(job)
    }

    /// Asks a job to stop: a pending one is cancelled, a running one here stops at
    /// once, one running elsewhere at its worker's next heartbeat.
    pub async fn cancel(&self, id: i64) -> Result<Option<CancelOutcome>, StoreError> {
        let outcome = self.inner.store.cancel_job(id, Timestamp::now()).await?;
        match &outcome {
            Some(CancelOutcome::Requested(_)) => {
                self.inner.running.cancel(id);
            }
            Some(CancelOutcome::Cancelled(job)) => self.inner.events.publish(
                job.id,
                &job.kind,
                JobEventBody::State {
                    state: JobState::Cancelled,
                    attempt: job.attempt,
                    error: None,
                },
            ),
            _ => {}
        }
        Ok(outcome)
    }

    /// Puts a failed or cancelled job back in the queue, with the kind's retries again;
    /// its attempts and logs so far are kept.
    pub async fn retry(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let Some(job) = self.inner.store.get_job(id).await? else {
            return Ok(None);
        };
        let extra = self.inner.registry.get(&job.kind).map_or(1, |k| {
            self.inner.registry.limits(k, &job.params).max_attempts
        });
        let job = self
            .inner
            .store
            .retry_job(id, extra, Timestamp::now())
            .await?;
        if let Some(j) = &job
            && j.state == JobState::Pending
        {
            self.inner.events.publish(
                j.id,
                &j.kind,
                JobEventBody::State {
                    state: JobState::Pending,
                    attempt: j.attempt,
                    error: None,
                },
            );
            self.announce();
        }
        Ok(job)
    }

    fn runner(&self, services: Services) -> Arc<Runner> {
        Arc::new(Runner {
            registry: self.inner.registry.clone(),
            services: Arc::new(services),
            config: self.inner.config.clone(),
            events: self.inner.events.clone(),
            running: self.inner.running.clone(),
            worker: self.inner.worker.clone(),
        })
    }

    /// Starts the worker pool (`jobs-workers`) and the scheduler (`jobs-scheduler`)
    /// under `supervisor`; both wait for `ready` before touching the store.
    pub fn start(
        &self,
        services: Services,
        supervisor: &Supervisor,
        ready: Readiness,
    ) -> Vec<JoinHandle<()>> {
        let runner = self.runner(services);
        let (notify, shutdown, r) = (
            self.inner.notify.clone(),
            supervisor.shutdown(),
            ready.clone(),
        );
        let workers = supervisor.spawn("jobs-workers", move || {
            pool::work(runner.clone(), notify.clone(), r.clone(), shutdown.clone())
        });
        let (handle, shutdown) = (self.clone(), supervisor.shutdown());
        let scheduler = supervisor.spawn("jobs-scheduler", move || {
            pool::schedule(handle.clone(), ready.clone(), shutdown.clone())
        });
        vec![workers, scheduler]
    }

    /// Claims one pending job and runs it here (the CLI's `jobs run --wait` when no
    /// server took it): `Ok(None)` when it was not claimable (another worker has it).
    pub async fn run_here(
        &self,
        id: i64,
        services: Services,
        shutdown: Shutdown,
    ) -> Result<Option<Job>, StoreError> {
        let Some(job) = self.inner.store.get_job(id).await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        let claim = JobClaim {
            worker: self.inner.worker.clone(),
            now,
            lease_until: now.add_micros(self.inner.config.lease.as_micros()),
            kinds: vec![job.kind.clone()],
            only_id: Some(id),
        };
        let Some(claimed) = self.inner.store.claim_job(&claim).await? else {
            return Ok(None);
        };
        Ok(self.runner(services).execute(claimed, shutdown).await)
    }
}

/// What the composer of a process gives the job system: `[jobs]`, kinds beyond the
/// built-in ones (the vulnerability kinds, registered by whoever depends on their
/// crate), and the secrets store for commands.
#[derive(Clone, Default)]
pub struct JobsSetup {
    /// `[jobs]`.
    pub config: JobConfig,
    /// Extra kinds, registered after the built-in ones.
    pub extra_kinds: Vec<crate::kind::SharedKind>,
    /// Where commands' secret environment variables are read from.
    pub secrets: Option<Arc<dyn crate::kind::SecretSource>>,
}

impl std::fmt::Debug for JobsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsSetup")
            .field("config", &self.config)
            .field(
                "extra_kinds",
                &self
                    .extra_kinds
                    .iter()
                    .map(|k| k.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("secrets", &self.secrets.is_some())
            .finish()
    }
}

impl JobsSetup {
    /// The registry of built-in and extra kinds, and every problem the configuration
    /// has with them (unknown kinds, refused schedule parameters).
    pub fn registry(&self) -> Result<JobRegistry, Vec<String>> {
        let mut registry = JobRegistry::builtin(&self.config);
        for kind in &self.extra_kinds {
            registry.register(kind.clone());
        }
        let problems = registry.check(&self.config);
        if problems.is_empty() {
            Ok(registry)
        } else {
            Err(problems)
        }
    }
}
