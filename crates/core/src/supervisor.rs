//! Supervised background tasks: a task that panics is logged, counted in `/metrics`,
//! shown in health and started again with exponential backoff, until shutdown.
//!
//! A task is given as a factory (`make`) rather than a future, because a restart needs
//! a fresh future. Whatever must survive a restart (a queue's receiving end, counters)
//! lives outside the future, shared with the factory (see [`SharedReceiver`]). A task
//! that returns normally has finished its work (its input closed, or shutdown) and is
//! not restarted.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::Timestamp;
use crate::metrics::{Counter, Gauge, registry};
use crate::shutdown::Shutdown;

/// First pause before a restart.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff: the last panic was not a crash loop.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// What a supervised task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Working.
    Running,
    /// Panicked; waiting for its backoff before starting again.
    Restarting,
    /// Returned: its work is done (shutdown, or its input closed).
    Finished,
}

/// One supervised task, as health shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskStatus {
    /// Stable name (`writer`, `inspector`, `tail:web`, …).
    pub name: String,
    /// What it is doing.
    pub state: TaskState,
    /// Restarts after a panic since the process started.
    pub restarts: u64,
    /// The last panic's message.
    pub last_failure: Option<String>,
    /// When it last panicked.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_failure_at: Option<Timestamp>,
}

struct Cell {
    status: Mutex<TaskStatus>,
    restarts: Arc<Counter>,
    running: Arc<Gauge>,
}

impl Cell {
    fn update(&self, f: impl FnOnce(&mut TaskStatus)) {
        let mut s = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut s);
        let running = i64::from(s.state == TaskState::Running);
        drop(s);
        self.running.set(running);
    }
}

/// Starts tasks and keeps them running. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    shutdown: Shutdown,
    cells: Arc<Mutex<Vec<Arc<Cell>>>>,
}

/// Aborts the inner task when the supervising one is aborted or dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Supervisor {
    /// A supervisor whose restarts stop at `shutdown`.
    pub fn new(shutdown: Shutdown) -> Supervisor {
        Supervisor {
            shutdown,
            cells: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The shutdown signal its tasks obey.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    fn cell(&self, name: &str) -> Arc<Cell> {
        let cell = Arc::new(Cell {
            status: Mutex::new(TaskStatus {
                name: name.to_owned(),
                state: TaskState::Running,
                restarts: 0,
                last_failure: None,
                last_failure_at: None,
            }),
            restarts: registry().counter(
                "palisade_background_task_restarts_total",
                "Background tasks restarted after a panic, by task.",
                &["task"],
                &[name],
            ),
            running: registry().gauge(
                "palisade_background_task_running",
                "1 while a supervised background task is running, by task.",
                &["task"],
                &[name],
            ),
        });
        cell.running.set(1);
        self.cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cell.clone());
        cell
    }

    /// Runs `make()` as an async task, restarting it after a panic.
    pub fn spawn<F, Fut>(&self, name: &str, mut make: F) -> JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cell = self.cell(name);
        let shutdown = self.shutdown.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            supervise(name, cell, shutdown, move || {
                AbortOnDrop(tokio::spawn(make()))
            })
            .await
        })
    }

    /// Runs `make()` on the blocking pool (CPU-bound stages), restarting it after a
    /// panic.
    pub fn spawn_blocking<F, G>(&self, name: &str, mut make: F) -> JoinHandle<()>
    where
        F: FnMut() -> G + Send + 'static,
        G: FnOnce() + Send + 'static,
    {
        let cell = self.cell(name);
        let shutdown = self.shutdown.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            supervise(name, cell, shutdown, move || {
                AbortOnDrop(tokio::task::spawn_blocking(make()))
            })
            .await
        })
    }

    /// Every task started so far.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|c| {
                c.status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }
}

