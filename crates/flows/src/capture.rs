//! A capture read through the decoders into the flow table, with every packet accounted
//! for in [`Stats`]: decoded into a flow, or counted as ARP, other ethertype, fragment,
//! unknown link type or malformed.

use std::path::Path;

use palisade_store::Device;
use serde::Serialize;

use crate::config::FlowConfig;
use crate::decode::{self, Fragment, Layer3, Malformed, Transport};
use crate::device::{DeviceTable, PacketHints};
use crate::error::CaptureError;
use crate::flow::{ARP_PROTO, FlowRecord, PacketView};
use crate::reader::{CaptureReader, Packet};
use crate::table::{FlowTable, TableStats};

/// What became of the packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Packets read.
    pub packets: u64,
    /// Bytes on the wire (original lengths).
    pub bytes: u64,
    /// IP packets that went into a flow.
    pub ip_packets: u64,
    /// ARP messages.
    pub arp: u64,
    /// Frames of another ethertype (STP, LLDP, 802.3/LLC …).
    pub other_ethertype: u64,
    /// IP fragments (first and later).
    pub fragments: u64,
    /// Frames of a link type we do not decode.
    pub unknown_link: u64,
    /// Malformed frames by layer.
    pub malformed_link: u64,
    /// Malformed IP headers.
    pub malformed_ip: u64,
    /// Malformed transport headers.
    pub malformed_transport: u64,
    /// Malformed ARP bodies.
    pub malformed_arp: u64,
    /// The flow table's counters.
    pub table: TableStats,
    /// Device observations dropped because the device table was full.
    pub devices_dropped: u64,
}

impl Stats {
    /// All malformed packets.
    pub fn malformed(&self) -> u64 {
        self.malformed_link + self.malformed_ip + self.malformed_transport + self.malformed_arp
    }
}

/// Decoder + flow table.
#[derive(Debug)]
pub struct FlowBuilder {
    table: FlowTable,
    stats: Stats,
    devices: Option<DeviceTable>,
}

impl FlowBuilder {
    /// A builder with an empty table.
    pub fn new(config: FlowConfig) -> FlowBuilder {
        FlowBuilder {
            table: FlowTable::new(config),
            stats: Stats::default(),
            devices: None,
        }
    }

    /// Also keeps a device inventory (see [`crate::device`]).
    pub fn with_devices(mut self, devices: DeviceTable) -> FlowBuilder {
        self.devices = Some(devices);
        self
    }

    /// Devices seen since the last call (empty without a device table).
    pub fn take_devices(&mut self) -> Vec<Device> {
        self.devices
            .as_mut()
            .map(DeviceTable::take)
            .unwrap_or_default()
    }

