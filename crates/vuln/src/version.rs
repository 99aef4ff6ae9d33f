//! Version comparison for real-world version strings, the ones NVD ranges and
//! inventories actually contain: `2.4.49`, `1.1.1k` (OpenSSL's letter releases),
//! `8.5p1` (OpenSSH portable), `7.0.0-rc1`, `9.0.0.M1`, `2.0-beta9`, `3.12.0a1`,
//! `2:1.2.3-4ubuntu1` (Debian epoch and revision), `1.0~rc1`, `12.6(1)`.
//!
//! None of these is semver, and no single published scheme covers them, so the rules
//! are the ones the schemes agree on:
//!
//! - an optional `N:` epoch compares first (Debian, RPM);
//! - the rest is split into numbers and words; separators (`.`, `-`, `_`, `+`, …) only
//!   split. Numbers compare numerically (any length, no overflow); trailing zeros of a
//!   run of numbers do not count (`2.4` = `2.4.0`);
//! - pre-release words sort *before* the release: `dev`/`snapshot` < `alpha` (or `a`
//!   before a number) < `beta` (`b`) < `milestone` (`m`) < `pre`/`preview` < `rc`/`cr`
//!   (`c`) < the release itself, and `~` (Debian) before all of them;
//! - any other word sorts *after* the release it follows: `1.1.1k` > `1.1.1`,
//!   `8.5p1` > `8.5`, `1.2-4ubuntu1` > `1.2-4`; words compare alphabetically
//!   (`1.0.1g` > `1.0.1f`); `final`, `ga`, `release` and `stable` mean the release;
//! - a number sorts after a word in the same place (`1.0.1` > `1.0rc1`).
//!
//! Comparison never fails: any text is a version, so a malformed inventory line is
//! compared as well as it can be rather than aborting a matching run.

use std::cmp::Ordering;

/// One piece of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Debian's `~`: before everything, even the end.
    Tilde,
    /// A pre-release word with its rank.
    Pre(u8),
    /// A post-release word (lower case).
    Post(String),
    /// Digits without leading zeros (`""` for zero).
    Num(String),
}

impl Token {
    /// Where the token sorts relative to the end of a version: the class order is
    /// tilde < pre-release < end < post-release word < number.
    fn class(&self) -> u8 {
        match self {
            Token::Tilde => 0,
            Token::Pre(_) => 1,
            Token::Post(_) => 3,
            Token::Num(_) => 4,
        }
    }
}

/// The class of "nothing more".
const END_CLASS: u8 = 2;

/// A parsed version, for comparing one version with many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    epoch: Token,
    tokens: Vec<Token>,
}

impl Version {
    /// Parses any text (never fails).
    pub fn parse(text: &str) -> Version {
        let text = text.trim();
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                (number(e), rest)
            }
            _ => (Token::Num(String::new()), text),
        };
        // `v1.2` (Git tags, Go modules) is `1.2`.
        let rest = match rest.strip_prefix(['v', 'V']) {
            Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => r,
            _ => rest,
        };
        Version {
            epoch,
            tokens: tokenize(rest),
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_token(&self.epoch, &other.epoch).then_with(|| cmp_tokens(&self.tokens, &other.tokens))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two version strings (see the module documentation for the rules).
pub fn compare(a: &str, b: &str) -> Ordering {
    Version::parse(a).cmp(&Version::parse(b))
}

fn number(digits: &str) -> Token {
    Token::Num(digits.trim_start_matches('0').to_owned())
}

/// Splits into tokens, classifies words and drops the trailing zeros of each run of
/// numbers.
fn tokenize(text: &str) -> Vec<Token> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    // (is_number, text) pieces first: a word's meaning depends on what follows it.
    let mut pieces: Vec<(bool, &str)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            pieces.push((true, &lower[start..i]));
        } else if b.is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            pieces.push((false, &lower[start..i]));
        } else if b == b'~' {
            pieces.push((false, "~"));
            i += 1;
        } else {
            // Separators, and any non-ASCII byte (skipped whole with its character).
            i += 1;
            while i < bytes.len() && !lower.is_char_boundary(i) {
                i += 1;
            }
        }
    }
    let mut tokens: Vec<Token> = Vec::with_capacity(pieces.len());
    for (k, (is_number, piece)) in pieces.iter().enumerate() {
        if *is_number {
            tokens.push(number(piece));
            continue;
        }
        let next_is_number = pieces.get(k + 1).is_some_and(|(n, _)| *n);
        // A neutral word (`final`, `ga`) is the release itself: no token.
        if let Some(t) = classify(piece, next_is_number) {
            tokens.push(t);
        }
    }
    trim_zero_runs(tokens)
}

