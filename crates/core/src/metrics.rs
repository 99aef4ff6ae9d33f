//! A small Prometheus registry shared by every stage.
//!
//! Hand-written rather than a metrics crate because Palisade needs only counters,
//! gauges and fixed-bucket histograms with labels, and lock-free updates on the hot
//! path (an atomic add; the label lookup is done once, when a handle is taken).

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
    fn same_labels_share_a_handle() {
        let r = Registry::default();
        r.counter("c_total", "c", &["k"], &["x"]).inc();
        r.counter("c_total", "c", &["k"], &["x"]).inc();
        assert_eq!(r.counter("c_total", "c", &["k"], &["x"]).get(), 2);
    }
}
