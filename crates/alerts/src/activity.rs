//! The activity feed: notable changes people should see in order (alert changes, job
//! failures, decisions, settings, reloads, sources going down and coming back),
//! readable by analysts unlike the admin-only audit log. Each entry is stored, then
//! queued for the live `activities` topic, which goes out in batches about every two
//! seconds ([`flush_live`]), each activity still its own message with its own `seq`.

use std::collections::HashSet;
use std::sync::Arc;

use palisade_core::Shutdown;
use palisade_core::Timestamp;
use palisade_core::job::JobState;
use palisade_core::supervisor::Supervisor;
use palisade_jobs::{JobEventBody, JobEvents};
use palisade_live::{Bus, Topic};
use palisade_sources::{SourceRegistry, SourceState};
use palisade_store::{Activity, NewActivity, SharedStore, StoreError};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Records activities: the store first (the feed is history), then the live bus.
#[derive(Clone)]
pub struct Activities {
    store: SharedStore,
    bus: Option<Arc<Bus>>,
}

impl Activities {
    /// Records into `store`, publishing on `bus` when there is one.
    pub fn new(store: SharedStore, bus: Option<Arc<Bus>>) -> Activities {
        Activities { store, bus }
    }

    /// Stores and publishes one activity.
    pub async fn record(
        &self,
        kind: &str,
        actor: Option<&str>,
        summary: String,
        detail: serde_json::Value,
    ) -> Result<Activity, StoreError> {
        let stored = self
            .store
            .insert_activity(&NewActivity {
                at: Timestamp::now(),
                kind: kind.to_owned(),
                actor: actor.map(str::to_owned),
                summary,
                detail,
            })
            .await?;
        if let Some(bus) = &self.bus {
            bus.publish_later(Topic::Activities, &stored);
        }
        Ok(stored)
    }

    /// [`Activities::record`] where failing to record must not fail the caller: the
    /// failure is logged.
    pub async fn note(
        &self,
        kind: &str,
        actor: Option<&str>,
        summary: String,
        detail: serde_json::Value,
    ) {
        if let Err(error) = self.record(kind, actor, summary, detail).await {
            tracing::warn!(message = "Cannot record an activity.", kind, %error);
        }
    }
}

impl Activities {
    /// [`Activities::note`] for relays that may run before the store is ready (its
    /// schema still migrating, the database not up yet): retried with backoff for up
    /// to two minutes, or until shutdown, rather than lost.
    pub async fn note_patiently(
        &self,
        kind: &str,
        summary: String,
        detail: serde_json::Value,
        shutdown: &mut Shutdown,
    ) {
        let started = std::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            match self
                .record(kind, None, summary.clone(), detail.clone())
                .await
            {
                Ok(_) => return,
                Err(error)
                    if started.elapsed() < std::time::Duration::from_secs(120)
                        && !shutdown.is_shutdown() =>
                {
                    tracing::debug!(message = "Cannot record an activity yet; retrying.", kind, %error);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.recv() => {}
                    }
                    wait = (wait * 2).min(std::time::Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::warn!(message = "Cannot record an activity.", kind, %error);
                    return;
                }
            }
        }
    }
}

/// Sends the activities queued on the live bus every `every` (supervised
/// `activities-live`), and what is left at shutdown.
pub fn flush_live(
    bus: Arc<Bus>,
    every: std::time::Duration,
    supervisor: &Supervisor,
) -> JoinHandle<()> {
    let shutdown = supervisor.shutdown();
    supervisor.spawn("activities-live", move || {
        let (bus, mut shutdown) = (bus.clone(), shutdown.clone());
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.recv() => {
                        bus.flush_later();
                        return;
                    }
                }
                bus.flush_later();
            }
        }
    })
}

