//! DNS (and mDNS, LLMNR) messages: the first question's name and type.

/// The first question of a DNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    pub name: String,
    pub qtype: u16,
}

/// Parses a DNS message's first question (following compression pointers, bounded);
/// `None` when it is not a plausible DNS message.
pub(crate) fn parse(b: &[u8]) -> Option<Question> {
    let qd = u16::from_be_bytes([*b.get(4)?, *b.get(5)?]);
    let opcode = (b.get(2)? >> 3) & 0x0f;
    if qd == 0 || qd > 64 || opcode > 6 {
        return None;
    }
    let (name, end) = read_name(b, 12)?;
    let qtype = u16::from_be_bytes([*b.get(end)?, *b.get(end + 1)?]);
    Some(Question { name, qtype })
}

/// Counts one query datagram of a DNS flow into `info` (tunnel detection): every query,
/// and those whose name looks like data rather than a host name.
pub(crate) fn count_query(info: &mut super::AppInfo, payload: &[u8]) {
    // Responses (QR bit) are the other direction's business.
    if payload.get(2).is_none_or(|b| b & 0x80 != 0) {
        return;
    }
    let Some(q) = parse(payload) else {
        return;
    };
    info.dns_queries = info.dns_queries.saturating_add(1);
    if suspicious(&q.name, q.qtype) {
        info.dns_suspicious = info.dns_suspicious.saturating_add(1);
        if info.dns_domain.is_none() {
            info.dns_domain = Some(base_domain(&q.name));
        }
    }
}

/// True for a query name that carries data: a label (left of the registered domain) of
/// 40+ characters, one of 24+ with more than 4.1 bits of entropy per character, one with
/// binary bytes, or a NULL/TXT question with a label of 20+ characters.
pub(crate) fn suspicious(name: &str, qtype: u16) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    let sub = labels.len().saturating_sub(2);
    labels.iter().take(sub).any(|l| {
        let n = l.len();
        n >= 40
            || (n >= 8 && l.contains('\\'))
            || (n >= 24 && entropy(l) > 4.1)
            || (n >= 20 && matches!(qtype, 10 | 16))
    })
}

/// Shannon entropy of a string's bytes, in bits per byte.
pub(crate) fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let n = s.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The last two labels of a name, lower-cased (`pirate.sea` of `abc.pirate.sea`).
pub(crate) fn base_domain(name: &str) -> String {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    let from = labels.len().saturating_sub(2);
    labels
        .get(from..)
        .unwrap_or(&[])
        .join(".")
        .to_ascii_lowercase()
}

/// The address records of a DNS, mDNS or NBNS message: `(name, address)` of every A,
/// AAAA and NetBIOS NB record in the answer, authority and additional sections, and of
/// every IPv4 PTR record (`5.1.168.192.in-addr.arpa` → its target name). Empty when the
/// message does not parse; bounded to 64 records.
pub(crate) fn address_records(b: &[u8]) -> Vec<(String, std::net::IpAddr)> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut out = Vec::new();
    let count =
        |at: usize| -> usize { usize::from(super::super::decode::be16(b, at).unwrap_or(0)) };
    let (qd, rr) = (count(4), count(6) + count(8) + count(10));
    if qd > 16 || rr == 0 {
        return out;
    }
    let mut at = 12;
    for _ in 0..qd {
        let Some((_, end)) = read_name(b, at) else {
            return out;
        };
        at = end + 4;
    }
    for _ in 0..rr.min(64) {
        let Some((name, end)) = read_name(b, at) else {
            return out;
        };
        let (Some(rtype), Some(rdlen)) = (
            super::super::decode::be16(b, end),
            super::super::decode::be16(b, end + 8),
        ) else {
            return out;
        };
        let data_at = end + 10;
        let Some(data) = b.get(data_at..data_at + usize::from(rdlen)) else {
            return out;
        };
        match (rtype, data) {
            (1, [a, b2, c, d]) => out.push((name, IpAddr::V4(Ipv4Addr::new(*a, *b2, *c, *d)))),
            (28, d) if d.len() == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(d);
                out.push((name, IpAddr::V6(Ipv6Addr::from(o))));
            }
            (32, d) => {
                if let Some(nb) = netbios_name(&name) {
                    for chunk in d.chunks_exact(6) {
                        if let [_, _, a, b2, c, d] = chunk {
                            out.push((nb.clone(), IpAddr::V4(Ipv4Addr::new(*a, *b2, *c, *d))));
                        }
                    }
                }
            }
            (12, _) => {
                if let (Some(ip), Some((target, _))) = (reverse_v4(&name), read_name(b, data_at)) {
                    out.push((target, IpAddr::V4(ip)));
                }
            }
            _ => {}
        }
        at = data_at + usize::from(rdlen);
    }
    out
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
fn reverse_v4(name: &str) -> Option<std::net::Ipv4Addr> {
    let rest = name.to_ascii_lowercase();
    let rest = rest.strip_suffix(".in-addr.arpa")?;
    let parts: Vec<u8> = rest
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match parts.as_slice() {
        [d, c, b, a] => Some(std::net::Ipv4Addr::new(*a, *b, *c, *d)),
        _ => None,
    }
}

