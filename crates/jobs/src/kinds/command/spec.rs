//! `[[jobs.commands]]`: a command an admin allow-lists. It names an absolute program
//! and an argument template whose `{placeholders}` are typed parameters; each argument
//! is one element of `argv` (no shell ever parses it), and a request with a parameter
//! that is not declared, or a value that does not pass its declaration, is refused
//! before anything runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use palisade_core::config::{ConfigProblem, Validate};
use palisade_core::duration::Span;
use palisade_core::security::Role;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::valid_name;
use crate::params::{ParamSet, ParamSpec};

/// One allow-listed command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The name jobs use (`"command": "backup"`).
    pub name: String,
    /// What it does (shown in the kinds listing).
    #[serde(default)]
    pub description: Option<String>,
    /// The program, by absolute path (run directly, never through a shell).
    pub program: PathBuf,
    /// Arguments; `{name}` is replaced by a parameter's value (`{{` and `}}` are
    /// literal braces). An argument naming an optional parameter that was not given is
    /// left out.
    #[serde(default)]
    pub args: Vec<String>,
    /// The parameters, by name.
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    /// Working directory (absolute; default `/`).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Environment variables set for it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables read from the secrets store: `VAR = "secret name"`.
    #[serde(default)]
    pub secret_env: BTreeMap<String, String>,
    /// Whether the server's own environment is passed on (default: only `PATH`,
    /// `LANG` and the variables above).
    #[serde(default)]
    pub inherit_env: bool,
    /// Longest a run may take (default: the `command` kind's timeout).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Failed attempts that end a job (default 1: commands are not retried unless they
    /// say they may be).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The least role that may run it: `analyst` (default) or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// The parameters, compiled by `finish`.
    #[serde(skip)]
    pub(crate) compiled: ParamSet,
    /// The argument template, parsed by `finish`.
    #[serde(skip)]
    pub(crate) template: Vec<Vec<Piece>>,
}

/// One part of an argument template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal text.
    Text(String),
    /// A parameter's value.
    Param(String),
}

/// Splits `--out={file}.log` into text and placeholders.
pub(crate) fn parse_template(arg: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("'{arg}': '{{' without '}}'")),
                    }
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Param(name));
            }
            '}' => return Err(format!("'{arg}': '}}' without '{{' (write '}}}}')")),
            c => text.push(c),
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl CommandSpec {
    /// The least role that may run it.
    pub fn role(&self) -> Role {
        match self.role.as_deref() {
            Some("admin") => Role::Admin,
            _ => Role::Analyst,
        }
    }

    /// The JSON Schema of its parameters, with `command` fixed to its name.
    pub fn schema(&self) -> Value {
        let mut schema = self.compiled.schema();
        if let Some(obj) = schema.as_object_mut() {
            if let Some(Value::Object(props)) = obj.get_mut("properties") {
                props.insert(
                    "command".into(),
                    serde_json::json!({"const": self.name, "type": "string"}),
                );
            }
            if let Some(Value::Array(req)) = obj.get_mut("required") {
                req.insert(0, Value::String("command".into()));
            }
            if let Some(d) = &self.description {
                obj.insert("description".into(), Value::String(d.clone()));
            }
        }
        schema
    }

    /// Checks a job's parameters against the declaration; the normalised values.
    pub(crate) fn check(&self, params: &Value) -> Result<Map<String, Value>, crate::ParamError> {
        self.compiled.check(params, &["command"])
    }

    /// The argument vector for normalised parameters.
    pub(crate) fn argv(&self, values: &Map<String, Value>) -> Vec<String> {
        let mut argv = Vec::with_capacity(self.template.len());
        'args: for pieces in &self.template {
            let mut arg = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(t) => arg.push_str(t),
                    Piece::Param(name) => match values.get(name) {
                        Some(Value::String(s)) => arg.push_str(s),
                        Some(Value::Bool(b)) => arg.push_str(if *b { "true" } else { "false" }),
                        Some(Value::Number(n)) => arg.push_str(&n.to_string()),
                        _ => continue 'args,
                    },
                }
            }
            argv.push(arg);
        }
        argv
    }
}

