//! The literal prefilter: most values a rule group sees (a benign user agent, a path,
//! an argument) cannot match any of its regexes, and proving that with one
//! Aho-Corasick pass is far cheaper than running the regex set.
//!
//! For each rule of a group the prefilter derives, from the regex itself, a set of
//! literals one of which every match must start (or end) with. A value containing none
//! of a rule's literals skips that rule; rules whose regex yields no such set (it can
//! match almost anything, e.g. `[a-z]+=`) always run, through their own regex set. The
//! literals are matched ASCII-case-insensitively, so a literal set is only ever made
//! larger, never smaller: the prefilter can let a rule through for nothing, but never
//! skip a rule that would have matched.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::RegexSet;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Literal sets larger than this are not worth a prefilter (the rule always runs).
const MAX_LITERALS: usize = 256;

/// A literal shorter than this matches too often to skip anything.
const MIN_LITERAL_LEN: usize = 1;

/// The case-insensitive automaton over every required literal of a group (the
/// prefilter) or of a location (the shared scan); `None` when there is none or it cannot
/// be built, and then every rule runs: the literals are only ever an optimisation.
pub(crate) fn literal_automaton<L: AsRef<[u8]>>(literals: &[L]) -> Option<AhoCorasick> {
    if literals.is_empty() {
        return None;
    }
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(literals)
        .ok()
}

/// The literals one of which appears in every match of `source`, lowercased and
/// deduplicated; `None` when the regex has no such finite set.
pub(crate) fn required_literals(source: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(source)
        .ok()?;
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .find_map(|kind| {
            let seq = Extractor::new().kind(kind).extract(&hir);
            let lits = seq.literals()?;
            if lits.is_empty() || lits.len() > MAX_LITERALS {
                return None;
            }
            let mut out: Vec<Vec<u8>> = lits
                .iter()
                .map(|l| l.as_bytes().to_ascii_lowercase())
                .collect();
            if out.iter().any(|l| l.len() < MIN_LITERAL_LEN) {
                return None;
            }
            out.sort_unstable();
            out.dedup();
            Some(out)
        })
}

/// Which rules of one group can possibly match a value.
#[derive(Debug)]
pub(crate) struct Prefilter {
    /// Every gated rule's literals; a pattern id indexes `owners` and `literal_bytes`.
    literals: Option<AhoCorasick>,
    /// The literals themselves (lowercase), so a scan shared by several groups can
    /// build one automaton of them all ([`crate::scan`]).
    literal_bytes: Vec<Vec<u8>>,
    /// For each literal, the group-local indices of the rules that require it.
    owners: Vec<Vec<usize>>,
    /// Group-local indices of the rules that always run.
    always: Vec<usize>,
    /// Those rules compiled together (`None`: too large, run one by one).
    always_set: Option<RegexSet>,
    /// Number of rules in the group.
    len: usize,
}

