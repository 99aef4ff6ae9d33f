//! Compiled SecLang rules: variables, operator, transformations and actions.

use std::path::Path;

use palisade_core::severity::Severity;
use regex::bytes::Regex;

use super::lexer::{split_actions, unquote};
use super::operator::{self, Op, OpError};
use super::transform::SecTransform;

/// A request collection or scalar a rule can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Coll {
    Args,
    ArgsGet,
    ArgsPost,
    ArgsNames,
    ArgsGetNames,
    ArgsPostNames,
    ArgsCombinedSize,
    RequestHeaders,
    RequestHeadersNames,
    RequestCookies,
    RequestCookiesNames,
    RequestUri,
    RequestUriRaw,
    RequestFilename,
    RequestBasename,
    RequestLine,
    RequestMethod,
    RequestProtocol,
    QueryString,
    RequestBody,
    RequestBodyLength,
    Xml,
    Files,
    FilesNames,
    FilesSizes,
    FilesCombinedSize,
    MultipartPartHeaders,
    MultipartStrictError,
    MultipartUnmatchedBoundary,
    ReqbodyError,
    ReqbodyProcessor,
    Tx,
    RemoteAddr,
    UniqueId,
    Duration,
    MatchedVar,
    MatchedVarName,
    MatchedVars,
    MatchedVarsNames,
    /// Persistent collections (IP, GLOBAL, SESSION, USER, RESOURCE, GEO): always empty
    /// here; Palisade keeps per-client state in its scenarios instead.
    Persistent,
}

const COLLS: &[(&str, Coll)] = &[
    ("ARGS", Coll::Args),
    ("ARGS_GET", Coll::ArgsGet),
    ("ARGS_POST", Coll::ArgsPost),
    ("ARGS_NAMES", Coll::ArgsNames),
    ("ARGS_GET_NAMES", Coll::ArgsGetNames),
    ("ARGS_POST_NAMES", Coll::ArgsPostNames),
    ("ARGS_COMBINED_SIZE", Coll::ArgsCombinedSize),
    ("REQUEST_HEADERS", Coll::RequestHeaders),
    ("REQUEST_HEADERS_NAMES", Coll::RequestHeadersNames),
    ("REQUEST_COOKIES", Coll::RequestCookies),
    ("REQUEST_COOKIES_NAMES", Coll::RequestCookiesNames),
    ("REQUEST_URI", Coll::RequestUri),
    ("REQUEST_URI_RAW", Coll::RequestUriRaw),
    ("REQUEST_FILENAME", Coll::RequestFilename),
    ("REQUEST_BASENAME", Coll::RequestBasename),
    ("REQUEST_LINE", Coll::RequestLine),
    ("REQUEST_METHOD", Coll::RequestMethod),
    ("REQUEST_PROTOCOL", Coll::RequestProtocol),
    ("QUERY_STRING", Coll::QueryString),
    ("REQUEST_BODY", Coll::RequestBody),
    ("REQUEST_BODY_LENGTH", Coll::RequestBodyLength),
    ("XML", Coll::Xml),
    ("FILES", Coll::Files),
    ("FILES_NAMES", Coll::FilesNames),
    ("FILES_SIZES", Coll::FilesSizes),
    ("FILES_COMBINED_SIZE", Coll::FilesCombinedSize),
    ("MULTIPART_PART_HEADERS", Coll::MultipartPartHeaders),
    ("MULTIPART_STRICT_ERROR", Coll::MultipartStrictError),
    (
        "MULTIPART_UNMATCHED_BOUNDARY",
        Coll::MultipartUnmatchedBoundary,
    ),
    ("REQBODY_ERROR", Coll::ReqbodyError),
    ("REQBODY_PROCESSOR_ERROR", Coll::ReqbodyError),
    ("REQBODY_PROCESSOR", Coll::ReqbodyProcessor),
    ("TX", Coll::Tx),
    ("REMOTE_ADDR", Coll::RemoteAddr),
    ("UNIQUE_ID", Coll::UniqueId),
    ("DURATION", Coll::Duration),
    ("MATCHED_VAR", Coll::MatchedVar),
    ("MATCHED_VAR_NAME", Coll::MatchedVarName),
    ("MATCHED_VARS", Coll::MatchedVars),
    ("MATCHED_VARS_NAMES", Coll::MatchedVarsNames),
    ("IP", Coll::Persistent),
    ("GLOBAL", Coll::Persistent),
    ("SESSION", Coll::Persistent),
    ("USER", Coll::Persistent),
    ("RESOURCE", Coll::Persistent),
    ("GEO", Coll::Persistent),
];