impl Validate for CommandSpec {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if !valid_name(&self.name) {
            problems.push(ConfigProblem::new(
                "name",
                "1 to 64 letters, digits, '_', '-' or '.'",
            ));
        }
        if !self.program.is_absolute() {
            problems.push(ConfigProblem::new(
                "program",
                format!(
                    "'{}' must be an absolute path (commands run without a shell or a PATH search)",
                    self.program.display()
                ),
            ));
        }
        if let Some(dir) = &self.dir
            && !dir.is_absolute()
        {
            problems.push(ConfigProblem::new("dir", "must be an absolute directory"));
        }
        if self.params.contains_key("command") {
            problems.push(ConfigProblem::new(
                "params.command",
                "'command' names the command itself; call the parameter something else",
            ));
        }
        match ParamSet::compile(self.params.clone()) {
            Ok(set) => self.compiled = set,
            Err(p) => problems.extend(p),
        }
        self.template.clear();
        for (i, arg) in self.args.iter().enumerate() {
            match parse_template(arg) {
                Ok(pieces) => {
                    for p in &pieces {
                        if let Piece::Param(name) = p
                            && !self.params.contains_key(name)
                        {
                            problems.push(ConfigProblem::new(
                                format!("args[{i}]"),
                                format!("'{{{name}}}' is not a declared parameter"),
                            ));
                        }
                    }
                    self.template.push(pieces);
                }
                Err(why) => problems.push(ConfigProblem::new(format!("args[{i}]"), why)),
            }
        }
        for (var, _) in self.env.iter().chain(self.secret_env.iter()) {
            if !env_name_ok(var) {
                problems.push(ConfigProblem::new(
                    format!("env.{var}"),
                    "an environment variable name is letters, digits and '_'",
                ));
            }
        }
        for (var, secret) in &self.secret_env {
            if self.env.contains_key(var) {
                problems.push(ConfigProblem::new(
                    format!("secret_env.{var}"),
                    "is also set in env",
                ));
            }
            if !valid_name(secret) {
                problems.push(ConfigProblem::new(
                    format!("secret_env.{var}"),
                    "must name a secret (letters, digits, '_', '-', '.')",
                ));
            }
        }
        if let Some(t) = self.timeout
            && !t.within(Span::from_millis(100), Span::from_secs(7 * 86_400))
        {
            problems.push(ConfigProblem::new(
                "timeout",
                "must be between 100ms and 7d",
            ));
        }
        if let Some(m) = self.max_attempts
            && !(1..=100).contains(&m)
        {
            problems.push(ConfigProblem::new(
                "max_attempts",
                "must be between 1 and 100",
            ));
        }
        if let Some(r) = &self.role
            && !matches!(r.as_str(), "analyst" | "admin")
        {
            problems.push(ConfigProblem::new("role", "must be analyst or admin"));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(text: &str) -> Result<CommandSpec, Vec<String>> {
        let mut c: CommandSpec = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let p = c.finish();
        if p.is_empty() {
            Ok(c)
        } else {
            Err(p.iter().map(ToString::to_string).collect())
        }
    }

    #[test]
    fn templates_render_one_argument_per_element() {
        let c = spec(
            r#"
            name = "report"
            program = "/usr/bin/report"
            args = ["--out={dir}/r.json", "{{literal}}", "--days", "{days}", "--limit={limit}", "{verbose}"]
            [params.dir]
            type = "path"
            required = true
            [params.days]
            type = "integer"
            default = 7
            [params.limit]
            type = "integer"
            [params.verbose]
            type = "boolean"
            default = false
            "#,
        )
        .unwrap();
        let values = c
            .check(&json!({"command": "report", "dir": "/tmp/a b; rm -rf /"}))
            .unwrap();
        assert_eq!(
            c.argv(&values),
            [
                "--out=/tmp/a b; rm -rf //r.json",
                "{literal}",
                "--days",
                "7",
                "false"
            ]
        );
        assert!(c.check(&json!({"command": "report"})).is_err());
        assert_eq!(
            c.check(&json!({"command": "report", "dir": "/x", "shell": "sh"}))
                .unwrap_err()
                .param,
            "shell"
        );
        assert_eq!(c.schema()["properties"]["command"]["const"], "report");
        assert_eq!(c.schema()["required"], json!(["command", "dir"]));
    }

    #[test]
    fn declarations_are_checked() {
        let problems = spec(
            r#"
            name = "bad name"
            program = "backup.sh"
            dir = "tmp"
            args = ["{missing}", "{open"]
            env = { "1X" = "a" }
            secret_env = { TOKEN = "" }
            role = "root"
            [params.command]
            type = "string"
            "#,
        )
        .unwrap_err();
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "name",
                "program",
                "dir",
                "params.command",
                "args[0]",
                "args[1]",
                "env.1X",
                "secret_env.TOKEN",
                "role"
            ]
        );
    }
}
