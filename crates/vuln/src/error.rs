//! The vulnerability engine's errors.

use std::path::PathBuf;

use palisade_store::StoreError;

/// Why a vulnerability task failed.
#[derive(Debug, thiserror::Error)]
pub enum VulnError {
    /// The store failed (`is_transient` says whether to retry).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A feed could not be fetched (after the retries).
    #[error("fetching {url}: {why}")]
    Http {
        /// What was asked for.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// A feed answered with a status that retrying will not change.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// What was asked for.
        url: String,
        /// The status.
        status: u16,
    },
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file or answer is not what it should be.
    #[error("{0}")]
    Parse(String),
    /// An inventory could not be read.
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    /// The NVD API key could not be read from the secrets store.
    #[error("the NVD API key secret: {0}")]
    Secret(String),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
    /// The task was cancelled (its progress is saved where it can be resumed).
    #[error("cancelled")]
    Cancelled,
}
