//! One literal pass per distinct value of a part, shared by every rule group that
//! inspects it.
//!
//! An argument is inspected by about twenty groups (one per target and transformation
//! chain), and for most values most chains change nothing: scanning the same text once
//! per group did the same Aho-Corasick pass twenty times. For each location the engine
//! keeps a [`LocationScan`] over the groups whose target can cover a part there: one
//! automaton of all their literals. A part's groups are split into classes by the value
//! their chain gives (equal text, one class), and each class is scanned once; a literal
//! found there runs the regex of each rule of the class's groups that requires it, as
//! the group's own prefilter would have. A class whose text equals an earlier class's
//! but for ASCII case (a value and its lowercased copy) is not scanned again: the
//! automaton is ASCII case-insensitive, so it reuses that class's matches.
//!
//! Nothing is decided differently from scanning group by group: the shared automaton
//! reports every occurrence of every literal (overlapping, case-insensitive, as each
//! group's did). The always-run rules stay in each group's own set: one set of them
//! all was tried, and was slower (its automaton is too large for the lazy DFA, so it
//! ran on the PikeVM: about 1,000 more instructions a line under callgrind).

use aho_corasick::AhoCorasick;

use crate::prefilter::{Prefilter, literal_automaton};

/// The shared scan of the groups that can cover one location.
#[derive(Debug)]
pub(crate) struct LocationScan {
    /// Engine indices of the candidate groups, ascending (the engine's group order).
    groups: Vec<usize>,
    /// Where each candidate's rules start in the flat per-part tables.
    base: Vec<usize>,
    /// Rules of all candidates together.
    total: usize,
    /// Every candidate's gated literals, deduplicated.
    literals: Option<AhoCorasick>,
    /// For each literal: (candidate position, group-local rule) that require it.
    owners: Vec<Vec<(usize, usize)>>,
}

/// Per-part working memory of a scan, kept by the caller so a part costs no
/// allocation once warm.
#[derive(Debug, Default)]
pub(crate) struct ScanScratch {
    /// Flat: rule matched.
    pub hit: Vec<bool>,
    /// Flat: rule's regex already run for this part.
    tried: Vec<bool>,
    /// Per candidate: the class of its value, or `NONE` when its target does not
    /// cover the part.
    pub class: Vec<usize>,
    /// Per class: the chain whose value stands for it (filled by the engine).
    pub reps: Vec<usize>,
    /// The shared automaton's matches (pattern ids, every occurrence in order) of the
    /// classes scanned so far, flat.
    found: Vec<usize>,
    /// Per class scanned: its matches' range in `found`.
    found_of: Vec<(usize, usize)>,
}

/// Class of a candidate whose target does not cover the part.
pub(crate) const NONE: usize = usize::MAX;

impl LocationScan {
    /// Builds the scan of `candidates` (engine group index, its prefilter), ascending;
    /// `dfa`: its automaton as a full DFA (see [`literal_automaton`]).
    pub(crate) fn new(candidates: &[(usize, &Prefilter)], dfa: bool) -> LocationScan {
        let mut groups = Vec::with_capacity(candidates.len());
        let mut base = Vec::with_capacity(candidates.len());
        let mut total = 0;
        let mut literal_ids: Vec<&[u8]> = Vec::new();
        let mut owners: Vec<Vec<(usize, usize)>> = Vec::new();
        for (k, (gi, prefilter)) in candidates.iter().enumerate() {
            groups.push(*gi);
            base.push(total);
            total += prefilter.len();
            for (lit, rules) in prefilter.literals() {
                let p = match literal_ids.iter().position(|l| *l == lit) {
                    Some(p) => p,
                    None => {
                        literal_ids.push(lit);
                        owners.push(Vec::new());
                        owners.len() - 1
                    }
                };
                if let Some(o) = owners.get_mut(p) {
                    o.extend(rules.iter().map(|&i| (k, i)));
                }
            }
        }
        let literals = literal_automaton(&literal_ids, dfa);
        if literals.is_none() {
            owners.clear();
        }
        LocationScan {
            groups,
            base,
            total,
            literals,
            owners,
        }
    }

    /// Whether the candidates are scanned by the shared automaton (else each group
    /// scans alone, with its own prefilter's automaton).
    pub(crate) fn is_shared(&self) -> bool {
        self.literals.is_some()
    }

    /// The shared automaton's kind, for the tests that check which scans are DFAs.
    #[cfg(test)]
    pub(crate) fn kind(&self) -> Option<aho_corasick::AhoCorasickKind> {
        self.literals.as_ref().map(AhoCorasick::kind)
    }

