//! Configuration: the binary only composes. Every section belongs to a component that
//! deserializes and checks itself in its own crate (`[http]` → `palisade_api::ApiConfig`,
//! `[[proxy]]` → `palisade_proxy::ProxyConfig`, …); this module reads the TOML file,
//! lays the environment and then the flags over it, hands each section to its
//! component, and collects every problem with the key to fix.
//!
//! Precedence: defaults < file (`--config FILE`, else `./palisade.toml` when present)
//! < `PALISADE_*` environment variables < flags. The environment rule: any key is
//! `PALISADE_` + its path in upper case with `__` between levels
//! (`PALISADE_DETECTION__MODE=detect`, `PALISADE_HTTP__MAX_BODY_BYTES=2097152`,
//! `PALISADE_PROXY__0__UPSTREAM=http://127.0.0.1:3000`); top-level keys need no `__`
//! (`PALISADE_LISTEN`, `PALISADE_DATA_DIR`, `PALISADE_DATABASE_URL`). Values are read
//! as TOML (`2`, `true`, `["a", "b"]`), falling back to plain text.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use palisade_alerts::AlertsConfig;
use palisade_analytics::AnalyticsConfig;
use palisade_api::ApiConfig;
use palisade_api::auth::{AuthConfig, RateLimits};
use palisade_api::routes::check::CheckConfig;
use palisade_core::config::{ConfigProblem, Validate};
use palisade_formats::FormatSpec;
use palisade_jobs::JobConfig;
use palisade_pipeline::decisions::DecisionsConfig;
use palisade_pipeline::detection::DetectionConfig;
use palisade_pipeline::stages::behaviour::BehaviourConfig;
use palisade_proxy::ProxyConfig;
use palisade_sources::WriterConfig;
use palisade_sources::syslog::SyslogConfig;
use palisade_sources::tail::TailConfig;
use palisade_vuln::VulnConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::telemetry::LogFormat;

/// The default listen address: loopback only, so a fresh install exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./palisade-data";
/// The default database: SQLite inside the data directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://palisade.db";
/// The configuration file read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "palisade.toml";

/// Top-level keys (not sections).
const TOP_KEYS: &[&str] = &["listen", "data_dir", "database_url"];
/// Sections that are lists (`[[proxy]]`).
const LIST_SECTIONS: &[&str] = &["sources", "proxy", "syslog", "kafka", "capture"];
/// Sections that are single tables (`[http]`).
const TABLE_SECTIONS: &[&str] = &[
    "log",
    "http",
    "ingest",
    "auth",
    "rate_limit",
    "detection",
    "scenarios",
    "decisions",
    "check",
    "jobs",
    "vuln",
    "analytics",
    "alerts",
    "flows",
    "kafka_sink",
    "models",
    "search",
    "baselines",
];

/// `[log]`: the binary's own component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Filter directive, e.g. `info` or `palisade_sources=debug,info`.
    pub level: String,
    /// `auto`, `json` or `text`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

impl Validate for LogConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            vec![ConfigProblem::new(
                "level",
                format!(
                    "'{}' is not a filter like info or palisade=debug,info",
                    self.level
                ),
            )]
        } else {
            Vec::new()
        }
    }
}

/// A value that must never reach a log or a `Debug` dump.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Authentication settings: `[auth]` and `[rate_limit]`, the key files resolved in the
/// data directory, and the secrets that only come from the environment.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Lifetimes, metrics access, rate limits.
    pub config: AuthConfig,
    /// JWT signing key file.
    pub jwt_key_file: PathBuf,
    /// Secrets keyring file.
    pub secrets_key_file: PathBuf,
    /// `PALISADE_JWT_KEY`: the signing key given by configuration.
    pub jwt_key: Option<Redacted>,
    /// `PALISADE_SECRETS_KEY`: the active secrets key given by configuration.
    pub secrets_key: Option<Redacted>,
    /// `PALISADE_ADMIN_PASSWORD`: the first admin's password.
    pub admin_password: Option<Redacted>,
}

/// What the command line says (flags win over variables; clap reads both).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// The TOML file to read.
    pub config: Option<PathBuf>,
    /// `--listen` / `PALISADE_LISTEN`.
    pub listen: Option<String>,
    /// `--data-dir` / `PALISADE_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url` / `PALISADE_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--log-level` / `PALISADE_LOG`.
    pub log_level: Option<String>,
    /// `--log-format` / `PALISADE_LOG_FORMAT`.
    pub log_format: Option<LogFormat>,
    /// `--tail PATH` (repeatable).
    pub tail: Vec<PathBuf>,
    /// `--format` for the `--tail` paths.
    pub tail_format: Option<String>,
    /// `--log-format-string` for the `--tail` paths.
    pub tail_log_format: Option<String>,
    /// `--proxy-listen` and `--proxy-upstream`.
    pub proxy: Option<(String, String)>,
    /// `--proxy-name`: the name of the `--proxy-listen` proxy.
    pub proxy_name: Option<String>,
}

