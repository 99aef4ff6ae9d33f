//! CIRCL vulnerability-lookup (`https://vulnerability.circl.lu`), the successor of
//! cve.circl.lu / cve-search: a second source for records NVD has not analysed yet.
//!
//! The client asks `GET /api/vulnerability/{id}` (the documented route) and falls back
//! to the legacy `GET /api/cve/{id}` on 404. Answers come in two shapes, both read
//! here: the CVE JSON 5 record (`dataType: CVE_RECORD`) that vulnerability-lookup serves
//! for CVE ids, and the flat cve-search document (`id`, `summary`, `cvss`,
//! `vulnerable_configuration`) of the old service. CPE applicability comes from the
//! CVE 5 `affected` entries (their `cpes` where given, else vendor and product names,
//! versions and `lessThan` ranges) or from cve-search's `vulnerable_configuration`.
//! Records are stored with origin `circl`: an NVD record is never replaced by one.

use palisade_core::Timestamp;
use palisade_core::vuln::{
    Configuration, CpeMatch, Cve, CveOrigin, CvssMetric, CvssSeverity, CvssVersion, Description,
    Node, Operator, Reference, VersionBound,
};
use palisade_store::{CveUpsert, SharedStore};
use serde::Serialize;
use serde_json::Value;

use crate::TaskContext;
use crate::config::CirclConfig;
use crate::cpe::{Cpe, Part};
use crate::error::VulnError;
use crate::http::{self, RateLimiter};

/// A vulnerability-lookup client.
#[derive(Debug)]
pub struct CirclClient {
    http: reqwest::Client,
    config: CirclConfig,
    limiter: RateLimiter,
}

impl CirclClient {
    /// A client for the configured instance.
    pub fn new(config: &CirclConfig) -> Result<CirclClient, VulnError> {
        Ok(CirclClient {
            http: crate::http_client()?,
            limiter: RateLimiter::new(config.requests, config.rate_window.to_std()),
            config: config.clone(),
        })
    }

    /// One record, `None` when CIRCL does not know it.
    pub async fn fetch(&self, id: &str, ctx: &TaskContext<'_>) -> Result<Option<Cve>, VulnError> {
        if !is_cve_id(id) {
            return Err(VulnError::Parse(format!("not a CVE id: {id:?}")));
        }
        let base = self.config.url.trim_end_matches('/');
        for route in ["api/vulnerability", "api/cve"] {
            let url = format!("{base}/{route}/{id}");
            let found = http::get(
                &self.http,
                "circl",
                &url,
                &[],
                &[("accept", "application/json")],
                self.config.retry(),
                Some(&self.limiter),
                ctx,
                |body| {
                    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                    Ok(v)
                },
            )
            .await?;
            if let Some(v) = found {
                // An empty answer (`{}` or `null`) is "not known" too.
                if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
                    continue;
                }
                return parse_record(&v).map(Some);
            }
        }
        Ok(None)
    }
}

/// `CVE-YYYY-NNNN…`.
pub fn is_cve_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let mut parts = rest.splitn(2, '-');
    let (Some(year), Some(num)) = (parts.next(), parts.next()) else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=12).contains(&num.len())
        && num.bytes().all(|b| b.is_ascii_digit())
}

