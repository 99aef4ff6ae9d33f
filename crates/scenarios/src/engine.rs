//! The scenario engine: events in, alerts out, state bounded.
//!
//! Each event is offered only to the scenarios whose filters accept its kind; a scenario
//! that passes its filter computes a fixed-size group key (masked address + keyed hash of
//! the other fields) and pours into that key's bucket. Nothing is allocated for events
//! that no scenario counts, and buckets are created, touched, expired and evicted in
//! constant time. All time is log time (`Event::ts`), so replaying old logs gives the
//! alerts a live run would have given.

use std::sync::Arc;
use std::time::Duration;

use palisade_core::decision::{DecisionKind, DecisionTarget};
use palisade_core::metrics::Counter;
use palisade_core::{Event, Timestamp};

use crate::alert::{Alert, Decision};
use crate::bucket::{Bucket, Pour, PourArgs};
use crate::field::{Field, push_capped, render_net};
use crate::filter::{ALL_KINDS, decode_path};
use crate::hash::Seed;
use crate::metrics::Meters;
use crate::scenario::{BucketSpec, DecisionScope, Scenario, ScenarioSet};
use crate::table::{GroupKey, Table};

/// Number of [`palisade_core::EventKind`] variants.
const KINDS: usize = 5;

/// Longest `uri` copied into an alert.
const MAX_URI_CHARS: usize = 1_000;

/// Limits and timing of an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Most live buckets over all scenarios; the least recently touched is evicted
    /// beyond it. Each costs about 130 bytes (plus evidence for busy buckets).
    pub max_buckets: usize,
    /// How much older than its bucket's latest event an event may be and still count
    /// (events from several files or hosts interleave a little out of order).
    pub late_tolerance: Duration,
    /// How often, in log time, drained buckets are removed; zero leaves it to explicit
    /// [`ScenarioEngine::sweep`] calls.
    pub sweep_interval: Duration,
    /// Event ids kept per bucket as evidence (the most recent).
    pub max_evidence_ids: usize,
    /// Sample values kept per bucket.
    pub max_samples: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_buckets: 1_000_000,
            late_tolerance: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(60),
            max_evidence_ids: 50,
            max_samples: 10,
        }
    }
}

/// A scenario with what the hot path needs precomputed.
pub(crate) struct Compiled {
    pub sc: Scenario,
    /// How long a distinct value counts (µs).
    pub horizon: i64,
    /// Shortest time a bucket can outlive its latest event (µs): sweeps need not look at
    /// buckets touched more recently.
    pub min_life: i64,
    /// Bound of the distinct set.
    pub distinct_cap: usize,
    /// The scenario's fingerprint, checked when a snapshot is restored.
    pub fingerprint: u64,
    overflows: Arc<Counter>,
}

/// Counts that describe an engine's state, for status pages and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Live buckets.
    pub buckets: usize,
    /// Estimated bytes held by buckets (slots, index and evidence).
    pub approx_bytes: usize,
}

/// Runs scenarios over events. Not thread-safe by itself: one engine per ingest task, or
/// behind a mutex (observing is fast enough that contention is rarely a concern).
pub struct ScenarioEngine {
    pub(crate) scenarios: Vec<Compiled>,
    by_kind: [Vec<u16>; KINDS],
    pub(crate) table: Table,
    pub(crate) seed: Seed,
    pub(crate) config: EngineConfig,
    /// Latest event time seen (µs), `i64::MIN` before the first.
    pub(crate) now: i64,
    next_sweep: i64,
    pub(crate) meters: Meters,
    path_buf: String,
    scratch: String,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl ScenarioEngine {
    /// Builds an engine over a validated scenario set.
    pub fn new(set: ScenarioSet, config: EngineConfig) -> ScenarioEngine {
        let mut scenarios = Vec::with_capacity(set.scenarios.len());
        let mut by_kind: [Vec<u16>; KINDS] = Default::default();
        // More than u16::MAX scenarios cannot be indexed; such a set is not realistic.
        for (i, sc) in set
            .scenarios
            .into_iter()
            .take(usize::from(u16::MAX))
            .enumerate()
        {
            let kinds = sc.filters.iter().fold(0u8, |k, f| k | f.kinds()) & ALL_KINDS;
            for (k, list) in by_kind.iter_mut().enumerate() {
                if kinds & (1 << k) != 0 {
                    list.push(i as u16);
                }
            }
            let horizon = sc.bucket.horizon_us();
            let min_life = match sc.bucket {
                BucketSpec::Leaky { interval_us, .. } => interval_us,
                BucketSpec::Trigger | BucketSpec::Counter { .. } => 0,
            }
            .min(sc.blackhole_us.max(1));
            let distinct_cap = (sc.bucket.needed() as usize).clamp(1, 4_096);
            scenarios.push(Compiled {
                horizon,
                min_life,
                distinct_cap,
                fingerprint: sc.fingerprint(),
                overflows: Meters::overflows(&sc.name),
                sc,
            });
        }
        let seed = Seed::random();
        ScenarioEngine {
            table: Table::new(scenarios.len(), seed),
            scenarios,
            by_kind,
            seed,
            config,
            now: i64::MIN,
            next_sweep: i64::MIN,
            meters: Meters::new(),
            path_buf: String::new(),
            scratch: String::new(),
        }
    }

    /// The engine's scenarios, in load order.
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        self.scenarios.iter().map(|c| &c.sc)
    }

