//! SecLang operators (`@rx`, `@pm`, `@within`, ...), compiled once at load.
//!
//! Regexes use the `regex` crate (linear time). PCRE features it cannot express
//! (look-around, backreferences, possessive or atomic groups) make the rule unloadable;
//! the loader counts and reports those rules instead of failing.

use std::net::IpAddr;
use std::path::Path;

use regex::bytes::{Regex, RegexBuilder};

/// Largest compiled size for one operator regex (CRS's biggest fit easily).
const SIZE_LIMIT: usize = 32 * 1024 * 1024;

/// A compiled operator. Parameters containing `%{…}` macros are kept as text and
/// expanded per request.
#[derive(Debug, Clone)]
pub enum Op {
    /// `@rx`.
    Rx(Regex),
    /// `@rx` whose pattern has macros: compiled per request after expansion.
    RxMacro(String),
    /// `@rx` with CRS's SQL tautology pattern (a backreference): a native scan.
    Tautology(super::tautology::Tautology),
    /// `@rx` with CRS 920120's file-name pattern (a look-behind): a native scan.
    EntitySemicolon(super::entity_semicolon::EntitySemicolon),
    /// `@pm`/`@pmFromFile`: case-insensitive phrase match, one regex of literals.
    Pm(Regex),
    /// `@streq`.
    StrEq(String),
    /// `@contains`.
    Contains(String),
    /// `@containsWord`.
    ContainsWord(String),
    /// `@beginsWith`.
    BeginsWith(String),
    /// `@endsWith`.
    EndsWith(String),
    /// `@within`: the value is a substring of the parameter.
    Within(String),
    /// `@eq`, `@ge`, `@gt`, `@lt`, `@le` (parameter expanded, then an integer).
    Num(NumCmp, String),
    /// `@ipMatch` / `@ipMatchFromFile`.
    IpMatch(Vec<(IpAddr, u8)>),
    /// `@validateByteRange`: matches when a byte is outside the ranges.
    ValidateByteRange(Vec<(u8, u8)>),
    /// `@validateUrlEncoding`: matches an invalid `%` escape.
    ValidateUrlEncoding,
    /// `@validateUtf8Encoding`: matches invalid UTF-8 (see [`crate::seclang::request`]).
    ValidateUtf8Encoding,
    /// `@detectSQLi` (libinjection-style, `palisade-injection`).
    DetectSqli,
    /// `@detectXSS`.
    DetectXss,
    /// `@unconditionalMatch`.
    Unconditional,
    /// `@noMatch`.
    NoMatch,
}

/// Numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumCmp {
    /// `@eq`.
    Eq,
    /// `@ge`.
    Ge,
    /// `@gt`.
    Gt,
    /// `@lt`.
    Lt,
    /// `@le`.
    Le,
}

/// Why an operator could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// The operator is not implemented (`@rbl`, `@geoLookup`, `@inspectFile`, ...).
    Unsupported(String),
    /// A regex the linear-time engine cannot compile (look-around, backreference...).
    Regex(String),
    /// A data file could not be read.
    File(String),
    /// The parameter is malformed.
    Param(String),
}

/// Compiles a PCRE pattern with ModSecurity's flags (dot matches newline) on bytes, with
/// Unicode off (as PCRE without UTF mode) or, when the pattern has non-ASCII literals in
/// classes, on.
pub fn compile_rx(pattern: &str) -> Result<Regex, String> {
    let p = translate_pcre(pattern);
    let build = |unicode: bool| {
        RegexBuilder::new(&p)
            .unicode(unicode)
            .dot_matches_new_line(true)
            .size_limit(SIZE_LIMIT)
            .build()
    };
    build(false)
        .or_else(|_| build(true))
        .map_err(|e| e.to_string().lines().last().unwrap_or("").to_string())
}

