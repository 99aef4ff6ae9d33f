//! One reading of the metrics registry, and what two readings say: rates and latency
//! quantiles over the time between them, and the live changes the roll-ups keep.
//!
//! The counters read here are defined (once) by the components that update them; this
//! module only names them, in [`names`], so that a renamed metric breaks one place.

use std::collections::BTreeMap;
use std::time::Instant;

use palisade_core::Timestamp;
use palisade_core::metrics::{HistogramSnapshot, LabelValues, Labels, Registry, all_labels};
use palisade_store::{RollupDelta, Series};

use super::process;

/// The metrics the real-time figures are computed from, by the name their owners
/// register them under.
pub mod names {
    /// `/api/v1/check` decisions, label `decision` (api `routes/check.rs`).
    pub const CHECK_DECISIONS: &str = "palisade_check_decisions_total";
    /// Proxied requests, labels `proxy` and `outcome` (proxy `lib.rs`).
    pub const PROXY_REQUESTS: &str = "palisade_proxy_requests_total";
    /// Proxy latency, label `proxy` (proxy `lib.rs`).
    pub const PROXY_LATENCY: &str = "palisade_proxy_request_duration_seconds";
    /// HTTP latency by route (api `middleware.rs`); `/api/v1/check*` routes are the
    /// decision endpoint.
    pub const HTTP_LATENCY: &str = "palisade_http_request_duration_seconds";
    /// Threats handed to the recorder, label `outcome` (pipeline `recorder.rs`).
    pub const THREATS: &str = "palisade_threats_recorded_total";
    /// Events durably stored (sources `writer.rs`).
    pub const EVENTS: &str = "palisade_ingested_events_total";
    /// Stored HTTP events inspected (pipeline `stages/inspector.rs`): every HTTP event
    /// ingested is inspected once.
    pub const HTTP_EVENTS: &str = "palisade_ingest_inspected_events_total";
    /// Batches waiting for the store writer (sources `writer.rs`).
    pub const QUEUE_DEPTH: &str = "palisade_ingest_queue_depth";
}

/// Outcomes that refused the request.
const BLOCKED: &[&str] = &["block", "ban"];

fn is_check_route(l: &Labels<'_>) -> bool {
    l.get("route")
        .is_some_and(|r| r.starts_with("/api/v1/check"))
}

/// One reading of the registry (and of the process's CPU time).
#[derive(Debug, Clone)]
pub struct Sample {
    /// When, on the monotonic clock (for rates).
    pub at: Instant,
    /// When, on the wall clock (for roll-up buckets).
    pub ts: Timestamp,
    /// Check decisions by label set.
    pub check: Vec<(LabelValues, u64)>,
    /// Proxy requests by label set.
    pub proxy: Vec<(LabelValues, u64)>,
    /// Threats queued for recording.
    pub threats: u64,
    /// Events stored.
    pub events: u64,
    /// HTTP events stored (and inspected).
    pub http_events: u64,
    /// Latency of check routes, all summed.
    pub check_latency: Option<HistogramSnapshot>,
    /// Latency of every proxy, summed.
    pub proxy_latency: Option<HistogramSnapshot>,
    /// Batches in the writer's queue.
    pub queue_depth: i64,
    /// Process CPU seconds.
    pub cpu_secs: Option<f64>,
}

fn sum(values: &[(LabelValues, u64)]) -> u64 {
    values
        .iter()
        .map(|(_, v)| v)
        .fold(0, |a, v| a.saturating_add(*v))
}

fn blocked(values: &[(LabelValues, u64)], label: &str) -> u64 {
    values
        .iter()
        .filter(|(l, _)| l.get(label).is_some_and(|v| BLOCKED.contains(&v)))
        .map(|(_, v)| v)
        .fold(0, |a, v| a.saturating_add(*v))
}

impl Sample {
    /// Reads the registry now.
    pub fn take(r: &Registry) -> Sample {
        Sample {
            at: Instant::now(),
            ts: Timestamp::now(),
            check: r.counter_values(names::CHECK_DECISIONS),
            proxy: r.counter_values(names::PROXY_REQUESTS),
            threats: r.counter_sum(names::THREATS, |l| l.get("outcome") == Some("queued")),
            events: r.counter_sum(names::EVENTS, all_labels),
            http_events: r.counter_sum(names::HTTP_EVENTS, all_labels),
            check_latency: r.histogram_snapshot(names::HTTP_LATENCY, is_check_route),
            proxy_latency: r.histogram_snapshot(names::PROXY_LATENCY, all_labels),
            queue_depth: r.gauge_sum(names::QUEUE_DEPTH, all_labels),
            cpu_secs: process::cpu_seconds(),
        }
    }

