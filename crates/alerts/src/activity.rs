//! The activity feed: notable changes people should see in order (alert changes, job
//! failures, decisions, settings), readable by analysts unlike the admin-only audit
//! log. Each entry is stored, then published on the live `activities` topic.

use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_core::job::JobState;
use palisade_core::supervisor::Supervisor;
use palisade_jobs::{JobEventBody, JobEvents};
use palisade_live::{Bus, Topic};
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
            bus.publish(Topic::Activities, &stored);
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
