//! The store's error type.

/// Why a store operation failed. `Unavailable` is the one to retry: the database could
/// not be reached; everything else is a bug or bad data and retrying will not help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or the connection broke.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Database(String),
    /// The schema could not be created or upgraded.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database URL is not usable.
    #[error("{0}")]
    InvalidUrl(String),
    /// A unique name or key is already taken.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A stored row could not be read back into the domain model.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying later may succeed (the database was unreachable or busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
