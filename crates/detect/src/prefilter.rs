//! The literal prefilter: most values a rule group sees (a benign user agent, a path,
//! an argument) cannot match any of its regexes, and proving that with one
//! Aho-Corasick pass is far cheaper than running the regex set.
//!
//! For each rule of a group the prefilter derives, from the regex itself, a set of
//! literals one of which every match must start (or end) with, or else contain
//! somewhere. A value containing none of a rule's literals skips that rule; rules whose
//! regex yields no such set (it can match almost anything, e.g. `\w+\s\w+`) always run,
//! through their own regex set. The literals are matched ASCII-case-insensitively, so
//! a literal set is only ever made larger, never smaller: the prefilter can let a rule
//! through for nothing, but never skip a rule that would have matched.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::RegexSet;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

/// Literal sets larger than this are not worth a prefilter (the rule always runs).
const MAX_LITERALS: usize = 256;

/// A literal shorter than this matches too often to skip anything.
const MIN_LITERAL_LEN: usize = 1;

/// The least [`quality`] an inner literal set needs to gate a rule (a word of four
/// letters, or one byte ordinary text lacks).
const MIN_INNER_RARITY: usize = 4;

/// The case-insensitive automaton over every required literal of a group (the
/// prefilter) or of a location (the shared scan); `None` when there is none or it cannot
/// be built, and then every rule runs: the literals are only ever an optimisation.
///
/// `dfa` asks for a full DFA rather than the crate's choice (a contiguous NFA past ~100
/// literals): it reports the same matches in the same order, in fewer instructions a
/// byte, for more memory (a location's 600 literals: ~0.4–1.6 MB instead of ~0.15 MB),
/// so the engine asks for it only where a benign line's bytes are mostly scanned
/// (`engine.rs`, `DFA_LOCATIONS`).
pub(crate) fn literal_automaton<L: AsRef<[u8]>>(literals: &[L], dfa: bool) -> Option<AhoCorasick> {
    if literals.is_empty() {
        return None;
    }
    let mut builder = AhoCorasickBuilder::new();
    builder
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard);
    if dfa {
        builder.kind(Some(AhoCorasickKind::DFA));
    }
    builder.build(literals).ok()
}

/// The literals one of which appears in every match of `hir`, lowercased and
/// deduplicated; `None` when the regex has no such finite set.
///
/// Every match starts (or ends) with one of a prefix (suffix) set; when the regex has
/// neither, a set found inside it ([`inner_literals`]) is used: so a rule like
/// `(^\s*\w*|['"]\s*)(;|\|)\s*(cat|wget)` is gated on `;` and `|` instead of
/// running on every value.
fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    literal_set(hir, selective)
}

/// `source` parsed as the regex crate parses it; `None` when it does not parse (then
/// the rule has no literal set and always runs).
fn parsed(source: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .build()
        .parse(source)
        .ok()
}

/// A prefix or suffix set of `hir` ([`extracted`]), else a set found inside it
/// ([`inner_literals`]) that `keep_inner` accepts: what [`required_literals`] gates a
/// rule on (only a [`selective`] inner set) and [`necessary_literals`] proves a rule
/// cannot match with (any inner set).
fn literal_set(hir: &Hir, keep_inner: fn(&[Vec<u8>]) -> bool) -> Option<Vec<Vec<u8>>> {
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .find_map(|kind| extracted(hir, kind))
        .or_else(|| inner_literals(hir).filter(|set| keep_inner(set)))
}

/// For the always-run rules whose regex has a Unicode word boundary: the literals one
/// of which every match of `hir` holds, however common (no [`selective`] test), or
/// `None` when it has no such set or no Unicode word boundary. Such a regex cannot run
/// on the lazy DFA over a value with a non-ASCII char (the DFA gives up there and the
/// regex falls back to the PikeVM, some 3,500 instructions a value), so for those
/// values a literal pass that finds none of them proves the rule cannot match, as the
/// gated rules' prefilter does (docs/BENCHMARKS.md, engine10).
fn necessary_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    if !hir.properties().look_set().contains_word_unicode() {
        return None;
    }
    literal_set(hir, |_| true)
}

