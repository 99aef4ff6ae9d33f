//! Rules as data: the TOML rule format, its validation and loading.
//!
//! Rules live in files rather than code so operators can add, tune and hot-reload them;
//! every load error names the file, the rule id and the field so a broken file is quick
//! to fix. The format is documented in `RULES.md`.

use std::fmt;
use std::path::Path;

pub use palisade_core::severity::Severity;

use crate::request::{Location, Part};
use crate::transform::Transform;

/// Built-in rule files, embedded so the engine works with no files on disk.
const BUILTIN: &[(&str, &str)] = &[
    ("builtin/sqli.toml", include_str!("../rules/sqli.toml")),
    ("builtin/xss.toml", include_str!("../rules/xss.toml")),
    ("builtin/lfi.toml", include_str!("../rules/lfi.toml")),
    ("builtin/rfi.toml", include_str!("../rules/rfi.toml")),
    ("builtin/rce.toml", include_str!("../rules/rce.toml")),
    ("builtin/ssrf.toml", include_str!("../rules/ssrf.toml")),
    ("builtin/jndi.toml", include_str!("../rules/jndi.toml")),
    ("builtin/ssti.toml", include_str!("../rules/ssti.toml")),
    ("builtin/xxe.toml", include_str!("../rules/xxe.toml")),
    ("builtin/nosqli.toml", include_str!("../rules/nosqli.toml")),
    ("builtin/ldapi.toml", include_str!("../rules/ldapi.toml")),
    ("builtin/mail.toml", include_str!("../rules/mail.toml")),
    ("builtin/crlf.toml", include_str!("../rules/crlf.toml")),
    (
        "builtin/protocol.toml",
        include_str!("../rules/protocol.toml"),
    ),
    (
        "builtin/scanner.toml",
        include_str!("../rules/scanner.toml"),
    ),
];

/// Largest compiled size allowed for one regex, so a rule file cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// Whether loading a rule file compiles each regex to prove it compiles.
///
/// A user's file is checked where it is loaded, so a broken one is reported at start-up
/// with its file and rule. The embedded rules are the same text in every run of a
/// binary, so they are proven once, by `every_builtin_regex_compiles` in the tests,
/// rather than at every start: that check compiled 136 regexes for nothing (the engine
/// compiles what it runs itself), ~480 M instructions of every `palisade ingest`'s
/// serial start-up (docs/BENCHMARKS.md, ingest8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Compile every regex (user files).
    Compile,
    /// Parse only (the embedded rules, proven by the tests).
    Trusted,
}