    /// Engine indices of the candidate groups, ascending.
    pub(crate) fn groups(&self) -> &[usize] {
        &self.groups
    }

    /// The flat-table range of candidate `k`'s rules.
    pub(crate) fn range(&self, k: usize) -> std::ops::Range<usize> {
        let start = self.base.get(k).copied().unwrap_or(self.total);
        let end = self.base.get(k + 1).copied().unwrap_or(self.total);
        start..end
    }

    /// Readies `scratch` for a part: no rule hit or tried, every candidate `NONE`.
    pub(crate) fn reset(&self, scratch: &mut ScanScratch) {
        scratch.hit.clear();
        scratch.hit.resize(self.total, false);
        scratch.tried.clear();
        scratch.tried.resize(self.total, false);
        scratch.class.clear();
        scratch.class.resize(self.groups.len(), NONE);
        scratch.found.clear();
        scratch.found_of.clear();
    }

    /// Runs, for one occurrence of literal `p`, the regex of each rule of class
    /// `class` that requires it and was not run yet for this part.
    fn try_owners(
        &self,
        p: usize,
        class: usize,
        scratch: &mut ScanScratch,
        is_match: &impl Fn(usize, usize) -> bool,
    ) {
        let Some(rules) = self.owners.get(p) else {
            return;
        };
        for &(k, i) in rules {
            if scratch.class.get(k) != Some(&class) {
                continue;
            }
            let Some(flat) = self.base.get(k).map(|b| b + i) else {
                continue;
            };
            let fresh =
                scratch.tried.get(flat) == Some(&false) && scratch.hit.get(flat) == Some(&false);
            if let Some(t) = scratch.tried.get_mut(flat) {
                *t = true;
            }
            if fresh
                && is_match(k, i)
                && let Some(h) = scratch.hit.get_mut(flat)
            {
                *h = true;
            }
        }
    }

    /// Marks in `scratch.hit` the rules of the candidates of class `class` that match
    /// `value` (their common value). `candidate(k)` gives candidate `k`'s prefilter;
    /// `is_match(k, i)` runs rule `i` of candidate `k`. `like` is an earlier class of
    /// this part whose value equals `value` but for ASCII case, if there is one: the
    /// automaton is ASCII case-insensitive, so its literals occur in both values at the
    /// same places, and that class's matches are reused instead of scanning again (a
    /// value and its lowercased copy, the commonest pair).
    pub(crate) fn scan_class<'a>(
        &self,
        value: &str,
        class: usize,
        like: Option<usize>,
        scratch: &mut ScanScratch,
        candidate: impl Fn(usize) -> Option<&'a Prefilter>,
        is_match: impl Fn(usize, usize) -> bool,
    ) {
        let in_class = |scratch: &ScanScratch, k: usize| scratch.class.get(k) == Some(&class);
        // Always-run rules: each group's own set.
        for k in 0..self.groups.len() {
            if !in_class(scratch, k) {
                continue;
            }
            let Some(p) = candidate(k) else { continue };
            let range = self.range(k);
            if let Some(hit) = scratch.hit.get_mut(range) {
                p.mark_always(value, hit, |i| is_match(k, i));
            }
        }
        match &self.literals {
            Some(ac) => {
                let earlier = like.and_then(|c| scratch.found_of.get(c).copied());
                let range = match earlier {
                    Some((start, end)) => {
                        for j in start..end {
                            if let Some(&p) = scratch.found.get(j) {
                                self.try_owners(p, class, scratch, &is_match);
                            }
                        }
                        (start, end)
                    }
                    None => {
                        let start = scratch.found.len();
                        for m in ac.find_overlapping_iter(value) {
                            let p = m.pattern().as_usize();
                            scratch.found.push(p);
                            self.try_owners(p, class, scratch, &is_match);
                        }
                        (start, scratch.found.len())
                    }
                };
                if scratch.found_of.len() <= class {
                    scratch.found_of.resize(class + 1, (0, 0));
                }
                if let Some(r) = scratch.found_of.get_mut(class) {
                    *r = range;
                }
            }
            // No shared automaton (it could not be built): each group scans alone.
            // (`like` is not needed: nothing is scanned twice here but per group.)
            None => {
                for k in 0..self.groups.len() {
                    if !in_class(scratch, k) {
                        continue;
                    }
                    let Some(p) = candidate(k) else { continue };
                    let range = self.range(k);
                    let ScanScratch { hit, tried, .. } = scratch;
                    if let (Some(hit), Some(tried)) =
                        (hit.get_mut(range.clone()), tried.get_mut(range))
                    {
                        p.mark_gated(value, hit, tried, |i| is_match(k, i));
                    }
                }
            }
        }
    }
}
