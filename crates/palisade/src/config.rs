//! Configuration: defaults, then the TOML file, then `PALISADE_*` environment
//! variables, then flags (each overriding the one before), validated once at start into
//! [`Settings`] with messages that say what to fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palisade_api::ApiConfig;
use palisade_formats::{FormatSpec, JsonFieldMap};
use palisade_sources::WriterConfig;
use palisade_sources::tail::TailConfig;
use serde::Deserialize;

use crate::telemetry::LogFormat;

/// The default listen address: loopback only, so a fresh install exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./palisade-data";
/// The default database: SQLite inside the data directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://palisade.db";
/// The configuration file read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "palisade.toml";

/// The TOML file, exactly as written. Unknown keys are errors (a typo must not be
/// silently ignored in a security product).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to serve on.
    pub listen: Option<String>,
    /// Where Palisade keeps its files.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: Option<String>,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// HTTP limits.
    #[serde(default)]
    pub http: HttpSection,
    /// Ingest tuning.
    #[serde(default)]
    pub ingest: IngestSection,
    /// File sources.
    #[serde(default)]
    pub sources: Vec<SourceSection>,
    /// Authentication.
    #[serde(default)]
    pub auth: AuthSection,
    /// Rate limits.
    #[serde(default)]
    pub rate_limit: RateLimitSection,
    /// The decision endpoint's signature engine.
    #[serde(default)]
    pub detection: DetectionSection,
    /// `[[proxy]]`: protecting proxies.
    #[serde(default, rename = "proxy")]
    pub proxies: Vec<ProxySection>,
    /// `[scenarios]`: behaviour detection.
    #[serde(default)]
    pub scenarios: ScenariosSection,
    /// `[[syslog]]`: syslog listeners.
    #[serde(default)]
    pub syslog: Vec<SyslogSection>,
    /// IP decisions (bans, allow-list entries).
    #[serde(default)]
    pub decisions: DecisionsSection,
}

/// `[scenarios]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenariosSection {
    /// Extra scenario files (`*.toml`) on top of the built-in ones.
    pub dir: Option<PathBuf>,
    /// Most behaviour buckets held in memory (least recently used evicted; default 1,000,000).
    pub max_buckets: Option<usize>,
}

/// `[[syslog]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSection {
    /// Source name (default "syslog").
    pub name: Option<String>,
    /// UDP address, e.g. "0.0.0.0:514".
    pub udp: Option<String>,
    /// TCP address (octet counting or newline framing).
    pub tcp: Option<String>,
    /// Longest message kept (default 65536; longer ones become dead letters).
    pub max_message_bytes: Option<usize>,
    /// TCP connections served at once (default 256).
    pub max_connections: Option<usize>,
    /// Year for RFC 3164 timestamps, which carry none (default: the current year).
    pub year: Option<i32>,
}

/// `[[proxy]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Name in logs, metrics and threats (default: the listen address).
    pub name: Option<String>,
    /// Where clients connect, e.g. "0.0.0.0:80".
    pub listen: String,
    /// The protected application, e.g. "http://127.0.0.1:3000".
    pub upstream: String,
    /// Largest body held for inspection (default 1 MiB).
    pub max_body_bytes: Option<usize>,
    /// "reject" (413, default) or "inspect_prefix" beyond max_body_bytes.
    pub oversize: Option<String>,
    /// Seconds to connect to the upstream (default 5).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds to wait for the upstream's response headers (default 60).
    pub response_timeout_secs: Option<u64>,
    /// Seconds a client has to send its request (default 30).
    pub client_timeout_secs: Option<u64>,
    /// Client connections served at once (default 4096).
    pub max_connections: Option<usize>,
    /// Pass the client's Host header on (default true).
    pub preserve_host: Option<bool>,
    /// CIDRs of front proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Option<Vec<String>>,
}

/// `[decisions]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionsSection {
    /// Seconds between reloads of the enforcement set from the store (1..=3600,
    /// default 5): how soon a decision written by another instance is enforced here.
    pub resync_secs: Option<u64>,
    /// Seconds between runs of the job marking expired decisions (1..=86400, default
    /// 30); lookups ignore an expired decision at once either way.
    pub expire_secs: Option<u64>,
}

