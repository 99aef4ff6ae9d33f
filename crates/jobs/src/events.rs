//! The internal bus of job events: state changes, progress, log lines and outputs, as
//! they happen, for the live feed (`/api/v1/ws` topics `jobs` and one job's log) to
//! subscribe to.
//!
//! A `tokio::sync::broadcast` channel with a fixed capacity: publishing never waits and
//! never grows memory; a subscriber that falls more than the capacity behind gets
//! `RecvError::Lagged(n)` and continues with the newest events (the store keeps every
//! log line and output, so a lagging reader can catch up from the API). Events are
//! shared (`Arc`), so many subscribers cost one copy.

use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_core::job::{JobState, LogLevel};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// How many events a subscriber may fall behind before it loses the oldest.
pub const EVENTS_CAPACITY: usize = 4096;

/// Something that happened to a job.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JobEvent {
    /// The job.
    pub job_id: i64,
    /// Its kind.
    pub kind: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// What.
    #[serde(flatten)]
    pub body: JobEventBody,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEventBody {
    /// The job moved to a state (enqueued, started, retried, finished).
    State {
        /// The new state.
        state: JobState,
        /// The attempt it concerns.
        attempt: u32,
        /// Why it failed, when it did.
        error: Option<String>,
    },
    /// Progress was reported.
    Progress {
        /// 0 to 100.
        progress: u8,
        /// What it is doing.
        message: Option<String>,
    },
    /// A log line was written.
    Log {
        /// The attempt that wrote it.
        attempt: u32,
        /// Its stream.
        level: LogLevel,
        /// The text.
        message: String,
    },
    /// A structured output was produced.
    Output {
        /// The attempt that produced it.
        attempt: u32,
        /// The value.
        #[schema(value_type = Object)]
        value: Value,
    },
}

/// The publisher. Cheap to clone; every clone publishes on the same bus.
#[derive(Debug, Clone)]
pub struct JobEvents {
    tx: broadcast::Sender<Arc<JobEvent>>,
}

impl Default for JobEvents {
    fn default() -> Self {
        JobEvents::new(EVENTS_CAPACITY)
    }
}

impl JobEvents {
    /// A bus keeping at most `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> JobEvents {
        JobEvents {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Publishes an event; never waits (nobody listening is fine).
    pub fn publish(&self, job_id: i64, kind: &str, body: JobEventBody) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(Arc::new(JobEvent {
            job_id,
            kind: kind.to_owned(),
            at: Timestamp::now(),
            body,
        }));
    }

    /// A new subscriber, seeing events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<JobEvent>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_events_and_laggards_lose_the_oldest() {
        let bus = JobEvents::new(2);
        bus.publish(
            1,
            "k",
            JobEventBody::Progress {
                progress: 1,
                message: None,
            },
        );
        let mut rx = bus.subscribe();
        for p in [10, 20, 30] {
            bus.publish(
                1,
                "k",
                JobEventBody::Progress {
                    progress: p,
                    message: None,
                },
            );
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        ));
        let next = rx.recv().await.unwrap();
        assert_eq!(
            next.body,
            JobEventBody::Progress {
                progress: 20,
                message: None
            }
        );
        let json = serde_json::to_value(&*next).unwrap();
        assert_eq!(json["type"], "progress");
        assert_eq!(json["job_id"], 1);
    }
}