    /// Decodes one captured packet into the table.
    pub fn add(&mut self, p: &Packet<'_>) {
        self.stats.packets += 1;
        self.stats.bytes += u64::from(p.orig_len);
        let frame = match decode::decode(p.link_type, p.data) {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.stats.unknown_link += 1;
                return;
            }
            Err(m) => {
                match m {
                    Malformed::Link => self.stats.malformed_link += 1,
                    Malformed::Ip => self.stats.malformed_ip += 1,
                    Malformed::Transport => self.stats.malformed_transport += 1,
                    Malformed::Arp => self.stats.malformed_arp += 1,
                }
                return;
            }
        };
        let ip = match frame.l3 {
            Layer3::Ip(ip) => ip,
            Layer3::Arp(arp) => {
                self.stats.arp += 1;
                if let Some(d) = self.devices.as_mut() {
                    d.arp(p.ts_us, arp.sender_mac, std::net::IpAddr::V4(arp.sender_ip));
                }
                // Requests and replies pair up as a flow (sender → target), so an
                // unanswered request is visible like an unanswered SYN (ARP sweeps).
                if matches!(arp.op, 1 | 2) {
                    self.table.add(&PacketView {
                        ts_us: p.ts_us,
                        proto: ARP_PROTO,
                        src: (std::net::IpAddr::V4(arp.sender_ip), 0),
                        dst: (std::net::IpAddr::V4(arp.target_ip), 0),
                        ip_len: 28,
                        payload_len: 0,
                        flags: 0,
                        seq: 0,
                        payload: &[],
                        macs: (Some(arp.sender_mac), frame.dst_mac),
                    });
                }
                return;
            }
            Layer3::Other(_) => {
                self.stats.other_ethertype += 1;
                return;
            }
        };
        if ip.fragment != Fragment::No {
            self.stats.fragments += 1;
        }
        let (sport, dport, flags, seq, payload, payload_len) = match ip.transport {
            Transport::Tcp {
                sport,
                dport,
                flags,
                seq,
                payload,
                payload_len,
            } => (sport, dport, flags, seq, payload, payload_len),
            Transport::Udp {
                sport,
                dport,
                payload,
            } => (sport, dport, 0, 0, payload, payload.len() as u32),
            Transport::Icmp {
                icmp_type,
                code,
                echo_id,
            } => match echo_id {
                // Echo request and reply share the identifier: one flow per ping session.
                Some(id) => (id, 0, 0, 0, &[][..], 0),
                None => (u16::from(icmp_type), u16::from(code), 0, 0, &[][..], 0),
            },
            // Later fragments carry no ports; they join the protocol's port-less flow.
            Transport::Fragment | Transport::Other => (0, 0, 0, 0, &[][..], 0),
        };
        self.stats.ip_packets += 1;
        if let Some(d) = self.devices.as_mut()
            && ((ip.proto == 6 && flags & crate::flow::tcp_flags::SYN != 0)
                || (ip.proto == 17
                    && [sport, dport]
                        .iter()
                        .any(|p| matches!(*p, 53 | 67 | 68 | 137 | 5353 | 5355))))
        {
            d.packet(&PacketHints {
                ts_us: p.ts_us,
                src_mac: frame.src_mac,
                src: ip.src,
                ttl: ip.ttl,
                proto: ip.proto,
                sport,
                dport,
                flags,
                payload,
            });
        }
        self.table.add(&PacketView {
            ts_us: p.ts_us,
            proto: ip.proto,
            src: (ip.src, sport),
            dst: (ip.dst, dport),
            ip_len: ip.len,
            payload_len,
            flags,
            seq,
            payload,
            macs: (frame.src_mac, frame.dst_mac),
        });
    }

    /// Flows finished so far (drains them).
    pub fn take_finished(&mut self) -> Vec<FlowRecord> {
        let done = self.table.take_finished();
        if let Some(d) = self.devices.as_mut() {
            for f in &done {
                d.flow(f);
            }
        }
        done
    }

    /// Finishes the flows whose deadlines passed by `now_us` (a live capture calls this
    /// on the clock, so quiet flows end without waiting for another packet).
    pub fn expire(&mut self, now_us: i64) {
        self.table.expire(now_us);
    }

    /// Finishes every open flow and returns the counters.
    pub fn finish(&mut self) -> Stats {
        self.table.finish_all();
        self.stats()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            table: self.table.stats(),
            devices_dropped: self.devices.as_ref().map_or(0, DeviceTable::dropped),
            ..self.stats
        }
    }
}

/// Reads a whole capture file, handing finished flows to `sink` in batches as they
/// finish (memory stays bounded by the table, not the file).
pub fn read_capture(
    path: &Path,
    config: FlowConfig,
    mut sink: impl FnMut(Vec<FlowRecord>),
) -> Result<Stats, CaptureError> {
    read_capture_with_devices(path, config, None, |flows, _| sink(flows))
}

