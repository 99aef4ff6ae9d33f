//! One bucket: the state of one scenario for one group key, and how an event fills it.
//!
//! A bucket is a few integers on log time: a leaky bucket keeps its "theoretical arrival
//! time" (the GCRA form of a leaky bucket: `tat = max(tat, t) + interval`, level =
//! `(tat - t) / interval`), so it needs no timer, no queue of events and no goroutine
//! (CrowdSec runs one per bucket), and leaking is computed, never performed. Evidence
//! (event ids, samples, distinct values) lives in a separately allocated [`Extra`] that
//! most one-event buckets never get.

use crate::scenario::BucketSpec;

/// Marks "no event id" in [`Bucket::first_id`].
pub(crate) const NO_ID: i64 = i64::MIN;

/// Evidence and distinct values, allocated only for buckets that need them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extra {
    /// The last event ids, a ring once full.
    pub ids: Vec<i64>,
    /// Where the next id goes once `ids` is full.
    pub ids_next: u32,
    /// Sample values, first seen first.
    pub samples: Vec<Box<str>>,
    /// Distinct values counted: (keyed hash, last seen µs).
    pub distinct: Vec<(u64, i64)>,
}

impl Extra {
    /// Adds an id, overwriting the oldest once `max` are kept.
    pub(crate) fn push_id(&mut self, id: i64, max: usize) {
        if max == 0 {
            return;
        }
        if self.ids.len() < max {
            self.ids.push(id);
        } else if let Some(slot) = self.ids.get_mut(self.ids_next as usize % max) {
            *slot = id;
            self.ids_next = ((self.ids_next as usize + 1) % max) as u32;
        }
    }

    /// The ids oldest first.
    pub(crate) fn ids_in_order(&self) -> Vec<i64> {
        let split = (self.ids_next as usize).min(self.ids.len());
        let (a, b) = self.ids.split_at(split);
        b.iter().chain(a).copied().collect()
    }
}

/// What one event did to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pour {
    /// Older than the bucket's latest event by more than the tolerance: not counted.
    Late,
    /// The key is in its blackhole after an overflow: counted as suppressed only.
    Suppressed,
    /// A value already counted (distinct buckets): recorded, not poured.
    Duplicate,
    /// Poured without overflowing.
    Poured,
    /// Poured and overflowed: the caller reports, then calls [`Bucket::reset_after`].
    Overflow,
}

/// The state of one scenario for one key.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// Leaky: theoretical arrival time (µs) — empty when `<= now`. Counter: window start.
    pub anchor: i64,
    /// First event of the current episode (µs).
    pub first_ts: i64,
    /// Latest event seen (µs); later events older than this by more than the tolerance
    /// are late.
    pub last_ts: i64,
    /// No alert before this (µs): the blackhole after an overflow.
    pub quiet_until: i64,
    /// Id of the episode's first event, so one-event buckets need no [`Extra`].
    pub first_id: i64,
    /// Matching events in the current episode (duplicates included).
    pub events: u32,
    /// Counted events (distinct values for distinct buckets) in the episode or window.
    pub counted: u32,
    /// Events dropped during the blackhole since the last overflow.
    pub suppressed: u32,
    /// Evidence, when there is any.
    pub extra: Option<Box<Extra>>,
}

/// Inputs of one pour that do not belong to the bucket.
pub(crate) struct PourArgs {
    /// Event time (µs).
    pub t: i64,
    /// How late (µs) an event may be and still count.
    pub tolerance: i64,
    /// Distinct value hash, for distinct scenarios.
    pub distinct: Option<u64>,
    /// How long a distinct value stays counted (µs).
    pub horizon: i64,
    /// Upper bound of the distinct set (values needed to overflow, at least 1).
    pub distinct_cap: usize,
}

impl Bucket {
    /// An empty bucket first touched at `t`.
    pub(crate) fn new(t: i64) -> Bucket {
        Bucket {
            anchor: t,
            first_ts: t,
            last_ts: t,
            quiet_until: i64::MIN,
            first_id: NO_ID,
            events: 0,
            counted: 0,
            suppressed: 0,
            extra: None,
        }
    }

    /// Whether the bucket holds nothing worth keeping at `now`: drained (or its window
    /// over) and out of its blackhole.
    pub(crate) fn expired(&self, spec: &BucketSpec, now: i64) -> bool {
        self.quiet_until <= now
            && match *spec {
                BucketSpec::Leaky { .. } => self.anchor <= now,
                BucketSpec::Trigger => true,
                BucketSpec::Counter { window_us, .. } => {
                    self.anchor.saturating_add(window_us) <= now
                }
            }
    }