    /// The engine's scenarios with their overflows (alerts) so far, in load order. The
    /// counts are the process-wide `palisade_scenario_overflows_total` of each scenario.
    pub fn overflows(&self) -> impl Iterator<Item = (&Scenario, u64)> {
        self.scenarios.iter().map(|c| (&c.sc, c.overflows.get()))
    }

    /// The latest event time seen, the engine's clock.
    pub fn now(&self) -> Option<Timestamp> {
        (self.now != i64::MIN).then_some(Timestamp(self.now))
    }

    /// Live buckets and an estimate of their memory.
    pub fn stats(&self) -> EngineStats {
        let evidence: usize = self
            .table
            .iter()
            .filter_map(|s| s.bucket.extra.as_deref())
            .map(|e| {
                std::mem::size_of_val(e)
                    + e.ids.capacity() * 8
                    + e.distinct.capacity() * 16
                    + e.samples.capacity() * 16
                    + e.samples.iter().map(|s| s.len()).sum::<usize>()
            })
            .sum();
        EngineStats {
            buckets: self.table.len(),
            approx_bytes: self.table.heap_bytes() + evidence,
        }
    }

    /// Offers one event to every scenario; returns the alerts it caused (usually none,
    /// and then nothing is allocated). `event_id` is the stored event's id, kept as
    /// evidence.
    pub fn observe(&mut self, event: &Event, event_id: Option<i64>) -> Vec<Alert> {
        let mut out = Vec::new();
        self.observe_into(event, event_id, &mut out);
        out
    }

    /// Like [`ScenarioEngine::observe`], appending to `out` so a batch reuses one vector.
    pub fn observe_into(&mut self, event: &Event, event_id: Option<i64>, out: &mut Vec<Alert>) {
        let t = event.ts.as_micros();
        if t > self.now {
            self.now = t;
        }
        let interval = micros(self.config.sweep_interval);
        if interval > 0 && self.now >= self.next_sweep {
            if self.next_sweep != i64::MIN {
                self.sweep(Timestamp(self.now));
            }
            self.next_sweep = self.now.saturating_add(interval);
        }
        let kind = event.kind as usize;
        let Some(count) = self.by_kind.get(kind).map(Vec::len) else {
            return;
        };
        if count == 0 {
            return;
        }
        let mut path_buf = std::mem::take(&mut self.path_buf);
        let path = event.path.as_deref().map(|p| decode_path(p, &mut path_buf));
        for i in 0..count {
            let Some(si) = self.by_kind.get(kind).and_then(|l| l.get(i)).copied() else {
                break;
            };
            self.offer(si, event, path, event_id, out);
        }
        self.path_buf = path_buf;
    }

    fn offer(
        &mut self,
        si: u16,
        ev: &Event,
        path: Option<&str>,
        event_id: Option<i64>,
        out: &mut Vec<Alert>,
    ) {
        let Some(c) = self.scenarios.get(usize::from(si)) else {
            return;
        };
        let sc = &c.sc;
        if !sc.filters.iter().any(|f| f.matches(ev, path)) {
            return;
        }
        if sc.unless.iter().any(|f| f.matches(ev, path)) {
            return;
        }
        let Some(key) = group_key(sc, si, ev, &self.seed) else {
            return;
        };
        let distinct = match &sc.distinct {
            Some(f) => match f.hash(ev, &self.seed, 0) {
                Some(h) => Some(h),
                // An event without the counted field says nothing about distinct values.
                None => return,
            },
            None => None,
        };
        let t = ev.ts.as_micros();
        let idx = match self.table.get(&key) {
            Some(i) => i,
            None => {
                if self.table.len() >= self.config.max_buckets.max(1)
                    && let Some(old) = self.table.oldest()
                {
                    self.table.remove(old);
                    self.meters.evictions.inc();
                    self.meters.buckets.add(-1);
                }
                self.meters.buckets.add(1);
                self.table.insert(key, Bucket::new(t))
            }
        };
        let args = PourArgs {
            t,
            tolerance: micros(self.config.late_tolerance),
            distinct,
            horizon: c.horizon,
            distinct_cap: c.distinct_cap,
        };
        let max_ids = self.config.max_evidence_ids;
        let max_samples = self.config.max_samples;
        let Some(slot) = self.table.slot_mut(idx) else {
            return;
        };
        let b = &mut slot.bucket;
        let outcome = b.pour(&sc.bucket, &args);
        match outcome {
            Pour::Late => {
                self.meters.late.inc();
                return;
            }
            Pour::Suppressed => return,
            Pour::Duplicate | Pour::Poured | Pour::Overflow => {}
        }
        if let Some(id) = event_id {
            b.record_id(id, max_ids);
        }
        if let Some(f) = &sc.samples
            && max_samples > 0
            && b.wants_sample(max_samples)
        {
            self.scratch.clear();
            if f.render(ev, &mut self.scratch) {
                b.add_sample(&self.scratch);
            }
        }
        if outcome == Pour::Overflow {
            out.push(build_alert(sc, b, ev, event_id));
            b.reset_after(b.last_ts, sc.blackhole_us);
            c.overflows.inc();
        }
    }

