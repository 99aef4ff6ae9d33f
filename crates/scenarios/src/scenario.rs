//! Scenarios as data: the TOML format (documented in `SCENARIOS.md`), its validation and
//! loading.
//!
//! Scenarios live in files so operators can add and tune them without a rebuild; every
//! load error names the file, the scenario and the field, like `palisade-detect`'s rules.

use std::path::Path;

use palisade_core::decision::DecisionKind;
pub use palisade_core::decision::DecisionScope;
pub use palisade_core::severity::Severity;
use serde::Deserialize;

use crate::duration::{parse_duration, parse_rate};
use crate::field::Field;
use crate::filter::{Filter, OneOrMany, RawFilter};
use crate::hash::Seed;

/// Built-in scenario files, embedded so the engine works with no files on disk.
const BUILTIN: &[(&str, &str)] = &[
    ("builtin/http.toml", include_str!("../scenarios/http.toml")),
    (
        "builtin/http_auth.toml",
        include_str!("../scenarios/http_auth.toml"),
    ),
    ("builtin/sshd.toml", include_str!("../scenarios/sshd.toml")),
    (
        "builtin/credentials.toml",
        include_str!("../scenarios/credentials.toml"),
    ),
    (
        "builtin/network.toml",
        include_str!("../scenarios/network.toml"),
    ),
];

/// Why scenarios could not be loaded; always names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A directory or file could not be read.
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
    /// A scenario has a missing or invalid field.
    #[error("{file}: scenario {}: field `{field}`: {message}", scenario.as_deref().unwrap_or("?"))]
    Field {
        /// The file.
        file: String,
        /// The scenario's name (or id) when it could be read.
        scenario: Option<String>,
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// How a scenario's per-key bucket fills and overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketSpec {
    /// Each event adds one; one leaks out every `interval_us`; overflows when more than
    /// `capacity` are in the bucket (so `capacity + 1` events in a burst).
    Leaky {
        /// Events the bucket holds without overflowing.
        capacity: u32,
        /// Microseconds between two leaked events.
        interval_us: i64,
    },
    /// Overflows on the first event.
    Trigger,
    /// Counts events in a fixed window that starts at the first one; overflows when the
    /// count reaches `threshold`.
    Counter {
        /// Window length in microseconds.
        window_us: i64,
        /// Count at which it overflows.
        threshold: u32,
    },
}

impl BucketSpec {
    /// How long a bucket's memory of an event lasts: the drain time of a full leaky
    /// bucket, or the counter window. Distinct values are forgotten after it.
    pub fn horizon_us(&self) -> i64 {
        match *self {
            BucketSpec::Leaky {
                capacity,
                interval_us,
            } => interval_us.saturating_mul(i64::from(capacity).max(1)),
            BucketSpec::Trigger => 0,
            BucketSpec::Counter { window_us, .. } => window_us,
        }
    }

    /// Events (or distinct values) needed to overflow.
    pub fn needed(&self) -> u32 {
        match *self {
            BucketSpec::Leaky { capacity, .. } => capacity.saturating_add(1),
            BucketSpec::Trigger => 1,
            BucketSpec::Counter { threshold, .. } => threshold,
        }
    }
}

/// What to do about the key of an overflowing bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionSpec {
    /// How long the decision lasts, in microseconds.
    pub duration_us: i64,
    /// Whether it targets the address or its network.
    pub scope: DecisionScope,
}

/// One validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Unique number; shares the rule-id space of `palisade-detect` so threats from both
    /// can be listed by rule (built-ins use 970xxx).
    pub id: u32,
    /// Unique stable name (`http-path-probing`), used in metrics and snapshots.
    pub name: String,
    /// What the scenario detects, for people.
    pub description: String,
    /// Threat category (`scanner`, `bruteforce`, …).
    pub category: String,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Bucket type and parameters.
    pub bucket: BucketSpec,
    /// Fields that partition events into buckets; empty = one bucket.
    pub group_by: Vec<Field>,
    /// Count only distinct values of this field.
    pub distinct: Option<Field>,
    /// Keep sample values of this field for the alert.
    pub samples: Option<Field>,
    /// Microseconds after an overflow during which the same key cannot alert again.
    pub blackhole_us: i64,
    /// The event must pass one of these (any-of).
    pub filters: Vec<Filter>,
    /// …and none of these.
    pub unless: Vec<Filter>,
    /// A ban to take on overflow.
    pub decision: Option<DecisionSpec>,
    /// Where the scenario was loaded from, for diagnostics.
    pub source: String,
}

