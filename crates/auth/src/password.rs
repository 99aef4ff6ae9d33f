//! Password hashing and rules. Passwords are only ever stored as argon2id PHC strings.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{AuthError, rng};

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane. Memory-hard enough to make
/// GPU guessing expensive while keeping a login well under a tenth of a second here.
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Upper bounds accepted from a stored hash, so that a hash planted in the store cannot make
/// each login allocate gigabytes or spin for minutes.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;

/// Shortest accepted password, in characters (NIST 800-63B asks for at least 8; admins of a
/// security product get 12).
pub const MIN_LEN: usize = 12;
/// Longest accepted password, in characters: long enough for any passphrase, short enough
/// that nobody uses the login form to push megabytes through argon2.
pub const MAX_LEN: usize = 128;

fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// argon2id with OWASP parameters (m = 19456 KiB, t = 2, p = 1), PHC string out, with a fresh
/// 16-byte salt from the OS RNG. The PHC string carries its parameters, so they can be raised
/// later without breaking old hashes.
pub fn hash(password: &str) -> Result<String, AuthError> {
    let salt_bytes = rng::bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    let phc = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(phc.to_string())
}

/// Constant-time verification; false for a wrong password or a malformed hash. Only argon2id
/// hashes with sane parameters are accepted, so a downgraded or hostile stored hash fails
/// closed instead of being trusted or exhausting memory.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return false;
    }
    // `verify_password` recomputes with the hash's own parameters and compares the outputs in
    // constant time (password-hash's `Output` equality).
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the same time as [`verify`] against a real hash and returns false. Call it when the
/// user does not exist, so response time does not reveal which usernames are valid.
pub fn verify_dummy(password: &str) -> bool {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    match DUMMY.get_or_init(|| generate().ok().and_then(|p| hash(&p).ok())) {
        Some(phc) => {
            let _ = verify(password, phc);
        }
        None => {
            let _ = hash(password);
        }
    }
    false
}

/// Rules: 12..=128 chars, not all same char, not equal to username (case-insensitive);
/// Err(reason) says what to fix. Deliberately no composition rules (NIST 800-63B): length is
/// what makes a password strong, and forced symbols only produce predictable patterns.
pub fn check_strength(password: &str, username: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!(
            "password must be at least {MIN_LEN} characters long (it has {len})"
        ));
    }
    if len > MAX_LEN {
        return Err(format!(
            "password must be at most {MAX_LEN} characters long (it has {len})"
        ));
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err("password must not repeat a single character".to_string());
    }
    if !username.is_empty() && password.to_lowercase() == username.to_lowercase() {
        return Err("password must not be the username".to_string());
    }
    Ok(())
}

/// A random password for the first admin: 24 chars base64url from the OS RNG (18 bytes =
/// 144 bits), shown once at bootstrap and meant to be changed. Fails only when the
/// operating system's random number generator does.
pub fn generate() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(rng::bytes::<18>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verify_round_trip() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapler", &phc));
        assert!(!verify("", &phc));
        // Fresh salt each time.
        assert_ne!(phc, hash("correct horse battery staple").unwrap());
    }

    #[test]
    fn malformed_or_foreign_hashes_are_false() {
        for bad in [
            "",
            "$",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
            "$argon2id$v=19$m=19456,t=2,p=1$!!!$!!!",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ] {
            assert!(!verify("password", bad), "{bad:?}");
        }
        // argon2i of the same password is refused: only argon2id is trusted.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let a2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"password", &salt)
        .unwrap()
        .to_string();
        assert!(!verify("password", &a2i));
        // Absurd costs are refused without being computed.
        let huge = "$argon2id$v=19$m=4000000,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!verify("password", huge));
        assert!(!verify_dummy("password"));
    }

    #[test]
    fn strength_rules() {
        assert!(
            check_strength("short", "bob")
                .unwrap_err()
                .contains("at least 12")
        );
        assert!(
            check_strength(&"ab".repeat(65), "bob")
                .unwrap_err()
                .contains("at most 128")
        );
        assert!(
            check_strength("aaaaaaaaaaaaaa", "bob")
                .unwrap_err()
                .contains("single character")
        );
        assert!(
            check_strength("AdministratorX", "administratorx")
                .unwrap_err()
                .contains("username")
        );
        assert!(check_strength("ok-passphrase", "bob").is_ok());
        // Counted in characters, not bytes.
        assert!(check_strength("ééééééééééé", "bob").is_err());
        assert!(check_strength("éééééééééééx", "bob").is_ok());
        assert!(check_strength(&"x".repeat(127).replace("xx", "xy"), "").is_ok());
    }

    #[test]
    fn generated_passwords() {
        let p = generate().unwrap();
        assert_eq!(p.len(), 24);
        assert!(
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(p, generate().unwrap());
        assert!(check_strength(&p, "admin").is_ok());
    }
}
