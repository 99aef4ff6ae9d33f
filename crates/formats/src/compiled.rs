//! The matching engine shared by nginx `log_format` and Apache `LogFormat`: both
//! front ends compile into the same list of literal and field steps, which is matched
//! against each line by hand (memchr for the next delimiter, no regex, no allocation
//! until a line is known to match).
//!
//! A field ends where the literal text after it starts. A field between quotes (the
//! literal before it ends with `"` and the one after it starts with `"`) skips `\"`
//! escapes, and is a backtracking point: old Apache versions logged raw quotes inside
//! `%r`, so when a later field fails (e.g. the status is not 3 digits), the engine tries
//! the next closing quote, within a small budget. A field followed by the format's
//! final literal extends to the end of the line, so an unescaped quote inside the last
//! quoted field (the User-Agent, typically) does not break the line.

use palisade_core::{Event, Timestamp};

use crate::request_line::{split_request, split_target};
use crate::text::{decimal_micros, ip, is_empty_value, opt_text, status, text, uint};
use crate::{LineParser, ParseError};

/// Most fields a format may have; the per-line field positions live on the stack.
pub(crate) const MAX_FIELDS: usize = 64;
/// Most alternative closing quotes tried per line, so a hostile line costs O(n).
const MAX_RETRIES: usize = 8;

/// Which event field a format variable fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Client address: an IP, or a hostname kept in `extra` as `client`.
    ClientIp,
    User,
    /// `10/Oct/2000:13:55:36 -0700`.
    TimeClf,
    TimeIso,
    /// Seconds since the epoch with optional fraction.
    TimeEpoch,
    /// A full request line, split into method, path, query and protocol.
    Request,
    Method,
    /// Path plus optional `?query`.
    RequestUri,
    Path,
    /// Query string, with or without a leading `?`.
    Query,
    Protocol,
    Status,
    /// Response body size.
    Bytes,
    /// Whole response size; used for `bytes` only when the format has no body size.
    BytesTotal,
    Referer,
    UserAgent,
    Host,
    /// A duration in units of `micros` microseconds (1_000_000 for seconds).
    Duration {
        micros: u64,
    },
    /// Anything else, kept in `extra` under this name.
    Extra(String),
}

/// What a front end produces: literal text and fields, with their byte position in
/// the format string for error messages.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Lit(Vec<u8>),
    Field {
        name: String,
        kind: Kind,
        pos: usize,
    },
}

#[derive(Debug)]
enum End {
    /// The field is the last step: it takes the rest of the line.
    Rest,
    /// The field is followed by the format's final literal: it extends to the line's
    /// end minus that literal.
    Final(Box<[u8]>),
    /// The field ends at the next occurrence of this literal.
    Until { lit: Box<[u8]>, quoted: bool },
}

#[derive(Debug)]
enum Step {
    Lit(Box<[u8]>),
    Field {
        slot: usize,
        name: String,
        kind: Kind,
        end: End,
    },
}

/// A compiled line format: immutable, cheap to share between threads.
#[derive(Debug)]
pub(crate) struct Compiled {
    name: String,
    steps: Vec<Step>,
    /// Whether trailing spaces/tabs/CR are dropped before matching (unless the format
    /// itself ends in whitespace).
    trim_end: bool,
}

/// Why a piece list cannot be compiled: byte position in the format and reason.
pub(crate) type CompileError = (usize, String);

