//! Opaque tokens and API keys. The server stores only their SHA-256: a leaked table does not
//! authenticate anyone, and the tokens carry 256 bits so a fast hash is enough (no argon2).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{AuthError, rng};

/// The fixed start of every API key, so scanners (and people) recognise a leaked one.
pub const API_KEY_PREFIX: &str = "pal_";
/// Length of the public lookup prefix.
pub const PREFIX_LEN: usize = 8;
/// Length of the base64url text of 32 bytes without padding.
const SECRET_LEN: usize = 43;

/// A random opaque token (refresh tokens, WebSocket tickets): 32 random bytes base64url,
/// unguessable and safe in URLs and headers. Fails only when the operating system's
/// random number generator does (then no secret could be trusted).
pub fn random_token() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(rng::bytes::<32>()?))
}

/// Hex SHA-256, how tokens and API keys are stored: lookup by equality in the store, nothing
/// usable if the store leaks.
pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes hex (either case); None on odd length or a non-hex character.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// Constant-time equality of two strings (subtle), for comparing presented secrets without
/// leaking through timing how many leading bytes matched. Lengths are not hidden.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A new API key: returns (full_key, prefix). Format `pal_<prefix>_<secret>` where prefix is
/// 8 lowercase alphanumerics (random) and secret is 32 random bytes base64url. The prefix is
/// stored in clear for lookup; the full key is shown once and stored as [`sha256_hex`].
/// Fails only when the operating system's random number generator does.
pub fn new_api_key() -> Result<(String, String), AuthError> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut prefix = String::with_capacity(PREFIX_LEN);
    while prefix.len() < PREFIX_LEN {
        for b in rng::bytes::<16>()? {
            // Rejection sampling: 252 = 7 * 36, so every character is equally likely.
            if b < 252
                && prefix.len() < PREFIX_LEN
                && let Some(&c) = ALPHABET.get(usize::from(b % 36))
            {
                prefix.push(char::from(c));
            }
        }
    }
    let key = format!("{API_KEY_PREFIX}{prefix}_{}", random_token()?);
    Ok((key, prefix))
}

/// Splits a presented key into its prefix, or None when it is not in that format (so
/// malformed keys are refused before touching the store).
pub fn api_key_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let prefix = rest.get(..PREFIX_LEN)?;
    let secret = rest.get(PREFIX_LEN..)?.strip_prefix('_')?;
    let prefix_ok = prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (prefix_ok && secret_ok).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens() {
        let t = random_token().unwrap();
        assert_eq!(t.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_ne!(t, random_token().unwrap());
    }

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap(),
            vec![0, 1, 0xab, 0xff]
        );
        assert_eq!(unhex("ABcd").unwrap(), vec![0xab, 0xcd]);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
        assert!(unhex("éé").is_none());
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq("secret", "secret"));
        assert!(!ct_eq("secret", "secreT"));
        assert!(!ct_eq("secret", "secret2"));
        assert!(ct_eq("", ""));
    }

    #[test]
    fn api_key_format_and_prefix() {
        for _ in 0..50 {
            let (key, prefix) = new_api_key().unwrap();
            assert_eq!(prefix.len(), 8);
            assert!(
                prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            );
            assert!(key.starts_with(&format!("pal_{prefix}_")));
            assert_eq!(key.len(), 4 + 8 + 1 + 43);
            assert_eq!(api_key_prefix(&key), Some(prefix.as_str()));
        }
        let (a, pa) = new_api_key().unwrap();
        let (b, pb) = new_api_key().unwrap();
        assert_ne!(a, b);
        assert_ne!(pa, pb);

        let secret = "A".repeat(43);
        assert_eq!(
            api_key_prefix(&format!("pal_abcd1234_{secret}")),
            Some("abcd1234")
        );
        for bad in [
            String::new(),
            "pal_".to_string(),
            "pal_abcd1234".to_string(),
            "pal_abcd1234_".to_string(),
            format!("pal_ABCD1234_{secret}"),
            format!("pal_abcd123_{secret}"),
            format!("pal_abcd1234-{secret}"),
            format!("pal_abcd1234_{secret}x"),
            format!("pal_abcd1234_{}", &secret[1..]),
            format!("pal_abcd1234_{}+", &secret[1..]),
            format!("key_abcd1234_{secret}"),
            format!("pal_abcdé234_{secret}"),
            "pal_éééééééé".to_string(),
        ] {
            assert_eq!(api_key_prefix(&bad), None, "{bad:?}");
        }
    }
}
