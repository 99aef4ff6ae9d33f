//! Vulnerabilities: CVE records with their CPE applicability, the software each asset
//! runs, and the matches between the two.
//!
//! These are plain data shared by the vulnerability engine (`palisade-vuln`: feeds,
//! CPE/version matching, inventories), the store (`VulnStore`) and the API. The
//! matching logic itself lives in `palisade-vuln`; what is here only names things and
//! keeps the vocabularies (severity, status, confidence) typed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A CVE record as Palisade keeps it: what NVD API 2.0 says about one vulnerability,
/// reduced to what matching, triage and reports use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cve {
    /// `CVE-YYYY-NNNN…`.
    pub id: String,
    /// Who assigned it (`sourceIdentifier`), e.g. `security@apache.org`.
    #[serde(default)]
    pub source_identifier: Option<String>,
    /// When it was published.
    #[schema(value_type = String, format = DateTime)]
    pub published: Timestamp,
    /// When the record last changed: incremental syncs and upserts compare it.
    #[schema(value_type = String, format = DateTime)]
    pub modified: Timestamp,
    /// NVD's analysis status (`Analyzed`, `Modified`, `Awaiting Analysis`, …).
    #[serde(default)]
    pub status: Option<String>,
    /// Descriptions, one per language.
    #[serde(default)]
    pub descriptions: Vec<Description>,
    /// CVSS scores, every version and source given.
    #[serde(default)]
    pub metrics: Vec<CvssMetric>,
    /// Weaknesses (`CWE-22`, `NVD-CWE-noinfo`, …), distinct.
    #[serde(default)]
    pub cwes: Vec<String>,
    /// Advisories, patches, exploits.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// The CISA Known Exploited Vulnerabilities entry, when listed.
    #[serde(default)]
    pub kev: Option<Kev>,
    /// CPE applicability: the record matches an asset when any configuration does.
    #[serde(default)]
    pub configurations: Vec<Configuration>,
    /// Where the record came from.
    #[serde(default)]
    pub origin: CveOrigin,
}

impl Cve {
    /// The English description, else the first one.
    pub fn description(&self) -> Option<&str> {
        self.descriptions
            .iter()
            .find(|d| d.lang.eq_ignore_ascii_case("en"))
            .or_else(|| self.descriptions.first())
            .map(|d| d.value.as_str())
    }

    /// The metric that rates this CVE: the newest CVSS version present, a primary
    /// (NVD's own) score before a secondary one.
    pub fn best_metric(&self) -> Option<&CvssMetric> {
        self.metrics.iter().max_by_key(|m| (m.version, m.primary))
    }

    /// The severity of the best metric, `Unknown` without one.
    pub fn severity(&self) -> CvssSeverity {
        self.best_metric()
            .map_or(CvssSeverity::Unknown, |m| m.severity)
    }

    /// The base score of the best metric.
    pub fn score(&self) -> Option<f64> {
        self.best_metric().map(|m| m.base_score)
    }
}

/// Where a CVE record came from. An NVD record is the authority for CPE applicability,
/// so a CIRCL record never replaces one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CveOrigin {
    /// The NVD API 2.0 (fetched, or imported from its pages).
    #[default]
    Nvd,
    /// CIRCL vulnerability-lookup.
    Circl,
}

impl CveOrigin {
    /// `nvd` or `circl`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CveOrigin::Nvd => "nvd",
            CveOrigin::Circl => "circl",
        }
    }

    /// Reads the name back.
    pub fn parse(s: &str) -> Option<CveOrigin> {
        match s {
            "nvd" => Some(CveOrigin::Nvd),
            "circl" => Some(CveOrigin::Circl),
            _ => None,
        }
    }
}

/// One description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Description {
    /// Language code (`en`, `es`).
    pub lang: String,
    /// The text.
    pub value: String,
}

/// One reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reference {
    /// The link.
    pub url: String,
    /// Who added it.
    #[serde(default)]
    pub source: Option<String>,
    /// `Patch`, `Exploit`, `Vendor Advisory`, …
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A CISA Known Exploited Vulnerabilities entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Kev {
    /// The date CISA added it (`YYYY-MM-DD`).
    pub added: String,
    /// The remediation due date for US federal agencies.
    #[serde(default)]
    pub due: Option<String>,
    /// What to do.
    #[serde(default)]
    pub required_action: Option<String>,
    /// CISA's name for it.
    #[serde(default)]
    pub name: Option<String>,
}

