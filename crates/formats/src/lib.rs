//! Log line formats: each one is compiled once into a [`LineParser`] and then applied to
//! millions of lines, turning raw bytes into the one normalised [`Event`].
//!
//! * `combined` / `common` and any nginx `log_format` or Apache `LogFormat` string compile
//!   into the same list of literal/field steps ([`compiled`]), matched by hand at byte
//!   level: no regex and no allocation for fields that are not kept.
//! * JSON access logs map keys to event fields with a [`JsonFieldMap`].
//! * Apache error logs (2.2 and 2.4 forms) have their own small parser.
//! * Syslog (RFC 3164 files and packets, RFC 5424) has its own parser ([`syslog`]),
//!   with an authentication layer ([`authlog`]) that turns sshd, PAM, sudo, su and login
//!   messages into `auth` events with the client address, user and outcome.
//! * [`sniff`] guesses a format from the first lines of a source.
//!
//! Parsers never panic on any input: a line that does not fit becomes a [`ParseError`]
//! whose reason says which field failed and at which byte, so that it can be kept as a
//! dead letter a user can act on.

#![warn(missing_docs)]

use std::sync::Arc;

use palisade_core::Event;
use serde::{Deserialize, Serialize};

pub mod apache;
pub mod apache_error;
pub mod authlog;
mod compiled;
pub mod json;
pub mod nginx;
mod request_line;
pub mod sniff;
pub mod syslog;
mod text;

pub use json::JsonFieldMap;
pub use sniff::sniff;
pub use syslog::{SyslogOptions, SyslogParser};

/// One line format, compiled once, applied to millions of lines.
///
/// Implementations are immutable after construction so that one parser can be shared
/// (behind an `Arc`) by every reader thread.
pub trait LineParser: Send + Sync {
    /// Short name for logs and metrics, e.g. "combined", "nginx:<fmt>".
    fn name(&self) -> &str;
    /// Parses one line WITHOUT its trailing "\n" / "\r\n" into an Event. `source` is left
    /// empty (the caller fills it). Never panics on any input.
    fn parse(&self, line: &[u8]) -> Result<Event, ParseError>;
}

/// Why one line was rejected. The reason names the field and the byte offset, e.g.
/// `status: expected 3 digits at byte 57`, because it ends up in a dead letter that a
/// user reads to fix their format configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// What was wrong and where.
    pub reason: String,
}

impl ParseError {
    /// Builds an error from any message.
    pub fn new(reason: impl Into<String>) -> Self {
        ParseError {
            reason: reason.into(),
        }
    }

    /// Builds the usual `field: what at byte N` message.
    pub(crate) fn at(field: &str, what: &str, pos: usize) -> Self {
        ParseError {
            reason: format!("{field}: {what} at byte {pos}"),
        }
    }
}

/// A format name or format string that cannot be used. Raised at configuration time,
/// never per line, and worded so that the user knows how to fix the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format name is not one this build knows.
    #[error(
        "unknown log format '{0}': valid names are auto, combined, common, apache_error, json, \
         syslog, auth (or nginx:<log_format string>, apache:<LogFormat string>, \
         syslog:<year> for syslog files from a past year)"
    )]
    UnknownName(String),
    /// `auto` was passed to [`build`] without being resolved by [`sniff`].
    #[error(
        "log format 'auto' cannot be built directly: run sniff() on the first lines of the \
         source and build the format it returns, or configure an explicit format"
    )]
    AutoNotResolved,
    /// An nginx `log_format` string that cannot be compiled.
    #[error("bad nginx log_format at byte {pos}: {reason} (format: {format:?})")]
    BadNginxFormat {
        /// The format string as given.
        format: String,
        /// Byte offset of the problem within the format string.
        pos: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An Apache `LogFormat` string that cannot be compiled.
    #[error("bad Apache LogFormat at byte {pos}: {reason} (format: {format:?})")]
    BadApacheFormat {
        /// The format string as given.
        format: String,
        /// Byte offset of the problem within the format string.
        pos: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Which format a source uses, as configured by a user or found by [`sniff`].
/// Serialisable so that it can live in configuration and in a source's stored state.
///
/// `Json` is not boxed although the field map is large: a spec is built once per
/// source, and callers construct `FormatSpec::Json(JsonFieldMap::default())` directly.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatSpec {
    /// Not decided yet: must be resolved with [`sniff`] before [`build`].
    Auto,
    /// nginx/Apache `combined`.
    Combined,
    /// Common Log Format (`combined` without referer and user agent).
    Common,
    /// Apache error log, 2.2 or 2.4 style.
    ApacheError,
    /// One JSON object per line.
    Json(JsonFieldMap),
    /// An nginx `log_format` string.
    Nginx(String),
    /// An Apache `LogFormat` string.
    Apache(String),
    /// Syslog lines (RFC 3164 with or without `<PRI>`, RFC 5424), sshd/PAM/sudo/su
    /// messages recognised as authentication events. `auth` is the same format: an
    /// `auth.log` is syslog, and a syslog stream carries authentication messages.
    Syslog(SyslogOptions),
}

impl FormatSpec {
    /// From a user-facing name: "auto", "combined", "common", "apache_error", "json"
    /// (default field map), "syslog" or its alias "auth" (year of BSD timestamps from
    /// the clock). Also accepts `nginx:<log_format>`, `apache:<LogFormat>` and
    /// `syslog:<year>` (for importing a file from a past year). Error lists the valid
    /// names.
    pub fn from_name(name: &str) -> Result<FormatSpec, FormatError> {
        if let Some(fmt) = name.strip_prefix("nginx:") {
            return Ok(FormatSpec::Nginx(fmt.to_owned()));
        }
        if let Some(fmt) = name.strip_prefix("apache:") {
            return Ok(FormatSpec::Apache(fmt.to_owned()));
        }
        if let Some(year) = name
            .strip_prefix("syslog:")
            .or_else(|| name.strip_prefix("auth:"))
        {
            return match year.trim().parse::<i32>() {
                Ok(y) if (1970..=9999).contains(&y) => {
                    Ok(FormatSpec::Syslog(SyslogOptions { year: Some(y) }))
                }
                _ => Err(FormatError::UnknownName(name.to_owned())),
            };
        }
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "auto" => FormatSpec::Auto,
            "combined" => FormatSpec::Combined,
            "common" | "clf" => FormatSpec::Common,
            "apache_error" => FormatSpec::ApacheError,
            "json" => FormatSpec::Json(JsonFieldMap::default()),
            "syslog" | "auth" => FormatSpec::Syslog(SyslogOptions::default()),
            _ => return Err(FormatError::UnknownName(name.to_owned())),
        })
    }
}

