//! Beaconing: one host connecting to the same destination again and again at a regular
//! interval (malware checking in with its controller), told apart from people, whose
//! connections come at irregular times, and from bursts (a page load).
//!
//! Per `(originator, responder, port, transport)` the start times of the last
//! [`HISTORY`] flows are kept (sorted: flows finish out of order). A series is a beacon
//! when it has at least [`MIN_FLOWS`] flows whose gaps have a median of 10 s to 24 h and
//! vary little (coefficient of variation under [`MAX_CV`]). Name and time services that
//! poll by design (DNS, NTP, mDNS, DHCP, SSDP, NetBIOS, LLMNR) are left out. The series
//! table is capped; past it new series are not tracked (and counted).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::flow::FlowRecord;

/// Flow starts kept per series.
pub const HISTORY: usize = 16;
/// Flows needed before a series can be called a beacon.
pub const MIN_FLOWS: usize = 8;
/// Largest coefficient of variation of the gaps (standard deviation / mean).
pub const MAX_CV: f64 = 0.15;

/// A regular series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beacon {
    /// Flows in the series (up to [`HISTORY`]).
    pub flows: usize,
    /// Median gap between flow starts, seconds.
    pub interval_s: f64,
    /// Coefficient of variation of the gaps.
    pub cv: f64,
}

type SeriesKey = (IpAddr, IpAddr, u16, bool);

/// The series seen so far.
#[derive(Debug)]
pub struct BeaconTracker {
    series: HashMap<SeriesKey, Vec<i64>>,
    max_series: usize,
    untracked: u64,
}

impl BeaconTracker {
    /// A tracker following at most `max_series` series.
    pub fn new(max_series: usize) -> BeaconTracker {
        BeaconTracker {
            series: HashMap::new(),
            max_series,
            untracked: 0,
        }
    }

    /// Flows not followed because the table was full.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Adds a finished flow; `Some` when its series is (now) regular.
    pub fn observe(&mut self, f: &FlowRecord) -> Option<Beacon> {
        let tcp = match f.protocol.as_str() {
            "tcp" => true,
            "udp" => false,
            _ => return None,
        };
        if matches!(
            f.dst_port,
            53 | 67 | 68 | 123 | 137 | 138 | 1900 | 5353 | 5355
        ) {
            return None;
        }
        let key = (f.src_ip, f.dst_ip, f.dst_port, tcp);
        if !self.series.contains_key(&key) && self.series.len() >= self.max_series {
            self.untracked += 1;
            return None;
        }
        let starts = self.series.entry(key).or_default();
        match starts.binary_search(&f.start_us) {
            Ok(_) => return None,
            Err(at) => starts.insert(at, f.start_us),
        }
        if starts.len() > HISTORY {
            starts.remove(0);
        }
        regular(starts)
    }
}

/// The verdict on sorted start times.
fn regular(starts: &[i64]) -> Option<Beacon> {
    if starts.len() < MIN_FLOWS {
        return None;
    }
    let mut gaps: Vec<f64> = starts
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some((b - a) as f64 / 1e6),
            _ => None,
        })
        .collect();
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
    let cv = var.sqrt() / mean.max(f64::EPSILON);
    gaps.sort_by(f64::total_cmp);
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0.0);
    ((10.0..=86_400.0).contains(&median) && cv < MAX_CV).then_some(Beacon {
        flows: starts.len(),
        interval_s: median,
        cv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppInfo;
    use crate::flow::DirStats;

    fn flow(start_s: f64, dport: u16) -> FlowRecord {
        FlowRecord {
            start_us: (start_s * 1e6) as i64,
            end_us: (start_s * 1e6) as i64 + 200_000,
            protocol: "tcp".into(),
            src_ip: "10.0.0.5".parse().unwrap(),
            src_port: 40_000,
            dst_ip: "203.0.113.80".parse().unwrap(),
            dst_port: dport,
            orig: DirStats::default(),
            resp: DirStats::default(),
            state: "SF".into(),
            end_reason: "closed".into(),
            app: AppInfo::default(),
            src_mac: None,
            dst_mac: None,
        }
    }

    #[test]
    fn regular_check_ins_are_a_beacon_from_the_eighth() {
        let mut t = BeaconTracker::new(10);
        let jitter = [0.0, 1.5, -2.0, 0.7, -1.1, 2.2, -0.4, 1.0, -1.8, 0.3];
        let verdicts: Vec<bool> = jitter
            .iter()
            .enumerate()
            .map(|(i, j)| {
                t.observe(&flow(1000.0 + 60.0 * i as f64 + j, 443))
                    .is_some()
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                false, false, false, false, false, false, false, true, true, true
            ]
        );
        let b = t.observe(&flow(1000.0 + 600.0, 443)).unwrap();
        assert!((b.interval_s - 60.0).abs() < 3.0, "{b:?}");
    }

    #[test]
    fn people_bursts_and_polling_services_are_not() {
        let mut t = BeaconTracker::new(10);
        // Irregular: a person opening a site now and then.
        let mut at = 0.0;
        for gap in [5.0, 300.0, 12.0, 90.0, 33.0, 600.0, 7.0, 45.0, 200.0, 61.0] {
            at += gap;
            assert!(t.observe(&flow(at, 443)).is_none());
        }
        // A burst: 20 connections a few hundred ms apart (one page load).
        for i in 0..20 {
            assert!(t.observe(&flow(5000.0 + 0.3 * f64::from(i), 80)).is_none());
        }
        // NTP polls like clockwork, and is left out.
        for i in 0..20 {
            let mut f = flow(64.0 * f64::from(i), 123);
            f.protocol = "udp".into();
            assert!(t.observe(&f).is_none());
        }
        // Out-of-order finishes still sort into the series; a full table stops
        // following new series.
        let mut small = BeaconTracker::new(1);
        for i in (0..9).rev() {
            small.observe(&flow(30.0 * f64::from(i), 8443));
        }
        assert!(small.observe(&flow(270.0, 8443)).is_some());
        assert!(small.observe(&flow(0.0, 9999)).is_none());
        assert_eq!(small.untracked(), 1);
    }
}
