//! The translation between the security domain types and column values, shared by both
//! backends so that they store (and give back) exactly the same thing.
//!
//! Roles and scopes are stored by their stable `as_str()` names; a name this build does
//! not know (a newer version wrote it, or the row was edited by hand) is
//! [`StoreError::Corrupt`], never a silent downgrade to some default role.

use palisade_core::Timestamp;
use palisade_core::security::{ApiKey, Role, Scope, User};

use crate::StoreError;

/// The `users` columns in the order every user query selects them.
pub(crate) const USER_SELECT_COLUMNS: &str = "id, username, role, password_hash, disabled, \
     tokens_valid_after, created_at, updated_at";

/// The `refresh_tokens` columns in the order every token query selects them.
pub(crate) const REFRESH_SELECT_COLUMNS: &str =
    "token_hash, family, user_id, issued_at, expires_at, used_at, revoked_at";

/// The `api_keys` columns in the order every key query selects them.
pub(crate) const API_KEY_SELECT_COLUMNS: &str = "id, name, prefix, key_hash, scopes, created_by, \
     created_at, last_used_at, revoked_at";

/// The `secrets` columns in the order every secret query selects them.
pub(crate) const SECRET_SELECT_COLUMNS: &str =
    "name, key_id, nonce, ciphertext, updated_at, updated_by";

/// The `audit_log` columns in the order every audit query selects them.
pub(crate) const AUDIT_SELECT_COLUMNS: &str =
    "id, ts, actor, action, target, outcome, client_ip, detail";

/// Reads a stored role name back.
pub(crate) fn parse_role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown role '{s}'")))
}

/// The stored form of a scope list: comma-separated stable names.
pub(crate) fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a stored scope list back; the empty string is the empty list.
pub(crate) fn parse_scopes(s: &str) -> Result<Vec<Scope>, StoreError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|name| {
            Scope::parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown scope '{name}'")))
        })
        .collect()
}

/// One `users` row as read back.
pub(crate) struct UserColumns {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub password_hash: String,
    pub disabled: bool,
    pub tokens_valid_after: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserColumns {
    /// Validates the row and builds the domain value.
    pub fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: self.id,
            role: parse_role(&self.role)?,
            username: self.username,
            password_hash: self.password_hash,
            disabled: self.disabled,
            tokens_valid_after: self.tokens_valid_after.map(Timestamp),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

/// One `api_keys` row as read back.
pub(crate) struct ApiKeyColumns {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub scopes: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKeyColumns {
    /// Validates the row and builds the domain value.
    pub fn into_api_key(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: self.id,
            scopes: parse_scopes(&self.scopes)?,
            name: self.name,
            prefix: self.prefix,
            key_hash: self.key_hash,
            created_by: self.created_by,
            created_at: Timestamp(self.created_at),
            last_used_at: self.last_used_at.map(Timestamp),
            revoked_at: self.revoked_at.map(Timestamp),
        })
    }
}

/// Turns a unique-constraint violation into a [`StoreError::Conflict`] naming what was
/// taken: `detail` is the database's message or constraint name, which mentions the
/// column (`api_keys.prefix`, `api_keys_prefix_key`).
pub(crate) fn api_key_conflict(detail: &str, name: &str, prefix: &str) -> StoreError {
    if detail.contains("prefix") {
        StoreError::Conflict(format!("api key prefix '{prefix}'"))
    } else {
        StoreError::Conflict(format!("api key name '{name}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_names_are_corrupt() {
        let all = vec![Scope::Ingest, Scope::Check, Scope::Read, Scope::Bouncer];
        assert_eq!(scopes_to_text(&all), "ingest,check,read,bouncer");
        assert_eq!(parse_scopes(&scopes_to_text(&all)).unwrap(), all);
        assert_eq!(parse_scopes("").unwrap(), Vec::<Scope>::new());
        assert!(matches!(
            parse_scopes("ingest,root"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(parse_role("root"), Err(StoreError::Corrupt(_))));
    }
}
