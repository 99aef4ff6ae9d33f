//! Encryption of stored secrets (third-party API keys and the like) with XChaCha20-Poly1305.
//! Its 24-byte nonces are safe to pick at random, so no nonce counter has to be kept in sync.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::{AuthError, keyfile, rng, tokens};

/// XChaCha20-Poly1305 nonce length.
pub const NONCE_LEN: usize = 24;

/// XChaCha20-Poly1305 with named keys. The active key encrypts; any known key decrypts
/// (so `rotate` can re-encrypt). Key ids are the first 8 hex digits of the SHA-256 of the key:
/// short, stable across restarts, and revealing nothing usable about the key.
#[derive(Clone)]
pub struct SecretBox {
    /// Active key first, then the older ones; ids are unique.
    keys: Vec<(String, XChaCha20Poly1305)>,
}

/// One sealed secret, as the store keeps it (see `SecretRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Which key sealed it.
    pub key_id: String,
    /// The random 24-byte nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with the 16-byte Poly1305 tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SecretBox")
            .field("active_key_id", &self.active_key_id())
            .field("key_ids", &ids)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// The stable id of a key.
pub fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::digest(key);
    tokens::hex(digest.get(..4).unwrap_or_default())
}

impl SecretBox {
    /// From 32-byte keys: `active` plus older ones still needed to decrypt. Duplicates are
    /// ignored.
    pub fn new(active: [u8; 32], older: Vec<[u8; 32]>) -> Self {
        let mut keys: Vec<(String, XChaCha20Poly1305)> = Vec::with_capacity(1 + older.len());
        for k in std::iter::once(active).chain(older) {
            let id = key_id(&k);
            if keys.iter().all(|(known, _)| *known != id) {
                keys.push((id, XChaCha20Poly1305::new(Key::from_slice(&k))));
            }
        }
        SecretBox { keys }
    }

    /// The id stored beside every new ciphertext; a record with another id is due for
    /// re-encryption.
    pub fn active_key_id(&self) -> &str {
        self.keys
            .first()
            .map(|(id, _)| id.as_str())
            .unwrap_or_default()
    }

    /// Ids of every key this box can decrypt with, active first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// Seals with the active key and a random nonce. Associated data = the secret's name, so a
    /// ciphertext cannot be moved to another name.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<Sealed, AuthError> {
        let (id, cipher) = self.keys.first().ok_or(AuthError::Encrypt)?;
        let nonce = rng::bytes::<NONCE_LEN>()?;
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Encrypt)?;
        Ok(Sealed {
            key_id: id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens what [`SecretBox::seal`] produced under the same `name`, with whichever known key
    /// `key_id` names. Fails on an unknown key, a wrong name, or any tampering.
    pub fn open(
        &self,
        name: &str,
        key_id: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, AuthError> {
        let cipher = self
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, c)| c)
            .ok_or_else(|| AuthError::UnknownKey(key_id.to_string()))?;
        if nonce.len() != NONCE_LEN {
            return Err(AuthError::Decrypt);
        }
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Decrypt)
    }

    /// [`SecretBox::open`] for a [`Sealed`] value.
    pub fn open_sealed(&self, name: &str, sealed: &Sealed) -> Result<Vec<u8>, AuthError> {
        self.open(name, &sealed.key_id, &sealed.nonce, &sealed.ciphertext)
    }
}

/// The key from `PALISADE_SECRETS_KEY`-style text (64 hex chars or base64 of 32 bytes).
/// Surrounding whitespace is ignored; the error never echoes the text.
pub fn parse_key(text: &str) -> Result<[u8; 32], AuthError> {
    let text = text.trim();
    let bytes = if text.len() == 64 {
        tokens::unhex(text)
    } else {
        None
    };
    let bytes = bytes.or_else(|| {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
    });
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            AuthError::InvalidKey(
                "a secrets key must be 64 hex characters or the base64 of 32 bytes".to_string(),
            )
        })
}

