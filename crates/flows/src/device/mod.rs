//! The device inventory as a capture shows it.
//!
//! A device is a host of the local network: an endpoint with a private, link-local or
//! unique-local address (public addresses are the Internet, not the inventory), keyed
//! by its MAC when the link shows one (`mac:…`) and by its address otherwise (`ip:…`).
//! Once a MAC was seen with an address, later MAC-less sightings of that address
//! (raw-IP links, broadcast replies) join the MAC's device. A responder only becomes a
//! device when it answered, so sweeps of empty addresses make no phantom devices.
//!
//! Evidence, all bounded per device ([`palisade_store::DEVICE_SET_CAP`]):
//! - packets: DHCP (client MAC, address, host name, OS from options 55/60), DNS, mDNS
//!   and NBNS answers (name → address), the TTL of SYN and SYN-ACK packets (initial
//!   TTL 64 / 128 / 255 → OS family), ARP senders;
//! - finished flows: addresses, JA3/JA4/HASSH and User-Agents of the originator,
//!   services the responder answered (`tcp/22 ssh`), first/last seen, flows and bytes.
//!
//! The table holds what was seen since the last [`DeviceTable::take`]; the store merges
//! each batch into the inventory, so memory stays bounded by the devices of one batch
//! (capped at `max_devices`, overflow counted).

pub(crate) mod dhcp;
pub mod oui;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_store::{DEVICE_SET_CAP, Device};

use crate::flow::{FlowRecord, tcp_flags};
pub use oui::Oui;

/// True for an address of the local network: RFC 1918, link-local, CGNAT, ULA.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || v4.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

fn unicast(mac: [u8; 6]) -> bool {
    mac[0] & 0x01 == 0 && mac != [0; 6]
}

fn mac_text(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The OS family an initial TTL points to (the observed TTL rounded up to 64, 128 or
/// 255; only meaningful for local hosts, a hop or two away).
pub fn ttl_family(ttl: u8) -> &'static str {
    match ttl {
        0..=64 => "Linux/Unix/macOS",
        65..=128 => "Windows",
        _ => "network device (Cisco/Solaris)",
    }
}

fn push<T: PartialEq>(set: &mut Vec<T>, v: T) {
    if set.len() < DEVICE_SET_CAP && !set.contains(&v) {
        set.push(v);
    }
}

/// One packet's device evidence, handed over by the decoder for the few packets that
/// carry any (SYN/SYN-ACK, DHCP, DNS/mDNS/NBNS datagrams, ARP).
#[derive(Debug, Clone, Copy)]
pub struct PacketHints<'a> {
    /// Packet time.
    pub ts_us: i64,
    /// Source MAC.
    pub src_mac: Option<[u8; 6]>,
    /// Source address.
    pub src: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IP protocol.
    pub proto: u8,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags.
    pub flags: u8,
    /// Transport payload.
    pub payload: &'a [u8],
}

/// Devices seen since the last [`DeviceTable::take`].
#[derive(Debug)]
pub struct DeviceTable {
    devices: HashMap<String, Device>,
    /// Local addresses seen with a MAC → that MAC's key (kept across batches).
    by_ip: HashMap<IpAddr, String>,
    oui: Arc<Oui>,
    max: usize,
    dropped: u64,
}

impl DeviceTable {
    /// An empty table naming vendors from `oui`, holding at most `max` devices between
    /// two takes.
    pub fn new(oui: Arc<Oui>, max: usize) -> DeviceTable {
        DeviceTable {
            devices: HashMap::new(),
            by_ip: HashMap::new(),
            oui,
            max: max.max(1),
            dropped: 0,
        }
    }