    /// Removes buckets that have drained and left their blackhole by `now` (log time).
    /// Runs by itself every `sweep_interval` of log time; call it on a timer when events
    /// stop arriving. Returns how many buckets were removed.
    pub fn sweep(&mut self, now: Timestamp) -> usize {
        let now = now.as_micros();
        let mut total = 0;
        for (si, c) in self.scenarios.iter().enumerate() {
            let spec = c.sc.bucket;
            let removed = self
                .table
                .sweep(si as u16, now.saturating_sub(c.min_life), |b| {
                    b.expired(&spec, now)
                });
            total += removed;
        }
        self.meters.expired.add(total as u64);
        self.meters.buckets.add(-(total as i64));
        total
    }
}

impl Drop for ScenarioEngine {
    fn drop(&mut self) {
        self.meters.buckets.add(-(self.table.len() as i64));
    }
}

/// The bucket key of an event, or `None` when it lacks a group field.
fn group_key(sc: &Scenario, si: u16, ev: &Event, seed: &Seed) -> Option<GroupKey> {
    let mut ip = [0u8; 16];
    let mut h = 0u64;
    for (i, f) in sc.group_by.iter().enumerate() {
        if f.is_ip() {
            ip = f.ip_value(ev)?.to_le_bytes();
        } else {
            if f.str_value(ev).is_some_and(str::is_empty) {
                return None;
            }
            h = seed.mix(h, f.hash(ev, seed, i as u64 + 1)?);
        }
    }
    Some(GroupKey {
        ip,
        h,
        scenario: si,
    })
}

fn build_alert(sc: &Scenario, b: &Bucket, ev: &Event, event_id: Option<i64>) -> Alert {
    let mut group = Vec::with_capacity(sc.group_by.len());
    let mut network = None;
    for f in &sc.group_by {
        let mut v = String::new();
        f.render(ev, &mut v);
        if let Field::ClientIp { v4, v6 } = f
            && let Some(ip) = ev.client_ip
        {
            let full = match ip {
                std::net::IpAddr::V4(_) => *v4 >= 32,
                std::net::IpAddr::V6(_) => *v6 >= 128,
            };
            if !full {
                network = Some(render_net(ip, *v4, *v6));
            }
        }
        group.push((f.name(), v));
    }
    let client_ip = sc.ip_field().and(ev.client_ip);
    let decision = sc.decision.and_then(|d| {
        let ip = client_ip?;
        let target = match (d.scope, &network) {
            (DecisionScope::Range, Some(net)) => net.parse::<DecisionTarget>().ok()?,
            _ => DecisionTarget::ip(ip),
        };
        Some(Decision {
            kind: DecisionKind::Ban.as_str().into(),
            scope: d.scope,
            target,
            duration_secs: (d.duration_us / 1_000_000).max(1) as u64,
            until: Timestamp(b.last_ts.saturating_add(d.duration_us)),
        })
    });
    let uri = ev.uri().map(|u| {
        let mut s = String::new();
        push_capped(&mut s, &u, MAX_URI_CHARS);
        s
    });
    let samples = b
        .extra
        .as_ref()
        .map(|e| e.samples.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    Alert {
        scenario_id: sc.id,
        scenario: sc.name.clone(),
        category: sc.category.clone(),
        severity: sc.severity,
        group,
        client_ip,
        network,
        first_ts: Timestamp(b.first_ts),
        last_ts: Timestamp(b.last_ts),
        events: b.events,
        distinct: sc.distinct.as_ref().map(|_| b.counted),
        distinct_field: sc.distinct.as_ref().map(Field::name),
        event_ids: b.ids(),
        sample_field: sc.samples.as_ref().map(Field::name),
        samples,
        decision,
        event_id,
        method: ev.method.clone(),
        uri,
    }
}