/// `[detection]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionSection {
    /// `block` (403 over the threshold) or `detect` (report only).
    pub mode: Option<String>,
    /// 1 to 4: higher catches more and flags more.
    pub paranoia: Option<u8>,
    /// Anomaly score at which a request is blocked (default 5).
    pub threshold: Option<u32>,
    /// A directory of extra rule files (`*.toml`), loaded on top of the built-in rules
    /// and reloaded when they change.
    pub rules_dir: Option<PathBuf>,
    /// Seconds between checks of `rules_dir` for changes (default 2; 0 disables).
    pub reload_secs: Option<u64>,
}

/// `[auth]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Access token lifetime in seconds (60..=86400).
    pub access_ttl_secs: Option<i64>,
    /// Refresh token lifetime in seconds (300..=90 days).
    pub refresh_ttl_secs: Option<i64>,
    /// Serve `/metrics` without credentials.
    pub metrics_public: Option<bool>,
    /// JWT signing key file (relative to the data dir).
    pub jwt_key_file: Option<PathBuf>,
    /// Secrets keyring file (relative to the data dir).
    pub secrets_key_file: Option<PathBuf>,
}

/// `[rate_limit]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Login and refresh attempts per minute per client.
    pub login_per_minute: Option<u32>,
    /// Ingest requests per second per client.
    pub ingest_per_second: Option<u32>,
    /// Reads per second per client.
    pub read_per_second: Option<u32>,
    /// Changes per second per client.
    pub write_per_second: Option<u32>,
}

/// A value that must never reach a log or a `Debug` dump.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Authentication settings, validated.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Lifetimes, metrics access, rate limits.
    pub config: palisade_api::auth::AuthConfig,
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

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// Filter directive, e.g. `info` or `palisade_sources=debug,info`.
    pub level: Option<String>,
    /// `auto`, `json` or `text`.
    pub format: Option<LogFormat>,
}

/// `[http]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Largest request body in bytes.
    pub max_body_bytes: Option<usize>,
    /// Request timeout in seconds.
    pub request_timeout_secs: Option<u64>,
    /// Browser origins allowed to call the API.
    pub cors_origins: Option<Vec<String>>,
}

/// `[ingest]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Lines per batch written to the store.
    pub batch_size: Option<usize>,
    /// Batches that may wait for the store before sources are slowed down.
    pub queue_batches: Option<usize>,
}

/// One `[[sources]]` block.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// Only `file` for now.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The file to follow.
    pub path: Option<PathBuf>,
    /// Source name (default: the path).
    pub name: Option<String>,
    /// auto, combined, common, json, apache_error, nginx, apache.
    pub format: Option<String>,
    /// The server's `log_format` / `LogFormat` string, with format nginx or apache.
    pub log_format: Option<String>,
    /// JSON key mapping, with format json.
    pub json_fields: Option<JsonFieldMap>,
}

/// What the command line and environment say (flags win over variables; clap reads
/// both).
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
    /// HTTP limits.
    pub api: ApiConfig,
    /// Writer queue and retry.
    pub writer: WriterConfig,
    /// Lines per batch.
    pub batch_size: usize,
    /// File sources to follow.
    pub sources: Vec<TailConfig>,
    /// Where the settings came from, for `config check`.
    pub config_file: Option<PathBuf>,
    /// Authentication.
    pub auth: AuthSettings,
    /// The decision endpoint.
    pub detection: palisade_pipeline::detection::DetectionConfig,
    /// Protecting proxies.
    pub proxies: Vec<palisade_proxy::ProxyConfig>,
    /// Behaviour scenarios.
    pub scenarios: palisade_pipeline::stages::behaviour::BehaviourConfig,
    /// Syslog listeners.
    pub syslog: Vec<palisade_sources::syslog::SyslogConfig>,
    /// IP decisions: reload and expiry intervals.
    pub decisions: palisade_pipeline::decisions::SyncConfig,
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

