//! Apache error logs, both the 2.2 form
//! `[Sun Dec 04 04:47:44 2005] [notice] message` and the 2.4 form
//! `[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:57445] message`.
//!
//! Error logs carry failed logins, missing files and module errors that access logs do
//! not, so they are parsed into `EventKind::ErrorLog` events with the level, module and
//! process in `extra` and the client address where the server logged one.

use palisade_core::time::month_from_abbrev;
use palisade_core::{Event, EventKind, Timestamp};

use crate::text::{ip_and_port, text};
use crate::{LineParser, ParseError};

/// The Apache error log parser. Stateless: one instance serves every source.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApacheErrorParser;

const LEVELS: [&str; 17] = [
    "emerg", "alert", "crit", "error", "warn", "warning", "notice", "info", "debug", "trace1",
    "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8",
];

/// Reads `Sun Dec 04 04:47:44 2005` (fraction optional, single-digit days tolerated).
/// The error log has no zone, so the time is taken as UTC.
fn parse_ctime(s: &[u8]) -> Result<Timestamp, &'static str> {
    let mut tokens = s.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let (Some(dow), Some(mon), Some(day), Some(time), Some(year), None) = (
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
    ) else {
        return Err("expected 'Www Mmm dd hh:mm:ss yyyy'");
    };
    if dow.len() != 3 || !dow.iter().all(u8::is_ascii_alphabetic) {
        return Err("expected a weekday such as 'Sun'");
    }
    let month = month_from_abbrev(mon).ok_or("expected a month such as 'Dec'")?;
    let day = small_number(day, 1, 2).ok_or("expected a day of 1 or 2 digits")?;
    let year = small_number(year, 4, 4).ok_or("expected a 4-digit year")?;
    let (hms, frac) = match memchr::memchr(b'.', time) {
        Some(i) => (&time[..i], Some(&time[i + 1..])),
        None => (time, None),
    };
    let bad_time = "expected a time such as 04:47:44";
    let [h1, h2, b':', m1, m2, b':', s1, s2] = hms else {
        return Err(bad_time);
    };
    let hour = small_number(&[*h1, *h2], 2, 2).ok_or(bad_time)?;
    let min = small_number(&[*m1, *m2], 2, 2).ok_or(bad_time)?;
    let sec = small_number(&[*s1, *s2], 2, 2).ok_or(bad_time)?;
    let mut micros = 0;
    if let Some(frac) = frac {
        if frac.is_empty() || frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
            return Err("expected digits after the '.' in the time");
        }
        for i in 0..6 {
            micros = micros * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
        }
    }
    Timestamp::from_civil(i64::from(year), month, day, hour, min, sec, micros)
        .map_err(|_| "date or time out of range")
}

fn small_number(s: &[u8], min_len: usize, max_len: usize) -> Option<u32> {
    if s.len() < min_len || s.len() > max_len {
        return None;
    }
    s.iter().try_fold(0u32, |v, &b| {
        b.is_ascii_digit().then(|| v * 10 + u32::from(b - b'0'))
    })
}

/// The next `[...]` group at or after `pos` (after spaces): its content and the
/// position after `]`.
fn bracket(line: &[u8], pos: usize) -> Option<(&[u8], usize, usize)> {
    let mut p = pos;
    while line.get(p) == Some(&b' ') {
        p += 1;
    }
    if line.get(p) != Some(&b'[') {
        return None;
    }
    let close = p + 1 + memchr::memchr(b']', line.get(p + 1..)?)?;
    Some((&line[p + 1..close], p + 1, close + 1))
}

impl LineParser for ApacheErrorParser {
    fn name(&self) -> &str {
        "apache_error"
    }