    /// Observations dropped because the table was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Devices seen since the last call (drains them).
    pub fn take(&mut self) -> Vec<Device> {
        let mut out: Vec<Device> = self.devices.drain().map(|(_, d)| d).collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The key of the device at `ip` (seen with `mac`), or `None` when the address is
    /// not a local host.
    fn key_for(&mut self, ip: IpAddr, mac: Option<[u8; 6]>) -> Option<String> {
        if !is_local(ip) {
            return None;
        }
        if let Some(m) = mac.filter(|m| unicast(*m)) {
            let key = format!("mac:{}", mac_text(m));
            if self.by_ip.len() >= self.max.saturating_mul(4) {
                self.by_ip.clear();
            }
            self.by_ip.insert(ip, key.clone());
            return Some(key);
        }
        Some(
            self.by_ip
                .get(&ip)
                .cloned()
                .unwrap_or_else(|| format!("ip:{ip}")),
        )
    }

    /// The device under `key`, created at `ts` when new; `None` when the table is full.
    fn device(&mut self, key: String, ts: i64, ip: Option<IpAddr>) -> Option<&mut Device> {
        if !self.devices.contains_key(&key) && self.devices.len() >= self.max {
            self.dropped += 1;
            return None;
        }
        let oui = self.oui.clone();
        let d = self.devices.entry(key).or_insert_with_key(|key| {
            let mut d = Device::new(key.clone(), Timestamp(ts));
            if let Some(m) = key.strip_prefix("mac:").and_then(parse_mac) {
                d.mac = Some(mac_text(m));
                d.vendor = oui.vendor(m).map(str::to_string);
            }
            d
        });
        d.first_seen = d.first_seen.min(Timestamp(ts));
        d.last_seen = d.last_seen.max(Timestamp(ts));
        if let Some(ip) = ip {
            push(&mut d.ips, ip);
        }
        Some(d)
    }

    /// An ARP sender: its MAC and address belong together.
    pub fn arp(&mut self, ts_us: i64, mac: [u8; 6], ip: IpAddr) {
        if ip.is_unspecified() {
            return;
        }
        if let Some(key) = self.key_for(ip, Some(mac)) {
            self.device(key, ts_us, Some(ip));
        }
    }

    /// A packet's evidence.
    pub fn packet(&mut self, h: &PacketHints<'_>) {
        match h.proto {
            6 if h.flags & tcp_flags::SYN != 0 => {
                if let Some(key) = self.key_for(h.src, h.src_mac)
                    && let Some(d) = self.device(key, h.ts_us, Some(h.src))
                {
                    let hint = format!("ttl:{}", initial_ttl(h.ttl));
                    if !d.os_hints.iter().any(|x| x.starts_with("ttl:")) {
                        push(&mut d.os_hints, hint);
                    }
                    if d.os_guess.is_none() {
                        d.os_guess = Some(ttl_family(h.ttl).to_string());
                    }
                }
            }
            17 => match (h.sport, h.dport) {
                (67 | 68, 67 | 68) => self.dhcp(h),
                (53 | 5353 | 5355 | 137, _) => self.names(h),
                (_, 5353 | 137) => self.names(h),
                _ => {}
            },
            _ => {}
        }
    }

    fn dhcp(&mut self, h: &PacketHints<'_>) {
        let Some(m) = dhcp::parse(h.payload) else {
            return;
        };
        if m.from_client {
            let Some(mac) = m.client_mac.filter(|m| unicast(*m)) else {
                return;
            };
            let key = format!("mac:{}", mac_text(mac));
            if let Some(ip) = m.client_ip.map(IpAddr::V4)
                && is_local(ip)
            {
                self.by_ip.insert(ip, key.clone());
            }
            let Some(d) = self.device(key, h.ts_us, m.client_ip.map(IpAddr::V4)) else {
                return;
            };
            if let Some(n) = m.hostname {
                push(&mut d.hostnames, n);
            }
            if let Some(v) = &m.vendor_class {
                push(&mut d.os_hints, format!("dhcp-vendor:{v}"));
            }
            if let Some(p) = &m.params {
                push(&mut d.os_hints, format!("dhcp-params:{p}"));
            }
            if let Some(os) = dhcp::os_guess(m.vendor_class.as_deref(), m.params.as_deref()) {
                // Outranks a TTL guess (here and when the store merges: its hints
                // start with `dhcp`).
                d.os_guess = Some(os.to_string());
            }
        } else {
            // A server's OFFER/ACK: the server answers DHCP.
            if let Some(key) = self.key_for(h.src, h.src_mac)
                && let Some(d) = self.device(key, h.ts_us, Some(h.src))
            {
                push(&mut d.services, "udp/67 dhcp".to_string());
            }
            // An ACK binds the address it gives to the client's MAC.
            if m.msg_type == 5
                && let (Some(mac), Some(ip)) = (m.client_mac, m.client_ip)
                && unicast(mac)
                && is_local(IpAddr::V4(ip))
            {
                let key = format!("mac:{}", mac_text(mac));
                self.by_ip.insert(IpAddr::V4(ip), key.clone());
                self.device(key, h.ts_us, Some(IpAddr::V4(ip)));
            }
        }
    }

    /// DNS, mDNS and NBNS address records: the name of the local host at each address.
    fn names(&mut self, h: &PacketHints<'_>) {
        for (name, ip) in crate::app::dns::address_records(h.payload) {
            if name.starts_with('_') || name.ends_with(".arpa") || name.len() > 253 {
                continue;
            }
            let mac = if ip == h.src { h.src_mac } else { None };
            if let Some(key) = self.key_for(ip, mac)
                && let Some(d) = self.device(key, h.ts_us, Some(ip))
            {
                push(&mut d.hostnames, name);
            }
        }
    }

    /// A finished flow's evidence.
    pub fn flow(&mut self, f: &FlowRecord) {
        let macs = (
            f.src_mac.as_deref().and_then(parse_mac),
            f.dst_mac.as_deref().and_then(parse_mac),
        );
        let arp = f.protocol == "arp";
        let bytes = f.orig.bytes + f.resp.bytes;
        if !f.src_ip.is_unspecified()
            && let Some(key) = self.key_for(f.src_ip, macs.0)
            && let Some(d) = self.device(key, f.start_us, Some(f.src_ip))
        {
            d.last_seen = d.last_seen.max(Timestamp(f.end_us));
            if !arp {
                d.flows += 1;
                d.bytes = d.bytes.saturating_add(bytes);
            }
            for (set, v) in [
                (&mut d.ja4, &f.app.ja4),
                (&mut d.ja3, &f.app.ja3),
                (&mut d.hassh, &f.app.hassh),
                (&mut d.user_agents, &f.app.http_user_agent),
            ] {
                if let Some(v) = v {
                    push(set, v.clone());
                }
            }
        }
        // The responder is a device only when it answered.
        if f.resp.packets == 0 {
            return;
        }
        let Some(key) = self.key_for(f.dst_ip, macs.1) else {
            return;
        };
        let Some(d) = self.device(key, f.start_us, Some(f.dst_ip)) else {
            return;
        };
        d.last_seen = d.last_seen.max(Timestamp(f.end_us));
        if arp {
            return;
        }
        d.flows += 1;
        d.bytes = d.bytes.saturating_add(bytes);
        let answered = match f.protocol.as_str() {
            "tcp" => {
                f.resp.flags & (tcp_flags::SYN | tcp_flags::ACK)
                    == (tcp_flags::SYN | tcp_flags::ACK)
            }
            // A UDP service: answered on a port below the ephemeral range.
            "udp" => f.dst_port < 49_152 && f.dst_port != 0,
            _ => false,
        };
        if answered {
            let service = match &f.app.protocol {
                Some(app) => format!("{}/{} {app}", f.protocol, f.dst_port),
                None => format!("{}/{}", f.protocol, f.dst_port),
            };
            push(&mut d.services, service);
        }
    }
}

/// The initial TTL an observed one most likely started from.
fn initial_ttl(ttl: u8) -> u8 {
    match ttl {
        0..=32 => 32,
        33..=64 => 64,
        65..=128 => 128,
        _ => 255,
    }
}

#[cfg(test)]
mod tests;
