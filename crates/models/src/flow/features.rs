//! Flow features: what one finished flow looks like on its own, and what its
//! originator (and its responder) did in the window before it.
//!
//! Scans, floods and brute force are rarely visible in one flow: a SYN probe is a
//! one-packet unanswered flow like any lost connection. What gives them away is the
//! company a flow keeps, so besides the flow's own figures ([`FlowFeatures`] 0–17)
//! each flow carries per-source and per-destination window figures (18–27) read from
//! [`Windows`], which the flow is added to first. Training and serving compute them the
//! same way, in flow-start order, so the model sees at serving time what it saw in
//! training.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use palisade_flows::FlowRecord;
use palisade_flows::flow::tcp_flags;
use serde::{Deserialize, Serialize};

/// Number of features per flow.
pub const DIM: usize = 28;

/// Feature names, in vector order (evidence and the README use them).
pub const NAMES: [&str; DIM] = [
    "tcp",
    "udp",
    "icmp",
    "arp",
    "orig_packets",
    "resp_packets",
    "orig_payload",
    "resp_payload",
    "duration_ms",
    "unanswered",
    "state_s0",
    "state_rej",
    "state_sf",
    "state_rst",
    "syn_only",
    "no_syn_ack_flags",
    "login_port",
    "orig_bytes_per_packet",
    "src_flows",
    "src_distinct_ports",
    "src_distinct_hosts",
    "src_probe_share",
    "src_syn_only_share",
    "src_same_service",
    "dst_flows",
    "dst_distinct_sources",
    "dst_s0_share",
    "packets_per_s",
];

/// Indices of the window features (the unsupervised score watches these).
pub const WINDOW_FEATURES: [usize; 8] = [18, 19, 20, 21, 23, 24, 25, 27];

/// How window features are made; stored in the model file so serving uses the
/// settings the model was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlowFeatureSettings {
    /// Window length in seconds (packet time).
    pub window_s: u32,
    /// Most flows remembered per source or destination (older ones drop out first).
    pub per_key: usize,
    /// Most sources and destinations tracked at once (memory bound).
    pub max_keys: usize,
}

impl Default for FlowFeatureSettings {
    fn default() -> Self {
        FlowFeatureSettings {
            window_s: 60,
            per_key: 512,
            max_keys: 65_536,
        }
    }
}

impl FlowFeatureSettings {
    /// Whether the settings are usable (a file could say anything).
    pub fn valid(&self) -> bool {
        (1..=3600).contains(&self.window_s)
            && (1..=65_536).contains(&self.per_key)
            && (16..=10_000_000).contains(&self.max_keys)
    }
}

/// Ports of login services (password guessing targets).
fn login_port(p: u16) -> bool {
    matches!(
        p,
        21 | 22 | 23 | 110 | 143 | 389 | 445 | 1433 | 3306 | 3389 | 5432 | 5900
    )
}

fn ln(x: f64) -> f32 {
    x.max(0.0).ln_1p() as f32
}

fn flag(b: bool) -> f32 {
    if b { 1.0 } else { 0.0 }
}

/// The flow's own figures (features 0–17 and 27).
fn own(f: &FlowRecord, x: &mut [f32; DIM]) {
    let tcp = f.protocol == "tcp";
    x[0] = flag(tcp);
    x[1] = flag(f.protocol == "udp");
    x[2] = flag(f.protocol == "icmp" || f.protocol == "icmpv6");
    x[3] = flag(f.protocol == "arp");
    x[4] = ln(f.orig.packets as f64);
    x[5] = ln(f.resp.packets as f64);
    x[6] = ln(f.orig.payload_bytes as f64);
    x[7] = ln(f.resp.payload_bytes as f64);
    let dur_us = f.duration_us().max(0) as f64;
    x[8] = ln(dur_us / 1000.0);
    x[9] = flag(f.resp.packets == 0);
    let st = f.state.as_str();
    x[10] = flag(tcp && st == "S0");
    x[11] = flag(tcp && st == "REJ");
    x[12] = flag(tcp && st == "SF");
    x[13] = flag(tcp && st.starts_with("RST"));
    let o = f.orig.flags;
    x[14] = flag(tcp && o & tcp_flags::SYN != 0 && o & !(tcp_flags::SYN) == 0);
    x[15] = flag(tcp && o & (tcp_flags::SYN | tcp_flags::ACK) == 0);
    x[16] = flag(login_port(f.dst_port) && f.protocol == "tcp");
    x[17] = ln(if f.orig.packets > 0 {
        f.orig.bytes as f64 / f.orig.packets as f64
    } else {
        0.0
    });
    let packets = (f.orig.packets + f.resp.packets) as f64;
    x[27] = ln(packets / (dur_us / 1e6).max(0.001));
}

/// One remembered flow of a window.
#[derive(Debug, Clone, Copy)]
struct Seen {
    ts: i64,
    peer: IpAddr,
    port: u16,
    probe: bool,
    syn_only: bool,
    s0: bool,
}

