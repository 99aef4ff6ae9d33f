//! Palisade's analytics: real-time figures, metrics history, charts and the security
//! posture.
//!
//! ```text
//! metrics registry ─► realtime sampler (every few s) ─► /api/v1/metrics/realtime
//!  (check, proxy,        │                            └► live bus, `metrics` topic
//!   ingest counters)     └► live deltas ─┐
//! events, threats ─► roll-up worker ─────┴─► analytics_counts (minute, hour)
//!   (by id watermark)      └► hourly top keys ─► analytics_top
//!                                               ▼
//!        query: timeseries, overview (exact), trends, top ─► /api/v1/analytics/*
//! PostureFacts (from the binary) + store ─► posture checks ─► posture_runs ─► /api/v1/posture
//! ```
//!
//! [`Analytics::start`] starts the three supervised tasks (sampler, roll-up worker,
//! posture schedule) under the pipeline's supervisor; the API reads through
//! [`Analytics`], [`query`] and [`posture::Posture`].

#![warn(missing_docs)]

pub mod config;
pub mod posture;
pub mod query;
pub mod realtime;
mod rollup;

use std::sync::Arc;

use palisade_core::supervisor::Supervisor;
use palisade_live::Bus;
use palisade_store::{SharedStore, StoreError};
use tokio::task::JoinHandle;

pub use config::AnalyticsConfig;
pub use posture::{Posture, PostureFacts};
pub use realtime::{Realtime, RealtimeFigures, RealtimeInputs};

/// Whether the database is ready (migrated): the workers wait for it.
pub type Ready = Arc<dyn Fn() -> bool + Send + Sync>;

/// Why an analytics operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No posture check has this id.
    #[error("no posture check '{0}'")]
    UnknownCheck(String),
}

/// What [`Analytics::start`] needs.
pub struct AnalyticsSetup {
    /// `[analytics]`.
    pub config: AnalyticsConfig,
    /// The store.
    pub store: SharedStore,
    /// The live feed.
    pub bus: Arc<Bus>,
    /// Sources and the writer queue, for ingest lag.
    pub inputs: RealtimeInputs,
    /// The facts posture checks look at.
    pub facts: Arc<dyn PostureFacts>,
    /// Whether the database is ready.
    pub ready: Ready,
}

/// The running analytics component, shared with the API.
pub struct Analytics {
    /// The latest real-time figures.
    pub realtime: Arc<Realtime>,
    /// The posture checks.
    pub posture: Arc<Posture>,
    config: AnalyticsConfig,
}

impl Analytics {
    /// Starts the sampler, the roll-up worker and (unless switched off) the posture
    /// schedule under `supervisor`, each stopping at its shutdown.
    pub fn start(
        setup: AnalyticsSetup,
        supervisor: &Supervisor,
    ) -> (Arc<Analytics>, Vec<JoinHandle<()>>) {
        let AnalyticsSetup {
            config,
            store,
            bus,
            inputs,
            facts,
            ready,
        } = setup;
        let realtime = Arc::new(Realtime::new(inputs));
        let posture = Arc::new(Posture::new(
            posture::checks::all(),
            facts,
            store.clone(),
            &config,
        ));
        let mut tasks = Vec::new();
        let sampler = realtime::Sampler {
            realtime: realtime.clone(),
            bus,
            store: store.clone(),
            every: config.sample_every.to_std(),
            window: config.realtime_window.to_std(),
        };
        let shutdown = supervisor.shutdown();
        tasks.push(supervisor.spawn("analytics-realtime", move || {
            sampler.clone().run(shutdown.clone())
        }));
        let worker = rollup::RollupWorker {
            store,
            config: config.clone(),
            ready: ready.clone(),
        };
        let shutdown = supervisor.shutdown();
        tasks.push(supervisor.spawn("analytics-rollup", move || {
            worker.clone().run(shutdown.clone())
        }));
        if let Some(every) = config.posture_every.0 {
            let (p, shutdown) = (posture.clone(), supervisor.shutdown());
            tasks.push(supervisor.spawn("posture-schedule", move || {
                p.clone()
                    .schedule(every.to_std(), ready.clone(), shutdown.clone())
            }));
        }
        (
            Arc::new(Analytics {
                realtime,
                posture,
                config,
            }),
            tasks,
        )
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &AnalyticsConfig {
        &self.config
    }
}