/// Relays failed jobs from the job bus into the feed (supervised `activities-jobs`).
pub fn relay_job_failures(
    activities: Activities,
    events: JobEvents,
    supervisor: &Supervisor,
) -> JoinHandle<()> {
    let shutdown = supervisor.shutdown();
    supervisor.spawn("activities-jobs", move || {
        let (activities, mut rx, mut shutdown) =
            (activities.clone(), events.subscribe(), shutdown.clone());
        async move {
            loop {
                let event = tokio::select! {
                    e = rx.recv() => e,
                    _ = shutdown.recv() => return,
                };
                match event {
                    Ok(e) => {
                        if let JobEventBody::State {
                            state: JobState::Failed,
                            attempt,
                            error,
                        } = &e.body
                        {
                            activities
                                .note(
                                    "job.failed",
                                    None,
                                    format!("Job {} ({}) failed", e.job_id, e.kind),
                                    serde_json::json!({
                                        "job_id": e.job_id,
                                        "kind": e.kind,
                                        "attempt": attempt,
                                        "error": error,
                                    }),
                                )
                                .await;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(
                            message = "The activity feed missed job events.",
                            missed = n
                        );
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }
    })
}

/// Puts sources going down and coming back in the feed (supervised
/// `activities-sources`): a source entering the error state (a followed file gone, a
/// syslog listener that cannot bind, a Kafka client error) is one `source.down`; the
/// same source running again is one `source.up`. Only changes count — a source that
/// keeps failing, or a tail polling for its missing file, adds nothing — and sources
/// already down when this starts are reported once.
pub fn relay_sources(
    activities: Activities,
    registry: SourceRegistry,
    supervisor: &Supervisor,
) -> JoinHandle<()> {
    // Watching from here, before any task runs, so that no change is missed; a restart
    // of the task watches anew.
    let first = Arc::new(std::sync::Mutex::new(Some(registry.watch())));
    let already_down: Vec<(String, &'static str, String, Option<String>)> = registry
        .snapshot()
        .into_iter()
        .filter(|s| s.state == SourceState::Error)
        .map(|s| (s.name, s.kind, s.target, s.last_error))
        .collect();
    let already_down = Arc::new(std::sync::Mutex::new(already_down));
    let shutdown = supervisor.shutdown();
    supervisor.spawn("activities-sources", move || {
        let rx = first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| registry.watch());
        let start: Vec<_> = std::mem::take(
            &mut *already_down
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let (activities, mut shutdown) = (activities.clone(), shutdown.clone());
        async move {
            let mut rx = rx;
            let mut down: HashSet<String> = HashSet::new();
            for (name, kind, target, reason) in start {
                let (summary, detail) = source_down(&name, kind, &target, reason.as_deref());
                activities
                    .note_patiently("source.down", summary, detail, &mut shutdown)
                    .await;
                down.insert(name);
            }
            loop {
                let change = tokio::select! {
                    c = rx.recv() => c,
                    _ = shutdown.recv() => return,
                };
                match change {
                    Ok(c) => {
                        if c.to == SourceState::Error && !down.contains(&c.name) {
                            let (summary, detail) =
                                source_down(&c.name, c.kind, &c.target, c.reason.as_deref());
                            activities
                                .note_patiently("source.down", summary, detail, &mut shutdown)
                                .await;
                            down.insert(c.name);
                        } else if c.to == SourceState::Running && down.remove(&c.name) {
                            let detail = serde_json::json!({
                                "source": c.name,
                                "kind": c.kind,
                                "target": c.target,
                                "from": c.from.as_str(),
                            });
                            activities
                                .note_patiently(
                                    "source.up",
                                    format!("Source {} ({}) is back up", c.name, c.kind),
                                    detail,
                                    &mut shutdown,
                                )
                                .await;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(
                            message = "The activity feed missed source changes.",
                            missed = n
                        );
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }
    })
}

/// The words and facts of a `source.down` activity.
fn source_down(
    name: &str,
    kind: &str,
    target: &str,
    reason: Option<&str>,
) -> (String, serde_json::Value) {
    (
        match reason {
            Some(r) => format!("Source {name} ({kind}) is down: {r}"),
            None => format!("Source {name} ({kind}) is down"),
        },
        serde_json::json!({
            "source": name,
            "kind": kind,
            "target": target,
            "reason": reason,
        }),
    )
}

/// The setting holding the id of the last decision put in the feed.
const DECISIONS_SEEN: &str = "activities.decisions_seen_id";
/// Decisions named one by one in a `decision.added` activity.
const DECISIONS_NAMED: usize = 20;

/// Puts new decisions (bans and allow-list entries, from people, scenarios or the
/// WAF) in the feed (supervised `activities-decisions`): every `every`, decisions with
/// an id above the last one seen become one `decision.added` activity — one line for a
/// single ban, a count with the first twenty for a wave — so a scan banning thousands
/// of addresses does not bury the feed. The last id seen is kept in the store, so
/// decisions made while the service was down are reported at the next start.
pub fn relay_decisions(
    activities: Activities,
    every: std::time::Duration,
    supervisor: &Supervisor,
) -> JoinHandle<()> {
    let shutdown = supervisor.shutdown();
    supervisor.spawn("activities-decisions", move || {
        let (activities, mut shutdown) = (activities.clone(), shutdown.clone());
        async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.recv() => return,
                }
                if let Err(error) = decisions_pass(&activities).await {
                    tracing::debug!(message = "Cannot relay decisions to the activity feed yet.", %error);
                }
            }
        }
    })
}

async fn decisions_pass(activities: &Activities) -> Result<(), StoreError> {
    let store = &activities.store;
    let (highest, _, _) = store.decisions_fingerprint().await?;
    let seen = match store.setting(DECISIONS_SEEN).await? {
        Some(v) => v.parse::<i64>().unwrap_or(highest),
        None => {
            // First start: the feed begins now.
            store
                .put_setting(DECISIONS_SEEN, &highest.to_string())
                .await?;
            return Ok(());
        }
    };
    if highest <= seen {
        return Ok(());
    }
    let now = Timestamp::now();
    let page = store
        .query_decisions(&palisade_store::DecisionQuery {
            now,
            limit: DECISIONS_NAMED as u32,
            ..palisade_store::DecisionQuery::default()
        })
        .await?;
    let mut named: Vec<_> = page.items.into_iter().filter(|d| d.id > seen).collect();
    named.sort_by_key(|d| d.id);
    let count = highest - seen;
    let summary = match (count, named.first()) {
        (1, Some(d)) => format!(
            "{} {} ({}, {}) by {}",
            d.kind.as_str(),
            d.value,
            d.origin.as_str(),
            d.scenario,
            d.created_by
        ),
        (n, _) => format!("{n} decisions added"),
    };
    let detail = serde_json::json!({
        "count": count,
        "decisions": named.iter().map(|d| serde_json::json!({
            "id": d.id,
            "kind": d.kind,
            "value": d.value,
            "origin": d.origin,
            "scenario": d.scenario,
            "created_by": d.created_by,
        })).collect::<Vec<_>>(),
    });
    activities
        .record("decision.added", None, summary, detail)
        .await?;
    store
        .put_setting(DECISIONS_SEEN, &highest.to_string())
        .await?;
    Ok(())
}
