//! Syslog lines, as files in `/var/log` hold them and as senders put them on the wire:
//!
//! * RFC 3164 / BSD: `<34>Oct 11 22:14:15 mymachine su[123]: message`, the `<PRI>`
//!   optional (files written by syslogd have none), the hostname optional (local
//!   senders omit it), program names such as `sshd(pam_unix)`, a space-padded day.
//! * The same with an RFC 3339 time instead (`2024-03-01T10:00:00.123+01:00 host
//!   sshd[1]: …`), rsyslog's high-precision file format and Debian's default since 12.
//! * RFC 5424: `<165>1 2003-10-11T22:14:15.003Z host app procid msgid [sd@1 a="b"] msg`,
//!   with `-` nil values (a nil timestamp takes the time of parsing), structured data
//!   whose values escape `"`, `\` and `]`, and a UTF-8 BOM before the message.
//!
//! Every line becomes an `EventKind::Syslog` event with the time, the hostname in
//! `host`, the message, and `program`, `pid`, `facility`, `severity`, `msgid` and
//! `sd.<id>.<param>` in `extra`. Lines from sshd, sudo, su, login and PAM then go
//! through the authentication layer ([`crate::authlog`]), which turns the messages it
//! recognises into `EventKind::Auth` events with the client address, the user and an
//! outcome, because brute-force and privilege-use detection need those as fields, not
//! as text.
//!
//! BSD timestamps carry no year and no zone: the year comes from [`SyslogOptions`] and
//! the time is taken as UTC, like the Apache error log's.

use palisade_core::time::month_from_abbrev;
use palisade_core::{Event, EventKind, Timestamp};
use serde::{Deserialize, Serialize};

use crate::text::lossy;
use crate::{LineParser, ParseError};

/// How to read syslog lines. Serialisable so that it can live in a source's
/// configuration (`FormatSpec::Syslog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SyslogOptions {
    /// The year of BSD timestamps, which carry none. `None` (the default) takes the
    /// year of the clock when the line is parsed, and the year before for a line that
    /// would then lie more than a week in the future: a `Dec 31` line read on 1 January
    /// belongs to the year that just ended. Set it when importing an old file, since
    /// the clock's year would be wrong for every line.
    pub year: Option<i32>,
}

/// The syslog parser (RFC 3164, RFC 5424 and the RFC 3339 file form) with the
/// authentication layer on top. Immutable, so one instance serves every reader.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyslogParser {
    options: SyslogOptions,
}

impl SyslogParser {
    /// A parser with the given options.
    pub fn new(options: SyslogOptions) -> Self {
        SyslogParser { options }
    }

    /// Parses with an explicit clock, so that year inference and nil timestamps can be
    /// tested; [`LineParser::parse`] passes the wall clock.
    pub fn parse_at(&self, line: &[u8], now: Timestamp) -> Result<Event, ParseError> {
        parse_line(line, self.options, &|| now)
    }
}

impl LineParser for SyslogParser {
    fn name(&self) -> &str {
        "syslog"
    }

    fn parse(&self, line: &[u8]) -> Result<Event, ParseError> {
        parse_line(line, self.options, &Timestamp::now)
    }
}

/// Facility names by code (RFC 5424 table 1, with the names syslog.h uses).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names by code (RFC 5424 table 2, syslog.h names).
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Longest program name accepted as a tag; a longer first word is message text.
const MAX_TAG: usize = 128;

/// A BSD line dated further than this into the future is taken to be from last year.
const FUTURE_SLACK_SECS: i64 = 7 * 86_400;

fn parse_line(
    line: &[u8],
    options: SyslogOptions,
    now: &dyn Fn() -> Timestamp,
) -> Result<Event, ParseError> {
    let mut ev = Event {
        kind: EventKind::Syslog,
        ..Event::default()
    };
    let mut pos = if line.starts_with(BOM) { BOM.len() } else { 0 };

    let pri = match line.get(pos) {
        Some(b'<') => {
            let (pri, next) = read_pri(line, pos)?;
            pos = next;
            Some(pri)
        }
        _ => None,
    };
    if let Some(pri) = pri {
        let facility = FACILITIES.get(usize::from(pri / 8)).copied();
        ev.extra
            .push(("facility".into(), facility.unwrap_or("unknown").into()));
        let severity = SEVERITIES.get(usize::from(pri % 8)).copied();
        ev.extra
            .push(("severity".into(), severity.unwrap_or("unknown").into()));
    }

    if pri.is_some()
        && let Some(after_version) = version(line, pos)
    {
        parse_5424(line, after_version, &mut ev, now)?;
    } else {
        parse_3164(line, pos, options, &mut ev, now)?;
    }
    Ok(ev)
}

