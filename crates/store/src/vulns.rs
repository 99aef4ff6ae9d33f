//! The vulnerability half of the store: CVE records with their CPE applicability, the
//! assets whose software is tracked, their software inventories, the matches between
//! the two and the feed sync positions.
//!
//! A CVE is kept whole as JSON (`doc`, the `palisade_core::vuln::Cve`) beside the columns
//! that are filtered or sorted on, plus one `vuln_cve_products` row per vulnerable
//! `(vendor, product)` its configurations name: matching asks for the CVEs of a product
//! through that index and evaluates the configurations itself (`palisade-vuln`), so
//! nothing else is loaded into memory.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::vuln::{
    Asset, Cve, CvssSeverity, FoundMatch, MatchStatus, Software, SoftwareSource, StoredSoftware,
    VulnMatch,
};
use serde::Serialize;

use crate::{Cursor, Page, StoreError};

/// A CVE with the products its configurations name as vulnerable, for the index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedCve {
    /// The record.
    pub cve: Cve,
    /// `(vendor, product)` pairs, lower case, distinct.
    pub products: Vec<(String, String)>,
}

/// What an upsert of CVE records did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CveUpsert {
    /// New records.
    pub inserted: u64,
    /// Records replaced by a newer version (or an NVD record replacing a CIRCL one).
    pub updated: u64,
    /// Records kept as they were (same or older, or a CIRCL record for an NVD one).
    pub unchanged: u64,
}

/// How much CVE data there is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CveStats {
    /// Records stored.
    pub count: u64,
    /// The newest `modified` among them: how fresh the data is.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub latest_modified: Option<Timestamp>,
}

/// What a software write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftwareWrite {
    /// The asset (created when new).
    pub asset_id: i64,
    /// Whether the asset's software changed (a new item, a new version, an item gone):
    /// only then does it need matching again.
    pub changed: bool,
}

/// Filters for listing assets.
#[derive(Debug, Clone, Default)]
pub struct AssetQuery {
    /// Names starting with this.
    pub name_prefix: Option<String>,
    /// Continue after this position (`ts` is `first_seen`).
    pub cursor: Option<Cursor>,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
}

/// Filters for listing matches; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct MatchQuery {
    /// The asset's exact name.
    pub asset: Option<String>,
    /// The exact CVE id.
    pub cve: Option<String>,
    /// Exact severity.
    pub severity: Option<CvssSeverity>,
    /// Exact status.
    pub status: Option<MatchStatus>,
    /// Matched at or after this (last seen ≥).
    pub seen_from: Option<Timestamp>,
    /// First matched before this.
    pub seen_to: Option<Timestamp>,
    /// Continue after this position (`ts` is `first_seen`).
    pub cursor: Option<Cursor>,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
}

/// What storing a matching run's result for one asset did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchSync {
    /// Matches that became open: new, or matched again after the matcher had marked
    /// them fixed (or after someone marked them fixed, when the version changed).
    pub opened: Vec<VulnMatch>,
    /// Matches found again and left as they were.
    pub kept: u64,
    /// Open matches not found any more, now `fixed` by the matcher.
    pub resolved: u64,
}

/// Who the matcher is, in `status_by`.
pub const MATCHER: &str = "matcher";

/// Storage for vulnerability data. Every `Store` implements it.
#[async_trait]
pub trait VulnStore: Send + Sync {
    /// Stores CVE records in one transaction. A record replaces the stored one when it
    /// is at least as new (`modified`), except that a CIRCL record never replaces an
    /// NVD one while an NVD record always replaces a CIRCL one.
    async fn upsert_cves(&self, cves: &[IndexedCve]) -> Result<CveUpsert, StoreError>;

    /// One CVE record.
    async fn get_cve(&self, id: &str) -> Result<Option<Cve>, StoreError>;

    /// Every CVE whose configurations name `product` (lower case) as vulnerable, by id.
    async fn cves_for_product(&self, product: &str) -> Result<Vec<Cve>, StoreError>;

    /// How many CVE records there are and how fresh.
    async fn cve_stats(&self) -> Result<CveStats, StoreError>;

    /// Records software for an asset (created on first mention), in one transaction.
    /// `replace`: the items are the whole inventory of `source` (an upload): items of
    /// that source not in the list go. Otherwise (a sighting) each item updates the
    /// one of the same source and name. Items already known keep their `first_seen`.
    async fn put_software(
        &self,
        asset: &str,
        source: SoftwareSource,
        items: &[Software],
        replace: bool,
        now: Timestamp,
    ) -> Result<SoftwareWrite, StoreError>;

    /// One asset with its counts.
    async fn get_asset(&self, name: &str) -> Result<Option<Asset>, StoreError>;

    /// Assets, newest first, with their counts.
    async fn query_assets(&self, query: &AssetQuery) -> Result<Page<Asset>, StoreError>;

    /// An asset's software, by source then name.
    async fn asset_software(&self, asset_id: i64) -> Result<Vec<StoredSoftware>, StoreError>;

    /// Stores a matching run's complete result for one asset, in one transaction: found
    /// matches are created or refreshed (`last_seen`), open matches not found are
    /// marked fixed by the [`MATCHER`], and a fixed match found again is reopened when
    /// the matcher had closed it or its version changed (a status set by a person on
    /// the same version stands).
    async fn sync_matches(
        &self,
        asset_id: i64,
        found: &[FoundMatch],
        now: Timestamp,
    ) -> Result<MatchSync, StoreError>;

    /// Matches, newest first.
    async fn query_matches(&self, query: &MatchQuery) -> Result<Page<VulnMatch>, StoreError>;

    /// One match.
    async fn get_match(&self, id: i64) -> Result<Option<VulnMatch>, StoreError>;

    /// Sets a match's triage status; `None` when there is no such match.
    async fn set_match_status(
        &self,
        id: i64,
        status: MatchStatus,
        comment: Option<&str>,
        by: &str,
        now: Timestamp,
    ) -> Result<Option<VulnMatch>, StoreError>;

    /// A feed's saved sync position (`nvd`), as the feed wrote it.
    async fn sync_state(&self, feed: &str) -> Result<Option<String>, StoreError>;

    /// Saves a feed's sync position.
    async fn put_sync_state(
        &self,
        feed: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}