fn parse_keyring(path: &Path, content: &[u8]) -> Result<([u8; 32], Vec<[u8; 32]>), AuthError> {
    let bad = |reason: String| AuthError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(content)
        .map_err(|_| bad("a keyring is text: one hex key per line".to_string()))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_key(line).map_err(|_| {
            bad(format!(
                "line {}: expected a key of 64 hex characters",
                n + 1
            ))
        })?;
        keys.push(key);
    }
    let active = keys
        .pop()
        .ok_or_else(|| bad("the keyring has no key".to_string()))?;
    Ok((active, keys))
}

fn keyring_text(active: &[u8; 32], older: &[[u8; 32]]) -> String {
    let mut text = String::new();
    for k in older.iter().chain(std::iter::once(active)) {
        text.push_str(&tokens::hex(k));
        text.push('\n');
    }
    text
}

/// Loads `path` (a keyring file: one key per line, hex; the LAST line is active), or creates it
/// with one random key, mode 0600 (refuse a group/world-readable file with a message saying
/// `chmod 600 PATH`). Returns (active, older keys in file order).
pub fn load_or_create_keyring(path: &Path) -> Result<([u8; 32], Vec<[u8; 32]>), AuthError> {
    // Two rounds: if another process creates the file between our read and our create, the
    // second round reads its keyring instead of overwriting it.
    for _ in 0..2 {
        if let Some(content) = keyfile::read_private(path)? {
            return parse_keyring(path, &content);
        }
        let key = rng::bytes::<32>()?;
        if keyfile::create_private(path, keyring_text(&key, &[]).as_bytes())? {
            return Ok((key, Vec::new()));
        }
    }
    Err(AuthError::KeyFile {
        path: path.to_path_buf(),
        reason: "the keyring appeared and disappeared while being created".to_string(),
    })
}

/// Appends a new random key as the active one (0600 kept) and returns the new keyring. The
/// file is replaced atomically, so a crash never leaves a half-written keyring. Creates the
/// keyring when it does not exist.
pub fn add_key(path: &Path) -> Result<([u8; 32], Vec<[u8; 32]>), AuthError> {
    let (active, mut older) = load_or_create_keyring(path)?;
    older.push(active);
    let new = rng::bytes::<32>()?;
    keyfile::replace_private(path, keyring_text(&new, &older).as_bytes())?;
    Ok((new, older))
}

/// For listing: "••••" + last 2 chars when the value is 8+ chars long, else "••••", so an
/// operator can tell values apart without the listing revealing them.
pub fn mask(value: &str) -> String {
    const DOTS: &str = "••••";
    let count = value.chars().count();
    if count < 8 {
        return DOTS.to_string();
    }
    let tail: String = value.chars().skip(count - 2).collect();
    format!("{DOTS}{tail}")
}

