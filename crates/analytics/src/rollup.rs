//! The roll-up worker: one supervised task that keeps the per-minute and per-hour
//! roll-ups up to date with the stored rows, recomputes the top keys of hours that
//! changed once they are closed, and applies the roll-up retention.
//!
//! Each pass covers at most `rollup_batch` ids in one short transaction (SQLite's one
//! writer is shared with ingest); while rows are left it passes again at once, so a
//! large import is caught up in a burst of short transactions, then it waits
//! `rollup_every`. A pass that fails (the database is down) is retried with backoff;
//! nothing is lost, because the watermark only moves with the roll-ups it covers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_core::metrics::{Counter, Histogram, registry};
use palisade_core::{Shutdown, Timestamp};
use palisade_store::{RollupRetention, SharedStore};

use crate::Ready;
use crate::config::AnalyticsConfig;

/// How long after an hour ends its top keys are computed (late lines of a log tail).
const TOP_GRACE: Duration = Duration::from_secs(120);
/// Hours whose top keys one round recomputes at most.
const TOP_HOURS_PER_ROUND: u32 = 24;
/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

struct Meters {
    rows: Arc<Counter>,
    failures: Arc<Counter>,
    pass: Arc<Histogram>,
}

impl Meters {
    fn new() -> Meters {
        let r = registry();
        Meters {
            rows: r.counter(
                "palisade_analytics_rolled_up_ids_total",
                "Event and threat ids added to the analytics roll-ups.",
                &[],
                &[],
            ),
            failures: r.counter(
                "palisade_analytics_rollup_failures_total",
                "Failed roll-up, top-key or retention rounds (retried).",
                &[],
                &[],
            ),
            pass: r.histogram(
                "palisade_analytics_rollup_pass_seconds",
                "Time of one roll-up transaction.",
                &[],
                &[],
            ),
        }
    }
}

/// The worker's inputs.
#[derive(Clone)]
pub(crate) struct RollupWorker {
    pub store: SharedStore,
    pub config: AnalyticsConfig,
    pub ready: Ready,
}

impl RollupWorker {
    /// Works until shutdown.
    pub async fn run(self, mut shutdown: Shutdown) {
        let meters = Meters::new();
        let mut backoff = Duration::from_millis(500);
        let mut last_prune: Option<Instant> = None;
        loop {
            if shutdown.is_shutdown() {
                return;
            }
            let wait = if !(self.ready)() {
                Duration::from_millis(500)
            } else {
                match self.round(&meters, &mut last_prune, &shutdown).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(500);
                        self.config.rollup_every.to_std()
                    }
                    Err(error) => {
                        meters.failures.inc();
                        tracing::warn!(message = "Analytics roll-up failed; will retry.", %error, retry_in_ms = backoff.as_millis() as u64);
                        let wait = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        wait
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.recv() => return,
            }
        }
    }

    /// Catches up, refreshes closed hours' top keys, prunes when due.
    async fn round(
        &self,
        meters: &Meters,
        last_prune: &mut Option<Instant>,
        shutdown: &Shutdown,
    ) -> Result<(), palisade_store::StoreError> {
        loop {
            let started = Instant::now();
            let progress = self
                .store
                .roll_up(self.config.rollup_batch, Timestamp::now())
                .await?;
            meters.pass.observe(started.elapsed().as_secs_f64());
            meters.rows.add(progress.events + progress.threats);
            if !progress.more || shutdown.is_shutdown() {
                break;
            }
            tokio::task::yield_now().await;
        }
        loop {
            let done = self
                .store
                .refresh_top(
                    Timestamp::now(),
                    TOP_GRACE,
                    self.config.top_per_hour,
                    TOP_HOURS_PER_ROUND,
                )
                .await?;
            if done < TOP_HOURS_PER_ROUND || shutdown.is_shutdown() {
                break;
            }
        }
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            let now = Timestamp::now();
            let deleted = self
                .store
                .prune_rollups(RollupRetention {
                    minutes_from: now.add_micros(-self.config.minute_retention.as_micros()),
                    hours_from: now.add_micros(-self.config.hour_retention.as_micros()),
                })
                .await?;
            if deleted > 0 {
                tracing::info!(
                    message = "Analytics roll-ups past their retention deleted.",
                    rows = deleted
                );
            }
            *last_prune = Some(Instant::now());
        }
        Ok(())
    }
}
