//! Sources: everything that brings lines into Palisade, and the one path they all take
//! to the store.
//!
//! ```text
//! file tail ─┐
//! import ────┤
//! syslog ────┼─► parse (palisade-formats) ─► BatchWriter (bounded queue) ─► Store
//! HTTP push ─┘
//! ```
//!
//! Every source builds [`palisade_store::IngestBatch`]es that carry their own
//! checkpoint, and hands them to the [`writer::BatchWriter`], whose queue is bounded:
//! when the store is slow or down, `send` waits, so sources stop reading instead of
//! buffering without limit or dropping lines.

pub mod batcher;
pub mod import;
pub mod status;
pub mod switch;
pub mod syslog;
pub mod tail;
pub mod writer;

pub use status::{SourceChange, SourceRegistry, SourceState, SourceStatus};
pub use writer::{BatchWriter, StoredBatches, WriterConfig, WriterError};
