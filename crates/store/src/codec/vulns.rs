//! Vulnerability records to and from columns, shared by both backends.

use palisade_core::Timestamp;
use palisade_core::vuln::{
    Asset, Confidence, Cve, CvssSeverity, FoundMatch, MatchStatus, SeverityCount, Software,
    SoftwareSource, StoredSoftware, VulnMatch,
};

use super::clean;
use crate::StoreError;

/// The columns of a CVE row, ready to bind.
pub(crate) struct CveColumnsIn {
    pub id: String,
    pub published: i64,
    pub modified: i64,
    pub status: Option<String>,
    pub severity: &'static str,
    pub score: Option<f64>,
    pub kev: bool,
    pub origin: &'static str,
    pub doc: String,
}

impl CveColumnsIn {
    pub fn new(cve: &Cve) -> Result<Self, StoreError> {
        let doc = serde_json::to_string(cve)
            .map_err(|e| StoreError::Database(format!("cannot encode {}: {e}", cve.id)))?;
        Ok(CveColumnsIn {
            id: clean(&cve.id).into_owned(),
            published: cve.published.as_micros(),
            modified: cve.modified.as_micros(),
            status: cve.status.as_deref().map(|s| clean(s).into_owned()),
            severity: cve.severity().as_str(),
            score: cve.score(),
            kev: cve.kev.is_some(),
            origin: cve.origin.as_str(),
            doc: clean(&doc).into_owned(),
        })
    }
}

/// Whether an incoming record replaces the stored one (see `VulnStore::upsert_cves`).
pub(crate) fn replaces(incoming: &Cve, stored_modified: i64, stored_origin: &str) -> bool {
    match (incoming.origin.as_str(), stored_origin) {
        ("circl", "nvd") => false,
        ("nvd", "circl") => true,
        _ => incoming.modified.as_micros() >= stored_modified,
    }
}

/// A stored record back.
pub(crate) fn cve_from_doc(id: &str, doc: &str) -> Result<Cve, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("CVE {id}: {e}")))
}

/// The unique key of a software item within its asset and source: the name for
/// sightings (one entry per product, its version updated), the whole identity for
/// uploads (one package may be listed in several versions).
pub(crate) fn software_key(item: &Software, replace: bool) -> String {
    if replace {
        format!(
            "{}@{}|{}",
            clean(&item.name),
            clean(&item.version),
            clean(item.purl.as_deref().unwrap_or_default())
        )
    } else {
        clean(&item.name).to_ascii_lowercase()
    }
}

/// The columns of a software row as read.
pub(crate) struct SoftwareColumns {
    pub id: i64,
    pub source: String,
    pub name: String,
    pub version: String,
    pub purl: Option<String>,
    pub cpe: Option<String>,
    pub distro: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// `SELECT` list matching [`SoftwareColumns`].
pub(crate) const SOFTWARE_COLUMNS: &str =
    "id, source, name, version, purl, cpe, distro, first_seen, last_seen";

impl SoftwareColumns {
    pub fn into_stored(self) -> Result<StoredSoftware, StoreError> {
        let source = SoftwareSource::parse(&self.source).ok_or_else(|| {
            StoreError::Corrupt(format!("software {}: source {:?}", self.id, self.source))
        })?;
        Ok(StoredSoftware {
            id: self.id,
            software: Software {
                source,
                name: self.name,
                version: self.version,
                purl: self.purl,
                cpe: self.cpe,
                distro: self.distro,
            },
            first_seen: Timestamp(self.first_seen),
            last_seen: Timestamp(self.last_seen),
        })
    }
}

/// The columns of a software row to write, cleaned.
pub(crate) struct SoftwareColumnsIn {
    pub key: String,
    pub name: String,
    pub version: String,
    pub purl: Option<String>,
    pub cpe: Option<String>,
    pub distro: Option<String>,
}

impl SoftwareColumnsIn {
    pub fn new(item: &Software, replace: bool) -> Self {
        let opt = |v: &Option<String>| v.as_deref().map(|s| clean(s).into_owned());
        SoftwareColumnsIn {
            key: software_key(item, replace),
            name: clean(&item.name).into_owned(),
            version: clean(&item.version).into_owned(),
            purl: opt(&item.purl),
            cpe: opt(&item.cpe),
            distro: opt(&item.distro),
        }
    }
}

/// An asset row as read, before its counts are attached.
pub(crate) struct AssetColumns {
    pub id: i64,
    pub name: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub software: i64,
}

/// `SELECT` list matching [`AssetColumns`] (`a` is `vuln_assets`).
pub(crate) const ASSET_COLUMNS: &str = "a.id, a.name, a.first_seen, a.last_seen, \
     (SELECT count(*) FROM vuln_software s WHERE s.asset_id = a.id)";

impl AssetColumns {
    /// The asset with its open-match counts (`(severity, count)` rows of this asset).
    pub fn into_asset(self, open: Vec<(String, i64)>) -> Result<Asset, StoreError> {
        let mut counts = Vec::with_capacity(open.len());
        for (severity, n) in open {
            let severity = CvssSeverity::parse(&severity).ok_or_else(|| {
                StoreError::Corrupt(format!("asset {}: severity {severity:?}", self.id))
            })?;
            counts.push(SeverityCount {
                severity,
                count: u64::try_from(n).unwrap_or_default(),
            });
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.severity));
        Ok(Asset {
            id: self.id,
            name: self.name,
            first_seen: Timestamp(self.first_seen),
            last_seen: Timestamp(self.last_seen),
            software: u64::try_from(self.software).unwrap_or_default(),
            open: counts,
        })
    }
}