async fn supervise(
    name: String,
    cell: Arc<Cell>,
    mut shutdown: Shutdown,
    mut start: impl FnMut() -> AbortOnDrop,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        cell.update(|s| s.state = TaskState::Running);
        let started = Instant::now();
        let mut run = start();
        let outcome = (&mut run.0).await;
        match outcome {
            Ok(()) => {
                cell.update(|s| s.state = TaskState::Finished);
                return;
            }
            Err(error) if error.is_panic() => {
                let why = panic_message(error.into_panic());
                cell.restarts.inc();
                cell.update(|s| {
                    s.state = TaskState::Restarting;
                    s.restarts += 1;
                    s.last_failure = Some(why.clone());
                    s.last_failure_at = Some(Timestamp::now());
                });
                if started.elapsed() >= STABLE_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                tracing::error!(
                    message = "Background task panicked; restarting.",
                    task = %name,
                    error = %why,
                    backoff_ms = backoff.as_millis() as u64
                );
                if shutdown.is_shutdown() {
                    cell.update(|s| s.state = TaskState::Finished);
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.recv() => {
                        cell.update(|s| s.state = TaskState::Finished);
                        return;
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(_) => {
                // Aborted from outside: the process is stopping.
                cell.update(|s| s.state = TaskState::Finished);
                return;
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// The receiving end of a queue, shared between the runs of a supervised task: a
/// restart after a panic takes up the same queue, so the senders never see it close.
pub struct SharedReceiver<T>(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<T>>>);

impl<T> Clone for SharedReceiver<T> {
    fn clone(&self) -> Self {
        SharedReceiver(self.0.clone())
    }
}

impl<T> SharedReceiver<T> {
    /// Wraps a receiver.
    pub fn new(rx: tokio::sync::mpsc::Receiver<T>) -> Self {
        SharedReceiver(Arc::new(tokio::sync::Mutex::new(rx)))
    }

    /// Locks it for one run (async tasks).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, tokio::sync::mpsc::Receiver<T>> {
        self.0.lock().await
    }

    /// Locks it for one run of a blocking task (never from async code).
    pub fn blocking_lock(&self) -> tokio::sync::MutexGuard<'_, tokio::sync::mpsc::Receiver<T>> {
        self.0.blocking_lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::ShutdownTrigger;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_with_its_queue_and_reported() {
        let trigger = ShutdownTrigger::new();
        let supervisor = Supervisor::new(trigger.subscribe());
        let (tx, rx) = tokio::sync::mpsc::channel::<u32>(8);
        let rx = SharedReceiver::new(rx);
        let seen = Arc::new(AtomicU32::new(0));
        let handle = {
            let seen = seen.clone();
            supervisor.spawn("test-stage", move || {
                let (rx, seen) = (rx.clone(), seen.clone());
                async move {
                    let mut rx = rx.lock().await;
                    while let Some(n) = rx.recv().await {
                        if n == 13 {
                            panic!("unlucky {n}");
                        }
                        seen.fetch_add(n, Ordering::Relaxed);
                    }
                }
            })
        };
        for n in [1, 13, 2] {
            tx.send(n).await.unwrap();
        }
        drop(tx);
        handle.await.unwrap();
        assert_eq!(
            seen.load(Ordering::Relaxed),
            3,
            "the queue survived the panic"
        );
        let status = &supervisor.statuses()[0];
        assert_eq!(status.restarts, 1);
        assert_eq!(status.state, TaskState::Finished);
        assert!(
            status
                .last_failure
                .as_deref()
                .unwrap()
                .contains("unlucky 13")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_restart_after_shutdown() {
        let trigger = ShutdownTrigger::new();
        let supervisor = Supervisor::new(trigger.subscribe());
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let handle = supervisor.spawn_blocking("always-panics", move || {
            let r = r.clone();
            move || {
                r.fetch_add(1, Ordering::Relaxed);
                panic!("boom");
            }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        trigger.trigger();
        handle.await.unwrap();
        let n = runs.load(Ordering::Relaxed);
        assert!(n >= 2, "restarted with backoff: {n}");
        assert_eq!(supervisor.statuses()[0].state, TaskState::Finished);
    }
}