impl Coll {
    /// The SecLang name.
    pub fn name(self) -> &'static str {
        COLLS
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// Which members of a collection a variable selects.
#[derive(Debug, Clone)]
pub enum Sel {
    /// One key, compared case-insensitively (stored lowercase).
    Key(String),
    /// Keys matching a regex.
    Re(Regex),
}

impl Sel {
    /// Whether a member named `key` is selected.
    pub fn selects(&self, key: &str) -> bool {
        match self {
            Sel::Key(k) => key.eq_ignore_ascii_case(k),
            Sel::Re(r) => r.is_match(key.as_bytes()),
        }
    }
}

/// One variable of a rule: `ARGS`, `ARGS:id`, `!ARGS:/^utm_/`, `&ARGS`.
#[derive(Debug, Clone)]
pub struct VarSpec {
    /// The collection.
    pub coll: Coll,
    /// The member selector, if any.
    pub sel: Option<Sel>,
    /// `&`: the number of members instead of their values.
    pub count: bool,
    /// `!`: excluded from the rule's other variables.
    pub exclude: bool,
}

impl VarSpec {
    /// Whether this exclusion removes the member `key` of `coll`.
    pub fn excludes(&self, coll: Coll, key: &str) -> bool {
        self.coll == coll && self.sel.as_ref().is_none_or(|s| s.selects(key))
    }
}

/// Parses a `|`-separated variable list.
pub fn parse_vars(s: &str) -> Result<Vec<VarSpec>, String> {
    split_vars(s).iter().map(|v| parse_var(v)).collect()
}

/// Splits on `|` outside `/regex/` and quoted selectors.
fn split_vars(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' => out.push(std::mem::take(&mut cur)),
            ':' if !cur.contains(':') => {
                cur.push(':');
                let xml = cur
                    .trim_start_matches(['!', '&'])
                    .eq_ignore_ascii_case("XML:");
                match chars.peek().copied() {
                    Some(q @ ('/' | '\'')) if !xml => {
                        cur.push(q);
                        chars.next();
                        let close = q;
                        let mut escaped = false;
                        for x in chars.by_ref() {
                            cur.push(x);
                            if x == close && !escaped {
                                break;
                            }
                            escaped = x == '\\' && !escaped;
                        }
                    }
                    _ => {}
                }
            }
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().filter(|v| !v.trim().is_empty()).collect()
}

fn parse_var(v: &str) -> Result<VarSpec, String> {
    let mut v = v.trim();
    let mut exclude = false;
    let mut count = false;
    if let Some(r) = v.strip_prefix('!') {
        exclude = true;
        v = r;
    }
    if let Some(r) = v.strip_prefix('&') {
        count = true;
        v = r;
    }
    let (name, sel) = match v.split_once(':') {
        Some((n, s)) => (n, Some(unquote(s))),
        None => (v, None),
    };
    let coll = COLLS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
        .ok_or_else(|| format!("variable {name}"))?;
    let sel = match sel {
        None | Some("") => None,
        Some(s) if coll == Coll::Xml => {
            // `XML:/*` (every text node) and `XML://@*` (every attribute) are the
            // XPath forms CRS uses; other XPath expressions are not supported.
            return match s {
                "/*" => Ok(VarSpec {
                    coll,
                    sel: None,
                    count,
                    exclude,
                }),
                "//@*" => Ok(VarSpec {
                    coll,
                    sel: Some(Sel::Key("@".into())),
                    count,
                    exclude,
                }),
                _ => Err(format!("XPath {s}")),
            };
        }
        Some(s) if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') => {
            let re = s.get(1..s.len() - 1).unwrap_or("");
            let re = regex::bytes::RegexBuilder::new(re)
                .case_insensitive(true)
                .build()
                .map_err(|e| format!("selector regex {s}: {e}"))?;
            Some(Sel::Re(re))
        }
        Some(s) => Some(Sel::Key(s.to_ascii_lowercase())),
    };
    Ok(VarSpec {
        coll,
        sel,
        count,
        exclude,
    })
}

