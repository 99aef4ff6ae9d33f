//! The one normalised event schema.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::verdict::Action;

/// What produced an event, so that detectors can pick the events they understand
/// without guessing from which fields happen to be filled in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// One HTTP request from an access log, a push or a proxy.
    #[default]
    Http,
    /// One line of a web server's error log.
    ErrorLog,
    /// An authentication event (sshd, PAM, sudo).
    Auth,
    /// Any other syslog line.
    Syslog,
    /// A network flow record.
    Flow,
}

impl EventKind {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Http => "http",
            EventKind::ErrorLog => "error_log",
            EventKind::Auth => "auth",
            EventKind::Syslog => "syslog",
            EventKind::Flow => "flow",
        }
    }

    /// Reads the stable name back; `None` for a name this build does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "http" => EventKind::Http,
            "error_log" => EventKind::ErrorLog,
            "auth" => EventKind::Auth,
            "syslog" => EventKind::Syslog,
            "flow" => EventKind::Flow,
            _ => return None,
        })
    }
}

/// A normalised event: every source and format fills in what it knows and leaves the
/// rest empty, so that storage, search and detection work on one shape.
///
/// Fields a format knows but the schema has no column for go to `extra`, so nothing a
/// log line carried is thrown away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Event {
    /// When the event happened according to the log (not when Palisade read it).
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    /// What kind of event this is.
    pub kind: EventKind,
    /// The name of the source that delivered it (a tailed file, `push`, an import).
    pub source: String,
    /// The remote client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub client_ip: Option<IpAddr>,
    /// The virtual host or server name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// HTTP method as sent (not case-folded: odd methods are a signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The request path, still percent-encoded, without the query string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The raw query string without the leading `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The protocol of the request line, e.g. `HTTP/1.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The response status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Response size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The Referer header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referer: Option<String>,
    /// The User-Agent header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The authenticated (or attempted) user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How long the server took, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// Free text for events that are not requests (error logs, syslog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What a live front decided about the request as it happened (the protecting
    /// proxy: allow, detect, block or ban). Empty for events read from logs, which the
    /// ingest inspector judges after the fact; an event with a verdict was judged
    /// already and is not inspected again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Action>,
    /// Every other named field the format produced, in the order it produced them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<String>>)]
    pub extra: Vec<(String, String)>,
}

impl Event {
    /// The request target as a client sent it: path plus `?query` when there is one.
    pub fn uri(&self) -> Option<String> {
        let path = self.path.as_deref()?;
        Some(match self.query.as_deref() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        })
    }
}

/// An event as the store returns it: with its stable id and when Palisade received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredEvent {
    /// The store-assigned id, stable across restarts.
    pub id: i64,
    /// When Palisade stored the event.
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    /// The event itself.
    #[serde(flatten)]
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in [
            EventKind::Http,
            EventKind::ErrorLog,
            EventKind::Auth,
            EventKind::Syslog,
            EventKind::Flow,
        ] {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }

    #[test]
    fn uri_joins_path_and_query() {
        let mut e = Event {
            path: Some("/a".into()),
            ..Event::default()
        };
        assert_eq!(e.uri().as_deref(), Some("/a"));
        e.query = Some("x=1".into());
        assert_eq!(e.uri().as_deref(), Some("/a?x=1"));
    }
}
