//! Access tokens: HS256 JWTs, verified strictly. Only one header is accepted, byte for byte,
//! so there is no algorithm negotiation to confuse (`none`, RS256-with-HMAC-key, `kid`, `jku`).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use palisade_core::security::Role;
use palisade_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{AuthError, keyfile, rng, tokens};

type HmacSha256 = Hmac<Sha256>;

/// base64url of `{"alg":"HS256","typ":"JWT"}`: the only header this crate writes or accepts.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
/// No token of ours comes near this; anything longer is refused before any work.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Shortest and longest accepted HMAC key (RFC 7518 asks for at least the hash size).
const MIN_KEY: usize = 32;
const MAX_KEY: usize = 64;
/// Clock skew tolerated on `exp` and `nbf` unless changed with [`JwtKeys::with_leeway`].
pub const DEFAULT_LEEWAY_SECS: i64 = 30;

/// The claims of a Palisade access token. Times are seconds since the Unix epoch, as JWT
/// requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// The user's store id, so handlers need no lookup by name.
    pub uid: i64,
    /// The role at issue time (re-checked against the store where it matters).
    pub role: Role,
    /// Issued at.
    pub iat: i64,
    /// Issued at, in microseconds. Finer than `iat`, so that revoking "every token issued
    /// before now" (logout, password change) tells a token issued just before apart from
    /// one issued just after, in the same second. Absent from tokens of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_us: Option<i64>,
    /// Expires at.
    pub exp: i64,
    /// Not valid before.
    pub nbf: i64,
    /// Unique token id, for revocation lists and audit.
    pub jti: String,
    /// Issuer: which Palisade instance signed it.
    pub iss: String,
    /// Audience: what it is for.
    pub aud: String,
}

impl Claims {
    /// When the token was issued, in microseconds since the Unix epoch (`iat_us`, or `iat`
    /// for tokens without it).
    pub fn issued_at_micros(&self) -> i64 {
        self.iat_us
            .unwrap_or_else(|| self.iat.saturating_mul(1_000_000))
    }
}

/// HS256 signer/verifier with a 32..=64-byte key. Verification is strict: the header must be
/// exactly {"alg":"HS256","typ":"JWT"} (no other alg, no "none", no kid/jku/x5u games), the
/// signature is checked in constant time BEFORE the payload is parsed, then iss, aud, exp, nbf
/// (with `leeway_secs`, default 30) are checked.
#[derive(Clone)]
pub struct JwtKeys {
    /// HMAC state keyed once; cloned per token so the key is never re-processed or exposed.
    mac: HmacSha256,
    issuer: String,
    audience: String,
    leeway_secs: i64,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("key", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

fn now_secs() -> i64 {
    Timestamp::now().as_micros() / 1_000_000
}

impl JwtKeys {
    /// A signer/verifier for tokens from `issuer` to `audience`. The secret must be 32..=64
    /// bytes: shorter keys are brute-forceable offline from any token, longer ones are hashed
    /// down by HMAC anyway.
    pub fn new(secret: Vec<u8>, issuer: &str, audience: &str) -> Result<Self, AuthError> {
        if !(MIN_KEY..=MAX_KEY).contains(&secret.len()) {
            return Err(AuthError::InvalidKey(format!(
                "JWT signing key must be {MIN_KEY} to {MAX_KEY} bytes (got {})",
                secret.len()
            )));
        }
        let mac = HmacSha256::new_from_slice(&secret)
            .map_err(|_| AuthError::InvalidKey("HMAC refused the key".to_string()))?;
        Ok(JwtKeys {
            mac,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        })
    }

    /// Changes the clock skew tolerated on `exp` and `nbf` (negative values count as 0).
    pub fn with_leeway(mut self, leeway_secs: i64) -> Self {
        self.leeway_secs = leeway_secs.max(0);
        self
    }

    /// The clock skew tolerated on `exp` and `nbf`, in seconds.
    pub fn leeway_secs(&self) -> i64 {
        self.leeway_secs
    }

    /// Issues a token for a user, valid from now for `ttl_secs` (which must be positive),
    /// with a random `jti`. Returns the token and its claims (for audit or for the response).
    pub fn issue(
        &self,
        username: &str,
        uid: i64,
        role: Role,
        ttl_secs: i64,
    ) -> Result<(String, Claims), AuthError> {
        if ttl_secs <= 0 {
            return Err(AuthError::InvalidInput(format!(
                "token lifetime must be positive (got {ttl_secs} s)"
            )));
        }
        let now_us = Timestamp::now().as_micros();
        let now = now_us.div_euclid(1_000_000);
        let claims = Claims {
            sub: username.to_string(),
            uid,
            role,
            iat: now,
            iat_us: Some(now_us),
            exp: now.saturating_add(ttl_secs),
            nbf: now,
            jti: URL_SAFE_NO_PAD.encode(rng::bytes::<16>()?),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = self.sign(&claims)?;
        Ok((token, claims))
    }

    /// Signs arbitrary claims with the fixed header. Kept private: callers go through
    /// [`JwtKeys::issue`], which sets issuer, audience and times consistently.
    fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let payload = serde_json::to_vec(claims)
            .map_err(|e| AuthError::InvalidInput(format!("claims do not serialize: {e}")))?;
        let mut token = String::with_capacity(256);
        token.push_str(HEADER_B64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        let sig = mac.finalize().into_bytes();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut token);
        Ok(token)
    }

    /// Verifies a presented token now; see the type's documentation for the order of checks.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(token, now_secs())
    }

    fn verify_at(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TokenMalformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::TokenMalformed);
        };
        // The header is a constant: comparing it is not secret-dependent.
        if header != HEADER_B64 {
            return Err(AuthError::TokenMalformed);
        }
        // Strict base64url without padding; non-canonical trailing bits are refused, so a
        // signature has exactly one encoding.
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| AuthError::TokenMalformed)?;
        let signed_len = header.len() + 1 + payload.len();
        let signed = token
            .as_bytes()
            .get(..signed_len)
            .ok_or(AuthError::TokenMalformed)?;
        let mut mac = self.mac.clone();
        mac.update(signed);
        // `verify_slice` compares in constant time and refuses a wrong length.
        mac.verify_slice(&sig)
            .map_err(|_| AuthError::TokenSignature)?;

        // Only now, with the payload authenticated, is it decoded and parsed.
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| AuthError::TokenMalformed)?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| AuthError::TokenMalformed)?;
        if claims.iss != self.issuer {
            return Err(AuthError::TokenIssuer);
        }
        if claims.aud != self.audience {
            return Err(AuthError::TokenAudience);
        }
        if now > claims.exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::TokenExpired);
        }
        if now.saturating_add(self.leeway_secs) < claims.nbf {
            return Err(AuthError::TokenNotYetValid);
        }
        Ok(claims)
    }
}

