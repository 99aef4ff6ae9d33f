//! NVD CVE API 2.0 JSON: response pages (`{"resultsPerPage", "startIndex",
//! "totalResults", "vulnerabilities": [{"cve": {…}}]}`) and bare `cve` objects (the
//! fkie-cad per-CVE files), into [`Cve`] records.
//!
//! Lenient where the data is: unknown fields are ignored (`cveTags`, `affected`, …),
//! a timestamp with or without a zone is read, and `totalResults` is not trusted (some
//! recorded envelopes disagree with their own contents). A record that cannot be read
//! (no id, a bad date) is reported on its own and the rest of the page still counts;
//! a page that is not JSON at all (a truncated answer) is an error.

use palisade_core::Timestamp;
use palisade_core::vuln::{
    Configuration, CpeMatch, Cve, CveOrigin, CvssMetric, CvssSeverity, CvssVersion, Description,
    Kev, Node, Operator, Reference, VersionBound,
};
use serde::Deserialize;

/// One page of the API (or a file holding one).
#[derive(Debug)]
pub struct Page {
    /// `resultsPerPage` as the page says.
    pub results_per_page: u64,
    /// `startIndex` as the page says.
    pub start_index: u64,
    /// `totalResults` as the page says (not to be trusted blindly).
    pub total_results: u64,
    /// `timestamp`, when it could be read.
    pub timestamp: Option<Timestamp>,
    /// The records read.
    pub cves: Vec<Cve>,
    /// Records that could not be read: `(position in the page, why)`.
    pub rejected: Vec<(usize, String)>,
    /// How many entries the page held.
    pub entries: usize,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or not the shape of a page or a record (a truncated answer).
    #[error("not an NVD API 2.0 page: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPage {
    #[serde(default)]
    results_per_page: u64,
    #[serde(default)]
    start_index: u64,
    #[serde(default)]
    total_results: u64,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    vulnerabilities: Vec<RawItem>,
}