impl Scenario {
    /// A hash of what determines bucket identity and state (type, parameters, keys), so
    /// a snapshot's buckets are only restored into an unchanged scenario.
    pub fn fingerprint(&self) -> u64 {
        let mut text = format!("{}|{}|{:?}|", self.id, self.name, self.bucket);
        for f in &self.group_by {
            text.push_str(&f.name());
            text.push(',');
        }
        if let Some(d) = &self.distinct {
            text.push_str(&d.name());
        }
        Seed([0x70a1_15ad, 0x5ce7_a210]).hash_bytes(0, text.as_bytes())
    }

    /// The IP field of the group key, if any.
    pub fn ip_field(&self) -> Option<&Field> {
        self.group_by.iter().find(|f| f.is_ip())
    }
}

/// A validated set of scenarios, ready to build an engine from.
#[derive(Debug, Clone, Default)]
pub struct ScenarioSet {
    /// The scenarios; ids and names unique.
    pub scenarios: Vec<Scenario>,
}

impl ScenarioSet {
    /// Loads the built-in scenarios plus every `*.toml` in `dir` (sorted by name), so
    /// users extend (or, with `disable = [...]`, trim) the defaults without copying them.
    pub fn load(dir: Option<&Path>) -> Result<ScenarioSet, ScenarioError> {
        let mut set = ScenarioSet::builtin()?;
        if let Some(dir) = dir {
            let files = palisade_core::definitions::read_toml_files(dir).map_err(|e| {
                ScenarioError::Io {
                    file: e.file,
                    source: e.source,
                }
            })?;
            for (name, text) in files {
                set.add_source(&name, &text)?;
            }
        }
        Ok(set)
    }

    /// Only the embedded default scenarios.
    pub fn builtin() -> Result<ScenarioSet, ScenarioError> {
        let mut set = ScenarioSet::default();
        for (name, text) in BUILTIN {
            set.add_source(name, text)?;
        }
        Ok(set)
    }

    /// Finds a scenario by name.
    pub fn get(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// Parses one file's text and adds its scenarios; `file` names it in errors.
    /// Rejects duplicate ids and names; `disable = ["name"]` removes loaded ones.
    pub fn add_source(&mut self, file: &str, text: &str) -> Result<(), ScenarioError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ScenarioError::Syntax {
                    file: file.to_string(),
                    message: e.message().to_string(),
                })?;
        for key in table.keys() {
            if key != "scenario" && key != "disable" {
                return Err(field_err(
                    file,
                    None,
                    key,
                    "unknown top-level key (scenario, disable)",
                ));
            }
        }
        if let Some(v) = table.get("disable") {
            let names: Vec<String> = v
                .clone()
                .try_into()
                .map_err(|_| field_err(file, None, "disable", "must be an array of names"))?;
            for n in names {
                let before = self.scenarios.len();
                self.scenarios.retain(|s| s.name != n);
                if self.scenarios.len() == before {
                    return Err(field_err(
                        file,
                        None,
                        "disable",
                        &format!("no loaded scenario is named `{n}`"),
                    ));
                }
            }
        }
        if let Some(list) = table.get("scenario") {
            let arr = list
                .as_array()
                .ok_or_else(|| field_err(file, None, "scenario", "must be [[scenario]] tables"))?;
            for item in arr {
                let t = item
                    .as_table()
                    .ok_or_else(|| field_err(file, None, "scenario", "must be a table"))?;
                let Some(s) = parse_scenario(file, t)? else {
                    continue;
                };
                if self.scenarios.iter().any(|x| x.id == s.id) {
                    return Err(field_err(file, Some(&s.name), "id", "duplicate id"));
                }
                if self.scenarios.iter().any(|x| x.name == s.name) {
                    return Err(field_err(file, Some(&s.name), "name", "duplicate name"));
                }
                self.scenarios.push(s);
            }
        }
        Ok(())
    }
}

fn field_err(file: &str, scenario: Option<&str>, field: &str, message: &str) -> ScenarioError {
    ScenarioError::Field {
        file: file.to_string(),
        scenario: scenario.map(str::to_owned),
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// The scenario table as written; everything is checked again in [`parse_scenario`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: i64,
    name: String,
    description: String,
    category: String,
    severity: String,
    #[serde(rename = "type")]
    bucket_type: String,
    capacity: Option<i64>,
    leak: Option<String>,
    window: Option<String>,
    threshold: Option<i64>,
    group_by: Option<OneOrMany<String>>,
    distinct: Option<String>,
    samples: Option<String>,
    blackhole: Option<String>,
    enabled: Option<bool>,
    filter: Option<toml::Value>,
    unless: Option<toml::Value>,
    decision: Option<RawDecision>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecision {
    #[serde(rename = "type")]
    kind: String,
    duration: String,
    scope: Option<String>,
}

fn is_slug(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c))
}

