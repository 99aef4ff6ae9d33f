//! One bidirectional flow: its key, counters per direction, TCP flags and Zeek's
//! `conn_state`, and the finished [`FlowRecord`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::app::{AppInfo, Inspector, L4};

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
}

/// The protocol number ARP flows are kept under: 255 is reserved by IANA, so no IP
/// packet carries it.
pub const ARP_PROTO: u8 = 255;

/// A direction-free flow key: the lower endpoint first, so both directions find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// IP protocol.
    pub proto: u8,
    /// Lower endpoint (address, port).
    pub lo: (IpAddr, u16),
    /// Higher endpoint.
    pub hi: (IpAddr, u16),
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether `src` is the lower endpoint.
    pub fn of(proto: u8, src: (IpAddr, u16), dst: (IpAddr, u16)) -> (FlowKey, bool) {
        if src <= dst {
            (
                FlowKey {
                    proto,
                    lo: src,
                    hi: dst,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    proto,
                    lo: dst,
                    hi: src,
                },
                false,
            )
        }
    }
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirStats {
    /// Packets.
    pub packets: u64,
    /// IP bytes (by the IP header lengths).
    pub bytes: u64,
    /// Transport payload bytes.
    pub payload_bytes: u64,
    /// Union of TCP flags seen.
    pub flags: u8,
}

/// A finished flow, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// First packet time, µs since the epoch.
    pub start_us: i64,
    /// Last packet time, µs since the epoch.
    pub end_us: i64,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `arp` or the protocol number.
    pub protocol: String,
    /// Originator address.
    pub src_ip: IpAddr,
    /// Originator port (ICMP: type, or echo id for echoes).
    pub src_port: u16,
    /// Responder address.
    pub dst_ip: IpAddr,
    /// Responder port (ICMP: code).
    pub dst_port: u16,
    /// Originator → responder.
    pub orig: DirStats,
    /// Responder → originator.
    pub resp: DirStats,
    /// Zeek's connection state (`S0`, `SF`, `REJ` …).
    pub state: String,
    /// Why the flow was finished: `idle`, `active`, `closed`, `evicted`, `end`.
    pub end_reason: String,
    /// Application identification.
    pub app: AppInfo,
    /// Originator MAC when the link had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_mac: Option<String>,
    /// Responder MAC when the link had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_mac: Option<String>,
}

impl FlowRecord {
    /// Duration in microseconds.
    pub fn duration_us(&self) -> i64 {
        self.end_us.saturating_sub(self.start_us)
    }

    /// True for a flow that looks like a probe: no payload either way and no completed
    /// exchange (a connection refused, unanswered, or torn down right after the handshake),
    /// or a UDP datagram nobody answered. The port-scan scenarios count these.
    pub fn is_probe(&self) -> bool {
        let no_payload = self.orig.payload_bytes == 0 && self.resp.payload_bytes == 0;
        match self.protocol.as_str() {
            "tcp" => {
                no_payload
                    && matches!(
                        self.state.as_str(),
                        "S0" | "REJ" | "RSTO" | "RSTOS0" | "RSTR" | "SH" | "OTH" | "S1"
                    )
            }
            "udp" | "arp" => self.resp.packets == 0,
            _ => false,
        }
    }
}

/// A flow being tracked.
#[derive(Debug)]
pub(crate) struct Flow {
    pub id: u64,
    pub start_us: i64,
    pub last_us: i64,
    /// Originator endpoint.
    pub orig_ep: (IpAddr, u16),
    pub resp_ep: (IpAddr, u16),
    pub proto: u8,
    pub orig: DirStats,
    pub resp: DirStats,
    /// SYN (without ACK) from the originator, SYN+ACK from the responder.
    pub orig_syn: bool,
    /// The sequence number of the originator's first SYN: a SYN on a closed connection
    /// with the same number is a retransmitted attempt, not a new connection.
    pub orig_isn: Option<u32>,
    pub resp_synack: bool,
    pub closed_at: Option<i64>,
    pub app: AppInfo,
    pub inspector: Option<Box<Inspector>>,
    pub macs: (Option<[u8; 6]>, Option<[u8; 6]>),
}

/// One packet as the flow table sees it.
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    /// Capture time.
    pub ts_us: i64,
    /// IP protocol.
    pub proto: u8,
    /// Source endpoint.
    pub src: (IpAddr, u16),
    /// Destination endpoint.
    pub dst: (IpAddr, u16),
    /// IP length.
    pub ip_len: u32,
    /// Payload length by the headers.
    pub payload_len: u32,
    /// TCP flags (0 for others).
    pub flags: u8,
    /// TCP sequence number (0 for others).
    pub seq: u32,
    /// Captured payload.
    pub payload: &'a [u8],
    /// Source and destination MACs.
    pub macs: (Option<[u8; 6]>, Option<[u8; 6]>),
}

