//! Packet decoding: link layer → IPv4/IPv6 (or ARP) → TCP/UDP/ICMP.
//!
//! Every step reads through bounds-checked slices: a short or inconsistent header ends
//! decoding with a [`Malformed`] reason that the caller counts; nothing here panics on
//! any input (see the random-bytes test at the bottom).

mod ip;
mod link;
mod transport;

use std::net::IpAddr;

pub use ip::Fragment;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The link-layer header is cut short.
    Link,
    /// The IP header is cut short or inconsistent (version, header length, total length).
    Ip,
    /// The transport header is cut short or inconsistent.
    Transport,
    /// The ARP body is cut short.
    Arp,
}

/// A decoded ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: std::net::Ipv4Addr,
    /// Target protocol address.
    pub target_ip: std::net::Ipv4Addr,
}

/// The transport layer of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// TCP segment.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// The flag bits (FIN 0x01 … CWR 0x80).
        flags: u8,
        /// Sequence number.
        seq: u32,
        /// Payload (as captured).
        payload: &'a [u8],
        /// Payload length by the IP header (may exceed the captured part).
        payload_len: u32,
    },
    /// UDP datagram.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Payload (as captured).
        payload: &'a [u8],
    },
    /// ICMP or ICMPv6 message.
    Icmp {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
        /// Echo identifier when the message is an echo request or reply.
        echo_id: Option<u16>,
    },
    /// A non-first IP fragment: no transport header to read.
    Fragment,
    /// Another IP protocol.
    Other,
}

/// A decoded IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number (the upper-layer one for IPv6, after extension headers).
    pub proto: u8,
    /// TTL / hop limit.
    pub ttl: u8,
    /// Length by the IP header (total length for IPv4, payload + 40 for IPv6).
    pub len: u32,
    /// Fragment position.
    pub fragment: Fragment,
    /// What is inside.
    pub transport: Transport<'a>,
}

/// What a frame held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer3<'a> {
    /// An IP packet.
    Ip(IpPacket<'a>),
    /// An ARP message.
    Arp(Arp),
    /// Another ethertype (STP, LLDP …), not decoded further.
    Other(u16),
}

/// A decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Source MAC (Ethernet and cooked captures).
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC (Ethernet only).
    pub dst_mac: Option<[u8; 6]>,
    /// VLAN id of the innermost 802.1Q tag.
    pub vlan: Option<u16>,
    /// Layer 3.
    pub l3: Layer3<'a>,
}

/// Decodes one frame of the given link type; `Ok(None)` for a link type we do not know.
pub fn decode(link_type: u32, data: &[u8]) -> Result<Option<Frame<'_>>, Malformed> {
    let Some(l2) = link::decode(link_type, data)? else {
        return Ok(None);
    };
    let l3 = match l2.ethertype {
        0x0800 | 0x86dd => Layer3::Ip(ip::decode(l2.payload)?),
        0x0806 => Layer3::Arp(decode_arp(l2.payload)?),
        other => Layer3::Other(other),
    };
    Ok(Some(Frame {
        src_mac: l2.src_mac,
        dst_mac: l2.dst_mac,
        vlan: l2.vlan,
        l3,
    }))
}

fn decode_arp(b: &[u8]) -> Result<Arp, Malformed> {
    let b = b.get(..28).ok_or(Malformed::Arp)?;
    // Ethernet + IPv4 only (hardware type 1, protocol 0x0800, sizes 6 and 4).
    if b.get(..6) != Some(&[0, 1, 8, 0, 6, 4]) {
        return Err(Malformed::Arp);
    }
    let mut sender_mac = [0u8; 6];
    sender_mac.copy_from_slice(b.get(8..14).ok_or(Malformed::Arp)?);
    let ip4 = |at: usize| -> Result<std::net::Ipv4Addr, Malformed> {
        let s = b.get(at..at + 4).ok_or(Malformed::Arp)?;
        Ok(std::net::Ipv4Addr::new(s[0], s[1], s[2], s[3]))
    };
    Ok(Arp {
        op: u16::from_be_bytes([b[6], b[7]]),
        sender_mac,
        sender_ip: ip4(14)?,
        target_ip: ip4(24)?,
    })
}

