//! The engine's Prometheus metrics, taken from the process registry once per engine so
//! the hot path is a relaxed atomic add.

use std::sync::Arc;

use palisade_core::metrics::{Counter, Gauge, registry};

/// Handles for the engine-wide metrics.
pub(crate) struct Meters {
    /// Live buckets over every engine in the process.
    pub buckets: Arc<Gauge>,
    /// Buckets dropped because the cap was reached.
    pub evictions: Arc<Counter>,
    /// Buckets dropped because they had drained.
    pub expired: Arc<Counter>,
    /// Events older than their bucket by more than the tolerance.
    pub late: Arc<Counter>,
}

impl Meters {
    pub(crate) fn new() -> Meters {
        let r = registry();
        Meters {
            buckets: r.gauge(
                "palisade_scenario_buckets",
                "Live behaviour buckets (one per scenario and group key).",
                &[],
                &[],
            ),
            evictions: r.counter(
                "palisade_scenario_bucket_evictions_total",
                "Buckets evicted, least recently used first, because the bucket cap was reached.",
                &[],
                &[],
            ),
            expired: r.counter(
                "palisade_scenario_buckets_expired_total",
                "Buckets removed because they had leaked empty and were out of their blackhole.",
                &[],
                &[],
            ),
            late: r.counter(
                "palisade_scenario_late_events_total",
                "Events ignored by a bucket because they were older than its latest event by more than the tolerance.",
                &[],
                &[],
            ),
        }
    }

    /// The overflow counter of one scenario.
    pub(crate) fn overflows(scenario: &str) -> Arc<Counter> {
        registry().counter(
            "palisade_scenario_overflows_total",
            "Scenario overflows (alerts), by scenario.",
            &["scenario"],
            &[scenario],
        )
    }
}
