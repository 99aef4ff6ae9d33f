//! TLS ClientHello and ServerHello: SNI, ALPN, and the JA3, JA3S and JA4 fingerprints.
//!
//! JA3 follows Salesforce's definition (GREASE values dropped, as Suricata and tshark
//! do); JA4 follows FoxIO's specification (`t13d1516h2_<ciphers>_<extensions>`), with
//! the cipher and extension lists sorted and SNI/ALPN left out of the extension hash.
//! The handshake message may span several records; we gather fragments until it is whole.

use md5::Digest as _;

/// What a direction's first bytes were.
#[derive(Debug)]
pub enum Outcome {
    /// Looks like TLS but the hello is not complete yet.
    NeedMore,
    /// Not a TLS handshake.
    NotTls,
    /// A ClientHello.
    Client(ClientHello),
    /// A ServerHello.
    Server(ServerHello),
}

/// The parts of a ClientHello the fingerprints need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` of the hello.
    pub version: u16,
    /// Cipher suites in order, GREASE included.
    pub ciphers: Vec<u16>,
    /// Extension types in order, GREASE included.
    pub extensions: Vec<u16>,
    /// Supported groups.
    pub groups: Vec<u16>,
    /// EC point formats.
    pub point_formats: Vec<u8>,
    /// Signature algorithms in order.
    pub sig_algs: Vec<u16>,
    /// supported_versions.
    pub versions: Vec<u16>,
    /// Server name.
    pub sni: Option<String>,
    /// ALPN protocols.
    pub alpn: Vec<String>,
}

/// The parts of a ServerHello JA3S needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// `legacy_version`.
    pub version: u16,
    /// The chosen cipher.
    pub cipher: u16,
    /// Extension types in order.
    pub extensions: Vec<u16>,
}

/// GREASE values (RFC 8701): `0x?a?a` with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

fn join<T: std::fmt::Display>(v: impl Iterator<Item = T>, sep: &str) -> String {
    v.map(|x| x.to_string()).collect::<Vec<_>>().join(sep)
}

pub(crate) fn md5_hex(s: &str) -> String {
    hex(&md5::Md5::digest(s.as_bytes()))
}

fn sha12(s: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(s.as_bytes());
    hex(&d).chars().take(12).collect()
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

impl ClientHello {
    /// The JA3 string (`version,ciphers,extensions,groups,point formats`).
    pub fn ja3_string(&self) -> String {
        let ng = |v: &Vec<u16>| join(v.iter().copied().filter(|x| !is_grease(*x)), "-");
        format!(
            "{},{},{},{},{}",
            self.version,
            ng(&self.ciphers),
            ng(&self.extensions),
            ng(&self.groups),
            join(self.point_formats.iter(), "-")
        )
    }

    /// The JA3 fingerprint.
    pub fn ja3(&self) -> String {
        md5_hex(&self.ja3_string())
    }

    /// The JA4 fingerprint; `proto` is `t` (TCP) or `q` (QUIC).
    pub fn ja4(&self, proto: char) -> String {
        let version = self
            .versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(self.version);
        let v = match version {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            0x0002 => "s2",
            0xfeff => "d1",
            0xfefd => "d2",
            0xfefc => "d3",
            _ => "00",
        };
        let sni = if self.sni.is_some() { 'd' } else { 'i' };
        let ciphers: Vec<u16> = self
            .ciphers
            .iter()
            .copied()
            .filter(|c| !is_grease(*c))
            .collect();
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|e| !is_grease(*e))
            .collect();
        let alpn = match self.alpn.first().map(|a| a.as_bytes()) {
            Some([]) | None => "00".to_string(),
            Some(a) => {
                let first = a.first().copied().unwrap_or(b'0');
                let last = a.last().copied().unwrap_or(b'0');
                if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                    format!("{}{}", first as char, last as char)
                } else {
                    let h = hex(&[first, last]);
                    format!(
                        "{}{}",
                        h.chars().next().unwrap_or('0'),
                        h.chars().last().unwrap_or('0')
                    )
                }
            }
        };
        let a = format!(
            "{proto}{v}{sni}{:02}{:02}{alpn}",
            ciphers.len().min(99),
            exts.len().min(99)
        );
        let mut sorted_c = ciphers.clone();
        sorted_c.sort_unstable();
        let b = if sorted_c.is_empty() {
            "000000000000".to_string()
        } else {
            sha12(&join(sorted_c.iter().map(|c| format!("{c:04x}")), ","))
        };
        let mut sorted_e: Vec<u16> = exts
            .iter()
            .copied()
            .filter(|e| *e != 0x0000 && *e != 0x0010)
            .collect();
        sorted_e.sort_unstable();
        let c = if sorted_e.is_empty() {
            "000000000000".to_string()
        } else {
            let mut s = join(sorted_e.iter().map(|e| format!("{e:04x}")), ",");
            if !self.sig_algs.is_empty() {
                s.push('_');
                s.push_str(&join(self.sig_algs.iter().map(|e| format!("{e:04x}")), ","));
            }
            sha12(&s)
        };
        format!("{a}_{b}_{c}")
    }
}

