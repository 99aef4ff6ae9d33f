//! A bounded pool for password hashing, so that logins cannot exhaust memory.
//!
//! Each argon2id check needs about 19 MiB for some tens of milliseconds. Run on Tokio's
//! blocking pool without a bound, a login flood starts one check per request (the pool
//! allows 512 threads, about 10 GB), and the freed blocks stay cached in the threads'
//! malloc arenas. Here at most `hashers` checks run at once, each in one of at most
//! `hashers` reused [`HashMemory`] blocks; up to `max_waiting` more wait for a turn, and
//! beyond that a check is refused at once with [`PoolError::Busy`] (the API answers 503
//! with `Retry-After`). Memory for password checks is therefore bounded by
//! `hashers × 19 MiB` whatever the request rate.
//!
//! A job keeps its permit and its memory until it has finished, even when the request
//! that asked for it is dropped, so abandoned requests cannot push more hashes past
//! the bound.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use palisade_core::metrics::{Counter, Gauge, registry};
use tokio::sync::Semaphore;

use crate::AuthError;
use crate::password::{self, HashMemory};

/// Why a hashing job was not done.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every hasher is busy and the waiting line is full: try again in a moment.
    #[error("every password hasher is busy; retry shortly")]
    Busy,
    /// The job itself failed (argon2 refused its input, or the job panicked).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl From<AuthError> for PoolError {
    fn from(e: AuthError) -> Self {
        PoolError::Failed(e.to_string())
    }
}

/// The pool's metrics, registered once, where they are updated.
struct Metrics {
    refused: Arc<Counter>,
    waiting: Arc<Gauge>,
    running: Arc<Gauge>,
}

fn metrics() -> &'static Metrics {
    static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        refused: registry().counter(
            "palisade_password_checks_refused_total",
            "Password checks refused (503) because every hasher was busy and the waiting line was full.",
            &[],
            &[],
        ),
        waiting: registry().gauge(
            "palisade_password_checks_waiting",
            "Password checks waiting for a free hasher.",
            &[],
            &[],
        ),
        running: registry().gauge(
            "palisade_password_checks_running",
            "Password checks being computed now.",
            &[],
            &[],
        ),
    })
}

struct Inner {
    permits: Arc<Semaphore>,
    hashers: usize,
    max_waiting: usize,
    waiting: AtomicUsize,
    /// Idle working memories; never more than `hashers` exist at once.
    memory: Mutex<Vec<HashMemory>>,
}

impl Inner {
    fn take_memory(&self) -> HashMemory {
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn give_back(&self, memory: HashMemory) {
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
    }
}

/// A place in the waiting line, given up when dropped (also when the request is).
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics().waiting.add(-1);
    }
}

