//! DHCP messages (RFC 2131/2132) as device evidence: the client's MAC, the address it
//! asked for or was given, its host name (option 12, or the FQDN of option 81), its
//! parameter request list (option 55) and vendor class (option 60).

use std::net::Ipv4Addr;

/// What a DHCP message says about its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Dhcp {
    /// 1 DISCOVER, 2 OFFER, 3 REQUEST, 4 DECLINE, 5 ACK, 6 NAK, 7 RELEASE, 8 INFORM.
    pub msg_type: u8,
    /// BOOTREQUEST (client → server).
    pub from_client: bool,
    /// `chaddr`, when the hardware type is Ethernet.
    pub client_mac: Option<[u8; 6]>,
    /// The client's address: `ciaddr`, `yiaddr` of an ACK, or option 50.
    pub client_ip: Option<Ipv4Addr>,
    /// Option 12, or option 81's name.
    pub hostname: Option<String>,
    /// Option 55 as `1,3,6,15`.
    pub params: Option<String>,
    /// Option 60.
    pub vendor_class: Option<String>,
}

fn ip_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let s = b.get(at..at + 4)?;
    let ip = Ipv4Addr::new(s[0], s[1], s[2], s[3]);
    (!ip.is_unspecified()).then_some(ip)
}

/// A clean, printable host name: NULs and control characters dropped (clients send
/// `nas1\0`), at most 63 characters.
fn name(raw: &[u8]) -> Option<String> {
    let s: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(63)
        .collect();
    let s = s.trim().trim_end_matches('.').to_string();
    (!s.is_empty()).then_some(s)
}

/// Parses a DHCP message; `None` when it is not one.
pub(crate) fn parse(b: &[u8]) -> Option<Dhcp> {
    if b.get(236..240)? != [0x63, 0x82, 0x53, 0x63] {
        return None;
    }
    let op = *b.first()?;
    let mut d = Dhcp {
        from_client: op == 1,
        ..Dhcp::default()
    };
    if b.get(1..3)? == [1, 6] {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(b.get(28..34)?);
        d.client_mac = Some(mac);
    }
    let (ciaddr, yiaddr) = (ip_at(b, 12), ip_at(b, 16));
    let mut requested = None;
    let mut at = 240;
    while let Some(&code) = b.get(at) {
        match code {
            0 => {
                at += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = usize::from(*b.get(at + 1)?);
        let Some(v) = b.get(at + 2..at + 2 + len) else {
            break;
        };
        match code {
            53 => d.msg_type = v.first().copied().unwrap_or(0),
            12 => d.hostname = name(v),
            // Flags, two obsolete rcodes, then the name: wire format when the E flag
            // (0x04) is set, ASCII otherwise.
            81 if d.hostname.is_none() => {
                let raw = v.get(3..).unwrap_or(&[]);
                d.hostname = if v.first().is_some_and(|f| f & 0x04 != 0) {
                    let mut labels = Vec::new();
                    let mut i = 0;
                    while let Some(&l) = raw.get(i) {
                        if l == 0 || l > 63 {
                            break;
                        }
                        labels.push(
                            String::from_utf8_lossy(
                                raw.get(i + 1..i + 1 + usize::from(l)).unwrap_or(&[]),
                            )
                            .into_owned(),
                        );
                        i += 1 + usize::from(l);
                    }
                    name(labels.join(".").as_bytes())
                } else {
                    name(raw)
                };
            }
            55 => {
                d.params = Some(v.iter().map(u8::to_string).collect::<Vec<_>>().join(","));
            }
            60 => d.vendor_class = name(v),
            50 if v.len() == 4 => requested = ip_at(v, 0),
            _ => {}
        }
        at += 2 + len;
    }
    d.client_ip = ciaddr
        .or(if d.msg_type == 5 { yiaddr } else { None })
        .or(requested);
    Some(d)
}

/// An operating-system guess from DHCP's vendor class and parameter request list
/// (the fingerprints Fingerbank and p0f-style tools popularised, reduced to the
/// families they tell apart reliably).
pub(crate) fn os_guess(vendor_class: Option<&str>, params: Option<&str>) -> Option<&'static str> {
    if let Some(v) = vendor_class {
        let v = v.to_ascii_lowercase();
        for (needle, os) in [
            ("msft", "Windows"),
            ("android", "Android"),
            ("dhcpcd", "Linux"),
            ("udhcp", "Linux (embedded)"),
            ("linux", "Linux"),
            ("cisco", "Cisco IOS"),
            ("aastra", "VoIP phone"),
            ("polycom", "VoIP phone"),
        ] {
            if v.contains(needle) {
                return Some(os);
            }
        }
    }
    let p: Vec<u8> = params?.split(',').filter_map(|x| x.parse().ok()).collect();
    let has = |o: u8| p.contains(&o);
    if p.starts_with(&[1, 121, 3, 6, 15]) || p.starts_with(&[1, 3, 6, 15, 119, 252]) {
        Some("macOS/iOS")
    } else if has(249) && has(43) && has(44) {
        Some("Windows")
    } else if p.starts_with(&[1, 28, 2]) || (has(28) && has(2) && has(42)) {
        Some("Linux")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DHCP REQUEST like the one in suricata-verify's dhcp-eve-extended capture.
    pub(crate) fn request(mac: [u8; 6], options: &[(u8, &[u8])]) -> Vec<u8> {
        let mut m = vec![1, 1, 6, 0];
        m.extend([0; 24]);
        m.extend(mac);
        m.extend([0; 10 + 64 + 128]);
        m.extend([0x63, 0x82, 0x53, 0x63]);
        for (code, v) in options {
            m.push(*code);
            m.push(v.len() as u8);
            m.extend(*v);
        }
        m.push(255);
        m
    }

    #[test]
    fn client_fields_and_os() {
        let mac = [0x00, 0x11, 0x32, 0x17, 0x49, 0xf0];
        let m = request(
            mac,
            &[
                (53, &[3]),
                (50, &[192, 168, 1, 20]),
                (12, b"nas1\0"),
                (55, &[1, 3, 6, 15, 119, 252]),
                (60, b"MSFT 5.0"),
            ],
        );
        let d = parse(&m).unwrap();
        assert_eq!(d.msg_type, 3);
        assert!(d.from_client);
        assert_eq!(d.client_mac, Some(mac));
        assert_eq!(d.client_ip, Some(Ipv4Addr::new(192, 168, 1, 20)));
        assert_eq!(d.hostname.as_deref(), Some("nas1"));
        assert_eq!(d.params.as_deref(), Some("1,3,6,15,119,252"));
        assert_eq!(
            os_guess(d.vendor_class.as_deref(), d.params.as_deref()),
            Some("Windows")
        );
        assert_eq!(os_guess(None, d.params.as_deref()), Some("macOS/iOS"));
        // Option 81 in wire format.
        let fqdn = request(mac, &[(53, &[1]), (81, b"\x05\0\0\x04host\x03lan\0")]);
        assert_eq!(parse(&fqdn).unwrap().hostname.as_deref(), Some("host.lan"));
        for cut in 0..m.len() {
            let _ = parse(&m[..cut]);
        }
        assert_eq!(parse(&m[..200]), None);
    }
}
