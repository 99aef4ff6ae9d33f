//! IPv4 and IPv6 headers, IPv6 extension headers and fragments.
//!
//! Fragments are not reassembled: the first fragment is decoded (its transport header is
//! there), later ones are marked [`Transport::Fragment`] and attributed to no port, so a
//! fragment's payload is never mistaken for a TCP/UDP header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{IpPacket, Malformed, Transport, be16, transport};

/// Where a packet sits in a fragmented datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    No,
    /// The first fragment (offset 0, more to come).
    First,
    /// A later fragment.
    Later,
}

/// Decodes an IPv4 or IPv6 packet.
pub(crate) fn decode(b: &[u8]) -> Result<IpPacket<'_>, Malformed> {
    match b.first().map(|v| v >> 4) {
        Some(4) => v4(b),
        Some(6) => v6(b),
        _ => Err(Malformed::Ip),
    }
}

fn v4(b: &[u8]) -> Result<IpPacket<'_>, Malformed> {
    let h = b.get(..20).ok_or(Malformed::Ip)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(be16(h, 2).ok_or(Malformed::Ip)?);
    if ihl < 20 || total < ihl || b.len() < ihl {
        return Err(Malformed::Ip);
    }
    let frag = be16(h, 6).ok_or(Malformed::Ip)?;
    let more = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    let fragment = match (offset, more) {
        (0, false) => Fragment::No,
        (0, true) => Fragment::First,
        _ => Fragment::Later,
    };
    let proto = h[9];
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    // Captured payload, cut to the total length (Ethernet padding is not payload).
    let end = total.min(b.len());
    let payload = b.get(ihl..end).ok_or(Malformed::Ip)?;
    let payload_len = (total - ihl) as u32;
    let transport = if fragment == Fragment::Later {
        Transport::Fragment
    } else {
        transport::decode(
            proto,
            payload,
            payload_len,
            false,
            fragment == Fragment::First,
        )?
    };
    Ok(IpPacket {
        src,
        dst,
        proto,
        ttl: h[8],
        len: total as u32,
        fragment,
        transport,
    })
}

fn v6(b: &[u8]) -> Result<IpPacket<'_>, Malformed> {
    let h = b.get(..40).ok_or(Malformed::Ip)?;
    let payload_len = usize::from(be16(h, 4).ok_or(Malformed::Ip)?);
    let mut next = h[6];
    let mut s = [0u8; 16];
    s.copy_from_slice(h.get(8..24).ok_or(Malformed::Ip)?);
    let mut d = [0u8; 16];
    d.copy_from_slice(h.get(24..40).ok_or(Malformed::Ip)?);
    let end = (40 + payload_len).min(b.len());
    let mut at = 40;
    let mut fragment = Fragment::No;
    // Walk extension headers: hop-by-hop 0, routing 43, fragment 44, destination 60.
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let nh = *b.get(at).ok_or(Malformed::Ip)?;
                let len = (usize::from(*b.get(at + 1).ok_or(Malformed::Ip)?) + 1) * 8;
                next = nh;
                at += len;
            }
            44 => {
                let nh = *b.get(at).ok_or(Malformed::Ip)?;
                let off = be16(b, at + 2).ok_or(Malformed::Ip)?;
                let more = off & 1 != 0;
                fragment = match (off >> 3, more) {
                    (0, false) => Fragment::No,
                    (0, true) => Fragment::First,
                    _ => Fragment::Later,
                };
                next = nh;
                at += 8;
            }
            _ => break,
        }
    }
    if at > end {
        return Err(Malformed::Ip);
    }
    let payload = b.get(at..end).ok_or(Malformed::Ip)?;
    let upper_len = (40 + payload_len).saturating_sub(at) as u32;
    let transport = if fragment == Fragment::Later {
        Transport::Fragment
    } else {
        transport::decode(next, payload, upper_len, true, fragment == Fragment::First)?
    };
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(s)),
        dst: IpAddr::V6(Ipv6Addr::from(d)),
        proto: next,
        ttl: h[7],
        len: (40 + payload_len) as u32,
        fragment,
        transport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_fragments_are_not_read_as_transport() {
        let mut p = vec![
            0x45, 0, 0, 28, 0, 1, 0x00, 0x10, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        p.extend([0, 53, 0, 53, 0, 8, 0, 0]);
        let ip = decode(&p).unwrap();
        assert_eq!(
            (ip.fragment, ip.transport),
            (Fragment::Later, Transport::Fragment)
        );
        p[6] = 0x20;
        p[7] = 0;
        let ip = decode(&p).unwrap();
        assert_eq!(ip.fragment, Fragment::First);
        assert!(matches!(ip.transport, Transport::Udp { sport: 53, .. }));
    }

    #[test]
    fn ipv6_with_fragment_header() {
        let mut p = vec![0x60, 0, 0, 0, 0, 16, 44, 64];
        p.extend([0u8; 15]);
        p.push(1);
        p.extend([0u8; 15]);
        p.push(2);
        p.extend([17, 0, 0, 1, 0, 0, 0, 7]);
        p.extend([0, 1, 0, 2, 0, 8, 0, 0]);
        let ip = decode(&p).unwrap();
        assert_eq!(ip.fragment, Fragment::First);
        assert!(matches!(
            ip.transport,
            Transport::Udp {
                sport: 1,
                dport: 2,
                ..
            }
        ));
        assert_eq!(ip.dst.to_string(), "::2");
    }

    #[test]
    fn bad_header_lengths_are_malformed() {
        let p = [
            0x44u8, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        assert_eq!(decode(&p), Err(Malformed::Ip));
        let p = [
            0x45u8, 0, 0, 10, 0, 0, 0, 0, 64, 6, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        assert_eq!(decode(&p), Err(Malformed::Ip));
    }
}