impl ServerHello {
    /// The JA3S string (`version,cipher,extensions`).
    pub fn ja3s_string(&self) -> String {
        format!(
            "{},{},{}",
            self.version,
            self.cipher,
            join(self.extensions.iter(), "-")
        )
    }

    /// The JA3S fingerprint.
    pub fn ja3s(&self) -> String {
        md5_hex(&self.ja3s_string())
    }
}

/// A bounds-checked big-endian reader.
struct Cur<'a> {
    b: &'a [u8],
}

impl<'a> Cur<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (x, rest) = self.b.split_first()?;
        self.b = rest;
        Some(*x)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (x, rest) = self.b.split_at(n);
        self.b = rest;
        Some(x)
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// Parses the first handshake message of a TLS stream direction.
pub fn parse(buf: &[u8], _from_client: bool) -> Outcome {
    // Record header: type 22, version 3.x, length.
    match buf {
        [] => return Outcome::NeedMore,
        [22] | [22, 3] => return Outcome::NeedMore,
        [22, 3, v, ..] if *v <= 4 => {}
        _ => return Outcome::NotTls,
    }
    // Gather handshake bytes across records.
    let mut hs = Vec::new();
    let mut at = 0;
    loop {
        let Some(head) = buf.get(at..at + 5) else {
            return Outcome::NeedMore;
        };
        if head[0] != 22 {
            return Outcome::NotTls;
        }
        let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
        let Some(body) = buf.get(at + 5..at + 5 + len) else {
            // Partial record: use what is there if the message is already whole.
            if let Some(part) = buf.get(at + 5..) {
                hs.extend_from_slice(part);
            }
            return whole(&hs).unwrap_or(Outcome::NeedMore);
        };
        hs.extend_from_slice(body);
        if let Some(o) = whole(&hs) {
            return o;
        }
        at += 5 + len;
    }
}

/// Parses the handshake message if all of it is in `hs`.
fn whole(hs: &[u8]) -> Option<Outcome> {
    let kind = *hs.first()?;
    let len = (usize::from(*hs.get(1)?) << 16)
        | (usize::from(*hs.get(2)?) << 8)
        | usize::from(*hs.get(3)?);
    let body = hs.get(4..4 + len)?;
    Some(match kind {
        1 => client_hello(body).map_or(Outcome::NotTls, Outcome::Client),
        2 => server_hello(body).map_or(Outcome::NotTls, Outcome::Server),
        _ => Outcome::NotTls,
    })
}