/// Validated settings the application runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to serve on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where Palisade keeps its files.
    pub data_dir: PathBuf,
    /// The database URL.
    pub database_url: String,
    /// Log filter.
    pub log_level: String,
    /// Log encoding.
    pub log_format: LogFormat,
    /// `[http]`.
    pub api: ApiConfig,
    /// `[ingest]`: batch size, writer queue and retry.
    pub writer: WriterConfig,
    /// `[[sources]]` and `--tail`: files to follow.
    pub sources: Vec<TailConfig>,
    /// Where the settings came from, for `config check`.
    pub config_file: Option<PathBuf>,
    /// `[auth]`, `[rate_limit]` and the environment's secrets.
    pub auth: AuthSettings,
    /// `[detection]`.
    pub detection: DetectionConfig,
    /// `[[proxy]]` and `--proxy-listen`: protecting proxies.
    pub proxies: Vec<ProxyConfig>,
    /// `[scenarios]`.
    pub scenarios: BehaviourConfig,
    /// `[[syslog]]`.
    pub syslog: Vec<SyslogConfig>,
    /// `[decisions]`.
    pub decisions: DecisionsConfig,
    /// `[check]`: trusted proxies of `/api/v1/check`.
    pub check: CheckConfig,
    /// `[jobs]`: the worker pool, retention, schedules, allow-listed commands.
    pub jobs: JobConfig,
    /// `[vuln]`: CVE feeds, software observation, inventory limits.
    pub vuln: VulnConfig,
    /// `[analytics]`.
    pub analytics: AnalyticsConfig,
    /// `[alerts]`: notification grouping, delivery retries, circuit breaker.
    pub alerts: AlertsConfig,
    /// `[flows]`: flow-table timeouts and cap for packet captures.
    pub flows: palisade_flows::FlowConfig,
    /// `[[kafka]]`: consumer-group sources.
    pub kafka: Vec<palisade_kafka::KafkaSourceConfig>,
    /// `[kafka_sink]`: threats produced to a topic.
    pub kafka_sink: Option<palisade_kafka::KafkaSinkConfig>,
    /// `[models]`: the request model and the rule/model fusion policy.
    pub models: palisade_models::ModelsConfig,
    /// `[search]`: the free-text index behind `q`.
    pub search: palisade_store::SearchConfig,
    /// `[[capture]]`: live capture from interfaces (binary feature `capture`).
    pub capture: Vec<palisade_flows::live::CaptureConfig>,
    /// `[baselines]`: per-endpoint anomaly baselines and their part in the fusion.
    pub baselines: palisade_models::BaselinesConfig,
}

/// Every problem found in the configuration, each saying what to fix.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Turns a format name and an optional `log_format` string into a spec (for the
/// `ingest` flags), with errors that name the keys to change.
pub fn format_spec(
    name: Option<&str>,
    log_format: Option<&str>,
    json_fields: Option<palisade_formats::JsonFieldMap>,
) -> Result<FormatSpec, String> {
    FormatSpec::from_parts(name, log_format, json_fields)
}

/// Reads the TOML file: the one given, else `palisade.toml` when it exists.
fn read_file(path: Option<&Path>) -> Result<(Table, Option<PathBuf>), String> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str::<Table>(&text)
            .map(|c| (c, Some(path.clone())))
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok((Table::new(), None)),
        Err(e) => Err(format!(
            "{}: cannot read the configuration file: {e}",
            path.display()
        )),
    }
}

/// A key path inside the configuration (`["proxy", "0", "upstream"]`).
type KeyPath = Vec<String>;

/// A key set from the environment, with the variable's text.
type FromEnv = (KeyPath, String);

/// Reads one environment value: TOML when it parses as a value, else text.
fn env_value(text: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

/// Where a `PALISADE_*` variable goes, by the one rule; `None` for variables that are
/// not configuration keys (secrets, test switches). Errors name the variable.
fn env_path(name: &str) -> Result<Option<KeyPath>, String> {
    let Some(rest) = name.strip_prefix("PALISADE_") else {
        return Ok(None);
    };
    let lower = rest.to_ascii_lowercase();
    match lower.as_str() {
        "log" => return Ok(Some(vec!["log".into(), "level".into()])),
        "log_format" => return Ok(Some(vec!["log".into(), "format".into()])),
        _ => {}
    }
    if !lower.contains("__") {
        return Ok(TOP_KEYS.contains(&lower.as_str()).then(|| vec![lower]));
    }
    let path: KeyPath = lower.split("__").map(str::to_owned).collect();
    let section = path[0].as_str();
    if !(TABLE_SECTIONS.contains(&section) || LIST_SECTIONS.contains(&section)) {
        return Err(format!(
            "{name}: there is no section [{section}] (sections: {})",
            [TABLE_SECTIONS, LIST_SECTIONS].concat().join(", ")
        ));
    }
    if path.iter().any(String::is_empty) || path.len() < 2 {
        return Err(format!(
            "{name}: give SECTION__KEY, e.g. PALISADE_HTTP__MAX_BODY_BYTES"
        ));
    }
    Ok(Some(path))
}

/// Sets `value` at `path`, creating tables and list entries on the way (a list index
/// may be an existing entry or the next one).
fn set_path(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let (first, rest) = path.split_first().ok_or("empty key")?;
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let slot = table
        .entry(first.clone())
        .or_insert_with(|| match rest[0].parse::<usize>() {
            Ok(_) => Value::Array(Vec::new()),
            Err(_) => Value::Table(Table::new()),
        });
    set_in(slot, rest, value)
}

fn set_in(slot: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    match slot {
        Value::Table(t) => set_path(t, path, value),
        Value::Array(items) => {
            let (index, rest) = path.split_first().ok_or("empty key")?;
            let i: usize = index
                .parse()
                .map_err(|_| format!("'{index}' is not a list index"))?;
            if i > items.len() {
                return Err(format!(
                    "index {i} skips entries (the list has {})",
                    items.len()
                ));
            }
            if i == items.len() {
                items.push(Value::Table(Table::new()));
            }
            if rest.is_empty() {
                items[i] = value;
                Ok(())
            } else {
                set_in(&mut items[i], rest, value)
            }
        }
        _ => Err("a value is already set there".into()),
    }
}

/// Lays every `PALISADE_*` configuration variable over the file; returns the paths it
/// set (values read as TOML may need a second reading as text).
fn apply_env(
    table: &mut Table,
    vars: impl Iterator<Item = (String, String)>,
    errors: &mut Vec<String>,
) -> Vec<FromEnv> {
    let mut set = Vec::new();
    let vars: BTreeMap<String, String> = vars.collect();
    for (name, value) in vars {
        if value.is_empty() {
            continue;
        }
        match env_path(&name) {
            Ok(None) => {}
            Ok(Some(path)) => match set_path(table, &path, env_value(&value)) {
                Ok(()) => set.push((path, value)),
                Err(e) => errors.push(format!("{name}: {e}")),
            },
            Err(e) => errors.push(e),
        }
    }
    set
}

/// Lays the flags over everything.
fn apply_flags(table: &mut Table, o: &Overrides) {
    let mut put = |path: &[&str], value: Value| {
        let path: KeyPath = path.iter().map(|s| (*s).to_owned()).collect();
        let _ = set_path(table, &path, value);
    };
    if let Some(v) = &o.listen {
        put(&["listen"], Value::String(v.clone()));
    }
    if let Some(v) = &o.data_dir {
        put(&["data_dir"], Value::String(v.display().to_string()));
    }
    if let Some(v) = &o.database_url {
        put(&["database_url"], Value::String(v.clone()));
    }
    if let Some(v) = &o.log_level {
        put(&["log", "level"], Value::String(v.clone()));
    }
    if let Some(v) = o.log_format {
        let name = match v {
            LogFormat::Auto => "auto",
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        };
        put(&["log", "format"], Value::String(name.into()));
    }
    let mut append = |section: &str, entry: Table| {
        let list = table
            .entry(section)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.push(Value::Table(entry));
        }
    };
    for path in &o.tail {
        let mut entry = Table::new();
        entry.insert("path".into(), Value::String(path.display().to_string()));
        if let Some(f) = &o.tail_format {
            entry.insert("format".into(), Value::String(f.clone()));
        }
        if let Some(f) = &o.tail_log_format {
            entry.insert("log_format".into(), Value::String(f.clone()));
        }
        append("sources", entry);
    }
    if let Some((listen, upstream)) = &o.proxy {
        let mut entry = Table::new();
        if let Some(name) = &o.proxy_name {
            entry.insert("name".into(), Value::String(name.clone()));
        }
        entry.insert("listen".into(), Value::String(listen.clone()));
        entry.insert("upstream".into(), Value::String(upstream.clone()));
        append("proxy", entry);
    }
}

