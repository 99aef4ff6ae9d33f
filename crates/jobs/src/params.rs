//! Typed job parameters: one declaration gives both the JSON Schema a client sees
//! (`GET /api/v1/jobs/kinds`) and the check every submitted value passes before a job
//! is stored ("parse, don't validate": a kind only ever sees the normalised object).
//!
//! Built-in kinds declare their parameters in code; allow-listed commands declare theirs
//! in the configuration (`[jobs.commands.params.NAME]`) with the same fields.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use palisade_core::config::ConfigProblem;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The longest text parameter accepted, whatever its declaration says.
pub const MAX_TEXT_LEN: usize = 4096;

/// A parameter that was refused: which one and why (the API answers 400 naming
/// `params.NAME`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct ParamError {
    /// The parameter's name (`params` for the object as a whole).
    pub param: String,
    /// Why, in words a user can act on.
    pub reason: String,
}

impl ParamError {
    /// A refusal of `param`.
    pub fn new(param: impl Into<String>, reason: impl Into<String>) -> ParamError {
        ParamError {
            param: param.into(),
            reason: reason.into(),
        }
    }
}

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Text: no control characters, by default not starting with `-`.
    String,
    /// A whole number (`minimum`/`maximum`).
    Integer,
    /// `true` or `false`.
    Boolean,
    /// An absolute path without `..` components.
    Path,
}

impl ParamType {
    fn schema_type(self) -> &'static str {
        match self {
            ParamType::String | ParamType::Path => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// What it is for (shown in the schema).
    #[serde(default)]
    pub description: Option<String>,
    /// Whether it must be given (a parameter with a default never has to be).
    #[serde(default)]
    pub required: bool,
    /// The value used when it is not given.
    #[serde(default)]
    pub default: Option<Value>,
    /// For text: a regular expression the whole value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// For text: the fewest characters.
    #[serde(default)]
    pub min_length: Option<usize>,
    /// For text: the most characters (at most 4096).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// For integers: the smallest value.
    #[serde(default)]
    pub minimum: Option<i64>,
    /// For integers: the largest value.
    #[serde(default)]
    pub maximum: Option<i64>,
    /// For text: the only values accepted.
    #[serde(default)]
    pub choices: Option<Vec<String>>,
    /// For text: allow a leading `-` (refused by default, so that a value can never be
    /// taken for an option by the program it is passed to).
    #[serde(default)]
    pub allow_leading_dash: bool,
}

impl ParamSpec {
    /// A parameter of a type, optional, with no constraint.
    pub fn of(kind: ParamType) -> ParamSpec {
        ParamSpec {
            kind,
            description: None,
            required: false,
            default: None,
            pattern: None,
            min_length: None,
            max_length: None,
            minimum: None,
            maximum: None,
            choices: None,
            allow_leading_dash: false,
        }
    }

    /// The same, described.
    pub fn describe(mut self, text: &str) -> ParamSpec {
        self.description = Some(text.to_owned());
        self
    }

    /// The same, required.
    pub fn required(mut self) -> ParamSpec {
        self.required = true;
        self
    }

    /// The same, limited to these values.
    pub fn choices(mut self, values: &[&str]) -> ParamSpec {
        self.choices = Some(values.iter().map(|v| (*v).to_owned()).collect());
        self
    }

    /// The same, at most `n` characters.
    pub fn max_length(mut self, n: usize) -> ParamSpec {
        self.max_length = Some(n);
        self
    }

