//! The translation between the ingest tables (events, dead letters, checkpoints) and
//! the domain model, shared by both backends so that they store (and give back) exactly
//! the same thing.

use std::borrow::Cow;

use palisade_core::dead_letter::StoredDeadLetter;
use palisade_core::event::StoredEvent;
use palisade_core::net::{ip_from_key, ip_key};
use palisade_core::verdict::Action;
use palisade_core::{Checkpoint, DeadLetter, Event, EventKind, Timestamp};

use crate::StoreError;
use crate::codec::{clean, u64_to_i64};

/// The event columns in table order (without `id`), as used by inserts and `COPY`.
pub(crate) const EVENT_INSERT_COLUMNS: &str = "ts, received_at, kind, source, client_ip, host, \
     method, path, query, protocol, status, bytes, referer, user_agent, user_name, \
     duration_us, message, extra, verdict";

/// The event columns every read selects, in the order [`EventColumns`] expects.
pub(crate) const EVENT_SELECT_COLUMNS: &str = "id, ts, received_at, kind, source, client_ip, \
     host, method, path, query, protocol, status, bytes, referer, user_agent, user_name, \
     duration_us, message, extra, verdict";

/// The dead-letter columns every read selects, in the order [`DeadLetterColumns`] expects.
pub(crate) const DEAD_LETTER_SELECT_COLUMNS: &str =
    "id, source, line_no, byte_offset, raw, reason, received_at";

/// The checkpoint columns every read selects, in the order [`CheckpointColumns`] expects.
pub(crate) const CHECKPOINT_SELECT_COLUMNS: &str =
    "source, file_id, byte_offset, line_no, fingerprint";

fn clean_opt(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(clean)
}

fn i64_to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// One event as column values, borrowing from the [`Event`] where it can.
pub(crate) struct EventColumnsIn<'a> {
    pub ts: i64,
    pub received_at: i64,
    pub kind: &'static str,
    pub source: Cow<'a, str>,
    pub client_ip: Option<[u8; 16]>,
    pub host: Option<Cow<'a, str>>,
    pub method: Option<Cow<'a, str>>,
    pub path: Option<Cow<'a, str>>,
    pub query: Option<Cow<'a, str>>,
    pub protocol: Option<Cow<'a, str>>,
    pub status: Option<i32>,
    pub bytes: Option<i64>,
    pub referer: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub user_name: Option<Cow<'a, str>>,
    pub duration_us: Option<i64>,
    pub message: Option<Cow<'a, str>>,
    pub extra: Option<String>,
    pub verdict: Option<&'static str>,
}

impl<'a> EventColumnsIn<'a> {
    /// The column values for one event received at `received_at`.
    pub fn new(e: &'a Event, received_at: Timestamp) -> Result<Self, StoreError> {
        let extra = if e.extra.is_empty() {
            None
        } else {
            let cleaned: Vec<(Cow<'_, str>, Cow<'_, str>)> =
                e.extra.iter().map(|(k, v)| (clean(k), clean(v))).collect();
            Some(
                serde_json::to_string(&cleaned)
                    .map_err(|err| StoreError::Database(format!("encoding extra: {err}")))?,
            )
        };
        Ok(EventColumnsIn {
            ts: e.ts.as_micros(),
            received_at: received_at.as_micros(),
            kind: e.kind.as_str(),
            source: clean(&e.source),
            client_ip: e.client_ip.map(ip_key),
            host: clean_opt(&e.host),
            method: clean_opt(&e.method),
            path: clean_opt(&e.path),
            query: clean_opt(&e.query),
            protocol: clean_opt(&e.protocol),
            status: e.status.map(i32::from),
            bytes: e.bytes.map(u64_to_i64),
            referer: clean_opt(&e.referer),
            user_agent: clean_opt(&e.user_agent),
            user_name: clean_opt(&e.user),
            duration_us: e.duration_us.map(u64_to_i64),
            message: clean_opt(&e.message),
            extra,
            verdict: e.verdict.map(Action::as_str),
        })
    }
}

/// One dead letter as column values.
pub(crate) struct DeadLetterColumnsIn<'a> {
    pub source: Cow<'a, str>,
    pub line_no: Option<i64>,
    pub byte_offset: Option<i64>,
    pub raw: Cow<'a, str>,
    pub reason: Cow<'a, str>,
    pub received_at: i64,
}

impl<'a> DeadLetterColumnsIn<'a> {
    /// The column values for one dead letter.
    pub fn new(d: &'a DeadLetter) -> Self {
        DeadLetterColumnsIn {
            source: clean(&d.source),
            line_no: d.line_no.map(u64_to_i64),
            byte_offset: d.offset.map(u64_to_i64),
            raw: clean(&d.raw),
            reason: clean(&d.reason),
            received_at: d.received_at.as_micros(),
        }
    }
}

/// One checkpoint as column values (the fingerprint is bit-cast to fit a BIGINT).
pub(crate) struct CheckpointColumnsIn<'a> {
    pub source: Cow<'a, str>,
    pub file_id: Cow<'a, str>,
    pub byte_offset: i64,
    pub line_no: i64,
    pub fingerprint: i64,
}

impl<'a> CheckpointColumnsIn<'a> {
    /// The column values for one checkpoint.
    pub fn new(c: &'a Checkpoint) -> Self {
        CheckpointColumnsIn {
            source: clean(&c.source),
            file_id: clean(&c.file_id),
            byte_offset: u64_to_i64(c.offset),
            line_no: u64_to_i64(c.line_no),
            fingerprint: i64::from_ne_bytes(c.fingerprint.to_ne_bytes()),
        }
    }
}

