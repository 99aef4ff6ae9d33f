//! Whether a CVE applies to an asset: its CPE configurations evaluated against
//! everything the asset is known to run.
//!
//! # Rules
//!
//! - A configuration is a tree: nodes combine CPE matches with OR/AND, the
//!   configuration combines nodes with OR/AND; `negate` inverts. It applies when the
//!   tree is true *and* at least one vulnerable match was met by a piece of software:
//!   that software is what the finding names.
//! - A vulnerable match is met by an application identity with the same vendor and
//!   product whose version is in the range (`versionStart/End` `Including/Excluding`),
//!   or equal to the CPE's version and update when there is no range (`2.0:beta9` is
//!   `2.0-beta9`; `9.3:p1` is `9.3p1`; `9.3:-` is 9.3 without update). `*` and `-`
//!   versions without a range mean every version.
//! - Non-vulnerable matches are platforms ("running on Windows", "on this hardware"):
//!   met by any identity of that vendor and product. When the asset has no OS or
//!   hardware identity at all, a platform condition is *unknown*, not false: the
//!   finding is kept with [`Confidence::Medium`] instead of being dropped or asserted.
//! - OS and hardware CPEs listed as *vulnerable* are not matched. NVD lists a
//!   distribution release (`o:debian:debian_linux:11.0`) as vulnerable when it shipped
//!   an affected package, which is matched through the package itself; matching the
//!   release would flag every Debian 11 host for every such CVE.
//! - A finding through a distribution package is
//!   [`Confidence::NeedsDistroAdvisory`]: see `identify.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use palisade_core::vuln::{Confidence, Cve, FoundMatch, Operator, Software};

use crate::cpe::{ANY, Cpe, NA, Part};
use crate::identify::{Identity, identify};
use crate::version::{self, Version};

/// A CPE match criterion, parsed once.
#[derive(Debug, Clone)]
struct CompiledMatch {
    vulnerable: bool,
    cpe: Cpe,
    start: Option<(String, bool)>,
    end: Option<(String, bool)>,
}

#[derive(Debug, Clone)]
struct CompiledNode {
    operator: Operator,
    negate: bool,
    matches: Vec<CompiledMatch>,
}

#[derive(Debug, Clone)]
struct CompiledConfig {
    operator: Operator,
    negate: bool,
    nodes: Vec<CompiledNode>,
}

/// A CVE with its configurations parsed, to evaluate against many assets.
#[derive(Debug, Clone)]
pub struct CompiledCve {
    /// The record.
    pub cve: Arc<Cve>,
    configs: Vec<CompiledConfig>,
}

