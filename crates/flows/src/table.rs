//! The flow table: bidirectional flows keyed by 5-tuple, finished exactly once.
//!
//! A flow leaves the map in exactly one place ([`FlowTable::finish_key`]), which is the
//! only place a [`FlowRecord`] is made, so a flow cannot be reported twice. Timeouts run
//! on packet time (replays and live traffic give the same flows) through two FIFO queues
//! of `(deadline, key, flow id)`: idle deadlines and close deadlines. A queue entry whose
//! flow has moved on (newer activity, or a newer flow under the same key) is re-queued or
//! dropped when it reaches the front, so expiry costs O(1) amortised per packet with no
//! scan of the table. The same idle queue, oldest first, picks the victim when the table
//! is full.

use std::collections::{HashMap, VecDeque};

use crate::config::FlowConfig;
use crate::flow::{Flow, FlowKey, FlowRecord, PacketView, tcp_flags};

/// Counters of a table's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableStats {
    /// Flows started.
    pub flows_started: u64,
    /// Flows finished (every reason).
    pub flows_finished: u64,
    /// Flows finished early because the table was full.
    pub evictions: u64,
    /// Most flows held at once.
    pub peak_flows: u64,
}

#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: i64,
    key: FlowKey,
    id: u64,
}

/// The flow table.
#[derive(Debug)]
pub struct FlowTable {
    /// foldhash: fast, and seeded per process, so crafted addresses cannot force
    /// collisions the way they could with an unkeyed hash.
    flows: HashMap<FlowKey, Flow, foldhash::fast::RandomState>,
    idle: VecDeque<Deadline>,
    closed: VecDeque<Deadline>,
    config: FlowConfig,
    next_id: u64,
    now_us: i64,
    finished: Vec<FlowRecord>,
    stats: TableStats,
}

impl FlowTable {
    /// An empty table.
    pub fn new(config: FlowConfig) -> FlowTable {
        FlowTable {
            flows: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            idle: VecDeque::new(),
            closed: VecDeque::new(),
            config,
            next_id: 0,
            now_us: i64::MIN,
            finished: Vec::new(),
            stats: TableStats::default(),
        }
    }

    /// Flows currently tracked.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// Takes the flows finished since the last call.
    pub fn take_finished(&mut self) -> Vec<FlowRecord> {
        std::mem::take(&mut self.finished)
    }

