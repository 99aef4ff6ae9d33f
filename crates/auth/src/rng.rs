//! OS randomness, the only source used for anything secret.

use crate::AuthError;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), AuthError> {
    getrandom::getrandom(buf).map_err(|_| AuthError::Random)
}

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    fill(&mut b)?;
    Ok(b)
}
