//! A small Prometheus registry shared by every stage.
//!
//! Hand-written rather than a metrics crate because Palisade needs only counters,
//! gauges and fixed-bucket histograms with labels, and lock-free updates on the hot
//! path (an atomic add; the label lookup is done once, when a handle is taken).
//!
//! The registry can also be read back in-process ([`Registry::counter_sum`],
//! [`Registry::gauge_sum`], [`Registry::histogram_snapshot`]): the real-time figures of
//! `/api/v1/metrics/realtime` are computed from the same counters Prometheus scrapes,
//! as sums over the label sets a [`Labels`] filter keeps, and windowed quantiles come
//! from the difference of two [`HistogramSnapshot`]s (what Prometheus's `rate()` and
//! `histogram_quantile()` do with two scrapes).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Adds a signed amount.
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Latency buckets in seconds, from 100 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A fixed-bucket histogram of seconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation in seconds.
    pub fn observe(&self, secs: f64) {
        if let Some(c) = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .and_then(|i| self.counts.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((secs.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// A copy of its buckets now (for windowed figures: see [`HistogramSnapshot`]).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let count = self.count();
        let in_buckets: u64 = counts.iter().sum();
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            counts,
            overflow: count.saturating_sub(in_buckets),
            sum_secs: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    /// An estimate of the quantile `q` (0..1) from the buckets: the upper bound of the
    /// bucket that holds it.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= want {
                return self.bounds.get(i).copied();
            }
        }
        self.bounds.last().copied()
    }
}

/// One label set of a metric, as a filter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    names: &'a [&'static str],
    values: &'a [String],
}

impl<'a> Labels<'a> {
    /// The value of label `name`, `None` when the metric has no such label.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.values.get(i))
            .map(String::as_str)
    }

    /// Whether label `name` has one of `values`.
    pub fn is_one_of(&self, name: &str, values: &[&str]) -> bool {
        self.get(name).is_some_and(|v| values.contains(&v))
    }
}

/// One label set of a metric, owned (see [`Registry::counter_values`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelValues {
    names: &'static [&'static str],
    values: Vec<String>,
}

impl LabelValues {
    /// The value of label `name`, `None` when the metric has no such label.
    pub fn get(&self, name: &str) -> Option<&str> {
        Labels {
            names: self.names,
            values: &self.values,
        }
        .get(name)
    }
}

/// A filter that keeps every label set.
pub fn all_labels(_: &Labels<'_>) -> bool {
    true
}

/// The buckets of a histogram at one moment (or the difference of two moments), for
/// quantiles over a window. `counts[i]` is the number of observations in
/// `(bounds[i-1], bounds[i]]` (not cumulative); `overflow` those above the last bound.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds of the buckets, in seconds, increasing.
    pub bounds: Vec<f64>,
    /// Observations per bucket.
    pub counts: Vec<u64>,
    /// Observations above the last bound.
    pub overflow: u64,
    /// Sum of the observations, in seconds.
    pub sum_secs: f64,
}

impl HistogramSnapshot {
    /// Observations in total.
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(self.overflow, |a, c| a.saturating_add(*c))
    }

    /// What was observed between `earlier` and `self` (counters only grow, so a bucket
    /// that went down, which cannot happen within one process, counts as zero).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        if earlier.bounds != self.bounds {
            return self.clone();
        }
        HistogramSnapshot {
            bounds: self.bounds.clone(),
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            overflow: self.overflow.saturating_sub(earlier.overflow),
            sum_secs: (self.sum_secs - earlier.sum_secs).max(0.0),
        }
    }

    /// The bucket-wise sum of two snapshots of histograms with the same bounds (two
    /// label sets); with different bounds, `self` alone.
    pub fn plus(&self, other: &HistogramSnapshot) -> HistogramSnapshot {
        if other.bounds != self.bounds {
            return self.clone();
        }
        HistogramSnapshot {
            bounds: self.bounds.clone(),
            counts: self
                .counts
                .iter()
                .zip(&other.counts)
                .map(|(a, b)| a.saturating_add(*b))
                .collect(),
            overflow: self.overflow.saturating_add(other.overflow),
            sum_secs: self.sum_secs + other.sum_secs,
        }
    }

    /// The quantile `q` (0..1) in seconds, interpolated linearly inside the bucket that
    /// holds it (as Prometheus's `histogram_quantile` does; the first bucket starts at
    /// 0). `None` without observations; the last bound when it lies above every bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 || !q.is_finite() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut seen = 0u64;
        let mut lower = 0.0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            let before = seen;
            seen = seen.saturating_add(*n);
            if *n > 0 && seen as f64 >= rank {
                let into = ((rank - before as f64) / *n as f64).clamp(0.0, 1.0);
                return Some(lower + (bound - lower) * into);
            }
            lower = *bound;
        }
        self.bounds.last().copied()
    }
}

enum Family {
    Counter(BTreeMap<Vec<String>, Arc<Counter>>),
    Gauge(BTreeMap<Vec<String>, Arc<Gauge>>),
    Histogram(BTreeMap<Vec<String>, Arc<Histogram>>),
}