fn parse_scenario(file: &str, t: &toml::Table) -> Result<Option<Scenario>, ScenarioError> {
    // Name the scenario in errors even when the rest of the table is broken.
    let label = t
        .get("name")
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            t.get("id")
                .and_then(toml::Value::as_integer)
                .map(|i| i.to_string())
        });
    let label = label.as_deref();
    let raw: RawScenario =
        toml::Value::Table(t.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                let msg = e.message().to_string();
                field_err(file, label, &offending_key::<RawScenario>(t, &msg), &msg)
            })?;
    let err = |field: &str, msg: &str| field_err(file, label, field, msg);
    let id = u32::try_from(raw.id).map_err(|_| err("id", "must be an integer 0..=4294967295"))?;
    if !is_slug(&raw.name, &['-', '_']) {
        return Err(err(
            "name",
            "must be 1-64 characters of a-z, 0-9, '-' and '_'",
        ));
    }
    let name = raw.name;
    let label = Some(name.as_str());
    let err = |field: &str, msg: &str| field_err(file, label, field, msg);
    if raw.description.trim().is_empty() {
        return Err(err("description", "must not be empty"));
    }
    if !is_slug(&raw.category, &['_']) {
        return Err(err(
            "category",
            "must be 1-64 characters of a-z, 0-9 and '_' (e.g. scanner, bruteforce)",
        ));
    }
    let severity = raw
        .severity
        .parse::<Severity>()
        .map_err(|_| err("severity", "must be critical, error, warning or notice"))?;
    let dur = |field: &str, v: &str| parse_duration(v).map_err(|e| err(field, &e.to_string()));
    let forbid = |field: &str, present: bool, ty: &str| {
        if present {
            Err(err(field, &format!("not allowed for type = \"{ty}\"")))
        } else {
            Ok(())
        }
    };
    let bucket = match raw.bucket_type.as_str() {
        "leaky" => {
            forbid("window", raw.window.is_some(), "leaky")?;
            forbid("threshold", raw.threshold.is_some(), "leaky")?;
            let capacity = raw
                .capacity
                .ok_or_else(|| err("capacity", "missing (required for leaky)"))?;
            let capacity = u32::try_from(capacity)
                .ok()
                .filter(|c| *c <= 100_000)
                .ok_or_else(|| err("capacity", "must be an integer 0..=100000"))?;
            let leak = raw
                .leak
                .as_deref()
                .ok_or_else(|| err("leak", "missing (required for leaky), e.g. \"1 per 10s\""))?;
            let interval_us = parse_rate(leak).map_err(|e| err("leak", &e.to_string()))?;
            BucketSpec::Leaky {
                capacity,
                interval_us,
            }
        }
        "trigger" => {
            for (f, present) in [
                ("capacity", raw.capacity.is_some()),
                ("leak", raw.leak.is_some()),
                ("window", raw.window.is_some()),
                ("threshold", raw.threshold.is_some()),
                ("distinct", raw.distinct.is_some()),
            ] {
                forbid(f, present, "trigger")?;
            }
            BucketSpec::Trigger
        }
        "counter" => {
            forbid("capacity", raw.capacity.is_some(), "counter")?;
            forbid("leak", raw.leak.is_some(), "counter")?;
            let window = raw
                .window
                .as_deref()
                .ok_or_else(|| err("window", "missing (required for counter), e.g. \"1h\""))?;
            let window_us = dur("window", window)?;
            let threshold = raw
                .threshold
                .ok_or_else(|| err("threshold", "missing (required for counter)"))?;
            let threshold = u32::try_from(threshold)
                .ok()
                .filter(|t| (1..=100_000).contains(t))
                .ok_or_else(|| err("threshold", "must be an integer 1..=100000"))?;
            BucketSpec::Counter {
                window_us,
                threshold,
            }
        }
        _ => return Err(err("type", "must be leaky, trigger or counter")),
    };
    let field = |fname: &str, v: &str| {
        Field::parse(v).ok_or_else(|| {
            err(
                fname,
                &format!(
                    "unknown field `{v}` (client_ip, client_ip/N, client_net, user, host, \
                     method, path, user_agent, status, source, extra:NAME)"
                ),
            )
        })
    };
    let group_names = raw
        .group_by
        .map(OneOrMany::into_vec)
        .unwrap_or_else(|| vec!["client_ip".to_owned()]);
    let mut group_by: Vec<Field> = Vec::new();
    for n in &group_names {
        let f = field("group_by", n)?;
        if group_by.contains(&f) {
            return Err(err("group_by", &format!("`{n}` is listed twice")));
        }
        if f.is_ip() && group_by.iter().any(Field::is_ip) {
            return Err(err("group_by", "at most one client_ip field"));
        }
        group_by.push(f);
    }
    if group_by.len() > 4 {
        return Err(err("group_by", "at most 4 fields"));
    }
    let distinct = raw
        .distinct
        .as_deref()
        .map(|v| field("distinct", v))
        .transpose()?;
    if distinct.as_ref().is_some_and(|d| group_by.contains(d)) {
        return Err(err(
            "distinct",
            "is also in group_by, so every bucket would see one value",
        ));
    }
    let samples = match raw.samples.as_deref() {
        Some(v) => Some(field("samples", v)?),
        None => distinct.clone(),
    };
    let filters = parse_filters(file, label, "filter", raw.filter)?;
    if filters.is_empty() {
        return Err(err(
            "filter",
            "missing: a scenario must say which events it counts",
        ));
    }
    let unless = parse_filters(file, label, "unless", raw.unless)?;
    let decision = match raw.decision {
        None => None,
        Some(d) => {
            if d.kind != DecisionKind::Ban.as_str() {
                return Err(err("decision.type", "must be \"ban\""));
            }
            let duration_us = dur("decision.duration", &d.duration)?;
            let ip = group_by.iter().find(|f| f.is_ip());
            let Some(Field::ClientIp { v4, v6 }) = ip else {
                return Err(err(
                    "decision",
                    "a ban needs client_ip (or a client network) in group_by",
                ));
            };
            let scope = match d.scope.as_deref().unwrap_or("ip") {
                "ip" => DecisionScope::Ip,
                "range" => {
                    if *v4 == 32 && *v6 == 128 {
                        return Err(err(
                            "decision.scope",
                            "\"range\" needs group_by on a network (client_net or client_ip/N)",
                        ));
                    }
                    DecisionScope::Range
                }
                _ => return Err(err("decision.scope", "must be \"ip\" or \"range\"")),
            };
            Some(DecisionSpec { duration_us, scope })
        }
    };
    let blackhole_us = match raw.blackhole.as_deref() {
        Some(v) => dur("blackhole", v)?,
        None => decision.map_or(5 * 60 * 1_000_000, |d| d.duration_us),
    };
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    Ok(Some(Scenario {
        id,
        name: name.clone(),
        description: raw.description,
        category: raw.category,
        severity,
        bucket,
        group_by,
        distinct,
        samples,
        blackhole_us,
        filters,
        unless,
        decision,
        source: file.to_string(),
    }))
}

