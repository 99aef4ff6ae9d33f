//! Known-vulnerable software in use: the open CVE matches the vulnerability matcher
//! keeps in the store (software from uploaded inventories, from the protecting
//! proxies' `Server` banners and from syslog), and whether the CVE data they were
//! matched against is current.

use std::collections::BTreeMap;

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::severity::Severity;
use palisade_core::vuln::{Confidence, CvssSeverity, MatchStatus, VulnMatch};
use palisade_store::{MAX_LIMIT, MatchQuery};
use serde::Serialize;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// CVE data whose newest record is older than this is stale: new CVEs are missed.
const STALE_DAYS: i64 = 7;

/// Software named in the finding's text; the rest is in the detail.
const NAMED: usize = 10;

/// The check.
pub struct VulnerableSoftware;

/// One piece of software on one asset with its open matches.
#[derive(Debug, Serialize)]
struct Vulnerable {
    asset: String,
    software: String,
    version: String,
    cves: Vec<String>,
    max_score: Option<f64>,
    worst: CvssSeverity,
    exploited: bool,
    /// Every match needs the distribution's own advisory to confirm (backports).
    needs_distro_advisory: bool,
}

impl Vulnerable {
    /// High or critical, or listed as exploited, and not waiting on a distribution
    /// advisory: a fail rather than a warning.
    fn serious(&self) -> bool {
        !self.needs_distro_advisory
            && (self.exploited || matches!(self.worst, CvssSeverity::High | CvssSeverity::Critical))
    }
}

