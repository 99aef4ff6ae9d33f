//! Where a source stopped reading.

use serde::{Deserialize, Serialize};

/// The position a source has durably stored up to. It is written in the same
/// transaction as the events it covers, so that a crash can never leave the store and
/// the checkpoint disagreeing: a restart resumes with no duplicate and no lost line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The source's stable name.
    pub source: String,
    /// Identity of the file being read (device and inode on Unix), so that a rotated
    /// file is recognised as a different file.
    pub file_id: String,
    /// Byte offset just past the last line stored.
    pub offset: u64,
    /// Number of lines stored from this file so far.
    pub line_no: u64,
    /// A digest of the file's first bytes, to recognise a file replaced in place.
    pub fingerprint: u64,
}