/// Names the `[[proxy]]` entries that have no `name`: `proxy`, then `proxy-2`, … The
/// name is the source of a proxy's events and threats and labels its metrics, so it
/// must not be its listen address (which changes with the deployment) and must not be
/// shared.
fn name_unnamed_proxies(table: &mut Table) {
    let Some(Value::Array(items)) = table.get_mut("proxy") else {
        return;
    };
    let mut unnamed = 0;
    for item in items.iter_mut() {
        if let Value::Table(entry) = item
            && !entry.contains_key("name")
        {
            unnamed += 1;
            let name = if unnamed == 1 {
                "proxy".to_owned()
            } else {
                format!("proxy-{unnamed}")
            };
            entry.insert("name".into(), Value::String(name));
        }
    }
}

/// Two proxies with one name, or a proxy named like a source, would mix their events,
/// threats and metrics.
fn proxy_name_clashes(
    proxies: &[ProxyConfig],
    sources: &[TailConfig],
    syslog: &[SyslogConfig],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, p) in proxies.iter().enumerate() {
        if let Some(j) = proxies[..i].iter().position(|q| q.name == p.name) {
            problems.push(format!(
                "proxy[{i}].name: '{}' is also the name of proxy[{j}]; give each [[proxy]] its own name",
                p.name
            ));
        }
        let source = sources
            .iter()
            .map(|s| s.name.as_str())
            .chain(syslog.iter().map(|s| s.name.as_str()))
            .any(|n| n == p.name);
        if source {
            problems.push(format!(
                "proxy[{i}].name: '{}' is also the name of a source; proxies and sources need distinct names",
                p.name
            ));
        }
    }
    problems
}

/// A deserializing error as `key: message`, the key under `at`.
fn describe(at: &str, error: &toml::de::Error) -> String {
    let text = error.to_string();
    let text = text.trim_end();
    if let Some((message, key)) = text.rsplit_once("\nin `") {
        let key = key.trim_end_matches('`');
        return format!("{at}.{key}: {}", message.trim());
    }
    // A component's own check: `key: message`.
    if let Some((key, message)) = text.split_once(": ")
        && !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return format!("{at}.{key}: {message}");
    }
    format!("{at}: {text}")
}

/// Turns the environment's values under `prefix` back into text (for a second reading
/// when one was taken for a number or a boolean where the component wants text).
fn env_as_text(value: &mut Value, prefix: &[String], env: &[FromEnv]) {
    for (path, text) in env {
        if path.len() > prefix.len() && path[..prefix.len()] == *prefix {
            let mut slot = Some(&mut *value);
            for part in &path[prefix.len()..] {
                slot = match slot {
                    Some(Value::Table(t)) => t.get_mut(part.as_str()),
                    Some(Value::Array(a)) => part.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                    _ => None,
                };
            }
            if let Some(v) = slot
                && !v.is_str()
                && !v.is_table()
                && !v.is_array()
            {
                *v = Value::String(text.clone());
            }
        }
    }
}