/// The recent flows of one source (or destination) with distinct counts kept
/// incrementally, so a flow costs O(1) amortised whatever the window holds.
#[derive(Debug, Default)]
struct Window {
    seen: VecDeque<Seen>,
    peers: HashMap<IpAddr, u32>,
    ports: HashMap<u16, u32>,
    services: HashMap<(IpAddr, u16), u32>,
    probes: u32,
    syn_only: u32,
    s0: u32,
    last: i64,
}

fn dec<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K) {
    if let Some(n) = m.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            m.remove(&k);
        }
    }
}

impl Window {
    fn drop_front(&mut self) {
        if let Some(s) = self.seen.pop_front() {
            dec(&mut self.peers, s.peer);
            dec(&mut self.ports, s.port);
            dec(&mut self.services, (s.peer, s.port));
            self.probes -= u32::from(s.probe);
            self.syn_only -= u32::from(s.syn_only);
            self.s0 -= u32::from(s.s0);
        }
    }

    fn push(&mut self, s: Seen, horizon: i64, cap: usize) {
        while self.seen.front().is_some_and(|f| f.ts < horizon)
            || (self.seen.len() >= cap && !self.seen.is_empty())
        {
            self.drop_front();
        }
        *self.peers.entry(s.peer).or_default() += 1;
        *self.ports.entry(s.port).or_default() += 1;
        *self.services.entry((s.peer, s.port)).or_default() += 1;
        self.probes += u32::from(s.probe);
        self.syn_only += u32::from(s.syn_only);
        self.s0 += u32::from(s.s0);
        self.last = self.last.max(s.ts);
        self.seen.push_back(s);
    }
}

/// Per-source and per-destination windows over recent flows, bounded by
/// [`FlowFeatureSettings`]: at most `per_key` flows per address and `max_keys`
/// addresses per side (past it, addresses idle for a window go first, then the
/// least recently active).
#[derive(Debug)]
pub struct Windows {
    settings: FlowFeatureSettings,
    by_src: HashMap<IpAddr, Window>,
    by_dst: HashMap<IpAddr, Window>,
}

impl Windows {
    /// Empty windows.
    pub fn new(settings: FlowFeatureSettings) -> Windows {
        Windows {
            settings,
            by_src: HashMap::new(),
            by_dst: HashMap::new(),
        }
    }

    /// The settings the windows were made with.
    pub fn settings(&self) -> FlowFeatureSettings {
        self.settings
    }

