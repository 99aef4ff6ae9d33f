//! Lines in, batches out: the parse step every source shares.

use std::sync::Arc;

use palisade_core::{Checkpoint, DeadLetter, Event};
use palisade_formats::{FormatSpec, LineParser};
use palisade_store::IngestBatch;

use crate::status::SourceStatus;

/// Events reserved up front per batch; a larger batch grows as needed.
const INITIAL_CAPACITY: usize = 8192;

/// Lines read from a source's first bytes to guess its format.
pub const DETECT_SAMPLE_LINES: usize = 20;

/// Why a source cannot choose a parser.
#[derive(Debug, thiserror::Error)]
pub enum FormatChoiceError {
    /// Auto-detection found no format that fits the sample.
    #[error(
        "could not recognise the log format from its first lines; set `format` (combined, common, json, apache_error, syslog) or give the server's log_format string"
    )]
    Undetected,
    /// The configured format is invalid.
    #[error("{0}")]
    Invalid(#[from] palisade_formats::FormatError),
}

/// Builds the parser for a spec, resolving `auto` from sample lines.
pub fn choose_parser(
    spec: &FormatSpec,
    sample: &[&[u8]],
) -> Result<Arc<dyn LineParser>, FormatChoiceError> {
    let resolved = match spec {
        FormatSpec::Auto => palisade_formats::sniff(sample).ok_or(FormatChoiceError::Undetected)?,
        other => other.clone(),
    };
    Ok(palisade_formats::build(&resolved)?)
}

/// Accumulates parsed events and dead letters for one source until a batch is due.
pub struct Batcher {
    source: String,
    parser: Arc<dyn LineParser>,
    status: Option<Arc<SourceStatus>>,
    events: Vec<Event>,
    dead_letters: Vec<DeadLetter>,
    lines: u64,
    batch_size: usize,
}

impl Batcher {
    /// A batcher for a named source; `batch_size` lines make a full batch.
    pub fn new(
        source: &str,
        parser: Arc<dyn LineParser>,
        status: Option<Arc<SourceStatus>>,
        batch_size: usize,
    ) -> Self {
        if let Some(s) = &status {
            s.set_format(parser.name());
        }
        let batch_size = batch_size.max(1);
        Batcher {
            source: source.to_owned(),
            parser,
            status,
            events: Vec::with_capacity(batch_size.min(INITIAL_CAPACITY)),
            dead_letters: Vec::new(),
            lines: 0,
            batch_size,
        }
    }

    /// Parses one line (its end-of-line bytes are stripped here). Blank lines are
    /// skipped, not dead letters: they carry nothing.
    pub fn push_line(&mut self, line: &[u8], line_no: Option<u64>, offset: Option<u64>) {
        self.push_line_with(line, line_no, offset, |_| {});
    }

    /// Like [`Batcher::push_line`], then lets the source add what only it knows to the
    /// parsed event (a network source: the sender's address).
    pub fn push_line_with(
        &mut self,
        line: &[u8],
        line_no: Option<u64>,
        offset: Option<u64>,
        annotate: impl FnOnce(&mut Event),
    ) {
        let line = trim_eol(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        self.lines += 1;
        match self.parser.parse(line) {
            Ok(mut event) => {
                event.source.clone_from(&self.source);
                annotate(&mut event);
                self.events.push(event);
            }
            Err(e) => self.dead_letters.push(DeadLetter::new(
                &self.source,
                line_no,
                offset,
                line,
                e.reason,
            )),
        }
    }

    /// Keeps input the source itself rejected before parsing (a message over the size
    /// limit, a stream cut short) as a dead letter with the source's reason.
    pub fn push_dead_letter(&mut self, raw: &[u8], reason: impl Into<String>) {
        self.lines += 1;
        self.dead_letters
            .push(DeadLetter::new(&self.source, None, None, raw, reason));
    }

    /// Whether enough lines are pending for a batch.
    pub fn is_full(&self) -> bool {
        self.events.len() + self.dead_letters.len() >= self.batch_size
    }

    /// Whether anything is pending.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.dead_letters.is_empty()
    }

    /// Hands out what is pending as a batch carrying `checkpoint`, and counts it.
    pub fn take(&mut self, checkpoint: Option<Checkpoint>) -> IngestBatch {
        let events = std::mem::replace(
            &mut self.events,
            Vec::with_capacity(self.batch_size.min(INITIAL_CAPACITY)),
        );
        let dead_letters = std::mem::take(&mut self.dead_letters);
        if let Some(s) = &self.status {
            s.count(self.lines, events.len() as u64, dead_letters.len() as u64);
            if let Some(newest) = events.iter().map(|e| e.ts).max() {
                s.saw_event_at(newest);
            }
        }
        self.lines = 0;
        IngestBatch {
            events,
            dead_letters,
            checkpoint,
            idempotency_key: None,
        }
    }
}

/// Strips a trailing `\n` or `\r\n`.
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A cheap, stable digest of a file's first line, to recognise a file replaced in
/// place (FNV-1a: no dependency, and collisions only matter across rotations).
pub fn fingerprint(first_line: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in first_line {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eol_trimming() {
        assert_eq!(trim_eol(b"a\r\n"), b"a");
        assert_eq!(trim_eol(b"a\n"), b"a");
        assert_eq!(trim_eol(b"a"), b"a");
    }

    #[test]
    fn parses_and_dead_letters() {
        let parser = palisade_formats::build(&FormatSpec::Combined).unwrap();
        let mut b = Batcher::new("t", parser, None, 3);
        b.push_line(
            b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.0\" 200 2326 \"-\" \"x\"\n",
            Some(1),
            Some(0),
        );
        b.push_line(b"garbage\n", Some(2), Some(80));
        b.push_line(b"\n", Some(3), Some(88));
        assert!(!b.is_full());
        let batch = b.take(None);
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].source, "t");
        assert_eq!(batch.dead_letters.len(), 1);
        assert_eq!(batch.dead_letters[0].line_no, Some(2));
        assert_eq!(batch.dead_letters[0].raw, "garbage");
        assert!(b.is_empty());
        b.push_line_with(
            b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.0\" 200 1 \"-\" \"x\"",
            None,
            None,
            |ev| ev.extra.push(("peer".into(), "10.0.0.1".into())),
        );
        b.push_dead_letter(b"too long", "cut");
        let batch = b.take(None);
        assert_eq!(batch.events[0].extra, [("peer".into(), "10.0.0.1".into())]);
        assert_eq!(batch.dead_letters[0].reason, "cut");
    }
}