/// Hands one value to its component: deserialize (a second time with environment
/// values as text, if the first reading fails), then the component's own checks.
fn component<T: DeserializeOwned + Validate>(
    value: Value,
    at: &str,
    path: &[String],
    env: &[FromEnv],
    errors: &mut Vec<String>,
) -> Option<T> {
    let parsed = value.clone().try_into::<T>().or_else(|first| {
        let mut text = value;
        env_as_text(&mut text, path, env);
        text.try_into::<T>().map_err(|_| first)
    });
    match parsed {
        Ok(mut c) => {
            errors.extend(c.finish().into_iter().map(|p| p.within(at).to_string()));
            Some(c)
        }
        Err(e) => {
            errors.push(describe(at, &e));
            None
        }
    }
}

/// A single-table section (absent: the component's defaults).
fn section<T: DeserializeOwned + Validate + Default>(
    table: &mut Table,
    name: &str,
    env: &[FromEnv],
    errors: &mut Vec<String>,
) -> T {
    let value = table
        .remove(name)
        .unwrap_or_else(|| Value::Table(Table::new()));
    component(value, name, &[name.to_owned()], env, errors).unwrap_or_default()
}

/// A list section (`[[proxy]]`): each entry on its own, so every broken entry is
/// reported.
fn list<T: DeserializeOwned + Validate>(
    table: &mut Table,
    name: &str,
    env: &[FromEnv],
    errors: &mut Vec<String>,
) -> Vec<T> {
    match table.remove(name) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let path = vec![name.to_owned(), i.to_string()];
                component(item, &format!("{name}[{i}]"), &path, env, errors)
            })
            .collect(),
        Some(_) => {
            errors.push(format!("{name}: must be a list of tables ([[{name}]])"));
            Vec::new()
        }
    }
}

/// A top-level text key.
fn top(table: &mut Table, key: &str, default: &str, errors: &mut Vec<String>) -> String {
    match table.remove(key) {
        None => default.to_owned(),
        Some(Value::String(s)) => s,
        Some(other) => {
            errors.push(format!("{key}: must be text (got a {})", other.type_str()));
            default.to_owned()
        }
    }
}

impl Settings {
    /// Loads and validates everything, collecting every problem rather than stopping at
    /// the first.
    pub fn load(o: &Overrides) -> Result<Settings, ConfigErrors> {
        Settings::load_from(o, std::env::vars())
    }

