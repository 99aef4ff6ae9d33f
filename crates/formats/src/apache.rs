//! Apache `LogFormat` strings (`%h %l %u %t \"%r\" %>s %b ...`), compiled into the same
//! step list as nginx formats so that both share one matching engine.

use crate::FormatError;
use crate::compiled::{Compiled, Kind, Piece};

/// Apache's `combined` LogFormat.
pub const COMBINED: &str = r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i""#;
/// Apache's `common` LogFormat.
pub const COMMON: &str = r#"%h %l %u %t "%r" %>s %b"#;

/// The event field (and a readable label for error messages) of one directive.
/// `param` is the `{...}` argument, if any. `None` means the directive is unknown.
fn kind_of(letter: u8, param: Option<&str>) -> Option<(Kind, &'static str)> {
    let extra = |name: &str| Kind::Extra(name.to_owned());
    Some(match (letter, param) {
        (b'h', _) => (Kind::ClientIp, "remote host"),
        (b'a', Some("c")) => (extra("peer_ip"), "peer address"),
        (b'a', _) => (Kind::ClientIp, "client address"),
        (b'A', _) => (extra("local_ip"), "local address"),
        (b'l', _) => (extra("ident"), "ident"),
        (b'u', _) => (Kind::User, "user"),
        (b't', None) => (Kind::TimeClf, "time"),
        (b't', Some("sec")) => (Kind::TimeEpoch, "time"),
        (b't', Some(_)) => (extra("time"), "time"),
        (b'r', _) => (Kind::Request, "request"),
        (b's', _) => (Kind::Status, "status"),
        (b'b' | b'B', _) => (Kind::Bytes, "bytes"),
        (b'O', _) => (Kind::BytesTotal, "bytes sent"),
        (b'I', _) => (extra("bytes_received"), "bytes received"),
        (b'S', _) => (extra("bytes_transferred"), "bytes transferred"),
        (b'D', _) => (Kind::Duration { micros: 1 }, "duration"),
        (b'T', Some("ms")) => (Kind::Duration { micros: 1_000 }, "duration"),
        (b'T', Some("us")) => (Kind::Duration { micros: 1 }, "duration"),
        (b'T', _) => (Kind::Duration { micros: 1_000_000 }, "duration"),
        (b'i', Some(h)) if h.eq_ignore_ascii_case("referer") => (Kind::Referer, "referer"),
        (b'i', Some(h)) if h.eq_ignore_ascii_case("user-agent") => (Kind::UserAgent, "user agent"),
        (b'i', Some(h)) if h.eq_ignore_ascii_case("host") => (Kind::Host, "host"),
        (b'i', Some(h)) => (Kind::Extra(header_name("http_", h)), "request header"),
        (b'o', Some(h)) => (Kind::Extra(header_name("sent_http_", h)), "response header"),
        (b'C', Some(h)) => (Kind::Extra(header_name("cookie_", h)), "cookie"),
        (b'e', Some(h)) => (Kind::Extra(header_name("env_", h)), "environment variable"),
        (b'n', Some(h)) => (Kind::Extra(header_name("note_", h)), "note"),
        (b'v' | b'V', _) => (Kind::Host, "server name"),
        (b'm', _) => (Kind::Method, "method"),
        (b'U', _) => (Kind::Path, "url path"),
        (b'q', _) => (Kind::Query, "query string"),
        (b'H', _) => (Kind::Protocol, "protocol"),
        (b'p', _) => (extra("server_port"), "port"),
        (b'P', _) => (extra("pid"), "process id"),
        (b'k', _) => (extra("keepalive_requests"), "keepalive requests"),
        (b'L', _) => (extra("log_id"), "log id"),
        (b'R', _) => (extra("handler"), "handler"),
        (b'X', _) => (extra("connection_status"), "connection status"),
        (b'f', _) => (extra("filename"), "filename"),
        _ => return None,
    })
}