/// A CVSS version, oldest first (so that `max` picks the newest).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum CvssVersion {
    /// CVSS v2.
    #[serde(rename = "2.0")]
    V2,
    /// CVSS v3.0.
    #[serde(rename = "3.0")]
    V30,
    /// CVSS v3.1.
    #[serde(rename = "3.1")]
    V31,
    /// CVSS v4.0.
    #[serde(rename = "4.0")]
    V40,
}

impl CvssVersion {
    /// `2.0`, `3.0`, `3.1` or `4.0`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CvssVersion::V2 => "2.0",
            CvssVersion::V30 => "3.0",
            CvssVersion::V31 => "3.1",
            CvssVersion::V40 => "4.0",
        }
    }
}

/// One CVSS score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CvssMetric {
    /// Which CVSS.
    pub version: CvssVersion,
    /// Who scored it (`nvd@nist.gov`, the CNA).
    pub source: String,
    /// NVD's own (primary) score rather than a secondary one.
    pub primary: bool,
    /// The vector string.
    pub vector: String,
    /// 0.0 to 10.0.
    pub base_score: f64,
    /// The qualitative rating.
    pub severity: CvssSeverity,
}

/// The CVSS qualitative severity scale, least to most, plus `unknown` for a record
/// nobody scored yet.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CvssSeverity {
    /// Not scored yet.
    #[default]
    Unknown,
    /// 0.0.
    None,
    /// 0.1 – 3.9.
    Low,
    /// 4.0 – 6.9.
    Medium,
    /// 7.0 – 8.9.
    High,
    /// 9.0 – 10.0.
    Critical,
}

impl CvssSeverity {
    /// Every severity, least first.
    pub const ALL: [CvssSeverity; 6] = [
        CvssSeverity::Unknown,
        CvssSeverity::None,
        CvssSeverity::Low,
        CvssSeverity::Medium,
        CvssSeverity::High,
        CvssSeverity::Critical,
    ];

    /// The stable lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CvssSeverity::Unknown => "unknown",
            CvssSeverity::None => "none",
            CvssSeverity::Low => "low",
            CvssSeverity::Medium => "medium",
            CvssSeverity::High => "high",
            CvssSeverity::Critical => "critical",
        }
    }

    /// The CVSS v3/v4 rating of a base score (v2 records get it this way too, as NVD
    /// gives them only low/medium/high).
    pub fn from_score(score: f64) -> CvssSeverity {
        match score {
            s if s >= 9.0 => CvssSeverity::Critical,
            s if s >= 7.0 => CvssSeverity::High,
            s if s >= 4.0 => CvssSeverity::Medium,
            s if s > 0.0 => CvssSeverity::Low,
            0.0 => CvssSeverity::None,
            _ => CvssSeverity::Unknown,
        }
    }

    /// Reads a rating in any case (`CRITICAL`, `critical`).
    pub fn parse(s: &str) -> Option<CvssSeverity> {
        CvssSeverity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for CvssSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CvssSeverity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CvssSeverity::parse(s).ok_or_else(|| {
            format!("unknown severity {s:?}: must be critical, high, medium, low, none or unknown")
        })
    }
}

/// How the children of a configuration or node combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operator {
    /// Any child.
    #[default]
    Or,
    /// Every child (an application running on a given OS or hardware).
    And,
}

/// One applicability configuration: nodes combined by `operator`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Configuration {
    /// How the nodes combine (NVD leaves it out for a single node: OR).
    #[serde(default)]
    pub operator: Operator,
    /// Inverts the result.
    #[serde(default)]
    pub negate: bool,
    /// The nodes.
    pub nodes: Vec<Node>,
}

/// One node: CPE matches combined by `operator`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Node {
    /// How the matches combine.
    #[serde(default)]
    pub operator: Operator,
    /// Inverts the result.
    #[serde(default)]
    pub negate: bool,
    /// The CPE match criteria.
    pub matches: Vec<CpeMatch>,
}

/// One CPE match criterion: a CPE 2.3 name, maybe with a version range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CpeMatch {
    /// True for the vulnerable product; false for a platform it must run on.
    pub vulnerable: bool,
    /// A CPE 2.3 formatted string, e.g. `cpe:2.3:a:apache:http_server:*:*:*:*:*:*:*:*`.
    pub criteria: String,
    /// Lower bound of the affected versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<VersionBound>,
    /// Upper bound of the affected versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<VersionBound>,
    /// NVD's id of the criterion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_id: Option<String>,
}