/// Decodes a NetBIOS first-level encoded name (32 letters `A`–`P`, RFC 1001 §14.1):
/// the 15-character name without its padding (the 16th byte, the service suffix, is
/// dropped).
pub(crate) fn netbios_name(encoded: &str) -> Option<String> {
    let label = encoded.split('.').next()?.as_bytes();
    if label.len() != 32 {
        return None;
    }
    let mut name = String::with_capacity(15);
    for pair in label.chunks_exact(2).take(15) {
        let (hi, lo) = (
            pair.first()?.checked_sub(b'A')?,
            pair.get(1)?.checked_sub(b'A')?,
        );
        if hi > 15 || lo > 15 {
            return None;
        }
        let c = (hi << 4) | lo;
        if c.is_ascii_graphic() || c == b' ' {
            name.push(c as char);
        } else {
            return None;
        }
    }
    let name = name.trim_end().to_string();
    (!name.is_empty()).then_some(name)
}

/// Reads a (possibly compressed) name at `at`; returns it and the offset after it.
fn read_name(b: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *b.get(at)?;
        match len {
            0 => {
                let after = end.unwrap_or(at + 1);
                if name.is_empty() {
                    name.push('.');
                }
                return Some((name, after));
            }
            l if l & 0xc0 == 0xc0 => {
                let ptr = (usize::from(l & 0x3f) << 8) | usize::from(*b.get(at + 1)?);
                if end.is_none() {
                    end = Some(at + 2);
                }
                if ptr >= at {
                    return None;
                }
                at = ptr;
            }
            l if l & 0xc0 == 0 => {
                let label = b.get(at + 1..at + 1 + usize::from(l))?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &c in label {
                    if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                        name.push(c as char);
                    } else {
                        name.push_str(&format!("\\{c:03}"));
                    }
                }
                if name.len() > 1024 {
                    return None;
                }
                at += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend(l.as_bytes());
        }
        m.push(0);
        m.extend(qtype.to_be_bytes());
        m.extend([0, 1]);
        m
    }

    #[test]
    fn first_question() {
        assert_eq!(
            parse(&query("www.wireshark.org", 1)),
            Some(Question {
                name: "www.wireshark.org".into(),
                qtype: 1
            })
        );
    }

    #[test]
    fn binary_labels_are_escaped_and_truncation_is_none() {
        let mut m = query("ab.c", 10);
        m[13] = 0;
        assert_eq!(parse(&m).unwrap().name, "\\000b.c");
        let q = query("example.com", 1);
        for cut in 0..q.len() - 2 {
            assert_eq!(parse(&q[..cut]), None, "cut {cut}");
        }
    }

    #[test]
    fn tunnel_labels_are_suspicious_and_host_names_are_not() {
        assert!(suspicious(
            "paaahhcdbbg4vfnfjjqaqdgx2e2tkgmijkmfwssnp.pirate.sea",
            10
        ));
        assert!(suspicious("0ebp6cx81hq2v7zgfa3kdrn9m4.t.example.com", 1));
        assert!(!suspicious("upload.wikimedia.org", 1));
        assert!(!suspicious("r4---sn-4g5e6nsz.googlevideo.com", 1));
        assert!(!suspicious("a-very-long-but-ordinary-host.example.com", 1));
        assert_eq!(base_domain("abc.Pirate.sea."), "pirate.sea");
        let mut info = super::super::AppInfo::default();
        let q = query("x0ebp6cx81hq2v7zgfa3kdrn9m4zz.pirate.sea", 10);
        count_query(&mut info, &q);
        count_query(&mut info, &query("www.example.com", 1));
        assert_eq!(
            (
                info.dns_queries,
                info.dns_suspicious,
                info.dns_domain.as_deref()
            ),
            (2, 1, Some("pirate.sea"))
        );
    }

    #[test]
    fn address_records_of_answers_and_netbios_names() {
        let mut m = query("host.local", 1);
        m[7] = 2; // two answers
        m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 192, 168, 1, 7]);
        m.extend([0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 120, 0, 16]);
        m.extend([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        let got = address_records(&m);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            ("host.local".to_string(), "192.168.1.7".parse().unwrap())
        );
        assert_eq!(got[1].1, "fe80::7".parse::<std::net::IpAddr>().unwrap());
        for cut in 0..m.len() {
            assert!(address_records(&m[..cut]).len() < 2, "cut {cut}");
        }
        // "WORKSTATION" padded with spaces, suffix 0x00.
        let mut enc = String::new();
        for c in format!("{:<15}", "WORKSTATION").bytes().chain([0u8]) {
            enc.push((b'A' + (c >> 4)) as char);
            enc.push((b'A' + (c & 15)) as char);
        }
        assert_eq!(netbios_name(&enc).as_deref(), Some("WORKSTATION"));
        assert_eq!(netbios_name("ABC"), None);
        assert_eq!(
            reverse_v4("7.1.168.192.in-addr.arpa"),
            Some([192, 168, 1, 7].into())
        );
    }

    #[test]
    fn pointer_loops_end() {
        let mut m = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend([0xc0, 12, 0, 1]);
        assert_eq!(parse(&m), None);
    }
}