    fn parse(&self, line: &[u8]) -> Result<Event, ParseError> {
        let mut ev = Event {
            kind: EventKind::ErrorLog,
            ..Event::default()
        };
        let Some((stamp, at, mut pos)) = bracket(line, 0).filter(|(_, at, _)| *at == 1) else {
            return Err(ParseError::new(
                "timestamp: expected '[Www Mmm dd hh:mm:ss yyyy]' at byte 0",
            ));
        };
        ev.ts = parse_ctime(stamp).map_err(|r| ParseError::at("timestamp", r, at))?;

        let Some((level, at, next)) = bracket(line, pos) else {
            return Err(ParseError::at("level", "expected '[level]'", pos));
        };
        let (module, level) = match memchr::memrchr(b':', level) {
            Some(i) => (Some(&level[..i]), &level[i + 1..]),
            None => (None, level),
        };
        if !LEVELS.iter().any(|l| l.as_bytes() == level) {
            return Err(ParseError::at(
                "level",
                &format!(
                    "unknown level '{}' (expected one of {})",
                    text(level),
                    LEVELS.join(", ")
                ),
                at,
            ));
        }
        ev.extra.push(("level".into(), text(level)));
        if let Some(m) = module.filter(|m| !m.is_empty()) {
            ev.extra.push(("module".into(), text(m)));
        }
        pos = next;

        // Optional [pid N:tid M], [client ip:port], [remote ip:port], in any order.
        while let Some((group, _, next)) = bracket(line, pos) {
            if let Some(rest) = group.strip_prefix(b"pid ") {
                let (pid, tid) = match memchr::memchr(b':', rest) {
                    Some(i) => (&rest[..i], rest[i + 1..].strip_prefix(b"tid ")),
                    None => (rest, None),
                };
                ev.extra.push(("pid".into(), text(pid)));
                if let Some(tid) = tid {
                    ev.extra.push(("tid".into(), text(tid)));
                }
            } else if let Some(rest) = group.strip_prefix(b"client ") {
                match ip_and_port(rest) {
                    (Some(addr), port) => {
                        ev.client_ip = Some(addr);
                        if let Some(port) = port {
                            ev.extra.push(("client_port".into(), text(port)));
                        }
                    }
                    (None, _) => ev.extra.push(("client".into(), text(rest))),
                }
            } else if let Some(rest) = group.strip_prefix(b"remote ") {
                ev.extra.push(("remote".into(), text(rest)));
            } else {
                break;
            }
            pos = next;
        }

        let mut msg = line.get(pos..).unwrap_or_default();
        while let [b' ' | b'\t', rest @ ..] = msg {
            msg = rest;
        }
        if let [b'A', b'H', d @ .., b':'] = msg.get(..8).unwrap_or_default()
            && d.iter().all(u8::is_ascii_digit)
        {
            ev.extra.push(("code".into(), text(&msg[..7])));
        }
        if !msg.is_empty() {
            ev.message = Some(text(msg));
        }
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra<'a>(ev: &'a Event, key: &str) -> Option<&'a str> {
        ev.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn apache_22_line() {
        let ev = ApacheErrorParser
            .parse(b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties")
            .unwrap();
        assert_eq!(ev.kind, EventKind::ErrorLog);
        assert_eq!(ev.ts.to_string(), "2005-12-04T04:47:44Z");
        assert_eq!(extra(&ev, "level"), Some("notice"));
        assert_eq!(
            ev.message.as_deref(),
            Some("workerEnv.init() ok /etc/httpd/conf/workers2.properties")
        );
        let ev = ApacheErrorParser
            .parse(b"[Sun Dec 04 04:47:44 2005] [error] [client 10.0.0.1] Directory index forbidden by rule: /var/www/")
            .unwrap();
        assert_eq!(ev.client_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            ev.message.as_deref(),
            Some("Directory index forbidden by rule: /var/www/")
        );
    }

    #[test]
    fn apache_24_line() {
        let ev = ApacheErrorParser
            .parse(b"[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:57445] AH00128: File does not exist: /usr/local/apache2/htdocs/favicon.ico")
            .unwrap();
        assert_eq!(ev.ts.to_string(), "2000-10-11T14:32:52.123456Z");
        assert_eq!(extra(&ev, "level"), Some("error"));
        assert_eq!(extra(&ev, "module"), Some("core"));
        assert_eq!(extra(&ev, "pid"), Some("35708"));
        assert_eq!(extra(&ev, "tid"), Some("4328636416"));
        assert_eq!(extra(&ev, "client_port"), Some("57445"));
        assert_eq!(extra(&ev, "code"), Some("AH00128"));
        assert_eq!(ev.client_ip, Some("72.15.99.187".parse().unwrap()));
        assert!(
            ev.message
                .unwrap()
                .starts_with("AH00128: File does not exist")
        );
        let ev = ApacheErrorParser
            .parse(b"[Wed Oct  1 14:32:52 2000] [ssl:warn] [pid 1] [client ::1:4433] [remote 10.1.1.1:80] msg")
            .unwrap();
        assert_eq!(ev.ts.to_string(), "2000-10-01T14:32:52Z");
        assert_eq!(ev.client_ip, Some("::1".parse().unwrap()));
        assert_eq!(extra(&ev, "remote"), Some("10.1.1.1:80"));
        let ev = ApacheErrorParser
            .parse(b"[Wed Oct 11 14:32:52 2000] [error] [client www.example] [x] msg")
            .unwrap();
        assert_eq!(extra(&ev, "client"), Some("www.example"));
        assert_eq!(ev.message.as_deref(), Some("[x] msg"));
    }

    #[test]
    fn rejects_other_lines() {
        for (line, want) in [
            (&b""[..], "timestamp: expected"),
            (
                b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1",
                "timestamp: expected",
            ),
            (b"[Sun Dec 04 04:47:44 2005] notice", "level: expected"),
            (
                b"[Sun Dec 04 04:47:44 2005] [bogus] x",
                "level: unknown level 'bogus'",
            ),
            (
                b"[Sun Dec 32 04:47:44 2005] [error] x",
                "timestamp: date or time out of range at byte 1",
            ),
            (
                b"[Sun Foo 04 04:47:44 2005] [error] x",
                "timestamp: expected a month",
            ),
            (
                b"[Sun Dec 04 04:47 2005] [error] x",
                "timestamp: expected a time",
            ),
            (
                b"[Sun Dec 04 04:47:44.x 2005] [error] x",
                "timestamp: expected digits",
            ),
            (
                b"[Sun Dec 04 04:47:44] [error] x",
                "timestamp: expected 'Www",
            ),
            (b"[Sun Dec 04 04:47:44 2005", "timestamp: expected"),
        ] {
            let e = ApacheErrorParser.parse(line).unwrap_err();
            assert!(
                e.reason.starts_with(want),
                "{:?}: {}",
                String::from_utf8_lossy(line),
                e.reason
            );
        }
    }
}