/// Decodes key text: hex, or base64 (standard or url-safe, padded or not).
fn decode_key_text(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Some(bytes) = tokens::unhex(text) {
        return Some(bytes);
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// Loads the signing key from `path` (raw 32 bytes, hex or base64 text accepted), or creates it
/// with 64 random bytes (written as hex text) and mode 0600. An existing file that group or
/// others can read is refused, with the `chmod 600` that fixes it: anyone who reads this key
/// can mint admin tokens.
pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>, AuthError> {
    // Two rounds: if another process creates the file between our read and our create, the
    // second round reads its key instead of overwriting it.
    for _ in 0..2 {
        if let Some(content) = keyfile::read_private(path)? {
            return parse_key_file(path, &content);
        }
        let key = rng::bytes::<64>()?;
        let mut text = tokens::hex(&key);
        text.push('\n');
        if keyfile::create_private(path, text.as_bytes())? {
            return Ok(key.to_vec());
        }
    }
    Err(AuthError::KeyFile {
        path: path.to_path_buf(),
        reason: "the key file appeared and disappeared while being created".to_string(),
    })
}

fn parse_key_file(path: &Path, content: &[u8]) -> Result<Vec<u8>, AuthError> {
    let ok = |k: &Vec<u8>| (MIN_KEY..=MAX_KEY).contains(&k.len());
    // Exactly 32 bytes can only be a raw key: no hex or base64 text of 32 chars is long enough.
    if content.len() == MIN_KEY {
        return Ok(content.to_vec());
    }
    if let Some(key) = std::str::from_utf8(content).ok().and_then(decode_key_text) {
        if ok(&key) {
            return Ok(key);
        }
        return Err(AuthError::KeyFile {
            path: path.to_path_buf(),
            reason: format!(
                "the key decodes to {} bytes; {MIN_KEY} to {MAX_KEY} are needed",
                key.len()
            ),
        });
    }
    let raw = content.to_vec();
    if ok(&raw) {
        return Ok(raw);
    }
    Err(AuthError::KeyFile {
        path: path.to_path_buf(),
        reason: format!(
            "expected a raw {MIN_KEY}-byte key or {MIN_KEY} to {MAX_KEY} bytes as hex or base64 text"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> JwtKeys {
        JwtKeys::new(SECRET.to_vec(), "palisade", "palisade-api").unwrap()
    }

    fn claims(now: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            uid: 7,
            role: Role::Analyst,
            iat: now,
            iat_us: None,
            exp: now + 600,
            nbf: now,
            jti: "j1".into(),
            iss: "palisade".into(),
            aud: "palisade-api".into(),
        }
    }

    #[test]
    fn issue_time_in_microseconds() {
        let before = Timestamp::now().as_micros();
        let (token, issued) = keys().issue("alice", 7, Role::Viewer, 60).unwrap();
        let after = Timestamp::now().as_micros();
        let back = keys().verify(&token).unwrap();
        assert_eq!(back, issued);
        let us = back.issued_at_micros();
        assert!((before..=after).contains(&us), "{before} {us} {after}");
        assert_eq!(back.iat, us / 1_000_000);
        // Tokens without the claim (older versions) fall back to whole seconds.
        let old = claims(1_700_000_000);
        assert_eq!(old.issued_at_micros(), 1_700_000_000_000_000);
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("iat_us"), "{text}");
    }

    /// Builds a token with any header and payload text, signed with `SECRET`.
    fn forge(header_json: &str, payload_json: &str) -> String {
        let mut t = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header_json),
            URL_SAFE_NO_PAD.encode(payload_json)
        );
        let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
        mac.update(t.as_bytes());
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        t
    }

    #[test]
    fn header_constant_matches_json() {
        assert_eq!(
            URL_SAFE_NO_PAD.decode(HEADER_B64).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
    }

    #[test]
    fn round_trip() {
        let k = keys();
        let (token, c) = k.issue("alice", 7, Role::Admin, 900).unwrap();
        assert_eq!(token.split('.').count(), 3);
        let back = k.verify(&token).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.sub, "alice");
        assert_eq!(back.role, Role::Admin);
        assert_eq!(back.exp - back.iat, 900);
        assert_eq!(back.jti.len(), 22);
        let (t2, c2) = k.issue("alice", 7, Role::Admin, 900).unwrap();
        assert_ne!(t2, token);
        assert_ne!(c2.jti, c.jti);
        assert!(k.issue("alice", 7, Role::Admin, 0).is_err());
    }

    #[test]
    fn tampered_payload_rejected() {
        let k = keys();
        let (token, _) = k.issue("alice", 7, Role::Viewer, 900).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["role"] = "admin".into();
        let evil = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        assert!(matches!(k.verify(&evil), Err(AuthError::TokenSignature)));
    }

    #[test]
    fn tampered_signature_rejected() {
        let k = keys();
        let (token, _) = k.issue("alice", 7, Role::Viewer, 900).unwrap();
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[0] ^= 1;
        let evil = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&raw));
        assert!(matches!(k.verify(&evil), Err(AuthError::TokenSignature)));
        // Truncated, empty and non-canonical signatures.
        let short = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&raw[..31]));
        assert!(k.verify(&short).is_err());
        assert!(k.verify(&format!("{head}.")).is_err());
        // A token signed with another key.
        let other = JwtKeys::new(vec![9u8; 32], "palisade", "palisade-api").unwrap();
        let (t, _) = other.issue("alice", 7, Role::Viewer, 900).unwrap();
        assert!(matches!(k.verify(&t), Err(AuthError::TokenSignature)));
    }

    #[test]
    fn alg_none_and_other_algs_rejected() {
        let k = keys();
        let payload = serde_json::to_string(&claims(now_secs())).unwrap();
        // Sanity: the canonical header with a correct signature passes.
        assert!(
            k.verify(&forge(r#"{"alg":"HS256","typ":"JWT"}"#, &payload))
                .is_ok()
        );
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"typ":"JWT","alg":"HS256"}"#,
            r#"{"alg":"HS256","typ":"JWT","kid":"../../dev/null"}"#,
            r#"{"alg":"HS256","typ":"JWT","jku":"http://evil/jwks"}"#,
            r#"{"alg":"HS256", "typ":"JWT"}"#,
        ] {
            let t = forge(header, &payload);
            assert!(
                matches!(k.verify(&t), Err(AuthError::TokenMalformed)),
                "{header}"
            );
        }
        // Unsigned `none` token with an empty signature part.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        assert!(k.verify(&none).is_err());
    }

    #[test]
    fn time_claims() {
        let k = keys();
        let now = now_secs();
        let mut c = claims(now);
        c.exp = now - 31;
        let t = k.sign(&c).unwrap();
        assert!(matches!(k.verify(&t), Err(AuthError::TokenExpired)));
        // Within leeway still passes; with no leeway it does not.
        c.exp = now - 10;
        let t = k.sign(&c).unwrap();
        assert!(k.verify_at(&t, now).is_ok());
        assert!(matches!(
            k.clone().with_leeway(0).verify_at(&t, now),
            Err(AuthError::TokenExpired)
        ));

        let mut c = claims(now);
        c.nbf = now + 120;
        c.exp = now + 600;
        let t = k.sign(&c).unwrap();
        assert!(matches!(k.verify(&t), Err(AuthError::TokenNotYetValid)));
        assert!(k.verify_at(&t, now + 100).is_ok());
        assert!(matches!(
            k.verify_at(&t, now + 1000),
            Err(AuthError::TokenExpired)
        ));
    }

    #[test]
    fn wrong_issuer_or_audience_rejected() {
        let k = keys();
        let mut c = claims(now_secs());
        c.iss = "someone-else".into();
        assert!(matches!(
            k.verify(&k.sign(&c).unwrap()),
            Err(AuthError::TokenIssuer)
        ));
        let mut c = claims(now_secs());
        c.aud = "other-service".into();
        assert!(matches!(
            k.verify(&k.sign(&c).unwrap()),
            Err(AuthError::TokenAudience)
        ));
        // Same key, other audience configured.
        let other = JwtKeys::new(SECRET.to_vec(), "palisade", "ws").unwrap();
        let (t, _) = k.issue("alice", 1, Role::Viewer, 60).unwrap();
        assert!(matches!(other.verify(&t), Err(AuthError::TokenAudience)));
    }

    #[test]
    fn garbage_rejected_without_panic() {
        let k = keys();
        let (good, _) = k.issue("alice", 7, Role::Viewer, 900).unwrap();
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let inputs = [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "a.b.c.d",
            "é.é.é",
            "\0\0\0",
            &long,
            &format!("{good}."),
            &format!("{good}.x"),
            &format!(".{good}"),
            &good[..good.len() - 1],
            &format!("{HEADER_B64}.!!!.AAAA"),
        ];
        for t in inputs {
            let err = k.verify(t).unwrap_err();
            assert!(err.is_token_rejection(), "{t:?}: {err}");
        }
        // The payload is not even decoded until the signature holds: garbage under a bad
        // signature is a signature failure, not a parse failure.
        let bad_sig = format!("{HEADER_B64}.%%%not-base64%%%.AAAA");
        assert!(matches!(k.verify(&bad_sig), Err(AuthError::TokenSignature)));
        // A validly signed payload that is not our claims.
        for p in ["", "null", "[]", "{}", r#"{"sub":1}"#, "not json"] {
            assert!(matches!(
                k.verify(&forge(r#"{"alg":"HS256","typ":"JWT"}"#, p)),
                Err(AuthError::TokenMalformed)
            ));
        }
    }

    #[test]
    fn key_length_enforced_and_debug_redacted() {
        assert!(matches!(
            JwtKeys::new(vec![1u8; 31], "i", "a"),
            Err(AuthError::InvalidKey(_))
        ));
        assert!(JwtKeys::new(vec![], "i", "a").is_err());
        assert!(JwtKeys::new(vec![1u8; 65], "i", "a").is_err());
        assert!(JwtKeys::new(vec![1u8; 64], "i", "a").is_ok());
        let dbg = format!("{:?}", keys());
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains("0123456789abcdef"));
        assert!(!dbg.contains("48, 49"));
    }

    #[test]
    fn key_file_created_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/jwt.key");
        let key = load_or_create_key(&path).unwrap();
        assert_eq!(key.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(load_or_create_key(&path).unwrap(), key);
        assert!(JwtKeys::new(key, "i", "a").is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_formats_and_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, content: &[u8], mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let raw = [7u8; 32];
        assert_eq!(load_or_create_key(&write("raw", &raw, 0o600)).unwrap(), raw);
        let hex = format!("{}\n", tokens::hex(&[5u8; 48]));
        assert_eq!(
            load_or_create_key(&write("hex", hex.as_bytes(), 0o400)).unwrap(),
            vec![5u8; 48]
        );
        let b64 = STANDARD.encode([6u8; 32]);
        assert_eq!(
            load_or_create_key(&write("b64", b64.as_bytes(), 0o600)).unwrap(),
            vec![6u8; 32]
        );
        assert!(matches!(
            load_or_create_key(&write("short", b"abcd", 0o600)),
            Err(AuthError::KeyFile { .. })
        ));
        let err = load_or_create_key(&write("open", &raw, 0o644)).unwrap_err();
        assert!(matches!(
            err,
            AuthError::InsecurePermissions { mode: 0o644, .. }
        ));
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
