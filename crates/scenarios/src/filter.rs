//! Which events a scenario counts: declarative conditions on event fields, compiled once.
//!
//! Conditions are plain data rather than an expression language (CrowdSec uses `expr`)
//! so that every filter is checked in a handful of comparisons, cannot fail at run time
//! and is validated when the file is loaded. Within one condition the listed values are
//! alternatives (any may match); different conditions must all hold.

use std::collections::BTreeMap;

use palisade_core::net::IpNet;
use palisade_core::{Event, EventKind};
use serde::Deserialize;

use crate::affix::{Affixes, End};
use crate::field::extra;

/// Largest compiled size allowed for one regex, so a scenario file cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

/// One value or a list of them, so `kind = "http"` and `kind = ["http", "auth"]` both read.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a value or an array of values of the documented type"
)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A status code (`404`) or a class or range as text (`"4xx"`, `"500-599"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a status code or a text like \"4xx\" or \"500-599\""
)]
pub(crate) enum StatusSpec {
    Code(i64),
    Text(String),
}

/// A filter as written in a scenario file (`[scenario.filter]` or `[[scenario.unless]]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilter {
    kind: Option<OneOrMany<String>>,
    status: Option<OneOrMany<StatusSpec>>,
    method: Option<OneOrMany<String>>,
    path_exact: Option<OneOrMany<String>>,
    path_prefix: Option<OneOrMany<String>>,
    path_suffix: Option<OneOrMany<String>>,
    path_contains: Option<OneOrMany<String>>,
    path_regex: Option<String>,
    path_ignore_case: Option<bool>,
    host: Option<OneOrMany<String>>,
    user_agent_contains: Option<OneOrMany<String>>,
    user: Option<bool>,
    client_ip: Option<OneOrMany<String>>,
    extra: Option<BTreeMap<String, OneOrMany<String>>>,
}

/// What is wrong with a filter: the field (relative to the filter) and why.
pub(crate) type FieldProblem = (String, String);

fn problem(field: &str, msg: impl Into<String>) -> FieldProblem {
    (field.to_owned(), msg.into())
}

/// Every event kind, as a bit set.
pub(crate) const ALL_KINDS: u8 = 0b1_1111;

/// The bit of one event kind in a kind set.
pub(crate) fn kind_bit(kind: EventKind) -> u8 {
    1 << (kind as u8)
}

/// Status codes 0..640 as a bit set: one load and a mask per event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusSet([u64; 10]);

impl StatusSet {
    fn insert_range(&mut self, lo: u16, hi: u16) {
        for s in lo..=hi {
            if let Some(w) = self.0.get_mut(usize::from(s / 64)) {
                *w |= 1 << (s % 64);
            }
        }
    }

    fn contains(&self, s: u16) -> bool {
        self.0
            .get(usize::from(s / 64))
            .is_some_and(|w| w & (1 << (s % 64)) != 0)
    }
}

/// Path conditions, all alternatives of one another.
#[derive(Debug, Clone)]
struct PathMatch {
    ignore_case: bool,
    exact: Vec<Box<str>>,
    prefix: Affixes,
    suffix: Affixes,
    /// `path_contains` (escaped) and `path_regex`, as one regex.
    regex: Option<regex::Regex>,
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        let p = path.as_bytes();
        let eq = |a: &[u8], b: &[u8]| {
            if self.ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        // `exact` is sorted by length: only same-length patterns can match.
        let from = self.exact.partition_point(|x| x.len() < p.len());
        self.exact
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|x| x.len() == p.len())
            .any(|x| eq(p, x.as_bytes()))
            || self.prefix.matches(path)
            || self.suffix.matches(path)
            || self.regex.as_ref().is_some_and(|r| r.is_match(path))
    }
}

/// A compiled filter: every present condition must hold.
#[derive(Debug, Clone)]
pub struct Filter {
    kinds: u8,
    status: Option<Box<StatusSet>>,
    methods: Vec<Box<str>>,
    path: Option<PathMatch>,
    hosts: Vec<Box<str>>,
    user_agent: Option<regex::Regex>,
    user: Option<bool>,
    nets: Vec<IpNet>,
    extra: Vec<(Box<str>, Vec<Box<str>>)>,
}

