//! The matching engine: grouped linear-time regex sets and CRS-style anomaly scoring.
//!
//! Rules sharing a target and transformation chain form a group; a literal prefilter
//! ([`crate::prefilter`]) runs one Aho-Corasick pass over a value and only the rules
//! whose required literals it contains run their regexes (rules without such literals
//! run as one `RegexSet`), so a benign value costs one linear scan per group; transformed values are cached per part and chain, so
//! no value is transformed twice in one inspection. Everything is in an `Arc`, so an
//! engine is cheap to clone and can be swapped atomically on hot reload.

use std::borrow::Cow;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use crate::prefilter::Prefilter;

use crate::request::{HttpRequest, Part, parse};
use crate::rules::{Category, Exclusion, Rule, RuleSet, Severity, Target};
use crate::transform::{Transform, apply_chain};

/// Longest matched text kept as evidence (chars).
pub const MAX_MATCHED: usize = 200;
/// Longest decoded value kept as evidence (chars).
pub const MAX_DECODED: usize = 500;

const SET_SIZE_LIMIT: usize = 64 * 1024 * 1024;

/// Tuning knobs, as in OWASP CRS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Paranoia level 1–4: rules above it do not run (higher catches more, and more
    /// false positives). Out-of-range values are clamped.
    pub paranoia: u8,
    /// Inbound anomaly score at or above which a request is blocked.
    pub threshold: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            paranoia: 1,
            threshold: 5,
        }
    }
}

/// One rule that matched, with the evidence needed to explain the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's id.
    pub rule_id: u32,
    /// The rule's name.
    pub name: String,
    /// The attack family.
    pub category: Category,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's paranoia level.
    pub paranoia: u8,
    /// Where the matched part was (e.g. `query_arg`, `header`).
    pub location: String,
    /// The part's name (argument, header, cookie, JSON path); empty if none.
    pub name_of_part: String,
    /// The value after the rule's transformations (at most 500 chars).
    pub decoded_value: String,
    /// The matched text (at most 200 chars).
    pub matched: String,
}

/// The outcome of inspecting one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Sum of the severity points of the matching rules.
    pub score: u32,
    /// The configured threshold.
    pub threshold: u32,
    /// `score >= threshold`.
    pub blocked: bool,
    /// One finding per matching rule, in rule order.
    pub findings: Vec<Finding>,
}

/// Rules of one (target, transform chain) compiled together.
#[derive(Debug)]
struct Group {
    target: Target,
    chain: usize,
    /// Which rules can match a value at all (a literal pass); the rest are skipped.
    prefilter: Prefilter,
    regexes: Vec<Regex>,
    rules: Vec<usize>,
}

/// Rules whose operator is a detector function rather than a regex.
#[derive(Debug)]
struct Detector {
    target: Target,
    chain: usize,
    rule: usize,
}

#[derive(Debug)]
struct Inner {
    config: EngineConfig,
    rules: Vec<Rule>,
    chains: Vec<Vec<Transform>>,
    groups: Vec<Group>,
    detectors: Vec<Detector>,
    exclusions: Vec<Exclusion>,
    unsupported: Vec<u32>,
}