/// One end of a version range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionBound {
    /// The version text as NVD gives it.
    pub version: String,
    /// Whether the bound itself is in the range.
    pub inclusive: bool,
}

/// How a piece of software became known.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SoftwareSource {
    /// An uploaded CycloneDX JSON SBOM.
    Cyclonedx,
    /// An uploaded SPDX JSON SBOM.
    Spdx,
    /// An uploaded `dpkg -l` / `dpkg-query` list.
    Dpkg,
    /// An uploaded `rpm -qa` list.
    Rpm,
    /// Seen in an HTTP answer (`Server`, `X-Powered-By`) through the protecting proxy.
    Http,
    /// Seen in an SSH banner.
    Ssh,
    /// Seen in a syslog line (package installs, sshd's version).
    Syslog,
}

impl SoftwareSource {
    /// Every source.
    pub const ALL: [SoftwareSource; 7] = [
        SoftwareSource::Cyclonedx,
        SoftwareSource::Spdx,
        SoftwareSource::Dpkg,
        SoftwareSource::Rpm,
        SoftwareSource::Http,
        SoftwareSource::Ssh,
        SoftwareSource::Syslog,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SoftwareSource::Cyclonedx => "cyclonedx",
            SoftwareSource::Spdx => "spdx",
            SoftwareSource::Dpkg => "dpkg",
            SoftwareSource::Rpm => "rpm",
            SoftwareSource::Http => "http",
            SoftwareSource::Ssh => "ssh",
            SoftwareSource::Syslog => "syslog",
        }
    }

    /// Reads the name back.
    pub fn parse(s: &str) -> Option<SoftwareSource> {
        SoftwareSource::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether it was uploaded (a new upload replaces the previous one of the same
    /// source) rather than observed (each sighting updates one entry).
    pub const fn is_uploaded(self) -> bool {
        matches!(
            self,
            SoftwareSource::Cyclonedx
                | SoftwareSource::Spdx
                | SoftwareSource::Dpkg
                | SoftwareSource::Rpm
        )
    }
}

/// One piece of software on an asset, as reported or observed. Identification (which
/// CPE vendor and product it is) happens at match time, so that better normalisation
/// applies to software already stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Software {
    /// How it became known.
    pub source: SoftwareSource,
    /// The package or product name as given (`openssl`, `log4j-core`, `Apache`).
    pub name: String,
    /// The version as given (`1:9.2p1-2+deb12u2`, `2.14.1`, `2.4.49`).
    pub version: String,
    /// A package URL, when the source gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// A CPE 2.3 name, when the source gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpe: Option<String>,
    /// The distribution that built the package (`debian`, `ubuntu`, `rhel`, `euleros`,
    /// …), when known: such packages carry backported fixes, see `Confidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
}

/// A piece of software as stored for an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredSoftware {
    /// Store id.
    pub id: i64,
    /// The software.
    #[serde(flatten)]
    pub software: Software,
    /// First reported or seen.
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    /// Last reported or seen.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
}

/// An asset: a host or service whose software is tracked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Asset {
    /// Store id.
    pub id: i64,
    /// Its unique name (a host name, a proxy's upstream, what an upload named).
    pub name: String,
    /// First heard of.
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    /// Last heard of.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Pieces of software known.
    pub software: u64,
    /// Open matches by severity, most severe first (only severities present).
    pub open: Vec<SeverityCount>,
}

/// A count under a severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeverityCount {
    /// The severity.
    pub severity: CvssSeverity,
    /// How many.
    pub count: u64,
}

/// Where a match stands in triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchStatus {
    /// To be dealt with.
    Open,
    /// The risk is accepted (with a comment saying why).
    Accepted,
    /// Fixed: marked so by someone, or no longer matched (software updated or removed).
    Fixed,
}

impl MatchStatus {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MatchStatus::Open => "open",
            MatchStatus::Accepted => "accepted",
            MatchStatus::Fixed => "fixed",
        }
    }

    /// Reads the name back.
    pub fn parse(s: &str) -> Option<MatchStatus> {
        match s {
            "open" => Some(MatchStatus::Open),
            "accepted" => Some(MatchStatus::Accepted),
            "fixed" => Some(MatchStatus::Fixed),
            _ => None,
        }
    }
}