/// Compiles `src` as a rule's regex is compiled, to prove it compiles within
/// [`REGEX_SIZE_LIMIT`].
fn compile_check(src: &str) -> Result<(), String> {
    regex::RegexBuilder::new(src)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Why a rule set could not be loaded; always names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A rule directory or file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file or directory.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{file}: invalid TOML: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A rule or exclusion has a missing or invalid field.
    #[error("{file}: rule {}: field `{field}`: {message}", rule_id.map(|i| i.to_string()).unwrap_or_else(|| "?".into()))]
    Field {
        /// The file.
        file: String,
        /// The rule id when it could be read.
        rule_id: Option<u32>,
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Attack family a rule detects, so findings can be grouped and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting.
    Xss,
    /// Local file inclusion / path traversal.
    Lfi,
    /// Remote file inclusion.
    Rfi,
    /// OS command injection.
    Rce,
    /// Server-side request forgery.
    Ssrf,
    /// JNDI lookups (Log4Shell).
    Jndi,
    /// Server-side template injection.
    Ssti,
    /// XML external entities.
    Xxe,
    /// Protocol anomalies.
    Protocol,
    /// Known scanners.
    Scanner,
    /// NoSQL (MongoDB operator and server-side JavaScript) injection.
    Nosqli,
    /// LDAP filter injection.
    Ldapi,
    /// IMAP/SMTP command injection.
    Mail,
    /// CRLF / HTTP header injection and response splitting.
    Crlf,
}

impl Category {
    /// Parses the rule-file spelling.
    pub fn from_name(s: &str) -> Option<Category> {
        Some(match s {
            "sqli" => Category::Sqli,
            "xss" => Category::Xss,
            "lfi" => Category::Lfi,
            "rfi" => Category::Rfi,
            "rce" => Category::Rce,
            "ssrf" => Category::Ssrf,
            "jndi" => Category::Jndi,
            "ssti" => Category::Ssti,
            "xxe" => Category::Xxe,
            "protocol" => Category::Protocol,
            "scanner" => Category::Scanner,
            "nosqli" => Category::Nosqli,
            "ldapi" => Category::Ldapi,
            "mail" => Category::Mail,
            "crlf" => Category::Crlf,
            _ => return None,
        })
    }

    /// The rule-file spelling, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Sqli => "sqli",
            Category::Xss => "xss",
            Category::Lfi => "lfi",
            Category::Rfi => "rfi",
            Category::Rce => "rce",
            Category::Ssrf => "ssrf",
            Category::Jndi => "jndi",
            Category::Ssti => "ssti",
            Category::Xxe => "xxe",
            Category::Protocol => "protocol",
            Category::Scanner => "scanner",
            Category::Nosqli => "nosqli",
            Category::Ldapi => "ldapi",
            Category::Mail => "mail",
            Category::Crlf => "crlf",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which parts of a request a rule inspects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Every argument value (query and body).
    Args,
    /// Argument values whose name equals this (case-insensitive).
    Arg(String),
    /// Every argument name.
    ArgsNames,
    /// Query-string argument values only.
    QueryArgs,
    /// Body argument values only.
    BodyArgs,
    /// The decoded path.
    Path,
    /// The raw request target.
    UriRaw,
    /// The raw query string.
    QueryString,
    /// Cookie values.
    Cookies,
    /// Cookie names.
    CookieNames,
    /// Inspected header values.
    Headers,
    /// One header's value (lowercase name).
    Header(String),
    /// Inspected header names.
    HeaderNames,
    /// The raw body.
    Body,
    /// The method.
    Method,
    /// The protocol version.
    Protocol,
    /// Protocol anomaly markers (value = anomaly name).
    Anomalies,
    /// Decoded path segments that are not plain names.
    PathSegments,
    /// Values of every header outside the always-inspected set, credentials excepted.
    OtherHeaders,
}

impl Target {
    /// Parses the rule-file spelling (`args`, `args:name`, `headers:user-agent`, ...).
    pub fn from_name(s: &str) -> Option<Target> {
        if let Some(n) = s.strip_prefix("args:") {
            return (!n.is_empty()).then(|| Target::Arg(n.to_ascii_lowercase()));
        }
        if let Some(n) = s.strip_prefix("headers:") {
            return (!n.is_empty()).then(|| Target::Header(n.to_ascii_lowercase()));
        }
        Some(match s {
            "args" => Target::Args,
            "args_names" => Target::ArgsNames,
            "query_args" => Target::QueryArgs,
            "body_args" => Target::BodyArgs,
            "path" => Target::Path,
            "uri_raw" => Target::UriRaw,
            "query_string" => Target::QueryString,
            "cookies" => Target::Cookies,
            "cookie_names" => Target::CookieNames,
            "headers" => Target::Headers,
            "header_names" => Target::HeaderNames,
            "body" => Target::Body,
            "method" => Target::Method,
            "protocol" => Target::Protocol,
            "anomalies" => Target::Anomalies,
            "path_segments" => Target::PathSegments,
            "other_headers" => Target::OtherHeaders,
            _ => return None,
        })
    }

    /// Whether some part at `location` can be covered by this target (for a target
    /// that names its argument or header, the part of that name), so the engine can
    /// tell once which groups a part's location needs.
    pub fn covers(&self, location: Location) -> bool {
        let name = match self {
            Target::Arg(n) | Target::Header(n) => n.clone(),
            _ => String::new(),
        };
        self.matches(&Part {
            location,
            name,
            value: String::new(),
        })
    }

    /// Whether a parsed part is covered by this target.
    pub fn matches(&self, part: &Part) -> bool {
        use Location as L;
        match self {
            Target::Args => matches!(part.location, L::QueryArgValue | L::BodyArgValue),
            Target::Arg(n) => {
                matches!(part.location, L::QueryArgValue | L::BodyArgValue)
                    && part.name.eq_ignore_ascii_case(n)
            }
            Target::ArgsNames => matches!(part.location, L::QueryArgName | L::BodyArgName),
            Target::QueryArgs => part.location == L::QueryArgValue,
            Target::BodyArgs => part.location == L::BodyArgValue,
            Target::Path => part.location == L::Path,
            Target::UriRaw => part.location == L::UriRaw,
            Target::QueryString => part.location == L::QueryString,
            Target::Cookies => part.location == L::CookieValue,
            Target::CookieNames => part.location == L::CookieName,
            Target::Headers => part.location == L::HeaderValue,
            Target::Header(n) => part.location == L::HeaderValue && part.name == *n,
            Target::HeaderNames => part.location == L::HeaderName,
            Target::Body => part.location == L::Body,
            Target::Method => part.location == L::Method,
            Target::Protocol => part.location == L::Protocol,
            Target::Anomalies => part.location == L::Anomaly,
            Target::PathSegments => part.location == L::PathSegment,
            Target::OtherHeaders => part.location == L::OtherHeaderValue,
        }
    }
}

/// How a rule decides that a transformed value matches.
#[derive(Debug, Clone)]
pub enum Operator {
    /// A linear-time regular expression (the `regex` crate syntax).
    Regex(String),
    /// Any of these literal substrings (compiled into one regex).
    ContainsAny(Vec<String>),
    /// libinjection-style SQL injection detection (needs `palisade-injection`).
    DetectSqli,
    /// libinjection-style XSS detection (needs `palisade-injection`).
    DetectXss,
}

impl Operator {
    /// The regex source this operator compiles to, if it is regex-based.
    pub fn regex_source(&self) -> Option<String> {
        match self {
            Operator::Regex(r) => Some(r.clone()),
            Operator::ContainsAny(list) => Some(
                list.iter()
                    .map(|s| regex::escape(s))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            Operator::DetectSqli | Operator::DetectXss => None,
        }
    }
}

/// One detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id, reported in findings and used by exclusions.
    pub id: u32,
    /// Human-readable name.
    pub name: String,
    /// Attack family.
    pub category: Category,
    /// Severity (anomaly points).
    pub severity: Severity,
    /// Lowest paranoia level at which the rule runs (1–4).
    pub paranoia: u8,
    /// Inspected parts.
    pub targets: Vec<Target>,
    /// Transformations applied, in order, before matching.
    pub transforms: Vec<Transform>,
    /// The match operator.
    pub operator: Operator,
    /// Where the rule was loaded from, for diagnostics.
    pub source: String,
}

/// Skips some rules for a target on some paths, to silence known false positives.
#[derive(Debug, Clone)]
pub struct Exclusion {
    /// Rules affected.
    pub rule_ids: Vec<u32>,
    /// Only requests whose decoded path starts with this; all paths when absent.
    pub path_prefix: Option<String>,
    /// Only this target; all targets when absent.
    pub target: Option<Target>,
}

impl Exclusion {
    /// Whether this exclusion silences `rule_id` for `part` on `path`.
    pub fn applies(&self, rule_id: u32, path: &str, part: &Part) -> bool {
        self.rule_ids.contains(&rule_id)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
            && self.target.as_ref().is_none_or(|t| t.matches(part))
    }
}

/// A validated set of rules and exclusions, ready to build an engine from.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The rules, ids unique.
    pub rules: Vec<Rule>,
    /// The exclusions.
    pub exclusions: Vec<Exclusion>,
}

