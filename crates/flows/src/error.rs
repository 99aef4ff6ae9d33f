//! The errors of this crate: what can stop reading a capture as a whole.
//!
//! A malformed *packet* is never an error: it is counted ([`crate::Stats`]) and skipped.
//! Only a file that cannot be read or framed any further ends the read.

/// Why a capture could not be read (further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("reading the capture: {0}")]
    Io(#[from] std::io::Error),
    /// The first bytes are neither a pcap nor a pcapng magic (nor gzip around one).
    #[error("not a pcap or pcapng capture (magic {0:02x?})")]
    UnknownFormat([u8; 4]),
    /// The framing of the file is broken (a record or block length that cannot be right);
    /// nothing after it can be found again.
    #[error("corrupt capture at byte {offset}: {reason}")]
    Corrupt {
        /// Byte offset of the broken record in the (decompressed) stream.
        offset: u64,
        /// What was wrong.
        reason: &'static str,
    },
}