    /// Addresses tracked (sources + destinations).
    pub fn len(&self) -> usize {
        self.by_src.len() + self.by_dst.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `seen` to the window of `key` (making room first when `key` is new, so the
    /// map stays within `max` addresses) and returns that window.
    fn push_into(
        map: &mut HashMap<IpAddr, Window>,
        key: IpAddr,
        seen: Seen,
        max: usize,
        horizon: i64,
        cap: usize,
    ) -> &Window {
        if !map.contains_key(&key) {
            Self::bound(map, max, horizon);
        }
        let w = map.entry(key).or_default();
        w.push(seen, horizon, cap);
        w
    }

    fn bound(map: &mut HashMap<IpAddr, Window>, max: usize, horizon: i64) {
        if map.len() < max {
            return;
        }
        map.retain(|_, w| w.last >= horizon);
        if map.len() >= max {
            // Still full of active addresses: keep the most recently active three quarters.
            let mut lasts: Vec<i64> = map.values().map(|w| w.last).collect();
            lasts.sort_unstable();
            if let Some(&cut) = lasts.get(lasts.len() / 4) {
                map.retain(|_, w| w.last > cut);
            }
        }
    }

    /// Adds `f` to its source's and destination's windows and returns its features.
    pub fn features(&mut self, f: &FlowRecord) -> [f32; DIM] {
        let mut x = [0.0f32; DIM];
        own(f, &mut x);
        let window_us = i64::from(self.settings.window_s) * 1_000_000;
        let horizon = f.start_us.saturating_sub(window_us);
        let (cap, max) = (self.settings.per_key, self.settings.max_keys);
        let probe = f.is_probe();
        let syn_only = x[14] > 0.0;
        let s0 = x[10] > 0.0;
        let seen = |peer| Seen {
            ts: f.start_us,
            peer,
            port: f.dst_port,
            probe,
            syn_only,
            s0,
        };
        let w = Self::push_into(
            &mut self.by_src,
            f.src_ip,
            seen(f.dst_ip),
            max,
            horizon,
            cap,
        );
        let n = w.seen.len() as f64;
        x[18] = ln(n);
        x[19] = ln(w.ports.len() as f64);
        x[20] = ln(w.peers.len() as f64);
        x[21] = (f64::from(w.probes) / n) as f32;
        x[22] = (f64::from(w.syn_only) / n) as f32;
        x[23] = ln(f64::from(
            w.services
                .get(&(f.dst_ip, f.dst_port))
                .copied()
                .unwrap_or(0),
        ));
        let d = Self::push_into(
            &mut self.by_dst,
            f.dst_ip,
            seen(f.src_ip),
            max,
            horizon,
            cap,
        );
        let n = d.seen.len() as f64;
        x[24] = ln(n);
        x[25] = ln(d.peers.len() as f64);
        x[26] = (f64::from(d.s0) / n) as f32;
        x
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use palisade_flows::flow::DirStats;

    /// A hand-made flow.
    pub(crate) fn flow(
        start_s: f64,
        src: &str,
        dst: &str,
        dport: u16,
        state: &str,
        orig: (u64, u64, u8),
        resp: (u64, u64),
    ) -> FlowRecord {
        let start_us = (start_s * 1e6) as i64;
        FlowRecord {
            start_us,
            end_us: start_us + 1000,
            protocol: "tcp".into(),
            src_ip: src.parse().unwrap(),
            src_port: 40000,
            dst_ip: dst.parse().unwrap(),
            dst_port: dport,
            orig: DirStats {
                packets: orig.0,
                bytes: orig.0 * 60,
                payload_bytes: orig.1,
                flags: orig.2,
            },
            resp: DirStats {
                packets: resp.0,
                bytes: resp.0 * 60,
                payload_bytes: resp.1,
                flags: if resp.0 > 0 {
                    tcp_flags::RST | tcp_flags::ACK
                } else {
                    0
                },
            },
            state: state.into(),
            end_reason: "idle".into(),
            app: Default::default(),
            src_mac: None,
            dst_mac: None,
        }
    }

    fn at(name: &str) -> usize {
        NAMES.iter().position(|n| *n == name).unwrap()
    }

    #[test]
    fn a_syn_probe_and_its_window_features() {
        let mut w = Windows::new(FlowFeatureSettings::default());
        let mut last = [0.0; DIM];
        for port in 1..=100u16 {
            let f = flow(
                f64::from(port) * 0.01,
                "10.0.0.9",
                "10.0.0.1",
                port,
                "REJ",
                (1, 0, tcp_flags::SYN),
                (1, 0),
            );
            last = w.features(&f);
        }
        assert_eq!(last[at("tcp")], 1.0);
        assert_eq!(last[at("state_rej")], 1.0);
        assert_eq!(last[at("syn_only")], 1.0);
        assert_eq!(last[at("unanswered")], 0.0);
        assert!((last[at("src_distinct_ports")] - (101f32).ln()).abs() < 1e-5);
        assert!((last[at("src_distinct_hosts")] - 2f32.ln()).abs() < 1e-5);
        assert_eq!(last[at("src_probe_share")], 1.0);
        assert_eq!(last[at("src_syn_only_share")], 1.0);
        assert!((last[at("src_same_service")] - 2f32.ln()).abs() < 1e-5);
        assert!((last[at("dst_distinct_sources")] - 2f32.ln()).abs() < 1e-5);
        // A flow two windows later starts afresh.
        let later = flow(
            200.0,
            "10.0.0.9",
            "10.0.0.1",
            80,
            "SF",
            (5, 300, tcp_flags::SYN | tcp_flags::ACK | tcp_flags::FIN),
            (5, 900),
        );
        let x = w.features(&later);
        assert!((x[at("src_flows")] - 2f32.ln()).abs() < 1e-5);
        assert_eq!(x[at("src_probe_share")], 0.0);
        assert_eq!(x[at("state_sf")], 1.0);
        assert_eq!(x[at("syn_only")], 0.0);
    }

    #[test]
    fn fin_null_xmas_probes_have_no_syn_or_ack() {
        let mut w = Windows::new(FlowFeatureSettings::default());
        let f = flow(
            1.0,
            "10.0.0.9",
            "10.0.0.1",
            22,
            "OTH",
            (1, 0, tcp_flags::FIN | tcp_flags::PSH | tcp_flags::URG),
            (1, 0),
        );
        let x = w.features(&f);
        assert_eq!(x[at("no_syn_ack_flags")], 1.0);
        assert_eq!(x[at("login_port")], 1.0);
    }

    #[test]
    fn memory_is_bounded() {
        let settings = FlowFeatureSettings {
            window_s: 3600,
            per_key: 8,
            max_keys: 16,
        };
        let mut w = Windows::new(settings);
        for i in 0..1000u32 {
            let src = format!("10.1.{}.{}", i / 250, i % 250);
            let f = flow(
                f64::from(i),
                &src,
                "10.0.0.1",
                80,
                "S0",
                (1, 0, tcp_flags::SYN),
                (0, 0),
            );
            w.features(&f);
        }
        assert!(w.by_src.len() <= 16, "{}", w.by_src.len());
        assert!(w.by_dst.values().all(|d| d.seen.len() <= 8));
    }
}