impl RuleSet {
    /// Loads the built-in rules plus every `*.toml` in `dir` (sorted by name), so users
    /// extend the defaults without copying them.
    pub fn load(dir: Option<&Path>) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::builtin()?;
        if let Some(dir) = dir {
            let files =
                palisade_core::definitions::read_toml_files(dir).map_err(|e| RuleError::Io {
                    file: e.file,
                    source: e.source,
                })?;
            for (name, text) in files {
                set.add_source(&name, &text)?;
            }
        }
        Ok(set)
    }

    /// Only the embedded default rules.
    ///
    /// Parsed the first time only (their regexes are not compiled here: see [`Check`]);
    /// later calls get a copy. A process asks for them more than once at start-up (the
    /// configuration's validation, then the engine it builds); the embedded text cannot
    /// change while the process runs, so the copy is what a second parse would give.
    pub fn builtin() -> Result<RuleSet, RuleError> {
        static PARSED: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
        if let Some(set) = PARSED.get() {
            return Ok(set.clone());
        }
        let set = RuleSet::parse_builtin()?;
        Ok(PARSED.get_or_init(|| set).clone())
    }

    /// The embedded default rules parsed anew.
    fn parse_builtin() -> Result<RuleSet, RuleError> {
        #[cfg(test)]
        tests::BUILTIN_PARSES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut set = RuleSet::default();
        for (name, text) in BUILTIN {
            set.add_text(name, text, Check::Trusted)?;
        }
        Ok(set)
    }

    /// Parses one rule file's text and adds its rules and exclusions; `file` names it in
    /// errors. Rejects duplicate ids.
    pub fn add_source(&mut self, file: &str, text: &str) -> Result<(), RuleError> {
        self.add_text(file, text, Check::Compile)
    }

    /// [`RuleSet::add_source`], each regex compiled to prove it compiles or not
    /// (`check`).
    fn add_text(&mut self, file: &str, text: &str, check: Check) -> Result<(), RuleError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| RuleError::Syntax {
                file: file.to_string(),
                message: e.message().to_string(),
            })?;
        for key in table.keys() {
            if key != "rule" && key != "exclusion" {
                return Err(field_err(file, None, key, "unknown top-level key"));
            }
        }
        if let Some(rules) = table.get("rule") {
            let arr = rules
                .as_array()
                .ok_or_else(|| field_err(file, None, "rule", "must be [[rule]] tables"))?;
            for item in arr {
                let t = item
                    .as_table()
                    .ok_or_else(|| field_err(file, None, "rule", "must be a table"))?;
                let rule = parse_rule(file, t, check)?;
                if self.rules.iter().any(|r| r.id == rule.id) {
                    return Err(field_err(file, Some(rule.id), "id", "duplicate rule id"));
                }
                self.rules.push(rule);
            }
        }
        if let Some(ex) = table.get("exclusion") {
            let arr = ex.as_array().ok_or_else(|| {
                field_err(file, None, "exclusion", "must be [[exclusion]] tables")
            })?;
            for item in arr {
                let t = item
                    .as_table()
                    .ok_or_else(|| field_err(file, None, "exclusion", "must be a table"))?;
                self.exclusions.push(parse_exclusion(file, t)?);
            }
        }
        Ok(())
    }
}

