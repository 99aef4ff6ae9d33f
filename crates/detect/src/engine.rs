//! The matching engine: grouped linear-time regex sets and CRS-style anomaly scoring.
//!
//! Rules sharing a target and transformation chain form a group; a literal prefilter
//! (`prefilter.rs`) picks the rules whose required literals a value contains, and
//! only those run their regexes (rules without such literals run as one `RegexSet` per
//! group). The literal pass is shared by every group that sees the same text
//! (`scan.rs`), so a benign value costs one linear scan per distinct transformed
//! value; transformed values are computed per part along the chains' prefix tree
//! (`chains.rs`), so no value is transformed twice in one inspection. Everything
//! is in an `Arc`, so an engine is cheap to clone and can be swapped atomically on hot
//! reload.

use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use crate::chains::{Chains, Values};
use crate::memo;
use crate::parallel;
use crate::prefilter::Prefilter;
use crate::scan::{self, LocationScan, ScanScratch};

use crate::request::{HttpRequest, Location, ParsedRequest, Part, parse};
use crate::rules::{Category, Exclusion, Rule, RuleSet, Severity, Target};
use crate::seclang::{LoadReport, Program};
use crate::text::first_chars;

/// Longest matched text kept as evidence (chars).
pub const MAX_MATCHED: usize = 200;
/// Longest decoded value kept as evidence (chars).
pub const MAX_DECODED: usize = 500;

const SET_SIZE_LIMIT: usize = 64 * 1024 * 1024;

thread_local! {
    /// The shared scan's working memory, reused from request to request.
    static SCRATCH: std::cell::RefCell<ScanScratch> = std::cell::RefCell::new(ScanScratch::default());
}

/// Source of [`Inner::id`].
static NEXT_ENGINE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

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
    /// The rule's tags (CRS rules: `attack-sqli`, `paranoia-level/1`, ...); empty for
    /// built-in rules, whose category says the same.
    pub tags: Vec<String>,
}

/// The outcome of inspecting one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Sum of the severity points of the matching built-in rules; with CRS rule files
    /// loaded, the larger of that and CRS's own inbound anomaly score (each rule set is
    /// scored on its own, so "both" blocks what either would block).
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
    /// Each rule's own regex, shared with every other group the rule targets (one
    /// compiled program and one per-thread search cache per distinct source).
    regexes: Vec<Arc<Regex>>,
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
    /// Unique per compiled engine, so the per-thread memo never mixes engines.
    id: u64,
    config: EngineConfig,
    rules: Vec<Rule>,
    /// Every rule's transformation chain, and their prefixes.
    chains: Chains,
    groups: Vec<Group>,
    /// Per location (`Location as usize`): the shared scan of the groups that can
    /// cover a part there.
    scans: Vec<LocationScan>,
    detectors: Vec<Detector>,
    exclusions: Vec<Exclusion>,
    unsupported: Vec<u32>,
    crs: Option<Arc<Program>>,
}

