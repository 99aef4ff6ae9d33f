//! Application protocol identification from the first payload of each direction.
//!
//! Each direction keeps at most [`INSPECT_BYTES`] of its first payload (segments in
//! arrival order, no reassembly by sequence number) until its parser has what it needs;
//! then the buffer is dropped. DNS, HTTP, TLS and SSH are recognised from their bytes;
//! anything else is named by its well-known port and marked `by_port`.

pub(crate) mod dns;
mod http;
mod ssh;
pub mod tls;

use serde::{Deserialize, Serialize};

/// Bytes of a direction's first payload kept for identification.
pub const INSPECT_BYTES: usize = 16 * 1024;

/// What the flow's payload said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    /// The application protocol (`dns`, `http`, `tls`, `ssh`, `quic`, … or a port name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// True when `protocol` comes only from the port number, not the payload.
    #[serde(default)]
    pub by_port: bool,
    /// DNS (and mDNS/LLMNR) question name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_query: Option<String>,
    /// DNS question type (1 A, 28 AAAA, 10 NULL, 16 TXT …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_qtype: Option<u16>,
    /// HTTP request method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// HTTP request target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// HTTP Host header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_host: Option<String>,
    /// HTTP User-Agent header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<String>,
    /// HTTP response status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// TLS server name indication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_sni: Option<String>,
    /// TLS ALPN protocols offered, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_alpn: Option<String>,
    /// JA3 client fingerprint (MD5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    /// JA4 client fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// JA3S server fingerprint (MD5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<String>,
    /// SSH client banner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_client: Option<String>,
    /// SSH server banner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_server: Option<String>,
    /// HASSH of the client's KEXINIT (MD5 of its kex;enc;mac;comp lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hassh: Option<String>,
    /// hasshServer of the server's KEXINIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hassh_server: Option<String>,
    /// DNS over UDP: queries seen in the flow (every datagram of the originator).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dns_queries: u32,
    /// Of those, queries that look like tunnelled data (`dns::suspicious`): a label of
    /// 40+ characters, a high-entropy or binary one, or a NULL/TXT question with a long one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dns_suspicious: u32,
    /// The domain the suspicious queries went to (its last two labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_domain: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Per-flow identification state.
#[derive(Debug, Default)]
pub(crate) struct Inspector {
    buf: [Vec<u8>; 2],
    done: [bool; 2],
    /// Datagrams tried per direction (UDP gives up after [`UDP_TRIES`]).
    tries: [u8; 2],
}

/// Datagrams of a direction tried before a UDP flow is left unidentified (by payload).
const UDP_TRIES: u8 = 4;

/// Transport of the flow, for the parsers that care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L4 {
    Tcp,
    Udp,
}

impl Inspector {
    /// True when neither direction wants more bytes.
    pub(crate) fn finished(&self) -> bool {
        self.done[0] && self.done[1]
    }

    /// Feeds one packet's payload (`dir` 0 = originator → responder).
    pub(crate) fn feed(
        &mut self,
        info: &mut AppInfo,
        l4: L4,
        dir: usize,
        payload: &[u8],
        ports: (u16, u16),
    ) {
        let d = dir.min(1);
        if payload.is_empty() || self.done[d] {
            return;
        }
        match l4 {
            // Datagrams are parsed one at a time; the first one that parses settles it.
            L4::Udp => {
                if info.protocol.as_deref() == Some("dns") && !info.by_port {
                    // A DNS flow stays inspected: each query counts for tunnel detection.
                    if d == 0 {
                        dns::count_query(info, payload);
                    }
                } else if udp(info, d, payload, ports) {
                    if info.protocol.as_deref() == Some("dns") {
                        // DNS stays inspected: each query of the originator counts.
                        self.done = [false, true];
                        if d == 0 {
                            dns::count_query(info, payload);
                        }
                    } else {
                        // One direction settled is enough for the other UDP protocols.
                        self.done = [true, true];
                    }
                } else if let Some(t) = self.tries.get_mut(d) {
                    *t += 1;
                    self.done[d] = *t >= UDP_TRIES;
                }
            }
            L4::Tcp => {
                let Some(buf) = self.buf.get_mut(d) else {
                    return;
                };
                let room = INSPECT_BYTES.saturating_sub(buf.len());
                buf.extend_from_slice(payload.get(..room.min(payload.len())).unwrap_or(&[]));
                let full = buf.len() >= INSPECT_BYTES;
                let settled = tcp(info, d, buf, ports);
                if settled || full {
                    self.done[d] = true;
                    *buf = Vec::new();
                }
            }
        }
    }
}