/// [`read_capture`], also keeping a device inventory when `devices` is given: each
/// batch hands over the flows finished and the devices seen since the last one.
pub fn read_capture_with_devices(
    path: &Path,
    config: FlowConfig,
    devices: Option<DeviceTable>,
    mut sink: impl FnMut(Vec<FlowRecord>, Vec<Device>),
) -> Result<Stats, CaptureError> {
    let mut reader = CaptureReader::open(path)?;
    let mut builder = FlowBuilder::new(config);
    if let Some(d) = devices {
        builder = builder.with_devices(d);
    }
    let mut n = 0u64;
    while let Some(p) = reader.next_packet()? {
        builder.add(&p);
        n += 1;
        if n.is_multiple_of(4096) {
            let done = builder.take_finished();
            if !done.is_empty() {
                let seen = builder.take_devices();
                sink(done, seen);
            }
        }
    }
    builder.finish();
    let done = builder.take_finished();
    let seen = builder.take_devices();
    let stats = builder.stats();
    if !done.is_empty() || !seen.is_empty() {
        sink(done, seen);
    }
    tracing::info!(message = "Capture read.", path = %path.display(), packets = stats.packets, flows = stats.table.flows_finished, malformed = stats.malformed());
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arp(op: u16, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend([2, 0, 0, 0, 0, sender[3], 0x08, 0x06, 0, 1, 8, 0, 6, 4]);
        f.extend(op.to_be_bytes());
        f.extend([2, 0, 0, 0, 0, sender[3]]);
        f.extend(sender);
        f.extend([0; 6]);
        f.extend(target);
        f
    }

    fn run(frames: &[Vec<u8>]) -> (Vec<FlowRecord>, Stats) {
        let mut b = FlowBuilder::new(FlowConfig::default());
        for (i, data) in frames.iter().enumerate() {
            b.add(&Packet {
                ts_us: i as i64,
                link_type: 1,
                orig_len: data.len() as u32,
                data,
            });
        }
        let stats = b.finish();
        (b.take_finished(), stats)
    }

    /// What `fuzz/fuzz_targets/flows_capture.rs` checks, on mutated real-shaped files:
    /// never a panic, every IP packet in exactly one flow, each flow finished once.
    #[test]
    fn mutated_capture_files_are_accounted_for() {
        let mut w = crate::reader::PcapWriter::new(Vec::new(), 1).unwrap();
        for i in 0..40u16 {
            let f = crate::reader::tcp_frame(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                1000 + i % 7,
                80,
                0x02,
                b"GET / HTTP/1.1",
            );
            w.packet(i64::from(i) * 1000, &f).unwrap();
            w.packet(
                i64::from(i) * 1000 + 1,
                &arp(1, [10, 0, 0, 1], [10, 0, 0, (i % 250) as u8]),
            )
            .unwrap();
        }
        let base = w.finish().unwrap();
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..300 {
            let mut data = base.clone();
            for _ in 0..(round % 8) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let i = (s as usize) % data.len();
                data[i] = (s >> 32) as u8;
            }
            let Ok(mut reader) =
                crate::reader::CaptureReader::new(Box::new(std::io::Cursor::new(data)))
            else {
                continue;
            };
            let mut b = FlowBuilder::new(FlowConfig {
                max_flows: 16,
                ..FlowConfig::default()
            });
            while let Ok(Some(p)) = reader.next_packet() {
                b.add(&p);
            }
            let stats = b.finish();
            let flows = b.take_finished();
            let in_flows: u64 = flows.iter().map(|f| f.orig.packets + f.resp.packets).sum();
            assert!(
                in_flows >= stats.ip_packets && in_flows <= stats.ip_packets + stats.arp,
                "round {round}"
            );
            assert_eq!(stats.table.flows_started, stats.table.flows_finished);
            assert_eq!(flows.len() as u64, stats.table.flows_finished);
        }
    }

    #[test]
    fn arp_requests_pair_with_replies() {
        let (flows, stats) = run(&[
            arp(1, [10, 0, 0, 1], [10, 0, 0, 2]),
            arp(2, [10, 0, 0, 2], [10, 0, 0, 1]),
            arp(1, [10, 0, 0, 1], [10, 0, 0, 3]),
        ]);
        assert_eq!(stats.arp, 3);
        let got: Vec<(String, String, bool)> = flows
            .iter()
            .map(|f| (f.dst_ip.to_string(), f.state.clone(), f.is_probe()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("10.0.0.2".to_string(), "SF".to_string(), false),
                ("10.0.0.3".to_string(), "S0".to_string(), true)
            ]
        );
        assert!(flows.iter().all(|f| f.protocol == "arp"));
    }

    #[test]
    fn malformed_packets_are_counted_by_layer() {
        let good = crate::reader::tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0x02, b"");
        let (flows, stats) = run(&[
            good[..10].to_vec(),
            good[..20].to_vec(),
            good[..40].to_vec(),
            good.clone(),
        ]);
        assert_eq!(
            (
                stats.malformed_link,
                stats.malformed_ip,
                stats.malformed_transport
            ),
            (1, 1, 1)
        );
        assert_eq!((stats.packets, stats.ip_packets, flows.len()), (4, 1, 1));
    }
}