/// `setvar` on the transaction collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetVar {
    /// `tx.name=value` (value may hold macros).
    Set(String, String),
    /// `tx.name=+value`.
    Add(String, String),
    /// `tx.name=-value`.
    Sub(String, String),
    /// `!tx.name`.
    Delete(String),
}

/// Runtime `ctl:` actions Palisade honours.
#[derive(Debug, Clone)]
pub enum Ctl {
    /// `ctl:ruleRemoveById=ID` or `=FROM-TO`.
    RemoveById(Vec<(u32, u32)>),
    /// `ctl:ruleRemoveByTag=TAG`.
    RemoveByTag(Regex),
    /// `ctl:ruleRemoveTargetById=ID;VAR`.
    RemoveTargetById(Vec<(u32, u32)>, VarSpec),
    /// `ctl:ruleRemoveTargetByTag=TAG;VAR`.
    RemoveTargetByTag(Regex, VarSpec),
    /// `ctl:ruleEngine=Off`: no further rules for this request.
    EngineOff,
    /// `ctl:forceRequestBodyVariable=On`: `REQUEST_BODY` whatever the body processor.
    ForceBodyVariable,
}

/// What a rule does when it matches, beyond its non-disruptive actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disruptive {
    /// `pass`, `block` (anomaly mode), or none.
    #[default]
    Pass,
    /// `deny` or `drop`.
    Deny,
    /// `allow`: stop inspecting, let the request through.
    Allow,
}

/// One compiled rule (a chain's later links hang off `chain`).
#[derive(Debug, Clone)]
pub struct SecRule {
    /// `id` (0 for chained links).
    pub id: u32,
    /// `phase` 1–5.
    pub phase: u8,
    /// Variables read.
    pub vars: Vec<VarSpec>,
    /// `!` variables.
    pub excludes: Vec<VarSpec>,
    /// The operator.
    pub op: Op,
    /// `!@op`.
    pub negated: bool,
    /// `t:` list.
    pub transforms: Vec<SecTransform>,
    /// The `t:` list's index among the distinct lists of the program, so transformed
    /// values can be cached per request and list.
    pub tchain: usize,
    /// `multiMatch`.
    pub multi_match: bool,
    /// `capture`.
    pub capture: bool,
    /// `setvar`s.
    pub setvars: Vec<SetVar>,
    /// `ctl`s.
    pub ctls: Vec<Ctl>,
    /// `skipAfter`.
    pub skip_after: Option<String>,
    /// `skip`.
    pub skip: usize,
    /// `msg`.
    pub msg: Option<String>,
    /// `tag`s.
    pub tags: Vec<String>,
    /// `severity`.
    pub severity: Option<Severity>,
    /// `deny`/`drop`/`allow`.
    pub disruptive: Disruptive,
    /// The next link of a chain.
    pub chain: Option<Box<SecRule>>,
    /// Set on chain starters while their links are still being read.
    pub wants_chain: bool,
    /// Source file (name only) and line.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

/// Why a rule was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A regex the linear-time engine cannot run (look-around, backreference, ...).
    Regex(String),
    /// An operator Palisade does not implement.
    Operator(String),
    /// A variable Palisade does not provide.
    Variable(String),
    /// A transformation Palisade does not implement.
    Transform(String),
    /// A data file is missing.
    File(String),
    /// Malformed.
    Syntax(String),
    /// A response-phase rule (3–5): Palisade inspects requests only.
    ResponsePhase,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Regex(m) => write!(f, "regex not linear-time compilable: {m}"),
            SkipReason::Operator(m) => write!(f, "unsupported operator {m}"),
            SkipReason::Variable(m) => write!(f, "unsupported {m}"),
            SkipReason::Transform(m) => write!(f, "unsupported transformation t:{m}"),
            SkipReason::File(m) => write!(f, "data file: {m}"),
            SkipReason::Syntax(m) => write!(f, "syntax: {m}"),
            SkipReason::ResponsePhase => f.write_str("response phase (not inspected)"),
        }
    }
}