    /// [`Settings::load`] with the environment given (tests).
    pub fn load_from(
        o: &Overrides,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigErrors> {
        let mut errors = Vec::new();
        let (mut table, config_file) = match read_file(o.config.as_deref()) {
            Ok(v) => v,
            Err(e) => return Err(ConfigErrors(vec![e])),
        };
        let env: Vec<(String, String)> = env.collect();
        let secret = |name: &str| {
            env.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| Redacted(v.clone()))
        };
        let (jwt_key, secrets_key, admin_password) = (
            secret("PALISADE_JWT_KEY"),
            secret("PALISADE_SECRETS_KEY"),
            secret("PALISADE_ADMIN_PASSWORD"),
        );
        let from_env = apply_env(&mut table, env.into_iter(), &mut errors);
        apply_flags(&mut table, o);

        let listen_text = top(&mut table, "listen", DEFAULT_LISTEN, &mut errors);
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(format!(
                "listen: '{listen_text}' is not an address with a port, e.g. 127.0.0.1:8080 or [::]:8080 (set by --listen, PALISADE_LISTEN or `listen` in the file)"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let data_dir = PathBuf::from(top(&mut table, "data_dir", DEFAULT_DATA_DIR, &mut errors));
        if data_dir.as_os_str().is_empty() {
            errors.push("data_dir: must not be empty (set --data-dir or PALISADE_DATA_DIR)".into());
        }
        let database_url = top(
            &mut table,
            "database_url",
            DEFAULT_DATABASE_URL,
            &mut errors,
        );
        let scheme_ok = ["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|s| database_url.starts_with(s));
        if !scheme_ok {
            errors.push(format!(
                "database_url: '{}' must start with sqlite:// (e.g. sqlite://palisade.db, inside the data dir) or postgres:// (e.g. postgres://user@127.0.0.1:5432/palisade)",
                palisade_store::redact_url(&database_url)
            ));
        }

        let log: LogConfig = section(&mut table, "log", &from_env, &mut errors);
        let api: ApiConfig = section(&mut table, "http", &from_env, &mut errors);
        let writer: WriterConfig = section(&mut table, "ingest", &from_env, &mut errors);
        let mut auth_config: AuthConfig = section(&mut table, "auth", &from_env, &mut errors);
        auth_config.limits =
            section::<RateLimits>(&mut table, "rate_limit", &from_env, &mut errors);
        let detection: DetectionConfig = section(&mut table, "detection", &from_env, &mut errors);
        let scenarios: BehaviourConfig = section(&mut table, "scenarios", &from_env, &mut errors);
        let decisions: DecisionsConfig = section(&mut table, "decisions", &from_env, &mut errors);
        let check: CheckConfig = section(&mut table, "check", &from_env, &mut errors);
        let jobs: JobConfig = section(&mut table, "jobs", &from_env, &mut errors);
        let vuln: VulnConfig = section(&mut table, "vuln", &from_env, &mut errors);
        let analytics: AnalyticsConfig = section(&mut table, "analytics", &from_env, &mut errors);
        let alerts: AlertsConfig = section(&mut table, "alerts", &from_env, &mut errors);
        let flows: palisade_flows::FlowConfig =
            section(&mut table, "flows", &from_env, &mut errors);
        let models: palisade_models::ModelsConfig =
            section(&mut table, "models", &from_env, &mut errors);
        let search: palisade_store::SearchConfig =
            section(&mut table, "search", &from_env, &mut errors);
        let baselines: palisade_models::BaselinesConfig =
            section(&mut table, "baselines", &from_env, &mut errors);
        let mut sources: Vec<TailConfig> = list(&mut table, "sources", &from_env, &mut errors);
        name_unnamed_proxies(&mut table);
        let proxies: Vec<ProxyConfig> = list(&mut table, "proxy", &from_env, &mut errors);
        let mut syslog: Vec<SyslogConfig> = list(&mut table, "syslog", &from_env, &mut errors);
        let kafka: Vec<palisade_kafka::KafkaSourceConfig> =
            list(&mut table, "kafka", &from_env, &mut errors);
        let kafka_sink: Option<palisade_kafka::KafkaSinkConfig> =
            table.remove("kafka_sink").and_then(|v| {
                component(
                    v,
                    "kafka_sink",
                    &["kafka_sink".to_owned()],
                    &from_env,
                    &mut errors,
                )
            });
        let capture: Vec<palisade_flows::live::CaptureConfig> =
            list(&mut table, "capture", &from_env, &mut errors);
        if !palisade_flows::live::CAPTURE_BUILT && !capture.is_empty() {
            errors.push(
                "capture: this palisade was built without live capture; rebuild with `cargo build --features capture` (needs libpcap-dev)".into(),
            );
        }
        if !palisade_kafka::CLIENT_BUILT && (!kafka.is_empty() || kafka_sink.is_some()) {
            errors.push(
                "kafka: this palisade was built without Kafka support; rebuild with `cargo build --features kafka`".into(),
            );
        }
        for key in table.keys() {
            errors.push(format!(
                "{key}: unknown key (top-level keys: {}; sections: {})",
                TOP_KEYS.join(", "),
                [TABLE_SECTIONS, LIST_SECTIONS].concat().join(", ")
            ));
        }

        for s in &mut sources {
            s.batch_size = writer.batch_size;
        }
        for s in &mut syslog {
            s.batch_size = writer.batch_size;
        }
        for (i, k) in kafka.iter().enumerate() {
            let clash = sources
                .iter()
                .map(|s| s.name.as_str())
                .chain(syslog.iter().map(|s| s.name.as_str()))
                .chain(proxies.iter().map(|p| p.name.as_str()))
                .chain(kafka[..i].iter().map(|o| o.name.as_str()))
                .any(|n| n == k.name);
            if clash {
                errors.push(format!(
                    "kafka[{i}].name: '{}' is also the name of another source or proxy; give each [[kafka]] its own name",
                    k.name
                ));
            }
        }
        let mut names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        for pair in names.windows(2) {
            if pair[0] == pair[1] {
                errors.push(format!(
                    "sources: two sources are named '{}'; names must be unique",
                    pair[0]
                ));
            }
        }
        errors.extend(proxy_name_clashes(&proxies, &sources, &syslog));

        let auth = AuthSettings {
            jwt_key_file: data_dir.join(&auth_config.jwt_key_file),
            secrets_key_file: data_dir.join(&auth_config.secrets_key_file),
            config: auth_config,
            jwt_key,
            secrets_key,
            admin_password,
        };
        if let Some(k) = &auth.secrets_key
            && palisade_auth::secrets::parse_key(&k.0).is_err()
        {
            errors.push(
                "PALISADE_SECRETS_KEY: must be 64 hex characters or the base64 of 32 bytes".into(),
            );
        }

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Settings {
            listen,
            data_dir,
            database_url,
            log_level: log.level,
            log_format: log.format,
            api,
            writer,
            sources,
            config_file,
            auth,
            detection,
            proxies,
            scenarios,
            syslog,
            decisions,
            check,
            jobs,
            vuln,
            analytics,
            alerts,
            flows,
            kafka,
            kafka_sink,
            models,
            search,
            capture,
            baselines,
        })
    }

    /// Lines per batch that sources build (`[ingest] batch_size`).
    pub fn batch_size(&self) -> usize {
        self.writer.batch_size
    }

    /// The settings as text with the database password masked, for `config check`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let cfg = self.config_file.as_ref().map_or_else(
            || "(none: defaults and environment)".to_owned(),
            |p| p.display().to_string(),
        );
        out.push_str(&format!("config file:    {cfg}\n"));
        out.push_str(&format!("listen:         {}\n", self.listen));
        out.push_str(&format!("data dir:       {}\n", self.data_dir.display()));
        out.push_str(&format!(
            "database:       {}\n",
            palisade_store::redact_url(&self.database_url)
        ));
        out.push_str(&format!(
            "log:            {} ({:?})\n",
            self.log_level, self.log_format
        ));
        out.push_str(&format!(
            "http:           body limit {} bytes, timeout {}, CORS origins {:?}\n",
            self.api.max_body_bytes, self.api.request_timeout, self.api.cors_origins
        ));
        out.push_str(&format!(
            "ingest:         batch {} lines, queue {} batches\n",
            self.writer.batch_size, self.writer.queue_batches
        ));
        out.push_str(&format!(
            "auth:           access {}, refresh {}, metrics {}, keys in {} and {}\n",
            self.auth.config.access_ttl,
            self.auth.config.refresh_ttl,
            if self.auth.config.metrics_public {
                "open"
            } else {
                "protected"
            },
            self.auth.jwt_key_file.display(),
            self.auth.secrets_key_file.display()
        ));
        for s in &self.sources {
            out.push_str(&format!(
                "source:         {} <- {} ({:?})\n",
                s.name,
                s.path.display(),
                s.format
            ));
        }
        out.push_str(&format!(
            "detection:      {:?}, paranoia {}, threshold {}, rules dir {}\n",
            self.detection.mode,
            self.detection.engine.paranoia,
            self.detection.engine.threshold,
            self.detection
                .rules_dir
                .as_ref()
                .map_or_else(|| "(built-in only)".to_owned(), |d| d.display().to_string())
        ));
        for p in &self.proxies {
            out.push_str(&format!(
                "proxy:          {} {} -> http://{}{} (body limit {} bytes, {:?} beyond)\n",
                p.name,
                p.listen,
                p.upstream.authority,
                p.upstream.base_path,
                p.max_body_bytes,
                p.oversize
            ));
        }
        for s in &self.syslog {
            out.push_str(&format!("syslog:         {} {}\n", s.name, s.target()));
        }
        for k in &self.kafka {
            out.push_str(&format!(
                "kafka:          {} {} group {}\n",
                k.name,
                k.target(),
                k.group
            ));
        }
        if let Some(k) = &self.kafka_sink {
            out.push_str(&format!(
                "kafka sink:     threats -> kafka://{}/{}\n",
                k.brokers, k.threats_topic
            ));
        }
        out.push_str(&format!(
            "jobs:           {} workers, lease {}, {} schedules, {} commands, import dirs {:?}\n",
            self.jobs.workers,
            self.jobs.lease,
            self.jobs.schedules.len(),
            self.jobs.commands.len(),
            self.jobs.import_dirs
        ));
        out.push_str(&format!(
            "vuln:           NVD {} (key from secret '{}'), CIRCL {}, observe software {}\n",
            self.vuln.nvd.url,
            self.vuln.nvd.api_key_secret,
            self.vuln.circl.url,
            if self.vuln.observe { "on" } else { "off" }
        ));
        let a = &self.analytics;
        out.push_str(&format!(
            "analytics:      sample every {} over {}, roll-ups kept {} (minutes) / {} (hours), posture every {}\n",
            a.sample_every,
            a.realtime_window,
            a.minute_retention,
            a.hour_retention,
            a.posture_every.0.map_or_else(|| "never (on demand only)".to_owned(), |s| s.to_string())
        ));
        let m = &self.models;
        out.push_str(&format!(
            "models:         {} ({}), {}, model alone blocks {}\n",
            if m.enabled { "on" } else { "off (rules only)" },
            m.path.as_ref().map_or_else(
                || "built-in default".to_owned(),
                |p| p.display().to_string()
            ),
            match m.operating_point {
                palisade_models::OperatingPointMode::Fixed =>
                    format!("+{} points from p >= {}", m.model_weight, m.min_probability),
                palisade_models::OperatingPointMode::Calibrated => format!(
                    "the model file's calibrated operating point (else +{} points from p >= {})",
                    m.model_weight, m.min_probability
                ),
            },
            m.block_probability
                .map_or_else(|| "never".to_owned(), |b| format!("at p >= {b}"))
        ));
        let b = &self.baselines;
        out.push_str(&format!(
            "baselines:      {}, warm-up {} requests, up to {} endpoints x {} parameters, saved every {}, +{} points (detect) / +{} (block), anomaly threat from {} points\n",
            if b.enabled { "on" } else { "off" },
            b.warmup,
            b.max_endpoints,
            b.max_parameters,
            b.snapshot_every,
            b.points_detect,
            b.points_block,
            b.report_points
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_toml_env(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load_from(
            &Overrides {
                config: Some(path),
                ..Overrides::default()
            },
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    fn load_toml(text: &str) -> Result<Settings, ConfigErrors> {
        load_toml_env(text, &[])
    }

    #[test]
    fn the_jobs_section_is_composed_and_its_problems_named() {
        let s = load_toml(
            "[jobs]\nworkers = 2\nimport_dirs = [\"/var/log\"]\n[jobs.retention]\nevents = \"90d\"\n\
             [[jobs.commands]]\nname = \"hello\"\nprogram = \"/bin/echo\"\nargs = [\"{who}\"]\n\
             [jobs.commands.params.who]\ntype = \"string\"\n",
        )
        .unwrap();
        assert_eq!(s.jobs.workers, 2);
        assert_eq!(s.jobs.commands[0].name, "hello");
        let e =
            load_toml("[jobs]\nworkers = 0\n[[jobs.commands]]\nname = \"x\"\nprogram = \"echo\"\n")
                .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("jobs.workers"), "{text}");
        assert!(text.contains("jobs.commands[0].program"), "{text}");
        let env = load_toml_env("", &[("PALISADE_JOBS__WORKERS", "3")]).unwrap();
        assert_eq!(env.jobs.workers, 3);
    }

    #[test]
    fn the_vuln_section_is_read_and_checked() {
        let s = load_toml_env(
            "[vuln]\nobserve = false\n[vuln.nvd]\npage_size = 500\n",
            &[("PALISADE_VULN__NVD__API_KEY_SECRET", "nvd_key_2")],
        )
        .unwrap();
        assert!(!s.vuln.observe);
        assert_eq!(s.vuln.nvd.page_size, 500);
        assert_eq!(s.vuln.nvd.api_key_secret, "nvd_key_2");
        let err = load_toml("[vuln.nvd]\npage_size = 5000\n[vuln.circl]\nurl = \"gopher://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("vuln.nvd.page_size"), "{err}");
        assert!(err.contains("vuln.circl.url"), "{err}");
        let err = load_toml("[vuln]\nnvd_url = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("vuln"), "{err}");
    }

    #[test]
    fn proxies_are_validated_with_the_key_to_fix() {
        let s = load_toml(
            "[[proxy]]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:3000/app\"\n\
             oversize = \"inspect_prefix\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        assert_eq!(s.proxies.len(), 1);
        assert_eq!(s.proxies[0].upstream.base_path, "/app");
        assert_eq!(
            s.proxies[0].oversize,
            palisade_proxy::OversizePolicy::InspectPrefix
        );
        let err = load_toml(
            "[[proxy]]\nlisten = \"nowhere\"\nupstream = \"https://x\"\n\
             [[proxy]]\nlisten = \"127.0.0.1:1\"\nupstream = \"http://x\"\noversize = \"drop\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("proxy[0].listen"), "{err}");
        assert!(err.contains("proxy[1].oversize"), "{err}");
        let err = load_toml("[detection]\nrules_dir = \"/nonexistent/rules\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("detection.rules_dir"), "{err}");
    }

    #[test]
    fn defaults_need_no_file() {
        // A palisade.toml in the test's working directory would change this; there is none.
        let s = Settings::load_from(&Overrides::default(), std::iter::empty()).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.writer.batch_size, 2000);
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\n[http]\nmax_body_bytes = 4096\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let env = [
            ("PALISADE_LISTEN", "127.0.0.1:9050"),
            ("PALISADE_HTTP__MAX_BODY_BYTES", "8192"),
        ];
        let s =
            Settings::load_from(&o, env.iter().map(|(k, v)| ((*k).into(), (*v).into()))).unwrap();
        assert_eq!(s.listen.port(), 9050);
        assert_eq!(s.api.max_body_bytes, 8192);
        let flags = Overrides {
            listen: Some("127.0.0.1:9100".into()),
            ..o
        };
        let s = Settings::load_from(&flags, env.iter().map(|(k, v)| ((*k).into(), (*v).into())))
            .unwrap();
        assert_eq!(s.listen.port(), 9100);
    }

    #[test]
    fn every_key_has_an_environment_variable_by_one_rule() {
        let s = load_toml_env(
            "",
            &[
                ("PALISADE_DETECTION__MODE", "detect"),
                ("PALISADE_DETECTION__PARANOIA", "2"),
                ("PALISADE_AUTH__ACCESS_TTL", "10m"),
                ("PALISADE_AUTH__METRICS_PUBLIC", "true"),
                ("PALISADE_RATE_LIMIT__LOGIN_PER_MINUTE", "3"),
                (
                    "PALISADE_HTTP__CORS_ORIGINS",
                    "[\"https://soc.example.com\"]",
                ),
                ("PALISADE_PROXY__0__LISTEN", "127.0.0.1:0"),
                ("PALISADE_PROXY__0__UPSTREAM", "http://127.0.0.1:3000"),
                // A number where the component wants text: read again as text.
                ("PALISADE_PROXY__0__NAME", "8080"),
                ("PALISADE_DECISIONS__RESYNC", "10s"),
                ("PALISADE_ANALYTICS__SAMPLE_EVERY", "2s"),
                ("PALISADE_ANALYTICS__TLS_IN_FRONT", "true"),
                ("PALISADE_LOG", "debug"),
                // Not configuration: ignored.
                ("PALISADE_TEST_DATABASE_URL", "postgres://x"),
                ("PALISADE_SKIP_POSTGRES", "1"),
            ],
        )
        .unwrap();
        assert_eq!(s.detection.mode, palisade_pipeline::detection::Mode::Detect);
        assert_eq!(s.detection.engine.paranoia, 2);
        assert_eq!(s.auth.config.access_ttl_secs(), 600);
        assert!(s.auth.config.metrics_public);
        assert_eq!(s.auth.config.limits.login_per_minute, 3);
        assert_eq!(s.api.cors_origins, ["https://soc.example.com"]);
        assert_eq!(s.proxies.len(), 1);
        assert_eq!(s.proxies[0].name, "8080");
        assert_eq!(s.decisions.resync.as_secs(), 10);
        assert_eq!(s.analytics.sample_every.as_secs(), 2);
        assert!(s.analytics.tls_in_front);
        assert_eq!(s.log_level, "debug");

        let err = load_toml_env(
            "",
            &[
                ("PALISADE_DETECTON__MODE", "detect"),
                ("PALISADE_HTTP__MAX_BODY_BYTES", "lots"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("PALISADE_DETECTON__MODE"), "{err}");
        assert!(err.contains("http.max_body_bytes"), "{err}");
    }

    #[test]
    fn durations_take_the_shared_grammar_and_the_old_second_keys() {
        let s = load_toml(
            "[http]\nrequest_timeout = \"1m30s\"\n[auth]\naccess_ttl_secs = 600\n\
             [decisions]\nexpire_secs = 45\n[detection]\nrules_dir = \"/tmp\"\nreload = 0\n",
        );
        // /tmp may hold unrelated *.toml files; only the durations matter here.
        if let Ok(s) = s {
            assert_eq!(s.api.request_timeout.as_secs(), 90);
            assert_eq!(s.auth.config.access_ttl_secs(), 600);
            assert_eq!(s.decisions.expire.as_secs(), 45);
            assert_eq!(s.detection.reload_every, None);
        }
        let err = load_toml("[http]\nrequest_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.request_timeout"), "{err}");
    }

    #[test]
    fn kafka_sections_are_read_or_refused_by_a_build_without_kafka() {
        let text = "[[kafka]]\nname = \"feed\"\nbrokers = \"127.0.0.1:9092\"\ntopics = [\"web\"]\n\
                    format = \"combined\"\n[kafka_sink]\nbrokers = \"127.0.0.1:9092\"\n\
                    threats_topic = \"threats\"\n";
        let loaded = load_toml(text);
        if palisade_kafka::CLIENT_BUILT {
            let s = loaded.expect("valid kafka sections");
            assert_eq!(s.kafka.len(), 1);
            assert_eq!(s.kafka[0].name, "feed");
            assert!(s.kafka_sink.is_some());
        } else {
            let err = loaded.unwrap_err().to_string();
            assert!(err.contains("--features kafka"), "{err}");
        }
        let err = load_toml("[[kafka]]\nbrokers = \"b:1\"\ntopics = [\"t\"]\nstart = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka[0].start"), "{err}");
    }

    #[test]
    fn limits_are_errors_not_silent_clamps() {
        let err = load_toml(
            "[[syslog]]\nudp = \"127.0.0.1:0\"\nmax_connections = 0\n\
             [[syslog]]\ntcp = \"127.0.0.1:0\"\nmax_message_bytes = 100\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("syslog[0].max_connections"), "{err}");
        assert!(err.contains("syslog[1].max_message_bytes"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = load_toml(
            r#"
listen = "nowhere"
database_url = "mysql://x"
[http]
max_body_bytes = 5
cors_origins = ["*"]
[[sources]]
format = "combined"
[[sources]]
path = "/var/log/x"
format = "bogus"
"#,
        )
        .unwrap_err()
        .to_string();
        for key in [
            "listen:",
            "database_url:",
            "http.max_body_bytes",
            "http.cors_origins",
            "sources[0].path",
            "sources[1].format",
        ] {
            assert!(err.contains(key), "missing {key} in {err}");
        }
    }

    #[test]
    fn the_flows_section_is_read_and_its_problems_named() {
        let s = load_toml("[flows]\nidle_timeout = \"30s\"\nmax_flows = 5000\n").unwrap();
        assert_eq!(s.flows.idle_timeout.as_secs(), 30);
        assert_eq!(s.flows.max_flows, 5000);
        let err = load_toml("[flows]\nmax_flows = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("flows.max_flows"), "{err}");
        let err = load_toml("[flows]\nidle = 1\n").unwrap_err().to_string();
        assert!(err.contains("flows") && err.contains("idle"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = load_toml("lisen = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        let err = load_toml("[http]\nmax_body = 5\n").unwrap_err().to_string();
        assert!(err.contains("http") && err.contains("max_body"), "{err}");
    }

    #[test]
    fn sources_from_file_and_flags() {
        let s = load_toml(
            r#"
[[sources]]
path = "/var/log/nginx/access.log"
name = "web"
format = "nginx"
log_format = '$remote_addr [$time_local] "$request" $status'
"#,
        )
        .unwrap();
        assert_eq!(s.sources.len(), 1);
        assert_eq!(s.sources[0].name, "web");
        assert!(matches!(s.sources[0].format, FormatSpec::Nginx(_)));
    }

    #[test]
    fn proxies_are_named_never_after_their_address_and_names_are_unique() {
        let s = load_toml(
            "[[proxy]]\nlisten = \"127.0.0.1:8001\"\nupstream = \"http://x:1\"\n\
             [[proxy]]\nname = \"shop\"\nlisten = \"127.0.0.1:8002\"\nupstream = \"http://x:2\"\n\
             [[proxy]]\nlisten = \"127.0.0.1:8003\"\nupstream = \"http://x:3\"\n",
        )
        .unwrap();
        let names: Vec<&str> = s.proxies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["proxy", "shop", "proxy-2"]);

        // --proxy-listen without and with --proxy-name.
        let flags = |name: Option<&str>| Overrides {
            config: Some(PathBuf::from("/dev/null")),
            proxy: Some(("127.0.0.1:8004".into(), "http://127.0.0.1:3000".into())),
            proxy_name: name.map(str::to_owned),
            ..Overrides::default()
        };
        let s = Settings::load_from(&flags(None), std::iter::empty()).unwrap();
        assert_eq!(s.proxies[0].name, "proxy");
        let s = Settings::load_from(&flags(Some("edge")), std::iter::empty()).unwrap();
        assert_eq!(s.proxies[0].name, "edge");

        let err = load_toml(
            "[[proxy]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\nupstream = \"http://x\"\n\
             [[proxy]]\nname = \"a\"\nlisten = \"127.0.0.1:2\"\nupstream = \"http://x\"\n\
             [[sources]]\npath = \"/var/log/x.log\"\nname = \"web\"\n\
             [[proxy]]\nname = \"web\"\nlisten = \"127.0.0.1:3\"\nupstream = \"http://x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("proxy[1].name: 'a'"), "{err}");
        assert!(err.contains("proxy[2].name: 'web'"), "{err}");
    }

    #[test]
    fn check_trusted_proxies_default_to_loopback_and_say_what_is_wrong() {
        let s = load_toml("").unwrap();
        let trusted = &s.check.trusted_proxies;
        assert!(
            trusted
                .iter()
                .any(|n| n.contains("127.0.0.1".parse().unwrap()))
        );
        assert!(trusted.iter().any(|n| n.contains("::1".parse().unwrap())));
        assert!(
            !trusted
                .iter()
                .any(|n| n.contains("10.0.0.1".parse().unwrap()))
        );
        let s = load_toml("[check]\ntrusted_proxies = [\"10.0.0.0/8\"]\n").unwrap();
        assert!(s.check.trusted_proxies[0].contains("10.9.9.9".parse().unwrap()));
        let err = load_toml("[check]\ntrusted_proxies = [\"10.0.0.0/33\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("check") && err.contains("10.0.0.0/33"),
            "{err}"
        );
        let s = load_toml_env(
            "",
            &[("PALISADE_CHECK__TRUSTED_PROXIES", "[\"192.0.2.1\"]")],
        )
        .unwrap();
        assert!(s.check.trusted_proxies[0].contains("192.0.2.1".parse().unwrap()));
    }
}