/// How sure a match is. Version matching against NVD ranges compares *upstream*
/// versions; what it cannot see is said here rather than hidden.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// A distribution package (Debian, Ubuntu, RHEL, …) whose upstream version is in
    /// the affected range: distributions backport fixes without changing the upstream
    /// version, so only the distribution's own advisory (DSA/DLA/USN/RHSA, OVAL) can
    /// say whether this build is fixed.
    NeedsDistroAdvisory,
    /// The version is affected, but a platform condition of the configuration ("running
    /// on Windows") could not be checked: the asset's platform is unknown.
    Medium,
    /// The product's own version is in the affected range and every condition was
    /// checked.
    High,
}

impl Confidence {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::NeedsDistroAdvisory => "needs_distro_advisory",
        }
    }

    /// Reads the name back.
    pub fn parse(s: &str) -> Option<Confidence> {
        match s {
            "high" => Some(Confidence::High),
            "medium" => Some(Confidence::Medium),
            "needs_distro_advisory" => Some(Confidence::NeedsDistroAdvisory),
            _ => None,
        }
    }
}

/// A match found by a matching run, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundMatch {
    /// The CVE.
    pub cve_id: String,
    /// The CPE `vendor:product` that matched (one match per CVE and product).
    pub product: String,
    /// The software name as the asset reported it.
    pub software: String,
    /// Its version as reported.
    pub version: String,
    /// The CVE's severity.
    pub severity: CvssSeverity,
    /// The CVE's base score.
    pub score: Option<f64>,
    /// How sure.
    pub confidence: Confidence,
    /// Listed by CISA as exploited.
    pub kev: bool,
}

/// A stored match of a CVE on an asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VulnMatch {
    /// Store id.
    pub id: i64,
    /// The asset's name.
    pub asset: String,
    /// The CVE.
    pub cve_id: String,
    /// The CPE `vendor:product` that matched.
    pub product: String,
    /// The software name as the asset reported it.
    pub software: String,
    /// Its version as reported, when last matched.
    pub version: String,
    /// The CVE's severity.
    pub severity: CvssSeverity,
    /// The CVE's base score.
    pub score: Option<f64>,
    /// How sure.
    pub confidence: Confidence,
    /// Listed by CISA as exploited.
    pub kev: bool,
    /// Triage status.
    pub status: MatchStatus,
    /// Why the status was set.
    pub status_comment: Option<String>,
    /// Who set it (a user, or `matcher`).
    pub status_by: Option<String>,
    /// When it was set.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub status_at: Option<Timestamp>,
    /// First matched.
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    /// Last matched.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(version: CvssVersion, primary: bool, score: f64) -> CvssMetric {
        CvssMetric {
            version,
            source: if primary { "nvd@nist.gov" } else { "cna" }.into(),
            primary,
            vector: String::new(),
            base_score: score,
            severity: CvssSeverity::from_score(score),
        }
    }

    #[test]
    fn best_metric_is_newest_version_then_primary() {
        let mut cve = Cve {
            id: "CVE-1".into(),
            source_identifier: None,
            published: Timestamp(0),
            modified: Timestamp(0),
            status: None,
            descriptions: vec![],
            metrics: vec![
                metric(CvssVersion::V2, true, 5.0),
                metric(CvssVersion::V31, false, 9.8),
                metric(CvssVersion::V31, true, 7.5),
            ],
            cwes: vec![],
            references: vec![],
            kev: None,
            configurations: vec![],
            origin: CveOrigin::Nvd,
        };
        assert_eq!(cve.score(), Some(7.5));
        assert_eq!(cve.severity(), CvssSeverity::High);
        cve.metrics.clear();
        assert_eq!(cve.severity(), CvssSeverity::Unknown);
    }

    #[test]
    fn vocabularies_round_trip() {
        for s in CvssSeverity::ALL {
            assert_eq!(CvssSeverity::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(
            CvssSeverity::parse("CRITICAL"),
            Some(CvssSeverity::Critical)
        );
        for s in SoftwareSource::ALL {
            assert_eq!(SoftwareSource::parse(s.as_str()), Some(s));
        }
        for s in [MatchStatus::Open, MatchStatus::Accepted, MatchStatus::Fixed] {
            assert_eq!(MatchStatus::parse(s.as_str()), Some(s));
        }
        for c in [
            Confidence::High,
            Confidence::Medium,
            Confidence::NeedsDistroAdvisory,
        ] {
            assert_eq!(Confidence::parse(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert_eq!(CvssSeverity::from_score(9.0), CvssSeverity::Critical);
        assert_eq!(CvssSeverity::from_score(8.9), CvssSeverity::High);
        assert_eq!(CvssSeverity::from_score(0.1), CvssSeverity::Low);
        assert_eq!(CvssSeverity::from_score(0.0), CvssSeverity::None);
    }
}