/// Reads a big-endian `u16` at `at`, if there.
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an Ethernet + IPv4 + TCP frame.
    pub(crate) fn tcp4(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
        let total = (20 + 20 + payload.len()) as u16;
        f.extend([
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        f.extend(src);
        f.extend(dst);
        f.extend(sport.to_be_bytes());
        f.extend(dport.to_be_bytes());
        f.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend(payload);
        f
    }

    /// Builds an Ethernet + IPv4 + UDP frame.
    pub(crate) fn udp4(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
        let total = (20 + 8 + payload.len()) as u16;
        f.extend([
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0,
            0,
            64,
            17,
            0,
            0,
        ]);
        f.extend(src);
        f.extend(dst);
        f.extend(sport.to_be_bytes());
        f.extend(dport.to_be_bytes());
        f.extend(((8 + payload.len()) as u16).to_be_bytes());
        f.extend([0, 0]);
        f.extend(payload);
        f
    }

    #[test]
    fn decodes_tcp_over_ethernet() {
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, 0x02, b"");
        let frame = decode(1, &f).unwrap().unwrap();
        let Layer3::Ip(ip) = frame.l3 else {
            panic!("not ip")
        };
        assert_eq!(ip.src.to_string(), "10.0.0.1");
        assert_eq!(
            ip.transport,
            Transport::Tcp {
                sport: 1234,
                dport: 80,
                flags: 2,
                seq: 1,
                payload: b"",
                payload_len: 0
            }
        );
    }

    #[test]
    fn every_truncation_is_counted_not_a_panic() {
        let f = tcp4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            1234,
            80,
            0x18,
            b"GET / HTTP/1.1\r\n",
        );
        for cut in 0..f.len() {
            // Short payloads are fine (snap length); short headers are Malformed.
            let r = decode(1, &f[..cut]);
            if cut < 14 + 20 + 20 {
                assert!(r.is_err(), "cut {cut} should be malformed");
            }
        }
        let u = udp4([10, 0, 0, 1], [10, 0, 0, 2], 53, 53, b"abcd");
        for cut in 0..14 + 28 {
            assert!(decode(1, &u[..cut]).is_err());
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small xorshift generator: deterministic, no dependency.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let base = tcp4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, 0x12, b"payload bytes");
        for round in 0..20_000 {
            let len = (next() % 120) as usize;
            let mut b: Vec<u8> = if round % 2 == 0 {
                (0..len).map(|_| next() as u8).collect()
            } else {
                // Mutate a valid frame so decoding gets deep before it breaks.
                let mut b = base.clone();
                for _ in 0..3 {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                b.truncate(len.max(14));
                b
            };
            for lt in [0, 1, 101, 113, 228, 229, 276] {
                let _ = decode(lt, &b);
            }
            b.clear();
        }
    }

    #[test]
    fn decodes_arp() {
        let mut f = vec![0xff; 6];
        f.extend([0, 1, 2, 3, 4, 5, 0x08, 0x06]);
        f.extend([
            0, 1, 8, 0, 6, 4, 0, 1, 0, 1, 2, 3, 4, 5, 192, 168, 1, 1, 0, 0, 0, 0, 0, 0, 192, 168,
            1, 2,
        ]);
        let frame = decode(1, &f).unwrap().unwrap();
        let Layer3::Arp(arp) = frame.l3 else {
            panic!("not arp")
        };
        assert_eq!(arp.op, 1);
        assert_eq!(arp.target_ip.to_string(), "192.168.1.2");
        assert!(decode(1, &f[..30]).is_err());
    }
}