    /// Requests judged by `/api/v1/check`.
    pub fn check_total(&self) -> u64 {
        sum(&self.check)
    }

    /// Requests through the protecting proxies.
    pub fn proxy_total(&self) -> u64 {
        sum(&self.proxy)
    }

    /// Requests refused (blocked or banned) by either.
    pub fn blocked_total(&self) -> u64 {
        blocked(&self.check, "decision").saturating_add(blocked(&self.proxy, "outcome"))
    }
}

/// What happened between two samples (`earlier` first), as rates per second.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Seconds between the samples.
    pub secs: f64,
    /// Check decisions per second.
    pub check: f64,
    /// Proxied requests per second.
    pub proxy: f64,
    /// HTTP events stored per second.
    pub http_events: f64,
    /// Events stored per second.
    pub events: f64,
    /// Refused requests per second.
    pub blocked: f64,
    /// Threats per second.
    pub threats: f64,
    /// Check latency over the window.
    pub check_latency: Option<HistogramSnapshot>,
    /// Proxy latency over the window.
    pub proxy_latency: Option<HistogramSnapshot>,
    /// CPU use in percent of one core, over the window.
    pub cpu_percent: Option<f64>,
}

fn histogram_since(
    now: &Option<HistogramSnapshot>,
    then: &Option<HistogramSnapshot>,
) -> Option<HistogramSnapshot> {
    match (now, then) {
        (Some(n), Some(t)) => Some(n.since(t)),
        (Some(n), None) => Some(n.clone()),
        _ => None,
    }
}

impl Window {
    /// The rates between `earlier` and `later`; `None` when no time passed.
    pub fn between(earlier: &Sample, later: &Sample) -> Option<Window> {
        let secs = later.at.checked_duration_since(earlier.at)?.as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
        Some(Window {
            secs,
            check: rate(later.check_total(), earlier.check_total()),
            proxy: rate(later.proxy_total(), earlier.proxy_total()),
            http_events: rate(later.http_events, earlier.http_events),
            events: rate(later.events, earlier.events),
            blocked: rate(later.blocked_total(), earlier.blocked_total()),
            threats: rate(later.threats, earlier.threats),
            check_latency: histogram_since(&later.check_latency, &earlier.check_latency),
            proxy_latency: histogram_since(&later.proxy_latency, &earlier.proxy_latency),
            cpu_percent: match (later.cpu_secs, earlier.cpu_secs) {
                (Some(n), Some(t)) => Some(((n - t).max(0.0) / secs) * 100.0),
                _ => None,
            },
        })
    }
}