/// A compiled rule set plus configuration; `Send + Sync`, and cloning is one `Arc` bump.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Compiles the rules active at `config.paranoia` into grouped regex sets.
    pub fn new(ruleset: RuleSet, config: EngineConfig) -> Engine {
        Engine::with_crs(ruleset, config, None)
    }

    /// Like [`Engine::new`], plus loaded SecLang (OWASP CRS) rule files run beside the
    /// rules of `ruleset` (pass an empty rule set to use CRS alone).
    pub fn with_crs(ruleset: RuleSet, config: EngineConfig, crs: Option<Arc<Program>>) -> Engine {
        let config = EngineConfig {
            paranoia: config.paranoia.clamp(1, 4),
            ..config
        };
        let rules: Vec<Rule> = ruleset
            .rules
            .into_iter()
            .filter(|r| r.paranoia <= config.paranoia)
            .collect();
        let mut chains = Chains::default();
        // (target, chain) -> (sources, rule indices)
        let mut grouped: Vec<(Target, usize, Vec<String>, Vec<usize>)> = Vec::new();
        let mut detectors = Vec::new();
        let mut unsupported = Vec::new();
        for (ri, rule) in rules.iter().enumerate() {
            let chain = chains.id(&rule.transforms);
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
        // A rule with several targets is in several groups: its regex is compiled once
        // and shared (compiled per group, the built-in rules held ~3 copies of each).
        // The distinct sources are compiled on every core, then the groups' prefilters.
        let mut distinct: Vec<&str> = Vec::new();
        let mut position: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (_, _, sources, _) in &grouped {
            for s in sources {
                position.entry(s.as_str()).or_insert_with(|| {
                    distinct.push(s.as_str());
                    distinct.len() - 1
                });
            }
        }
        let compiled: Vec<Option<Arc<Regex>>> = parallel::map(&distinct, |s| {
            RegexBuilder::new(s)
                .size_limit(SET_SIZE_LIMIT)
                .build()
                .ok()
                .map(Arc::new)
        });
        let groups: Vec<Group> = parallel::map(&grouped, |(target, chain, sources, rule_idx)| {
            // Each source was validated when the rule was loaded; one that still
            // fails here (it cannot) is dropped rather than panicking.
            let mut kept: Vec<&str> = Vec::with_capacity(sources.len());
            let mut regexes = Vec::with_capacity(sources.len());
            let mut rules = Vec::with_capacity(sources.len());
            for (s, &r) in sources.iter().zip(rule_idx) {
                let re = position
                    .get(s.as_str())
                    .and_then(|&p| compiled.get(p))
                    .and_then(Option::clone);
                if let Some(re) = re {
                    kept.push(s);
                    regexes.push(re);
                    rules.push(r);
                }
            }
            Group {
                target: target.clone(),
                chain: *chain,
                prefilter: Prefilter::new(&kept, SET_SIZE_LIMIT),
                regexes,
                rules,
            }
        });
        let scans = location_scans(&groups);
        let mut groups = groups;
        release_unread_automata(&mut groups, &scans);
        Engine {
            inner: Arc::new(Inner {
                id: NEXT_ENGINE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                config,
                rules,
                chains,
                groups,
                scans,
                detectors,
                exclusions: ruleset.exclusions,
                unsupported,
                crs,
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

    /// Number of rules active at the configured paranoia level (built-in and user TOML
    /// rules; CRS rules are counted by [`Engine::crs_report`]).
    pub fn active_rules(&self) -> usize {
        self.inner.rules.len()
    }

    /// What the CRS rule files loaded, when any are.
    pub fn crs_report(&self) -> Option<&LoadReport> {
        self.inner.crs.as_deref().map(Program::report)
    }

    /// Inspects one request and scores it.
    pub fn inspect(&self, req: &HttpRequest) -> Verdict {
        self.inspect_parsed(req).0
    }

    /// [`Engine::inspect`], also handing back the request's parts when they are the
    /// ones a paranoia-1 parse gives for its arguments (the engine parsed the request
    /// at paranoia 1 or 2, which differ only in headers): so the per-endpoint baselines
    /// can reuse them instead of parsing the request a second time. `None` when the
    /// engine did not parse it (CRS rules alone) or parsed it at paranoia 3 or above.
    pub fn inspect_parsed(&self, req: &HttpRequest) -> (Verdict, Option<ParsedRequest>) {
        let inner = &*self.inner;
        // With CRS alone (no built-in rules) the engine's own parse is not needed.
        let parsed = if inner.rules.is_empty() {
            None
        } else {
            Some(parse(req, inner.config.paranoia))
        };
        let verdict = self.inspect_parts(req, parsed.as_ref());
        let reusable = parsed.filter(|_| inner.config.paranoia <= 2);
        (verdict, reusable)
    }

    fn inspect_parts(&self, req: &HttpRequest, parsed: Option<&ParsedRequest>) -> Verdict {
        let inner = &*self.inner;
        // Findings are kept by rule index (one per rule, the first that matched), and
        // put in rule order at the end: a handful at most, where a slot per active rule
        // cost an allocation and a write of every slot on every request.
        let mut hits: Vec<(usize, Finding)> = Vec::new();
        let empty = ParsedRequest::default();
        let parsed = parsed.unwrap_or(&empty);
        // The scan's working memory is kept per thread (four buffers a request less),
        // borrowed in place for the request (taking it out and putting it back copied
        // it twice); a nested use, which nothing does, gets a fresh one.
        SCRATCH.with(|kept| {
            let mut borrowed = kept.try_borrow_mut().ok();
            let mut own = None;
            let scratch = match borrowed.as_deref_mut() {
                Some(s) => s,
                None => own.insert(ScanScratch::default()),
            };
            inspect_each_part(inner, parsed, scratch, &mut hits);
        });
        hits.sort_unstable_by_key(|(ri, _)| *ri);
        let mut findings: Vec<Finding> = hits.into_iter().map(|(_, f)| f).collect();
        let mut score: u32 = findings.iter().map(|f| f.severity.points()).sum();
        if let Some(crs) = &inner.crs {
            let outcome = crs.run(req, inner.config.paranoia, inner.config.threshold);
            score = score.max(outcome.score);
            if outcome.denied {
                score = score.max(inner.config.threshold);
            }
            findings.extend(outcome.findings);
        }
        Verdict {
            score,
            threshold: inner.config.threshold,
            blocked: score >= inner.config.threshold,
            findings,
        }
    }
}

/// Runs the rules over each part of a request into `hits`: a part the memo holds
/// replays its recorded hits, any other is evaluated and kept.
fn inspect_each_part(
    inner: &Inner,
    parsed: &ParsedRequest,
    scratch: &mut ScanScratch,
    hits: &mut Vec<(usize, Finding)>,
) {
    let mut cache = Values::default();
    // The memo is borrowed once for the request, not once per part.
    memo::with_table(|mut table| {
        for part in &parsed.parts {
            // A part seen before (same engine, same place, name and value) replays
            // what the rules found in it then.
            let key = memo::key(part);
            if let (Some(t), Some(k)) = (table.as_deref(), key)
                && let Some(found) = t.hits(inner.id, k, part)
            {
                for h in found {
                    record(
                        inner,
                        hits,
                        h.rule,
                        &parsed.path,
                        part,
                        &h.decoded,
                        &h.matched,
                    );
                }
                continue;
            }
            let found = evaluate(inner, part, &mut cache, scratch);
            for h in &found {
                record(
                    inner,
                    hits,
                    h.rule,
                    &parsed.path,
                    part,
                    &h.decoded,
                    &h.matched,
                );
            }
            if let (Some(t), Some(k)) = (table.as_deref_mut(), key) {
                t.keep(inner.id, k, part, found);
            }
        }
    });
}

/// Locations whose shared scan is a full DFA rather than a contiguous NFA: the ones
/// where a benign log line's scanned bytes mostly are (the decoded path, its segments,
/// the user agent and referer). Measured per location (docs/BENCHMARKS.md, engine8):
/// these three save ~1,000 instructions a generated line for ~2.5 MB; the other
/// locations' DFAs cost more memory than they saved (the query values') or nothing.
const DFA_LOCATIONS: [Location; 3] = [Location::Path, Location::PathSegment, Location::HeaderValue];

/// The shared scan of each location, indexed by `Location as usize`.
fn location_scans(groups: &[Group]) -> Vec<LocationScan> {
    parallel::map(&Location::ALL, |&loc| {
        let candidates: Vec<(usize, &Prefilter)> = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.target.covers(loc))
            .map(|(gi, g)| (gi, &g.prefilter))
            .collect();
        LocationScan::new(&candidates, DFA_LOCATIONS.contains(&loc))
    })
}

/// Frees the literal automaton of each group that every location scan listing it
/// scans with its shared automaton: those groups' own automata are never read.
fn release_unread_automata(groups: &mut [Group], scans: &[LocationScan]) {
    for (gi, g) in groups.iter_mut().enumerate() {
        let read = scans
            .iter()
            .any(|s| !s.is_shared() && s.groups().contains(&gi));
        if !read {
            g.prefilter.release_automaton();
        }
    }
}

/// Runs every group and detector whose target covers `part`; returns the hits in the
/// order they are recorded (groups, then detectors). `cache` holds the part's
/// transformed values per chain (reset here; kept by the caller only for its buffer).
///
/// The groups are scanned together (`scan.rs`): once per distinct transformed
/// value rather than once per group.
fn evaluate<'p>(
    inner: &Inner,
    part: &'p Part,
    cache: &mut Values<'p>,
    scratch: &mut ScanScratch,
) -> Vec<memo::Hit> {
    let mut found = Vec::new();
    cache.reset(&inner.chains);
    if let Some(plan) = inner.scans.get(part.location as usize) {
        plan.reset(scratch);
        // Which candidates cover the part, and the class of each one's value: the
        // chain of the class's first group stands for it.
        scratch.reps.clear();
        for (k, &gi) in plan.groups().iter().enumerate() {
            let Some(g) = inner.groups.get(gi) else {
                continue;
            };
            if !g.target.matches(part) {
                continue;
            }
            cache.fill(&inner.chains, g.chain, &part.value);
            let value = cache.get(g.chain, &part.value);
            let known = scratch
                .reps
                .iter()
                .position(|&c| same_text(cache.get(c, &part.value), value));
            let class = known.unwrap_or_else(|| {
                scratch.reps.push(g.chain);
                scratch.reps.len() - 1
            });
            if let Some(c) = scratch.class.get_mut(k) {
                *c = class;
            }
        }
        let group_of = |k: usize| plan.groups().get(k).and_then(|&gi| inner.groups.get(gi));
        for class in 0..scratch.reps.len() {
            let Some(&chain) = scratch.reps.get(class) else {
                continue;
            };
            let value = cache.get(chain, &part.value);
            // An earlier class whose value differs from this one in ASCII case only
            // (the classes' values are distinct texts): its literal matches hold here.
            let like = scratch.reps.get(..class).and_then(|earlier| {
                earlier.iter().position(|&c| {
                    let other = cache.get(c, &part.value);
                    // Most pairs differ in length: no call for those.
                    other.len() == value.len() && other.eq_ignore_ascii_case(value)
                })
            });
            plan.scan_class(
                value,
                class,
                like,
                scratch,
                |k| group_of(k).map(|g| &g.prefilter),
                |k, i| {
                    group_of(k)
                        .and_then(|g| g.regexes.get(i))
                        .is_some_and(|r| r.is_match(value))
                },
            );
        }
        for (k, &gi) in plan.groups().iter().enumerate() {
            if scratch.class.get(k).is_none_or(|&c| c == scan::NONE) {
                continue;
            }
            let Some(g) = inner.groups.get(gi) else {
                continue;
            };
            let range = plan.range(k);
            let Some(hits) = scratch.hit.get(range) else {
                continue;
            };
            // Nearly every candidate of a benign part matched nothing.
            if !hits.contains(&true) {
                continue;
            }
            let value = cache.get(g.chain, &part.value);
            for (i, _) in hits.iter().enumerate().filter(|(_, h)| **h) {
                let (Some(&ri), Some(re)) = (g.rules.get(i), g.regexes.get(i)) else {
                    continue;
                };
                let text = re.find(value).map(|m| m.as_str()).unwrap_or("");
                found.push(memo::Hit {
                    rule: ri,
                    decoded: first_chars(value, MAX_DECODED),
                    matched: first_chars(text, MAX_MATCHED),
                });
            }
        }
    }
    for d in &inner.detectors {
        if !d.target.matches(part) {
            continue;
        }
        cache.fill(&inner.chains, d.chain, &part.value);
        let value = cache.get(d.chain, &part.value);
        let Some(rule) = inner.rules.get(d.rule) else {
            continue;
        };
        if let Some(m) = crate::injection::detect(&rule.operator, value) {
            found.push(memo::Hit {
                rule: d.rule,
                decoded: first_chars(value, MAX_DECODED),
                matched: first_chars(&m, MAX_MATCHED),
            });
        }
    }
    found
}

/// Whether two transformed values are the same text (the same borrowed value, most
/// often).
fn same_text(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

fn record(
    inner: &Inner,
    hits: &mut Vec<(usize, Finding)>,
    ri: usize,
    path: &str,
    part: &Part,
    value: &str,
    matched: &str,
) {
    let Some(rule) = inner.rules.get(ri) else {
        return;
    };
    if hits.iter().any(|(seen, _)| *seen == ri)
        || inner
            .exclusions
            .iter()
            .any(|e| e.applies(rule.id, path, part))
    {
        return;
    }
    hits.push((
        ri,
        Finding {
            rule_id: rule.id,
            name: rule.name.clone(),
            category: rule.category,
            severity: rule.severity,
            paranoia: rule.paranoia,
            location: part.location.as_str().to_string(),
            name_of_part: part.name.clone(),
            decoded_value: first_chars(value, MAX_DECODED),
            matched: first_chars(matched, MAX_MATCHED),
            tags: Vec::new(),
        },
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::apply_chain;

    fn get(uri: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "example.com".into()),
                (
                    "User-Agent".into(),
                    "Mozilla/5.0 (X11; Linux x86_64)".into(),
                ),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_rule_in_several_groups_shares_one_compiled_regex() {
        let engine = Engine::new(RuleSet::builtin().unwrap(), EngineConfig::default());
        let inner = &engine.inner;
        // Every (group, rule) slot of the same rule holds the same program, and a rule
        // with several targets is in several groups.
        let mut by_rule: std::collections::HashMap<usize, Vec<&Arc<Regex>>> =
            std::collections::HashMap::new();
        for g in &inner.groups {
            for (re, &r) in g.regexes.iter().zip(&g.rules) {
                by_rule.entry(r).or_default().push(re);
            }
        }
        assert!(by_rule.values().any(|v| v.len() > 1));
        for (rule, regexes) in &by_rule {
            assert!(
                regexes.iter().all(|re| Arc::ptr_eq(re, regexes[0])),
                "rule {rule} compiled more than once"
            );
        }
        // And it still matches on each of its targets: a traversal in the query and in
        // a cookie.
        let query = engine.inspect(&get("/a?f=../../../../etc/passwd"));
        let mut cookie = get("/a");
        cookie
            .headers
            .push(("Cookie".into(), "f=../../../../etc/passwd".into()));
        let cookie = engine.inspect(&cookie);
        let ids = |v: &Verdict| v.findings.iter().map(|f| f.rule_id).collect::<Vec<_>>();
        assert!(!query.findings.is_empty());
        assert!(
            ids(&query).iter().any(|id| ids(&cookie).contains(id)),
            "{:?} / {:?}",
            ids(&query),
            ids(&cookie)
        );
    }

    #[test]
    fn a_part_seen_before_gives_the_same_findings() {
        let pl1 = Engine::new(RuleSet::builtin().unwrap(), EngineConfig::default());
        let pl2 = Engine::new(
            RuleSet::builtin().unwrap(),
            EngineConfig {
                paranoia: 2,
                ..EngineConfig::default()
            },
        );
        // Only a paranoia-2 rule matches this; the parts are the same for both engines,
        // so each must keep its own memo entries.
        let req = get("/a?name=select%20name%20from%20the%20list");
        let (a1, b1) = (pl1.inspect(&req), pl2.inspect(&req));
        let (a2, b2) = (pl1.inspect(&req), pl2.inspect(&req));
        assert_eq!(a1, a2);
        assert_eq!(b1, b2);
        assert!(b1.findings.iter().any(|f| f.rule_id == 942200), "{b1:?}");
        assert!(!a1.findings.iter().any(|f| f.rule_id == 942200), "{a1:?}");
        let attack = get("/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--");
        let first = pl1.inspect(&attack);
        assert!(first.blocked);
        assert_eq!(pl1.inspect(&attack), first);
        // A fresh engine from the same rules (a hot reload) finds the same.
        let reloaded = Engine::new(RuleSet::builtin().unwrap(), EngineConfig::default());
        assert_eq!(reloaded.inspect(&attack), first);
    }

    /// The embedded rules' engine at `paranoia`, with every other setting its default.
    fn builtin_at(paranoia: u8) -> Engine {
        Engine::new(
            RuleSet::builtin().unwrap(),
            EngineConfig {
                paranoia,
                ..EngineConfig::default()
            },
        )
    }

    #[test]
    fn the_parse_is_handed_on_below_paranoia_three_with_the_same_verdict() {
        let at = builtin_at;
        let reqs = [
            get("/products?page=2&sort=price&q=blue+shoes"),
            get("/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--&x=%3Cscript%3E"),
        ];
        for paranoia in 1..=4 {
            let engine = at(paranoia);
            for req in &reqs {
                let (verdict, parsed) = engine.inspect_parsed(req);
                assert_eq!(verdict, engine.inspect(req));
                match parsed {
                    Some(p) => {
                        assert!(paranoia <= 2);
                        assert_eq!(p.parts, parse(req, 1).parts, "paranoia {paranoia}");
                    }
                    None => assert!(paranoia >= 3),
                }
            }
        }
        // Several rules in several parts: one finding per rule, in rule order.
        let v = at(1).inspect(&reqs[1]);
        assert!(v.findings.len() >= 2, "{v:?}");
        let mut seen: Vec<u32> = Vec::new();
        for f in &v.findings {
            assert!(!seen.contains(&f.rule_id), "one finding per rule: {v:?}");
            seen.push(f.rule_id);
        }
        let rule_order: Vec<u32> = at(1).inner.rules.iter().map(|r| r.id).collect();
        let positions: Vec<usize> = seen
            .iter()
            .filter_map(|id| rule_order.iter().position(|r| r == id))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }

    /// What [`evaluate`] found before the shared scan: every covering group scanned on
    /// its own with its own prefilter, then the detectors.
    fn evaluate_per_group(inner: &Inner, part: &Part) -> Vec<(usize, String, String)> {
        let mut found = Vec::new();
        let (mut scratch, mut matched) = ((Vec::new(), Vec::new()), Vec::new());
        for g in &inner.groups {
            if !g.target.matches(part) {
                continue;
            }
            let steps = inner.chains.steps(g.chain);
            let value = apply_chain(steps, &part.value);
            let value = value.as_ref();
            g.prefilter
                .matches(value, (&mut scratch.0, &mut scratch.1), &mut matched, |i| {
                    g.regexes.get(i).is_some_and(|r| r.is_match(value))
                });
            for &i in &matched {
                let text = g.regexes[i].find(value).map(|m| m.as_str()).unwrap_or("");
                found.push((
                    g.rules[i],
                    first_chars(value, MAX_DECODED),
                    first_chars(text, MAX_MATCHED),
                ));
            }
        }
        for d in &inner.detectors {
            if !d.target.matches(part) {
                continue;
            }
            let steps = inner.chains.steps(d.chain);
            let value = apply_chain(steps, &part.value);
            if let Some(m) = crate::injection::detect(&inner.rules[d.rule].operator, &value) {
                found.push((
                    d.rule,
                    first_chars(&value, MAX_DECODED),
                    first_chars(&m, MAX_MATCHED),
                ));
            }
        }
        found
    }

    /// A small deterministic generator (xorshift64*), so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    /// Values made of benign words and the pieces attacks are made of, in random case
    /// and encodings, so most values hit some literal and many hit a rule.
    fn random_value(rng: &mut Rng) -> String {
        const PIECES: &[&str] = &[
            "blue",
            "shoes",
            "page",
            "2",
            "/",
            "..",
            "../",
            "etc/passwd",
            "%2e%2e%2f",
            "'",
            "\"",
            " ",
            "  ",
            "\t",
            "or",
            "1=1",
            "union",
            "select",
            "from",
            "users",
            "--",
            "/*",
            "*/",
            "#",
            "<",
            ">",
            "script",
            "alert(1)",
            "onerror=",
            "javascript:",
            "&lt;",
            "&#x3c;",
            "${jndi:ldap://x/a}",
            "{{7*7}}",
            ";",
            "|",
            "cat",
            "/bin/sh",
            "$(id)",
            "`",
            "http://",
            "169.254.169.254",
            "file://",
            "%00",
            "\0",
            "ｓｃｒｉｐｔ",
            "%u003c",
            "+",
            "=",
            "&",
            "?",
            "admin",
            "sleep(5)",
            "benchmark(",
            "waitfor delay",
            "$where",
            "$ne",
            "*)(uid=*",
            "\r\n",
            "%0d%0a",
            "Set-Cookie:",
            "<!ENTITY",
            "SYSTEM",
            "PHNjcmlwdD4=",
            "é",
            "ünï",
            "Mozilla/5.0",
            "(X11; Linux)",
            "exec",
            "xp_cmdshell",
            "wget",
            "curl",
            "nc -e",
            "powershell",
            "<?php",
            "eval(",
            "base64_decode(",
        ];
        let n = 1 + rng.next() % 6;
        let mut v = String::new();
        for _ in 0..n {
            let piece = rng.pick(PIECES);
            match rng.next() % 4 {
                0 => v.push_str(&piece.to_uppercase()),
                1 => v.push_str(&crate::transform::url_decode(piece)),
                _ => v.push_str(piece),
            }
        }
        v
    }

    #[test]
    fn the_shared_scan_finds_what_each_group_alone_finds() {
        const NAMES: &[&str] = &[
            "",
            "q",
            "id",
            "user-agent",
            "referer",
            "x-forwarded-for",
            "file",
            "url",
            "cmd",
            "query",
            "host",
            "content-type",
            "session",
        ];
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut hits = 0usize;
        for paranoia in 1..=4 {
            let engine = builtin_at(paranoia);
            let inner = &*engine.inner;
            let mut scratch = ScanScratch::default();
            for _ in 0..4000 {
                let mut cache = Values::default();
                let location = Location::ALL[(rng.next() % 17) as usize];
                let part = Part {
                    location,
                    name: rng.pick(NAMES).to_string(),
                    value: random_value(&mut rng),
                };
                let shared: Vec<(usize, String, String)> =
                    evaluate(inner, &part, &mut cache, &mut scratch)
                        .into_iter()
                        .map(|h| (h.rule, h.decoded, h.matched))
                        .collect();
                let alone = evaluate_per_group(inner, &part);
                assert_eq!(shared, alone, "paranoia {paranoia}: {part:?}");
                hits += alone.len();
            }
        }
        // The inputs reach the rules, not only the prefilters.
        assert!(hits > 1000, "{hits}");
    }

    #[test]
    fn every_location_indexes_its_own_scan() {
        for (i, loc) in Location::ALL.iter().enumerate() {
            assert_eq!(*loc as usize, i);
        }
        let engine = Engine::new(RuleSet::builtin().unwrap(), EngineConfig::default());
        assert_eq!(engine.inner.scans.len(), Location::ALL.len());
        // Arguments are covered by many groups, scanned together.
        let args = &engine.inner.scans[Location::QueryArgValue as usize];
        assert!(args.groups().len() > 5, "{}", args.groups().len());
    }

    #[test]
    fn hot_locations_scan_with_a_dfa_and_groups_keep_no_unread_automaton() {
        for paranoia in 1..=4 {
            let engine = builtin_at(paranoia);
            let inner = &*engine.inner;
            for loc in DFA_LOCATIONS {
                let kind = inner.scans[loc as usize].kind();
                assert_eq!(kind, Some(aho_corasick::AhoCorasickKind::DFA), "{loc:?}");
            }
            // Every location scans its groups together, so no group's own automaton
            // is read, and none is kept.
            assert!(
                inner
                    .scans
                    .iter()
                    .all(|s| s.is_shared() || s.groups().is_empty())
            );
            for (gi, g) in inner.groups.iter().enumerate() {
                assert!(
                    !g.prefilter.holds_automaton(),
                    "group {gi} keeps its automaton"
                );
            }
        }
    }

    #[test]
    fn engine_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Engine>();
    }
}
