//! Link layers: Ethernet II (802.1Q / 802.1ad tags), Linux cooked v1 and v2, raw IP and
//! BSD loopback. Each gives the ethertype of what it carries and where that starts.

use super::{Malformed, be16};
use crate::reader::linktype;

/// The link layer's view of a frame.
pub(crate) struct L2<'a> {
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    pub vlan: Option<u16>,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

fn mac(b: &[u8], at: usize) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    m.copy_from_slice(b.get(at..at + 6)?);
    Some(m)
}

/// Decodes the link header; `Ok(None)` for a link type we do not handle.
pub(crate) fn decode(link_type: u32, data: &[u8]) -> Result<Option<L2<'_>>, Malformed> {
    Ok(Some(match link_type {
        linktype::ETHERNET => ethernet(data)?,
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => {
            let ethertype = match data.first().map(|b| b >> 4) {
                Some(4) => 0x0800,
                Some(6) => 0x86dd,
                _ => return Err(Malformed::Ip),
            };
            L2 {
                src_mac: None,
                dst_mac: None,
                vlan: None,
                ethertype,
                payload: data,
            }
        }
        linktype::LINUX_SLL => {
            // packet type (2), ARPHRD (2), address length (2), address (8), protocol (2)
            let ethertype = be16(data, 14).ok_or(Malformed::Link)?;
            let addr_len = usize::from(be16(data, 4).ok_or(Malformed::Link)?);
            let src_mac = if addr_len == 6 { mac(data, 6) } else { None };
            L2 {
                src_mac,
                dst_mac: None,
                vlan: None,
                ethertype,
                payload: data.get(16..).ok_or(Malformed::Link)?,
            }
        }
        linktype::LINUX_SLL2 => {
            // protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
            // address length (1), address (8)
            let ethertype = be16(data, 0).ok_or(Malformed::Link)?;
            let addr_len = data.get(11).copied().ok_or(Malformed::Link)?;
            let src_mac = if addr_len == 6 { mac(data, 12) } else { None };
            L2 {
                src_mac,
                dst_mac: None,
                vlan: None,
                ethertype,
                payload: data.get(20..).ok_or(Malformed::Link)?,
            }
        }
        linktype::NULL | linktype::LOOP => {
            let fam = data.get(..4).ok_or(Malformed::Link)?;
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let ethertype = match (le, be) {
                (2, _) | (_, 2) => 0x0800,
                (24 | 28 | 30, _) | (_, 24 | 28 | 30) => 0x86dd,
                _ => return Err(Malformed::Link),
            };
            L2 {
                src_mac: None,
                dst_mac: None,
                vlan: None,
                ethertype,
                payload: data.get(4..).ok_or(Malformed::Link)?,
            }
        }
        _ => return Ok(None),
    }))
}

fn ethernet(data: &[u8]) -> Result<L2<'_>, Malformed> {
    let dst_mac = mac(data, 0).ok_or(Malformed::Link)?;
    let src_mac = mac(data, 6).ok_or(Malformed::Link)?;
    let mut at = 12;
    let mut vlan = None;
    let mut ethertype = be16(data, at).ok_or(Malformed::Link)?;
    // At most two tags (802.1ad outer + 802.1Q inner), and a third for good measure.
    for _ in 0..3 {
        if !matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        vlan = Some(be16(data, at + 2).ok_or(Malformed::Link)? & 0x0fff);
        at += 4;
        ethertype = be16(data, at).ok_or(Malformed::Link)?;
    }
    // 802.3 length field with LLC (STP and friends): not IP.
    if ethertype < 0x0600 {
        ethertype = 0;
    }
    Ok(L2 {
        src_mac: Some(src_mac),
        dst_mac: Some(dst_mac),
        vlan,
        ethertype,
        payload: data.get(at + 2..).ok_or(Malformed::Link)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_tags_are_skipped() {
        let mut f = vec![0u8; 12];
        f.extend([0x81, 0x00, 0x00, 0x2a, 0x08, 0x00, 0x45]);
        let l2 = decode(1, &f).unwrap().unwrap();
        assert_eq!(
            (l2.vlan, l2.ethertype, l2.payload),
            (Some(42), 0x0800, &[0x45u8][..])
        );
    }

    #[test]
    fn cooked_v1_and_v2() {
        let mut v1 = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd];
        v1.push(0x60);
        let l2 = decode(113, &v1).unwrap().unwrap();
        assert_eq!(
            (l2.ethertype, l2.src_mac),
            (0x86dd, Some([1, 2, 3, 4, 5, 6]))
        );
        let mut v2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 9, 9, 9, 9, 9, 9, 0, 0,
        ];
        v2.push(0x45);
        let l2 = decode(276, &v2).unwrap().unwrap();
        assert_eq!((l2.ethertype, l2.payload), (0x0800, &[0x45u8][..]));
        assert!(decode(276, &v2[..10]).is_err());
    }

    #[test]
    fn unknown_link_type_is_not_an_error() {
        assert!(decode(147, b"whatever").unwrap().is_none());
    }
}