/// The per-label-set growth of a counter between two readings.
fn growth(later: &[(LabelValues, u64)], earlier: &[(LabelValues, u64)]) -> Vec<(LabelValues, u64)> {
    let before: BTreeMap<&LabelValues, u64> = earlier.iter().map(|(l, v)| (l, *v)).collect();
    later
        .iter()
        .map(|(l, v)| {
            (
                l.clone(),
                v.saturating_sub(before.get(l).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, d)| *d > 0)
        .collect()
}

/// A latency bucket's upper bound as stored (`+Inf` for the overflow).
pub fn bound_label(bound: Option<f64>) -> String {
    bound.map_or_else(|| "+Inf".to_owned(), |b| format!("{b}"))
}

fn latency_deltas(front: &str, h: &HistogramSnapshot) -> impl Iterator<Item = RollupDelta> {
    let front = front.to_owned();
    h.bounds
        .iter()
        .map(|b| Some(*b))
        .zip(h.counts.iter().copied())
        .chain(std::iter::once((None, h.overflow)))
        .filter(|(_, n)| *n > 0)
        .map(move |(b, n)| RollupDelta {
            series: Series::Latency,
            dims: [front.clone(), bound_label(b), String::new()],
            value: n,
        })
        .collect::<Vec<_>>()
        .into_iter()
}

/// What the live series of the roll-ups gained between two readings: requests by
/// front, proxy and outcome, and latency histogram buckets by front.
pub fn live_deltas(earlier: &Sample, later: &Sample) -> Vec<RollupDelta> {
    let mut out = Vec::new();
    for (l, n) in growth(&later.check, &earlier.check) {
        out.push(RollupDelta {
            series: Series::Requests,
            dims: [
                "check".to_owned(),
                String::new(),
                l.get("decision").unwrap_or("other").to_owned(),
            ],
            value: n,
        });
    }
    for (l, n) in growth(&later.proxy, &earlier.proxy) {
        out.push(RollupDelta {
            series: Series::Requests,
            dims: [
                "proxy".to_owned(),
                l.get("proxy").unwrap_or("").to_owned(),
                l.get("outcome").unwrap_or("other").to_owned(),
            ],
            value: n,
        });
    }
    if let Some(h) = histogram_since(&later.check_latency, &earlier.check_latency) {
        out.extend(latency_deltas("check", &h));
    }
    if let Some(h) = histogram_since(&later.proxy_latency, &earlier.proxy_latency) {
        out.extend(latency_deltas("proxy", &h));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A private registry with the metrics named as their owners name them.
    fn registry() -> Registry {
        Registry::default()
    }

    fn check(r: &Registry, decision: &str, n: u64) {
        r.counter(names::CHECK_DECISIONS, "d", &["decision"], &[decision])
            .add(n);
    }

    fn proxy(r: &Registry, name: &str, outcome: &str, n: u64) {
        r.counter(
            names::PROXY_REQUESTS,
            "p",
            &["proxy", "outcome"],
            &[name, outcome],
        )
        .add(n);
    }

    #[test]
    fn rates_and_quantiles_over_a_window() {
        let r = registry();
        check(&r, "allow", 10);
        let lat = r.histogram(
            names::HTTP_LATENCY,
            "l",
            &["method", "route", "status"],
            &["GET", "/api/v1/check", "200"],
        );
        let events = r.histogram(
            names::HTTP_LATENCY,
            "l",
            &["method", "route", "status"],
            &["GET", "/api/v1/events", "200"],
        );
        lat.observe(0.002);
        let mut first = Sample::take(&r);
        first.at = Instant::now() - Duration::from_secs(10);
        check(&r, "allow", 80);
        check(&r, "block", 15);
        check(&r, "ban", 5);
        proxy(&r, "web", "allow", 30);
        proxy(&r, "web", "block", 10);
        r.counter(names::THREATS, "t", &["outcome"], &["queued"])
            .add(20);
        r.counter(names::THREATS, "t", &["outcome"], &["dropped"])
            .add(7);
        for _ in 0..99 {
            lat.observe(0.0008);
        }
        lat.observe(2.0);
        events.observe(9.0);
        let second = Sample::take(&r);
        let w = Window::between(&first, &second).unwrap();
        assert!((w.secs - 10.0).abs() < 0.5, "{}", w.secs);
        let per_sec = |n: f64| n / w.secs;
        assert!((w.check - per_sec(100.0)).abs() < 1e-9);
        assert!((w.proxy - per_sec(40.0)).abs() < 1e-9);
        assert!((w.blocked - per_sec(30.0)).abs() < 1e-9);
        assert!((w.threats - per_sec(20.0)).abs() < 1e-9);
        let h = w.check_latency.unwrap();
        assert_eq!(h.count(), 100, "the events route is not the check");
        let p50 = h.quantile(0.5).unwrap();
        assert!(p50 > 0.0005 && p50 <= 0.001, "{p50}");
        let p99 = h.quantile(0.99).unwrap();
        assert!(p99 > 0.0005 && p99 <= 0.001, "{p99}");
        assert!(h.quantile(0.999).unwrap() >= 1.0);
        assert!(Window::between(&second, &first).is_none());
    }

    #[test]
    fn live_deltas_carry_what_grew_per_label_set() {
        let r = registry();
        check(&r, "allow", 3);
        let first = Sample::take(&r);
        check(&r, "allow", 2);
        check(&r, "detect", 1);
        proxy(&r, "shop", "ban", 4);
        r.histogram(names::PROXY_LATENCY, "l", &["proxy"], &["shop"])
            .observe(0.03);
        let second = Sample::take(&r);
        let mut deltas = live_deltas(&first, &second);
        deltas.sort_by(|a, b| a.dims.cmp(&b.dims));
        let flat: Vec<(Series, [&str; 3], u64)> = deltas
            .iter()
            .map(|d| {
                (
                    d.series,
                    [d.dims[0].as_str(), d.dims[1].as_str(), d.dims[2].as_str()],
                    d.value,
                )
            })
            .collect();
        assert_eq!(
            flat,
            vec![
                (Series::Requests, ["check", "", "allow"], 2),
                (Series::Requests, ["check", "", "detect"], 1),
                (Series::Latency, ["proxy", "0.05", ""], 1),
                (Series::Requests, ["proxy", "shop", "ban"], 4),
            ]
        );
        assert!(live_deltas(&second, &second).is_empty());
    }
}
