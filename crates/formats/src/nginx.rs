//! nginx `log_format` strings: `$name` / `${name}` variables with literal text between
//! them, compiled once into the shared step engine so that any custom format parses
//! as fast as `combined`.

use crate::FormatError;
use crate::compiled::{Compiled, Kind, Piece};

/// The `combined` format as nginx spells it.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// The presets, written with an `$ident` field (kept in `extra` when not `-`) instead
/// of nginx's literal ` - `, so Apache lines with an identd user parse too.
const COMBINED_PRESET: &str = r#"$remote_addr $ident $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
const COMMON_PRESET: &str =
    r#"$remote_addr $ident $remote_user [$time_local] "$request" $status $body_bytes_sent"#;

/// The `combined` preset (nginx's default format, Apache's `combined`). A constant
/// format, so an error here is a bug the preset tests catch; it is still returned
/// rather than panicking.
pub(crate) fn combined() -> Result<Compiled, FormatError> {
    compile_named(COMBINED_PRESET, "combined".into())
}

/// The `common` preset (Common Log Format).
pub(crate) fn common() -> Result<Compiled, FormatError> {
    compile_named(COMMON_PRESET, "common".into())
}

/// Maps an nginx variable name to the event field it fills. Unknown variables are kept
/// in `extra` under their own name, so a custom format never loses data.
fn kind_of(var: &str) -> Kind {
    match var {
        "remote_addr" => Kind::ClientIp,
        "remote_user" => Kind::User,
        "time_local" => Kind::TimeClf,
        "time_iso8601" => Kind::TimeIso,
        "msec" => Kind::TimeEpoch,
        "request" => Kind::Request,
        "request_method" => Kind::Method,
        "request_uri" => Kind::RequestUri,
        "uri" | "document_uri" => Kind::Path,
        "args" | "query_string" => Kind::Query,
        "server_protocol" => Kind::Protocol,
        "status" => Kind::Status,
        "body_bytes_sent" => Kind::Bytes,
        "bytes_sent" => Kind::BytesTotal,
        "http_referer" => Kind::Referer,
        "http_user_agent" => Kind::UserAgent,
        "host" | "server_name" | "http_host" => Kind::Host,
        "request_time" => Kind::Duration { micros: 1_000_000 },
        other => Kind::Extra(other.to_owned()),
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Compiles an nginx `log_format` string (the text inside the quotes of the
/// directive, with nginx's own string concatenation already applied).
pub(crate) fn compile(format: &str) -> Result<Compiled, FormatError> {
    compile_named(format, format!("nginx:{format}"))
}

pub(crate) fn compile_named(format: &str, name: String) -> Result<Compiled, FormatError> {
    let bad = |pos: usize, reason: String| FormatError::BadNginxFormat {
        format: format.to_owned(),
        pos,
        reason,
    };
    let b = format.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some(off) = memchr::memchr(b'$', &b[i..]) else {
            lit.extend_from_slice(&b[i..]);
            break;
        };
        lit.extend_from_slice(&b[i..i + off]);
        let dollar = i + off;
        let (name, next) = if b.get(dollar + 1) == Some(&b'{') {
            let start = dollar + 2;
            let Some(close) = memchr::memchr(b'}', &b[start..]) else {
                return Err(bad(dollar, "'${' is never closed; write ${name}".into()));
            };
            (&format[start..start + close], start + close + 1)
        } else {
            let start = dollar + 1;
            let len = b[start..].iter().take_while(|&&c| is_name_byte(c)).count();
            (&format[start..start + len], start + len)
        };
        if name.is_empty() || !name.bytes().all(is_name_byte) {
            return Err(bad(
                dollar,
                "'$' must be followed by a variable name such as $remote_addr or ${status}".into(),
            ));
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Field {
            name: name.to_owned(),
            kind: kind_of(name),
            pos: dollar,
        });
        i = next;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Compiled::new(name, pieces).map_err(|(pos, reason)| bad(pos, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LineParser;

    #[test]
    fn combined_as_nginx() {
        let p = compile(COMBINED).unwrap();
        let ev = p
            .parse(br#"10.1.2.3 - alice [10/Oct/2000:13:55:36 -0700] "GET /a/b%20c?x=1&y=2 HTTP/1.1" 200 2326 "http://ref/" "curl/8""#)
            .unwrap();
        assert_eq!(ev.client_ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(ev.user.as_deref(), Some("alice"));
        assert_eq!(ev.ts.to_string(), "2000-10-10T20:55:36Z");
        assert_eq!(ev.method.as_deref(), Some("GET"));
        assert_eq!(ev.path.as_deref(), Some("/a/b%20c"));
        assert_eq!(ev.query.as_deref(), Some("x=1&y=2"));
        assert_eq!(ev.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(ev.status, Some(200));
        assert_eq!(ev.bytes, Some(2326));
        assert_eq!(ev.referer.as_deref(), Some("http://ref/"));
        assert_eq!(ev.user_agent.as_deref(), Some("curl/8"));
        assert!(ev.extra.is_empty());
        assert!(ev.source.is_empty());
        assert_eq!(p.name(), format!("nginx:{COMBINED}"));
    }

    #[test]
    fn custom_format_with_timing_host_and_forwarded_for() {
        let fmt = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" $host rt=$request_time uct="$upstream_connect_time" urt=${upstream_response_time}s"#;
        let p = compile(fmt).unwrap();
        let line = br#"2001:db8::7 - - [01/Jan/2024:00:00:01 +0000] "POST /login HTTP/2.0" 401 12 "-" "Mozilla/5.0 (X11)" "203.0.113.9, 10.0.0.1" shop.example rt=0.250 uct="0.001" urt=0.249s"#;
        let ev = p.parse(line).unwrap();
        assert_eq!(ev.client_ip, Some("2001:db8::7".parse().unwrap()));
        assert_eq!(ev.user, None);
        assert_eq!(ev.referer, None);
        assert_eq!(ev.method.as_deref(), Some("POST"));
        assert_eq!(ev.query, None);
        assert_eq!(ev.status, Some(401));
        assert_eq!(ev.host.as_deref(), Some("shop.example"));
        assert_eq!(ev.duration_us, Some(250_000));
        assert_eq!(
            ev.extra,
            vec![
                (
                    "http_x_forwarded_for".into(),
                    "203.0.113.9, 10.0.0.1".into()
                ),
                ("upstream_connect_time".into(), "0.001".into()),
                ("upstream_response_time".into(), "0.249".into()),
            ]
        );
    }

    #[test]
    fn separate_request_parts_and_iso_time() {
        let fmt = "$time_iso8601|$msec|$remote_addr|$request_method|$request_uri|$server_protocol|$status|$bytes_sent|$server_name";
        let p = compile(fmt).unwrap();
        let ev = p
            .parse(b"2024-03-01T10:00:00+01:00|1709283600.123|192.0.2.1|GET|/s?q=a%20b|HTTP/1.1|304|0|example.org")
            .unwrap();
        // $msec comes later and wins.
        assert_eq!(ev.ts.to_string(), "2024-03-01T09:00:00.123000Z");
        assert_eq!(ev.path.as_deref(), Some("/s"));
        assert_eq!(ev.query.as_deref(), Some("q=a%20b"));
        assert_eq!(ev.bytes, Some(0));
        assert_eq!(ev.host.as_deref(), Some("example.org"));
    }

    #[test]
    fn nginx_escapes_in_quoted_fields() {
        let p = compile(COMBINED).unwrap();
        let ev = p
            .parse(br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /\x22x HTTP/1.1" 400 0 "-" "a\x22b \xC3\xA9 \x01""#)
            .unwrap();
        assert_eq!(ev.path.as_deref(), Some("/\"x"));
        assert_eq!(ev.user_agent.as_deref(), Some(r#"a"b é \x01"#));
    }

    #[test]
    fn hostname_clients_are_kept_in_extra() {
        let p = compile("$remote_addr $status").unwrap();
        let ev = p.parse(b"crawler.example.net 200").unwrap();
        assert_eq!(ev.client_ip, None);
        assert_eq!(
            ev.extra,
            vec![("client".into(), "crawler.example.net".into())]
        );
    }

    #[test]
    fn presets() {
        let ev = combined()
            .unwrap()
            .parse(
                br#"1.2.3.4 ident bob [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 - "-" "-""#,
            )
            .unwrap();
        assert_eq!(ev.extra, vec![("ident".into(), "ident".into())]);
        assert_eq!(ev.bytes, None);
        assert_eq!(combined().unwrap().name(), "combined");
        let line = br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 7"#;
        assert_eq!(common().unwrap().parse(line).unwrap().bytes, Some(7));
        assert!(combined().unwrap().parse(line).is_err());
        assert_eq!(common().unwrap().name(), "common");
    }

    #[test]
    fn bad_formats() {
        for (fmt, want) in [
            ("", "no fields"),
            ("just text", "no fields"),
            ("$remote_addr$status", "no literal text"),
            ("${remote_addr", "never closed"),
            ("$ x", "variable name"),
            ("${bad-name}", "variable name"),
            ("$status $", "variable name"),
        ] {
            let e = compile(fmt).unwrap_err().to_string();
            assert!(e.contains(want), "{fmt:?}: {e}");
        }
    }

    #[test]
    fn errors_name_the_field_and_byte() {
        let p = compile(COMBINED).unwrap();
        let e = p
            .parse(br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 2x0 1 "-" "-""#)
            .unwrap_err();
        assert_eq!(e.reason, "status: expected 3 digits at byte 58");
        let e = p
            .parse(br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "cut"#)
            .unwrap_err();
        assert!(
            e.reason.starts_with("http_user_agent: missing closing"),
            "{}",
            e.reason
        );
        let e = p
            .parse(br#"1.2.3.4 - - [10/Foo/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "-""#)
            .unwrap_err();
        assert!(
            e.reason.starts_with("time_local: invalid timestamp"),
            "{}",
            e.reason
        );
        assert!(e.reason.ends_with("at byte 13"), "{}", e.reason);
    }
}