fn field_err(file: &str, id: Option<u32>, field: &str, message: &str) -> RuleError {
    RuleError::Field {
        file: file.to_string(),
        rule_id: id,
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn str_field<'a>(
    file: &str,
    id: Option<u32>,
    t: &'a toml::Table,
    field: &str,
) -> Result<&'a str, RuleError> {
    match t.get(field) {
        None => Err(field_err(file, id, field, "missing")),
        Some(v) => v
            .as_str()
            .ok_or_else(|| field_err(file, id, field, "must be a string")),
    }
}

fn str_list(
    file: &str,
    id: Option<u32>,
    v: &toml::Value,
    field: &str,
) -> Result<Vec<String>, RuleError> {
    v.as_array()
        .ok_or_else(|| field_err(file, id, field, "must be an array of strings"))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| field_err(file, id, field, "must be an array of strings"))
        })
        .collect()
}

const RULE_KEYS: &[&str] = &[
    "id",
    "name",
    "category",
    "severity",
    "paranoia",
    "targets",
    "transforms",
    "match",
];

fn parse_rule(file: &str, t: &toml::Table, check: Check) -> Result<Rule, RuleError> {
    let id = match t.get("id") {
        None => return Err(field_err(file, None, "id", "missing")),
        Some(v) => v
            .as_integer()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| field_err(file, None, "id", "must be an integer 0..=4294967295"))?,
    };
    let sid = Some(id);
    for key in t.keys() {
        if !RULE_KEYS.contains(&key.as_str()) {
            return Err(field_err(file, sid, key, "unknown field"));
        }
    }
    let name = str_field(file, sid, t, "name")?.to_string();
    let category = Category::from_name(str_field(file, sid, t, "category")?)
        .ok_or_else(|| field_err(file, sid, "category", "unknown category"))?;
    let severity = str_field(file, sid, t, "severity")?
        .parse::<Severity>()
        .map_err(|_| {
            field_err(
                file,
                sid,
                "severity",
                "must be critical, error, warning or notice",
            )
        })?;
    let paranoia = match t.get("paranoia") {
        None => 1,
        Some(v) => v
            .as_integer()
            .filter(|p| (1..=4).contains(p))
            .and_then(|p| u8::try_from(p).ok())
            .ok_or_else(|| field_err(file, sid, "paranoia", "must be an integer 1..=4"))?,
    };
    let target_names = match t.get("targets") {
        None => return Err(field_err(file, sid, "targets", "missing")),
        Some(v) => str_list(file, sid, v, "targets")?,
    };
    if target_names.is_empty() {
        return Err(field_err(file, sid, "targets", "must not be empty"));
    }
    let targets = target_names
        .iter()
        .map(|n| {
            Target::from_name(n)
                .ok_or_else(|| field_err(file, sid, "targets", &format!("unknown target `{n}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let transforms = match t.get("transforms") {
        None => Vec::new(),
        Some(v) => str_list(file, sid, v, "transforms")?
            .iter()
            .map(|n| {
                Transform::from_name(n).ok_or_else(|| {
                    field_err(file, sid, "transforms", &format!("unknown transform `{n}`"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let m = t
        .get("match")
        .ok_or_else(|| field_err(file, sid, "match", "missing"))?
        .as_table()
        .ok_or_else(|| field_err(file, sid, "match", "must be a table"))?;
    if m.len() != 1 {
        return Err(field_err(
            file,
            sid,
            "match",
            "must have exactly one operator",
        ));
    }
    let operator = if let Some(v) = m.get("regex") {
        let src = v
            .as_str()
            .ok_or_else(|| field_err(file, sid, "match.regex", "must be a string"))?;
        if check == Check::Compile {
            compile_check(src).map_err(|e| field_err(file, sid, "match.regex", &e))?;
        }
        Operator::Regex(src.to_string())
    } else if let Some(v) = m.get("contains_any") {
        let list = str_list(file, sid, v, "match.contains_any")?;
        if list.is_empty() || list.iter().any(String::is_empty) {
            return Err(field_err(
                file,
                sid,
                "match.contains_any",
                "must be non-empty strings",
            ));
        }
        Operator::ContainsAny(list)
    } else if let Some(v) = m.get("detect_sqli") {
        if v.as_bool() != Some(true) {
            return Err(field_err(file, sid, "match.detect_sqli", "must be true"));
        }
        Operator::DetectSqli
    } else if let Some(v) = m.get("detect_xss") {
        if v.as_bool() != Some(true) {
            return Err(field_err(file, sid, "match.detect_xss", "must be true"));
        }
        Operator::DetectXss
    } else {
        let k = m.keys().next().map(String::as_str).unwrap_or("match");
        return Err(field_err(
            file,
            sid,
            &format!("match.{k}"),
            "unknown operator (regex, contains_any, detect_sqli, detect_xss)",
        ));
    };
    Ok(Rule {
        id,
        name,
        category,
        severity,
        paranoia,
        targets,
        transforms,
        operator,
        source: file.to_string(),
    })
}

fn parse_exclusion(file: &str, t: &toml::Table) -> Result<Exclusion, RuleError> {
    for key in t.keys() {
        if !["rule_ids", "path_prefix", "target"].contains(&key.as_str()) {
            return Err(field_err(
                file,
                None,
                &format!("exclusion.{key}"),
                "unknown field",
            ));
        }
    }
    let rule_ids = t
        .get("rule_ids")
        .and_then(toml::Value::as_array)
        .ok_or_else(|| field_err(file, None, "exclusion.rule_ids", "missing or not an array"))?
        .iter()
        .map(|v| {
            v.as_integer()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| field_err(file, None, "exclusion.rule_ids", "must be integers"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let path_prefix = match t.get("path_prefix") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| field_err(file, None, "exclusion.path_prefix", "must be a string"))?
                .to_string(),
        ),
    };
    let target = match t.get("target") {
        None => None,
        Some(v) => {
            let s = v
                .as_str()
                .ok_or_else(|| field_err(file, None, "exclusion.target", "must be a string"))?;
            Some(Target::from_name(s).ok_or_else(|| {
                field_err(
                    file,
                    None,
                    "exclusion.target",
                    &format!("unknown target `{s}`"),
                )
            })?)
        }
    };
    Ok(Exclusion {
        rule_ids,
        path_prefix,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How often the embedded rules were parsed in this test process.
    pub(super) static BUILTIN_PARSES: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn the_builtin_rules_are_parsed_once_and_copied_after() {
        let first = RuleSet::builtin().unwrap();
        let parses = BUILTIN_PARSES.load(std::sync::atomic::Ordering::SeqCst);
        assert!(parses >= 1);
        let again = RuleSet::builtin().unwrap();
        let loaded = RuleSet::load(None).unwrap();
        assert_eq!(
            BUILTIN_PARSES.load(std::sync::atomic::Ordering::SeqCst),
            parses,
            "a later call parses the embedded text again"
        );
        // The copy is what a parse gives.
        let fresh = RuleSet::parse_builtin().unwrap();
        for set in [&first, &again, &loaded] {
            assert_eq!(format!("{set:?}"), format!("{fresh:?}"));
        }
        assert!(!first.rules.is_empty());
    }

    /// What the start-up no longer checks (see [`Check`]): every embedded regex
    /// compiles as a user file's would, so the embedded files load as user files too.
    #[test]
    fn every_builtin_regex_compiles() {
        let set = RuleSet::builtin().unwrap();
        let mut regexes = 0;
        for rule in &set.rules {
            if let Operator::Regex(src) = &rule.operator {
                compile_check(src).unwrap_or_else(|e| panic!("rule {}: {e}", rule.id));
                regexes += 1;
            }
        }
        assert!(regexes > 100, "{regexes} regexes");
        let mut checked = RuleSet::default();
        for (name, text) in BUILTIN {
            checked.add_source(name, text).unwrap();
        }
        assert_eq!(format!("{checked:?}"), format!("{set:?}"));
    }

    fn err_of(text: &str) -> String {
        let mut s = RuleSet::default();
        s.add_source("f.toml", text).unwrap_err().to_string()
    }

    const GOOD: &str = r#"
[[rule]]
id = 1
name = "n"
category = "sqli"
severity = "critical"
targets = ["args"]
match = { regex = "x" }
"#;

    #[test]
    fn builtin_loads() {
        let s = RuleSet::builtin().unwrap();
        assert!(s.rules.len() > 40);
    }

    #[test]
    fn errors_name_file_rule_and_field() {
        let e = err_of(&GOOD.replace("\"critical\"", "\"huge\""));
        assert!(
            e.contains("f.toml") && e.contains("rule 1") && e.contains("severity"),
            "{e}"
        );
        let e = err_of(&GOOD.replace("\"x\"", "\"(\""));
        assert!(e.contains("match.regex"), "{e}");
        let e = err_of(&GOOD.replace("[\"args\"]", "[\"argz\"]"));
        assert!(e.contains("targets") && e.contains("argz"), "{e}");
        let e = err_of(&GOOD.replace("id = 1", "id = -1"));
        assert!(e.contains("`id`"), "{e}");
        let e = err_of(&format!("{GOOD}paranoia = 9\n"));
        assert!(e.contains("paranoia"), "{e}");
        let e = err_of(&format!("{GOOD}{GOOD}"));
        assert!(e.contains("duplicate"), "{e}");
        let e = err_of(&GOOD.replace("regex = \"x\"", "glob = \"x\""));
        assert!(e.contains("match.glob"), "{e}");
        let e = err_of("[[exclusion]]\nrule_ids = [1]\ntarget = \"nope\"\n");
        assert!(e.contains("exclusion.target"), "{e}");
        let e = err_of("[[rule]\n");
        assert!(e.contains("invalid TOML"), "{e}");
    }

    #[test]
    fn a_target_covers_every_location_it_matches_a_part_at() {
        let targets = [
            "args",
            "args:q",
            "args_names",
            "query_args",
            "body_args",
            "path",
            "uri_raw",
            "query_string",
            "cookies",
            "cookie_names",
            "headers",
            "headers:user-agent",
            "header_names",
            "body",
            "method",
            "protocol",
            "anomalies",
            "path_segments",
            "other_headers",
        ];
        for t in targets.iter().filter_map(|n| Target::from_name(n)) {
            for &location in &Location::ALL {
                let mut matched_somewhere = false;
                for name in ["", "q", "Q", "user-agent", "other"] {
                    let part = Part {
                        location,
                        name: name.into(),
                        value: "v".into(),
                    };
                    if t.matches(&part) {
                        matched_somewhere = true;
                        assert!(t.covers(location), "{t:?} {location:?}");
                    }
                }
                assert_eq!(matched_somewhere, t.covers(location), "{t:?} {location:?}");
            }
        }
    }

    #[test]
    fn loads_user_directory() {
        let dir = std::env::temp_dir().join(format!("palisade-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.toml"), GOOD.replace("id = 1", "id = 9000001")).unwrap();
        std::fs::write(dir.join("ignored.txt"), "junk").unwrap();
        let s = RuleSet::load(Some(&dir)).unwrap();
        assert!(s.rules.iter().any(|r| r.id == 9000001));
        std::fs::write(dir.join("b.toml"), "[[rule]]\nid = 5\n").unwrap();
        let e = RuleSet::load(Some(&dir)).unwrap_err().to_string();
        assert!(e.contains("b.toml") && e.contains("name"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