/// PCRE spellings the `regex` crate writes differently: `\Z` (end, before a final
/// newline) becomes `\n?\z`; a `{` that cannot start a repetition is escaped.
fn translate_pcre(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    let mut in_quantifier = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                if n == 'Z' && !in_class {
                    out.push_str(r"\n?\z");
                } else if n == '/' {
                    out.push('/');
                } else if n == '<' || n == '>' {
                    // PCRE: a literal; the regex crate: a word boundary.
                    out.push(n);
                } else if n == 'b' && in_class {
                    out.push_str(r"\x08");
                } else {
                    out.push('\\');
                    out.push(n);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str(r"\]");
                    chars.next();
                }
            }
            '[' if in_class => {
                // Only POSIX classes like [:alpha:] nest; a bare `[` is a literal.
                if chars.peek() == Some(&':') {
                    out.push('[');
                    let mut prev = '[';
                    for x in chars.by_ref() {
                        out.push(x);
                        if prev == ':' && x == ']' {
                            break;
                        }
                        prev = x;
                    }
                } else {
                    out.push_str(r"\[");
                }
            }
            // Class set operators of the regex crate (`&&`, `--`, `~~`) are literals in PCRE.
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '-' if in_class && out.ends_with('-') => out.push_str(r"\-"),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '{' if !in_class => {
                // A quantifier is {n}, {n,}, {n,m}; anything else is a literal brace.
                let rest: String = chars.clone().take_while(|&x| x != '}').collect();
                let valid = !rest.is_empty()
                    && rest.len() < 12
                    && chars.clone().nth(rest.len()) == Some('}')
                    && rest.split(',').count() <= 2
                    && rest.split(',').next().is_some_and(|a| !a.is_empty())
                    && rest.chars().all(|x| x.is_ascii_digit() || x == ',');
                in_quantifier = valid;
                out.push_str(if valid { "{" } else { r"\{" });
            }
            '}' if !in_class => {
                // A `}` that closes a quantifier was preceded by a valid `{`; the
                // regex crate accepts a lone `}` as a literal.
                out.push('}');
                if in_quantifier && chars.peek() == Some(&'+') {
                    // Possessive `{n,m}+`: run greedy (see below).
                    chars.next();
                }
                in_quantifier = false;
            }
            // Possessive quantifiers (`*+`, `++`, `?+`) have no linear-time equivalent;
            // they run greedy, which matches everything the possessive form matches
            // (and, rarely, more).
            '*' | '+' | '?' if !in_class && !out.ends_with('(') => {
                out.push(c);
                if chars.peek() == Some(&'+') {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Builds a case-insensitive phrase matcher.
pub fn compile_pm(phrases: &[String]) -> Result<Regex, OpError> {
    let alts: Vec<String> = phrases
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| regex::escape(p))
        .collect();
    if alts.is_empty() {
        return Err(OpError::Param("no phrases".into()));
    }
    RegexBuilder::new(&alts.join("|"))
        .case_insensitive(true)
        .unicode(false)
        .size_limit(SIZE_LIMIT)
        .build()
        .or_else(|_| {
            RegexBuilder::new(&alts.join("|"))
                .case_insensitive(true)
                .size_limit(SIZE_LIMIT)
                .build()
        })
        .map_err(|e| OpError::Regex(e.to_string()))
}

/// Compiles `@name param`; `base` is the directory `@pmFromFile` paths are relative to.
pub fn compile(name: &str, param: &str, base: &Path) -> Result<Op, OpError> {
    let lname = name.to_ascii_lowercase();
    Ok(match lname.as_str() {
        "rx" => {
            if param.contains("%{") {
                Op::RxMacro(param.to_string())
            } else {
                match compile_rx(param) {
                    Ok(re) => Op::Rx(re),
                    Err(e) => {
                        if let Some(t) = super::tautology::Tautology::recognize(param) {
                            Op::Tautology(t)
                        } else if let Some(m) =
                            super::entity_semicolon::EntitySemicolon::recognize(param)
                        {
                            Op::EntitySemicolon(m)
                        } else {
                            return Err(OpError::Regex(e));
                        }
                    }
                }
            }
        }
        "pm" => {
            let phrases: Vec<String> = param.split_whitespace().map(str::to_string).collect();
            Op::Pm(compile_pm(&phrases)?)
        }
        "pmfromfile" | "pmf" => {
            let mut phrases = Vec::new();
            for file in param.split_whitespace() {
                let path = base.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| OpError::File(format!("{}: {e}", path.display())))?;
                phrases.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string),
                );
            }
            Op::Pm(compile_pm(&phrases)?)
        }
        "streq" => Op::StrEq(param.to_string()),
        "contains" => Op::Contains(param.to_string()),
        "containsword" => Op::ContainsWord(param.to_string()),
        "beginswith" => Op::BeginsWith(param.to_string()),
        "endswith" => Op::EndsWith(param.to_string()),
        "within" => Op::Within(param.to_string()),
        "eq" => Op::Num(NumCmp::Eq, param.to_string()),
        "ge" => Op::Num(NumCmp::Ge, param.to_string()),
        "gt" => Op::Num(NumCmp::Gt, param.to_string()),
        "lt" => Op::Num(NumCmp::Lt, param.to_string()),
        "le" => Op::Num(NumCmp::Le, param.to_string()),
        "ipmatch" => Op::IpMatch(parse_ips(param.split([',', ' ']))?),
        "ipmatchfromfile" | "ipmatchf" => {
            let path = base.join(param.trim());
            let text = std::fs::read_to_string(&path)
                .map_err(|e| OpError::File(format!("{}: {e}", path.display())))?;
            Op::IpMatch(parse_ips(
                text.lines().filter(|l| !l.trim_start().starts_with('#')),
            )?)
        }
        "validatebyterange" => Op::ValidateByteRange(parse_ranges(param)?),
        "validateurlencoding" => Op::ValidateUrlEncoding,
        "validateutf8encoding" => Op::ValidateUtf8Encoding,
        "detectsqli" => Op::DetectSqli,
        "detectxss" => Op::DetectXss,
        "unconditionalmatch" => Op::Unconditional,
        "nomatch" => Op::NoMatch,
        _ => return Err(OpError::Unsupported(format!("@{name}"))),
    })
}

