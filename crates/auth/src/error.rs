//! The one error type of this crate.

use std::path::PathBuf;

/// Why an authentication or cryptographic operation failed. Messages are safe to log and
/// to show an operator: they never contain a password, token, key or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The operating system's random number generator failed; nothing secret can be made.
    #[error("the operating system's random number generator failed")]
    Random,
    /// Password hashing failed (argon2 refused its parameters or input).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A key has the wrong length or encoding; the message says what was expected.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// An argument was out of range; the message says which and why.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A token is not a well-formed HS256 JWT of ours (shape, header, encoding or claims).
    #[error("malformed token")]
    TokenMalformed,
    /// A token's signature does not match: forged, tampered or signed with another key.
    #[error("invalid token signature")]
    TokenSignature,
    /// A token's `exp` (plus leeway) has passed.
    #[error("token expired")]
    TokenExpired,
    /// A token's `nbf` (minus leeway) is still in the future.
    #[error("token not yet valid")]
    TokenNotYetValid,
    /// A token was issued by someone else (`iss` mismatch).
    #[error("token issuer mismatch")]
    TokenIssuer,
    /// A token is meant for someone else (`aud` mismatch).
    #[error("token audience mismatch")]
    TokenAudience,
    /// A sealed secret names a key this process does not have (it was removed from the keyring).
    #[error("unknown encryption key id {0:?}")]
    UnknownKey(String),
    /// Encryption failed.
    #[error("encryption failed")]
    Encrypt,
    /// Decryption failed: wrong key, wrong secret name, or tampered nonce/ciphertext.
    #[error("decryption failed (wrong key, wrong name or tampered data)")]
    Decrypt,
    /// A key file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A key file can be read by other users; it is refused rather than trusted.
    #[error(
        "{path} is readable by group or others (mode {mode:04o}); restrict it with `chmod 600 {path}`",
        path = path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file's content is not a key; the message says what was expected.
    #[error("{}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl AuthError {
    /// True for every reason a presented token is refused, so callers can answer 401 uniformly
    /// without matching each variant.
    pub fn is_token_rejection(&self) -> bool {
        matches!(
            self,
            AuthError::TokenMalformed
                | AuthError::TokenSignature
                | AuthError::TokenExpired
                | AuthError::TokenNotYetValid
                | AuthError::TokenIssuer
                | AuthError::TokenAudience
        )
    }
}