/// Tries the stream parsers on a direction's buffered bytes; true when settled (parsed,
/// or certainly not one of ours).
fn tcp(info: &mut AppInfo, dir: usize, buf: &[u8], ports: (u16, u16)) -> bool {
    match tls::parse(buf, dir == 0) {
        tls::Outcome::NeedMore => return false,
        tls::Outcome::Client(hello) => {
            info.protocol = Some("tls".into());
            info.by_port = false;
            info.tls_sni = hello.sni.clone();
            info.tls_alpn = (!hello.alpn.is_empty()).then(|| hello.alpn.join(","));
            info.ja3 = Some(hello.ja3());
            info.ja4 = Some(hello.ja4('t'));
            return true;
        }
        tls::Outcome::Server(hello) => {
            info.protocol = Some("tls".into());
            info.by_port = false;
            info.ja3s = Some(hello.ja3s());
            return true;
        }
        tls::Outcome::NotTls => {}
    }
    if let Some(banner) = ssh::banner(buf) {
        match banner {
            ssh::Banner::Partial => return false,
            ssh::Banner::Line(line) => {
                info.protocol = Some("ssh".into());
                info.by_port = false;
                let hassh = match ssh::kexinit(buf) {
                    ssh::Kex::NeedMore => None,
                    ssh::Kex::Absent => Some(None),
                    ssh::Kex::Init(k) => Some(Some(k.hassh(dir == 0))),
                };
                if dir == 0 {
                    info.ssh_client = Some(line);
                } else {
                    info.ssh_server = Some(line);
                }
                // The banner is settled; wait for the KEXINIT that follows it.
                let Some(hassh) = hassh else {
                    return false;
                };
                if dir == 0 {
                    info.hassh = hassh;
                } else {
                    info.hassh_server = hassh;
                }
                return true;
            }
        }
    }
    if is_smb(buf) {
        info.protocol = Some("smb".into());
        info.by_port = false;
        return true;
    }
    match http::parse(buf, dir == 0) {
        http::Outcome::NeedMore => false,
        http::Outcome::Request(req) => {
            info.protocol = Some("http".into());
            info.by_port = false;
            info.http_method = Some(req.method);
            info.http_path = Some(req.path);
            info.http_host = req.host;
            info.http_user_agent = req.user_agent;
            true
        }
        http::Outcome::Response(status) => {
            if info.protocol.is_none() || info.by_port {
                info.protocol = Some("http".into());
                info.by_port = false;
            }
            info.http_status = Some(status);
            true
        }
        http::Outcome::NotHttp => {
            // DNS over TCP: a 2-byte length prefix.
            if let Some(q) = buf.get(2..).and_then(dns::parse)
                && (ports.0 == 53 || ports.1 == 53)
            {
                set_dns(info, q, ports);
            }
            true
        }
    }
}

fn udp(info: &mut AppInfo, _dir: usize, payload: &[u8], ports: (u16, u16)) -> bool {
    let dns_port = |p: u16| matches!(p, 53 | 5353 | 5355);
    if (dns_port(ports.0) || dns_port(ports.1))
        && let Some(q) = dns::parse(payload)
    {
        set_dns(info, q, ports);
        return true;
    }
    if matches!(ports, (67 | 68, 67 | 68)) && is_dhcp(payload) {
        info.protocol = Some("dhcp".into());
        info.by_port = false;
        return true;
    }
    if (ports.0 == 137 || ports.1 == 137) && is_nbns(payload) {
        info.protocol = Some("nbns".into());
        info.by_port = false;
        return true;
    }
    if (ports.0 == 443 || ports.1 == 443) && is_quic_long_header(payload) {
        info.protocol = Some("quic".into());
        info.by_port = false;
        return true;
    }
    false
}

