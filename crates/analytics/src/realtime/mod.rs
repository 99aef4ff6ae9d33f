//! Real-time figures: a supervised task reads the metrics registry every few seconds
//! ([`sample::Sample`]), computes rates and latency quantiles over the configured window
//! from the oldest reading in it to the newest, keeps the result for
//! `GET /api/v1/metrics/realtime`, publishes it on the live feed (`metrics` topic), and
//! adds what the live counters gained since its last write to the roll-ups (requests by
//! front and outcome, latency buckets), so that the same counters give both the live
//! tiles and their history.

pub mod process;
pub mod sample;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use palisade_core::metrics::{HistogramSnapshot, registry};
use palisade_core::{Shutdown, Timestamp};
use palisade_live::{Bus, Topic};
use palisade_sources::SourceRegistry;
use palisade_store::SharedStore;
use serde::Serialize;

use sample::{Sample, Window, live_deltas};

/// Requests per second, by front.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RequestRates {
    /// The three fronts together (a request logged by a proxy that also asked
    /// `/api/v1/check` counts twice).
    pub total: f64,
    /// Judged by `/api/v1/check` (nginx `auth_request`, Traefik, Envoy, Caddy).
    pub check: f64,
    /// Through the protecting proxies.
    pub proxy: f64,
    /// HTTP events ingested (logs, imports, pushes).
    pub http_events: f64,
}

/// Latency of one front over the window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LatencyFigures {
    /// Requests in the window.
    pub requests: u64,
    /// Median, in milliseconds (interpolated in its histogram bucket); null without
    /// requests.
    pub p50_ms: Option<f64>,
    /// 99th percentile, in milliseconds; null without requests.
    pub p99_ms: Option<f64>,
}

impl LatencyFigures {
    fn of(h: Option<&HistogramSnapshot>) -> LatencyFigures {
        let ms = |q: f64| h.and_then(|h| h.quantile(q)).map(|s| s * 1000.0);
        LatencyFigures {
            requests: h.map_or(0, HistogramSnapshot::count),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
        }
    }
}

/// Latency of both fronts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Latencies {
    /// `/api/v1/check`, as its HTTP route measures it.
    pub check: LatencyFigures,
    /// The protecting proxies, request head to response head, upstream included.
    pub proxy: LatencyFigures,
}

/// One source's lag.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SourceLag {
    /// The source's name.
    pub name: String,
    /// `file`, `syslog`, …
    pub kind: String,
    /// `running`, `waiting`, `error`, …
    pub state: String,
    /// Bytes of a file not yet read.
    pub lag_bytes: u64,
    /// Time of the newest event read.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<Timestamp>,
}

/// How far ingest is behind.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IngestLag {
    /// Batches waiting for the store writer.
    pub queue_depth: i64,
    /// Batches the writer's queue holds at most (sources wait beyond).
    pub queue_capacity: usize,
    /// Each source's lag.
    pub sources: Vec<SourceLag>,
}

/// The process itself.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProcessFigures {
    /// CPU used over the window, in percent of one core (null where `/proc` is absent).
    pub cpu_percent: Option<f64>,
    /// Resident memory in bytes.
    pub memory_bytes: Option<u64>,
}

/// The real-time figures (`GET /api/v1/metrics/realtime`, `metrics` topic).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RealtimeFigures {
    /// When they were sampled.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Seconds the rates and quantiles cover.
    pub window_secs: f64,
    /// Requests per second.
    pub requests_per_sec: RequestRates,
    /// Requests refused (blocked or banned) per second by the check and the proxies.
    pub blocked_per_sec: f64,
    /// Threats found per second (live requests and ingested logs).
    pub threats_per_sec: f64,
    /// Events of every kind stored per second.
    pub events_per_sec: f64,
    /// Latency quantiles over the window.
    pub latency: Latencies,
    /// Ingest lag.
    pub ingest: IngestLag,
    /// Process CPU and memory.
    pub process: ProcessFigures,
}

/// What the sampler reads beside the registry.
#[derive(Clone)]
pub struct RealtimeInputs {
    /// Every source's live state.
    pub sources: SourceRegistry,
    /// The writer queue's capacity, in batches.
    pub queue_capacity: usize,
}

impl RealtimeFigures {
    fn new(w: &Window, latest: &Sample, inputs: &RealtimeInputs) -> RealtimeFigures {
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        RealtimeFigures {
            at: latest.ts,
            window_secs: round(w.secs),
            requests_per_sec: RequestRates {
                total: round(w.check + w.proxy + w.http_events),
                check: round(w.check),
                proxy: round(w.proxy),
                http_events: round(w.http_events),
            },
            blocked_per_sec: round(w.blocked),
            threats_per_sec: round(w.threats),
            events_per_sec: round(w.events),
            latency: Latencies {
                check: LatencyFigures::of(w.check_latency.as_ref()),
                proxy: LatencyFigures::of(w.proxy_latency.as_ref()),
            },
            ingest: IngestLag {
                queue_depth: latest.queue_depth,
                queue_capacity: inputs.queue_capacity,
                sources: inputs
                    .sources
                    .snapshot()
                    .into_iter()
                    .map(|s| SourceLag {
                        name: s.name,
                        kind: s.kind.to_owned(),
                        state: serde_json::to_value(s.state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        lag_bytes: s.lag_bytes,
                        last_event_at: s.last_event_at,
                    })
                    .collect(),
            },
            process: ProcessFigures {
                cpu_percent: w.cpu_percent.map(|c| (c * 10.0).round() / 10.0),
                memory_bytes: process::resident_bytes(),
            },
        }
    }
}

/// The latest figures, shared by the sampler and the API.
pub struct Realtime {
    latest: Mutex<Option<Arc<RealtimeFigures>>>,
    /// The reading taken at start, for figures before the sampler's first window.
    baseline: Sample,
    /// The reading the roll-ups were last written up to: kept here, not in the task,
    /// so that a sampler restarted after a panic neither adds what it had already
    /// written again nor loses what it had not.
    written: Mutex<Sample>,
    inputs: RealtimeInputs,
}

impl Realtime {
    /// Takes the baseline reading now.
    pub fn new(inputs: RealtimeInputs) -> Realtime {
        let baseline = Sample::take(registry());
        Realtime {
            latest: Mutex::new(None),
            written: Mutex::new(baseline.clone()),
            baseline,
            inputs,
        }
    }