/// `<PRI>` at `pos`: 1 to 3 digits, at most 191. Returns the value and the position
/// after `>`.
fn read_pri(line: &[u8], pos: usize) -> Result<(u8, usize), ParseError> {
    let digits = line
        .get(pos + 1..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let close = pos + 1 + digits;
    let value = line
        .get(pos + 1..close)
        .filter(|d| (1..=3).contains(&d.len()))
        .and_then(small_uint)
        .filter(|v| *v <= 191);
    match (value, line.get(close)) {
        (Some(v), Some(b'>')) => Ok((v as u8, close + 1)),
        _ => Err(ParseError::at(
            "pri",
            "expected '<N>' with N from 0 to 191",
            pos,
        )),
    }
}

/// An RFC 5424 VERSION (1 to 3 digits, not starting with 0) followed by a space:
/// the position after the space.
fn version(line: &[u8], pos: usize) -> Option<usize> {
    let rest = line.get(pos..)?;
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    ((1..=3).contains(&n) && rest.first() != Some(&b'0') && rest.get(n) == Some(&b' '))
        .then_some(pos + n + 1)
}

fn small_uint(d: &[u8]) -> Option<u32> {
    if d.is_empty() || d.len() > 9 {
        return None;
    }
    d.iter().try_fold(0u32, |v, &b| {
        b.is_ascii_digit().then(|| v * 10 + u32::from(b - b'0'))
    })
}

/// The token from `pos` to the next space (or the end), and the position of that space.
fn token(line: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = line.get(pos..).unwrap_or_default();
    let len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    (rest.get(..len).unwrap_or_default(), pos + len)
}

fn skip_spaces(line: &[u8], mut pos: usize) -> usize {
    while line.get(pos) == Some(&b' ') {
        pos += 1;
    }
    pos
}

/// The message text: leading spaces (sudo's alignment) and trailing whitespace, CR,
/// LF and NUL (what network senders append) removed.
fn trim_message(mut m: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = m {
        m = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n' | b'\0'] = m {
        m = rest;
    }
    m
}

fn parse_3164(
    line: &[u8],
    mut pos: usize,
    options: SyslogOptions,
    ev: &mut Event,
    now: &dyn Fn() -> Timestamp,
) -> Result<(), ParseError> {
    pos = skip_spaces(line, pos);
    let starts_with_year = matches!(
        line.get(pos..pos + 5),
        Some([a, b, c, d, b'-']) if [a, b, c, d].iter().all(|x| x.is_ascii_digit())
    );
    if starts_with_year {
        let (stamp, end) = token(line, pos);
        ev.ts = Timestamp::parse_iso8601(stamp)
            .map_err(|e| ParseError::at("timestamp", &format!("{e} (expected RFC 3339)"), pos))?;
        pos = end;
    } else {
        let (ts, end) = bsd_timestamp(line, pos, options, now)?;
        ev.ts = ts;
        pos = end;
    }

    pos = skip_spaces(line, pos);
    let (first, end) = token(line, pos);
    if first.is_empty() {
        return Err(ParseError::at(
            "hostname",
            "expected a host name or program after the timestamp",
            pos,
        ));
    }
    // A first word that is a tag (`sshd[1]:`, `su:`) means the sender left the
    // hostname out, as local senders do.
    if tag(first).is_none() {
        ev.host = Some(lossy(first));
        pos = skip_spaces(line, end);
    }
    let (program, message) = split_tag(line.get(pos..).unwrap_or_default());
    finish(ev, program, message);
    Ok(())
}

/// `Mmm dd hh:mm:ss` (day space-padded or not, optional fraction) at `pos`.
fn bsd_timestamp(
    line: &[u8],
    pos: usize,
    options: SyslogOptions,
    now: &dyn Fn() -> Timestamp,
) -> Result<(Timestamp, usize), ParseError> {
    let expected = "expected '<PRI>', 'Mmm dd hh:mm:ss' or an RFC 3339 time";
    let month = line
        .get(pos..pos + 3)
        .and_then(month_from_abbrev)
        .filter(|_| line.get(pos + 3) == Some(&b' '))
        .ok_or_else(|| ParseError::at("timestamp", expected, pos))?;
    let mut p = skip_spaces(line, pos + 4);
    let day_len = line
        .get(p..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let day = line
        .get(p..p + day_len)
        .filter(|d| (1..=2).contains(&d.len()))
        .and_then(small_uint)
        .filter(|_| line.get(p + day_len) == Some(&b' '))
        .ok_or_else(|| ParseError::at("timestamp", "expected a day of 1 or 2 digits", p))?;
    p += day_len + 1;
    let bad_time = || ParseError::at("timestamp", "expected a time such as 06:55:46", p);
    let Some([h1, h2, b':', m1, m2, b':', s1, s2]) = line.get(p..p + 8) else {
        return Err(bad_time());
    };
    let hour = small_uint(&[*h1, *h2]).ok_or_else(bad_time)?;
    let min = small_uint(&[*m1, *m2]).ok_or_else(bad_time)?;
    let sec = small_uint(&[*s1, *s2]).ok_or_else(bad_time)?;
    let mut end = p + 8;
    let mut micros = 0;
    if line.get(end) == Some(&b'.') {
        let n = line
            .get(end + 1..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n == 0 {
            return Err(ParseError::at(
                "timestamp",
                "expected digits after the '.' in the time",
                end,
            ));
        }
        for i in 0..6 {
            let d = line
                .get(end + 1 + i)
                .filter(|_| i < n)
                .map_or(0, |d| d - b'0');
            micros = micros * 10 + u32::from(d);
        }
        end += 1 + n;
    }
    if !matches!(line.get(end), None | Some(b' ')) {
        return Err(bad_time());
    }
    let civil = |year: i64| Timestamp::from_civil(year, month, day, hour, min, sec, micros);
    let out_of_range = |_| ParseError::at("timestamp", "date or time out of range", pos);
    let ts = match options.year {
        Some(year) => civil(i64::from(year)).map_err(out_of_range)?,
        None => {
            let now = now();
            let year = now.to_civil().0;
            // Feb 29 is valid in only one of the two candidate years.
            match civil(year) {
                Ok(ts) if ts.as_micros() <= now.add_micros(FUTURE_SLACK_SECS * 1_000_000).0 => ts,
                this_year => civil(year - 1).or(this_year).map_err(out_of_range)?,
            }
        }
    };
    Ok((ts, end))
}

/// A syslog tag: the program and, when logged, its pid.
type Tag<'a> = (&'a [u8], Option<&'a [u8]>);

/// The program of a tag word (`sshd[24200]:`, `su:`, `sshd(pam_unix)[1]:`) and its
/// pid, or `None` when the word is not a tag.
fn tag(word: &[u8]) -> Option<Tag<'_>> {
    let end = word
        .iter()
        .position(|&b| b == b'[' || b == b':')
        .filter(|&e| e > 0 && e <= MAX_TAG)?;
    let program = word.get(..end)?;
    if !program.iter().all(|&b| b.is_ascii_graphic() && b != b']') {
        return None;
    }
    let rest = word.get(end..)?;
    match rest {
        [b':', ..] => Some((program, None)),
        [b'[', inner @ ..] => {
            let close = memchr::memchr(b']', inner)?;
            match inner.get(close + 1..)? {
                [] | [b':', ..] => Some((program, inner.get(..close))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Splits `prog[pid]: message` into the tag parts and the message. A first word that
/// is no tag leaves the whole text as the message.
fn split_tag(text: &[u8]) -> (Option<Tag<'_>>, &[u8]) {
    let (word, end) = token(text, 0);
    match tag(word) {
        Some(t) => {
            // The message starts after the tag's `:`, which may be glued to the text.
            let len = tag_prefix_len(word);
            let msg_start = if word.get(len) == Some(&b':') {
                len + 1
            } else {
                end
            };
            (Some(t), text.get(msg_start..).unwrap_or_default())
        }
        None => (None, text),
    }
}

/// The length of the tag (`prog` or `prog[pid]`) at the start of `word`.
fn tag_prefix_len(word: &[u8]) -> usize {
    match word.iter().position(|&b| b == b'[' || b == b':') {
        Some(i) if word.get(i) == Some(&b'[') => word
            .get(i..)
            .and_then(|r| memchr::memchr(b']', r))
            .map_or(word.len(), |c| i + c + 1),
        Some(i) => i,
        None => word.len(),
    }
}

/// Fills the program, pid and message and runs the authentication layer.
fn finish(ev: &mut Event, tag: Option<Tag<'_>>, message: &[u8]) {
    let message = trim_message(message);
    let program = tag.map(|(p, _)| p);
    if let Some((program, pid)) = tag {
        ev.extra.push(("program".into(), lossy(program)));
        if let Some(pid) = pid.filter(|p| !p.is_empty()) {
            ev.extra.push(("pid".into(), lossy(pid)));
        }
    }
    if !message.is_empty() {
        ev.message = Some(lossy(message));
    }
    if let Some(program) = program {
        crate::authlog::annotate(program, message, ev);
    }
}

fn parse_5424(
    line: &[u8],
    mut pos: usize,
    ev: &mut Event,
    now: &dyn Fn() -> Timestamp,
) -> Result<(), ParseError> {
    let field = |name: &str, pos: &mut usize| -> Result<Option<&[u8]>, ParseError> {
        let (tok, end) = token(line, *pos);
        if tok.is_empty() {
            return Err(ParseError::at(
                name,
                "expected a value or '-' (RFC 5424 fields are separated by one space)",
                *pos,
            ));
        }
        let at = *pos;
        *pos = end + 1;
        if end >= line.len() && name != "msgid" {
            return Err(ParseError::at(name, "line ends before the next field", at));
        }
        Ok((tok != b"-").then_some(tok))
    };
    let stamp_at = pos;
    let stamp = field("timestamp", &mut pos)?;
    ev.ts = match stamp {
        None => now(),
        Some(s) => Timestamp::parse_iso8601(s).map_err(|e| {
            ParseError::at("timestamp", &format!("{e} (expected RFC 3339)"), stamp_at)
        })?,
    };
    let host = field("hostname", &mut pos)?;
    let app = field("app_name", &mut pos)?;
    let procid = field("procid", &mut pos)?;
    let msgid_at = pos;
    let msgid = field("msgid", &mut pos)?;
    if pos > line.len() {
        return Err(ParseError::at(
            "structured_data",
            "expected '-' or '[' after the msgid",
            msgid_at,
        ));
    }
    ev.host = host.map(lossy);
    if let Some(app) = app {
        ev.extra.push(("program".into(), lossy(app)));
    }
    if let Some(procid) = procid {
        ev.extra.push(("pid".into(), lossy(procid)));
    }
    if let Some(msgid) = msgid {
        ev.extra.push(("msgid".into(), lossy(msgid)));
    }
    pos = structured_data(line, pos, ev)?;
    let mut msg = match line.get(pos) {
        None => &[][..],
        Some(b' ') => line.get(pos + 1..).unwrap_or_default(),
        Some(_) => {
            return Err(ParseError::at(
                "msg",
                "expected a space between the structured data and the message",
                pos,
            ));
        }
    };
    if let Some(rest) = msg.strip_prefix(BOM) {
        msg = rest;
    }
    let msg = trim_message(msg);
    if !msg.is_empty() {
        ev.message = Some(lossy(msg));
    }
    if let Some(app) = app {
        crate::authlog::annotate(app, msg, ev);
    }
    Ok(())
}

/// Reads `-` or `[id k="v" ...][id2 ...]` at `pos` into `sd.<id>.<k>` extras; returns
/// the position after it.
fn structured_data(line: &[u8], pos: usize, ev: &mut Event) -> Result<usize, ParseError> {
    match line.get(pos) {
        Some(b'-') => return Ok(pos + 1),
        Some(b'[') => {}
        _ => {
            return Err(ParseError::at(
                "structured_data",
                "expected '-' or '['",
                pos,
            ));
        }
    }
    let mut p = pos;
    while line.get(p) == Some(&b'[') {
        p += 1;
        let id_start = p;
        while let Some(&b) = line.get(p) {
            if b == b' ' || b == b']' || b == b'=' || b == b'"' || !b.is_ascii_graphic() {
                break;
            }
            p += 1;
        }
        let id = line.get(id_start..p).unwrap_or_default();
        if id.is_empty() {
            return Err(ParseError::at(
                "structured_data",
                "expected an SD-ID after '['",
                id_start,
            ));
        }
        let id = lossy(id);
        let mut params = 0;
        loop {
            match line.get(p) {
                Some(b']') => {
                    p += 1;
                    break;
                }
                Some(b' ') => p += 1,
                _ => {
                    return Err(ParseError::at(
                        "structured_data",
                        "expected ' name=\"value\"' or ']'",
                        p,
                    ));
                }
            }
            let name_start = p;
            while let Some(&b) = line.get(p) {
                if b == b'=' || b == b' ' || b == b']' || b == b'"' || !b.is_ascii_graphic() {
                    break;
                }
                p += 1;
            }
            let name = line.get(name_start..p).unwrap_or_default();
            if name.is_empty() || line.get(p..p + 2) != Some(b"=\"") {
                return Err(ParseError::at(
                    "structured_data",
                    "expected name=\"value\"",
                    name_start,
                ));
            }
            p += 2;
            let (value, next) = sd_value(line, p)?;
            p = next;
            params += 1;
            ev.extra
                .push((format!("sd.{id}.{}", lossy(name)), lossy(&value)));
        }
        if params == 0 {
            ev.extra.push((format!("sd.{id}"), String::new()));
        }
    }
    Ok(p)
}

/// A PARAM-VALUE from just after its opening quote: `\"`, `\\` and `\]` unescaped, any
/// other backslash kept (RFC 5424 6.3.3). Returns the value and the position after the
/// closing quote.
fn sd_value(line: &[u8], start: usize) -> Result<(Vec<u8>, usize), ParseError> {
    let mut out = Vec::new();
    let mut p = start;
    loop {
        let rest = line.get(p..).unwrap_or_default();
        let Some(i) = memchr::memchr2(b'"', b'\\', rest) else {
            return Err(ParseError::at(
                "structured_data",
                "unterminated parameter value (missing '\"')",
                start,
            ));
        };
        out.extend_from_slice(rest.get(..i).unwrap_or_default());
        p += i;
        match (line.get(p), line.get(p + 1)) {
            (Some(b'"'), _) => return Ok((out, p + 1)),
            (Some(b'\\'), Some(&c @ (b'"' | b'\\' | b']'))) => {
                out.push(c);
                p += 2;
            }
            _ => {
                out.push(b'\\');
                p += 1;
            }
        }
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

    fn at(year: i32) -> SyslogParser {
        SyslogParser::new(SyslogOptions { year: Some(year) })
    }

    #[test]
    fn file_line_without_pri() {
        let ev = at(2015)
            .parse(b"Dec 10 06:55:46 LabSZ sshd[24200]: Connection closed by 1.2.3.4 [preauth]")
            .unwrap();
        assert_eq!(ev.ts.to_string(), "2015-12-10T06:55:46Z");
        assert_eq!(ev.host.as_deref(), Some("LabSZ"));
        assert_eq!(extra(&ev, "program"), Some("sshd"));
        assert_eq!(extra(&ev, "pid"), Some("24200"));
        assert_eq!(extra(&ev, "facility"), None);
        assert_eq!(
            ev.message.as_deref(),
            Some("Connection closed by 1.2.3.4 [preauth]")
        );
    }

    #[test]
    fn padded_day_parenthesised_program_and_no_tag() {
        let p = at(2005);
        let ev = p
            .parse(b"Jul  1 09:00:55 combo sshd(pam_unix)[19939]: check pass; user unknown\r")
            .unwrap();
        assert_eq!(ev.ts.to_string(), "2005-07-01T09:00:55Z");
        assert_eq!(extra(&ev, "program"), Some("sshd(pam_unix)"));
        assert_eq!(extra(&ev, "pid"), Some("19939"));
        assert_eq!(ev.message.as_deref(), Some("check pass; user unknown"));
        let ev = p
            .parse(b"Jul 9 09:00:55 combo syslogd 1.4.1: restart.")
            .unwrap();
        assert_eq!(extra(&ev, "program"), None);
        assert_eq!(ev.message.as_deref(), Some("syslogd 1.4.1: restart."));
        let ev = p
            .parse(b"Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2")
            .unwrap();
        assert_eq!(ev.host.as_deref(), Some("combo"));
        assert_eq!(
            ev.message.as_deref(),
            Some("-- root[2421]: ROOT LOGIN ON tty2")
        );
        let ev = p
            .parse(b"Jul 9 09:00:55 combo kernel: Linux version 2.6")
            .unwrap();
        assert_eq!(extra(&ev, "program"), Some("kernel"));
        assert_eq!(ev.message.as_deref(), Some("Linux version 2.6"));
        let ev = p
            .parse(b"Mar 27 13:06:56 ip-10-77-20-248 sudo:   ubuntu : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls")
            .unwrap();
        assert_eq!(extra(&ev, "program"), Some("sudo"));
        assert_eq!(ev.kind, EventKind::Auth);
        // A glued message and a tag with nothing after it.
        let ev = p.parse(b"Jul 9 09:00:55 h app[7]:text").unwrap();
        assert_eq!(ev.message.as_deref(), Some("text"));
        let ev = p.parse(b"Jul 9 09:00:55 h app:").unwrap();
        assert_eq!(extra(&ev, "program"), Some("app"));
        assert_eq!(ev.message, None);
    }

    #[test]
    fn network_3164_with_pri_and_without_hostname() {
        let ev = at(2003)
            .parse(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
            .unwrap();
        assert_eq!(extra(&ev, "facility"), Some("auth"));
        assert_eq!(extra(&ev, "severity"), Some("crit"));
        assert_eq!(ev.host.as_deref(), Some("mymachine"));
        assert_eq!(extra(&ev, "program"), Some("su"));
        let ev = at(2003)
            .parse(b"<13>Oct 11 22:14:15.250 sshd[99]: Server listening on :: port 22.")
            .unwrap();
        assert_eq!(ev.host, None);
        assert_eq!(extra(&ev, "program"), Some("sshd"));
        assert_eq!(extra(&ev, "facility"), Some("user"));
        assert_eq!(extra(&ev, "severity"), Some("notice"));
        assert_eq!(ev.ts.to_string(), "2003-10-11T22:14:15.250000Z");
        let ev = at(2003).parse(b"<191>Oct 11 22:14:15 h x: y").unwrap();
        assert_eq!(extra(&ev, "facility"), Some("local7"));
        assert_eq!(extra(&ev, "severity"), Some("debug"));
        let ev = at(2003).parse(b"<0>Oct 11 22:14:15 h x: y").unwrap();
        assert_eq!(extra(&ev, "facility"), Some("kern"));
        assert_eq!(extra(&ev, "severity"), Some("emerg"));
    }

    #[test]
    fn rfc3339_file_form() {
        let ev = SyslogParser::default()
            .parse(b"2024-03-01T10:00:00.123456+01:00 web1 sshd[5]: Accepted publickey for bob from 2001:db8::7 port 50000 ssh2: ED25519 SHA256:abc")
            .unwrap();
        assert_eq!(ev.ts.to_string(), "2024-03-01T09:00:00.123456Z");
        assert_eq!(ev.host.as_deref(), Some("web1"));
        assert_eq!(ev.kind, EventKind::Auth);
        assert_eq!(ev.client_ip, Some("2001:db8::7".parse().unwrap()));
        let ev = SyslogParser::default()
            .parse(b"<38>2024-03-01T10:00:00Z web1 su[5]: x")
            .unwrap();
        assert_eq!(extra(&ev, "facility"), Some("auth"));
        assert_eq!(ev.ts.to_string(), "2024-03-01T10:00:00Z");
    }

    #[test]
    fn year_inference_and_rollover() {
        let p = SyslogParser::default();
        let jan = Timestamp::from_civil(2024, 1, 2, 0, 0, 0, 0).unwrap();
        let ev = p.parse_at(b"Dec 31 23:59:59 h x: y", jan).unwrap();
        assert_eq!(ev.ts.to_string(), "2023-12-31T23:59:59Z");
        let ev = p.parse_at(b"Jan  1 00:00:01 h x: y", jan).unwrap();
        assert_eq!(ev.ts.to_string(), "2024-01-01T00:00:01Z");
        // Up to a week ahead (a sender's clock or zone) stays in this year.
        let ev = p.parse_at(b"Jan  8 00:00:00 h x: y", jan).unwrap();
        assert_eq!(ev.ts.to_string(), "2024-01-08T00:00:00Z");
        let ev = p.parse_at(b"Jan 10 00:00:00 h x: y", jan).unwrap();
        assert_eq!(ev.ts.to_string(), "2023-01-10T00:00:00Z");
        // Feb 29 read in a year without one belongs to the last year that had one.
        let mar_2025 = Timestamp::from_civil(2025, 3, 1, 0, 0, 0, 0).unwrap();
        let ev = p.parse_at(b"Feb 29 12:00:00 h x: y", mar_2025).unwrap();
        assert_eq!(ev.ts.to_string(), "2024-02-29T12:00:00Z");
        // An explicit year is used as given.
        let ev = at(2017).parse_at(b"Dec 31 23:59:59 h x: y", jan).unwrap();
        assert_eq!(ev.ts.to_string(), "2017-12-31T23:59:59Z");
        assert!(at(2023).parse(b"Feb 29 12:00:00 h x: y").is_err());
        // The wall clock path works too.
        assert!(p.parse(b"Feb 28 12:00:00 h x: y").is_ok());
    }

    #[test]
    fn rfc5424_full() {
        let line = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \u{feff}An application event log entry...";
        let ev = SyslogParser::default().parse(line.as_bytes()).unwrap();
        assert_eq!(ev.kind, EventKind::Syslog);
        assert_eq!(ev.ts.to_string(), "2003-10-11T22:14:15.003000Z");
        assert_eq!(ev.host.as_deref(), Some("mymachine.example.com"));
        assert_eq!(extra(&ev, "facility"), Some("local4"));
        assert_eq!(extra(&ev, "severity"), Some("notice"));
        assert_eq!(extra(&ev, "program"), Some("evntslog"));
        assert_eq!(extra(&ev, "pid"), None);
        assert_eq!(extra(&ev, "msgid"), Some("ID47"));
        assert_eq!(extra(&ev, "sd.exampleSDID@32473.iut"), Some("3"));
        assert_eq!(
            extra(&ev, "sd.exampleSDID@32473.eventSource"),
            Some("Application")
        );
        assert_eq!(extra(&ev, "sd.examplePriority@32473.class"), Some("high"));
        assert_eq!(
            ev.message.as_deref(),
            Some("An application event log entry...")
        );
    }

    #[test]
    fn rfc5424_nil_values_and_escapes() {
        let now = Timestamp::from_civil(2024, 5, 1, 0, 0, 0, 0).unwrap();
        let p = SyslogParser::default();
        let ev = p.parse_at(b"<34>1 - - - - - -", now).unwrap();
        assert_eq!(ev.ts, now);
        assert_eq!(ev.host, None);
        assert_eq!(ev.message, None);
        assert_eq!(ev.extra.len(), 2, "{:?}", ev.extra);
        let ev = p
            .parse_at(
                br#"<34>1 2024-05-01T00:00:00+02:00 h app 42 - [a@1 x="q\"uo\\te\]d" y="back\slash" z=""][flag@1] msg"#,
                now,
            )
            .unwrap();
        assert_eq!(ev.ts.to_string(), "2024-04-30T22:00:00Z");
        assert_eq!(extra(&ev, "pid"), Some("42"));
        assert_eq!(extra(&ev, "sd.a@1.x"), Some(r#"q"uo\te]d"#));
        assert_eq!(extra(&ev, "sd.a@1.y"), Some(r"back\slash"));
        assert_eq!(extra(&ev, "sd.a@1.z"), Some(""));
        assert_eq!(extra(&ev, "sd.flag@1"), Some(""));
        assert_eq!(ev.message.as_deref(), Some("msg"));
        // sshd over RFC 5424 still gets the authentication layer.
        let ev = p
            .parse_at(
                b"<38>1 2024-05-01T00:00:00Z h sshd 7 - - Failed password for root from 10.0.0.9 port 2222 ssh2",
                now,
            )
            .unwrap();
        assert_eq!(ev.kind, EventKind::Auth);
        assert_eq!(ev.user.as_deref(), Some("root"));
    }

    #[test]
    fn rfc5424_errors_name_the_field() {
        let p = SyslogParser::default();
        for (line, want) in [
            (
                &b"<34>1 2024-13-01T00:00:00Z h a p m - x"[..],
                "timestamp: ",
            ),
            (
                b"<34>1 2024-05-01T00:00:00Z h a p m x",
                "structured_data: expected '-' or '[' at byte 35",
            ),
            (
                b"<34>1 2024-05-01T00:00:00Z h a p m",
                "structured_data: expected '-' or '['",
            ),
            (b"<34>1 2024-05-01T00:00:00Z h", "hostname: line ends"),
            (
                b"<34>1 2024-05-01T00:00:00Z h a p m [x a=\"b]",
                "structured_data: unterminated",
            ),
            (
                b"<34>1 2024-05-01T00:00:00Z h a p m [x a=b]",
                "structured_data: expected name=\"value\"",
            ),
            (
                b"<34>1 2024-05-01T00:00:00Z h a p m []",
                "structured_data: expected an SD-ID",
            ),
            (
                b"<34>1 2024-05-01T00:00:00Z h a p m [x]y",
                "msg: expected a space",
            ),
            (
                b"<34>1 2024-05-01T00:00:00Z  a p m -",
                "hostname: expected a value",
            ),
            (b"<192>1 - - - - - -", "pri: expected '<N>'"),
            (b"<34", "pri: expected"),
            (b"<>Oct 11 22:14:15 h x: y", "pri: expected"),
        ] {
            let e = p.parse(line).unwrap_err();
            assert!(
                e.reason.starts_with(want),
                "{:?}: {}",
                String::from_utf8_lossy(line),
                e.reason
            );
        }
    }

    #[test]
    fn rfc3164_errors_name_the_field() {
        let p = at(2020);
        for (line, want) in [
            (&b""[..], "timestamp: expected '<PRI>'"),
            (b"hello world", "timestamp: expected '<PRI>'"),
            (b"Foo 10 06:55:46 h x: y", "timestamp: expected '<PRI>'"),
            (b"Dec 100 06:55:46 h x: y", "timestamp: expected a day"),
            (b"Dec 10 6:55:46 h x: y", "timestamp: expected a time"),
            (b"Dec 10 06:55:46x h", "timestamp: expected a time"),
            (b"Dec 10 06:55:46. h", "timestamp: expected digits"),
            (
                b"Dec 32 06:55:46 h x: y",
                "timestamp: date or time out of range at byte 0",
            ),
            (b"Dec 10 06:55:46", "hostname: expected"),
            (b"Dec 10 06:55:46   ", "hostname: expected"),
            (
                b"2024-02-30T00:00:00Z h x: y",
                "timestamp: invalid timestamp",
            ),
            (
                br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#,
                "timestamp: ",
            ),
        ] {
            let e = p.parse(line).unwrap_err();
            assert!(
                e.reason.starts_with(want),
                "{:?}: {}",
                String::from_utf8_lossy(line),
                e.reason
            );
        }
    }

    #[test]
    fn bom_and_odd_bytes() {
        let ev = at(2020)
            .parse(b"\xEF\xBB\xBFDec 10 06:55:46 h\xff prog[1]: caf\xc3\xa9 \xff")
            .unwrap();
        assert_eq!(ev.host.as_deref(), Some("h\u{fffd}"));
        assert_eq!(ev.message.as_deref(), Some("caf\u{e9} \u{fffd}"));
    }
}