/// What a word means; `None` for words that mean "the release".
fn classify(word: &str, next_is_number: bool) -> Option<Token> {
    Some(match word {
        "~" => Token::Tilde,
        "dev" | "snapshot" | "nightly" => Token::Pre(1),
        "alpha" | "ea" => Token::Pre(2),
        "beta" => Token::Pre(3),
        "milestone" => Token::Pre(4),
        "pre" | "preview" => Token::Pre(5),
        "rc" | "cr" => Token::Pre(6),
        "a" if next_is_number => Token::Pre(2),
        "b" if next_is_number => Token::Pre(3),
        "m" if next_is_number => Token::Pre(4),
        "c" if next_is_number => Token::Pre(6),
        "final" | "ga" | "release" | "stable" => return None,
        other => Token::Post(other.to_owned()),
    })
}

/// `2.4.0` = `2.4`, `1.0.0-rc1` = `1.0-rc1`: a zero at the end of a run of numbers
/// means nothing.
fn trim_zero_runs(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut run_start = 0;
    for t in tokens {
        if matches!(t, Token::Num(_)) {
            if !matches!(out.last(), Some(Token::Num(_))) {
                run_start = out.len();
            }
            out.push(t);
        } else {
            trim_run(&mut out, run_start);
            out.push(t);
            run_start = out.len();
        }
    }
    trim_run(&mut out, run_start);
    out
}

fn trim_run(out: &mut Vec<Token>, run_start: usize) {
    while out.len() > run_start && matches!(out.last(), Some(Token::Num(n)) if n.is_empty()) {
        out.pop();
    }
}

fn cmp_number(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_token(a: &Token, b: &Token) -> Ordering {
    match (a, b) {
        (Token::Num(x), Token::Num(y)) => cmp_number(x, y),
        (Token::Pre(x), Token::Pre(y)) => x.cmp(y),
        (Token::Post(x), Token::Post(y)) => x.cmp(y),
        _ => a.class().cmp(&b.class()),
    }
}

fn cmp_tokens(a: &[Token], b: &[Token]) -> Ordering {
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => return Ordering::Equal,
            (Some(x), None) => return x.class().cmp(&END_CLASS),
            (None, Some(y)) => return END_CLASS.cmp(&y.class()),
            (Some(x), Some(y)) => match cmp_token(x, y) {
                Ordering::Equal => i += 1,
                other => return other,
            },
        }
    }
}

/// One end of a range, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Bound<'a> {
    /// The version text.
    pub version: &'a str,
    /// Whether the bound itself is in the range.
    pub inclusive: bool,
}

