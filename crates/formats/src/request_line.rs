//! Splitting an HTTP request line (`GET /p?q HTTP/1.1`) and a request target into the
//! event's method, path, query and protocol. Kept lenient on purpose: attack traffic
//! sends odd methods, spaces in targets and missing protocols, and those are exactly
//! the lines a security tool must not throw away.

/// The parts of a request line, as byte slices of the original.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestParts<'a> {
    pub method: Option<&'a [u8]>,
    pub target: Option<&'a [u8]>,
    pub protocol: Option<&'a [u8]>,
}

/// Splits a request line. The method is the first space-separated token, the protocol
/// the last one when it starts with `HTTP/` (any case), the target everything between
/// (so a target with spaces stays whole). A line with a single token that is not a
/// method-like word has only a target when it starts with `/`, else nothing (the
/// caller keeps the raw line).
pub(crate) fn split_request(line: &[u8]) -> RequestParts<'_> {
    let line = trim_spaces(line);
    if line.is_empty() || line == b"-" {
        return RequestParts::default();
    }
    let Some(sp) = memchr::memchr(b' ', line) else {
        if line.first() == Some(&b'/') {
            return RequestParts {
                target: Some(line),
                ..RequestParts::default()
            };
        }
        if line.iter().all(u8::is_ascii_alphabetic) {
            return RequestParts {
                method: Some(line),
                ..RequestParts::default()
            };
        }
        return RequestParts::default();
    };
    let method = &line[..sp];
    let rest = trim_spaces(&line[sp + 1..]);
    let (target, protocol) = match memchr::memrchr(b' ', rest) {
        Some(i) if is_protocol(&rest[i + 1..]) => (trim_spaces(&rest[..i]), Some(&rest[i + 1..])),
        _ if is_protocol(rest) => (&b""[..], Some(rest)),
        _ => (rest, None),
    };
    RequestParts {
        method: Some(method),
        target: (!target.is_empty()).then_some(target),
        protocol,
    }
}

fn is_protocol(s: &[u8]) -> bool {
    s.len() > 5 && s[..5].eq_ignore_ascii_case(b"HTTP/")
}

fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

/// Splits a request target at the first `?`: the path (still percent-encoded) and the
/// query without its `?` (`None` when absent or empty).
pub(crate) fn split_target(target: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b'?', target) {
        Some(i) => {
            let q = &target[i + 1..];
            (&target[..i], (!q.is_empty()).then_some(q))
        }
        None => (target, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Option<&[u8]>) -> Option<&str> {
        b.map(|b| std::str::from_utf8(b).unwrap())
    }

    fn parts(line: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
        let p = split_request(line.as_bytes());
        (s(p.method), s(p.target), s(p.protocol))
    }

    #[test]
    fn ordinary_lines() {
        assert_eq!(
            parts("GET /a?b=1 HTTP/1.1"),
            (Some("GET"), Some("/a?b=1"), Some("HTTP/1.1"))
        );
        assert_eq!(parts("GET /"), (Some("GET"), Some("/"), None));
        assert_eq!(
            parts("CONNECT 1.2.3.4:25 HTTP/1.0"),
            (Some("CONNECT"), Some("1.2.3.4:25"), Some("HTTP/1.0"))
        );
    }

    #[test]
    fn odd_lines() {
        assert_eq!(parts("-"), (None, None, None));
        assert_eq!(parts(""), (None, None, None));
        assert_eq!(parts("\x05\x01"), (None, None, None));
        assert_eq!(parts("/only"), (None, Some("/only"), None));
        assert_eq!(parts("GET"), (Some("GET"), None, None));
        assert_eq!(
            parts("GET!not found /x.cfm HTTP/1.0"),
            (Some("GET!not"), Some("found /x.cfm"), Some("HTTP/1.0"))
        );
        assert_eq!(parts("GET HTTP/1.0"), (Some("GET"), None, Some("HTTP/1.0")));
        assert_eq!(
            parts("GET  /a  HTTP/1.0"),
            (Some("GET"), Some("/a"), Some("HTTP/1.0"))
        );
    }

    #[test]
    fn targets() {
        assert_eq!(split_target(b"/a?b=1&c"), (&b"/a"[..], Some(&b"b=1&c"[..])));
        assert_eq!(split_target(b"/a?"), (&b"/a"[..], None));
        assert_eq!(split_target(b"/a%3F"), (&b"/a%3F"[..], None));
        assert_eq!(split_target(b"/a?b?c"), (&b"/a"[..], Some(&b"b?c"[..])));
    }
}