/// `X-Forwarded-For` → `http_x_forwarded_for`: the nginx spelling, so detectors find a
/// header under one name whichever server logged it.
fn header_name(prefix: &str, header: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + header.len());
    s.push_str(prefix);
    s.extend(header.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_lowercase(),
    }));
    s
}

/// Compiles an Apache `LogFormat` string. `\"`, `\\`, `\t` and `\n` are read as in
/// httpd.conf, so a format can be pasted from the configuration file as is.
pub(crate) fn compile(format: &str) -> Result<Compiled, FormatError> {
    let bad = |pos: usize, reason: String| FormatError::BadApacheFormat {
        format: format.to_owned(),
        pos,
        reason,
    };
    let b = format.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => {
                match b.get(i + 1) {
                    Some(b'"') => lit.push(b'"'),
                    Some(b'\\') => lit.push(b'\\'),
                    Some(b't') => lit.push(b'\t'),
                    Some(b'n') => lit.push(b'\n'),
                    Some(&o) => lit.extend_from_slice(&[b'\\', o]),
                    None => lit.push(b'\\'),
                }
                i += 2;
            }
            b'%' => {
                let start = i;
                i += 1;
                if b.get(i) == Some(&b'%') {
                    lit.push(b'%');
                    i += 1;
                    continue;
                }
                // Modifiers: <, >, and status-code conditions such as !200,304.
                while matches!(b.get(i), Some(b'<' | b'>' | b'!' | b',' | b'0'..=b'9')) {
                    i += 1;
                }
                let mut param = None;
                if b.get(i) == Some(&b'{') {
                    let Some(close) = memchr::memchr(b'}', &b[i..]) else {
                        return Err(bad(start, "'%{' is never closed; write %{Header}i".into()));
                    };
                    param = Some(&format[i + 1..i + close]);
                    i += close + 1;
                }
                while matches!(b.get(i), Some(b'<' | b'>')) {
                    i += 1;
                }
                let Some(&letter) = b.get(i) else {
                    return Err(bad(
                        start,
                        "the format ends inside a % directive; write %% for a literal percent sign"
                            .into(),
                    ));
                };
                i += 1;
                let Some((kind, label)) = kind_of(letter, param) else {
                    let shown = format.get(start..i).unwrap_or("%");
                    return Err(bad(
                        start,
                        format!(
                            "unknown directive '{shown}'; supported: %h %a %A %l %u %t %{{sec}}t %r %s %>s %b %B %O %I %S \
                             %D %T %{{Header}}i %{{Header}}o %{{Cookie}}C %{{Var}}e %{{Note}}n %v %V %m %U %q %H %p %P %k %L %R %X %f"
                        ),
                    ));
                };
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                let directive = format.get(start..i).unwrap_or("%");
                let name = format!("{label} ({directive})");
                if kind == Kind::Query && lit.is_empty() {
                    // `%U%q` is the usual way to log the full target: one field.
                    if let Some(Piece::Field {
                        name,
                        kind: k @ Kind::Path,
                        ..
                    }) = pieces.last_mut()
                    {
                        *k = Kind::RequestUri;
                        name.push_str(" + query");
                        continue;
                    }
                }
                if kind == Kind::TimeClf {
                    // %t is written with its brackets.
                    pieces.push(Piece::Lit(b"[".to_vec()));
                    pieces.push(Piece::Field {
                        name,
                        kind,
                        pos: start,
                    });
                    pieces.push(Piece::Lit(b"]".to_vec()));
                } else {
                    pieces.push(Piece::Field {
                        name,
                        kind,
                        pos: start,
                    });
                }
            }
            _ => {
                let end = memchr::memchr2(b'%', b'\\', &b[i..]).map_or(b.len(), |o| i + o);
                lit.extend_from_slice(&b[i..end]);
                i = end;
            }
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Compiled::new(format!("apache:{format}"), pieces).map_err(|(pos, reason)| bad(pos, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LineParser;

    const LINE: &[u8] = br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=b HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    #[test]
    fn combined_and_common() {
        let ev = compile(COMBINED).unwrap().parse(LINE).unwrap();
        assert_eq!(ev.user.as_deref(), Some("frank"));
        assert_eq!(ev.path.as_deref(), Some("/apache_pb.gif"));
        assert_eq!(ev.query.as_deref(), Some("a=b"));
        assert_eq!(ev.status, Some(200));
        assert_eq!(
            ev.referer.as_deref(),
            Some("http://www.example.com/start.html")
        );
        assert_eq!(
            ev.user_agent.as_deref(),
            Some("Mozilla/4.08 [en] (Win98; I ;Nav)")
        );
        // The same as the nginx preset.
        assert_eq!(ev, crate::nginx::combined().unwrap().parse(LINE).unwrap());
        let common = &LINE[..LINE.windows(4).position(|w| w == b"2326").unwrap() + 4];
        let ev = compile(COMMON).unwrap().parse(common).unwrap();
        assert_eq!(ev.bytes, Some(2326));
        assert_eq!(ev.referer, None);
    }

    #[test]
    fn vhost_duration_and_headers() {
        // As pasted from httpd.conf, with \" escapes.
        let fmt = r#"%v:%p %a %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" %D %{X-Forwarded-For}i %I %B"#;
        let p = compile(fmt).unwrap();
        let line = br#"www.example.com:443 198.51.100.4 - - [11/Oct/2000:13:55:36 +0000] "HEAD /x HTTP/1.1" 301 512 "-" "Wget" 1532 198.51.100.99 120 0"#;
        let ev = p.parse(line).unwrap();
        assert_eq!(ev.host.as_deref(), Some("www.example.com"));
        assert_eq!(ev.client_ip, Some("198.51.100.4".parse().unwrap()));
        assert_eq!(ev.method.as_deref(), Some("HEAD"));
        assert_eq!(ev.duration_us, Some(1532));
        // %B is the body size; %O goes to extra because the format has a body size.
        assert_eq!(ev.bytes, Some(0));
        assert_eq!(
            ev.extra,
            vec![
                ("server_port".into(), "443".into()),
                ("bytes_sent".into(), "512".into()),
                ("http_x_forwarded_for".into(), "198.51.100.99".into()),
                ("bytes_received".into(), "120".into()),
            ]
        );
    }

    #[test]
    fn separate_parts_and_modifiers() {
        let p = compile("%V %m %U%q %H %<s %400,501{User-agent}i %{ms}T %T %{%d/%b}t %{sec}t %%")
            .unwrap();
        let ev = p
            .parse(b"h.example PUT /up?x=1 HTTP/1.1 201 agent 12.5 3 10/Oct 971186136 %")
            .unwrap();
        assert_eq!(ev.host.as_deref(), Some("h.example"));
        assert_eq!(ev.method.as_deref(), Some("PUT"));
        assert_eq!(ev.path.as_deref(), Some("/up"));
        assert_eq!(ev.query.as_deref(), Some("x=1"));
        assert_eq!(ev.status, Some(201));
        assert_eq!(ev.user_agent.as_deref(), Some("agent"));
        // %T comes after %{ms}T and wins.
        assert_eq!(ev.duration_us, Some(3_000_000));
        assert_eq!(ev.ts.as_micros(), 971_186_136_000_000);
        assert_eq!(ev.extra, vec![("time".into(), "10/Oct".into())]);
        let ev = p
            .parse(b"h.example GET /up HTTP/1.1 200 agent 12.5 3 10/Oct 971186136 %")
            .unwrap();
        assert_eq!(ev.query, None);
    }

    #[test]
    fn bad_formats() {
        for (fmt, want) in [
            ("%h %Z", "unknown directive '%Z'"),
            ("%h %{Referer", "never closed"),
            ("%h %", "ends inside"),
            ("%h%u", "no literal text"),
            ("plain", "no fields"),
        ] {
            let e = compile(fmt).unwrap_err().to_string();
            assert!(e.contains(want), "{fmt:?}: {e}");
        }
    }
}
