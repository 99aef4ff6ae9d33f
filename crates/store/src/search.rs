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
    /// PostgreSQL, with `text_index` on: also keep a second trigram index whose keys
    /// carry the path's first three characters, so that a path prefix matching
    /// millions of events plus a word answers from about the matching rows (at 10M
    /// events `/tienda1` + `windows`: 25–50 ms instead of 395–590 ms). Off by default
    /// because it costs ingest: its build at the end of a 1M-line import roughly
    /// tripled the import's wall time (docs/BENCHMARKS.md, pgq3). SQLite needs no
    /// second index (its rowids already hold the path's bucket) and ignores it.
    pub prefix_text_index: bool,
}

impl Validate for SearchConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        Vec::new()
    }
}