/// The key a deserialisation error is about: named by serde for unknown and missing
/// fields, else found by deserialising each key alone (only on the error path).
fn offending_key<T: serde::de::DeserializeOwned>(t: &toml::Table, msg: &str) -> String {
    if (msg.starts_with("unknown field") || msg.starts_with("missing field"))
        && let Some(k) = msg.split('`').nth(1)
    {
        return k.to_owned();
    }
    for (k, v) in t {
        let mut one = toml::Table::new();
        one.insert(k.clone(), v.clone());
        if let Err(e) = toml::Value::Table(one).try_into::<T>()
            && !e.message().starts_with("missing field")
        {
            return k.clone();
        }
    }
    "?".to_owned()
}

fn parse_filters(
    file: &str,
    label: Option<&str>,
    key: &str,
    v: Option<toml::Value>,
) -> Result<Vec<Filter>, ScenarioError> {
    let tables = match v {
        None => return Ok(Vec::new()),
        Some(toml::Value::Table(t)) => vec![t],
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                toml::Value::Table(t) => Ok(t),
                _ => Err(field_err(file, label, key, "must be tables")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(field_err(file, label, key, "must be a table or tables")),
    };
    let single = tables.len() == 1;
    let mut out = Vec::with_capacity(tables.len());
    for (i, t) in tables.into_iter().enumerate() {
        let at = |f: &str| {
            if single {
                format!("{key}.{f}")
            } else {
                format!("{key}[{i}].{f}")
            }
        };
        let raw: RawFilter =
            toml::Value::Table(t.clone())
                .try_into()
                .map_err(|e: toml::de::Error| {
                    let msg = e.message().to_string();
                    field_err(
                        file,
                        label,
                        &at(&offending_key::<RawFilter>(&t, &msg)),
                        &msg,
                    )
                })?;
        let f = Filter::compile(raw).map_err(|(f, m)| field_err(file, label, &at(&f), &m))?;
        out.push(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[scenario]]
id = 1000001
name = "local-test"
description = "d"
category = "scanner"
severity = "warning"
type = "leaky"
capacity = 5
leak = "1 per 10s"
filter = { kind = "http", status = [404] }
"#;

    fn err_of(text: &str) -> String {
        let mut s = ScenarioSet::default();
        s.add_source("f.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn builtin_loads() {
        let s = ScenarioSet::builtin().unwrap();
        assert!(s.scenarios.len() >= 9, "{}", s.scenarios.len());
        for sc in &s.scenarios {
            assert!((970_000..980_000).contains(&sc.id), "{}", sc.name);
        }
    }

    #[test]
    fn good_scenario_defaults() {
        let mut s = ScenarioSet::default();
        s.add_source("f.toml", GOOD).unwrap();
        let sc = &s.scenarios[0];
        assert_eq!(sc.group_by, vec![Field::ClientIp { v4: 32, v6: 128 }]);
        assert_eq!(sc.blackhole_us, 300_000_000);
        assert_eq!(
            sc.bucket,
            BucketSpec::Leaky {
                capacity: 5,
                interval_us: 10_000_000
            }
        );
    }

    #[test]
    fn errors_name_file_scenario_and_field() {
        let cases: &[(&str, &str)] = &[
            ("\"warning\"", "\"loud\""),
            ("capacity = 5", "capacity = -1"),
            ("\"1 per 10s\"", "\"fast\""),
            ("type = \"leaky\"", "type = \"bucket\""),
            ("status = [404]", "status = [999]"),
            ("kind = \"http\"", "kind = \"smtp\""),
            ("capacity = 5", "capacity = 5\ncapcity = 5"),
            ("capacity = 5", "capacity = 5\nwindow = \"1h\""),
            ("capacity = 5", "capacity = 5\ngroup_by = [\"ip\"]"),
            (
                "capacity = 5",
                "capacity = 5\ndecision = { type = \"ban\", duration = \"1h\", scope = \"range\" }",
            ),
            (
                "capacity = 5",
                "capacity = 5\ngroup_by = [\"user\"]\ndecision = { type = \"ban\", duration = \"1h\" }",
            ),
            ("filter = { kind = \"http\", status = [404] }", ""),
        ];
        let fields = [
            "severity",
            "capacity",
            "leak",
            "type",
            "filter.status",
            "filter.kind",
            "capcity",
            "window",
            "group_by",
            "decision.scope",
            "decision",
            "filter",
        ];
        for ((from, to), field) in cases.iter().zip(fields) {
            let e = err_of(&GOOD.replace(from, to));
            assert!(
                e.contains("f.toml")
                    && e.contains("local-test")
                    && e.contains(&format!("`{field}`")),
                "{field}: {e}"
            );
        }
        let e = err_of(&GOOD.replace("status = [404]", "method = 5"));
        assert!(
            e.contains("`filter.method`") && e.contains("array of values"),
            "{e}"
        );
        let e = err_of(&GOOD.replace("capacity = 5", "capacity = \"5\""));
        assert!(e.contains("`capacity`"), "{e}");
        let e = err_of(&format!("{GOOD}{GOOD}"));
        assert!(e.contains("duplicate"), "{e}");
        let e = err_of("[[scenario]\n");
        assert!(e.contains("invalid TOML"), "{e}");
        let e = err_of("rules = 1");
        assert!(e.contains("top-level"), "{e}");
    }

    #[test]
    fn disable_and_enabled_false() {
        let mut s = ScenarioSet::builtin().unwrap();
        let n = s.scenarios.len();
        s.add_source("local.toml", "disable = [\"http-request-flood\"]")
            .unwrap();
        assert_eq!(s.scenarios.len(), n - 1);
        assert!(s.get("http-request-flood").is_none());
        let e = s
            .add_source("local.toml", "disable = [\"nope\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
        s.add_source(
            "off.toml",
            &GOOD.replace("type =", "enabled = false\ntype ="),
        )
        .unwrap();
        assert_eq!(s.scenarios.len(), n - 1);
    }

    #[test]
    fn loads_user_directory() {
        let dir = std::env::temp_dir().join(format!("palisade-scen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.toml"), GOOD).unwrap();
        std::fs::write(dir.join("ignored.txt"), "junk").unwrap();
        let s = ScenarioSet::load(Some(&dir)).unwrap();
        assert!(s.get("local-test").is_some());
        std::fs::write(dir.join("b.toml"), "[[scenario]]\nid = 5\n").unwrap();
        let e = ScenarioSet::load(Some(&dir)).unwrap_err().to_string();
        assert!(e.contains("b.toml") && e.contains("scenario 5"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
