//! Matching assets against the CVE records in the store.
//!
//! For one asset: read its software, identify it ([`Inventory`]), ask the store for the
//! CVEs of each product it may be (`cves_for_product`, an indexed lookup), evaluate
//! their configurations ([`findings`]) and store the complete result
//! (`sync_matches`): new matches open, matches no longer found close, and each match
//! that *became* open with critical severity raises a threat through the given sink
//! (the pipeline's threat recorder), so that alerting sees it.
//!
//! A run over every asset shares one [`CveCache`]: each product's CVEs are read and
//! their CPE criteria parsed once per run, not once per asset.

use std::collections::HashMap;
use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_core::metrics::{Counter, registry};
use palisade_core::severity::Severity;
use palisade_core::threat::{Evidence, Threat};
use palisade_core::verdict::Action;
use palisade_core::vuln::{CvssSeverity, FoundMatch, VulnMatch};
use palisade_store::{AssetQuery, MatchSync, SharedStore};
use serde::Serialize;

use crate::TaskContext;
use crate::applicability::{CompiledCve, Inventory, findings};
use crate::error::VulnError;

/// Where threats raised by matching go (the pipeline's `ThreatRecorder::record`).
pub type ThreatSink = Arc<dyn Fn(Threat) + Send + Sync>;

/// The threat category of a vulnerability finding.
pub const THREAT_CATEGORY: &str = "vulnerability";
/// The threat source of a vulnerability finding.
pub const THREAT_SOURCE: &str = "vuln";

fn opened_counter() -> Arc<Counter> {
    registry().counter(
        "palisade_vuln_matches_opened_total",
        "Vulnerability matches that became open (new, or found again after being fixed).",
        &[],
        &[],
    )
}

fn resolved_counter() -> Arc<Counter> {
    registry().counter(
        "palisade_vuln_matches_resolved_total",
        "Open vulnerability matches closed by the matcher because they were no longer found.",
        &[],
        &[],
    )
}

/// CVEs by product, read and compiled once per run.
#[derive(Default)]
pub struct CveCache {
    by_product: HashMap<String, Vec<Arc<CompiledCve>>>,
    compiled: HashMap<String, Arc<CompiledCve>>,
}

impl CveCache {
    /// An empty cache.
    pub fn new() -> CveCache {
        CveCache::default()
    }

    /// The CVEs naming any of `products`, each once.
    pub async fn candidates(
        &mut self,
        store: &SharedStore,
        products: &[String],
    ) -> Result<Vec<Arc<CompiledCve>>, VulnError> {
        let mut out: Vec<Arc<CompiledCve>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for p in products {
            if !self.by_product.contains_key(p) {
                let cves = store.cves_for_product(p).await?;
                let list = cves
                    .into_iter()
                    .map(|c| {
                        self.compiled
                            .entry(c.id.clone())
                            .or_insert_with(|| Arc::new(CompiledCve::new(Arc::new(c))))
                            .clone()
                    })
                    .collect();
                self.by_product.insert(p.clone(), list);
            }
            for c in self.by_product.get(p).into_iter().flatten() {
                if seen.insert(c.cve.id.clone()) {
                    out.push(c.clone());
                }
            }
        }
        Ok(out)
    }
}

/// The threat a newly open critical match raises.
pub fn threat_of(m: &VulnMatch) -> Threat {
    Threat {
        tags: Vec::new(),
        ts: Timestamp::now(),
        category: THREAT_CATEGORY.into(),
        severity: Severity::Critical,
        score: m
            .score
            .map_or(100, |s| (s * 10.0).round().clamp(0.0, 100.0) as u32),
        rule_ids: Vec::new(),
        client_ip: None,
        method: None,
        uri: None,
        source: THREAT_SOURCE.into(),
        event_id: None,
        decision: Action::Detect,
        evidence: vec![Evidence {
            rule_id: 0,
            location: "asset".into(),
            part: m.asset.clone(),
            decoded_value: format!("{} {}", m.software, m.version),
            matched: format!(
                "{} ({}, confidence {}{})",
                m.cve_id,
                m.product,
                m.confidence.as_str(),
                if m.kev { ", known exploited" } else { "" }
            ),
        }],
    }
}

/// What matching one asset found.
pub async fn findings_for(
    store: &SharedStore,
    asset_id: i64,
    cache: &mut CveCache,
) -> Result<Vec<FoundMatch>, VulnError> {
    let software = store
        .asset_software(asset_id)
        .await?
        .into_iter()
        .map(|s| s.software)
        .collect();
    let inv = Inventory::new(software);
    let candidates = cache.candidates(store, &inv.products()).await?;
    let mut found = Vec::new();
    for cve in &candidates {
        found.extend(findings(cve, &inv));
    }
    Ok(found)
}

/// Matches one asset and stores the result; raises a threat for each critical match
/// that became open.
pub async fn match_asset(
    store: &SharedStore,
    asset_id: i64,
    cache: &mut CveCache,
    threats: Option<&ThreatSink>,
) -> Result<MatchSync, VulnError> {
    let found = findings_for(store, asset_id, cache).await?;
    let sync = store
        .sync_matches(asset_id, &found, Timestamp::now())
        .await?;
    opened_counter().add(sync.opened.len() as u64);
    resolved_counter().add(sync.resolved);
    if let Some(sink) = threats {
        for m in sync
            .opened
            .iter()
            .filter(|m| m.severity == CvssSeverity::Critical)
        {
            sink(threat_of(m));
        }
    }
    Ok(sync)
}

/// What a matching run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MatchSummary {
    /// Assets matched.
    pub assets: u64,
    /// Matches that became open.
    pub opened: u64,
    /// Matches found again and left as they were.
    pub kept: u64,
    /// Open matches no longer found (closed as fixed).
    pub resolved: u64,
    /// Threats raised (critical matches that became open).
    pub threats: u64,
}

/// Matches every asset (or those whose name starts with `prefix`).
pub async fn run_matching(
    store: &SharedStore,
    prefix: Option<&str>,
    threats: Option<&ThreatSink>,
    ctx: &TaskContext<'_>,
) -> Result<MatchSummary, VulnError> {
    let mut assets: Vec<(i64, String)> = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query_assets(&AssetQuery {
                name_prefix: prefix.map(str::to_owned),
                cursor,
                limit: palisade_store::MAX_LIMIT,
            })
            .await?;
        assets.extend(page.items.into_iter().map(|a| (a.id, a.name)));
        match page
            .next_cursor
            .as_deref()
            .and_then(palisade_store::Cursor::decode)
        {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut cache = CveCache::new();
    let mut summary = MatchSummary::default();
    let n = assets.len().max(1);
    for (i, (id, name)) in assets.iter().enumerate() {
        ctx.check()?;
        let sync = match_asset(store, *id, &mut cache, threats).await?;
        summary.assets += 1;
        summary.opened += sync.opened.len() as u64;
        summary.kept += sync.kept;
        summary.resolved += sync.resolved;
        summary.threats += sync
            .opened
            .iter()
            .filter(|m| m.severity == CvssSeverity::Critical)
            .count() as u64;
        if i % 16 == 0 || i + 1 == assets.len() {
            ctx.report(((i + 1) * 100 / n) as u8, name);
        }
    }
    ctx.report(100, &format!("{} assets", summary.assets));
    Ok(summary)
}
