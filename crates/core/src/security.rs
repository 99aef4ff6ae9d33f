//! Who may do what: users, roles, API keys, refresh tokens, encrypted secrets and the
//! audit trail. Only data here; hashing, tokens and encryption live in `palisade-auth`.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A user's role. Ordered: each role can do everything the one before it can.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything except security settings.
    Viewer,
    /// Also changes alert and threat state and runs jobs.
    Analyst,
    /// Also manages users, keys, secrets and settings.
    Admin,
}

impl Role {
    /// The stable name used in the store, tokens and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "analyst" => Role::Analyst,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// What an API key may be used for. Keys never carry a user role: a sensor pushing logs
/// or a proxy asking for decisions needs exactly one capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Push events (`POST /api/v1/ingest`).
    Ingest,
    /// Ask for decisions (`/api/v1/check`).
    Check,
    /// Read what a viewer can read.
    Read,
    /// Pull IP decisions as a CrowdSec bouncer (`/v1/decisions/stream`).
    Bouncer,
}

impl Scope {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Check => "check",
            Scope::Read => "read",
            Scope::Bouncer => "bouncer",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "ingest" => Scope::Ingest,
            "check" => Scope::Check,
            "read" => Scope::Read,
            "bouncer" => Scope::Bouncer,
            _ => return None,
        })
    }
}

/// A stored user. The password is only ever held as an argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Store id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A disabled user cannot log in and its tokens stop working.
    pub disabled: bool,
    /// Access tokens issued before this are refused (set by logout, a refresh-token
    /// replay, a password change, disabling): a short-lived token dies with its session
    /// instead of living out its lifetime. Failed logins are counted per address in
    /// [`LoginFailures`], not here.
    pub tokens_valid_after: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A run of failed password checks for one submitted username, from one client address
/// or from all of them together (the store counts them atomically; the lockout policy
/// in `palisade-auth` turns them into a lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures in the run, including the last one recorded.
    pub failures: u32,
    /// When the last failure was recorded.
    pub last_failure_at: Timestamp,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Unique login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// A stored API key: only its SHA-256 is kept; `prefix` finds it without revealing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Store id.
    pub id: i64,
    /// Human name (which sensor or proxy uses it).
    pub name: String,
    /// The key's public prefix, unique, used to look it up.
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last successful use.
    pub last_used_at: Option<Timestamp>,
    /// Revoked keys stay listed but never authenticate.
    pub revoked_at: Option<Timestamp>,
}

/// An API key to create.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Human name.
    pub name: String,
    /// Public prefix.
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Who created it.
    pub created_by: Option<String>,
}

/// A refresh token, stored by hash. Tokens rotate: each use issues a new one in the same
/// family, and a second use of a spent token revokes the whole family (theft detection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// The login this token descends from.
    pub family: String,
    /// Owner.
    pub user_id: i64,
    /// Issued.
    pub issued_at: Timestamp,
    /// Expires.
    pub expires_at: Timestamp,
    /// When it was exchanged for a new one.
    pub used_at: Option<Timestamp>,
    /// When it (or its family) was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// A secret as stored: encrypted, with the id of the key that encrypted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Unique name, e.g. `nvd_api_key`.
    pub name: String,
    /// Which encryption key was used (for rotation).
    pub key_id: String,
    /// AEAD nonce.
    pub nonce: Vec<u8>,
    /// AEAD ciphertext with tag.
    pub ciphertext: Vec<u8>,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Who changed it.
    pub updated_by: Option<String>,
}

/// One security-relevant action, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Store id.
    pub id: i64,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    /// Who (a username, `apikey:<name>`, or `cli`), when known.
    pub actor: Option<String>,
    /// What, e.g. `login`, `user.create`, `apikey.revoke`, `secret.set`.
    pub action: String,
    /// On what (a username, key name, secret name).
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// From where.
    pub client_ip: Option<String>,
    /// Anything else worth knowing (never a secret value).
    pub detail: Option<String>,
}

/// An audit entry to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// Who.
    pub actor: Option<String>,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// From where.
    pub client_ip: Option<String>,
    /// Anything else worth knowing.
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Viewer < Role::Analyst && Role::Analyst < Role::Admin);
        for r in [Role::Viewer, Role::Analyst, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for s in [Scope::Ingest, Scope::Check, Scope::Read, Scope::Bouncer] {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