/// True when the key is a well-known default/zero key — for posture checks. Flags all zeros,
/// any single repeated byte, counting sequences (0, 1, 2, …) and keys with fewer than 8
/// distinct bytes (repeated words such as "changeme" typed as a key); a random key has about
/// 30 distinct bytes and passes.
pub fn is_weak_key(key: &[u8; 32]) -> bool {
    let mut seen = [false; 256];
    for &b in key {
        if let Some(slot) = seen.get_mut(usize::from(b)) {
            *slot = true;
        }
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    let counting_up = key.windows(2).all(|w| match w {
        [a, b] => b.wrapping_sub(*a) == 1,
        _ => true,
    });
    let counting_down = key.windows(2).all(|w| match w {
        [a, b] => a.wrapping_sub(*b) == 1,
        _ => true,
    });
    distinct < 8 || counting_up || counting_down
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(b: u8) -> [u8; 32] {
        let mut key = [0u8; 32];
        for (i, x) in key.iter_mut().enumerate() {
            *x = b.wrapping_mul(31).wrapping_add(i as u8 * 7) ^ (i as u8).rotate_left(3);
        }
        key
    }

    #[test]
    fn seal_open_round_trip() {
        let sb = SecretBox::new(k(1), vec![]);
        let s = sb.seal("nvd_api_key", b"hunter2-but-longer").unwrap();
        assert_eq!(s.key_id, sb.active_key_id());
        assert_eq!(s.key_id.len(), 8);
        assert_eq!(s.nonce.len(), 24);
        assert_eq!(s.ciphertext.len(), 18 + 16);
        assert_eq!(
            sb.open_sealed("nvd_api_key", &s).unwrap(),
            b"hunter2-but-longer"
        );
        // Fresh nonce each time.
        let s2 = sb.seal("nvd_api_key", b"hunter2-but-longer").unwrap();
        assert_ne!(s.nonce, s2.nonce);
        assert_ne!(s.ciphertext, s2.ciphertext);
        // Empty plaintext works too.
        let e = sb.seal("x", b"").unwrap();
        assert_eq!(sb.open_sealed("x", &e).unwrap(), b"");
    }

    #[test]
    fn wrong_name_tamper_unknown_key_fail() {
        let sb = SecretBox::new(k(1), vec![]);
        let s = sb.seal("nvd_api_key", b"value").unwrap();
        assert!(matches!(
            sb.open_sealed("abuseipdb_key", &s),
            Err(AuthError::Decrypt)
        ));
        let mut t = s.clone();
        t.ciphertext[0] ^= 1;
        assert!(matches!(
            sb.open_sealed("nvd_api_key", &t),
            Err(AuthError::Decrypt)
        ));
        let mut t = s.clone();
        let last = t.ciphertext.len() - 1;
        t.ciphertext[last] ^= 0x80;
        assert!(matches!(
            sb.open_sealed("nvd_api_key", &t),
            Err(AuthError::Decrypt)
        ));
        let mut t = s.clone();
        t.nonce[5] ^= 1;
        assert!(matches!(
            sb.open_sealed("nvd_api_key", &t),
            Err(AuthError::Decrypt)
        ));
        let mut t = s.clone();
        t.nonce.pop();
        assert!(matches!(
            sb.open_sealed("nvd_api_key", &t),
            Err(AuthError::Decrypt)
        ));
        assert!(matches!(
            sb.open("nvd_api_key", &s.key_id, &s.nonce, &[]),
            Err(AuthError::Decrypt)
        ));
        let mut t = s.clone();
        t.key_id = "deadbeef".into();
        assert!(matches!(
            sb.open_sealed("nvd_api_key", &t),
            Err(AuthError::UnknownKey(_))
        ));
        // Another box without this key cannot open it.
        let other = SecretBox::new(k(2), vec![]);
        assert!(matches!(
            other.open_sealed("nvd_api_key", &s),
            Err(AuthError::UnknownKey(_))
        ));
    }

    #[test]
    fn rotation() {
        let old = SecretBox::new(k(1), vec![]);
        let sealed = old.seal("smtp_password", b"p@ss").unwrap();
        let new = SecretBox::new(k(2), vec![k(1)]);
        assert_ne!(new.active_key_id(), old.active_key_id());
        assert_eq!(
            new.key_ids().collect::<Vec<_>>(),
            [new.active_key_id(), old.active_key_id()]
        );
        let plain = new.open_sealed("smtp_password", &sealed).unwrap();
        let resealed = new.seal("smtp_password", &plain).unwrap();
        assert_eq!(resealed.key_id, new.active_key_id());
        // Once the old key is dropped, only the re-sealed value opens.
        let newest = SecretBox::new(k(2), vec![]);
        assert!(newest.open_sealed("smtp_password", &sealed).is_err());
        assert_eq!(
            newest.open_sealed("smtp_password", &resealed).unwrap(),
            b"p@ss"
        );
        // Duplicated keys collapse.
        assert_eq!(SecretBox::new(k(3), vec![k(3), k(3)]).key_ids().count(), 1);
    }

    #[test]
    fn debug_is_redacted() {
        let key = [0xabu8; 32];
        let dbg = format!("{:?}", SecretBox::new(key, vec![]));
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains("171"));
        assert!(!dbg.to_lowercase().contains("abab"));
    }

    #[test]
    fn parse_key_formats() {
        let key = k(9);
        assert_eq!(parse_key(&tokens::hex(&key)).unwrap(), key);
        assert_eq!(
            parse_key(&format!("  {}\n", tokens::hex(&key).to_uppercase())).unwrap(),
            key
        );
        assert_eq!(parse_key(&STANDARD.encode(key)).unwrap(), key);
        assert_eq!(parse_key(&URL_SAFE_NO_PAD.encode(key)).unwrap(), key);
        for bad in [
            "",
            "abc",
            &tokens::hex(&key[..31]),
            &STANDARD.encode([1u8; 31]),
            "ü",
        ] {
            let err = parse_key(bad).unwrap_err();
            assert!(matches!(err, AuthError::InvalidKey(_)));
        }
        let secret_text = "z".repeat(64);
        let msg = parse_key(&secret_text).unwrap_err().to_string();
        assert!(!msg.contains(&secret_text));
    }

    #[cfg(unix)]
    #[test]
    fn keyring_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.keyring");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

        let (a1, older) = load_or_create_keyring(&path).unwrap();
        assert!(older.is_empty());
        assert_eq!(mode(&path), 0o600);
        assert!(!is_weak_key(&a1));
        assert_eq!(load_or_create_keyring(&path).unwrap(), (a1, vec![]));

        let (a2, older) = add_key(&path).unwrap();
        assert_ne!(a2, a1);
        assert_eq!(older, vec![a1]);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_or_create_keyring(&path).unwrap(), (a2, vec![a1]));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().last().unwrap(), tokens::hex(&a2));
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_keyring(&path).unwrap_err();
        assert!(matches!(err, AuthError::InsecurePermissions { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        assert!(add_key(&path).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(load_or_create_keyring(&path).is_err());

        let bad = dir.path().join("bad.keyring");
        std::fs::write(&bad, "# comment\n\nnot-a-key\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let msg = load_or_create_keyring(&bad).unwrap_err().to_string();
        assert!(msg.contains("line 3"), "{msg}");
        std::fs::write(&bad, "# only a comment\n").unwrap();
        assert!(load_or_create_keyring(&bad).is_err());
        std::fs::write(
            &bad,
            format!("# keys\n{}\n\n{}", tokens::hex(&a1), tokens::hex(&a2)),
        )
        .unwrap();
        assert_eq!(load_or_create_keyring(&bad).unwrap(), (a2, vec![a1]));
    }

    #[test]
    fn masking() {
        assert_eq!(mask(""), "••••");
        assert_eq!(mask("1234567"), "••••");
        assert_eq!(mask("12345678"), "••••78");
        assert_eq!(mask("sk-live-abcdefXY"), "••••XY");
        assert_eq!(mask("ééééééé"), "••••");
        assert_eq!(mask("éééééééüß"), "••••üß");
    }

    #[test]
    fn weak_keys() {
        assert!(is_weak_key(&[0u8; 32]));
        assert!(is_weak_key(&[0xffu8; 32]));
        assert!(is_weak_key(&[b'a'; 32]));
        let mut seq = [0u8; 32];
        for (i, b) in seq.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert!(is_weak_key(&seq));
        seq.reverse();
        assert!(is_weak_key(&seq));
        let mut word = [0u8; 32];
        word.copy_from_slice(&b"changeme".repeat(4));
        assert!(is_weak_key(&word));
        assert!(!is_weak_key(&k(1)));
        for _ in 0..100 {
            assert!(!is_weak_key(&crate::rng::bytes::<32>().unwrap()));
        }
    }
}