impl Prefilter {
    /// Builds the prefilter for a group's regex sources (group-local order).
    pub(crate) fn new(sources: &[&str], size_limit: usize) -> Prefilter {
        let mut literal_ids: Vec<Vec<u8>> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            match required_literals(src) {
                Some(lits) => {
                    for lit in lits {
                        match literal_ids.iter().position(|l| *l == lit) {
                            Some(p) => {
                                if let Some(o) = owners.get_mut(p) {
                                    o.push(i);
                                }
                            }
                            None => {
                                literal_ids.push(lit);
                                owners.push(vec![i]);
                            }
                        }
                    }
                }
                None => always.push(i),
            }
        }
        let literals = literal_automaton(&literal_ids);
        if literals.is_none() {
            // Without the automaton every rule runs (the prefilter is only ever an
            // optimisation).
            always = (0..sources.len()).collect();
            owners.clear();
            literal_ids.clear();
        }
        let always_sources: Vec<&str> = always
            .iter()
            .filter_map(|&i| sources.get(i).copied())
            .collect();
        let always_set = if always_sources.is_empty() {
            None
        } else {
            regex::RegexSetBuilder::new(&always_sources)
                .size_limit(size_limit)
                .build()
                .ok()
                .filter(|s| s.len() == always.len())
        };
        Prefilter {
            literals,
            literal_bytes: literal_ids,
            owners,
            always,
            always_set,
            len: sources.len(),
        }
    }

    /// Number of rules in the group.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The gated rules' literals with, for each, the group-local indices of the rules
    /// that require it (empty when the group has no automaton: then every rule is in
    /// [`Prefilter::always`]).
    pub(crate) fn literals(&self) -> impl Iterator<Item = (&[u8], &[usize])> {
        self.literal_bytes
            .iter()
            .zip(&self.owners)
            .map(|(l, o)| (l.as_slice(), o.as_slice()))
    }

    /// Marks in `hit` (indexed group-locally) the always-run rules that match `value`.
    /// `is_match(i)` runs rule `i`'s own regex, used when the always-run set could not
    /// be compiled.
    pub(crate) fn mark_always(
        &self,
        value: &str,
        hit: &mut [bool],
        is_match: impl Fn(usize) -> bool,
    ) {
        if self.always.is_empty() {
            return;
        }
        match &self.always_set {
            // Most values match none of them: one scan that can stop early says so,
            // before the scan that says which (it cannot stop early, and allocates).
            Some(set) => {
                if !set.is_match(value) {
                    return;
                }
                for k in set.matches(value).iter() {
                    if let Some(&i) = self.always.get(k)
                        && let Some(slot) = hit.get_mut(i)
                    {
                        *slot = true;
                    }
                }
            }
            None => {
                for &i in &self.always {
                    if is_match(i)
                        && let Some(slot) = hit.get_mut(i)
                    {
                        *slot = true;
                    }
                }
            }
        }
    }

    /// Marks in `hit` the gated rules whose literal occurs in `value` and whose regex
    /// (`is_match(i)`) then matches; each such rule's regex runs once, however often
    /// its literals occur (a one-character literal can occur on every other byte), and
    /// not at all when it is already marked. `tried` holds the rules run so far.
    pub(crate) fn mark_gated(
        &self,
        value: &str,
        hit: &mut [bool],
        tried: &mut [bool],
        is_match: impl Fn(usize) -> bool,
    ) {
        let Some(ac) = &self.literals else {
            return;
        };
        for m in ac.find_overlapping_iter(value) {
            let Some(rules) = self.owners.get(m.pattern().as_usize()) else {
                continue;
            };
            for &i in rules {
                let fresh = tried.get(i) == Some(&false) && hit.get(i) == Some(&false);
                if let Some(t) = tried.get_mut(i) {
                    *t = true;
                }
                if fresh
                    && is_match(i)
                    && let Some(slot) = hit.get_mut(i)
                {
                    *slot = true;
                }
            }
        }
    }

    /// Group-local indices of rules that may match `value`, in ascending order, written
    /// into `out` (cleared first): the group scanned on its own, the reference the
    /// engine's shared scan ([`crate::scan`]) is tested against.
    #[cfg(test)]
    pub(crate) fn matches(
        &self,
        value: &str,
        (scratch, tried): (&mut Vec<bool>, &mut Vec<bool>),
        out: &mut Vec<usize>,
        is_match: impl Fn(usize) -> bool,
    ) {
        out.clear();
        scratch.clear();
        scratch.resize(self.len, false);
        tried.clear();
        tried.resize(self.len, false);
        self.mark_always(value, scratch, &is_match);
        self.mark_gated(value, scratch, tried, &is_match);
        out.extend(
            scratch
                .iter()
                .enumerate()
                .filter_map(|(i, &hit)| hit.then_some(i)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_required_lowercase_and_finite() {
        let lits = required_literals(r"\bunion\b[\s(]*select").unwrap_or_default();
        assert!(lits.iter().all(|l| l.starts_with(b"union")), "{lits:?}");
        let ci = required_literals(r"(?i)<script").unwrap_or_default();
        // Case variants collapse to one; Unicode folds (`ſ` for `s`) stay as their own.
        assert!(ci.contains(&b"<script".to_vec()), "{ci:?}");
        assert!(ci.len() <= 2, "{ci:?}");
        // No finite prefix, but every match ends with `=`.
        assert_eq!(required_literals(r"[a-z]+="), Some(vec![b"=".to_vec()]));
        assert!(required_literals(r"\w+@\w+").is_none());
        assert!(required_literals(r".*").is_none());
        assert!(
            required_literals(r"a|").is_none(),
            "an empty alternative matches anywhere"
        );
    }

    #[test]
    fn a_value_without_any_literal_runs_only_the_ungated_rules() {
        let sources = [r"\bunion\b\s+select", r"\w+@\w+", r"(?i)<script\b"];
        let p = Prefilter::new(&sources, 1 << 24);
        let regexes: Vec<regex::Regex> = sources
            .iter()
            .filter_map(|s| regex::Regex::new(s).ok())
            .collect();
        let (mut scratch, mut out) = ((Vec::new(), Vec::new()), Vec::new());
        let ran = std::cell::Cell::new(0);
        let check = |v: &str, out: &mut Vec<usize>, scratch: &mut (Vec<bool>, Vec<bool>)| {
            p.matches(v, (&mut scratch.0, &mut scratch.1), out, |i| {
                ran.set(ran.get() + 1);
                regexes.get(i).is_some_and(|r| r.is_match(v))
            });
        };
        check("Mozilla/5.0 (X11; Linux)", &mut out, &mut scratch);
        assert!(out.is_empty());
        assert_eq!(ran.get(), 0, "no gated rule ran for a benign value");
        check("1 union  select a@b <SCRIPT>", &mut out, &mut scratch);
        assert_eq!(out, vec![0, 1, 2]);
        check("unionselect", &mut out, &mut scratch);
        assert!(out.is_empty(), "a literal alone is not a match");
        // Literals seen many times run their rule once.
        let before = ran.get();
        check("union union union union", &mut out, &mut scratch);
        assert!(out.is_empty());
        assert_eq!(ran.get() - before, 1, "one run of the gated rule");
    }
}
