//! CRS's SQL tautology rule (942130 in CRS 3.3; 942130/942131 in CRS 4) without
//! backtracking.
//!
//! Its regex needs a backreference and a negative look-ahead (`\b([\d\w]+)\b … =
//! … \b\1\b`, `… != … (?!\b\1\b)[\d\w]+`), which the linear-time `regex` crate cannot
//! express, so the rule used to be skipped — and with it most of what CRS blocks at
//! paranoia 2 on CSIC 2010 (`1=1`, `'a'='a'`, `2>1` in a parameter). The pattern is a
//! fixed shape, so it runs here as a scan over words instead: a word, an SQL comparison,
//! then the *same* word (`=`, `<=>`, `like`, `rlike`, `regexp`, `sounds like`) or a
//! *different* word (`<`, `<=`, `<>`, `>`, `>=`, `!=`, `^`, `not like`, `not regexp`,
//! `is not`), with the regex's separators (whitespace, quotes, backtick, parentheses)
//! around the comparison. Linear in the value for each word; matches exactly what PCRE
//! matches for CRS 3.3.4's pattern (checked against ModSecurity on CSIC 2010, see
//! docs/BENCHMARKS.md "Beside ModSecurity (stop 23)").

/// Which comparisons a loaded tautology pattern contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tautology {
    /// Comparisons that need the same word on both sides (`1=1`).
    same: bool,
    /// Comparisons that need a different word on the right (`1<2`).
    different: bool,
    /// CRS 4 adds `glob` to the same-word comparisons.
    glob: bool,
}

/// The word-capture heads of the CRS tautology patterns (3.3 and 4.x spellings).
const HEADS: &[&str] = &[r"\b([\d\w]+)\b", r"\b([0-9A-Z_a-z]+)\b"];
/// The "not the same word" look-aheads.
const NOT_SAME: &[&str] = &[r"(?!\b\1\b)", r"(?!\1\b)"];

impl Tautology {
    /// Recognises a CRS tautology pattern (a captured word compared with `\1`); other
    /// patterns with backreferences stay unsupported.
    pub fn recognize(pattern: &str) -> Option<Tautology> {
        if !HEADS.iter().any(|h| pattern.contains(h)) || !pattern.contains(r"\1") {
            return None;
        }
        let lower = pattern.to_ascii_lowercase();
        if !(lower.contains("like") || lower.contains("!=") || lower.contains('=')) {
            return None;
        }
        let different = NOT_SAME.iter().any(|n| pattern.contains(n));
        let mut rest = pattern.to_string();
        for n in NOT_SAME {
            rest = rest.replace(n, "");
        }
        Some(Tautology {
            same: rest.contains(r"\1"),
            different,
            glob: lower.contains("glob"),
        })
    }

    /// The first tautology in `s` as its byte span (first word to second word).
    pub fn find(&self, s: &[u8]) -> Option<(usize, usize)> {
        let mut i = 0;
        while i < s.len() {
            if !is_word(s, i) || is_word(s, i.wrapping_sub(1)) {
                i += 1;
                continue;
            }
            let start = i;
            while is_word(s, i) {
                i += 1;
            }
            if let Some(end) = self.after_word(s, start, i) {
                return Some((start, end));
            }
        }
        None
    }

    /// Whether the word `s[ws..we]` is followed by a tautological comparison; returns
    /// the end of the right-hand word.
    fn after_word(&self, s: &[u8], ws: usize, we: usize) -> Option<usize> {
        let word = s.get(ws..we)?;
        let p = skip(s, we, is_sep);
        let mut ends: Vec<(usize, bool)> = Vec::with_capacity(4);
        if self.different {
            for op in ["<=", "<>", "<", ">=", ">", "!=", "^"] {
                if let Some(q) = lit(s, p, op) {
                    // `<=>` is a same-word comparison; `<` before `=` is `<=`.
                    let next = s.get(q).copied();
                    let blocked =
                        (op == "<=" && next == Some(b'>')) || (op == "<" && next == Some(b'='));
                    if !blocked {
                        ends.push((q, false));
                    }
                }
            }
            for (a, b) in [("not", "regexp"), ("not", "like"), ("is", "not")] {
                if let Some(q) = two_words(s, p, a, b) {
                    ends.push((q, false));
                }
            }
        }
        if self.same {
            for op in ["<=>", "=", "like", "rlike", "regexp"] {
                if let Some(q) = lit(s, p, op) {
                    ends.push((q, true));
                }
            }
            if self.glob
                && let Some(q) = lit(s, p, "glob")
            {
                ends.push((q, true));
            }
            if let Some(q) = two_words(s, p, "sounds", "like") {
                ends.push((q, true));
            }
        }
        for (q, same) in ends {
            let r = skip(s, q, is_sep);
            if !is_word(s, r) {
                continue;
            }
            let boundary = !is_word(s, r.wrapping_sub(1));
            let equal = boundary
                && s.get(r..r + word.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(word))
                && !is_word(s, r + word.len());
            if same && equal {
                return Some(r + word.len());
            }
            if !same && !equal {
                return Some(skip(s, r, |c| c.is_ascii_alphanumeric() || c == b'_'));
            }
        }
        None
    }
}