impl Filter {
    /// The event kinds this filter can accept, as a bit set (see [`kind_bit`]).
    pub(crate) fn kinds(&self) -> u8 {
        self.kinds
    }

    /// Whether the event passes. `path` is the event's path after percent-decoding.
    pub(crate) fn matches(&self, ev: &Event, path: Option<&str>) -> bool {
        if self.kinds & kind_bit(ev.kind) == 0 {
            return false;
        }
        if let Some(set) = &self.status
            && !ev.status.is_some_and(|s| set.contains(s))
        {
            return false;
        }
        if !self.methods.is_empty() {
            let Some(m) = ev.method.as_deref() else {
                return false;
            };
            if !self.methods.iter().any(|x| x.eq_ignore_ascii_case(m)) {
                return false;
            }
        }
        if let Some(want) = self.user
            && ev.user.as_deref().is_some_and(|u| !u.is_empty()) != want
        {
            return false;
        }
        for (name, values) in &self.extra {
            match extra(ev, name) {
                Some(v) if values.iter().any(|x| **x == *v) => {}
                _ => return false,
            }
        }
        if !self.hosts.is_empty() {
            let Some(h) = ev.host.as_deref() else {
                return false;
            };
            if !self.hosts.iter().any(|x| x.eq_ignore_ascii_case(h)) {
                return false;
            }
        }
        if !self.nets.is_empty() {
            let Some(ip) = ev.client_ip else {
                return false;
            };
            if !self.nets.iter().any(|n| n.contains(ip)) {
                return false;
            }
        }
        if let Some(pm) = &self.path
            && !path.is_some_and(|p| pm.matches(p))
        {
            return false;
        }
        if let Some(re) = &self.user_agent
            && !ev.user_agent.as_deref().is_some_and(|ua| re.is_match(ua))
        {
            return false;
        }
        true
    }