/// A compiled rule set plus configuration; `Send + Sync`, and cloning is one `Arc` bump.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Compiles the rules active at `config.paranoia` into grouped regex sets.
    pub fn new(ruleset: RuleSet, config: EngineConfig) -> Engine {
        let config = EngineConfig {
            paranoia: config.paranoia.clamp(1, 4),
            ..config
        };
        let rules: Vec<Rule> = ruleset
            .rules
            .into_iter()
            .filter(|r| r.paranoia <= config.paranoia)
            .collect();
        let mut chains: Vec<Vec<Transform>> = Vec::new();
        let mut chain_id = |c: &[Transform]| match chains.iter().position(|x| x == c) {
            Some(i) => i,
            None => {
                chains.push(c.to_vec());
                chains.len() - 1
            }
        };
        // (target, chain) -> (sources, rule indices)
        let mut grouped: Vec<(Target, usize, Vec<String>, Vec<usize>)> = Vec::new();
        let mut detectors = Vec::new();
        let mut unsupported = Vec::new();
        for (ri, rule) in rules.iter().enumerate() {
            let chain = chain_id(&rule.transforms);
            match rule.operator.regex_source() {
                Some(src) => {
                    for t in &rule.targets {
                        match grouped.iter_mut().find(|g| g.0 == *t && g.1 == chain) {
                            Some(g) => {
                                g.2.push(src.clone());
                                g.3.push(ri);
                            }
                            None => grouped.push((t.clone(), chain, vec![src.clone()], vec![ri])),
                        }
                    }
                }
                None => {
                    if crate::injection::available() {
                        for t in &rule.targets {
                            detectors.push(Detector {
                                target: t.clone(),
                                chain,
                                rule: ri,
                            });
                        }
                    } else {
                        unsupported.push(rule.id);
                    }
                }
            }
        }
        let groups = grouped
            .into_iter()
            .map(|(target, chain, sources, rule_idx)| {
                // Each source was validated when the rule was loaded; one that still
                // fails here (it cannot) is dropped rather than panicking.
                let mut kept: Vec<&str> = Vec::with_capacity(sources.len());
                let mut regexes = Vec::with_capacity(sources.len());
                let mut rules = Vec::with_capacity(sources.len());
                for (s, r) in sources.iter().zip(rule_idx) {
                    if let Ok(re) = RegexBuilder::new(s).size_limit(SET_SIZE_LIMIT).build() {
                        kept.push(s);
                        regexes.push(re);
                        rules.push(r);
                    }
                }
                Group {
                    target,
                    chain,
                    prefilter: Prefilter::new(&kept, SET_SIZE_LIMIT),
                    regexes,
                    rules,
                }
            })
            .collect();
        Engine {
            inner: Arc::new(Inner {
                config,
                rules,
                chains,
                groups,
                detectors,
                exclusions: ruleset.exclusions,
                unsupported,
            }),
        }
    }

    /// The effective configuration.
    pub fn config(&self) -> EngineConfig {
        self.inner.config
    }

    /// Ids of active rules whose operator is unavailable in this build (the libinjection
    /// operators without `palisade-injection`), so operators know what is not enforced.
    pub fn unsupported_rules(&self) -> &[u32] {
        &self.inner.unsupported
    }

    /// Number of rules active at the configured paranoia level.
    pub fn active_rules(&self) -> usize {
        self.inner.rules.len()
    }

    /// Inspects one request and scores it.
    pub fn inspect(&self, req: &HttpRequest) -> Verdict {
        let inner = &*self.inner;
        let parsed = parse(req, inner.config.paranoia);
        let mut hits: Vec<Option<Finding>> = vec![None; inner.rules.len()];
        let (mut scratch, mut matched) = (Vec::new(), Vec::new());
        for part in &parsed.parts {
            let mut cache: Vec<Option<Cow<'_, str>>> = vec![None; inner.chains.len()];
            for g in &inner.groups {
                if !g.target.matches(part) {
                    continue;
                }
                let value = transformed(&mut cache, &inner.chains, g.chain, &part.value);
                g.prefilter.matches(value, &mut scratch, &mut matched, |i| {
                    g.regexes.get(i).is_some_and(|r| r.is_match(value))
                });
                for &i in &matched {
                    let (Some(&ri), Some(re)) = (g.rules.get(i), g.regexes.get(i)) else {
                        continue;
                    };
                    let text = re.find(value).map(|m| m.as_str()).unwrap_or("");
                    record(inner, &mut hits, ri, &parsed.path, part, value, text);
                }
            }
            for d in &inner.detectors {
                if !d.target.matches(part) {
                    continue;
                }
                let value = transformed(&mut cache, &inner.chains, d.chain, &part.value);
                let Some(rule) = inner.rules.get(d.rule) else {
                    continue;
                };
                if let Some(m) = crate::injection::detect(&rule.operator, value) {
                    record(inner, &mut hits, d.rule, &parsed.path, part, value, &m);
                }
            }
        }
        let findings: Vec<Finding> = hits.into_iter().flatten().collect();
        let score = findings.iter().map(|f| f.severity.points()).sum();
        Verdict {
            score,
            threshold: inner.config.threshold,
            blocked: score >= inner.config.threshold,
            findings,
        }
    }
}

fn transformed<'c, 'p: 'c>(
    cache: &'c mut [Option<Cow<'p, str>>],
    chains: &[Vec<Transform>],
    chain: usize,
    value: &'p str,
) -> &'c str {
    let steps = chains.get(chain).map(Vec::as_slice).unwrap_or(&[]);
    match cache.get_mut(chain) {
        Some(slot) => slot.get_or_insert_with(|| apply_chain(steps, value)),
        None => value,
    }
}

fn cap(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn record(
    inner: &Inner,
    hits: &mut [Option<Finding>],
    ri: usize,
    path: &str,
    part: &Part,
    value: &str,
    matched: &str,
) {
    let (Some(slot), Some(rule)) = (hits.get_mut(ri), inner.rules.get(ri)) else {
        return;
    };
    if slot.is_some()
        || inner
            .exclusions
            .iter()
            .any(|e| e.applies(rule.id, path, part))
    {
        return;
    }
    *slot = Some(Finding {
        rule_id: rule.id,
        name: rule.name.clone(),
        category: rule.category,
        severity: rule.severity,
        paranoia: rule.paranoia,
        location: part.location.as_str().to_string(),
        name_of_part: part.name.clone(),
        decoded_value: cap(value, MAX_DECODED),
        matched: cap(matched, MAX_MATCHED),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Engine>();
    }
}