impl SkipReason {
    /// A short kind for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            SkipReason::Regex(_) => "regex",
            SkipReason::Operator(_) => "operator",
            SkipReason::Variable(_) => "variable",
            SkipReason::Transform(_) => "transformation",
            SkipReason::File(_) => "data_file",
            SkipReason::Syntax(_) => "syntax",
            SkipReason::ResponsePhase => "response_phase",
        }
    }
}

/// Parses an id list: `942100`, `942100-942199`, several separated by spaces or commas.
pub fn parse_id_ranges(s: &str) -> Vec<(u32, u32)> {
    s.split([' ', ','])
        .filter(|x| !x.is_empty())
        .filter_map(|x| match x.split_once('-') {
            Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
            None => {
                let v = x.trim().parse().ok()?;
                Some((v, v))
            }
        })
        .collect()
}

/// Whether `id` is in any range.
pub fn in_ranges(ranges: &[(u32, u32)], id: u32) -> bool {
    ranges.iter().any(|(a, b)| (*a..=*b).contains(&id))
}

fn tag_regex(t: &str) -> Result<Regex, String> {
    regex::bytes::RegexBuilder::new(&format!("^(?:{t})$"))
        .build()
        .or_else(|_| Regex::new(&format!("^{}$", regex::escape(t))))
        .map_err(|e| format!("tag {t}: {e}"))
}

fn severity(s: &str) -> Option<Severity> {
    Some(match s.to_ascii_uppercase().as_str() {
        "EMERGENCY" | "ALERT" | "CRITICAL" | "0" | "1" | "2" => Severity::Critical,
        "ERROR" | "3" => Severity::Error,
        "WARNING" | "4" => Severity::Warning,
        "NOTICE" | "INFO" | "DEBUG" | "5" | "6" | "7" => Severity::Notice,
        _ => return None,
    })
}

fn parse_setvar(v: &str) -> Option<SetVar> {
    let v = v.trim();
    if let Some(name) = v.strip_prefix('!') {
        let name = name.trim().to_ascii_lowercase();
        return name
            .strip_prefix("tx.")
            .map(|n| SetVar::Delete(n.to_string()));
    }
    let (name, value) = v.split_once('=').unwrap_or((v, "1"));
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("tx.")?.to_string();
    Some(if let Some(x) = value.strip_prefix('+') {
        SetVar::Add(name, x.to_string())
    } else if let Some(x) = value.strip_prefix('-') {
        SetVar::Sub(name, x.to_string())
    } else {
        SetVar::Set(name, value.to_string())
    })
}

/// Parses a `ctl:` value; `None` for the ones that change only logging or limits.
pub fn parse_ctl(v: &str) -> Result<Option<Ctl>, String> {
    let (k, val) = v.split_once('=').unwrap_or((v, ""));
    let target = |val: &str| -> Result<(String, VarSpec), String> {
        let (who, var) = val
            .split_once(';')
            .ok_or_else(|| format!("ctl {k} needs ID;VARIABLE"))?;
        let mut spec = parse_var(var)?;
        spec.exclude = true;
        Ok((who.to_string(), spec))
    };
    Ok(Some(match k.to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RemoveById(parse_id_ranges(val)),
        "ruleremovebytag" => Ctl::RemoveByTag(tag_regex(val)?),
        "ruleremovetargetbyid" => {
            let (who, spec) = target(val)?;
            Ctl::RemoveTargetById(parse_id_ranges(&who), spec)
        }
        "ruleremovetargetbytag" => {
            let (who, spec) = target(val)?;
            Ctl::RemoveTargetByTag(tag_regex(&who)?, spec)
        }
        "ruleengine" if val.eq_ignore_ascii_case("off") => Ctl::EngineOff,
        "forcerequestbodyvariable" if val.eq_ignore_ascii_case("on") => Ctl::ForceBodyVariable,
        _ => return Ok(None),
    }))
}