/// PCRE's `\w` without UTF mode: ASCII letters, digits and `_`. Out of range is not a
/// word character (so index `usize::MAX` from `wrapping_sub` at 0 is a boundary).
fn is_word(s: &[u8], i: usize) -> bool {
    s.get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The regex's separator class `[\s'"`()]`.
fn is_sep(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b'\'' | b'"' | b'`' | b'(' | b')'
    )
}

fn skip(s: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while s.get(i).is_some_and(|c| f(*c)) {
        i += 1;
    }
    i
}

/// `op` (ASCII, case-insensitive) at `p`: the position after it.
fn lit(s: &[u8], p: usize, op: &str) -> Option<usize> {
    let end = p + op.len();
    s.get(p..end)
        .is_some_and(|x| x.eq_ignore_ascii_case(op.as_bytes()))
        .then_some(end)
}

/// `a\s+b` at `p`.
fn two_words(s: &[u8], p: usize, a: &str, b: &str) -> Option<usize> {
    let q = lit(s, p, a)?;
    let r = skip(s, q, |c| {
        matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
    });
    if r == q {
        return None;
    }
    lit(s, r, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRS 3.3.4's rule 942130 pattern, verbatim.
    const CRS_3_3: &str = r#"(?i:[\s'\"`()]*?\b([\d\w]+)\b[\s'\"`()]*?(?:<(?:=(?:[\s'\"`()]*?(?!\b\1\b)[\d\w]+|>[\s'\"`()]*?(?:\b\1\b))|>?[\s'\"`()]*?(?!\b\1\b)[\d\w]+)|(?:not\s+(?:regexp|like)|is\s+not|>=?|!=|\^)[\s'\"`()]*?(?!\b\1\b)[\d\w]+|(?:(?:sounds\s+)?like|r(?:egexp|like)|=)[\s'\"`()]*?(?:\b\1\b)))"#;

    fn hit(s: &str) -> Option<String> {
        let t = Tautology::recognize(CRS_3_3).unwrap();
        t.find(s.as_bytes())
            .map(|(a, b)| String::from_utf8_lossy(&s.as_bytes()[a..b]).into_owned())
    }

    #[test]
    fn recognizes_the_crs_pattern_only() {
        let t = Tautology::recognize(CRS_3_3).unwrap();
        assert!(t.same && t.different && !t.glob);
        assert_eq!(Tautology::recognize(r"(a)\1"), None);
        assert_eq!(Tautology::recognize(r"(?i)union\s+select"), None);
    }

    /// Matches PCRE's answers for the 3.3.4 pattern (each checked with
    /// `grep -P` on the same pattern).
    #[test]
    fn same_word_comparisons() {
        assert_eq!(hit("1=1").as_deref(), Some("1=1"));
        assert_eq!(hit("' or 'a'='a").as_deref(), Some("a'='a"));
        assert_eq!(hit("x OR Abc LIKE aBC--").as_deref(), Some("Abc LIKE aBC"));
        assert_eq!(hit("1 <=> 1").as_deref(), Some("1 <=> 1"));
        assert_eq!(
            hit("a sounds   like a").as_deref(),
            Some("a sounds   like a")
        );
        assert_eq!(hit("(x)rlike(x)").as_deref(), Some("x)rlike(x"));
        assert_eq!(hit("id=1"), None, "different words");
        assert_eq!(hit("1=12"), None, "a longer word is not the same word");
        assert_eq!(hit("a=b=c"), None);
    }

    #[test]
    fn different_word_comparisons() {
        assert_eq!(hit("2>1").as_deref(), Some("2>1"));
        assert_eq!(hit("1 != 2").as_deref(), Some("1 != 2"));
        assert_eq!(hit("a<>b").as_deref(), Some("a<>b"));
        assert_eq!(hit("a <= b").as_deref(), Some("a <= b"));
        assert_eq!(hit("x IS NOT null").as_deref(), Some("x IS NOT null"));
        assert_eq!(hit("x not like 'y'").as_deref(), Some("x not like 'y"));
        assert_eq!(hit("1^2").as_deref(), Some("1^2"));
        assert_eq!(hit("a<a"), None, "same word after <");
        assert_eq!(hit("1 != 1"), None);
        assert_eq!(hit("a <=> b"), None, "<=> needs the same word");
        assert_eq!(hit("a < = b"), None, "`<` then `=` is neither");
    }

    #[test]
    fn benign_text() {
        assert_eq!(hit("Jamón Ibérico"), None);
        assert_eq!(hit("hello world, how are you?"), None);
        assert_eq!(hit("name@example.com"), None);
        // Prose can be a tautology to this rule too, as in ModSecurity: a PL2 rule.
        assert_eq!(hit("this is not good").as_deref(), Some("this is not good"));
    }
}