/// Turns a format name and an optional `log_format` string into a spec, with errors
/// that name the keys to change.
pub fn format_spec(
    name: Option<&str>,
    log_format: Option<&str>,
    json_fields: Option<JsonFieldMap>,
) -> Result<FormatSpec, String> {
    match (name.map(str::trim), log_format) {
        (Some("nginx"), Some(f)) => Ok(FormatSpec::Nginx(f.to_owned())),
        (Some("apache"), Some(f)) => Ok(FormatSpec::Apache(f.to_owned())),
        (Some("nginx" | "apache"), None) => {
            Err("format nginx/apache needs the server's log format string (log_format)".into())
        }
        (None, Some(f)) if f.contains('$') => Ok(FormatSpec::Nginx(f.to_owned())),
        (None, Some(f)) if f.contains('%') => Ok(FormatSpec::Apache(f.to_owned())),
        (None, Some(_)) => {
            Err("log_format has neither $variables (nginx) nor %directives (Apache)".into())
        }
        (Some(_), Some(_)) => {
            Err("log_format is only used with format = \"nginx\" or \"apache\"".into())
        }
        (Some("json"), None) => Ok(FormatSpec::Json(json_fields.unwrap_or_default())),
        (Some(n), None) => FormatSpec::from_name(n).map_err(|e| e.to_string()),
        (None, None) => Ok(FormatSpec::Auto),
    }
}

/// Validates one `[[proxy]]` block; the error starts with the key to fix.
fn proxy_config(p: &ProxySection) -> Result<palisade_proxy::ProxyConfig, String> {
    let listen: SocketAddr = p
        .listen
        .parse()
        .map_err(|_| format!("listen: '{}' is not an address like 0.0.0.0:80", p.listen))?;
    let upstream =
        palisade_proxy::Upstream::parse(&p.upstream).map_err(|e| format!("upstream: {e}"))?;
    let mut c = palisade_proxy::ProxyConfig::new(listen, upstream);
    if let Some(name) = &p.name {
        c.name = name.clone();
    }
    if let Some(n) = p.max_body_bytes {
        if n == 0 {
            return Err("max_body_bytes: must be at least 1".into());
        }
        c.max_body_bytes = n;
    }
    if let Some(o) = &p.oversize {
        c.oversize = palisade_proxy::OversizePolicy::parse(o)
            .ok_or_else(|| format!("oversize: '{o}' must be reject or inspect_prefix"))?;
    }
    let secs = |key: &str, v: Option<u64>, default: Duration| match v {
        Some(0) => Err(format!("{key}: must be at least 1")),
        Some(s) => Ok(Duration::from_secs(s)),
        None => Ok(default),
    };
    c.connect_timeout = secs(
        "connect_timeout_secs",
        p.connect_timeout_secs,
        c.connect_timeout,
    )?;
    c.response_timeout = secs(
        "response_timeout_secs",
        p.response_timeout_secs,
        c.response_timeout,
    )?;
    c.client_timeout = secs(
        "client_timeout_secs",
        p.client_timeout_secs,
        c.client_timeout,
    )?;
    if let Some(n) = p.max_connections {
        if n == 0 {
            return Err("max_connections: must be at least 1".into());
        }
        c.max_connections = n;
    }
    if let Some(b) = p.preserve_host {
        c.preserve_host = b;
    }
    for t in p.trusted_proxies.iter().flatten() {
        c.trusted_proxies.push(
            t.parse()
                .map_err(|_| format!("trusted_proxies: '{t}' is not an IP or CIDR"))?,
        );
    }
    Ok(c)
}

/// Reads the TOML file: the one given, else `palisade.toml` when it exists.
fn read_file(path: Option<&Path>) -> Result<(FileConfig, Option<PathBuf>), String> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str::<FileConfig>(&text)
            .map(|c| (c, Some(path.clone())))
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            Ok((FileConfig::default(), None))
        }
        Err(e) => Err(format!(
            "{}: cannot read the configuration file: {e}",
            path.display()
        )),
    }
}

