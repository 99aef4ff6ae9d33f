//! Bridge to the libinjection-style detectors of `palisade-injection`, used by the
//! `detect_sqli` and `detect_xss` rule operators.
//!
//! Kept behind two small functions so the engine does not care where the detectors come
//! from; if they were ever unavailable, [`available`] returning `false` makes the engine
//! report those rules through [`crate::Engine::unsupported_rules`] instead of silently
//! never matching.

use crate::rules::Operator;

/// Whether the detector operators are wired in this build.
pub(crate) fn available() -> bool {
    true
}

/// Runs a detector operator; on a hit returns the evidence as
/// `"<matched text> [<fingerprint>]"`.
pub(crate) fn detect(op: &Operator, value: &str) -> Option<String> {
    let m = match op {
        Operator::DetectSqli => palisade_injection::sqli(value)?,
        Operator::DetectXss => palisade_injection::xss(value)?,
        Operator::Regex(_) | Operator::ContainsAny(_) => return None,
    };
    Some(format!("{} [{}]", m.matched, m.fingerprint))
}
