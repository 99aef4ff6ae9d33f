//! Palisade's security primitives, kept apart from the HTTP layer and the store so that each
//! one can be reviewed and tested on its own:
//!
//! - [`password`]: argon2id hashing with OWASP parameters, strength rules, first-admin passwords.
//! - [`hash_pool`]: bounded concurrency and reused memory for password checks (login floods).
//! - [`jwt`]: strict HS256 access tokens (fixed header, signature checked before parsing).
//! - [`tokens`]: opaque random tokens, API keys and how they are stored (SHA-256).
//! - [`secrets`]: XChaCha20-Poly1305 sealing of stored secrets, with key rotation.
//! - [`ratelimit`]: bounded-memory token buckets.
//! - [`lockout`]: the login back-off schedules (per address and account-wide).
//!
//! Every error is an [`AuthError`]; none of its messages carries key, token or password bytes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod keyfile;
mod rng;

pub mod hash_pool;
pub mod jwt;
pub mod lockout;
pub mod password;
pub mod ratelimit;
pub mod secrets;
pub mod tokens;

pub use error::AuthError;