/// Whether `v` lies between the bounds (a missing bound is open).
pub fn in_range(v: &Version, start: Option<Bound<'_>>, end: Option<Bound<'_>>) -> bool {
    if let Some(s) = start {
        match v.cmp(&Version::parse(s.version)) {
            Ordering::Less => return false,
            Ordering::Equal if !s.inclusive => return false,
            _ => {}
        }
    }
    if let Some(e) = end {
        match v.cmp(&Version::parse(e.version)) {
            Ordering::Greater => return false,
            Ordering::Equal if !e.inclusive => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(a: &str, b: &str) {
        assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
        assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
    }

    fn eq(a: &str, b: &str) {
        assert_eq!(compare(a, b), Ordering::Equal, "{a} = {b}");
    }

    #[test]
    fn dotted_numbers() {
        lt("2.4.49", "2.4.50");
        lt("2.4.5", "2.4.49");
        lt("1.9", "1.10");
        eq("2.4", "2.4.0");
        eq("2.4.0.0", "2.4");
        lt("2.4", "2.4.1");
        lt("0.6.18", "1.20.1");
        eq("01.002", "1.2");
        lt("99999999999999999999999", "100000000000000000000000");
    }

    #[test]
    fn openssl_letter_releases_come_after() {
        lt("1.0.1", "1.0.1a");
        lt("1.0.1f", "1.0.1g");
        lt("1.0.1g", "1.0.2");
        lt("1.1.1k", "1.1.1l");
        lt("0.9.8z", "0.9.8za");
        lt("1.0.1-beta1", "1.0.1");
    }

    #[test]
    fn openssh_portable_releases() {
        lt("8.5", "8.5p1");
        lt("8.5p1", "8.6");
        lt("9.7p1", "9.8");
        lt("9.8", "9.8p1");
        lt("8.9p1", "8.9p2");
    }

    #[test]
    fn pre_releases_come_before() {
        lt("7.0.0-rc1", "7.0.0");
        lt("7.0.0-rc1", "7.0.0-rc2");
        lt("7.0.0-beta2", "7.0.0-rc1");
        lt("2.0-alpha1", "2.0-beta9");
        lt("2.0-beta9", "2.0-rc1");
        lt("2.0-rc2", "2.0");
        lt("9.0.0.M1", "9.0.0");
        lt("9.0.0-milestone1", "9.0.0-milestone10");
        lt("9.0.0-milestone27", "9.0.1");
        lt("3.12.0a1", "3.12.0b1");
        lt("3.12.0b1", "3.12.0rc1");
        lt("3.12.0rc1", "3.12.0");
        lt("1.0-SNAPSHOT", "1.0");
        eq("1.0.0-rc1", "1.0-rc1");
        eq("2.0-final", "2.0");
        eq("5.3.20.RELEASE", "5.3.20");
        lt("1.0rc1", "1.0.1");
    }

    #[test]
    fn debian_and_rpm_forms() {
        lt("1:1.0", "2:0.5");
        lt("9.2p1-2", "1:9.2p1-2");
        lt("1.2.3-4", "1.2.3-4ubuntu1");
        lt("1.2.3-4ubuntu1", "1.2.3-4ubuntu2");
        lt("2:1.2.3-4ubuntu1", "2:1.2.3-5");
        lt("3.0.11-1~deb12u1", "3.0.11-1");
        lt("3.0.11-1~deb12u1", "3.0.11-1~deb12u2");
        lt("1.0~rc1", "1.0");
        lt("1.0~rc1", "1.0~rc2");
        lt("1.0.2k-19.el7", "1.0.2k-21.el7");
        lt("2.4.6-97.el7", "2.4.6-97.el7_9.1");
    }

    #[test]
    fn odd_text_never_panics_and_orders_somehow() {
        for v in [
            "",
            "-",
            "*",
            "…",
            "ä1",
            "1..2",
            "::",
            "12.6(1)",
            "2021-12-13",
            "v1.2",
            "1:",
            ":1",
        ] {
            let _ = compare(v, "1.0");
            assert_eq!(compare(v, v), Ordering::Equal, "{v}");
        }
        lt("12.6(1)", "12.6(2)");
        lt("2021.11_1.162", "2021.11_1.163");
        eq("v1.2", "1.2");
    }

    #[test]
    fn ranges_respect_inclusive_and_exclusive_bounds() {
        let start = Some(Bound {
            version: "2.0.1",
            inclusive: true,
        });
        let end = Some(Bound {
            version: "2.15.0",
            inclusive: false,
        });
        let inr = |v: &str| in_range(&Version::parse(v), start, end);
        assert!(inr("2.0.1"));
        assert!(inr("2.14.1"));
        assert!(!inr("2.15.0"));
        assert!(!inr("2.0"));
        assert!(!inr("2.17.1"));
        let incl_end = Some(Bound {
            version: "11.70.2",
            inclusive: true,
        });
        assert!(in_range(&Version::parse("11.70.2"), None, incl_end));
        assert!(!in_range(&Version::parse("11.70.3"), None, incl_end));
        let excl_start = Some(Bound {
            version: "1.0",
            inclusive: false,
        });
        assert!(!in_range(&Version::parse("1.0"), excl_start, None));
        assert!(in_range(&Version::parse("1.0.1"), excl_start, None));
    }
}