    /// The same, matching a pattern.
    pub fn pattern(mut self, re: &str) -> ParamSpec {
        self.pattern = Some(re.to_owned());
        self
    }
}

/// A compiled set of declared parameters.
#[derive(Debug, Clone, Default)]
pub struct ParamSet {
    specs: BTreeMap<String, (ParamSpec, Option<Regex>)>,
}

/// Whether a name can be a parameter's (and a placeholder's).
pub fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl ParamSet {
    /// Compiles declarations, collecting every problem (keys relative to `params`).
    pub fn compile(specs: BTreeMap<String, ParamSpec>) -> Result<ParamSet, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut compiled = BTreeMap::new();
        for (name, spec) in specs {
            let key = format!("params.{name}");
            if !valid_param_name(&name) {
                problems.push(ConfigProblem::new(
                    &key,
                    "a parameter name is 1 to 64 lower-case letters, digits or '_', starting with a letter",
                ));
            }
            let text = matches!(spec.kind, ParamType::String | ParamType::Path);
            if !text
                && (spec.pattern.is_some()
                    || spec.min_length.is_some()
                    || spec.max_length.is_some()
                    || spec.choices.is_some())
            {
                problems.push(ConfigProblem::new(
                    &key,
                    "pattern, min_length, max_length and choices apply to string and path parameters only",
                ));
            }
            if spec.kind != ParamType::Integer && (spec.minimum.is_some() || spec.maximum.is_some())
            {
                problems.push(ConfigProblem::new(
                    &key,
                    "minimum and maximum apply to integer parameters only",
                ));
            }
            if spec.max_length.is_some_and(|n| n == 0 || n > MAX_TEXT_LEN) {
                problems.push(ConfigProblem::new(
                    format!("{key}.max_length"),
                    format!("must be between 1 and {MAX_TEXT_LEN}"),
                ));
            }
            if let (Some(lo), Some(hi)) = (spec.min_length, spec.max_length)
                && lo > hi
            {
                problems.push(ConfigProblem::new(
                    format!("{key}.min_length"),
                    "must not exceed max_length",
                ));
            }
            if let (Some(lo), Some(hi)) = (spec.minimum, spec.maximum)
                && lo > hi
            {
                problems.push(ConfigProblem::new(
                    format!("{key}.minimum"),
                    "must not exceed maximum",
                ));
            }
            let regex = match &spec.pattern {
                Some(p) => match Regex::new(&format!("^(?:{p})$")) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        problems.push(ConfigProblem::new(
                            format!("{key}.pattern"),
                            format!("not a regular expression: {e}"),
                        ));
                        None
                    }
                },
                None => None,
            };
            compiled.insert(name, (spec, regex));
        }
        let set = ParamSet { specs: compiled };
        // Defaults must pass their own checks.
        for (name, (spec, _)) in &set.specs {
            if let Some(default) = &spec.default
                && let Err(e) = set.check_one(name, default)
            {
                problems.push(ConfigProblem::new(
                    format!("params.{name}.default"),
                    e.reason,
                ));
            }
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(problems)
        }
    }

    /// The declared names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }

    /// Whether `name` is declared.
    pub fn contains(&self, name: &str) -> bool {
        self.specs.contains_key(name)
    }

    /// The JSON Schema of an object of these parameters.
    pub fn schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, (spec, _)) in &self.specs {
            let mut p = Map::new();
            p.insert("type".into(), json!(spec.kind.schema_type()));
            if let Some(d) = &spec.description {
                p.insert("description".into(), json!(d));
            }
            if let Some(d) = &spec.default {
                p.insert("default".into(), d.clone());
            }
            if let Some(re) = &spec.pattern {
                p.insert("pattern".into(), json!(format!("^(?:{re})$")));
            }
            if let Some(n) = spec.min_length {
                p.insert("minLength".into(), json!(n));
            }
            p.insert(
                "maxLength".into(),
                json!(spec.max_length.unwrap_or(MAX_TEXT_LEN)),
            );
            if spec.kind == ParamType::Integer || spec.kind == ParamType::Boolean {
                p.remove("maxLength");
            }
            if let Some(n) = spec.minimum {
                p.insert("minimum".into(), json!(n));
            }
            if let Some(n) = spec.maximum {
                p.insert("maximum".into(), json!(n));
            }
            if let Some(c) = &spec.choices {
                p.insert("enum".into(), json!(c));
            }
            if spec.kind == ParamType::Path {
                p.insert("format".into(), json!("path"));
            }
            properties.insert(name.clone(), Value::Object(p));
            if spec.required && spec.default.is_none() {
                required.push(name.clone());
            }
        }
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }

    /// Checks an object of parameters and returns it normalised: every value of its
    /// declared type (integers and booleans may also come as text, as the CLI sends
    /// them), defaults filled in, nothing undeclared. `skip` names keys handled by the
    /// caller (a command's `command`).
    pub fn check(&self, params: &Value, skip: &[&str]) -> Result<Map<String, Value>, ParamError> {
        let empty = Map::new();
        let given = match params {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => return Err(ParamError::new("params", "must be a JSON object")),
        };
        for name in given.keys() {
            if !self.specs.contains_key(name) && !skip.contains(&name.as_str()) {
                let declared: Vec<&str> = self.names().collect();
                return Err(ParamError::new(
                    name,
                    if declared.is_empty() {
                        "not a declared parameter (this takes none)".to_owned()
                    } else {
                        format!(
                            "not a declared parameter; declared: {}",
                            declared.join(", ")
                        )
                    },
                ));
            }
        }
        let mut out = Map::new();
        for (name, (spec, _)) in &self.specs {
            match given.get(name).filter(|v| !v.is_null()) {
                Some(v) => {
                    out.insert(name.clone(), self.check_one(name, v)?);
                }
                None => match &spec.default {
                    Some(d) => {
                        out.insert(name.clone(), d.clone());
                    }
                    None if spec.required => {
                        return Err(ParamError::new(name, "missing; this parameter is required"));
                    }
                    None => {}
                },
            }
        }
        Ok(out)
    }

    fn check_one(&self, name: &str, value: &Value) -> Result<Value, ParamError> {
        let Some((spec, regex)) = self.specs.get(name) else {
            return Err(ParamError::new(name, "not a declared parameter"));
        };
        let err = |why: String| ParamError::new(name, why);
        match spec.kind {
            ParamType::Integer => {
                let n = match value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| err("must be a whole number".into()))?;
                if let Some(lo) = spec.minimum
                    && n < lo
                {
                    return Err(err(format!("must be at least {lo}")));
                }
                if let Some(hi) = spec.maximum
                    && n > hi
                {
                    return Err(err(format!("must be at most {hi}")));
                }
                Ok(json!(n))
            }
            ParamType::Boolean => match value {
                Value::Bool(b) => Ok(json!(b)),
                Value::String(s) if s == "true" => Ok(json!(true)),
                Value::String(s) if s == "false" => Ok(json!(false)),
                _ => Err(err("must be true or false".into())),
            },
            ParamType::String | ParamType::Path => {
                let Value::String(s) = value else {
                    return Err(err("must be text".into()));
                };
                let chars = s.chars().count();
                let max = spec.max_length.unwrap_or(MAX_TEXT_LEN).min(MAX_TEXT_LEN);
                if chars > max {
                    return Err(err(format!("longer than {max} characters")));
                }
                if let Some(min) = spec.min_length
                    && chars < min
                {
                    return Err(err(format!("shorter than {min} characters")));
                }
                if s.chars().any(char::is_control) {
                    return Err(err("must not contain control characters".into()));
                }
                if s.starts_with('-') && !spec.allow_leading_dash {
                    return Err(err(
                        "must not start with '-' (it could be taken for an option)".into(),
                    ));
                }
                if let Some(choices) = &spec.choices
                    && !choices.iter().any(|c| c == s)
                {
                    return Err(err(format!("must be one of {}", choices.join(", "))));
                }
                if let Some(re) = regex
                    && !re.is_match(s)
                {
                    return Err(err(format!(
                        "does not match the pattern {}",
                        spec.pattern.as_deref().unwrap_or_default()
                    )));
                }
                if spec.kind == ParamType::Path {
                    check_path(s).map_err(|why| err(why.into()))?;
                }
                Ok(json!(s))
            }
        }
    }
}

