//! Alerts and notifications, a component under the pipeline.
//!
//! ```text
//! ThreatRecorder ─(stored threats, bounded, waits)─► stage.rs: rules → one hit per
//!   (rule, group key) → AlertStore::record_alert_hits (open / update / reopen /
//!   absorb) ─► live `alerts` topic, activity feed
//! notify.rs: alerts whose notification is due (group wait, group interval, repeat
//!   interval, resolved) ─► durable queue (alert_deliveries), one row per channel
//! delivery.rs: claim (leased) ─► channel/{webhook,slack}.rs ─► delivered | retry with
//!   backoff + jitter / Retry-After | given up after ~3 days; circuit breaker per channel
//! activity.rs: alert changes, failed jobs, new decisions, settings changes, sources
//!   down/up ─► the `activities` table and live topic (in ~2 s batches)
//! ```
//!
//! Every task runs under the pipeline's [`Supervisor`] with its [`Shutdown`]; the
//! stage keeps its queue across restarts ([`SharedReceiver`]) and, at shutdown, takes
//! what the recorder still hands over before it stops.
//!
//! [`Shutdown`]: palisade_core::Shutdown

#![warn(missing_docs)]

use std::sync::Arc;

use palisade_core::supervisor::{SharedReceiver, Supervisor};
use palisade_core::threat::StoredThreat;
use palisade_jobs::{JobEvents, SecretSource};
use palisade_live::Bus;
use palisade_store::SharedStore;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

pub mod activity;
pub mod backoff;
pub mod breaker;
pub mod channel;
mod config;
pub mod delivery;
pub mod notify;
pub mod payload;
pub mod rule;
pub mod rules;
pub mod stage;

pub use activity::Activities;
pub use channel::{Channel, ChannelSpec, Message, SendError};
pub use config::AlertsConfig;
pub use payload::{Notification, NotifyEvent};
pub use rule::{GroupField, RuleError, RuleSpec};
pub use stage::AlertMessage;

/// What the alerts component needs from the process.
pub struct AlertsSetup {
    /// `[alerts]`.
    pub config: AlertsConfig,
    /// The store (rules, channels, alerts, queue, activities).
    pub store: SharedStore,
    /// The live feed (`alerts`, `activities` topics).
    pub bus: Arc<Bus>,
    /// Where webhook signing secrets are opened (the secrets store and its keyring).
    pub secrets: Option<Arc<dyn SecretSource>>,
    /// Job events, for `job.failed` activities.
    pub job_events: Option<JobEvents>,
    /// The process's sources, for `source.down` / `source.up` activities.
    pub sources: Option<palisade_sources::SourceRegistry>,
}

/// The receiving end of the stored-threat feed, made before the pipeline is built
/// (its sender goes into the recorder's observers) and handed to [`start`].
pub struct ThreatFeed(SharedReceiver<Arc<[StoredThreat]>>);

/// A bounded channel for the recorder's stored threats: the sender for
/// `ThreatOutlets::observers`, the feed for [`start`].
pub fn threat_feed(config: &AlertsConfig) -> (mpsc::Sender<Arc<[StoredThreat]>>, ThreatFeed) {
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    (tx, ThreatFeed(SharedReceiver::new(rx)))
}

/// What the tasks share.
pub(crate) struct Context {
    pub(crate) config: AlertsConfig,
    pub(crate) store: SharedStore,
    pub(crate) bus: Arc<Bus>,
    pub(crate) activities: Activities,
    pub(crate) secrets: Option<Arc<dyn SecretSource>>,
    pub(crate) wake_notifier: Notify,
    pub(crate) wake_delivery: Notify,
}

/// Starts the rule stage, the notifier, the delivery task and the job-failure relay
/// under `supervisor`. With `[alerts] enabled = false` only the activity relay runs
/// (the feed is still taken, so the recorder never waits on it).
pub fn start(setup: AlertsSetup, feed: ThreatFeed, supervisor: &Supervisor) -> Vec<JoinHandle<()>> {
    start_parts(setup, feed, supervisor, true)
}

/// The alerts component of an API node in a scale-out topology: only the rule stage
/// over the threats this node records (`/check`, proxies), so that they open alerts
/// too. The notifier, the delivery task and the activity relays run on the workers
/// (the notification queue is shared through the store, claimed with a lease).
pub fn start_rules_only(
    setup: AlertsSetup,
    feed: ThreatFeed,
    supervisor: &Supervisor,
) -> Vec<JoinHandle<()>> {
    start_parts(setup, feed, supervisor, false)
}

fn start_parts(
    setup: AlertsSetup,
    feed: ThreatFeed,
    supervisor: &Supervisor,
    deliver: bool,
) -> Vec<JoinHandle<()>> {
    let activities = Activities::new(setup.store.clone(), Some(setup.bus.clone()));
    let ctx = Arc::new(Context {
        config: setup.config,
        store: setup.store,
        bus: setup.bus,
        activities: activities.clone(),
        secrets: setup.secrets,
        wake_notifier: Notify::new(),
        wake_delivery: Notify::new(),
    });
    // Activities are flushed to the live feed in batches on every node that makes them.
    let mut tasks = vec![activity::flush_live(
        ctx.bus.clone(),
        ctx.config.activity_every.to_std(),
        supervisor,
    )];
    if deliver {
        if let Some(registry) = setup.sources {
            tasks.push(activity::relay_sources(
                activities.clone(),
                registry,
                supervisor,
            ));
        }
        if let Some(events) = setup.job_events {
            tasks.push(activity::relay_job_failures(
                activities.clone(),
                events,
                supervisor,
            ));
        }
        tasks.push(activity::relay_decisions(
            activities,
            ctx.config.activity_every.to_std(),
            supervisor,
        ));
    }
    let ThreatFeed(rx) = feed;
    if !ctx.config.enabled {
        let shutdown = supervisor.shutdown();
        tasks.push(supervisor.spawn("alerts-stage", move || {
            let (rx, mut shutdown) = (rx.clone(), shutdown.clone());
            async move {
                let mut rx = rx.lock().await;
                loop {
                    tokio::select! {
                        got = rx.recv() => if got.is_none() { return },
                        _ = shutdown.recv() => return,
                    }
                }
            }
        }));
        return tasks;
    }
    let shutdown = supervisor.shutdown();
    let c = ctx.clone();
    tasks.push(supervisor.spawn("alerts-stage", move || {
        stage::run(c.clone(), rx.clone(), shutdown.clone())
    }));
    if !deliver {
        return tasks;
    }
    let shutdown = supervisor.shutdown();
    let c = ctx.clone();
    tasks.push(supervisor.spawn("alerts-notifier", move || {
        notify::run(c.clone(), shutdown.clone())
    }));
    let shutdown = supervisor.shutdown();
    let c = ctx;
    tasks.push(supervisor.spawn("alerts-delivery", move || {
        delivery::run(c.clone(), shutdown.clone())
    }));
    tasks
}