/// The open matches grouped by asset, software and version, the serious first.
fn group(matches: &[VulnMatch]) -> Vec<Vulnerable> {
    let mut by: BTreeMap<(&str, &str, &str), Vulnerable> = BTreeMap::new();
    for m in matches {
        let v = by
            .entry((&m.asset, &m.software, &m.version))
            .or_insert_with(|| Vulnerable {
                asset: m.asset.clone(),
                software: m.software.clone(),
                version: m.version.clone(),
                cves: Vec::new(),
                max_score: None,
                worst: CvssSeverity::Unknown,
                exploited: false,
                needs_distro_advisory: true,
            });
        v.cves.push(m.cve_id.clone());
        v.max_score = match (v.max_score, m.score) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        v.worst = v.worst.max(m.severity);
        v.exploited |= m.kev;
        v.needs_distro_advisory &= m.confidence == Confidence::NeedsDistroAdvisory;
    }
    let mut list: Vec<Vulnerable> = by.into_values().collect();
    for v in &mut list {
        v.cves.sort();
        v.cves.dedup();
    }
    list.sort_by(|a, b| {
        (b.serious(), b.worst, b.max_score.unwrap_or(0.0))
            .partial_cmp(&(a.serious(), a.worst, a.max_score.unwrap_or(0.0)))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    list
}

fn describe(list: &[Vulnerable], more: bool) -> String {
    let mut parts: Vec<String> = list
        .iter()
        .take(NAMED)
        .map(|v| {
            let cves = if v.cves.len() > 3 {
                format!("{} and {} more", v.cves[..3].join(", "), v.cves.len() - 3)
            } else {
                v.cves.join(", ")
            };
            format!("{} {} on {} ({cves})", v.software, v.version, v.asset)
        })
        .collect();
    if list.len() > NAMED || more {
        parts.push("and more (GET /api/v1/vulnerabilities?status=open)".into());
    }
    parts.join("; ")
}

#[async_trait]
impl PostureCheck for VulnerableSoftware {
    fn id(&self) -> &'static str {
        "vulnerable_software"
    }

    fn title(&self) -> &'static str {
        "No known-vulnerable software in use"
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let checked = "open CVE matches of the software in inventories, proxied answers and \
                       syslog, and the age of the CVE data";
        let stats = match ctx.store.cve_stats().await {
            Ok(stats) => stats,
            Err(e) => return Finding::error(checked, format!("cannot read the CVE data: {e}")),
        };
        let query = MatchQuery {
            status: Some(MatchStatus::Open),
            limit: MAX_LIMIT,
            ..MatchQuery::default()
        };
        let page = match ctx.store.query_matches(&query).await {
            Ok(page) => page,
            Err(e) => return Finding::error(checked, format!("cannot read the matches: {e}")),
        };
        let list = group(&page.items);
        let more = page.next_cursor.is_some();
        let cutoff = ctx.now.add_micros(-STALE_DAYS * 86_400_000_000);
        let updated: Option<Timestamp> = stats.latest_modified;
        let stale = updated.is_none_or(|t| t < cutoff);
        let detail = serde_json::json!({
            "cve_records": stats.count,
            "cve_data_newest": updated,
            "vulnerable": list,
        });
        let fix_versions = "upgrade the software named (GET /api/v1/vulnerabilities gives each \
                            CVE's fixed versions), or set a match's status to accepted with the \
                            reason";
        let finding = if list.iter().any(Vulnerable::serious) {
            Finding::fail(checked, describe(&list, more), fix_versions)
        } else if !list.is_empty() {
            Finding::warn(
                checked,
                format!(
                    "medium or low severity, or waiting on a distribution advisory: {}",
                    describe(&list, more)
                ),
                fix_versions,
            )
        } else if stats.count == 0 {
            Finding::warn(
                checked,
                "no CVE records are stored, so nothing can be matched",
                "run the fetch_nvd job (palisade jobs run fetch_nvd --wait), schedule it, or \
                 import saved NVD pages (palisade vuln import)",
            )
        } else if stale {
            Finding::warn(
                checked,
                format!(
                    "nothing vulnerable found, but the newest of the {} CVE records is older \
                     than {STALE_DAYS} days: newer CVEs are missed",
                    stats.count
                ),
                "schedule the fetch_nvd job (e.g. daily) so the CVE data stays current",
            )
        } else {
            Finding::pass(
                checked,
                format!("no open match against {} current CVE records", stats.count),
            )
        };
        finding.with_detail(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::vuln::Confidence;

    fn m(asset: &str, sw: &str, cve: &str, sev: CvssSeverity, conf: Confidence) -> VulnMatch {
        VulnMatch {
            id: 1,
            asset: asset.into(),
            cve_id: cve.into(),
            product: format!("vendor:{sw}"),
            software: sw.into(),
            version: "1.0".into(),
            severity: sev,
            score: Some(5.0),
            confidence: conf,
            kev: false,
            status: MatchStatus::Open,
            status_comment: None,
            status_by: None,
            status_at: None,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
        }
    }

    #[test]
    fn matches_group_per_software_and_the_serious_come_first() {
        let list = group(&[
            m(
                "web",
                "openssl",
                "CVE-2",
                CvssSeverity::Medium,
                Confidence::High,
            ),
            m(
                "web",
                "nginx",
                "CVE-1",
                CvssSeverity::Critical,
                Confidence::High,
            ),
            m("web", "nginx", "CVE-3", CvssSeverity::Low, Confidence::High),
            m(
                "db",
                "bash",
                "CVE-4",
                CvssSeverity::Critical,
                Confidence::NeedsDistroAdvisory,
            ),
        ]);
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].software, "nginx");
        assert_eq!(list[0].cves, ["CVE-1", "CVE-3"]);
        assert!(list[0].serious());
        // A backported distribution package is not called vulnerable outright.
        assert!(list.iter().all(|v| v.software != "bash" || !v.serious()));
        assert!(describe(&list, false).starts_with("nginx 1.0 on web (CVE-1, CVE-3)"));
    }

    #[tokio::test]
    async fn an_empty_store_says_there_is_no_cve_data() {
        let f = crate::posture::checks::testing::Fixed::default();
        let x = crate::posture::checks::testing::run(&VulnerableSoftware, &f, false).await;
        assert_eq!(x.status, palisade_core::posture::CheckStatus::Warn);
        assert!(x.found.contains("no CVE records"), "{}", x.found);
    }
}