    /// The latest figures; until the sampler's first window closes (a few seconds after
    /// start), figures since start computed now. `None` only in the very instant of
    /// the start.
    pub fn latest(&self) -> Option<Arc<RealtimeFigures>> {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        latest.or_else(|| {
            let now = Sample::take(registry());
            Window::between(&self.baseline, &now)
                .map(|w| Arc::new(RealtimeFigures::new(&w, &now, &self.inputs)))
        })
    }

    fn written(&self) -> Sample {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn mark_written(&self, sample: &Sample) {
        *self.written.lock().unwrap_or_else(PoisonError::into_inner) = sample.clone();
    }

    fn set(&self, figures: RealtimeFigures) -> Arc<RealtimeFigures> {
        let figures = Arc::new(figures);
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(figures.clone());
        figures
    }
}

/// Everything one sampler run needs.
#[derive(Clone)]
pub(crate) struct Sampler {
    pub realtime: Arc<Realtime>,
    pub bus: Arc<Bus>,
    pub store: SharedStore,
    pub every: Duration,
    pub window: Duration,
}

impl Sampler {
    /// Samples until shutdown; a last write of the live deltas at the end.
    pub async fn run(self, mut shutdown: Shutdown) {
        let r = registry();
        // The first run starts from the baseline; a run restarted after a panic from
        // the last reading it wrote.
        let mut written = self.realtime.written();
        let keep = (self.window.as_secs_f64() / self.every.as_secs_f64()).ceil() as usize + 1;
        let mut ring: VecDeque<Sample> = VecDeque::with_capacity(keep.min(4096) + 1);
        ring.push_back(written.clone());
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = shutdown.recv() => true,
            };
            let now = Sample::take(r);
            if ring.len() >= keep.max(2) {
                ring.pop_front();
            }
            if let Some(oldest) = ring.front()
                && let Some(w) = Window::between(oldest, &now)
            {
                let figures =
                    self.realtime
                        .set(RealtimeFigures::new(&w, &now, &self.realtime.inputs));
                if !stopping {
                    self.bus.publish(Topic::Metrics, &*figures);
                }
            }
            // What grew since the last successful write goes into the current minute;
            // after a failed write it stays pending and goes with the next one.
            let deltas = live_deltas(&written, &now);
            if deltas.is_empty() {
                written = now.clone();
                self.realtime.mark_written(&written);
            } else {
                match self.store.add_rollups(now.ts, &deltas).await {
                    Ok(()) => {
                        written = now.clone();
                        self.realtime.mark_written(&written);
                    }
                    Err(error) => {
                        tracing::warn!(message = "Cannot store the live metric roll-ups yet; keeping them for the next sample.", %error);
                    }
                }
            }
            ring.push_back(now);
            if stopping {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::ShutdownTrigger;
    use palisade_live::BusConfig;
    use palisade_store::{CountQuery, Series};

    async fn live_requests(store: &SharedStore) -> u64 {
        store
            .count_exact(&CountQuery {
                series: Series::Requests,
                from: Timestamp::now().add_micros(-3_600_000_000),
                to: Timestamp::now().add_micros(60_000_000),
                filters: vec![],
                group: None,
                limit: None,
                offset: 0,
            })
            .await
            .unwrap()
            .first()
            .map_or(0, |c| c.count)
    }

    async fn until(store: &SharedStore, want: u64) -> u64 {
        let mut got = 0;
        for _ in 0..200 {
            got = live_requests(store).await;
            if got >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        got
    }

    /// A sampler restarted (after a panic) must not add again what the one before it
    /// wrote: the live roll-ups would count those requests twice.
    #[tokio::test]
    async fn a_restarted_sampler_adds_each_request_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://t.db", dir.path()).unwrap();
        store.migrate().await.unwrap();
        let realtime = Arc::new(Realtime::new(RealtimeInputs {
            sources: SourceRegistry::default(),
            queue_capacity: 4,
        }));
        let sampler = Sampler {
            realtime: realtime.clone(),
            bus: Arc::new(Bus::new(BusConfig::default())),
            store: store.clone(),
            every: Duration::from_millis(20),
            window: Duration::from_millis(100),
        };
        let allow = registry().counter(
            sample::names::CHECK_DECISIONS,
            "Decisions of /api/v1/check.",
            &["decision"],
            &["allow"],
        );
        allow.add(5);
        let first = ShutdownTrigger::new();
        let run = tokio::spawn(sampler.clone().run(first.subscribe()));
        assert_eq!(until(&store, 5).await, 5);
        first.trigger();
        run.await.unwrap();
        // The second run (as the supervisor starts it) sees 3 more.
        allow.add(3);
        let second = ShutdownTrigger::new();
        let run = tokio::spawn(sampler.run(second.subscribe()));
        assert_eq!(until(&store, 8).await, 8);
        tokio::time::sleep(Duration::from_millis(100)).await;
        second.trigger();
        run.await.unwrap();
        assert_eq!(live_requests(&store).await, 8, "nothing counted twice");
        assert!(realtime.latest().is_some());
    }
}