/// Runs password hashes and checks with bounded concurrency and memory. Cheap to clone.
#[derive(Clone)]
pub struct HashPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for HashPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashPool")
            .field("hashers", &self.inner.hashers)
            .field("max_waiting", &self.inner.max_waiting)
            .field("waiting", &self.inner.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

impl HashPool {
    /// At most `hashers` (at least 1) jobs at once, and `max_waiting` more waiting.
    pub fn new(hashers: usize, max_waiting: usize) -> Self {
        let hashers = hashers.max(1);
        HashPool {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(hashers)),
                hashers,
                max_waiting,
                waiting: AtomicUsize::new(0),
                memory: Mutex::new(Vec::with_capacity(hashers)),
            }),
        }
    }

    /// The default number of hashers: two per core, at least 2 and at most 16 (16 ×
    /// 19 MiB is already 304 MiB, and more logins per second than that many hashers
    /// give is not something a login form needs).
    pub fn default_hashers() -> usize {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .saturating_mul(2)
            .clamp(2, 16)
    }

    /// How many jobs may run at once.
    pub fn hashers(&self) -> usize {
        self.inner.hashers
    }

    /// Checks `password` against a stored PHC string, or, for a user that does not exist
    /// (`None`), spends the same time on a dummy hash and answers false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, PoolError> {
        self.run(move |memory| match phc {
            Some(phc) => password::verify_with(&password, &phc, memory),
            None => password::verify_dummy_with(&password, memory),
        })
        .await
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, PoolError> {
        self.run(move |memory| password::hash_with(&password, memory))
            .await?
            .map_err(PoolError::from)
    }

    /// Runs `job` on the blocking pool once a hasher is free, with a working memory.
    async fn run<R, F>(&self, job: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&mut HashMemory) -> R + Send + 'static,
    {
        let permits = Arc::clone(&self.inner.permits);
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let line = self.join_line()?;
                // The semaphore is never closed, so this only fails if that changes.
                let permit = permits
                    .acquire_owned()
                    .await
                    .map_err(|e| PoolError::Failed(e.to_string()))?;
                drop(line);
                permit
            }
        };
        let inner = Arc::clone(&self.inner);
        metrics().running.add(1);
        let done = tokio::task::spawn_blocking(move || {
            let mut memory = inner.take_memory();
            let result = job(&mut memory);
            inner.give_back(memory);
            metrics().running.add(-1);
            drop(permit);
            result
        })
        .await;
        done.map_err(|e| {
            metrics().running.add(-1);
            PoolError::Failed(e.to_string())
        })
    }

    fn join_line(&self) -> Result<InLine<'_>, PoolError> {
        let waiting = &self.inner.waiting;
        let before = waiting.fetch_add(1, Ordering::AcqRel);
        metrics().waiting.add(1);
        let line = InLine(waiting);
        if before >= self.inner.max_waiting {
            drop(line);
            metrics().refused.inc();
            return Err(PoolError::Busy);
        }
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Occupies one hasher until the returned sender is used (or dropped).
    async fn occupy(pool: &HashPool) -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, hold) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let pool = pool.clone();
        let task = tokio::spawn(async move {
            pool.run(move |_| {
                let _ = started_tx.send(());
                let _ = hold.recv();
            })
            .await
            .expect("job");
        });
        started.await.expect("job started");
        (release, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_pool_and_line_refuse_at_once() {
        let pool = HashPool::new(1, 1);
        let (release, holder) = occupy(&pool).await;
        // One may wait; it is served once the hasher is free.
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|_| 7).await })
        };
        while pool.inner.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        // The line is full: refused without waiting.
        assert!(matches!(pool.run(|_| 1).await, Err(PoolError::Busy)));
        release.send(()).expect("release");
        holder.await.expect("holder");
        assert_eq!(waiter.await.expect("waiter").expect("served"), 7);
        assert_eq!(pool.inner.waiting.load(Ordering::Acquire), 0);
        // Free again.
        assert_eq!(pool.run(|_| 3).await.expect("free"), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_line_means_busy_while_all_hashers_work() {
        let pool = HashPool::new(2, 0);
        let (r1, h1) = occupy(&pool).await;
        let (r2, h2) = occupy(&pool).await;
        assert!(matches!(
            pool.verify("x".into(), None).await,
            Err(PoolError::Busy)
        ));
        drop((r1, r2));
        h1.await.expect("h1");
        h2.await.expect("h2");
        assert!(!pool.verify("x".into(), None).await.expect("free"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_is_bounded_by_the_hashers_and_reused() {
        let pool = HashPool::new(2, 64);
        let phc = pool.hash("a long passphrase".into()).await.expect("hash");
        let mut jobs = tokio::task::JoinSet::new();
        for i in 0..12 {
            let (pool, phc) = (pool.clone(), phc.clone());
            jobs.spawn(async move {
                let pw = if i % 2 == 0 {
                    "a long passphrase"
                } else {
                    "wrong"
                };
                (i, pool.verify(pw.into(), Some(phc)).await.expect("verify"))
            });
        }
        while let Some(done) = jobs.join_next().await {
            let (i, ok) = done.expect("join");
            assert_eq!(ok, i % 2 == 0, "job {i}");
        }
        let idle = pool.inner.memory.lock().expect("memory");
        assert!(idle.len() <= 2, "{} memories for 2 hashers", idle.len());
        assert!(idle.iter().all(|m| m.bytes() <= 19_456 * 1024));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_request_keeps_its_hasher_until_the_job_ends() {
        let pool = HashPool::new(1, 0);
        let (release, hold) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let request = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let _ = pool
                    .run(move |_| {
                        let _ = started_tx.send(());
                        let _ = hold.recv();
                    })
                    .await;
            })
        };
        started.await.expect("started");
        request.abort();
        let _ = request.await;
        // The job still runs: the bound holds.
        assert!(matches!(pool.run(|_| ()).await, Err(PoolError::Busy)));
        release.send(()).expect("release");
        let mut freed = false;
        for _ in 0..500 {
            if pool.run(|_| ()).await.is_ok() {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(freed, "the hasher was never given back");
    }
}