/// Reads either answer shape into a record.
pub fn parse_record(v: &Value) -> Result<Cve, VulnError> {
    if v.get("cveMetadata").is_some() {
        parse_cve5(v)
    } else if v.get("id").is_some() && (v.get("summary").is_some() || v.get("Published").is_some())
    {
        parse_legacy(v)
    } else {
        Err(VulnError::Parse(
            "not a CVE 5 record nor a cve-search document".into(),
        ))
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn time(v: &Value, key: &str) -> Option<Timestamp> {
    text(v, key).and_then(|t| Timestamp::parse_iso8601(t.as_bytes()).ok())
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn parse_cve5(v: &Value) -> Result<Cve, VulnError> {
    let meta = &v["cveMetadata"];
    let id = text(meta, "cveId")
        .filter(|id| is_cve_id(id))
        .ok_or_else(|| VulnError::Parse("CVE 5 record without a cveId".into()))?
        .to_owned();
    let published = time(meta, "datePublished")
        .or_else(|| time(meta, "dateReserved"))
        .ok_or_else(|| VulnError::Parse(format!("{id}: no datePublished")))?;
    let modified = time(meta, "dateUpdated").unwrap_or(published);
    let cna = &v["containers"]["cna"];
    let adp = array(&v["containers"], "adp");
    let mut metrics = Vec::new();
    let assigner = text(meta, "assignerShortName").unwrap_or("cna").to_owned();
    collect_cve5_metrics(cna, &assigner, true, &mut metrics);
    for a in adp {
        let who = text(&a["providerMetadata"], "shortName").unwrap_or("adp");
        collect_cve5_metrics(a, who, false, &mut metrics);
    }
    let mut cwes = Vec::new();
    for container in std::iter::once(cna).chain(adp.iter()) {
        for pt in array(container, "problemTypes") {
            for d in array(pt, "descriptions") {
                if let Some(cwe) = text(d, "cweId")
                    && !cwes.iter().any(|c| c == cwe)
                {
                    cwes.push(cwe.to_owned());
                }
            }
        }
    }
    let mut references: Vec<Reference> = Vec::new();
    for container in std::iter::once(cna).chain(adp.iter()) {
        for r in array(container, "references") {
            if let Some(url) = text(r, "url")
                && !references.iter().any(|x| x.url == url)
            {
                references.push(Reference {
                    url: url.to_owned(),
                    source: None,
                    tags: array(r, "tags")
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                });
            }
        }
    }
    let matches: Vec<CpeMatch> = array(cna, "affected").iter().flat_map(affected).collect();
    Ok(Cve {
        id,
        source_identifier: Some(assigner),
        published,
        modified,
        status: text(meta, "state").map(str::to_owned),
        descriptions: array(cna, "descriptions")
            .iter()
            .map(|d| Description {
                lang: text(d, "lang").unwrap_or("en").to_owned(),
                value: text(d, "value").unwrap_or_default().to_owned(),
            })
            .collect(),
        metrics,
        cwes,
        references,
        kev: None,
        configurations: configuration(matches),
        origin: CveOrigin::Circl,
    })
}

fn collect_cve5_metrics(container: &Value, source: &str, primary: bool, out: &mut Vec<CvssMetric>) {
    for m in array(container, "metrics") {
        for (key, version) in [
            ("cvssV4_0", CvssVersion::V40),
            ("cvssV3_1", CvssVersion::V31),
            ("cvssV3_0", CvssVersion::V30),
            ("cvssV2_0", CvssVersion::V2),
        ] {
            let Some(d) = m.get(key) else { continue };
            let Some(score) = d.get("baseScore").and_then(Value::as_f64) else {
                continue;
            };
            if !(0.0..=10.0).contains(&score) {
                continue;
            }
            out.push(CvssMetric {
                version,
                source: source.to_owned(),
                primary,
                vector: text(d, "vectorString").unwrap_or_default().to_owned(),
                base_score: score,
                severity: text(d, "baseSeverity")
                    .and_then(CvssSeverity::parse)
                    .unwrap_or_else(|| CvssSeverity::from_score(score)),
            });
        }
    }
}

/// A CVE 5 `affected` entry as CPE criteria.
fn affected(a: &Value) -> Vec<CpeMatch> {
    let name = |s: &str| {
        s.trim()
            .to_ascii_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("_")
    };
    let from_cpe = array(a, "cpes")
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|c| Cpe::parse(c).ok())
        .next();
    let (part, vendor, product) = match (&from_cpe, text(a, "vendor"), text(a, "product")) {
        (Some(c), _, _) => (c.part, c.vendor.clone(), c.product.clone()),
        (None, Some(v), Some(p)) if !v.is_empty() && !p.is_empty() => {
            (Part::Application, name(v), name(p))
        }
        _ => return Vec::new(),
    };
    // Only applications are matched (see applicability.rs); an OS entry here names the
    // distribution that ships the package, not something to match.
    if part != Part::Application {
        return Vec::new();
    }
    let criteria = |version: &str| Cpe::new(part, &vendor, &product, version).to_string();
    let unset = |s: &str| matches!(s, "" | "*" | "0" | "n/a" | "unspecified" | "-");
    let mut out = Vec::new();
    for ver in array(a, "versions") {
        if text(ver, "status") != Some("affected") {
            continue;
        }
        let version = text(ver, "version").unwrap_or_default();
        let end = text(ver, "lessThan")
            .map(|v| (v, false))
            .or_else(|| text(ver, "lessThanOrEqual").map(|v| (v, true)))
            .filter(|(v, _)| !unset(v));
        match end {
            Some((end, inclusive)) => out.push(CpeMatch {
                vulnerable: true,
                criteria: criteria("*"),
                start: (!unset(version)).then(|| VersionBound {
                    version: version.to_owned(),
                    inclusive: true,
                }),
                end: Some(VersionBound {
                    version: end.to_owned(),
                    inclusive,
                }),
                match_id: None,
            }),
            None if !unset(version) => out.push(CpeMatch {
                vulnerable: true,
                criteria: criteria(version),
                start: None,
                end: None,
                match_id: None,
            }),
            None => {}
        }
    }
    if out.is_empty() && text(a, "defaultStatus") == Some("affected") {
        out.push(CpeMatch {
            vulnerable: true,
            criteria: from_cpe.map_or_else(|| criteria("*"), |c| c.to_string()),
            start: None,
            end: None,
            match_id: None,
        });
    }
    out
}

fn configuration(matches: Vec<CpeMatch>) -> Vec<Configuration> {
    if matches.is_empty() {
        return Vec::new();
    }
    vec![Configuration {
        operator: Operator::Or,
        negate: false,
        nodes: vec![Node {
            operator: Operator::Or,
            negate: false,
            matches,
        }],
    }]
}

fn parse_legacy(v: &Value) -> Result<Cve, VulnError> {
    let id = text(v, "id")
        .filter(|id| is_cve_id(id))
        .ok_or_else(|| VulnError::Parse("cve-search document without a CVE id".into()))?
        .to_owned();
    let published =
        time(v, "Published").ok_or_else(|| VulnError::Parse(format!("{id}: no Published date")))?;
    let modified = time(v, "last-modified")
        .or_else(|| time(v, "Modified"))
        .unwrap_or(published);
    let metrics = v
        .get("cvss")
        .and_then(Value::as_f64)
        .filter(|s| (0.0..=10.0).contains(s))
        .map(|score| CvssMetric {
            version: CvssVersion::V2,
            source: text(v, "assigner").unwrap_or("cve-search").to_owned(),
            primary: false,
            vector: text(v, "cvss-vector").unwrap_or_default().to_owned(),
            base_score: score,
            severity: CvssSeverity::from_score(score),
        })
        .into_iter()
        .collect();
    let criteria: Vec<String> = array(v, "vulnerable_configuration")
        .iter()
        .filter_map(|c| c.as_str().or_else(|| text(c, "id")))
        .chain(
            array(v, "vulnerable_product")
                .iter()
                .filter_map(Value::as_str),
        )
        .map(str::to_owned)
        .collect();
    let mut matches: Vec<CpeMatch> = Vec::new();
    for c in criteria {
        if Cpe::parse(&c).is_ok_and(|cpe| cpe.part == Part::Application)
            && !matches.iter().any(|m| m.criteria == c)
        {
            matches.push(CpeMatch {
                vulnerable: true,
                criteria: c,
                start: None,
                end: None,
                match_id: None,
            });
        }
    }
    Ok(Cve {
        id,
        source_identifier: text(v, "assigner").map(str::to_owned),
        published,
        modified,
        status: None,
        descriptions: text(v, "summary")
            .map(|s| Description {
                lang: "en".into(),
                value: s.to_owned(),
            })
            .into_iter()
            .collect(),
        metrics,
        cwes: text(v, "cwe").map(str::to_owned).into_iter().collect(),
        references: array(v, "references")
            .iter()
            .filter_map(Value::as_str)
            .map(|url| Reference {
                url: url.to_owned(),
                source: None,
                tags: Vec::new(),
            })
            .collect(),
        kev: None,
        configurations: configuration(matches),
        origin: CveOrigin::Circl,
    })
}

/// What a CIRCL fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CirclSummary {
    /// Ids asked for.
    pub asked: u64,
    /// Ids CIRCL did not know.
    pub unknown: Vec<String>,
    /// Records stored as new, updated or unchanged (an NVD record is kept).
    #[schema(inline)]
    pub stored: CveUpsert,
}

/// Fetches the given CVE ids from CIRCL and stores them.
pub async fn fetch_ids(
    store: &SharedStore,
    client: &CirclClient,
    ids: &[String],
    ctx: &TaskContext<'_>,
) -> Result<CirclSummary, VulnError> {
    let mut summary = CirclSummary::default();
    let n = ids.len().max(1);
    for (i, id) in ids.iter().enumerate() {
        ctx.check()?;
        summary.asked += 1;
        match client.fetch(id, ctx).await? {
            Some(cve) => {
                let out = crate::nvd::store_records(store, vec![cve]).await?;
                summary.stored.inserted += out.inserted;
                summary.stored.updated += out.updated;
                summary.stored.unchanged += out.unchanged;
            }
            None => summary.unknown.push(id.clone()),
        }
        ctx.report(((i + 1) * 100 / n) as u8, id);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_cve_id("CVE-2021-44228"));
        assert!(is_cve_id("CVE-2023-1234567"));
        for bad in [
            "",
            "CVE-21-1",
            "CVE-2021-12",
            "cve-2021-44228",
            "CVE-2021-4422x",
            "CVE-2021-1/../x",
        ] {
            assert!(!is_cve_id(bad), "{bad}");
        }
    }

    #[test]
    fn affected_entries_become_criteria() {
        let a: Value = serde_json::from_str(
            r#"{"vendor": "Apache Software Foundation", "product": "Apache Log4j2",
                "versions": [{"version": "2.0-beta9", "lessThan": "2.15.0", "status": "affected"},
                             {"version": "2.16.0", "status": "unaffected"},
                             {"version": "2.3.1", "status": "affected"}]}"#,
        )
        .unwrap();
        let m = affected(&a);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0].criteria,
            "cpe:2.3:a:apache_software_foundation:apache_log4j2:*:*:*:*:*:*:*:*"
        );
        assert_eq!(
            m[0].start.as_ref().map(|b| b.version.as_str()),
            Some("2.0-beta9")
        );
        assert_eq!(
            m[0].end.as_ref().map(|b| (b.version.as_str(), b.inclusive)),
            Some(("2.15.0", false))
        );
        assert!(m[1].criteria.contains(":2.3.1:"));
        let os: Value = serde_json::from_str(
            r#"{"vendor": "Red Hat", "product": "RHEL 9", "defaultStatus": "affected",
                "cpes": ["cpe:/o:redhat:enterprise_linux:9"]}"#,
        )
        .unwrap();
        assert!(affected(&os).is_empty());
    }
}