impl Settings {
    /// Loads and validates everything, collecting every problem rather than stopping at
    /// the first.
    pub fn load(o: &Overrides) -> Result<Settings, ConfigErrors> {
        let mut errors = Vec::new();
        let (mut file, config_file) = match read_file(o.config.as_deref()) {
            Ok(v) => v,
            Err(e) => return Err(ConfigErrors(vec![e])),
        };

        let listen_text = o
            .listen
            .clone()
            .or(file.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(format!(
                "listen: '{listen_text}' is not an address with a port, e.g. 127.0.0.1:8080 or [::]:8080 (set by --listen, PALISADE_LISTEN or `listen` in the file)"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });

        let data_dir = o
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            errors.push("data_dir: must not be empty (set --data-dir or PALISADE_DATA_DIR)".into());
        }

        let database_url = o
            .database_url
            .clone()
            .or(file.database_url.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let scheme_ok = ["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|s| database_url.starts_with(s));
        if !scheme_ok {
            errors.push(format!(
                "database_url: '{}' must start with sqlite:// (e.g. sqlite://palisade.db, inside the data dir) or postgres:// (e.g. postgres://user@127.0.0.1:5432/palisade)",
                palisade_store::redact_url(&database_url)
            ));
        }

        let mut api = ApiConfig::default();
        if let Some(n) = file.http.max_body_bytes {
            if !(1024..=1024 * 1024 * 1024).contains(&n) {
                errors.push("http.max_body_bytes: must be between 1024 and 1073741824".into());
            } else {
                api.max_body_bytes = n;
            }
        }
        if let Some(s) = file.http.request_timeout_secs {
            if s == 0 || s > 3600 {
                errors.push("http.request_timeout_secs: must be between 1 and 3600".into());
            } else {
                api.request_timeout = Duration::from_secs(s);
            }
        }
        for origin in file.http.cors_origins.clone().unwrap_or_default() {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && !origin.contains('*');
            if ok {
                api.cors_origins.push(origin);
            } else {
                errors.push(format!(
                    "http.cors_origins: '{origin}' must be an exact origin like https://soc.example.com (scheme, host, optional port; no path, no wildcard)"
                ));
            }
        }

        let mut writer = WriterConfig::default();
        if let Some(q) = file.ingest.queue_batches {
            if q == 0 || q > 1024 {
                errors.push("ingest.queue_batches: must be between 1 and 1024".into());
            } else {
                writer.queue_batches = q;
            }
        }
        let batch_size = match file.ingest.batch_size {
            Some(b) if b == 0 || b > 100_000 => {
                errors.push("ingest.batch_size: must be between 1 and 100000".into());
                2000
            }
            Some(b) => b,
            None => 2000,
        };

        let mut sources = Vec::new();
        for (i, s) in file.sources.into_iter().enumerate() {
            let at = format!("sources[{i}]");
            if let Some(kind) = s.kind.as_deref().filter(|k| *k != "file") {
                errors.push(format!(
                    "{at}.type: '{kind}' is not supported here; use \"file\""
                ));
                continue;
            }
            let Some(path) = s.path else {
                errors.push(format!("{at}.path: missing; give the log file to follow"));
                continue;
            };
            match format_spec(s.format.as_deref(), s.log_format.as_deref(), s.json_fields) {
                Ok(format) => {
                    let mut t = TailConfig::new(path);
                    if let Some(name) = s.name {
                        t.name = name;
                    }
                    t.format = format;
                    t.batch_size = batch_size;
                    sources.push(t);
                }
                Err(e) => errors.push(format!("{at}.format: {e}")),
            }
        }
        if !o.tail.is_empty() {
            match format_spec(o.tail_format.as_deref(), o.tail_log_format.as_deref(), None) {
                Ok(format) => {
                    for path in &o.tail {
                        let mut t = TailConfig::new(path.clone());
                        t.format = format.clone();
                        t.batch_size = batch_size;
                        sources.push(t);
                    }
                }
                Err(e) => errors.push(format!("--format: {e}")),
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

        let log_level = o
            .log_level
            .clone()
            .or(file.log.level)
            .unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            errors.push(format!(
                "log.level: '{log_level}' is not a filter like info or palisade=debug,info"
            ));
        }
        let log_format = o.log_format.or(file.log.format).unwrap_or(LogFormat::Auto);

        let mut auth_config = palisade_api::auth::AuthConfig::default();
        match file.auth.access_ttl_secs {
            Some(t) if !(60..=86_400).contains(&t) => {
                errors.push("auth.access_ttl_secs: must be between 60 and 86400".into())
            }
            Some(t) => auth_config.access_ttl_secs = t,
            None => {}
        }
        match file.auth.refresh_ttl_secs {
            Some(t) if !(300..=90 * 86_400).contains(&t) => {
                errors.push("auth.refresh_ttl_secs: must be between 300 and 7776000".into())
            }
            Some(t) => auth_config.refresh_ttl_secs = t,
            None => {}
        }
        if let Some(m) = file.auth.metrics_public {
            auth_config.metrics_public = m;
        }
        let limits = &mut auth_config.limits;
        for (key, value, slot) in [
            (
                "rate_limit.login_per_minute",
                file.rate_limit.login_per_minute,
                &mut limits.login_per_minute,
            ),
            (
                "rate_limit.ingest_per_second",
                file.rate_limit.ingest_per_second,
                &mut limits.ingest_per_second,
            ),
            (
                "rate_limit.read_per_second",
                file.rate_limit.read_per_second,
                &mut limits.read_per_second,
            ),
            (
                "rate_limit.write_per_second",
                file.rate_limit.write_per_second,
                &mut limits.write_per_second,
            ),
        ] {
            match value {
                Some(0) => errors.push(format!("{key}: must be at least 1")),
                Some(v) => *slot = v,
                None => {}
            }
        }
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Redacted)
        };
        let auth = AuthSettings {
            config: auth_config,
            jwt_key_file: data_dir.join(
                file.auth
                    .jwt_key_file
                    .unwrap_or_else(|| PathBuf::from("jwt.key")),
            ),
            secrets_key_file: data_dir.join(
                file.auth
                    .secrets_key_file
                    .unwrap_or_else(|| PathBuf::from("secrets.key")),
            ),
            jwt_key: env("PALISADE_JWT_KEY"),
            secrets_key: env("PALISADE_SECRETS_KEY"),
            admin_password: env("PALISADE_ADMIN_PASSWORD"),
        };
        if let Some(k) = &auth.secrets_key
            && palisade_auth::secrets::parse_key(&k.0).is_err()
        {
            errors.push(
                "PALISADE_SECRETS_KEY: must be 64 hex characters or the base64 of 32 bytes".into(),
            );
        }

        let mode = match file.detection.mode.as_deref() {
            None => palisade_pipeline::detection::Mode::Block,
            Some(m) => palisade_pipeline::detection::Mode::parse(m).unwrap_or_else(|| {
                errors.push(format!("detection.mode: '{m}' must be block or detect"));
                palisade_pipeline::detection::Mode::Block
            }),
        };
        let paranoia = file.detection.paranoia.unwrap_or(1);
        if !(1..=4).contains(&paranoia) {
            errors.push("detection.paranoia: must be 1, 2, 3 or 4".into());
        }
        let threshold = file.detection.threshold.unwrap_or(5);
        if threshold == 0 {
            errors.push("detection.threshold: must be at least 1".into());
        }
        let rules_dir = file.detection.rules_dir.clone();
        if let Some(dir) = &rules_dir
            && let Err(error) = palisade_detect::RuleSet::load(Some(dir))
        {
            errors.push(format!("detection.rules_dir: {error}"));
        }
        let detection = palisade_pipeline::detection::DetectionConfig {
            mode,
            engine: palisade_detect::EngineConfig {
                paranoia,
                threshold,
            },
            reload_every: match file.detection.reload_secs.unwrap_or(2) {
                0 => None,
                s => rules_dir.as_ref().map(|_| Duration::from_secs(s)),
            },
            rules_dir,
        };

        let mut proxy_sections: Vec<ProxySection> = std::mem::take(&mut file.proxies);
        if let Some((listen, upstream)) = &o.proxy {
            proxy_sections.push(ProxySection {
                listen: listen.clone(),
                upstream: upstream.clone(),
                ..ProxySection::default()
            });
        }
        let proxies: Vec<palisade_proxy::ProxyConfig> = proxy_sections
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match proxy_config(p) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(format!("proxy[{i}].{e}"));
                    None
                }
            })
            .collect();

        let scenarios = palisade_pipeline::stages::behaviour::BehaviourConfig {
            dir: file.scenarios.dir.clone(),
            max_buckets: file.scenarios.max_buckets,
        };
        if let Err(error) = palisade_scenarios::ScenarioSet::load(scenarios.dir.as_deref()) {
            errors.push(format!("scenarios.dir: {error}"));
        }
        if scenarios.max_buckets == Some(0) {
            errors.push("scenarios.max_buckets: must be at least 1".into());
        }
        let mut syslog = Vec::new();
        for (i, section) in file.syslog.iter().enumerate() {
            let mut c = palisade_sources::syslog::SyslogConfig::new(
                section.name.clone().unwrap_or_else(|| "syslog".into()),
            );
            let addr = |key: &str, v: &Option<String>, errors: &mut Vec<String>| {
                v.as_deref().and_then(|a| match a.parse::<SocketAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        errors.push(format!(
                            "syslog[{i}].{key}: '{a}' is not an address like 0.0.0.0:514"
                        ));
                        None
                    }
                })
            };
            c.udp = addr("udp", &section.udp, &mut errors);
            c.tcp = addr("tcp", &section.tcp, &mut errors);
            if section.udp.is_none() && section.tcp.is_none() {
                errors.push(format!("syslog[{i}]: set udp, tcp or both"));
            }
            if let Some(n) = section.max_message_bytes {
                c.max_message_bytes = n.max(480);
            }
            if let Some(n) = section.max_connections {
                c.max_connections = n.max(1);
            }
            c.year = section.year;
            c.batch_size = batch_size;
            syslog.push(c);
        }
        let mut decisions = palisade_pipeline::decisions::SyncConfig::default();
        match file.decisions.resync_secs {
            Some(n) if !(1..=3600).contains(&n) => {
                errors.push("decisions.resync_secs: must be between 1 and 3600".into())
            }
            Some(n) => decisions.resync = Duration::from_secs(n),
            None => {}
        }
        match file.decisions.expire_secs {
            Some(n) if !(1..=86_400).contains(&n) => {
                errors.push("decisions.expire_secs: must be between 1 and 86400".into())
            }
            Some(n) => decisions.expire = Duration::from_secs(n),
            None => {}
        }

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Settings {
            detection,
            proxies,
            scenarios,
            syslog,
            decisions,
            listen,
            data_dir,
            database_url,
            log_level,
            log_format,
            api,
            writer,
            batch_size,
            sources,
            config_file,
            auth,
        })
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
            "http:           body limit {} bytes, timeout {}s, CORS origins {:?}\n",
            self.api.max_body_bytes,
            self.api.request_timeout.as_secs(),
            self.api.cors_origins
        ));
        out.push_str(&format!(
            "ingest:         batch {} lines, queue {} batches\n",
            self.batch_size, self.writer.queue_batches
        ));
        out.push_str(&format!(
            "auth:           access {}s, refresh {}s, metrics {}, keys in {} and {}\n",
            self.auth.config.access_ttl_secs,
            self.auth.config.refresh_ttl_secs,
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_toml(text: &str) -> Result<Settings, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load(&Overrides {
            config: Some(path),
            ..Overrides::default()
        })
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
        let s = Settings::load(&Overrides {
            config: None,
            ..Overrides::default()
        });
        // A palisade.toml in the test's working directory would change this; there is none.
        let s = s.unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\n").unwrap();
        let s = Settings::load(&Overrides {
            config: Some(path),
            listen: Some("127.0.0.1:9100".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(s.listen.port(), 9100);
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
    fn unknown_keys_are_rejected() {
        let err = load_toml("lisen = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
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
}
