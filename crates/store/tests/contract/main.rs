//! The store contract: one suite, run against every backend, so that SQLite and
//! PostgreSQL are proven to behave identically.
//!
//! PostgreSQL tests use `PALISADE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each in a schema of its own that is
//! dropped afterwards. They fail when the database is unreachable unless
//! `PALISADE_SKIP_POSTGRES=1` is set.
//!
//! `harness.rs` runs each test against both backends; every other module is one area of
//! the contract and names its tests in one `contract!(…)` list, which generates
//! `<area>::<test>::sqlite` and `<area>::<test>::postgres`. A new area is a new module
//! here.

mod harness;

mod alerts;
mod analytics;
mod backends;
mod baselines;
mod batches;
mod bulk_load;
mod checkpoints;
mod dead_letters;
mod decisions;
mod devices;
mod events;
mod flows;
mod idempotency;
mod inspection;
mod jobs;
mod lifecycle;
mod logins;
mod maintenance;
mod posture;
mod reports;
mod security;
mod text_index;
mod threats;
mod vulns;
