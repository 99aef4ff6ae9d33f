//! Password hashing and rules. Passwords are only ever stored as argon2id PHC strings.

use std::sync::OnceLock;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

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

/// The parameters new hashes are made with.
fn default_params() -> Result<Params, AuthError> {
    Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| AuthError::Hash(e.to_string()))
}

/// Working memory for argon2 (about 19 MiB with our parameters), kept by its owner and
/// reused from one hash to the next instead of being allocated for each.
///
/// Allocating a fresh 19 MiB block per password check on whatever thread runs it is
/// what made logins grow the process: freed blocks stay cached in each thread's malloc
/// arena. A bounded set of these, handed to the hashing jobs one at a time (see
/// [`crate::hash_pool`]), keeps the memory of password checks at (hashers × 19 MiB)
/// whatever the login rate. A block larger than our own parameters need (a stored hash
/// with a bigger memory cost) is given back after use.
#[derive(Default)]
pub struct HashMemory {
    blocks: Vec<Block>,
}

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashMemory")
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

impl HashMemory {
    /// Empty: the first hash allocates the block, later ones reuse it.
    pub fn new() -> Self {
        HashMemory::default()
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.blocks.len() * Block::SIZE
    }

    /// At least `count` blocks. Argon2 writes every block before it reads it, so
    /// what a previous hash left there is never used.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }

    /// Gives back memory beyond what our own parameters need.
    fn trim(&mut self) {
        let usual = M_COST_KIB as usize;
        if self.blocks.len() > usual {
            self.blocks.truncate(usual);
            self.blocks.shrink_to_fit();
        }
    }
}

/// argon2id with OWASP parameters (m = 19456 KiB, t = 2, p = 1), PHC string out, with a fresh
/// 16-byte salt from the OS RNG. The PHC string carries its parameters, so they can be raised
/// later without breaking old hashes. Allocates its working memory; see [`hash_with`].
pub fn hash(password: &str) -> Result<String, AuthError> {
    hash_with(password, &mut HashMemory::new())
}

/// [`hash`] in the given working memory.
pub fn hash_with(password: &str, memory: &mut HashMemory) -> Result<String, AuthError> {
    let salt_bytes = rng::bytes::<16>()?;
    let params = default_params()?;
    let hash_err = |e: &dyn std::fmt::Display| AuthError::Hash(e.to_string());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let blocks = memory.blocks(params.block_count());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt_bytes, &mut out, blocks)
        .map_err(|e| hash_err(&e))?;
    memory.trim();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| hash_err(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| hash_err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| hash_err(&e))?),
    };
    Ok(phc.to_string())
}

/// Constant-time verification; false for a wrong password or a malformed hash. Only argon2id
/// hashes with sane parameters are accepted, so a downgraded or hostile stored hash fails
/// closed instead of being trusted or exhausting memory. Allocates its working memory; see
/// [`verify_with`].
pub fn verify(password: &str, phc: &str) -> bool {
    verify_with(password, phc, &mut HashMemory::new())
}

/// [`verify`] in the given working memory: recomputes the hash with the stored hash's own
/// algorithm version, parameters, salt and output length, and compares in constant time.
pub fn verify_with(password: &str, phc: &str, memory: &mut HashMemory) -> bool {
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
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out_buf = [0u8; Output::MAX_LENGTH];
    let Some(out) = out_buf.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = memory.blocks(params.block_count());
    let computed = Argon2::new(Algorithm::Argon2id, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
        .is_ok();
    memory.trim();
    computed && bool::from(expected.as_bytes().ct_eq(out))
}

/// A hash of a password nobody has, made once per process.
fn dummy_phc(memory: &mut HashMemory) -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| generate().ok().and_then(|p| hash_with(&p, memory).ok()))
        .as_deref()
}

/// Spends the same time as [`verify`] against a real hash and returns false. Call it when the
/// user does not exist, so response time does not reveal which usernames are valid.
pub fn verify_dummy(password: &str) -> bool {
    verify_dummy_with(password, &mut HashMemory::new())
}

/// [`verify_dummy`] in the given working memory.
pub fn verify_dummy_with(password: &str, memory: &mut HashMemory) -> bool {
    match dummy_phc(memory) {
        Some(phc) => {
            let _ = verify_with(password, phc, memory);
        }
        None => {
            let _ = hash_with(password, memory);
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
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    /// A hash made by the argon2 crate's own hasher, with any parameters.
    fn reference_hash(password: &str, m: u32, t: u32, out_len: usize) -> String {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(m, t, 1, Some(out_len)).unwrap(),
        )
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
    }

    #[test]
    fn reused_memory_gives_the_reference_results() {
        let mut memory = HashMemory::new();
        // Hashes made in reused (dirty) memory verify with the argon2 crate's own verifier.
        for pw in ["first passphrase!", "second passphrase", ""] {
            let phc = hash_with(pw, &mut memory).unwrap();
            let parsed = PasswordHash::new(&phc).unwrap();
            assert!(
                Argon2::default()
                    .verify_password(pw.as_bytes(), &parsed)
                    .is_ok()
            );
            assert!(verify_with(pw, &phc, &mut memory));
            assert!(!verify_with("other", &phc, &mut memory));
        }
        assert_eq!(memory.bytes(), M_COST_KIB as usize * 1024);
        // Hashes made by the reference implementation, other parameters and lengths.
        for (m, t, len) in [(1024, 1, 16), (4096, 3, 64), (8, 1, 32)] {
            let phc = reference_hash("pa55word", m, t, len);
            assert!(verify_with("pa55word", &phc, &mut memory), "{phc}");
            assert!(!verify_with("pa55worD", &phc, &mut memory), "{phc}");
        }
        // A bigger stored cost is honoured, and the extra memory is given back.
        let big = reference_hash("pa55word", M_COST_KIB * 2, 1, 32);
        assert!(verify_with("pa55word", &big, &mut memory));
        assert_eq!(memory.bytes(), M_COST_KIB as usize * 1024);
    }

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