impl Compiled {
    /// Builds the step list from a front end's pieces.
    pub(crate) fn new(name: String, pieces: Vec<Piece>) -> Result<Self, CompileError> {
        // Merge adjacent literals and refuse adjacent fields.
        let mut merged: Vec<Piece> = Vec::with_capacity(pieces.len());
        for piece in pieces {
            match (merged.last_mut(), piece) {
                (_, Piece::Lit(l)) if l.is_empty() => {}
                (Some(Piece::Lit(prev)), Piece::Lit(l)) => prev.extend_from_slice(&l),
                (Some(Piece::Field { name: prev, .. }), Piece::Field { name, pos, .. }) => {
                    return Err((
                        pos,
                        format!(
                            "'{prev}' and '{name}' follow each other with no literal text \
                             between them, so a line cannot be split; put a separator \
                             (such as a space) between them"
                        ),
                    ));
                }
                (_, p) => merged.push(p),
            }
        }
        let nfields = merged
            .iter()
            .filter(|p| matches!(p, Piece::Field { .. }))
            .count();
        if nfields == 0 {
            return Err((
                0,
                "the format has no fields; it would match nothing useful".into(),
            ));
        }
        if nfields > MAX_FIELDS {
            return Err((
                0,
                format!("the format has {nfields} fields; at most {MAX_FIELDS} are supported"),
            ));
        }
        let has_body_bytes = merged.iter().any(|p| {
            matches!(
                p,
                Piece::Field {
                    kind: Kind::Bytes,
                    ..
                }
            )
        });
        let last = merged.len() - 1;
        let mut steps = Vec::with_capacity(merged.len());
        let mut slot = 0;
        for (i, piece) in merged.iter().enumerate() {
            match piece {
                Piece::Lit(l) => steps.push(Step::Lit(l.clone().into_boxed_slice())),
                Piece::Field { name, kind, .. } => {
                    let end = match merged.get(i + 1) {
                        None => End::Rest,
                        Some(Piece::Lit(l)) if i + 1 == last => End::Final(l.clone().into()),
                        Some(Piece::Lit(l)) => {
                            let opens = i > 0
                                && matches!(&merged[i - 1], Piece::Lit(p) if p.last() == Some(&b'"'));
                            End::Until {
                                lit: l.clone().into(),
                                quoted: opens && l.first() == Some(&b'"'),
                            }
                        }
                        Some(Piece::Field { .. }) => End::Rest, // refused above
                    };
                    let kind = match kind {
                        Kind::BytesTotal if has_body_bytes => Kind::Extra("bytes_sent".into()),
                        k => k.clone(),
                    };
                    steps.push(Step::Field {
                        slot,
                        name: name.clone(),
                        kind,
                        end,
                    });
                    slot += 1;
                }
            }
        }
        let trim_end = !matches!(merged.last(), Some(Piece::Lit(l)) if l.last().is_some_and(u8::is_ascii_whitespace));
        Ok(Compiled {
            name,
            steps,
            trim_end,
        })
    }

    /// Runs one step at `pos`. For a field, `resume` restarts the search for its end
    /// after an earlier candidate. Returns the new position and, for quoted fields, where
    /// to look for an alternative end.
    fn step(
        &self,
        i: usize,
        pos: usize,
        line: &[u8],
        spans: &mut [(usize, usize); MAX_FIELDS],
        resume: Option<usize>,
    ) -> Result<(usize, Option<usize>), ParseError> {
        match &self.steps[i] {
            Step::Lit(lit) => {
                if line.get(pos..).is_some_and(|rest| rest.starts_with(lit)) {
                    Ok((pos + lit.len(), None))
                } else {
                    Err(ParseError::new(format!(
                        "expected {:?} at byte {pos}",
                        String::from_utf8_lossy(lit)
                    )))
                }
            }
            Step::Field {
                slot,
                name,
                kind,
                end,
            } => {
                let (stop, alt) = match end {
                    End::Rest => (line.len(), None),
                    End::Final(lit) => {
                        if line.len() >= pos + lit.len() && line.ends_with(lit) {
                            (line.len() - lit.len(), None)
                        } else {
                            return Err(ParseError::new(format!(
                                "{name}: missing closing {:?} at end of line (byte {})",
                                String::from_utf8_lossy(lit),
                                line.len()
                            )));
                        }
                    }
                    End::Until { lit, quoted } => {
                        let from = resume.unwrap_or(pos);
                        match find(line, from, lit, *quoted) {
                            Some(c) => (c, quoted.then_some(c + 1)),
                            None if *quoted => {
                                return Err(ParseError::new(format!(
                                    "{name}: no closing quote followed by {:?} after byte {pos}",
                                    String::from_utf8_lossy(lit)
                                )));
                            }
                            None => {
                                return Err(ParseError::new(format!(
                                    "{name}: expected {:?} after the field starting at byte {pos}",
                                    String::from_utf8_lossy(lit)
                                )));
                            }
                        }
                    }
                };
                let value = line.get(pos..stop).unwrap_or_default();
                validate(name, kind, value, pos)?;
                if let Some(s) = spans.get_mut(*slot) {
                    *s = (pos, stop);
                }
                Ok((stop, alt))
            }
        }
    }