/// Builds a rule from `SecRule VARS OP ACTIONS` (or `SecAction ACTIONS` with `vars`
/// empty); unknown actions are counted into `unknown_actions`.
pub fn build(
    vars: Option<&str>,
    op: Option<&str>,
    actions: &str,
    base: &Path,
    file: &str,
    line: usize,
    unknown_actions: &mut Vec<String>,
) -> Result<SecRule, (u32, SkipReason)> {
    let acts = split_actions(actions);
    let id = acts
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("id"))
        .and_then(|(_, v)| v.as_deref()?.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let err = |r: SkipReason| (id, r);
    let phase = acts
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("phase"))
        .and_then(|(_, v)| v.as_deref())
        .map(|p| match p.trim().to_ascii_lowercase().as_str() {
            "request" => 2,
            "response" => 4,
            "logging" => 5,
            p => p.parse().unwrap_or(2),
        })
        .unwrap_or(2);
    if phase >= 3 {
        return Err(err(SkipReason::ResponsePhase));
    }
    let (mut vars_out, mut excludes) = (Vec::new(), Vec::new());
    if let Some(v) = vars {
        for spec in parse_vars(v).map_err(|m| err(SkipReason::Variable(m)))? {
            if spec.exclude {
                excludes.push(spec);
            } else {
                vars_out.push(spec);
            }
        }
    }
    let (opc, negated) = match op {
        None => (Op::Unconditional, false),
        Some(raw) => {
            let raw = raw.trim_start();
            let (negated, raw) = match raw.strip_prefix('!') {
                Some(r) => (true, r.trim_start()),
                None => (false, raw),
            };
            let (name, param) = match raw.strip_prefix('@') {
                Some(r) => r.split_once(char::is_whitespace).unwrap_or((r, "")),
                None => ("rx", raw),
            };
            let compiled = operator::compile(name, param, base).map_err(|e| {
                err(match e {
                    OpError::Unsupported(m) => SkipReason::Operator(m),
                    OpError::Regex(m) => SkipReason::Regex(m),
                    OpError::File(m) => SkipReason::File(m),
                    OpError::Param(m) => SkipReason::Syntax(m),
                })
            })?;
            (compiled, negated)
        }
    };
    let mut rule = SecRule {
        id,
        phase,
        vars: vars_out,
        excludes,
        op: opc,
        negated,
        transforms: Vec::new(),
        tchain: 0,
        multi_match: false,
        capture: false,
        setvars: Vec::new(),
        ctls: Vec::new(),
        skip_after: None,
        skip: 0,
        msg: None,
        tags: Vec::new(),
        severity: None,
        disruptive: Disruptive::Pass,
        chain: None,
        wants_chain: false,
        file: file.to_string(),
        line,
    };
    for (k, v) in acts {
        let v = v.unwrap_or_default();
        match k.to_ascii_lowercase().as_str() {
            "id" => {}
            "phase" => {}
            "t" => {
                if v.eq_ignore_ascii_case("none") {
                    rule.transforms.clear();
                } else {
                    let t = SecTransform::from_name(v.trim())
                        .ok_or_else(|| err(SkipReason::Transform(v.clone())))?;
                    rule.transforms.push(t);
                }
            }
            "msg" => rule.msg = Some(v),
            "tag" => rule.tags.push(v),
            "severity" => rule.severity = severity(v.trim()),
            "chain" => rule.wants_chain = true,
            "capture" => rule.capture = true,
            "multimatch" => rule.multi_match = true,
            "setvar" => {
                if let Some(s) = parse_setvar(&v) {
                    rule.setvars.push(s);
                }
            }
            "ctl" => {
                if let Some(c) = parse_ctl(&v).map_err(|m| err(SkipReason::Syntax(m)))? {
                    rule.ctls.push(c);
                }
            }
            "skipafter" => rule.skip_after = Some(v.trim().to_string()),
            "skip" => rule.skip = v.trim().parse().unwrap_or(0),
            "deny" | "drop" => rule.disruptive = Disruptive::Deny,
            "allow" => rule.disruptive = Disruptive::Allow,
            "pass" | "block" | "log" | "nolog" | "auditlog" | "noauditlog" | "ver" | "rev"
            | "maturity" | "accuracy" | "logdata" | "status" | "expirevar" | "initcol"
            | "setsid" | "setuid" | "sanitisematched" | "sanitisearg" | "sanitizematched"
            | "sanitizearg" | "redirect" | "append" | "prepend" | "exec" | "deprecatevar"
            | "setenv" | "setrsc" => {}
            other => unknown_actions.push(other.to_string()),
        }
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_parse_like_modsecurity() {
        let v = parse_vars(
            "REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|ARGS_NAMES|ARGS|XML:/*|&TX:paranoia_level|REQUEST_HEADERS:'/^(?:a|b)$/'",
        )
        .unwrap();
        assert_eq!(v.len(), 7);
        assert!(v[1].exclude && matches!(v[1].sel, Some(Sel::Re(_))));
        assert!(v[1].excludes(Coll::RequestCookies, "__utmz"));
        assert!(!v[1].excludes(Coll::RequestCookies, "sid"));
        assert_eq!(v[4].coll, Coll::Xml);
        assert!(v[5].count && matches!(&v[5].sel, Some(Sel::Key(k)) if k == "paranoia_level"));
        assert!(matches!(&v[6].sel, Some(Sel::Re(r)) if r.is_match(b"b")));
        assert!(parse_vars("RESPONSE_BODY").is_err());
    }

    #[test]
    fn actions_build_a_rule() {
        let mut unknown = Vec::new();
        let r = build(
            Some("ARGS|!ARGS:foo"),
            Some("!@rx ^a"),
            "id:942100,phase:2,block,t:none,t:urlDecodeUni,t:lowercase,msg:'SQL, yes',tag:'attack-sqli',severity:'CRITICAL',setvar:'tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}',ctl:ruleRemoveTargetById=942200;ARGS:x,chain,bogus",
            Path::new("."),
            "f.conf",
            3,
            &mut unknown,
        )
        .unwrap();
        assert_eq!(r.id, 942100);
        assert!(r.negated && r.wants_chain);
        assert_eq!(
            r.transforms,
            vec![SecTransform::UrlDecodeUni, SecTransform::Lowercase]
        );
        assert_eq!(r.msg.as_deref(), Some("SQL, yes"));
        assert_eq!(r.severity, Some(Severity::Critical));
        assert_eq!(
            r.setvars,
            vec![SetVar::Add(
                "anomaly_score_pl1".into(),
                "%{tx.critical_anomaly_score}".into()
            )]
        );
        assert!(
            matches!(&r.ctls[0], Ctl::RemoveTargetById(ids, _) if ids == &vec![(942200, 942200)])
        );
        assert_eq!(r.excludes.len(), 1);
        assert_eq!(unknown, vec!["bogus".to_string()]);
        let e = build(
            Some("ARGS"),
            Some("@rx (?<=a)b"),
            "id:7",
            Path::new("."),
            "f",
            1,
            &mut unknown,
        )
        .unwrap_err();
        assert_eq!(e.0, 7);
        assert_eq!(e.1.kind(), "regex");
        let e = build(
            Some("ARGS"),
            Some("@rbl x"),
            "id:8",
            Path::new("."),
            "f",
            1,
            &mut unknown,
        )
        .unwrap_err();
        assert_eq!(e.1.kind(), "operator");
        let e = build(
            Some("ARGS"),
            Some("@rx x"),
            "id:9,t:sha1",
            Path::new("."),
            "f",
            1,
            &mut unknown,
        )
        .unwrap_err();
        assert_eq!(e.1.kind(), "transformation");
    }
}
