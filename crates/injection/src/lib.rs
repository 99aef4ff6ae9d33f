//! Lexer-based SQL injection and XSS detection, in the spirit of libinjection.
//!
//! Why a lexer and not regular expressions: attack payloads are tiny programs.
//! Tokenising the input the way the target interpreter (a SQL parser, an HTML
//! parser) would, and then looking at the *shape* of the token stream, is far
//! more robust against case, comment and whitespace obfuscation than pattern
//! lists, and far less noisy on ordinary text ("please select an option").
//!
//! Both detectors are std-only, linear in the input length (no backtracking,
//! bounded look-ahead), never panic, and look at most at the first
//! [`MAX_INPUT`] bytes of the input.
//!
//! Limitations (by design, to stay small and quiet): no per-dialect parsing
//! (MySQL/MSSQL/PostgreSQL/Oracle are lexed with one permissive lexer);
//! values are percent-decoded once but not base64/unicode-escape decoded;
//! SQL-shaped text (`name='John' and age=30`) is reported, because it *is*
//! SQL; entity-encoded markup in data context (`&lt;script&gt;`) is not,
//! because a browser renders it as text; CSS escapes (`\6a avascript`) and
//! DOM-based sinks are out of scope.

#![warn(missing_docs)]

mod sqli;
mod sqli_gate;
mod util;
mod xss;

/// Upper bound on how much of an input is inspected (64 KiB). Bounding the
/// work keeps the detectors safe to run inline on hostile request data.
pub const MAX_INPUT: usize = 64 * 1024;

/// What was recognised, for evidence.
///
/// Why both fields: the fingerprint says *which* shape was recognised (and is
/// stable enough to aggregate on), the matched text shows an analyst *where*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// For SQLi, the folded token-type fingerprint (e.g. `s&sos` for
    /// `1' or '1'='1`) prefixed by the rule that fired; for XSS the rule name
    /// (e.g. `xss:event-handler:onerror`).
    pub fingerprint: String,
    /// The part of the (possibly percent-decoded) input that triggered the
    /// match.
    pub matched: String,
}

/// SQL injection: tokenises `input` as SQL in three contexts (as-is, after a
/// single quote, after a double quote — i.e. the value was inside a quoted
/// string), folds the tokens into a short fingerprint of token types and
/// reports a match when the fingerprint is in a built-in set of SQLi
/// fingerprints or matches structural rules (tautology after a string-closing
/// quote, `UNION SELECT`, stacked queries, comment truncation, time-based
/// functions, ...).
///
/// Why three contexts: the same value is dangerous in different ways
/// depending on where the application splices it (`id=1 or 1=1` versus
/// `name=x' or '1'='1`); trying each is cheap and catches both. Returns `None`
/// for ordinary text, including names with apostrophes and English sentences
/// that happen to contain SQL keywords.
pub fn sqli(input: &str) -> Option<Match> {
    sqli::detect(util::truncate(input))
}

/// XSS: a small HTML tokenizer run in data, attribute-value and attribute
/// contexts that matches dangerous tags (`script`, `iframe`, `object`,
/// `embed`, `base`, `meta` refresh, `style` with `expression`/`javascript:`),
/// event-handler attributes (`onerror=`, `onload=`, ...) on any tag, and
/// `javascript:`/`vbscript:`/`data:text/html` URLs in URL attributes — also
/// after entity decoding and with whitespace/control characters inside the
/// scheme (`java&#x09;script:`).
///
/// Why a tokenizer: browsers are lenient (`<svg/onload=...>`, unquoted
/// values, entities in URLs); following their tokenisation rules catches
/// those forms while leaving `a < b`, `<3` and plain `<b>bold</b>` alone.
pub fn xss(input: &str) -> Option<Match> {
    xss::detect(util::truncate(input))
}

#[cfg(test)]
mod tests;