/// The automaton over the union of the always-run rules' [`necessary_literals`] (their
/// parsed regexes, `None` for one that did not parse), when every one of them has such
/// a set; `None` otherwise (then no value skips the set).
fn always_needs<'h>(hirs: impl IntoIterator<Item = Option<&'h Hir>>) -> Option<AhoCorasick> {
    let mut all: Vec<Vec<u8>> = Vec::new();
    for hir in hirs {
        all.extend(necessary_literals(hir?)?);
    }
    all.sort_unstable();
    all.dedup();
    literal_automaton(&all, false)
}

/// A prefix or suffix set of `hir`, lowercased and deduplicated: every match of `hir`
/// starts (ends) with one of them. `None` when there is no finite set of non-empty
/// literals of at most [`MAX_LITERALS`].
fn extracted(hir: &Hir, kind: ExtractKind) -> Option<Vec<Vec<u8>>> {
    let seq = Extractor::new().kind(kind).extract(hir);
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
}

/// Literals one of which occurs somewhere in every match of `hir` (lowercased,
/// deduplicated), found from its structure: a match of a concatenation contains a
/// match of each of its pieces, so any piece's set will do (the most selective is
/// taken); a match of an alternation is a match of one branch, so the branches' sets
/// together; a repetition at least once, or a group, holds its inner match. At each
/// node the node's own prefix and suffix sets compete too. `None` when some match can
/// avoid every literal found (an optional piece, a look-around, a large class).
fn inner_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let structural = match hir.kind() {
        HirKind::Capture(c) => inner_literals(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => inner_literals(&r.sub),
        // Each piece alone, and each run of pieces from a piece to the end by its
        // prefix set (a case-insensitive `http/` is five one-letter pieces: only the
        // run gives the word).
        HirKind::Concat(subs) => subs
            .iter()
            .filter_map(inner_literals)
            .chain((1..subs.len()).filter_map(|i| {
                let run = Hir::concat(subs.get(i..)?.to_vec());
                extracted(&run, ExtractKind::Prefix)
            }))
            .max_by_key(|set| quality(set)),
        HirKind::Alternation(subs) => {
            let mut all: Vec<Vec<u8>> = Vec::new();
            for sub in subs {
                all.extend(inner_literals(sub)?);
                if all.len() > MAX_LITERALS * 4 {
                    return None;
                }
            }
            all.sort_unstable();
            all.dedup();
            (all.len() <= MAX_LITERALS).then_some(all)
        }
        _ => None,
    };
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .filter_map(|kind| extracted(hir, kind))
        .chain(structural)
        .max_by_key(|set| quality(set))
}

/// How well a literal set gates a rule: by its most common literal (a value passes
/// the gate if it holds any one of them), then by fewer literals. Ordinary values are
/// words, numbers and paths, so a literal is the rarer the longer it is and the more
/// bytes it has that ordinary text lacks (quotes, brackets, `;`, `|`, `$`, ...): `;` or
/// `$(` gates a command-injection rule on far fewer values than `id` or `ls` do.
fn quality(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let rarity = |l: &Vec<u8>| {
        l.len()
            + 4 * l
                .iter()
                .filter(|c| !c.is_ascii_alphanumeric() && !b" .-_/".contains(c))
                .count()
    };
    let weakest = set.iter().map(rarity).min().unwrap_or(0);
    (weakest, std::cmp::Reverse(set.len()))
}

/// Whether an inner set is worth gating on: a short word (`id`, `or`) or a single
/// letter, digit or space occurs in nearly every value, and each occurrence costs a
/// visit of the rule in the shared scan, so a rule gated on one is left to run always.
fn selective(set: &[Vec<u8>]) -> bool {
    quality(set).0 >= MIN_INNER_RARITY
}

