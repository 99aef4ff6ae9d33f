//! Small byte-level helpers shared by the formats: turning field bytes into text,
//! numbers and addresses without panicking on any input.

use std::net::IpAddr;

/// Field bytes as text. Invalid UTF-8 is replaced (logs are not guaranteed to be
/// UTF-8). Web-server escapes are decoded where that makes the text more faithful:
/// `\"` and `\\` always, `\xHH` when the decoded bytes are printable ASCII or a valid
/// UTF-8 sequence; control bytes and broken byte runs keep their `\xHH` spelling so that
/// nothing becomes invisible.
pub(crate) fn text(raw: &[u8]) -> String {
    if memchr::memchr(b'\\', raw).is_none() {
        return lossy(raw);
    }
    lossy(&unescape(raw))
}

/// The same text as `String::from_utf8_lossy(raw).into_owned()`, but fast on long runs
/// of raw binary (the 8 KB `SEARCH /\x90\x90...` overflow attempts are common in attack
/// traffic): after an invalid sequence, ASCII is copied and bytes that can never start
/// a UTF-8 sequence (a continuation byte, 0xC0, 0xC1, 0xF5..=0xFF: always a one-byte
/// invalid sequence on their own) are replaced in one simple loop, instead of one
/// decoder restart per invalid byte.
pub(crate) fn lossy(raw: &[u8]) -> String {
    let mut rest = raw;
    let mut out = String::new();
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                if out.is_empty() {
                    return s.to_owned();
                }
                out.push_str(s);
                return out;
            }
            Err(e) => {
                if out.capacity() == 0 {
                    out.reserve(raw.len() + raw.len() / 2);
                }
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let skip = e.error_len().map_or(after.len(), usize::from);
                out.push('\u{fffd}');
                rest = after.get(skip..).unwrap_or_default();
                // Bulk path: ASCII is copied, never-valid bytes replaced, until a byte
                // that may start a multi-byte sequence sends us back to the decoder.
                let mut k = 0;
                while let Some(&b) = rest.get(k) {
                    match b {
                        0x00..=0x7F => out.push(char::from(b)),
                        0x80..=0xC1 | 0xF5..=0xFF => out.push('\u{fffd}'),
                        _ => break,
                    }
                    k += 1;
                }
                rest = &rest[k..];
            }
        }
    }
}

/// Like [`text`], but `-` (the log convention for "no value") and empty become `None`.
pub(crate) fn opt_text(raw: &[u8]) -> Option<String> {
    if is_empty_value(raw) {
        None
    } else {
        Some(text(raw))
    }
}

/// `-` or nothing: the field has no value.
pub(crate) fn is_empty_value(raw: &[u8]) -> bool {
    raw.is_empty() || raw == b"-"
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Reads one `\xHH` escape at the start of `s`.
fn hex_escape(s: &[u8]) -> Option<u8> {
    match s {
        [b'\\', b'x', h, l, ..] => Some(hex(*h)? << 4 | hex(*l)?),
        _ => None,
    }
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let rest = &raw[i..];
        match rest {
            [b'\\', b'"', ..] => {
                out.push(b'"');
                i += 2;
            }
            [b'\\', b'\\', ..] => {
                out.push(b'\\');
                i += 2;
            }
            [b'\\', b'x', ..] if hex_escape(rest).is_some() => {
                // Collect a run of consecutive \xHH escapes: a UTF-8 character spans
                // several of them.
                let start = i;
                let mut bytes = Vec::new();
                while let Some(b) = raw.get(i..).and_then(hex_escape) {
                    bytes.push(b);
                    i += 4;
                }
                let clean = std::str::from_utf8(&bytes)
                    .map(|s| !s.chars().any(char::is_control))
                    .unwrap_or(false);
                if clean {
                    out.extend_from_slice(&bytes);
                } else {
                    for (k, &b) in bytes.iter().enumerate() {
                        if (0x20..0x7f).contains(&b) {
                            out.push(b);
                        } else {
                            let at = start + 4 * k;
                            out.extend_from_slice(raw.get(at..at + 4).unwrap_or_default());
                        }
                    }
                }
            }
            [b, ..] => {
                out.push(*b);
                i += 1;
            }
            [] => break,
        }
    }
    out
}