fn parse_ips<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<(IpAddr, u8)>, OpError> {
    let mut out = Vec::new();
    for item in items.map(str::trim).filter(|s| !s.is_empty()) {
        let (addr, bits) = match item.split_once('/') {
            Some((a, b)) => (a, b.parse::<u8>().ok()),
            None => (item, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| OpError::Param(format!("not an IP address: {item}")))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        out.push((ip, bits.unwrap_or(max).min(max)));
    }
    Ok(out)
}

fn parse_ranges(param: &str) -> Result<Vec<(u8, u8)>, OpError> {
    param
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            match (a.trim().parse::<u8>(), b.trim().parse::<u8>()) {
                (Ok(a), Ok(b)) if a <= b => Ok((a, b)),
                _ => Err(OpError::Param(format!("bad byte range {r}"))),
            }
        })
        .collect()
}

/// Whether `ip` is inside `net/bits`.
pub fn ip_in(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `@validateUrlEncoding`: a `%` not followed by two hex digits.
pub fn invalid_url_encoding(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            let ok = s.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcre_translation_and_unsupported_features() {
        assert!(compile_rx(r"(?i)union\s+select").is_ok());
        assert!(compile_rx(r"a{,3}").unwrap().is_match(b"a{,3}"));
        assert!(compile_rx(r"x\Z").unwrap().is_match(b"x\n"));
        assert!(compile_rx(r"[^\]]+").unwrap().is_match(b"abc"));
        assert!(compile_rx(r"[[:alpha:]]").unwrap().is_match(b"a"));
        assert!(compile_rx(r"a.b").unwrap().is_match(b"a\nb"), "dotall");
        assert!(compile_rx(r"\xff").unwrap().is_match(&[0xff]), "bytes");
        assert!(compile_rx(r"(?=a)").is_err(), "look-ahead");
        assert!(compile_rx(r"(a)\1").is_err(), "backreference");
        assert!(compile_rx(r"(?>a)").is_err(), "atomic group");
        let ldap = compile_rx(r"^[^:\(\)\&\|\!\<\>\~]*\)\s*\<").unwrap();
        assert!(ldap.is_match(b"x) <"), "escaped < and > are literals");
        let possessive = compile_rx(r"^\s*+a++[^;]?+b{1,2}+$").unwrap();
        assert!(possessive.is_match(b"  aaab"), "possessive runs greedy");
        assert!(compile_rx(r"\++").unwrap().is_match(b"++"));
    }

    #[test]
    fn operators_compile_and_refuse() {
        let base = Path::new(".");
        assert!(matches!(
            compile("rbl", "x", base),
            Err(OpError::Unsupported(_))
        ));
        assert!(matches!(
            compile("pmFromFile", "nope.data", base),
            Err(OpError::File(_))
        ));
        let Ok(Op::Pm(pm)) = compile("pm", "Select Union", base) else {
            panic!()
        };
        assert!(pm.is_match(b"xx UNION yy"));
        let Ok(Op::IpMatch(ips)) = compile("ipMatch", "10.0.0.0/8,192.168.1.1", base) else {
            panic!()
        };
        assert!(ip_in("10.2.3.4".parse().unwrap(), ips[0].0, ips[0].1));
        assert!(!ip_in("11.2.3.4".parse().unwrap(), ips[0].0, ips[0].1));
        assert!(ip_in("192.168.1.1".parse().unwrap(), ips[1].0, ips[1].1));
        assert!(invalid_url_encoding(b"a%zz"));
        assert!(invalid_url_encoding(b"a%4"));
        assert!(!invalid_url_encoding(b"a%41b"));
        let Ok(Op::ValidateByteRange(r)) = compile("validateByteRange", "1-255", base) else {
            panic!()
        };
        assert_eq!(r, vec![(1, 255)]);
    }
}