/// BOOTP with the DHCP magic cookie (RFC 2131 §3).
fn is_dhcp(p: &[u8]) -> bool {
    matches!(p.first(), Some(1 | 2)) && p.get(236..240) == Some(&[0x63, 0x82, 0x53, 0x63][..])
}

/// A NetBIOS name service message (RFC 1002 §4.2): one question or one answer whose
/// name is the 32-character first-level encoding.
fn is_nbns(p: &[u8]) -> bool {
    let count = |at: usize| u32::from(crate::decode::be16(p, at).unwrap_or(u16::MAX));
    let (qd, an) = (count(4), count(6));
    qd + an >= 1
        && qd <= 1
        && an <= 1
        && p.get(12) == Some(&0x20)
        && p.get(13..45)
            .is_some_and(|n| n.iter().all(|c| (b'A'..=b'P').contains(c)))
}

/// SMB over TCP 139/445: a NetBIOS session message carrying SMB1 (`\xffSMB`), SMB2/3
/// (`\xfeSMB`) or an SMB3 transform header (`\xfdSMB`).
fn is_smb(buf: &[u8]) -> bool {
    buf.first() == Some(&0) && matches!(buf.get(4..8), Some([0xfd..=0xff, b'S', b'M', b'B']))
}

fn is_quic_long_header(p: &[u8]) -> bool {
    matches!(p.first(), Some(b) if b & 0xc0 == 0xc0)
        && matches!(
            p.get(1..5),
            Some([0, 0, 0, 1]) | Some([0x6b, 0x33, 0x43, 0xcf])
        )
}

fn set_dns(info: &mut AppInfo, q: dns::Question, ports: (u16, u16)) {
    let name = match (ports.0, ports.1) {
        (5353, _) | (_, 5353) => "mdns",
        (5355, _) | (_, 5355) => "llmnr",
        _ => "dns",
    };
    info.protocol = Some(name.into());
    info.by_port = false;
    info.dns_query = Some(q.name);
    info.dns_qtype = Some(q.qtype);
}