    /// Pours one event.
    pub(crate) fn pour(&mut self, spec: &BucketSpec, a: &PourArgs) -> Pour {
        if a.t < self.last_ts.saturating_sub(a.tolerance) {
            return Pour::Late;
        }
        // Within the tolerance, a late event counts as if it came with the latest one, so
        // reordering never makes a bucket look fuller than the in-order stream would.
        let t = a.t.max(self.last_ts);
        self.last_ts = t;
        if self.quiet_until > t {
            self.suppressed = self.suppressed.saturating_add(1);
            return Pour::Suppressed;
        }
        // A new episode when the previous one left nothing behind.
        let idle = match *spec {
            BucketSpec::Leaky { .. } => self.anchor <= t && self.events > 0,
            BucketSpec::Counter { window_us, .. } => {
                self.events > 0 && t >= self.anchor.saturating_add(window_us)
            }
            BucketSpec::Trigger => false,
        };
        if idle {
            self.start_episode(t);
        }
        if self.events == 0 {
            self.first_ts = t;
            if matches!(spec, BucketSpec::Counter { .. }) {
                self.anchor = t;
            }
        }
        self.events = self.events.saturating_add(1);
        if let Some(h) = a.distinct {
            let ex = self.extra.get_or_insert_with(Box::default);
            match ex.distinct.iter_mut().find(|(v, _)| *v == h) {
                Some((_, seen)) if t.saturating_sub(*seen) < a.horizon => {
                    *seen = t;
                    return Pour::Duplicate;
                }
                Some((_, seen)) => *seen = t,
                None => {
                    if ex.distinct.len() >= a.distinct_cap {
                        // Forget the value seen longest ago: it is the first to leak.
                        if let Some(oldest) = ex
                            .distinct
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, (_, s))| *s)
                            .map(|(i, _)| i)
                        {
                            ex.distinct.swap_remove(oldest);
                        }
                    }
                    if ex.distinct.capacity() == 0 {
                        // Most buckets see one value: do not pay for four.
                        ex.distinct.reserve_exact(1);
                    }
                    ex.distinct.push((h, t));
                }
            }
        }
        self.counted = self.counted.saturating_add(1);
        let overflow = match *spec {
            BucketSpec::Leaky {
                capacity,
                interval_us,
            } => {
                self.anchor = self.anchor.max(t).saturating_add(interval_us);
                self.anchor - t > interval_us.saturating_mul(i64::from(capacity))
            }
            BucketSpec::Trigger => true,
            BucketSpec::Counter { threshold, .. } => self.counted >= threshold,
        };
        if overflow {
            Pour::Overflow
        } else {
            Pour::Poured
        }
    }

    /// Empties the bucket after an overflow and starts its blackhole.
    pub(crate) fn reset_after(&mut self, t: i64, blackhole: i64) {
        self.start_episode(t);
        self.anchor = t;
        self.quiet_until = t.saturating_add(blackhole);
        self.suppressed = 0;
        self.extra = None;
    }

    fn start_episode(&mut self, t: i64) {
        self.first_ts = t;
        self.first_id = NO_ID;
        self.events = 0;
        self.counted = 0;
        if let Some(ex) = self.extra.as_deref_mut() {
            ex.ids.clear();
            ex.ids_next = 0;
            ex.samples.clear();
            ex.distinct.clear();
        }
    }

    /// The episode's event ids, oldest first.
    pub(crate) fn ids(&self) -> Vec<i64> {
        match &self.extra {
            Some(ex) if !ex.ids.is_empty() => ex.ids_in_order(),
            _ if self.first_id != NO_ID => vec![self.first_id],
            _ => Vec::new(),
        }
    }

    /// Records an event id as evidence, allocating [`Extra`] only from the second one.
    pub(crate) fn record_id(&mut self, id: i64, max: usize) {
        if self.first_id == NO_ID && self.extra.as_ref().is_none_or(|e| e.ids.is_empty()) {
            self.first_id = id;
            return;
        }
        let first = self.first_id;
        let ex = self.extra.get_or_insert_with(Box::default);
        if ex.ids.is_empty() && first != NO_ID {
            ex.push_id(first, max);
        }
        ex.push_id(id, max);
    }

    /// Whether another sample fits.
    pub(crate) fn wants_sample(&self, max: usize) -> bool {
        self.extra.as_ref().is_none_or(|e| e.samples.len() < max)
    }

    /// Keeps a sample value unless already kept.
    pub(crate) fn add_sample(&mut self, v: &str) {
        let ex = self.extra.get_or_insert_with(Box::default);
        if !ex.samples.iter().any(|s| **s == *v) {
            if ex.samples.capacity() == 0 {
                ex.samples.reserve_exact(1);
            }
            ex.samples.push(v.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn args(t: i64) -> PourArgs {
        PourArgs {
            t,
            tolerance: 10 * S,
            distinct: None,
            horizon: 60 * S,
            distinct_cap: 16,
        }
    }

    fn leaky(capacity: u32, interval_s: i64) -> BucketSpec {
        BucketSpec::Leaky {
            capacity,
            interval_us: interval_s * S,
        }
    }

    #[test]
    fn leaky_overflows_on_capacity_plus_one_burst() {
        let spec = leaky(3, 10);
        let mut b = Bucket::new(0);
        for i in 0..3 {
            assert_eq!(b.pour(&spec, &args(i * S)), Pour::Poured);
        }
        assert_eq!(b.pour(&spec, &args(3 * S)), Pour::Overflow);
    }

    #[test]
    fn leaky_at_the_leak_rate_never_overflows() {
        let spec = leaky(2, 10);
        let mut b = Bucket::new(0);
        for i in 0..1000 {
            assert_eq!(b.pour(&spec, &args(i * 10 * S)), Pour::Poured, "{i}");
        }
        assert!(b.expired(&spec, 1000 * 10 * S));
        assert!(!b.expired(&spec, 999 * 10 * S));
    }

    #[test]
    fn reordering_within_tolerance_does_not_change_the_outcome() {
        let spec = leaky(4, 10);
        // In order: 5 events in 4 s overflow.
        let mut ordered = Bucket::new(0);
        let outs: Vec<Pour> = [0, 1, 2, 3, 4]
            .iter()
            .map(|t| ordered.pour(&spec, &args(t * S)))
            .collect();
        let mut shuffled = Bucket::new(0);
        let outs2: Vec<Pour> = [4, 0, 3, 1, 2]
            .iter()
            .map(|t| shuffled.pour(&spec, &args(t * S)))
            .collect();
        assert_eq!(outs.last(), Some(&Pour::Overflow));
        assert_eq!(outs2.last(), Some(&Pour::Overflow));
        assert_eq!(outs2.iter().filter(|p| **p == Pour::Overflow).count(), 1);
        // Beyond the tolerance, a straggler is dropped.
        let mut b = Bucket::new(0);
        b.pour(&spec, &args(100 * S));
        assert_eq!(b.pour(&spec, &args(50 * S)), Pour::Late);
    }

    #[test]
    fn blackhole_then_new_episode() {
        let spec = BucketSpec::Trigger;
        let mut b = Bucket::new(0);
        assert_eq!(b.pour(&spec, &args(0)), Pour::Overflow);
        b.reset_after(0, 60 * S);
        assert_eq!(b.pour(&spec, &args(30 * S)), Pour::Suppressed);
        assert_eq!(b.suppressed, 1);
        assert!(!b.expired(&spec, 59 * S));
        assert!(b.expired(&spec, 60 * S));
        assert_eq!(b.pour(&spec, &args(61 * S)), Pour::Overflow);
    }

    #[test]
    fn distinct_counts_values_once_within_the_horizon() {
        let spec = leaky(2, 100);
        let mut b = Bucket::new(0);
        let mut a = args(0);
        for (t, v, want) in [
            (0, 1, Pour::Poured),
            (1, 1, Pour::Duplicate),
            (2, 2, Pour::Poured),
            (3, 2, Pour::Duplicate),
            (4, 3, Pour::Overflow),
        ] {
            a.t = t * S;
            a.distinct = Some(v);
            assert_eq!(b.pour(&spec, &a), want, "t={t}");
        }
        assert_eq!(b.events, 5);
        assert_eq!(b.counted, 3);
    }

    #[test]
    fn distinct_set_is_bounded() {
        let spec = leaky(100_000, 1_000);
        let mut b = Bucket::new(0);
        let mut a = args(0);
        a.distinct_cap = 8;
        for v in 0..1000u64 {
            a.t = v as i64;
            a.distinct = Some(v);
            b.pour(&spec, &a);
        }
        assert_eq!(b.extra.as_ref().unwrap().distinct.len(), 8);
        assert_eq!(b.counted, 1000);
    }

    #[test]
    fn counter_counts_in_a_fixed_window() {
        let spec = BucketSpec::Counter {
            window_us: 60 * S,
            threshold: 3,
        };
        let mut b = Bucket::new(0);
        assert_eq!(b.pour(&spec, &args(0)), Pour::Poured);
        assert_eq!(b.pour(&spec, &args(30 * S)), Pour::Poured);
        // The window closed: a new one starts with this event.
        assert_eq!(b.pour(&spec, &args(61 * S)), Pour::Poured);
        assert_eq!(b.first_ts, 61 * S);
        assert_eq!(b.pour(&spec, &args(62 * S)), Pour::Poured);
        assert_eq!(b.pour(&spec, &args(63 * S)), Pour::Overflow);
    }

    #[test]
    fn ids_ring_keeps_the_last_ones_in_order() {
        let mut b = Bucket::new(0);
        b.record_id(1, 3);
        assert!(b.extra.is_none());
        assert_eq!(b.ids(), vec![1]);
        for id in 2..=5 {
            b.record_id(id, 3);
        }
        assert_eq!(b.ids(), vec![3, 4, 5]);
    }
}