    /// Splits a line into field spans, backtracking over quoted fields when needed.
    fn match_spans(
        &self,
        line: &[u8],
        spans: &mut [(usize, usize); MAX_FIELDS],
    ) -> Result<(), ParseError> {
        let mut choices = [(0usize, 0usize, 0usize); MAX_RETRIES];
        let mut nchoices = 0;
        let mut retries = 0;
        let mut first_err: Option<ParseError> = None;
        let (mut i, mut pos) = (0, 0);
        loop {
            let err = if i == self.steps.len() {
                if pos == line.len() {
                    return Ok(());
                }
                ParseError::new(format!(
                    "unexpected text after the last field at byte {pos}"
                ))
            } else {
                match self.step(i, pos, line, spans, None) {
                    Ok((next, alt)) => {
                        if let Some(from) = alt
                            && nchoices < MAX_RETRIES
                        {
                            choices[nchoices] = (i, pos, from);
                            nchoices += 1;
                        }
                        pos = next;
                        i += 1;
                        continue;
                    }
                    Err(e) => e,
                }
            };
            first_err.get_or_insert(err);
            // Backtrack to the most recent quoted field with another closing quote.
            loop {
                if nchoices == 0 || retries >= MAX_RETRIES {
                    return Err(first_err
                        .take()
                        .unwrap_or_else(|| ParseError::new("no match")));
                }
                nchoices -= 1;
                retries += 1;
                let (ci, start, from) = choices[nchoices];
                if let Ok((next, alt)) = self.step(ci, start, line, spans, Some(from)) {
                    if let Some(from) = alt {
                        choices[nchoices] = (ci, start, from);
                        nchoices += 1;
                    }
                    i = ci + 1;
                    pos = next;
                    break;
                }
            }
        }
    }

    /// Turns matched spans into an event.
    fn fill(&self, line: &[u8], spans: &[(usize, usize); MAX_FIELDS]) -> Result<Event, ParseError> {
        let mut ev = Event::default();
        for step in &self.steps {
            let Step::Field {
                slot, name, kind, ..
            } = step
            else {
                continue;
            };
            let (start, stop) = spans.get(*slot).copied().unwrap_or_default();
            let v = line.get(start..stop).unwrap_or_default();
            let time_err =
                |e: palisade_core::time::TimeError| ParseError::at(name, &e.to_string(), start);
            match kind {
                Kind::ClientIp => {
                    if !is_empty_value(v) {
                        match ip(v) {
                            Some(addr) => ev.client_ip = Some(addr),
                            None => ev.extra.push(("client".into(), text(v))),
                        }
                    }
                }
                Kind::User => ev.user = opt_text(v),
                Kind::TimeClf => ev.ts = Timestamp::parse_clf(v).map_err(time_err)?,
                Kind::TimeIso => ev.ts = Timestamp::parse_iso8601(v).map_err(time_err)?,
                Kind::TimeEpoch => ev.ts = Timestamp::parse_epoch(v).map_err(time_err)?,
                Kind::Request => {
                    if !is_empty_value(v) {
                        let parts = split_request(v);
                        if parts == Default::default() {
                            ev.extra.push(("request".into(), text(v)));
                        }
                        ev.method = parts.method.map(text);
                        if let Some(target) = parts.target {
                            let (path, query) = split_target(target);
                            ev.path = Some(text(path));
                            ev.query = query.map(text);
                        }
                        ev.protocol = parts.protocol.map(text);
                    }
                }
                Kind::Method => ev.method = opt_text(v),
                Kind::RequestUri => {
                    if !is_empty_value(v) {
                        let (path, query) = split_target(v);
                        ev.path = Some(text(path));
                        ev.query = query.map(text);
                    }
                }
                Kind::Path => {
                    if ev.path.is_none() {
                        ev.path = opt_text(v);
                    }
                }
                Kind::Query => {
                    let q = v.strip_prefix(b"?").unwrap_or(v);
                    if ev.query.is_none() {
                        ev.query = opt_text(q);
                    }
                }
                Kind::Protocol => ev.protocol = opt_text(v),
                Kind::Status => ev.status = status(v),
                Kind::Bytes | Kind::BytesTotal => ev.bytes = uint(v),
                Kind::Referer => ev.referer = opt_text(v),
                Kind::UserAgent => ev.user_agent = opt_text(v),
                Kind::Host => ev.host = opt_text(v),
                Kind::Duration { micros } => ev.duration_us = decimal_micros(v, *micros),
                Kind::Extra(key) => {
                    if !is_empty_value(v) {
                        ev.extra.push((key.clone(), text(v)));
                    }
                }
            }
        }
        Ok(ev)
    }
}

