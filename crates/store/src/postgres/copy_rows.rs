//! Rows for `COPY … FROM STDIN (FORMAT binary)`, encoded here and sent in large
//! messages.
//!
//! Why: tokio-postgres's `BinaryCopyInWriter` hands its buffer to the connection task
//! every 4 KB, each `CopyData` message a hand-off between tasks and a socket write of
//! its own. For the generated 1M-line log (`palisade ingest --no-detect`) that was 45k
//! `sendto` calls and 46k context switches of the `palisade` process; with 256 KB
//! messages 4.6k and 7k, and its CPU 2.4–2.7 s → 2.1–2.2 s (docs/BENCHMARKS.md,
//! `pgingest3`). The encoding is the same (PostgreSQL's binary
//! `COPY` format: a signature and two zero words, per row a field count and each field
//! as a length and the value's binary form, `-1` for a NULL, then `-1` to end), and the
//! values are written by the same `ToSql` implementations, so the rows stored are the
//! same; only the message size changes.

use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::CopyInSink;
use tokio_postgres::types::{IsNull, ToSql, Type};

use super::pg_err;
use crate::StoreError;

/// Bytes gathered before a message is sent: large enough that the per-message cost
/// (a task hand-off and a write) is spread over hundreds of rows, small enough to keep
/// the buffer a small part of an import's memory.
const MESSAGE_BYTES: usize = 256 * 1024;

/// The binary `COPY` signature, then the flags word and the header-extension length
/// (both zero).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A binary `COPY` in progress: rows of `types` are encoded into a buffer that is sent
/// whenever it holds [`MESSAGE_BYTES`].
pub(super) struct CopyRows<'t> {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    buf: BytesMut,
    types: &'t [Type],
}

impl<'t> CopyRows<'t> {
    /// Starts the rows of `sink` (a `COPY … FROM STDIN (FORMAT binary)` just begun)
    /// whose columns have `types`.
    pub(super) fn new(sink: CopyInSink<Bytes>, types: &'t [Type]) -> Self {
        let mut buf = BytesMut::with_capacity(MESSAGE_BYTES + MESSAGE_BYTES / 4);
        buf.put_slice(HEADER);
        Self {
            sink: Box::pin(sink),
            buf,
            types,
        }
    }

    /// Adds one row, one value per column type, and sends the buffer when it is full.
    pub(super) async fn write(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
        let fields = i16::try_from(values.len())
            .ok()
            .filter(|_| values.len() == self.types.len())
            .ok_or_else(|| {
                StoreError::Database(format!(
                    "a COPY row of {} values for {} columns",
                    values.len(),
                    self.types.len()
                ))
            })?;
        self.buf.put_i16(fields);
        for (i, (value, ty)) in values.iter().zip(self.types).enumerate() {
            let at = self.buf.len();
            self.buf.put_i32(0);
            let written = value.to_sql_checked(ty, &mut self.buf).map_err(|e| {
                StoreError::Database(format!("cannot encode COPY column {}: {e}", i + 1))
            })?;
            let len = match written {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - at - 4).map_err(|_| {
                    StoreError::Database(format!("COPY column {} is over 2 GB", i + 1))
                })?,
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        if self.buf.len() >= MESSAGE_BYTES {
            let message = self.buf.split().freeze();
            self.sink.send(message).await.map_err(pg_err)?;
            self.buf.reserve(MESSAGE_BYTES + MESSAGE_BYTES / 4);
        }
        Ok(())
    }

    /// Ends the rows and the `COPY`; returns how many rows the server took.
    pub(super) async fn finish(mut self) -> Result<u64, StoreError> {
        self.buf.put_i16(-1);
        let message = self.buf.split().freeze();
        self.sink.send(message).await.map_err(pg_err)?;
        self.sink.as_mut().finish().await.map_err(pg_err)
    }
}
