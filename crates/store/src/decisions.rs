//! The enforcement half of the store: IP decisions (bans and allow-list entries).
//!
//! Decisions are soft-deleted (`deleted_at`), never erased, so that the CrowdSec
//! bouncer stream can tell a bouncer what was removed since its last pull. At most one
//! decision of each kind is in force per value (a partial unique index): writing a ban
//! for a banned address extends the ban in force instead of adding a duplicate.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::decision::{
    Decision, DecisionKind, DecisionOrigin, DecisionScope, NewDecision, PutOutcome,
};
use palisade_core::net::IpNet;

use crate::{Cursor, Page, StoreError};

/// Filters for listing decisions; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct DecisionQuery {
    /// ban or allow.
    pub kind: Option<DecisionKind>,
    /// ip or range.
    pub scope: Option<DecisionScope>,
    /// Decisions whose network shares an address with this one (for one address: the
    /// decision on it and every range containing it).
    pub overlaps: Option<IpNet>,
    /// manual, scenario or waf.
    pub origin: Option<DecisionOrigin>,
    /// Exact scenario (or reason).
    pub scenario: Option<String>,
    /// `Some(true)`: only decisions in force at `now`; `Some(false)`: only those no
    /// longer in force (deleted or expired); `None`: both.
    pub active: Option<bool>,
    /// The time `active` is judged at.
    pub now: Timestamp,
    /// Continue after this position (`ts` is `created_at`).
    pub cursor: Option<Cursor>,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
}

/// Storage for IP decisions. Every `Store` implements it.
#[async_trait]
pub trait DecisionStore: Send + Sync {
    /// Writes a decision, in one transaction: when one of the same kind and value is in
    /// force it is extended (if the new one lasts longer) instead of duplicated. A
    /// decision of that kind and value that expired but was not yet marked is marked
    /// first. `StoreError::Conflict` when another writer won a race (retry).
    async fn put_decision(
        &self,
        decision: &NewDecision,
        now: Timestamp,
    ) -> Result<(Decision, PutOutcome), StoreError>;

    /// Decisions matching a query, newest first.
    async fn query_decisions(&self, query: &DecisionQuery) -> Result<Page<Decision>, StoreError>;

    /// One decision, in force or not.
    async fn get_decision(&self, id: i64) -> Result<Option<Decision>, StoreError>;

    /// Soft-deletes a decision in force at `at`; `None` when there is none with that id.
    async fn delete_decision(
        &self,
        id: i64,
        at: Timestamp,
        by: &str,
    ) -> Result<Option<Decision>, StoreError>;

    /// Every decision in force at `now` (of one kind, or both), by id.
    async fn active_decisions(
        &self,
        now: Timestamp,
        kind: Option<DecisionKind>,
    ) -> Result<Vec<Decision>, StoreError>;

    /// Decisions that changed after `since` (created, extended or deleted:
    /// `updated_at > since`) or expired in `(since, now]`, with an id above `after_id`,
    /// by id, at most `limit`: what a bouncer needs to hear about.
    async fn decision_changes(
        &self,
        since: Timestamp,
        now: Timestamp,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Decision>, StoreError>;

    /// A cheap summary that changes whenever a decision is written anywhere (created,
    /// extended or deleted): `(highest id, latest updated_at, decisions not removed)`.
    /// A reload of the enforcement set is skipped while it stays the same.
    async fn decisions_fingerprint(&self) -> Result<(i64, i64, i64), StoreError>;

    /// Marks decisions that expired by `now` as removed (`deleted_at` = their expiry,
    /// `deleted_by` = `expiry`); returns how many.
    async fn expire_decisions(&self, now: Timestamp) -> Result<u64, StoreError>;
}