/// A match row as read.
pub(crate) struct MatchColumns {
    pub id: i64,
    pub asset: String,
    pub cve_id: String,
    pub product: String,
    pub software: String,
    pub version: String,
    pub severity: String,
    pub score: Option<f64>,
    pub confidence: String,
    pub kev: bool,
    pub status: String,
    pub status_comment: Option<String>,
    pub status_by: Option<String>,
    pub status_at: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// `SELECT … FROM` matching [`MatchColumns`] (`m` is `vuln_matches`, `a` its asset).
pub(crate) const MATCH_SELECT: &str = "SELECT m.id, a.name, m.cve_id, m.product, m.software, \
     m.version, m.severity, m.score, m.confidence, m.kev, m.status, m.status_comment, \
     m.status_by, m.status_at, m.first_seen, m.last_seen \
     FROM vuln_matches m JOIN vuln_assets a ON a.id = m.asset_id";

impl MatchColumns {
    pub fn into_match(self) -> Result<VulnMatch, StoreError> {
        let id = self.id;
        let bad = |what: &str, v: &str| StoreError::Corrupt(format!("match {id}: {what} {v:?}"));
        Ok(VulnMatch {
            id,
            asset: self.asset,
            cve_id: self.cve_id,
            product: self.product,
            software: self.software,
            version: self.version,
            severity: CvssSeverity::parse(&self.severity)
                .ok_or_else(|| bad("severity", &self.severity))?,
            score: self.score,
            confidence: Confidence::parse(&self.confidence)
                .ok_or_else(|| bad("confidence", &self.confidence))?,
            kev: self.kev,
            status: MatchStatus::parse(&self.status).ok_or_else(|| bad("status", &self.status))?,
            status_comment: self.status_comment,
            status_by: self.status_by,
            status_at: self.status_at.map(Timestamp),
            first_seen: Timestamp(self.first_seen),
            last_seen: Timestamp(self.last_seen),
        })
    }
}

/// A found match's columns, cleaned.
pub(crate) struct FoundColumns {
    pub cve_id: String,
    pub product: String,
    pub software: String,
    pub version: String,
    pub severity: &'static str,
    pub score: Option<f64>,
    pub confidence: &'static str,
    pub kev: bool,
}

impl FoundColumns {
    pub fn new(m: &FoundMatch) -> Self {
        FoundColumns {
            cve_id: clean(&m.cve_id).into_owned(),
            product: clean(&m.product).into_owned(),
            software: clean(&m.software).into_owned(),
            version: clean(&m.version).into_owned(),
            severity: m.severity.as_str(),
            score: m.score,
            confidence: m.confidence.as_str(),
            kev: m.kev,
        }
    }
}

/// What happens to an existing match the matcher found again.
pub(crate) fn reopens(
    status: &str,
    status_by: Option<&str>,
    old_version: &str,
    new_version: &str,
) -> bool {
    status == MatchStatus::Fixed.as_str()
        && (status_by == Some(crate::vulns::MATCHER) || old_version != new_version)
}

/// The comment the matcher leaves when it reopens a match.
pub(crate) const REOPENED: &str = "matched again";
/// The comment the matcher leaves when it closes a match.
pub(crate) const RESOLVED: &str = "no longer matched: the software was updated or removed";

/// Found matches without duplicates (one per CVE and product; the first wins).
pub(crate) fn distinct_found(found: &[FoundMatch]) -> Vec<FoundColumns> {
    let mut seen = std::collections::HashSet::new();
    found
        .iter()
        .filter(|m| seen.insert((m.cve_id.clone(), m.product.clone())))
        .map(FoundColumns::new)
        .collect()
}
