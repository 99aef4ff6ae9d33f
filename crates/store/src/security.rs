//! The security half of the store: users, refresh tokens, API keys, secrets, audit.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::security::{
    ApiKey, AuditEntry, NewApiKey, NewAudit, NewUser, RefreshToken, SecretRecord, User,
};

use crate::{Cursor, Page, StoreError};

/// Filters for the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// At or after.
    pub from: Option<Timestamp>,
    /// Before.
    pub to: Option<Timestamp>,
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
}

/// Storage for Palisade's own security. Every `Store` implements it, so the same
/// contract tests prove both backends.
#[async_trait]
pub trait SecurityStore: Send + Sync {
    /// Creates a user; `StoreError::Conflict` when the name is taken.
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;
    /// A user by login name.
    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// A user by id.
    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError>;
    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Saves role, password hash and disabled flag of `user.id` (and bumps
    /// `updated_at`); false when there is no such user. `tokens_valid_after` is left
    /// alone: only [`SecurityStore::revoke_access_tokens`] moves it.
    async fn update_user(&self, user: &User) -> Result<bool, StoreError>;
    /// Refuses the user's access tokens issued before `at` (sets `tokens_valid_after`,
    /// atomically and never backwards); false when there is no such user.
    async fn revoke_access_tokens(&self, user_id: i64, at: Timestamp) -> Result<bool, StoreError>;
    /// Deletes a user and its refresh tokens; false when there is no such user.
    async fn delete_user(&self, id: i64) -> Result<bool, StoreError>;
    /// Enabled admins (to refuse removing the last one).
    async fn count_active_admins(&self) -> Result<u64, StoreError>;

    /// Stores a new refresh token.
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;
    /// A refresh token by hash.
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError>;
    /// Marks a token used, atomically: true only for the one call that found it unused
    /// and unrevoked, so a token can be exchanged once even under a race.
    async fn use_refresh_token(&self, token_hash: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Revokes every token of a family; returns how many were still live.
    async fn revoke_refresh_family(&self, family: &str, at: Timestamp) -> Result<u64, StoreError>;
    /// Revokes every token of a user.
    async fn revoke_user_refresh_tokens(
        &self,
        user_id: i64,
        at: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Stores an API key; `StoreError::Conflict` when the prefix or name is taken.
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError>;
    /// A key by its public prefix.
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Every key, newest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key; false when there is no such live key.
    async fn revoke_api_key(&self, id: i64, at: Timestamp) -> Result<bool, StoreError>;
    /// Records a key's last use.
    async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<(), StoreError>;

    /// Inserts or replaces a secret.
    async fn put_secret(&self, secret: &SecretRecord) -> Result<(), StoreError>;
    /// One secret.
    async fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError>;
    /// Every secret, by name.
    async fn list_secrets(&self) -> Result<Vec<SecretRecord>, StoreError>;
    /// Deletes a secret; false when there was none.
    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError>;
    /// Replaces the given secrets in one transaction (key rotation: all or none).
    async fn put_secrets(&self, secrets: &[SecretRecord]) -> Result<(), StoreError>;

    /// Records an audit entry.
    async fn append_audit(&self, entry: NewAudit) -> Result<(), StoreError>;
    /// Audit entries, newest first.
    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError>;
}