impl FormatSpec {
    /// From the keys a configuration (or the command line) gives: a format name, the
    /// server's own `log_format` / `LogFormat` string, and a JSON field map. The error
    /// names the key to change.
    pub fn from_parts(
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
}

/// Compiles a format into a shareable parser. Format strings are checked here, once,
/// so that a bad configuration fails at start-up rather than on every line.
/// `Auto` is an error: resolve it with [`sniff`] first.
pub fn build(spec: &FormatSpec) -> Result<Arc<dyn LineParser>, FormatError> {
    Ok(match spec {
        FormatSpec::Auto => return Err(FormatError::AutoNotResolved),
        FormatSpec::Combined => Arc::new(nginx::combined()?),
        FormatSpec::Common => Arc::new(nginx::common()?),
        FormatSpec::ApacheError => Arc::new(apache_error::ApacheErrorParser),
        FormatSpec::Json(map) => Arc::new(json::JsonParser::new(map.clone())),
        FormatSpec::Nginx(fmt) => Arc::new(nginx::compile(fmt)?),
        FormatSpec::Apache(fmt) => Arc::new(apache::compile(fmt)?),
        FormatSpec::Syslog(options) => Arc::new(SyslogParser::new(*options)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        assert_eq!(FormatSpec::from_name("auto").unwrap(), FormatSpec::Auto);
        assert_eq!(
            FormatSpec::from_name("combined").unwrap(),
            FormatSpec::Combined
        );
        assert_eq!(FormatSpec::from_name("common").unwrap(), FormatSpec::Common);
        assert_eq!(
            FormatSpec::from_name("apache_error").unwrap(),
            FormatSpec::ApacheError
        );
        assert_eq!(
            FormatSpec::from_name("json").unwrap(),
            FormatSpec::Json(JsonFieldMap::default())
        );
        assert_eq!(
            FormatSpec::from_name("nginx:$remote_addr $status").unwrap(),
            FormatSpec::Nginx("$remote_addr $status".into())
        );
        assert_eq!(
            FormatSpec::from_name("syslog").unwrap(),
            FormatSpec::Syslog(SyslogOptions::default())
        );
        assert_eq!(
            FormatSpec::from_name("AUTH").unwrap(),
            FormatSpec::Syslog(SyslogOptions::default())
        );
        assert_eq!(
            FormatSpec::from_name("syslog:2017").unwrap(),
            FormatSpec::Syslog(SyslogOptions { year: Some(2017) })
        );
        assert!(FormatSpec::from_name("syslog:17x").is_err());
        assert!(FormatSpec::from_name("syslog:99999").is_err());
        let err = FormatSpec::from_name("combinde").unwrap_err().to_string();
        assert!(
            err.contains("combinde") && err.contains("apache_error") && err.contains("syslog"),
            "{err}"
        );
    }

    #[test]
    fn build_rejects_auto_and_builds_the_rest() {
        assert!(matches!(
            build(&FormatSpec::Auto),
            Err(FormatError::AutoNotResolved)
        ));
        for spec in [
            FormatSpec::Combined,
            FormatSpec::Common,
            FormatSpec::ApacheError,
            FormatSpec::Json(JsonFieldMap::default()),
            FormatSpec::Nginx("$remote_addr [$time_local] $status".into()),
            FormatSpec::Apache("%h %t %>s".into()),
            FormatSpec::Syslog(SyslogOptions::default()),
        ] {
            let p = build(&spec).unwrap();
            assert!(!p.name().is_empty());
        }
        assert!(build(&FormatSpec::Nginx("${oops".into())).is_err());
    }

    #[test]
    fn spec_serde_round_trip() {
        for spec in [
            FormatSpec::Combined,
            FormatSpec::Nginx("$a $b".into()),
            FormatSpec::Json(JsonFieldMap::default()),
            FormatSpec::Syslog(SyslogOptions { year: Some(2005) }),
            FormatSpec::Syslog(SyslogOptions::default()),
        ] {
            let s = serde_json::to_string(&spec).unwrap();
            let back: FormatSpec = serde_json::from_str(&s).unwrap();
            assert_eq!(back, spec);
        }
    }
}
