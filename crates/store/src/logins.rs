//! Failed password checks and the addresses users logged in from: the state behind the
//! login lockout (`palisade_auth::lockout` decides; this only counts and remembers).

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::security::LoginFailures;

use crate::StoreError;

/// Addresses remembered per user; the least recently used beyond this are forgotten.
pub const KNOWN_ADDRESSES_PER_USER: u32 = 32;

/// Storage for login throttling. Runs of failures are keyed by the username as
/// submitted (it need not exist) and a client key (an address, or any fixed key the
/// caller uses for "all addresses"); counting is one atomic statement, so concurrent
/// failures are never lost.
#[async_trait]
pub trait LoginStore: Send + Sync {
    /// Counts one failure for `(username, client)` at `at`, atomically, and returns the
    /// run including it. A run whose last failure is before `forget_before` starts over
    /// at 1.
    async fn record_login_failure(
        &self,
        username: &str,
        client: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<LoginFailures, StoreError>;
    /// The run of `(username, client)`, unless there is none or its last failure is
    /// before `forget_before`.
    async fn login_failures(
        &self,
        username: &str,
        client: &str,
        forget_before: Timestamp,
    ) -> Result<Option<LoginFailures>, StoreError>;
    /// Ends the run of `(username, client)`, or every run of `username` when `client`
    /// is `None`; returns how many runs ended.
    async fn clear_login_failures(
        &self,
        username: &str,
        client: Option<&str>,
    ) -> Result<u64, StoreError>;
    /// Deletes runs whose last failure is before `before`, so the table stays small;
    /// returns how many.
    async fn forget_login_failures(&self, before: Timestamp) -> Result<u64, StoreError>;
    /// Remembers that `user_id` logged in from `client` at `at`, keeping the
    /// [`KNOWN_ADDRESSES_PER_USER`] most recent addresses per user.
    async fn remember_login_address(
        &self,
        user_id: i64,
        client: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Whether `user_id` has logged in from `client` (and it is still remembered).
    async fn is_known_login_address(&self, user_id: i64, client: &str) -> Result<bool, StoreError>;
}