    /// Validates and compiles a filter as written in a file.
    pub(crate) fn compile(raw: RawFilter) -> Result<Filter, FieldProblem> {
        let kinds = match raw.kind {
            None => ALL_KINDS,
            Some(k) => {
                let mut bits = 0;
                for name in k.into_vec() {
                    let kind = EventKind::parse(&name).ok_or_else(|| {
                        problem(
                            "kind",
                            format!("unknown kind `{name}` (http, error_log, auth, syslog, flow)"),
                        )
                    })?;
                    bits |= kind_bit(kind);
                }
                if bits == 0 {
                    return Err(problem("kind", "must not be empty"));
                }
                bits
            }
        };
        let status = match raw.status {
            None => None,
            Some(list) => {
                let mut set = StatusSet([0; 10]);
                let list = list.into_vec();
                if list.is_empty() {
                    return Err(problem("status", "must not be empty"));
                }
                for spec in list {
                    let (lo, hi) = status_range(&spec).ok_or_else(|| {
                        problem(
                            "status",
                            "entries are codes 100..=599, classes like \"4xx\" or ranges like \"500-599\"",
                        )
                    })?;
                    set.insert_range(lo, hi);
                }
                Some(Box::new(set))
            }
        };
        let methods = nonempty_list(raw.method, "method")?;
        let ignore_case = raw.path_ignore_case.unwrap_or(false);
        let mut exact = nonempty_list(raw.path_exact, "path_exact")?;
        exact.sort_by_key(|x| x.len());
        let prefix = nonempty_list(raw.path_prefix, "path_prefix")?;
        let suffix = nonempty_list(raw.path_suffix, "path_suffix")?;
        let contains = nonempty_list(raw.path_contains, "path_contains")?;
        let mut alternatives: Vec<String> = contains.iter().map(|c| regex::escape(c)).collect();
        if let Some(r) = &raw.path_regex {
            build_regex(r, false).map_err(|e| problem("path_regex", e))?;
            alternatives.push(format!("(?:{r})"));
        }
        let regex = if alternatives.is_empty() {
            None
        } else {
            let field = if raw.path_regex.is_some() {
                "path_regex"
            } else {
                "path_contains"
            };
            Some(build_regex(&alternatives.join("|"), ignore_case).map_err(|e| problem(field, e))?)
        };
        let path = if exact.is_empty() && prefix.is_empty() && suffix.is_empty() && regex.is_none()
        {
            if raw.path_ignore_case.is_some() {
                return Err(problem(
                    "path_ignore_case",
                    "only meaningful with a path_* condition",
                ));
            }
            None
        } else {
            Some(PathMatch {
                ignore_case,
                exact,
                prefix: Affixes::new(End::Start, ignore_case, prefix),
                suffix: Affixes::new(End::Finish, ignore_case, suffix),
                regex,
            })
        };
        let hosts = nonempty_list(raw.host, "host")?;
        let ua = nonempty_list(raw.user_agent_contains, "user_agent_contains")?;
        let user_agent = if ua.is_empty() {
            None
        } else {
            let alt: Vec<String> = ua.iter().map(|s| regex::escape(s)).collect();
            Some(build_regex(&alt.join("|"), true).map_err(|e| problem("user_agent_contains", e))?)
        };
        let nets = match raw.client_ip {
            None => Vec::new(),
            Some(list) => list
                .into_vec()
                .iter()
                .map(|s| {
                    s.parse::<IpNet>()
                        .map_err(|e| problem("client_ip", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut extra = Vec::new();
        for (name, values) in raw.extra.unwrap_or_default() {
            let values: Vec<Box<str>> = values.into_vec().into_iter().map(Into::into).collect();
            if name.is_empty() || values.is_empty() {
                return Err(problem(
                    &format!("extra.{name}"),
                    "needs a name and at least one value",
                ));
            }
            extra.push((name.into_boxed_str(), values));
        }
        Ok(Filter {
            kinds,
            status,
            methods,
            path,
            hosts,
            user_agent,
            user: raw.user,
            nets,
            extra,
        })
    }
}

fn nonempty_list(v: Option<OneOrMany<String>>, field: &str) -> Result<Vec<Box<str>>, FieldProblem> {
    match v {
        None => Ok(Vec::new()),
        Some(v) => {
            let list = v.into_vec();
            if list.is_empty() || list.iter().any(String::is_empty) {
                return Err(problem(field, "must be non-empty strings"));
            }
            Ok(list.into_iter().map(Into::into).collect())
        }
    }
}

fn build_regex(src: &str, ignore_case: bool) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(src)
        .case_insensitive(ignore_case)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

fn status_range(spec: &StatusSpec) -> Option<(u16, u16)> {
    let valid = |s: u16| (100..=599).contains(&s);
    match spec {
        StatusSpec::Code(c) => u16::try_from(*c).ok().filter(|c| valid(*c)).map(|c| (c, c)),
        StatusSpec::Text(t) => {
            let t = t.trim();
            if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
                let d: u16 = class.parse().ok().filter(|d| (1..=5).contains(d))?;
                return Some((d * 100, d * 100 + 99));
            }
            let (lo, hi) = match t.split_once('-') {
                Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                None => {
                    let c = t.parse().ok()?;
                    (c, c)
                }
            };
            (valid(lo) && valid(hi) && lo <= hi).then_some((lo, hi))
        }
    }
}

/// The path as filters see it: percent-decoded (lossily, so odd bytes cannot hide a
/// probe), borrowed when there is nothing to decode.
pub(crate) fn decode_path<'a>(path: &'a str, buf: &'a mut String) -> &'a str {
    if memchr::memchr(b'%', path.as_bytes()).is_none() {
        return path;
    }
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|x| hex(*x)),
                b.get(i + 2).and_then(|x| hex(*x)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    buf.clear();
    buf.push_str(&String::from_utf8_lossy(&out));
    buf.as_str()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Result<Filter, FieldProblem> {
        let raw: RawFilter = toml::from_str(text).map_err(|e| problem("toml", e.to_string()))?;
        Filter::compile(raw)
    }

    fn http(status: u16, method: &str, path: &str) -> Event {
        Event {
            kind: EventKind::Http,
            status: Some(status),
            method: Some(method.into()),
            path: Some(path.into()),
            client_ip: Some("192.0.2.1".parse().unwrap()),
            ..Event::default()
        }
    }

    fn check(f: &Filter, ev: &Event) -> bool {
        let mut buf = String::new();
        let p = ev.path.as_deref().map(|p| decode_path(p, &mut buf));
        f.matches(ev, p)
    }

    #[test]
    fn statuses_methods_and_kinds() {
        let f = compile(
            r#"kind = "http"
status = [401, "5xx", "403-404"]
method = ["post"]"#,
        )
        .unwrap();
        assert!(check(&f, &http(401, "POST", "/")));
        assert!(check(&f, &http(404, "POST", "/")));
        assert!(check(&f, &http(503, "POST", "/")));
        assert!(!check(&f, &http(402, "POST", "/")));
        assert!(!check(&f, &http(401, "GET", "/")));
        let mut auth = http(401, "POST", "/");
        auth.kind = EventKind::Auth;
        assert!(!check(&f, &auth));
        for bad in [
            "status = [99]",
            "status = [\"6xx\"]",
            "status = [\"500-400\"]",
            "status = []",
            "kind = \"web\"",
        ] {
            assert!(compile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_decode_and_ignore_case() {
        let f = compile(
            r#"path_exact = ["/.env"]
path_prefix = "/.git/"
path_suffix = [".bak"]
path_contains = ["phpmyadmin"]
path_regex = '^/backup[0-9]*\.zip$'
path_ignore_case = true"#,
        )
        .unwrap();
        for hit in [
            "/.env",
            "/.ENV",
            "/%2eenv",
            "/.git/config",
            "/index.php.BAK",
            "/tools/phpMyAdmin/index.php",
            "/backup2.zip",
        ] {
            assert!(check(&f, &http(404, "GET", hit)), "{hit}");
        }
        for miss in ["/", "/env", "/.envx", "/git/config", "/backup.tar"] {
            assert!(!check(&f, &http(404, "GET", miss)), "{miss}");
        }
        let strict = compile(r#"path_exact = "/.env""#).unwrap();
        assert!(!check(&strict, &http(404, "GET", "/.ENV")));
        assert!(compile("path_ignore_case = true").is_err());
        assert!(compile("path_regex = '('").is_err());
    }

    #[test]
    fn extra_user_agent_user_and_networks() {
        let f = compile(
            r#"kind = "auth"
extra = { program = "sshd", outcome = ["failure", "invalid_user"] }
user = true
client_ip = ["192.0.2.0/24"]"#,
        )
        .unwrap();
        let mut ev = Event {
            kind: EventKind::Auth,
            client_ip: Some("192.0.2.9".parse().unwrap()),
            user: Some("root".into()),
            extra: vec![
                ("program".into(), "sshd".into()),
                ("outcome".into(), "failure".into()),
            ],
            ..Event::default()
        };
        assert!(check(&f, &ev));
        ev.extra[1].1 = "success".into();
        assert!(!check(&f, &ev));
        ev.extra[1].1 = "invalid_user".into();
        ev.client_ip = Some("198.51.100.1".parse().unwrap());
        assert!(!check(&f, &ev));
        ev.client_ip = Some("192.0.2.9".parse().unwrap());
        ev.user = None;
        assert!(!check(&f, &ev));

        let ua = compile(r#"user_agent_contains = ["googlebot", "bingbot"]"#).unwrap();
        let mut e = http(200, "GET", "/");
        e.user_agent = Some("Mozilla/5.0 (compatible; Googlebot/2.1)".into());
        assert!(check(&ua, &e));
        e.user_agent = None;
        assert!(!check(&ua, &e));
        assert!(compile("client_ip = \"10.0.0.0/33\"").is_err());
        assert!(compile("colour = 1").is_err());
    }
}