/// Exactly three ASCII digits, as every HTTP status is logged.
pub(crate) fn status(raw: &[u8]) -> Option<u16> {
    match raw {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// An unsigned decimal integer that fits in u64 (1 to 20 digits).
pub(crate) fn uint(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in raw {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// A decimal number of `unit`s with an optional fraction (`0.123` seconds with
/// `unit = 1_000_000`), converted to microseconds. Fraction digits beyond microsecond
/// precision are dropped.
pub(crate) fn decimal_micros(raw: &[u8], unit: u64) -> Option<u64> {
    let (int, frac) = match memchr::memchr(b'.', raw) {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    let int_v = if int.is_empty() && frac.is_some() {
        0
    } else {
        uint(int)?
    };
    let mut micros = int_v.checked_mul(unit)?;
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Value of the fraction in units of 1/unit, scaled to microseconds.
        let mut scale = unit;
        for &d in frac {
            scale /= 10;
            if scale == 0 {
                break;
            }
            micros = micros.checked_add(u64::from(d - b'0') * scale)?;
        }
    }
    Some(micros)
}

/// A client address: an IP when it is one (brackets around IPv6 tolerated), otherwise
/// `None` and the caller keeps the raw text (a hostname when `HostnameLookups` is on).
pub(crate) fn ip(raw: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(raw).ok()?;
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// `ip:port`, `[v6]:port`, `v6:port` (Apache 2.4 writes IPv6 clients so), bare `v6` or
/// bare `ip`: the address and the port text. A trailing `:digits` is read as a port
/// whenever what precedes it is an address.
pub(crate) fn ip_and_port(raw: &[u8]) -> (Option<IpAddr>, Option<&[u8]>) {
    if let Some(i) = memchr::memrchr(b':', raw) {
        let (host, port) = (&raw[..i], &raw[i + 1..]);
        if !port.is_empty()
            && port.len() <= 5
            && port.iter().all(u8::is_ascii_digit)
            && let Some(addr) = ip(host)
        {
            return (Some(addr), Some(port));
        }
    }
    (ip(raw), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_lossy() {
        assert_eq!(text(b"abc"), "abc");
        assert_eq!(text(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(opt_text(b"-"), None);
        assert_eq!(opt_text(b""), None);
        assert_eq!(opt_text(b"x").as_deref(), Some("x"));
    }

    #[test]
    fn lossy_matches_std() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pool = "aé€😀".as_bytes();
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| match next() % 3 {
                    0 => pool[(next() % pool.len() as u64) as usize],
                    1 => 0x80 | (next() as u8 & 0x7f),
                    _ => next() as u8,
                })
                .collect();
            assert_eq!(lossy(&v), String::from_utf8_lossy(&v), "{v:?}");
        }
        let mut big = vec![0x90u8; 8000];
        big.extend_from_slice(b" ok \xe2\x82");
        assert_eq!(lossy(&big), String::from_utf8_lossy(&big));
    }

    #[test]
    fn escapes() {
        assert_eq!(text(br#"say \"hi\""#), r#"say "hi""#);
        assert_eq!(text(br"a\\b"), r"a\b");
        assert_eq!(text(br"\x22quoted\x22"), "\"quoted\"");
        assert_eq!(text(br"caf\xC3\xA9"), "café");
        // cp1251 bytes are not UTF-8: kept as escapes, so nothing is lost.
        assert_eq!(text(br"http://\xe4\xe5-x"), r"http://\xe4\xe5-x");
        // Control bytes stay visible.
        assert_eq!(text(br"\x05\x01"), r"\x05\x01");
        // Raw backslashes that are no escape stay.
        assert_eq!(text(br"c:\boot.ini \x"), r"c:\boot.ini \x");
        assert_eq!(text(br"\xZZ\"), r"\xZZ\");
        assert_eq!(text(br"\x4"), r"\x4");
    }

    #[test]
    fn numbers() {
        assert_eq!(status(b"200"), Some(200));
        assert_eq!(status(b"20"), None);
        assert_eq!(status(b"2000"), None);
        assert_eq!(status(b"2x0"), None);
        assert_eq!(uint(b"123"), Some(123));
        assert_eq!(uint(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(uint(b"18446744073709551616"), None);
        assert_eq!(uint(b""), None);
        assert_eq!(uint(b"-1"), None);
        assert_eq!(decimal_micros(b"0.123", 1_000_000), Some(123_000));
        assert_eq!(decimal_micros(b"2", 1_000_000), Some(2_000_000));
        assert_eq!(decimal_micros(b"1.5", 1_000), Some(1_500));
        assert_eq!(decimal_micros(b"0.1234567", 1_000_000), Some(123_456));
        assert_eq!(decimal_micros(b".5", 1_000_000), Some(500_000));
        assert_eq!(decimal_micros(b"1.", 1_000_000), None);
        assert_eq!(decimal_micros(b"1.x", 1_000_000), None);
        assert_eq!(decimal_micros(b"99999999999999999999", 1_000_000), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(ip(b"10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(ip(b"[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(ip(b"host.example"), None);
        assert_eq!(ip(b"\xff"), None);
        let (a, p) = ip_and_port(b"72.15.99.187:57445");
        assert_eq!(a, Some("72.15.99.187".parse().unwrap()));
        assert_eq!(p, Some(&b"57445"[..]));
        let (a, p) = ip_and_port(b"[2001:db8::1]:80");
        assert_eq!(a, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(p, Some(&b"80"[..]));
        let (a, p) = ip_and_port(b"2001:db8::1");
        assert!(a.is_some() && p.is_none());
        assert_eq!(ip_and_port(b"nope:80"), (None, None));
    }
}