/// One event row as read back, before validation.
#[derive(Default)]
pub(crate) struct EventColumns {
    pub id: i64,
    pub ts: i64,
    pub received_at: i64,
    pub kind: String,
    pub source: String,
    pub client_ip: Option<Vec<u8>>,
    pub host: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub protocol: Option<String>,
    pub status: Option<i64>,
    pub bytes: Option<i64>,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    pub user_name: Option<String>,
    pub duration_us: Option<i64>,
    pub message: Option<String>,
    pub extra: Option<String>,
    pub verdict: Option<String>,
}

impl EventColumns {
    /// Validates the row and builds the domain value.
    pub fn into_stored(self) -> Result<StoredEvent, StoreError> {
        let id = self.id;
        let kind = EventKind::parse(&self.kind).ok_or_else(|| {
            StoreError::Corrupt(format!("event {id}: unknown kind '{}'", self.kind))
        })?;
        let client_ip = match self.client_ip {
            None => None,
            Some(key) => Some(ip_from_key(&key).ok_or_else(|| {
                StoreError::Corrupt(format!("event {id}: client_ip is {} bytes", key.len()))
            })?),
        };
        let status = match self.status {
            None => None,
            Some(s) => Some(u16::try_from(s).map_err(|_| {
                StoreError::Corrupt(format!("event {id}: status {s} out of range"))
            })?),
        };
        let extra = match self.extra.as_deref() {
            None => Vec::new(),
            Some(json) => serde_json::from_str::<Vec<(String, String)>>(json)
                .map_err(|err| StoreError::Corrupt(format!("event {id}: extra: {err}")))?,
        };
        let verdict = match self.verdict.as_deref() {
            None => None,
            Some(name) => Some(name.parse::<Action>().map_err(|_| {
                StoreError::Corrupt(format!("event {id}: unknown verdict '{name}'"))
            })?),
        };
        Ok(StoredEvent {
            id,
            received_at: Timestamp(self.received_at),
            event: Event {
                ts: Timestamp(self.ts),
                kind,
                source: self.source,
                client_ip,
                host: self.host,
                method: self.method,
                path: self.path,
                query: self.query,
                protocol: self.protocol,
                status,
                bytes: self.bytes.map(|v| i64_to_u64(v, "bytes")).transpose()?,
                referer: self.referer,
                user_agent: self.user_agent,
                user: self.user_name,
                duration_us: self
                    .duration_us
                    .map(|v| i64_to_u64(v, "duration_us"))
                    .transpose()?,
                message: self.message,
                verdict,
                extra,
            },
        })
    }
}

/// One dead-letter row as read back.
pub(crate) struct DeadLetterColumns {
    pub id: i64,
    pub source: String,
    pub line_no: Option<i64>,
    pub byte_offset: Option<i64>,
    pub raw: String,
    pub reason: String,
    pub received_at: i64,
}

impl DeadLetterColumns {
    /// Validates the row and builds the domain value.
    pub fn into_stored(self) -> Result<StoredDeadLetter, StoreError> {
        Ok(StoredDeadLetter {
            id: self.id,
            dead_letter: DeadLetter {
                source: self.source,
                line_no: self.line_no.map(|v| i64_to_u64(v, "line_no")).transpose()?,
                offset: self
                    .byte_offset
                    .map(|v| i64_to_u64(v, "byte_offset"))
                    .transpose()?,
                raw: self.raw,
                reason: self.reason,
                received_at: Timestamp(self.received_at),
            },
        })
    }
}

/// One checkpoint row as read back.
pub(crate) struct CheckpointColumns {
    pub source: String,
    pub file_id: String,
    pub byte_offset: i64,
    pub line_no: i64,
    pub fingerprint: i64,
}

impl CheckpointColumns {
    /// Validates the row and builds the domain value.
    pub fn into_checkpoint(self) -> Result<Checkpoint, StoreError> {
        Ok(Checkpoint {
            source: self.source,
            file_id: self.file_id,
            offset: i64_to_u64(self.byte_offset, "checkpoint offset")?,
            line_no: i64_to_u64(self.line_no, "checkpoint line_no")?,
            fingerprint: u64::from_ne_bytes(self.fingerprint.to_ne_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_bit_cast_round_trips() {
        let c = Checkpoint {
            source: "s".into(),
            file_id: "f".into(),
            offset: 1,
            line_no: 2,
            fingerprint: u64::MAX - 3,
        };
        let cols = CheckpointColumnsIn::new(&c);
        let back = CheckpointColumns {
            source: cols.source.into_owned(),
            file_id: cols.file_id.into_owned(),
            byte_offset: cols.byte_offset,
            line_no: cols.line_no,
            fingerprint: cols.fingerprint,
        }
        .into_checkpoint()
        .unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn corrupt_rows_are_errors_not_panics() {
        let bad = EventColumns {
            kind: "nope".into(),
            ..EventColumns::default()
        };
        assert!(matches!(bad.into_stored(), Err(StoreError::Corrupt(_))));
        let bad = EventColumns {
            kind: "http".into(),
            client_ip: Some(vec![1, 2, 3]),
            ..EventColumns::default()
        };
        assert!(matches!(bad.into_stored(), Err(StoreError::Corrupt(_))));
    }
}