#[derive(Deserialize)]
struct RawItem {
    cve: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCve {
    id: String,
    #[serde(default)]
    source_identifier: Option<String>,
    published: String,
    last_modified: String,
    #[serde(default)]
    vuln_status: Option<String>,
    #[serde(default)]
    descriptions: Vec<RawText>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    weaknesses: Vec<RawWeakness>,
    #[serde(default)]
    references: Vec<RawReference>,
    #[serde(default)]
    cisa_exploit_add: Option<String>,
    #[serde(default)]
    cisa_action_due: Option<String>,
    #[serde(default)]
    cisa_required_action: Option<String>,
    #[serde(default)]
    cisa_vulnerability_name: Option<String>,
    #[serde(default)]
    configurations: Vec<RawConfig>,
}

#[derive(Deserialize)]
struct RawText {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawMetrics {
    #[serde(default)]
    cvss_metric_v40: Vec<RawMetric>,
    #[serde(default)]
    cvss_metric_v31: Vec<RawMetric>,
    #[serde(default)]
    cvss_metric_v30: Vec<RawMetric>,
    #[serde(default)]
    cvss_metric_v2: Vec<RawMetric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetric {
    #[serde(default)]
    source: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    cvss_data: RawCvssData,
    /// v2 keeps the rating beside the data.
    #[serde(default)]
    base_severity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCvssData {
    #[serde(default)]
    vector_string: String,
    base_score: f64,
    #[serde(default)]
    base_severity: Option<String>,
}

#[derive(Deserialize)]
struct RawWeakness {
    #[serde(default)]
    description: Vec<RawText>,
}

#[derive(Deserialize)]
struct RawReference {
    url: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNode {
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    cpe_match: Vec<RawCpeMatch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCpeMatch {
    #[serde(default)]
    vulnerable: bool,
    criteria: String,
    #[serde(default)]
    match_criteria_id: Option<String>,
    #[serde(default)]
    version_start_including: Option<String>,
    #[serde(default)]
    version_start_excluding: Option<String>,
    #[serde(default)]
    version_end_including: Option<String>,
    #[serde(default)]
    version_end_excluding: Option<String>,
}

/// Reads a page (or a bare `cve` object, or a `{"cve": …}` item) from JSON text.
pub fn parse_page(body: &[u8]) -> Result<Page, ParseError> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    let is_bare = value.get("id").is_some() && value.get("published").is_some();
    let is_item = value.get("cve").is_some() && value.get("vulnerabilities").is_none();
    let raw: RawPage = if is_bare || is_item {
        let cve = if is_bare {
            value
        } else {
            value.get("cve").cloned().unwrap_or_default()
        };
        RawPage {
            results_per_page: 1,
            start_index: 0,
            total_results: 1,
            timestamp: None,
            vulnerabilities: vec![RawItem { cve }],
        }
    } else {
        serde_json::from_value(value)?
    };
    let entries = raw.vulnerabilities.len();
    let mut cves = Vec::with_capacity(entries);
    let mut rejected = Vec::new();
    for (i, item) in raw.vulnerabilities.into_iter().enumerate() {
        match serde_json::from_value::<RawCve>(item.cve)
            .map_err(|e| e.to_string())
            .and_then(convert)
        {
            Ok(c) => cves.push(c),
            Err(why) => rejected.push((i, why)),
        }
    }
    Ok(Page {
        results_per_page: raw.results_per_page,
        start_index: raw.start_index,
        total_results: raw.total_results,
        timestamp: raw
            .timestamp
            .and_then(|t| Timestamp::parse_iso8601(t.as_bytes()).ok()),
        cves,
        rejected,
        entries,
    })
}

fn time(field: &str, text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_iso8601(text.trim().as_bytes()).map_err(|e| format!("{field} {text:?}: {e:?}"))
}

fn operator(s: Option<&str>) -> Operator {
    match s {
        Some(o) if o.eq_ignore_ascii_case("and") => Operator::And,
        _ => Operator::Or,
    }
}

fn convert(raw: RawCve) -> Result<Cve, String> {
    let id = raw.id.trim().to_owned();
    if !id.starts_with("CVE-") || id.len() > 32 {
        return Err(format!("not a CVE id: {id:?}"));
    }
    let mut metrics = Vec::new();
    for (version, list) in [
        (CvssVersion::V40, raw.metrics.cvss_metric_v40),
        (CvssVersion::V31, raw.metrics.cvss_metric_v31),
        (CvssVersion::V30, raw.metrics.cvss_metric_v30),
        (CvssVersion::V2, raw.metrics.cvss_metric_v2),
    ] {
        for m in list {
            let score = m.cvss_data.base_score;
            if !(0.0..=10.0).contains(&score) {
                continue;
            }
            let severity = m
                .cvss_data
                .base_severity
                .as_deref()
                .or(m.base_severity.as_deref())
                .and_then(CvssSeverity::parse)
                .unwrap_or_else(|| CvssSeverity::from_score(score));
            metrics.push(CvssMetric {
                version,
                source: m.source,
                primary: m.kind.as_deref() == Some("Primary"),
                vector: m.cvss_data.vector_string,
                base_score: score,
                severity,
            });
        }
    }
    let mut cwes: Vec<String> = Vec::new();
    for w in raw.weaknesses {
        for d in w.description {
            if !d.value.is_empty() && !cwes.contains(&d.value) {
                cwes.push(d.value);
            }
        }
    }
    let kev = raw.cisa_exploit_add.map(|added| Kev {
        added,
        due: raw.cisa_action_due,
        required_action: raw.cisa_required_action,
        name: raw.cisa_vulnerability_name,
    });
    let configurations = raw
        .configurations
        .into_iter()
        .map(|c| Configuration {
            operator: operator(c.operator.as_deref()),
            negate: c.negate,
            nodes: c
                .nodes
                .into_iter()
                .map(|n| Node {
                    operator: operator(n.operator.as_deref()),
                    negate: n.negate,
                    matches: n.cpe_match.into_iter().map(cpe_match).collect(),
                })
                .collect(),
        })
        .collect();
    Ok(Cve {
        published: time("published", &raw.published)?,
        modified: time("lastModified", &raw.last_modified)?,
        id,
        source_identifier: raw.source_identifier,
        status: raw.vuln_status,
        descriptions: raw
            .descriptions
            .into_iter()
            .map(|d| Description {
                lang: d.lang,
                value: d.value,
            })
            .collect(),
        metrics,
        cwes,
        references: raw
            .references
            .into_iter()
            .map(|r| Reference {
                url: r.url,
                source: r.source,
                tags: r.tags,
            })
            .collect(),
        kev,
        configurations,
        origin: CveOrigin::Nvd,
    })
}

fn cpe_match(m: RawCpeMatch) -> CpeMatch {
    let bound = |incl: Option<String>, excl: Option<String>| match (incl, excl) {
        (Some(v), _) => Some(VersionBound {
            version: v,
            inclusive: true,
        }),
        (None, Some(v)) => Some(VersionBound {
            version: v,
            inclusive: false,
        }),
        (None, None) => None,
    };
    CpeMatch {
        vulnerable: m.vulnerable,
        criteria: m.criteria,
        start: bound(m.version_start_including, m.version_start_excluding),
        end: bound(m.version_end_including, m.version_end_excluding),
        match_id: m.match_criteria_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_pages_are_errors_and_bad_records_are_reported() {
        assert!(
            parse_page(br#"{"resultsPerPage": 2, "vulnerabilities": [{"cve": {"id": "#).is_err()
        );
        assert!(parse_page(b"").is_err());
        let page = parse_page(
            br#"{"resultsPerPage": 2, "startIndex": 0, "totalResults": 2,
                 "timestamp": "2023-11-26T23:42:27.193Z",
                 "vulnerabilities": [
                   {"cve": {"id": "CVE-2020-0001", "published": "2020-01-01T00:00:00.000",
                            "lastModified": "2020-01-02T00:00:00", "unknownField": [1]}},
                   {"cve": {"id": "CVE-2020-0002", "published": "yesterday",
                            "lastModified": "2020-01-02T00:00:00"}},
                   {"cve": {"published": "2020-01-01T00:00:00"}}
                 ]}"#,
        )
        .unwrap();
        assert_eq!(page.entries, 3);
        assert_eq!(page.cves.len(), 1);
        assert_eq!(
            page.rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(page.timestamp.is_some());
        assert!(page.cves[0].configurations.is_empty());
    }

    #[test]
    fn bare_records_are_pages_of_one() {
        let page = parse_page(
            br#"{"id": "CVE-2020-0001", "published": "2020-01-01T00:00:00.000",
                 "lastModified": "2020-01-02T00:00:00.000",
                 "metrics": {"cvssMetricV2": [{"source": "nvd@nist.gov", "type": "Primary",
                    "cvssData": {"version": "2.0", "vectorString": "AV:N", "baseScore": 9.3},
                    "baseSeverity": "HIGH"}]},
                 "configurations": [{"operator": "AND", "nodes": [{"operator": "OR",
                    "negate": false, "cpeMatch": [{"vulnerable": true,
                    "criteria": "cpe:2.3:a:x:y:*:*:*:*:*:*:*:*",
                    "versionStartExcluding": "1.0", "versionEndIncluding": "2.0"}]}]}]}"#,
        )
        .unwrap();
        let c = &page.cves[0];
        assert_eq!(c.severity(), CvssSeverity::High);
        assert_eq!(c.configurations[0].operator, Operator::And);
        let m = &c.configurations[0].nodes[0].matches[0];
        assert_eq!(m.start.as_ref().map(|b| b.inclusive), Some(false));
        assert_eq!(m.end.as_ref().map(|b| b.inclusive), Some(true));
    }
}