/// An absolute path with no `..` and no empty name.
fn check_path(s: &str) -> Result<(), &'static str> {
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err("must be an absolute path");
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("must not contain '..'");
    }
    Ok(())
}

/// Turns `k=v` pairs (the CLI's `--param`) into a parameter object, typed by a kind's
/// schema where it says integer or boolean (else text); for a command, by the chosen
/// command's schema.
pub fn from_pairs(schema: &Value, pairs: &[(String, String)]) -> Value {
    let command = pairs
        .iter()
        .find(|(k, _)| k == "command")
        .map(|(_, v)| v.as_str());
    let properties = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .and_then(|alts| {
            alts.iter().find(|alt| {
                alt.pointer("/properties/command/const")
                    .and_then(Value::as_str)
                    == command
            })
        })
        .unwrap_or(schema)
        .get("properties")
        .cloned()
        .unwrap_or(Value::Null);
    let mut out = Map::new();
    for (k, v) in pairs {
        let ty = properties
            .get(k)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str);
        let value = match ty {
            Some("integer") => v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n)),
            Some("boolean") => match v.as_str() {
                "true" => json!(true),
                "false" => json!(false),
                _ => json!(v),
            },
            _ => json!(v),
        };
        out.insert(k.clone(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ParamSet {
        let mut specs = BTreeMap::new();
        specs.insert(
            "target".to_owned(),
            ParamSpec::of(ParamType::String)
                .required()
                .pattern("[a-z]+")
                .max_length(8),
        );
        specs.insert("count".to_owned(), {
            let mut s = ParamSpec::of(ParamType::Integer);
            s.minimum = Some(1);
            s.maximum = Some(10);
            s.default = Some(json!(3));
            s
        });
        specs.insert("dry_run".to_owned(), ParamSpec::of(ParamType::Boolean));
        specs.insert("file".to_owned(), ParamSpec::of(ParamType::Path));
        ParamSet::compile(specs).unwrap()
    }

    fn refused(v: Value) -> String {
        set()
            .check(&v, &[])
            .err()
            .map(|e| e.param)
            .unwrap_or_default()
    }

    #[test]
    fn values_are_checked_typed_and_defaulted() {
        let ok = set()
            .check(
                &json!({"target": "db", "dry_run": "true", "count": "7"}),
                &[],
            )
            .unwrap();
        assert_eq!(
            Value::Object(ok),
            json!({"target": "db", "dry_run": true, "count": 7})
        );
        let defaulted = set().check(&json!({"target": "db"}), &[]).unwrap();
        assert_eq!(defaulted.get("count"), Some(&json!(3)));
        assert_eq!(refused(json!({})), "target");
        assert_eq!(refused(json!({"target": "DB"})), "target");
        assert_eq!(refused(json!({"target": "abcdefghi"})), "target");
        assert_eq!(refused(json!({"target": "-rf"})), "target");
        assert_eq!(refused(json!({"target": "a\nb"})), "target");
        assert_eq!(refused(json!({"target": 5})), "target");
        assert_eq!(refused(json!({"target": "db", "count": 11})), "count");
        assert_eq!(refused(json!({"target": "db", "count": 1.5})), "count");
        assert_eq!(
            refused(json!({"target": "db", "dry_run": "yes"})),
            "dry_run"
        );
        assert_eq!(refused(json!({"target": "db", "file": "rel/x"})), "file");
        assert_eq!(
            refused(json!({"target": "db", "file": "/a/../etc"})),
            "file"
        );
        assert_eq!(refused(json!({"target": "db", "shell": "rm"})), "shell");
        assert_eq!(refused(json!([1])), "params");
        let schema = set().schema();
        assert_eq!(schema["required"], json!(["target"]));
        assert_eq!(
            schema["properties"]["target"]["pattern"],
            json!("^(?:[a-z]+)$")
        );
        assert_eq!(schema["additionalProperties"], json!(false));
    }

    #[test]
    fn bad_declarations_are_reported() {
        let mut specs = BTreeMap::new();
        specs.insert("Bad-Name".to_owned(), ParamSpec::of(ParamType::String));
        specs.insert(
            "n".to_owned(),
            ParamSpec::of(ParamType::Integer).pattern("x"),
        );
        specs.insert(
            "p".to_owned(),
            ParamSpec::of(ParamType::String).pattern("("),
        );
        let mut d = ParamSpec::of(ParamType::String).choices(&["a"]);
        d.default = Some(json!("b"));
        specs.insert("d".to_owned(), d);
        let problems = ParamSet::compile(specs).unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "params.Bad-Name",
                "params.n",
                "params.p.pattern",
                "params.d.default"
            ]
        );
    }

    #[test]
    fn cli_pairs_follow_the_schema() {
        let v = from_pairs(
            &set().schema(),
            &[
                ("count".into(), "4".into()),
                ("target".into(), "007".into()),
                ("dry_run".into(), "false".into()),
            ],
        );
        assert_eq!(v, json!({"count": 4, "target": "007", "dry_run": false}));
    }
}