impl Flow {
    /// Starts a flow from its first packet; who is the originator follows Zeek: a lone
    /// SYN+ACK means the packet came from the responder.
    pub(crate) fn new(id: u64, p: &PacketView<'_>) -> Flow {
        let flipped = p.proto == 6
            && p.flags & (tcp_flags::SYN | tcp_flags::ACK) == (tcp_flags::SYN | tcp_flags::ACK);
        let (orig_ep, resp_ep, macs) = if flipped {
            (p.dst, p.src, (p.macs.1, p.macs.0))
        } else {
            (p.src, p.dst, p.macs)
        };
        Flow {
            id,
            start_us: p.ts_us,
            last_us: p.ts_us,
            orig_ep,
            resp_ep,
            proto: p.proto,
            orig: DirStats::default(),
            resp: DirStats::default(),
            orig_syn: false,
            orig_isn: None,
            resp_synack: false,
            closed_at: None,
            app: AppInfo::default(),
            inspector: matches!(p.proto, 6 | 17).then(Box::default),
            macs,
        }
    }

    /// Adds a packet. Returns true when the packet closed the TCP connection (RST, or the
    /// second FIN).
    pub(crate) fn add(&mut self, p: &PacketView<'_>) -> bool {
        let from_orig = p.src == self.orig_ep;
        let d = if from_orig {
            &mut self.orig
        } else {
            &mut self.resp
        };
        d.packets += 1;
        d.bytes += u64::from(p.ip_len);
        d.payload_bytes += u64::from(p.payload_len);
        d.flags |= p.flags;
        self.last_us = self.last_us.max(p.ts_us);
        self.start_us = self.start_us.min(p.ts_us);
        if p.proto == 6 {
            let syn = p.flags & tcp_flags::SYN != 0;
            let ack = p.flags & tcp_flags::ACK != 0;
            if from_orig && syn && !ack {
                self.orig_syn = true;
                self.orig_isn.get_or_insert(p.seq);
            }
            if !from_orig && syn && ack {
                self.resp_synack = true;
            }
        }
        if let Some(ins) = self.inspector.as_mut() {
            let l4 = if p.proto == 6 { L4::Tcp } else { L4::Udp };
            let ports = (self.orig_ep.1, self.resp_ep.1);
            ins.feed(&mut self.app, l4, usize::from(!from_orig), p.payload, ports);
            if ins.finished() {
                self.inspector = None;
            }
        }
        let was_closed = self.closed_at.is_some();
        if p.proto == 6 && !was_closed {
            let rst = (self.orig.flags | self.resp.flags) & tcp_flags::RST != 0;
            let fins = self.orig.flags & self.resp.flags & tcp_flags::FIN != 0;
            if rst || fins {
                self.closed_at = Some(p.ts_us);
                return true;
            }
        }
        false
    }

    /// Zeek's `conn_state` from what was seen.
    pub(crate) fn conn_state(&self) -> &'static str {
        use tcp_flags::{FIN, RST};
        if self.proto != 6 {
            return match (self.orig.packets > 0, self.resp.packets > 0) {
                (true, true) => "SF",
                (true, false) => "S0",
                (false, true) => "SHR",
                (false, false) => "OTH",
            };
        }
        let (o, r) = (self.orig.flags, self.resp.flags);
        if self.orig_syn && self.resp_synack {
            if o & RST != 0 {
                "RSTO"
            } else if r & RST != 0 {
                "RSTR"
            } else if o & FIN != 0 && r & FIN != 0 {
                "SF"
            } else if o & FIN != 0 {
                "S2"
            } else if r & FIN != 0 {
                "S3"
            } else {
                "S1"
            }
        } else if self.orig_syn {
            if r & RST != 0 {
                "REJ"
            } else if o & RST != 0 {
                "RSTOS0"
            } else if o & FIN != 0 {
                "SH"
            } else {
                "S0"
            }
        } else if self.resp_synack {
            if r & RST != 0 {
                "RSTRH"
            } else if r & FIN != 0 {
                "SHR"
            } else {
                "OTH"
            }
        } else {
            "OTH"
        }
    }

    /// The finished record.
    pub(crate) fn finish(self, reason: &str) -> FlowRecord {
        let state = self.conn_state().to_string();
        let protocol = match self.proto {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            1 => "icmp".to_string(),
            58 => "icmpv6".to_string(),
            ARP_PROTO => "arp".to_string(),
            n => n.to_string(),
        };
        let mut app = self.app;
        if app.protocol.is_none()
            && matches!(self.proto, 6 | 17)
            && let Some(name) =
                crate::app::port_name(self.proto == 6, self.orig_ep.1, self.resp_ep.1)
        {
            app.protocol = Some(name.to_string());
            app.by_port = true;
        }
        let mac = |m: Option<[u8; 6]>| {
            m.map(|m| {
                format!(
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    m[0], m[1], m[2], m[3], m[4], m[5]
                )
            })
        };
        FlowRecord {
            start_us: self.start_us,
            end_us: self.last_us,
            protocol,
            src_ip: self.orig_ep.0,
            src_port: self.orig_ep.1,
            dst_ip: self.resp_ep.0,
            dst_port: self.resp_ep.1,
            orig: self.orig,
            resp: self.resp,
            state,
            end_reason: reason.to_string(),
            app,
            src_mac: mac(self.macs.0),
            dst_mac: mac(self.macs.1),
        }
    }
}