/// Which rules of one group can possibly match a value.
#[derive(Debug)]
pub(crate) struct Prefilter {
    /// Whether the group has gated rules (their literals' automaton could be built).
    gated: bool,
    /// Every gated rule's literals; a pattern id indexes `owners` and `literal_bytes`.
    /// Emptied by [`Prefilter::release_automaton`] when the engine's shared scans
    /// cover the group everywhere (then nothing reads it), and built again on first
    /// use should anything ever need it.
    literals: OnceLock<Option<AhoCorasick>>,
    /// The literals themselves (lowercase), so a scan shared by several groups can
    /// build one automaton of them all ([`crate::scan`]).
    literal_bytes: Vec<Vec<u8>>,
    /// For each literal, the group-local indices of the rules that require it.
    owners: Vec<Vec<usize>>,
    /// Group-local indices of the rules that always run.
    always: Vec<usize>,
    /// Those rules compiled together (`None`: too large, run one by one).
    always_set: Option<RegexSet>,
    /// The literals one of which any match of any always-run rule holds, when those
    /// rules have Unicode word boundaries ([`necessary_literals`]): a value with a
    /// non-ASCII char and none of them skips the set.
    always_needs: Option<AhoCorasick>,
    /// Number of rules in the group.
    len: usize,
}

impl Prefilter {
    /// Builds the prefilter for a group's regex sources (group-local order).
    pub(crate) fn new(sources: &[&str], size_limit: usize) -> Prefilter {
        let mut literal_ids: Vec<Vec<u8>> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        // Parsed once: the gated rules' literal sets and the always-run rules'
        // necessary literals both come from the same tree.
        let hirs: Vec<Option<Hir>> = sources.iter().map(|src| parsed(src)).collect();
        for (i, hir) in hirs.iter().enumerate() {
            match hir.as_ref().and_then(required_literals) {
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
        let literals = literal_automaton(&literal_ids, false);
        let gated = literals.is_some();
        if !gated {
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
        let always_needs = always_set.as_ref().and_then(|_| {
            always_needs(always.iter().map(|&i| hirs.get(i).and_then(Option::as_ref)))
        });
        Prefilter {
            gated,
            literals: OnceLock::from(literals),
            literal_bytes: literal_ids,
            owners,
            always,
            always_set,
            always_needs,
            len: sources.len(),
        }
    }

    /// Number of rules in the group.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Frees the group's own literal automaton: once every location the group is
    /// scanned at has a shared automaton (`scan.rs`), nothing reads it, and the
    /// engine's groups held ~7 MB of them. Which rules are gated does not change;
    /// [`Prefilter::mark_gated`] builds the automaton again if it is ever called.
    pub(crate) fn release_automaton(&mut self) {
        self.literals = OnceLock::new();
    }

    /// Whether the group's own automaton is in memory now (tests: released ones are
    /// not, until used).
    #[cfg(test)]
    pub(crate) fn holds_automaton(&self) -> bool {
        self.literals.get().is_some_and(Option::is_some)
    }

    /// The group's literal automaton, built again if it was released.
    fn automaton(&self) -> Option<&AhoCorasick> {
        if !self.gated {
            return None;
        }
        self.literals
            .get_or_init(|| literal_automaton(&self.literal_bytes, false))
            .as_ref()
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
                if self.cannot_match_always(value) || !set.is_match(value) {
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

    /// Whether `value` holds a non-ASCII char and none of the literals every match of
    /// the always-run rules needs: then none of them matches, and the PikeVM their
    /// Unicode word boundaries would fall back to is not run. An ASCII value is left to
    /// the set, which decides it on the lazy DFA for less than a literal pass.
    fn cannot_match_always(&self, value: &str) -> bool {
        match &self.always_needs {
            Some(needs) => !value.is_ascii() && !needs.is_match(value),
            None => false,
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
        let Some(ac) = self.automaton() else {
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

    /// [`required_literals`] of a regex source.
    fn required_of(source: &str) -> Option<Vec<Vec<u8>>> {
        required_literals(&parsed(source)?)
    }

    #[test]
    fn literals_are_required_lowercase_and_finite() {
        let lits = required_of(r"\bunion\b[\s(]*select").unwrap_or_default();
        assert!(lits.iter().all(|l| l.starts_with(b"union")), "{lits:?}");
        let ci = required_of(r"(?i)<script").unwrap_or_default();
        // Case variants collapse to one; Unicode folds (`ſ` for `s`) stay as their own.
        assert!(ci.contains(&b"<script".to_vec()), "{ci:?}");
        assert!(ci.len() <= 2, "{ci:?}");
        // No finite prefix, but every match ends with `=`.
        assert_eq!(required_of(r"[a-z]+="), Some(vec![b"=".to_vec()]));
        // Neither a prefix nor a suffix set, but every match holds an `@`.
        assert_eq!(required_of(r"\w+@\w+"), Some(vec![b"@".to_vec()]));
        assert!(required_of(r"\w+\s\w+").is_none());
        // A short word is too common to gate on.
        assert!(required_of(r"\w+\s+id\s+\w+").is_none());
        assert!(required_of(r".*").is_none());
        assert!(
            required_of(r"a|").is_none(),
            "an empty alternative matches anywhere"
        );
    }

    #[test]
    fn a_value_without_any_literal_runs_only_the_ungated_rules() {
        let sources = [r"\bunion\b\s+select", r"\w+\s\w+", r"(?i)<script\b"];
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
        check("1 union  select a b <SCRIPT>", &mut out, &mut scratch);
        assert_eq!(out, vec![0, 1, 2]);
        check("unionselect", &mut out, &mut scratch);
        assert!(out.is_empty(), "a literal alone is not a match");
        // Literals seen many times run their rule once.
        let before = ran.get();
        check("union union union union", &mut out, &mut scratch);
        assert_eq!(out, vec![1], "only the ungated rule matches");
        assert_eq!(ran.get() - before, 1, "one run of the gated rule");
    }

    #[test]
    fn always_run_rules_skipped_for_want_of_a_needed_literal_could_not_match()
    -> Result<(), crate::rules::RuleError> {
        // Every built-in rule alone in a group: those that always run and have a
        // Unicode word boundary get the literal pass for non-ASCII values.
        let rules = crate::rules::RuleSet::builtin()?.rules;
        let sources: Vec<String> = rules
            .iter()
            .filter_map(|r| r.operator.regex_source())
            .collect();
        let pieces = [
            "1",
            " or ",
            " and ",
            "xor ",
            "(",
            ")",
            "=",
            "<>",
            "'",
            "--",
            ";",
            " ",
            "é",
            "Hermánn",
            "÷",
            "ΑΒΓ",
            "日本",
            "ñ",
            "ping ",
            "ping.exe -n 3 ",
            "&",
            "whoami",
            " -a",
            "1.2.3.4",
            "cmd.exe",
            " /c",
            "/x",
            "nslookup ",
            "x.example",
            "select",
            "union",
            "true",
            "null",
            "not x",
            "$(",
            "`",
            "|",
            "ändern",
            "div",
            "mod",
            "2",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        let (mut with_needs, mut skipped) = (0, 0);
        for src in &sources {
            let p = Prefilter::new(&[src.as_str()], 1 << 26);
            if p.always_needs.is_none() {
                continue;
            }
            with_needs += 1;
            let Ok(re) = regex::Regex::new(src) else {
                continue;
            };
            for _ in 0..3_000 {
                let value: String = (0..1 + next(8))
                    .map(|_| pieces[next(pieces.len())])
                    .collect();
                let mut hit = vec![false];
                p.mark_always(&value, &mut hit, |_| re.is_match(&value));
                assert_eq!(hit[0], re.is_match(&value), "{src} on {value:?}");
                skipped += usize::from(p.cannot_match_always(&value));
            }
        }
        assert!(
            with_needs >= 2,
            "{with_needs} built-in rules take the literal pass"
        );
        assert!(skipped > 1_000, "only {skipped} values skipped the set");
        // An ASCII value never skips it (the lazy DFA decides it). `cmd` is too short
        // a word to gate on, so the rule always runs.
        let p = Prefilter::new(&[r"(^|&)\s*(ping|cmd)\s+(-[a-z]|/[a-z]\b)"], 1 << 24);
        assert!(p.always_needs.is_some());
        assert!(!p.cannot_match_always("plain ascii"));
        assert!(p.cannot_match_always("plain é"));
        assert!(!p.cannot_match_always("é&PING /c"));
        Ok(())
    }

    #[test]
    fn a_released_automaton_is_built_again_with_the_same_answers() {
        let sources = [
            r"\bunion\b\s+select",
            r"\w+\s\w+",
            r"(?i)<script\b",
            r"\.\./",
        ];
        let regexes: Vec<regex::Regex> = sources
            .iter()
            .filter_map(|s| regex::Regex::new(s).ok())
            .collect();
        let values = [
            "Mozilla/5.0 (X11; Linux)",
            "1 union  select a b <SCRIPT>",
            "../../etc/passwd",
            "unionselect",
            "",
        ];
        let answers = |p: &Prefilter| -> Vec<Vec<usize>> {
            values
                .iter()
                .map(|v| {
                    let (mut scratch, mut out) = ((Vec::new(), Vec::new()), Vec::new());
                    p.matches(v, (&mut scratch.0, &mut scratch.1), &mut out, |i| {
                        regexes.get(i).is_some_and(|r| r.is_match(v))
                    });
                    out
                })
                .collect()
        };
        let mut p = Prefilter::new(&sources, 1 << 24);
        assert!(p.holds_automaton());
        let kept = answers(&p);
        assert_eq!(kept[2], vec![3]);
        p.release_automaton();
        assert!(!p.holds_automaton(), "released");
        assert_eq!(answers(&p), kept, "the same rules gated and matched");
        assert!(p.holds_automaton(), "built again on use");
    }

    /// Rules without a prefix or suffix set, as the built-in rules and a few shapes
    /// have them: every value a rule's regex matches holds one of its inner literals.
    #[test]
    fn every_match_holds_one_of_its_inner_literals() {
        let mut sources: Vec<String> = crate::rules::RuleSet::builtin()
            .map(|rs| {
                rs.rules
                    .iter()
                    .filter_map(|r| r.operator.regex_source())
                    .collect()
            })
            .unwrap_or_default();
        sources.extend(
            [
                r"(?i)(get|post)\s+\S+\s+http/\d|[\r\n]x",
                r"(^\s*\w*|['\x22]\s*)(;|\|)\s*(cat|id)\b",
                r"\bt\s*\(\s*java\.",
                r"(a|b)+\{\{",
            ]
            .map(String::from),
        );
        const PIECES: &[&str] = &[
            "a",
            "b",
            "t",
            "id",
            "cat",
            "or",
            "and",
            " ",
            "  ",
            "\t",
            "\n",
            "\r",
            ";",
            "|",
            "||",
            "&&",
            "`",
            "$(",
            "$",
            "(",
            ")",
            "{",
            "}",
            "{{",
            "}}",
            "${",
            "#set",
            "*",
            "7*7",
            "=",
            "==",
            "<",
            ">",
            "'",
            "\"",
            ",",
            ".",
            "/",
            "://",
            "http",
            "HTTP/1.1",
            "GET",
            "PoSt",
            "ſ",
            "K",
            "java.",
            "class",
            "constructor",
            "select",
            "union",
            "1",
            "42",
            "0x7f",
            "127.0.0.1",
            "file",
            "ftp",
            "gopher",
            "having",
            "where",
            "sleep",
            "on",
            "onload",
            "@",
            "[",
            "]",
            "$ne",
            "-",
            "--",
            "#",
            "%",
            "&",
            "\\",
            "é",
            "xip.io",
            "localtest.me",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let values: Vec<String> = (0..20_000)
            .map(|_| {
                let n = 1 + next() % 8;
                (0..n)
                    .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                    .collect()
            })
            .collect();
        let mut checked = 0;
        for src in &sources {
            let Ok(hir) = regex_syntax::ParserBuilder::new().build().parse(src) else {
                continue;
            };
            let outer = [ExtractKind::Prefix, ExtractKind::Suffix]
                .into_iter()
                .any(|kind| extracted(&hir, kind).is_some());
            let (false, Some(lits), Ok(re)) = (outer, required_of(src), regex::Regex::new(src))
            else {
                continue;
            };
            for v in values.iter().filter(|v| re.is_match(v)) {
                let lower = v.to_ascii_lowercase();
                assert!(
                    lits.iter()
                        .any(|l| lower.as_bytes().windows(l.len()).any(|w| w == l.as_slice())),
                    "{src} matches {v:?} without any of {lits:?}"
                );
                checked += 1;
            }
        }
        // The values reach the gated rules, not only the gates.
        assert!(checked > 500, "{checked}");
    }
}