    /// Adds a packet (packet time may only go backwards a little; deadlines use the
    /// latest time seen).
    pub fn add(&mut self, p: &PacketView<'_>) {
        self.now_us = self.now_us.max(p.ts_us);
        self.expire(self.now_us);
        let (key, _) = FlowKey::of(p.proto, p.src, p.dst);
        // A new SYN on a closed connection, or a flow past its active timeout, starts a
        // new flow under the same key.
        let restart = match self.flows.get(&key) {
            Some(f)
                if f.closed_at.is_some()
                    && p.proto == 6
                    && p.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
                    && f.orig_isn != Some(p.seq) =>
            {
                Some("closed")
            }
            Some(f) if p.ts_us - f.start_us >= self.config.active_timeout.as_micros() => {
                Some("active")
            }
            _ => None,
        };
        if let Some(reason) = restart {
            self.finish_key(&key, reason);
        }
        if !self.flows.contains_key(&key) {
            while self.flows.len() >= self.config.max_flows {
                if !self.evict_one() {
                    break;
                }
            }
            let id = self.next_id;
            self.next_id += 1;
            self.flows.insert(key, Flow::new(id, p));
            self.stats.flows_started += 1;
            self.stats.peak_flows = self.stats.peak_flows.max(self.flows.len() as u64);
            self.idle.push_back(Deadline {
                at: p.ts_us + self.config.idle_timeout.as_micros(),
                key,
                id,
            });
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        if flow.add(p) {
            let id = flow.id;
            self.closed.push_back(Deadline {
                at: p.ts_us + self.config.closed_timeout.as_micros(),
                key,
                id,
            });
        }
    }

    /// Finishes every flow whose deadline passed by `now_us`.
    pub fn expire(&mut self, now_us: i64) {
        while let Some(d) = self.closed.front().copied() {
            if d.at > now_us {
                break;
            }
            self.closed.pop_front();
            if self.flows.get(&d.key).is_some_and(|f| f.id == d.id) {
                self.finish_key(&d.key, "closed");
            }
        }
        let idle = self.config.idle_timeout.as_micros();
        while let Some(d) = self.idle.front().copied() {
            if d.at > now_us {
                break;
            }
            self.idle.pop_front();
            match self.flows.get(&d.key) {
                Some(f) if f.id == d.id => {
                    let due = f.last_us + idle;
                    if due <= now_us {
                        self.finish_key(&d.key, "idle");
                    } else {
                        self.idle.push_back(Deadline { at: due, ..d });
                    }
                }
                _ => {}
            }
        }
    }

    /// Finishes the least recently active flow; false when there is none.
    fn evict_one(&mut self) -> bool {
        while let Some(d) = self.idle.pop_front() {
            match self.flows.get(&d.key) {
                Some(f) if f.id == d.id => {
                    // Second chance: a flow active since it was queued goes to the back.
                    let due = f.last_us + self.config.idle_timeout.as_micros();
                    if due > d.at {
                        self.idle.push_back(Deadline { at: due, ..d });
                        continue;
                    }
                    self.finish_key(&d.key, "evicted");
                    self.stats.evictions += 1;
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Finishes every flow (end of the capture).
    pub fn finish_all(&mut self) {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for k in keys {
            self.finish_key(&k, "end");
        }
        self.idle.clear();
        self.closed.clear();
        self.finished.sort_by_key(|f| f.start_us);
    }

    /// The one place a flow leaves the table.
    fn finish_key(&mut self, key: &FlowKey, reason: &str) {
        if let Some(flow) = self.flows.remove(key) {
            self.stats.flows_finished += 1;
            self.finished.push(flow.finish(reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn pkt(
        ts: i64,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        flags: u8,
        len: u32,
    ) -> PacketView<'static> {
        // Each SYN gets its own sequence number, as a new connection would.
        let seq = if flags == SYN { ts as u32 } else { 0 };
        PacketView {
            ts_us: ts,
            proto: 6,
            src,
            dst,
            ip_len: 40 + len,
            payload_len: len,
            flags,
            seq,
            payload: &[],
            macs: (None, None),
        }
    }

    const SYN: u8 = tcp_flags::SYN;
    const SA: u8 = tcp_flags::SYN | tcp_flags::ACK;
    const A: u8 = tcp_flags::ACK;
    const FA: u8 = tcp_flags::FIN | tcp_flags::ACK;
    const RA: u8 = tcp_flags::RST | tcp_flags::ACK;

    fn run(packets: &[(i64, bool, u8, u32)]) -> Vec<FlowRecord> {
        let c = (ip(1), 40000);
        let s = (ip(2), 80);
        let mut t = FlowTable::new(FlowConfig::default());
        for &(ts, from_client, flags, len) in packets {
            let (a, b) = if from_client { (c, s) } else { (s, c) };
            t.add(&pkt(ts, a, b, flags, len));
        }
        t.finish_all();
        t.take_finished()
    }

    #[test]
    fn zeek_states() {
        let one = |p: &[(i64, bool, u8, u32)]| {
            run(p).first().map(|f| f.state.clone()).unwrap_or_default()
        };
        assert_eq!(one(&[(0, true, SYN, 0)]), "S0");
        assert_eq!(one(&[(0, true, SYN, 0), (1, false, RA, 0)]), "REJ");
        assert_eq!(
            one(&[(0, true, SYN, 0), (1, false, SA, 0), (2, true, A, 0)]),
            "S1"
        );
        assert_eq!(
            one(&[
                (0, true, SYN, 0),
                (1, false, SA, 0),
                (2, true, A, 10),
                (3, true, FA, 0),
                (4, false, FA, 0),
                (5, true, A, 0)
            ]),
            "SF"
        );
        assert_eq!(
            one(&[(0, true, SYN, 0), (1, false, SA, 0), (2, true, RA, 0)]),
            "RSTO"
        );
        assert_eq!(
            one(&[(0, true, SYN, 0), (1, false, SA, 0), (2, false, RA, 0)]),
            "RSTR"
        );
        assert_eq!(one(&[(0, true, SYN, 0), (1, true, FA, 0)]), "SH");
        assert_eq!(
            one(&[(0, true, tcp_flags::FIN, 0), (1, false, RA, 0)]),
            "OTH"
        );
        // A lone SYN+ACK: the sender is the responder.
        let f = run(&[(0, false, SA, 0)]);
        assert_eq!(
            (f[0].src_ip, f[0].src_port, f[0].state.as_str()),
            (ip(1), 40000, "OTH")
        );
    }

    #[test]
    fn directions_and_counts() {
        let f = run(&[
            (0, true, SYN, 0),
            (1, false, SA, 0),
            (2, true, A, 100),
            (3, false, A, 1000),
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (
                f[0].orig.packets,
                f[0].orig.payload_bytes,
                f[0].resp.packets,
                f[0].resp.bytes
            ),
            (2, 100, 2, 1080)
        );
        assert_eq!(f[0].duration_us(), 3);
    }

    #[test]
    fn idle_timeout_on_packet_time_and_port_reuse() {
        let sec = 1_000_000;
        let f = run(&[(0, true, SYN, 0), (200 * sec, true, SYN, 0)]);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].end_reason, "idle");
        // A new SYN after a close starts a new flow.
        let f = run(&[(0, true, SYN, 0), (1, false, RA, 0), (2, true, SYN, 0)]);
        assert_eq!(
            f.iter().map(|f| f.state.as_str()).collect::<Vec<_>>(),
            vec!["REJ", "S0"]
        );
        // A retransmitted SYN (same sequence number) after the RST stays in the flow:
        // a connect() retrying, as in the nmap -sT capture.
        let c = (ip(1), 40000);
        let s = (ip(2), 80);
        let mut t = FlowTable::new(FlowConfig::default());
        for i in 0..6 {
            let mut syn = pkt(i * 10, c, s, SYN, 0);
            syn.seq = 777;
            t.add(&syn);
            t.add(&pkt(i * 10 + 1, s, c, RA, 0));
        }
        t.finish_all();
        let f = t.take_finished();
        assert_eq!(
            (f.len(), f[0].orig.packets, f[0].state.as_str()),
            (1, 6, "REJ")
        );
    }

    #[test]
    fn bounded_table_evicts_and_every_packet_lands_in_exactly_one_flow() {
        let mut t = FlowTable::new(FlowConfig {
            max_flows: 16,
            ..FlowConfig::default()
        });
        let mut sent = 0u64;
        for i in 0..1000u32 {
            let src = (ip((i % 7) as u8), 1000 + (i % 50) as u16);
            t.add(&pkt(i64::from(i), src, (ip(200), 80), SYN, 0));
            sent += 1;
            assert!(t.len() <= 16);
        }
        t.finish_all();
        let flows = t.take_finished();
        let counted: u64 = flows.iter().map(|f| f.orig.packets + f.resp.packets).sum();
        assert_eq!(counted, sent);
        let s = t.stats();
        assert_eq!(s.flows_started, s.flows_finished);
        assert_eq!(flows.len() as u64, s.flows_started);
        assert!(s.evictions > 0);
    }

    #[test]
    fn active_timeout_splits_long_flows() {
        let mut t = FlowTable::new(FlowConfig {
            active_timeout: palisade_core::duration::Span::from_secs(10),
            ..FlowConfig::default()
        });
        for s in 0..25i64 {
            t.add(&pkt(s * 1_000_000, (ip(1), 5), (ip(2), 6), A, 1));
        }
        t.finish_all();
        let f = t.take_finished();
        assert_eq!(
            f.iter().map(|f| f.end_reason.as_str()).collect::<Vec<_>>(),
            vec!["active", "active", "end"]
        );
        assert_eq!(f.iter().map(|f| f.orig.packets).sum::<u64>(), 25);
    }
}