/// Names a protocol by its well-known port (`low` = the lower of the two ports).
pub fn port_name(tcp: bool, sport: u16, dport: u16) -> Option<&'static str> {
    let name = |p: u16| -> Option<&'static str> {
        Some(match (tcp, p) {
            (true, 20 | 21) => "ftp",
            (true, 22) => "ssh",
            (true, 23) => "telnet",
            (true, 25 | 587) => "smtp",
            (_, 53) => "dns",
            (false, 67 | 68) => "dhcp",
            (true, 80 | 8080) => "http",
            (true, 110) => "pop3",
            (false, 123) => "ntp",
            (false, 137) => "nbns",
            (false, 138) => "netbios-dgm",
            (true, 139) => "netbios-ssn",
            (true, 143) => "imap",
            (false, 161 | 162) => "snmp",
            (true, 443) => "tls",
            (false, 443) => "quic",
            (true, 445) => "smb",
            (false, 500) => "isakmp",
            (_, 514) => "syslog",
            (false, 1900) => "ssdp",
            (true, 3389) => "rdp",
            (false, 5353) => "mdns",
            (false, 5355) => "llmnr",
            _ => return None,
        })
    };
    // The server side is usually the lower port; try the destination first.
    name(dport).or_else(|| name(sport))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_is_identified() {
        let mut info = AppInfo::default();
        let mut ins = Inspector::default();
        ins.feed(
            &mut info,
            L4::Tcp,
            0,
            b"GET /a?b=1 HTTP/1.1\r\nHost: ex",
            (40000, 80),
        );
        assert_eq!(info.protocol, None, "waits for the end of the head");
        ins.feed(
            &mut info,
            L4::Tcp,
            0,
            b"ample.com\r\nUser-Agent: curl/8\r\n\r\n",
            (40000, 80),
        );
        assert_eq!(info.protocol.as_deref(), Some("http"));
        assert_eq!(info.http_host.as_deref(), Some("example.com"));
        assert_eq!(info.http_path.as_deref(), Some("/a?b=1"));
        assert_eq!(info.http_user_agent.as_deref(), Some("curl/8"));
    }

    #[test]
    fn ssh_banners_both_ways() {
        let mut info = AppInfo::default();
        let mut ins = Inspector::default();
        ins.feed(
            &mut info,
            L4::Tcp,
            1,
            b"SSH-2.0-OpenSSH_7.4\r\n",
            (50000, 22),
        );
        ins.feed(&mut info, L4::Tcp, 0, b"SSH-2.0-PuTTY\r\n", (50000, 22));
        assert_eq!(info.ssh_server.as_deref(), Some("SSH-2.0-OpenSSH_7.4"));
        assert_eq!(info.ssh_client.as_deref(), Some("SSH-2.0-PuTTY"));
        assert!(!ins.finished(), "each side's KEXINIT is still to come");
        let lists = ["k", "h", "e1", "e2", "m1", "m2", "none", "none", "", ""];
        let kex = ssh::kexinit_packet(&lists);
        ins.feed(&mut info, L4::Tcp, 0, &kex, (50000, 22));
        ins.feed(&mut info, L4::Tcp, 1, &kex, (50000, 22));
        assert!(ins.finished());
        assert_eq!(
            info.hassh.as_deref(),
            Some(tls::md5_hex("k;e1;m1;none").as_str())
        );
        assert_eq!(
            info.hassh_server.as_deref(),
            Some(tls::md5_hex("k;e2;m2;none").as_str())
        );
    }

    #[test]
    fn unknown_datagrams_are_tried_a_few_times_then_left() {
        let mut info = AppInfo::default();
        let mut ins = Inspector::default();
        for _ in 0..UDP_TRIES {
            assert!(!ins.done[0]);
            ins.feed(&mut info, L4::Udp, 0, b"\x01\x01\x06\x00 not dns", (68, 67));
        }
        assert!(ins.done[0] && !ins.done[1]);
        assert_eq!(info.protocol, None);
    }

    /// Random and mutated payloads through every parser, both transports, both
    /// directions: never a panic, and the buffer never grows past its bound.
    #[test]
    fn random_payloads_never_panic() {
        let mut s: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let seeds: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"SSH-2.0-x\r\n",
            b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03",
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01",
        ];
        for round in 0..20_000usize {
            let mut p: Vec<u8> = seeds[round % 4].to_vec();
            let n = (next() % 64) as usize;
            if round % 3 == 0 {
                p = (0..n).map(|_| next() as u8).collect();
            } else {
                for _ in 0..3 {
                    if !p.is_empty() {
                        let i = (next() as usize) % p.len();
                        p[i] = next() as u8;
                    }
                }
                p.extend((0..n).map(|_| next() as u8));
            }
            let ports = [
                (40000, 80),
                (40000, 53),
                (40000, 443),
                (5353, 5353),
                (1, 22),
            ][round % 5];
            let mut info = AppInfo::default();
            let mut ins = Inspector::default();
            for dir in [0, 1, 0] {
                ins.feed(&mut info, L4::Tcp, dir, &p, ports);
                assert!(ins.buf.iter().all(|b| b.len() <= INSPECT_BYTES));
            }
            let mut info = AppInfo::default();
            let mut ins = Inspector::default();
            ins.feed(&mut info, L4::Udp, round % 2, &p, ports);
        }
    }

    #[test]
    fn garbage_settles_without_a_protocol() {
        let mut info = AppInfo::default();
        let mut ins = Inspector::default();
        ins.feed(
            &mut info,
            L4::Tcp,
            0,
            &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7],
            (1, 2),
        );
        assert_eq!(info.protocol, None);
        assert!(ins.done[0]);
    }
}
