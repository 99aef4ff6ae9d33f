//! How far the signature inspector has gone in each source's stored events, so that a
//! restart after a crash inspects what it had not reached (issue 16): events are stored
//! before they are inspected, and a source resumes after its stored events, so without
//! this the events stored but not yet inspected when the process died were never
//! inspected at all.
//!
//! The mark of a source is written after the threats of the events up to it are stored;
//! a crash in between leaves it behind, and the events past it that already have their
//! threat are found with [`InspectionStore::threatened_events`], so that inspecting them
//! again stores nothing twice.

use async_trait::async_trait;
use palisade_core::event::StoredEvent;

use crate::StoreError;

/// The inspection marks and what resuming from them reads. Every `Store` implements it.
#[async_trait]
pub trait InspectionStore: Send + Sync {
    /// The highest event id of `source` whose inspection is over and whose threats are
    /// stored; 0 for a source with no mark (one that had no events when the marks were
    /// introduced: its events are all to inspect).
    async fn inspected_through(&self, source: &str) -> Result<i64, StoreError>;
    /// Moves each source's mark to the given event id; a mark never moves back (marks
    /// from a stage that lags cannot undo a later one).
    async fn mark_inspected(&self, marks: &[(String, i64)]) -> Result<(), StoreError>;
    /// Up to `limit` stored events of `source` with ids above `after`, oldest first:
    /// the events to inspect again, read in bounded batches.
    async fn events_after(
        &self,
        source: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The ids, ascending and each once, of the events in `[from, through]` that a
    /// stored threat of `source` points at: their inspection is done and its threat
    /// stored. The inspector's threats carry their event's source; the scenarios' (which
    /// may point at an event the inspector has not reached) carry `scenario`.
    async fn threatened_events(
        &self,
        source: &str,
        from: i64,
        through: i64,
    ) -> Result<Vec<i64>, StoreError>;
}