fn client_hello(body: &[u8]) -> Option<ClientHello> {
    let mut c = Cur { b: body };
    let mut h = ClientHello {
        version: c.u16()?,
        ..ClientHello::default()
    };
    c.take(32)?;
    c.vec8()?;
    h.ciphers = u16s(c.vec16()?);
    c.vec8()?;
    if c.b.is_empty() {
        return Some(h);
    }
    let mut exts = Cur { b: c.vec16()? };
    while !exts.b.is_empty() {
        let ty = exts.u16()?;
        let data = exts.vec16()?;
        h.extensions.push(ty);
        let mut d = Cur { b: data };
        match ty {
            0 => {
                let mut list = Cur { b: d.vec16()? };
                while !list.b.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec16()?;
                    if name_type == 0 && h.sni.is_none() {
                        h.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            10 => h.groups = u16s(d.vec16()?),
            11 => h.point_formats = d.vec8()?.to_vec(),
            13 => h.sig_algs = u16s(d.vec16()?),
            16 => {
                let mut list = Cur { b: d.vec16()? };
                while !list.b.is_empty() {
                    h.alpn
                        .push(String::from_utf8_lossy(list.vec8()?).into_owned());
                }
            }
            43 => h.versions = u16s(d.vec8()?),
            _ => {}
        }
    }
    Some(h)
}

fn server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut c = Cur { b: body };
    let mut h = ServerHello {
        version: c.u16()?,
        ..ServerHello::default()
    };
    c.take(32)?;
    c.vec8()?;
    h.cipher = c.u16()?;
    c.u8()?;
    if c.b.is_empty() {
        return Some(h);
    }
    let mut exts = Cur { b: c.vec16()? };
    while !exts.b.is_empty() {
        h.extensions.push(exts.u16()?);
        exts.vec16()?;
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a ClientHello record from parts.
    pub(crate) fn client_hello_record(ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0u8; 32]);
        body.push(0);
        body.extend(((ciphers.len() * 2) as u16).to_be_bytes());
        for c in ciphers {
            body.extend(c.to_be_bytes());
        }
        body.extend([1, 0]);
        let mut e = Vec::new();
        for (ty, data) in exts {
            e.extend(ty.to_be_bytes());
            e.extend((data.len() as u16).to_be_bytes());
            e.extend(data);
        }
        body.extend((e.len() as u16).to_be_bytes());
        body.extend(e);
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend(body);
        let mut rec = vec![22, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
        rec.extend(hs);
        rec
    }

    fn sni(name: &str) -> Vec<u8> {
        let mut v = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        v.push(0);
        v.extend((name.len() as u16).to_be_bytes());
        v.extend(name.as_bytes());
        v
    }

    #[test]
    fn client_hello_fields_and_ja3_string() {
        let rec = client_hello_record(
            &[0x0a0a, 0xc02f, 0x009c],
            &[
                (0x2a2a, vec![]),
                (0, sni("example.com")),
                (10, vec![0, 4, 0, 0x1d, 0, 0x17]),
                (11, vec![1, 0]),
                (16, vec![0, 3, 2, b'h', b'2']),
            ],
        );
        let Outcome::Client(h) = parse(&rec, true) else {
            panic!("not a client hello")
        };
        assert_eq!(h.sni.as_deref(), Some("example.com"));
        assert_eq!(h.alpn, vec!["h2".to_string()]);
        assert_eq!(h.ja3_string(), "771,49199-156,0-10-11-16,29-23,0");
        assert_eq!(h.ja3(), md5_hex("771,49199-156,0-10-11-16,29-23,0"));
        // JA4: TLS 1.2, SNI, 2 ciphers, 4 extensions (GREASE dropped), ALPN h2.
        assert!(h.ja4('t').starts_with("t12d0204h2_"), "{}", h.ja4('t'));
    }

    #[test]
    fn fragments_and_truncation() {
        let rec = client_hello_record(&[0x002f], &[(0, sni("a.b"))]);
        for cut in 0..rec.len() {
            assert!(
                matches!(parse(&rec[..cut], true), Outcome::NeedMore),
                "cut {cut}"
            );
        }
        // The same handshake split over two records.
        let hs = &rec[5..];
        let (a, b) = hs.split_at(10);
        let mut two = vec![22, 3, 1, 0, a.len() as u8];
        two.extend(a);
        two.extend([22, 3, 1, (b.len() >> 8) as u8, b.len() as u8]);
        two.extend(b);
        assert!(matches!(parse(&two, true), Outcome::Client(_)));
        assert!(matches!(parse(b"GET / HTTP/1.1", true), Outcome::NotTls));
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa));
        assert!(!is_grease(0x0a0b) && !is_grease(0x1a0a));
    }

    /// The JA4 example of FoxIO's specification (technical details, a Chrome hello).
    #[test]
    fn ja4_of_the_specification_example() {
        let h = ClientHello {
            version: 0x0303,
            ciphers: vec![
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
                0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
            ],
            sig_algs: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            versions: vec![0x0304, 0x0303],
            sni: Some("x".into()),
            alpn: vec!["h2".into()],
            ..ClientHello::default()
        };
        assert_eq!(h.ja4('t'), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    }
}
