//! TCP, UDP, ICMP and ICMPv6 headers.

use super::{Malformed, Transport, be16};

/// Decodes the transport header of protocol `proto` from `b` (the captured part of the
/// IP payload; `ip_payload_len` is its length by the IP header).
pub(crate) fn decode(
    proto: u8,
    b: &[u8],
    ip_payload_len: u32,
    v6: bool,
    first_fragment: bool,
) -> Result<Transport<'_>, Malformed> {
    match proto {
        6 => {
            let sport = be16(b, 0).ok_or(Malformed::Transport)?;
            let dport = be16(b, 2).ok_or(Malformed::Transport)?;
            let off = usize::from(b.get(12).ok_or(Malformed::Transport)? >> 4) * 4;
            let flags = *b.get(13).ok_or(Malformed::Transport)?;
            let seq = (u32::from(be16(b, 4).ok_or(Malformed::Transport)?) << 16)
                | u32::from(be16(b, 6).ok_or(Malformed::Transport)?);
            if off < 20 || (b.len() < off && !first_fragment) || off as u32 > ip_payload_len {
                return Err(Malformed::Transport);
            }
            let payload = b.get(off..).unwrap_or(&[]);
            Ok(Transport::Tcp {
                sport,
                dport,
                flags,
                seq,
                payload,
                payload_len: ip_payload_len - off as u32,
            })
        }
        17 => {
            let sport = be16(b, 0).ok_or(Malformed::Transport)?;
            let dport = be16(b, 2).ok_or(Malformed::Transport)?;
            let len = usize::from(be16(b, 4).ok_or(Malformed::Transport)?);
            if b.len() < 8 {
                return Err(Malformed::Transport);
            }
            // The UDP length bounds the payload unless this is a first fragment (then
            // only part of it is here) or a jumbogram (0).
            let end = if len >= 8 { len.min(b.len()) } else { b.len() };
            Ok(Transport::Udp {
                sport,
                dport,
                payload: b.get(8..end).unwrap_or(&[]),
            })
        }
        1 | 58 if (proto == 1) != v6 => {
            let icmp_type = *b.first().ok_or(Malformed::Transport)?;
            let code = *b.get(1).ok_or(Malformed::Transport)?;
            let is_echo = if v6 {
                matches!(icmp_type, 128 | 129)
            } else {
                matches!(icmp_type, 0 | 8)
            };
            let echo_id = if is_echo { be16(b, 4) } else { None };
            Ok(Transport::Icmp {
                icmp_type,
                code,
                echo_id,
            })
        }
        _ => Ok(Transport::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_data_offset_is_checked() {
        let mut h = vec![
            0, 80, 0, 81, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x02, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(decode(6, &h, 20, false, false), Err(Malformed::Transport));
        h[12] = 0x60;
        assert_eq!(decode(6, &h, 20, false, false), Err(Malformed::Transport));
        h[12] = 0x50;
        assert!(matches!(
            decode(6, &h, 20, false, false),
            Ok(Transport::Tcp {
                sport: 80,
                dport: 81,
                flags: 2,
                ..
            })
        ));
    }

    #[test]
    fn icmp_echo_id() {
        let b = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        assert_eq!(
            decode(1, &b, 8, false, false),
            Ok(Transport::Icmp {
                icmp_type: 8,
                code: 0,
                echo_id: Some(0x1234)
            })
        );
        assert_eq!(decode(1, &b, 8, true, false), Ok(Transport::Other));
    }
}
