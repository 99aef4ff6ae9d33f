//! SSH identification banners (`SSH-2.0-OpenSSH_7.4`, RFC 4253 §4.2).

/// What the start of the stream said.
pub(crate) enum Banner {
    /// Starts like a banner; the line is not complete yet.
    Partial,
    /// The banner line, without CR/LF, at most 255 bytes.
    Line(String),
}

/// The banner at the start of `buf`, if it starts like one.
pub(crate) fn banner(buf: &[u8]) -> Option<Banner> {
    if buf.len() < 4 {
        return b"SSH-".starts_with(buf).then_some(Banner::Partial);
    }
    if !buf.starts_with(b"SSH-") {
        return None;
    }
    let Some(end) = buf.iter().position(|b| *b == b'\n') else {
        return (buf.len() < 256).then_some(Banner::Partial);
    };
    let line = buf.get(..end.min(255)).unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some(Banner::Line(String::from_utf8_lossy(line).into_owned()))
}

/// The algorithm lists of a KEXINIT message that HASSH hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KexInit {
    kex: String,
    enc: [String; 2],
    mac: [String; 2],
    comp: [String; 2],
}

/// What followed the banner.
pub(crate) enum Kex {
    /// Not all of the first binary packet is here yet.
    NeedMore,
    /// The first packet is a KEXINIT.
    Init(KexInit),
    /// Something else (or nonsense): no HASSH for this direction.
    Absent,
}

/// Reads the KEXINIT (RFC 4253 §7.1) that starts the binary protocol after the banner
/// line in `buf`. Lines before the `SSH-` line (allowed from servers) are skipped with it.
pub(crate) fn kexinit(buf: &[u8]) -> Kex {
    let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
        return Kex::NeedMore;
    };
    let Some(rest) = buf.get(nl + 1..) else {
        return Kex::NeedMore;
    };
    let Some(len) = rest.get(..4) else {
        return Kex::NeedMore;
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if !(16..=35_000).contains(&len) {
        return Kex::Absent;
    }
    let Some(packet) = rest.get(4..4 + len) else {
        return Kex::NeedMore;
    };
    // padding length, message code 20, 16-byte cookie, then the name-lists.
    if packet.get(1) != Some(&20) {
        return Kex::Absent;
    }
    let mut at = 18;
    let mut lists: Vec<String> = Vec::with_capacity(10);
    for _ in 0..10 {
        let Some(l) = packet.get(at..at + 4) else {
            return Kex::Absent;
        };
        let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
        let Some(s) = packet.get(at + 4..at + 4 + n) else {
            return Kex::Absent;
        };
        lists.push(String::from_utf8_lossy(s).into_owned());
        at += 4 + n;
    }
    let mut it = lists.into_iter();
    let mut next = || it.next().unwrap_or_default();
    let kex = next();
    let _host_key = next();
    let enc = [next(), next()];
    let mac = [next(), next()];
    let comp = [next(), next()];
    Kex::Init(KexInit {
        kex,
        enc,
        mac,
        comp,
    })
}

impl KexInit {
    /// The HASSH string of this side: `kex;enc;mac;comp`, client→server lists for a
    /// client (`client = true`), server→client lists for a server (hasshServer).
    pub(crate) fn hassh_string(&self, client: bool) -> String {
        let i = usize::from(!client);
        let pick = |a: &[String; 2]| a.get(i).cloned().unwrap_or_default();
        format!(
            "{};{};{};{}",
            self.kex,
            pick(&self.enc),
            pick(&self.mac),
            pick(&self.comp)
        )
    }

    /// HASSH (client) or hasshServer: the MD5 of [`KexInit::hassh_string`].
    pub(crate) fn hassh(&self, client: bool) -> String {
        super::tls::md5_hex(&self.hassh_string(client))
    }
}

/// A KEXINIT binary packet with these ten name-lists (tests).
#[cfg(test)]
pub(crate) fn kexinit_packet(lists: &[&str]) -> Vec<u8> {
    let mut body = vec![4u8, 20];
    body.extend([0x11; 16]);
    for l in lists {
        body.extend((l.len() as u32).to_be_bytes());
        body.extend(l.as_bytes());
    }
    body.extend([0, 0, 0, 0, 0]);
    body.extend([0; 4]);
    let mut p = (body.len() as u32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hassh_of_a_kexinit_after_the_banner() {
        let lists = [
            "curve25519-sha256",
            "ssh-ed25519",
            "aes128-ctr",
            "aes256-ctr",
            "hmac-sha2-256",
            "hmac-sha2-512",
            "none",
            "zlib",
            "",
            "",
        ];
        let mut buf = b"SSH-2.0-OpenSSH_7.4\r\n".to_vec();
        buf.extend(kexinit_packet(&lists));
        let Kex::Init(k) = kexinit(&buf) else {
            panic!("no kexinit")
        };
        assert_eq!(
            k.hassh_string(true),
            "curve25519-sha256;aes128-ctr;hmac-sha2-256;none"
        );
        assert_eq!(
            k.hassh_string(false),
            "curve25519-sha256;aes256-ctr;hmac-sha2-512;zlib"
        );
        assert_eq!(k.hassh(true).len(), 32);
        for cut in 0..buf.len() {
            assert!(
                !matches!(kexinit(&buf[..cut]), Kex::Init(_)),
                "cut at {cut} cannot hold the whole packet"
            );
        }
        assert!(matches!(
            kexinit(b"SSH-2.0-x\r\n\0\0\0\x20\x04\x15"),
            Kex::NeedMore
        ));
        let mut other = b"SSH-2.0-x\r\n".to_vec();
        other.extend(kexinit_packet(&["a"; 10]));
        other[11 + 5] = 21;
        assert!(matches!(kexinit(&other), Kex::Absent));
    }
}