/// Cheap syntax checks done while matching, so that a wrong split (e.g. a raw quote
/// inside the request) is noticed and another split tried.
fn validate(name: &str, kind: &Kind, v: &[u8], pos: usize) -> Result<(), ParseError> {
    if v == b"-" {
        return Ok(());
    }
    let ok = match kind {
        Kind::Status => status(v).is_some(),
        Kind::Bytes | Kind::BytesTotal => uint(v).is_some(),
        Kind::Duration { micros } => decimal_micros(v, *micros).is_some(),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let what = match kind {
        Kind::Status => "expected 3 digits",
        Kind::Duration { .. } => "expected a number",
        _ => "expected digits or '-'",
    };
    Err(ParseError::at(name, what, pos))
}

/// The next position at or after `from` where `lit` starts. For quoted fields,
/// backslash escapes are skipped so that `\"` does not end the field.
fn find(line: &[u8], from: usize, lit: &[u8], quoted: bool) -> Option<usize> {
    let first = *lit.first()?;
    let mut i = from;
    loop {
        let rest = line.get(i..)?;
        let j = if quoted {
            i + memchr::memchr2(first, b'\\', rest)?
        } else {
            i + memchr::memchr(first, rest)?
        };
        if quoted && line.get(j) == Some(&b'\\') {
            i = j + 2;
            continue;
        }
        if line.get(j..).is_some_and(|r| r.starts_with(lit)) {
            return Some(j);
        }
        i = j + 1;
    }
}

impl LineParser for Compiled {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse(&self, line: &[u8]) -> Result<Event, ParseError> {
        let mut line = line;
        if self.trim_end {
            while let [rest @ .., b' ' | b'\t' | b'\r'] = line {
                line = rest;
            }
        }
        let mut spans = [(0usize, 0usize); MAX_FIELDS];
        self.match_spans(line, &mut spans)?;
        self.fill(line, &spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: Kind) -> Piece {
        Piece::Field {
            name: name.into(),
            kind,
            pos: 0,
        }
    }

    fn lit(s: &str) -> Piece {
        Piece::Lit(s.as_bytes().to_vec())
    }

    #[test]
    fn adjacent_fields_and_empty_formats_are_refused() {
        let e = Compiled::new(
            "t".into(),
            vec![field("a", Kind::User), field("b", Kind::Host)],
        )
        .unwrap_err();
        assert!(e.1.contains("'a' and 'b'"), "{}", e.1);
        assert!(Compiled::new("t".into(), vec![lit("x")]).is_err());
        assert!(Compiled::new("t".into(), vec![]).is_err());
    }

    #[test]
    fn quoted_field_backtracks_to_the_next_quote() {
        let c = Compiled::new(
            "t".into(),
            vec![
                lit("\""),
                field("request", Kind::Request),
                lit("\" "),
                field("status", Kind::Status),
                lit(" \""),
                field("ua", Kind::UserAgent),
                lit("\""),
            ],
        )
        .unwrap();
        let ev = c.parse(br#""GET" /x?a=' HTTP/1.0" 404 "Nik"to""#).unwrap();
        assert_eq!(ev.method.as_deref(), Some("GET\""));
        assert_eq!(ev.path.as_deref(), Some("/x"));
        assert_eq!(ev.query.as_deref(), Some("a='"));
        assert_eq!(ev.status, Some(404));
        assert_eq!(ev.user_agent.as_deref(), Some("Nik\"to"));
        // The first error is the one reported.
        let e = c.parse(br#""GET /" 4x4 "ua""#).unwrap_err();
        assert_eq!(e.reason, "status: expected 3 digits at byte 8");
    }

    #[test]
    fn escaped_quotes_do_not_end_a_field() {
        let c = Compiled::new(
            "t".into(),
            vec![
                lit("\""),
                field("ua", Kind::UserAgent),
                lit("\" "),
                field("status", Kind::Status),
            ],
        )
        .unwrap();
        let ev = c.parse(br#""a \" b" 200"#).unwrap();
        assert_eq!(ev.user_agent.as_deref(), Some("a \" b"));
        assert!(c.parse(br#""a \" b 200"#).is_err());
    }

    #[test]
    fn trailing_text_and_whitespace() {
        let c = Compiled::new("t".into(), vec![field("s", Kind::Status), lit(";")]).unwrap();
        assert_eq!(c.parse(b"200;  \r").unwrap().status, Some(200));
        assert!(c.parse(b"200").is_err());
        let c = Compiled::new(
            "t".into(),
            vec![
                field("s", Kind::Status),
                lit(" "),
                field("b", Kind::Bytes),
                lit(" "),
            ],
        )
        .unwrap();
        assert!(!c.trim_end);
        assert_eq!(c.parse(b"200 5 ").unwrap().bytes, Some(5));
    }
}