impl CompiledCve {
    /// Parses the record's CPE criteria (criteria that do not parse never match).
    pub fn new(cve: Arc<Cve>) -> CompiledCve {
        let configs = cve
            .configurations
            .iter()
            .map(|c| CompiledConfig {
                operator: c.operator,
                negate: c.negate,
                nodes: c
                    .nodes
                    .iter()
                    .map(|n| CompiledNode {
                        operator: n.operator,
                        negate: n.negate,
                        matches: n
                            .matches
                            .iter()
                            .filter_map(|m| {
                                Some(CompiledMatch {
                                    vulnerable: m.vulnerable,
                                    cpe: Cpe::parse(&m.criteria).ok()?,
                                    start: m
                                        .start
                                        .as_ref()
                                        .map(|b| (b.version.clone(), b.inclusive)),
                                    end: m.end.as_ref().map(|b| (b.version.clone(), b.inclusive)),
                                })
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        CompiledCve { cve, configs }
    }
}

/// The products a record's configurations name as vulnerable applications: what the
/// store indexes it under.
pub fn vulnerable_products(cve: &Cve) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for m in cve
        .configurations
        .iter()
        .flat_map(|c| &c.nodes)
        .flat_map(|n| &n.matches)
        .filter(|m| m.vulnerable)
    {
        if let Ok(cpe) = Cpe::parse(&m.criteria)
            && cpe.part == Part::Application
        {
            let key = (cpe.vendor, cpe.product);
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    out
}

/// An asset's software, identified once for many CVEs.
#[derive(Debug, Clone)]
pub struct Inventory {
    software: Vec<Software>,
    /// `(software index, identity)`.
    identities: Vec<(usize, Identity, Version)>,
    /// product → indexes into `identities`.
    by_product: HashMap<String, Vec<usize>>,
    has_platform: bool,
}

impl Inventory {
    /// Identifies every piece of software.
    pub fn new(software: Vec<Software>) -> Inventory {
        let mut identities = Vec::new();
        let mut by_product: HashMap<String, Vec<usize>> = HashMap::new();
        let mut has_platform = false;
        for (i, s) in software.iter().enumerate() {
            for id in identify(s) {
                has_platform |= id.part != Part::Application;
                let k = identities.len();
                for p in &id.products {
                    by_product.entry(p.clone()).or_default().push(k);
                }
                let v = Version::parse(&id.full_version());
                identities.push((i, id, v));
            }
        }
        Inventory {
            software,
            identities,
            by_product,
            has_platform,
        }
    }

    /// Every product name an identity may be listed under: what to ask the store for.
    pub fn products(&self) -> Vec<String> {
        let mut p: Vec<String> = self.by_product.keys().cloned().collect();
        p.sort_unstable();
        p
    }

    /// The software the inventory was built from.
    pub fn software(&self) -> &[Software] {
        &self.software
    }

    /// Whether an OS or hardware identity is known (else platform conditions are
    /// unknown).
    pub fn has_platform(&self) -> bool {
        self.has_platform
    }

    /// Identities (by index) that meet `m`.
    fn meeting(&self, m: &CompiledMatch) -> Vec<usize> {
        let Some(candidates) = self.by_product.get(&m.cpe.product) else {
            return Vec::new();
        };
        candidates
            .iter()
            .copied()
            .filter(|&k| {
                let (_, id, v) = &self.identities[k];
                meets(m, id, v)
            })
            .collect()
    }
}

/// Whether one identity meets one criterion.
fn meets(m: &CompiledMatch, id: &Identity, v: &Version) -> bool {
    if id.part != m.cpe.part || !id.is(&m.cpe.vendor, &m.cpe.product) {
        return false;
    }
    if let (Some(t), false) = (
        &id.target_sw,
        m.cpe.target_sw == ANY || m.cpe.target_sw == NA,
    ) && *t != m.cpe.target_sw
    {
        return false;
    }
    if !m.vulnerable {
        // A platform: the product is enough unless a version is named.
        return m.cpe.version == ANY
            || m.cpe.version == NA
            || id.version.is_empty()
            || version::compare(&id.version, &m.cpe.version).is_eq();
    }
    if m.start.is_some() || m.end.is_some() {
        if id.version.is_empty() {
            return false;
        }
        return version::in_range(v, bound(&m.start), bound(&m.end));
    }
    if m.cpe.version == ANY || m.cpe.version == NA {
        return true;
    }
    if id.version.is_empty() {
        return false;
    }
    let crit = Version::parse(&m.cpe.version);
    match m.cpe.update.as_str() {
        ANY => *v == crit || Version::parse(&id.version) == crit,
        NA => *v == crit,
        update => *v == Version::parse(&format!("{}-{update}", m.cpe.version)),
    }
}

fn bound(b: &Option<(String, bool)>) -> Option<version::Bound<'_>> {
    b.as_ref().map(|(version, inclusive)| version::Bound {
        version,
        inclusive: *inclusive,
    })
}

/// Three-valued truth: a platform condition may be unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Unknown,
}

fn combine(op: Operator, values: impl Iterator<Item = Tri>) -> Tri {
    let mut any_unknown = false;
    let mut any_true = false;
    let mut any_false = false;
    let mut empty = true;
    for v in values {
        empty = false;
        match v {
            Tri::True => any_true = true,
            Tri::False => any_false = true,
            Tri::Unknown => any_unknown = true,
        }
    }
    if empty {
        return Tri::False;
    }
    match op {
        Operator::Or if any_true => Tri::True,
        Operator::Or if any_unknown => Tri::Unknown,
        Operator::Or => Tri::False,
        Operator::And if any_false => Tri::False,
        Operator::And if any_unknown => Tri::Unknown,
        Operator::And => Tri::True,
    }
}

fn negate(t: Tri, yes: bool) -> Tri {
    match (t, yes) {
        (Tri::True, true) => Tri::False,
        (Tri::False, true) => Tri::True,
        (t, _) => t,
    }
}

/// One way a CVE applies: the software that meets it, and how sure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the software in the inventory.
    pub software: usize,
    /// NVD `vendor:product` it met.
    pub product: String,
    /// How sure.
    pub confidence: Confidence,
}

/// Every way `cve` applies to the inventory (empty when it does not).
pub fn evaluate(cve: &CompiledCve, inv: &Inventory) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    for config in &cve.configs {
        let mut met: Vec<(usize, String)> = Vec::new();
        let nodes = config.nodes.iter().map(|node| {
            let values = node.matches.iter().map(|m| {
                if m.vulnerable && m.cpe.part != Part::Application {
                    return Tri::False;
                }
                if !m.vulnerable && m.cpe.part != Part::Application && !inv.has_platform {
                    return Tri::Unknown;
                }
                let meeting = inv.meeting(m);
                if meeting.is_empty() {
                    return Tri::False;
                }
                if m.vulnerable && !node.negate {
                    for k in meeting {
                        let software = inv.identities[k].0;
                        met.push((software, m.cpe.product_key()));
                    }
                }
                Tri::True
            });
            let value = combine(node.operator, values.collect::<Vec<_>>().into_iter());
            negate(value, node.negate)
        });
        let nodes: Vec<Tri> = nodes.collect();
        let value = negate(combine(config.operator, nodes.into_iter()), config.negate);
        let platform_confidence = match value {
            Tri::False => continue,
            Tri::True => Confidence::High,
            Tri::Unknown => Confidence::Medium,
        };
        for (software, product) in met {
            let confidence = if inv
                .identities
                .iter()
                .any(|(i, id, _)| *i == software && id.distro.is_some())
            {
                Confidence::NeedsDistroAdvisory
            } else {
                platform_confidence
            };
            match hits
                .iter_mut()
                .find(|h| h.software == software && h.product == product)
            {
                Some(h) if confidence > h.confidence => h.confidence = confidence,
                Some(_) => {}
                None => hits.push(Hit {
                    software,
                    product,
                    confidence,
                }),
            }
        }
    }
    hits
}

/// The findings of one CVE on one inventory, one per `vendor:product` (the most
/// confident hit wins; its software is named).
pub fn findings(cve: &CompiledCve, inv: &Inventory) -> Vec<FoundMatch> {
    let mut out: Vec<FoundMatch> = Vec::new();
    for hit in evaluate(cve, inv) {
        let s = &inv.software[hit.software];
        let candidate = FoundMatch {
            cve_id: cve.cve.id.clone(),
            product: hit.product.clone(),
            software: s.name.clone(),
            version: s.version.clone(),
            severity: cve.cve.severity(),
            score: cve.cve.score(),
            confidence: hit.confidence,
            kev: cve.cve.kev.is_some(),
        };
        match out.iter_mut().find(|f| f.product == hit.product) {
            Some(f) if candidate.confidence > f.confidence => *f = candidate,
            Some(_) => {}
            None => out.push(candidate),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use palisade_core::Timestamp;
    use palisade_core::vuln::{
        Configuration, CpeMatch, CveOrigin, Node, SoftwareSource, VersionBound,
    };

    use super::*;

    fn m(
        vulnerable: bool,
        criteria: &str,
        start: Option<(&str, bool)>,
        end: Option<(&str, bool)>,
    ) -> CpeMatch {
        let b = |x: Option<(&str, bool)>| {
            x.map(|(v, inclusive)| VersionBound {
                version: v.into(),
                inclusive,
            })
        };
        CpeMatch {
            vulnerable,
            criteria: criteria.into(),
            start: b(start),
            end: b(end),
            match_id: None,
        }
    }

    fn cve(configs: Vec<Configuration>) -> CompiledCve {
        CompiledCve::new(Arc::new(Cve {
            id: "CVE-TEST".into(),
            source_identifier: None,
            published: Timestamp(0),
            modified: Timestamp(0),
            status: None,
            descriptions: vec![],
            metrics: vec![],
            cwes: vec![],
            references: vec![],
            kev: None,
            configurations: configs,
            origin: CveOrigin::Nvd,
        }))
    }

    fn or(matches: Vec<CpeMatch>) -> Configuration {
        Configuration {
            operator: Operator::Or,
            negate: false,
            nodes: vec![Node {
                operator: Operator::Or,
                negate: false,
                matches,
            }],
        }
    }

    fn and(app: Vec<CpeMatch>, platform: Vec<CpeMatch>) -> Configuration {
        Configuration {
            operator: Operator::And,
            negate: false,
            nodes: vec![
                Node {
                    operator: Operator::Or,
                    negate: false,
                    matches: app,
                },
                Node {
                    operator: Operator::Or,
                    negate: false,
                    matches: platform,
                },
            ],
        }
    }

    fn inv(items: &[(&str, &str, Option<&str>)]) -> Inventory {
        Inventory::new(
            items
                .iter()
                .map(|(name, version, cpe)| Software {
                    source: SoftwareSource::Http,
                    name: (*name).into(),
                    version: (*version).into(),
                    purl: None,
                    cpe: cpe.map(str::to_owned),
                    distro: None,
                })
                .collect(),
        )
    }

    #[test]
    fn exact_versions_and_updates() {
        let c = cve(vec![or(vec![
            m(
                true,
                "cpe:2.3:a:apache:log4j:2.0:beta9:*:*:*:*:*:*",
                None,
                None,
            ),
            m(true, "cpe:2.3:a:apache:log4j:2.0:-:*:*:*:*:*:*", None, None),
            m(
                true,
                "cpe:2.3:a:openbsd:openssh:9.3:p1:*:*:*:*:*:*",
                None,
                None,
            ),
        ])]);
        let hit = |name, v| !evaluate(&c, &inv(&[(name, v, None)])).is_empty();
        assert!(hit("log4j-core", "2.0-beta9"));
        assert!(hit("log4j-core", "2.0"));
        assert!(!hit("log4j-core", "2.0-beta8"));
        assert!(!hit("log4j-core", "2.0-rc1"));
        assert!(hit("openssh", "9.3p1"));
        assert!(!hit("openssh", "9.3"));
        assert!(!hit("openssh", "9.3p2"));
    }

    #[test]
    fn platform_conditions() {
        let c = cve(vec![and(
            vec![m(
                true,
                "cpe:2.3:a:paloaltonetworks:globalprotect:*:*:*:*:*:*:*:*",
                Some(("5.2", true)),
                Some(("5.2.9", false)),
            )],
            vec![m(
                false,
                "cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:*",
                None,
                None,
            )],
        )]);
        let gp = (
            "globalprotect",
            "5.2.8",
            Some("cpe:2.3:a:paloaltonetworks:globalprotect:*:*:*:*:*:*:*:*"),
        );
        let windows = (
            "Windows",
            "",
            Some("cpe:2.3:o:microsoft:windows:*:*:*:*:*:*:*:*"),
        );
        let linux = (
            "Linux",
            "",
            Some("cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*"),
        );
        let on_windows = evaluate(&c, &inv(&[gp, windows]));
        assert_eq!(on_windows.len(), 1);
        assert_eq!(on_windows[0].confidence, Confidence::High);
        assert!(
            evaluate(&c, &inv(&[gp, linux])).is_empty(),
            "known other platform"
        );
        let unknown = evaluate(&c, &inv(&[gp]));
        assert_eq!(
            unknown[0].confidence,
            Confidence::Medium,
            "platform unknown"
        );
        let fixed = ("globalprotect", "5.2.9", gp.2);
        assert!(evaluate(&c, &inv(&[fixed, windows])).is_empty());
        // A platform alone never makes a finding.
        assert!(evaluate(&c, &inv(&[windows])).is_empty());
    }

    #[test]
    fn vulnerable_operating_systems_are_not_matched() {
        let c = cve(vec![or(vec![m(
            true,
            "cpe:2.3:o:debian:debian_linux:12.0:*:*:*:*:*:*:*",
            None,
            None,
        )])]);
        let debian = (
            "debian",
            "12",
            Some("cpe:2.3:o:debian:debian_linux:12:*:*:*:*:*:*:*"),
        );
        assert!(evaluate(&c, &inv(&[debian])).is_empty());
    }

    #[test]
    fn negation_and_empty_nodes() {
        let mut config = or(vec![m(
            true,
            "cpe:2.3:a:x:y:*:*:*:*:*:*:*:*",
            None,
            Some(("2", false)),
        )]);
        config.negate = true;
        let c = cve(vec![config]);
        assert!(
            evaluate(
                &c,
                &inv(&[("y", "1", Some("cpe:2.3:a:x:y:*:*:*:*:*:*:*:*"))])
            )
            .is_empty()
        );
        let c = cve(vec![Configuration {
            operator: Operator::Or,
            negate: false,
            nodes: vec![],
        }]);
        assert!(evaluate(&c, &inv(&[("y", "1", None)])).is_empty());
    }

    #[test]
    fn products_of_a_record() {
        let c = cve(vec![or(vec![
            m(
                true,
                "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*",
                None,
                None,
            ),
            m(
                true,
                "cpe:2.3:o:fedoraproject:fedora:34:*:*:*:*:*:*:*",
                None,
                None,
            ),
            m(
                true,
                "cpe:2.3:a:apache:http_server:2.4.50:*:*:*:*:*:*:*",
                None,
                None,
            ),
            m(false, "cpe:2.3:a:x:platform:*:*:*:*:*:*:*:*", None, None),
            m(true, "junk", None, None),
        ])]);
        assert_eq!(
            vulnerable_products(&c.cve),
            [("apache".to_owned(), "http_server".to_owned())]
        );
    }
}
