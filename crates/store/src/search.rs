//! `[search]`: how the events listing answers free text (`q`).

use palisade_core::config::{ConfigProblem, Validate};
use serde::Deserialize;

/// `[search]`: the optional free-text index behind `q` on `GET /api/v1/events`.
///
/// Off by default because it costs ingest (each stored event's searched text is
/// indexed as it is written; see docs/BENCHMARKS.md). With it, `q` over millions of
/// events answers in milliseconds; without it, `q` gives the same results by reading
/// every row the other filters leave. The store builds the index (from the events
/// already stored) or drops it when it starts and the setting changed, so switching
/// it on for a large store makes that start take a while.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Keep a trigram index of the searched text (SQLite FTS5, PostgreSQL `pg_trgm`;
    /// where `pg_trgm` cannot be installed, `q` stays unindexed and a warning is logged).
    pub text_index: bool,
}

impl Validate for SearchConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        Vec::new()
    }
}