struct Entry {
    help: &'static str,
    labels: &'static [&'static str],
    family: Family,
}

/// Every metric the process exposes, rendered on demand for `/metrics`.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<BTreeMap<&'static str, Entry>>,
}

/// The process-wide registry. Metrics are process facts, so one registry is right even
/// when several stores or servers run in one process (tests).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    fn with_entry<T>(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        make: impl FnOnce() -> Family,
        f: impl FnOnce(&mut Family) -> T,
    ) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(name).or_insert_with(|| Entry {
            help,
            labels,
            family: make(),
        });
        f(&mut entry.family)
    }

    /// A counter handle for one label combination (`values` in the order of `labels`).
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        values: &[&str],
    ) -> Arc<Counter> {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        self.with_entry(
            name,
            help,
            labels,
            || Family::Counter(BTreeMap::new()),
            |f| match f {
                Family::Counter(m) => m.entry(key).or_default().clone(),
                _ => Arc::new(Counter::default()),
            },
        )
    }

    /// A gauge handle for one label combination.
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        values: &[&str],
    ) -> Arc<Gauge> {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        self.with_entry(
            name,
            help,
            labels,
            || Family::Gauge(BTreeMap::new()),
            |f| match f {
                Family::Gauge(m) => m.entry(key).or_default().clone(),
                _ => Arc::new(Gauge::default()),
            },
        )
    }

    /// A latency histogram handle for one label combination.
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        values: &[&str],
    ) -> Arc<Histogram> {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        self.with_entry(
            name,
            help,
            labels,
            || Family::Histogram(BTreeMap::new()),
            |f| match f {
                Family::Histogram(m) => m
                    .entry(key)
                    .or_insert_with(|| Arc::new(Histogram::new(LATENCY_BUCKETS)))
                    .clone(),
                _ => Arc::new(Histogram::new(LATENCY_BUCKETS)),
            },
        )
    }

    /// The sum of a counter over the label sets `keep` accepts (0 when the counter was
    /// never registered): e.g. every `palisade_check_decisions_total` whose `decision`
    /// is `block` or `ban`.
    pub fn counter_sum(&self, name: &str, keep: impl Fn(&Labels<'_>) -> bool) -> u64 {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(name) {
            Some(Entry {
                labels: names,
                family: Family::Counter(m),
                ..
            }) => m
                .iter()
                .filter(|(values, _)| keep(&Labels { names, values }))
                .map(|(_, c)| c.get())
                .fold(0u64, u64::saturating_add),
            _ => 0,
        }
    }

    /// Every label set of a counter with its value (empty when never registered): for
    /// figures kept per label set, such as requests by proxy and outcome.
    pub fn counter_values(&self, name: &str) -> Vec<(LabelValues, u64)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(name) {
            Some(Entry {
                labels: names,
                family: Family::Counter(m),
                ..
            }) => m
                .iter()
                .map(|(values, c)| {
                    (
                        LabelValues {
                            names,
                            values: values.clone(),
                        },
                        c.get(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The sum of a gauge over the label sets `keep` accepts (0 when never registered).
    pub fn gauge_sum(&self, name: &str, keep: impl Fn(&Labels<'_>) -> bool) -> i64 {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(name) {
            Some(Entry {
                labels: names,
                family: Family::Gauge(m),
                ..
            }) => m
                .iter()
                .filter(|(values, _)| keep(&Labels { names, values }))
                .map(|(_, g)| g.get())
                .fold(0i64, i64::saturating_add),
            _ => 0,
        }
    }

    /// The buckets of a histogram summed over the label sets `keep` accepts, `None` when
    /// the histogram was never registered or no label set matched.
    pub fn histogram_snapshot(
        &self,
        name: &str,
        keep: impl Fn(&Labels<'_>) -> bool,
    ) -> Option<HistogramSnapshot> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(Entry {
            labels: names,
            family: Family::Histogram(m),
            ..
        }) = entries.get(name)
        else {
            return None;
        };
        m.iter()
            .filter(|(values, _)| keep(&Labels { names, values }))
            .map(|(_, h)| h.snapshot())
            .reduce(|a, b| a.plus(&b))
    }

    /// Renders the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::with_capacity(4096);
        for (name, e) in entries.iter() {
            let kind = match e.family {
                Family::Counter(_) => "counter",
                Family::Gauge(_) => "gauge",
                Family::Histogram(_) => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {}", e.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            match &e.family {
                Family::Counter(m) => {
                    for (vals, c) in m {
                        let _ = writeln!(out, "{name}{} {}", labels(e.labels, vals, None), c.get());
                    }
                }
                Family::Gauge(m) => {
                    for (vals, g) in m {
                        let _ = writeln!(out, "{name}{} {}", labels(e.labels, vals, None), g.get());
                    }
                }
                Family::Histogram(m) => {
                    for (vals, h) in m {
                        let mut cumulative = 0;
                        for (i, b) in h.bounds.iter().enumerate() {
                            cumulative += h.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
                            let le = format!("{b}");
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {cumulative}",
                                labels(e.labels, vals, Some(&le))
                            );
                        }
                        let count = h.count();
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            labels(e.labels, vals, Some("+Inf"))
                        );
                        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                        let _ = writeln!(out, "{name}_sum{} {sum}", labels(e.labels, vals, None));
                        let _ =
                            writeln!(out, "{name}_count{} {count}", labels(e.labels, vals, None));
                    }
                }
            }
        }
        out
    }
}

fn labels(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_kinds() {
        let r = Registry::default();
        r.counter("t_total", "a counter", &["k"], &["a\"b"]).add(3);
        r.gauge("t_gauge", "a gauge", &[], &[]).set(-2);
        let h = r.histogram("t_seconds", "a histogram", &["route"], &["/x"]);
        h.observe(0.0003);
        h.observe(20.0);
        let text = r.render();
        assert!(text.contains("t_total{k=\"a\\\"b\"} 3"), "{text}");
        assert!(text.contains("t_gauge -2"));
        assert!(text.contains("t_seconds_bucket{route=\"/x\",le=\"0.0005\"} 1"));
        assert!(text.contains("t_seconds_bucket{route=\"/x\",le=\"+Inf\"} 2"));
        assert!(text.contains("t_seconds_count{route=\"/x\"} 2"));
        assert_eq!(h.quantile(0.5), Some(0.0005));
    }

    #[test]
    fn sums_over_filtered_label_sets() {
        let r = Registry::default();
        r.counter("d_total", "d", &["decision"], &["allow"]).add(5);
        r.counter("d_total", "d", &["decision"], &["block"]).add(2);
        r.counter("d_total", "d", &["decision"], &["ban"]).add(1);
        assert_eq!(r.counter_sum("d_total", all_labels), 8);
        assert_eq!(
            r.counter_sum("d_total", |l| l.is_one_of("decision", &["block", "ban"])),
            3
        );
        assert_eq!(r.counter_sum("missing_total", all_labels), 0);
        assert_eq!(r.counter_sum("d_total", |l| l.get("other").is_some()), 0);
        let mut each = r.counter_values("d_total");
        each.sort();
        let flat: Vec<(Option<&str>, u64)> =
            each.iter().map(|(l, v)| (l.get("decision"), *v)).collect();
        assert_eq!(
            flat,
            vec![(Some("allow"), 5), (Some("ban"), 1), (Some("block"), 2)]
        );
        assert!(r.counter_values("missing_total").is_empty());
        r.gauge("q", "q", &["k"], &["a"]).set(4);
        r.gauge("q", "q", &["k"], &["b"]).set(-1);
        assert_eq!(r.gauge_sum("q", all_labels), 3);
        // A name registered as another kind reads as nothing.
        assert_eq!(r.gauge_sum("d_total", all_labels), 0);
    }

    #[test]
    fn histogram_snapshots_sum_subtract_and_interpolate() {
        let r = Registry::default();
        let check = r.histogram("lat", "l", &["route"], &["/api/v1/check"]);
        let other = r.histogram("lat", "l", &["route"], &["/api/v1/events"]);
        for _ in 0..10 {
            check.observe(0.0008); // (0.0005, 0.001]
        }
        other.observe(3.0);
        let before = r
            .histogram_snapshot("lat", |l| l.get("route") == Some("/api/v1/check"))
            .unwrap();
        assert_eq!(before.count(), 10);
        for _ in 0..90 {
            check.observe(0.002); // (0.001, 0.0025]
        }
        check.observe(60.0); // above every bound
        let after = r
            .histogram_snapshot("lat", |l| l.get("route") == Some("/api/v1/check"))
            .unwrap();
        let window = after.since(&before);
        assert_eq!(window.count(), 91);
        assert_eq!(window.overflow, 1);
        // 45.5 of 90 observations into (0.001, 0.0025]: about halfway.
        let p50 = window.quantile(0.5).unwrap();
        assert!((p50 - 0.001_758).abs() < 1e-5, "{p50}");
        // The 99th percentile still falls in that bucket (rank 90.09 of 91 is past it:
        // the overflow answers the last bound).
        assert_eq!(window.quantile(1.0), Some(10.0));
        let p99 = window.quantile(0.98).unwrap();
        assert!(p99 > 0.001 && p99 <= 0.0025, "{p99}");
        // Summing both routes sees the other one's observation too.
        let all = r.histogram_snapshot("lat", all_labels).unwrap();
        assert_eq!(all.count(), 102);
        assert!(r.histogram_snapshot("lat", |_| false).is_none());
        assert!(r.histogram_snapshot("nothing", all_labels).is_none());
        assert_eq!(window.since(&window).quantile(0.5), None);
        assert!((all.sum_secs - (0.008 + 0.18 + 60.0 + 3.0)).abs() < 1e-3);
    }

    #[test]
    fn same_labels_share_a_handle() {
        let r = Registry::default();
        r.counter("c_total", "c", &["k"], &["x"]).inc();
        r.counter("c_total", "c", &["k"], &["x"]).inc();
        assert_eq!(r.counter("c_total", "c", &["k"], &["x"]).get(), 2);
    }
}
