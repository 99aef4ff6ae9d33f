//! Query types shared by the API and the backends.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_core::net::IpNet;
use palisade_core::{EventKind, Timestamp};
use serde::Serialize;

/// The largest page a list endpoint returns.
pub const MAX_LIMIT: u32 = 1000;

/// A page of results plus the opaque cursor for the next one (`None` on the last page).
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The results, newest first.
    pub items: Vec<T>,
    /// Pass back as `cursor` to get the next page; `null` when there is none.
    pub next_cursor: Option<String>,
}

/// A position in a newest-first listing: the `(ts, id)` of the last item returned.
/// Keyset pagination, so that deep pages cost the same as the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Timestamp (µs) of the last item returned.
    pub ts: i64,
    /// Id of the last item returned.
    pub id: i64,
}

impl Cursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.ts, self.id))
    }

    /// Reads a cursor a client handed back; `None` when it was not made by `encode`.
    pub fn decode(s: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()?;
        let text = std::str::from_utf8(&raw).ok()?;
        let (ts, id) = text.split_once(':')?;
        Some(Cursor {
            ts: ts.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// A status filter: one exact code (`404`) or a class (`4xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Exactly this code.
    Exact(u16),
    /// Any code in `class*100 ..= class*100+99`.
    Class(u8),
}

impl StatusFilter {
    /// Parses `404` or `4xx`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() == 3 && (1..=5).contains(&(b[0].wrapping_sub(b'0'))) {
            if b[1..].eq_ignore_ascii_case(b"xx") {
                return Some(StatusFilter::Class(b[0] - b'0'));
            }
            if let Ok(code) = s.parse::<u16>() {
                return Some(StatusFilter::Exact(code));
            }
        }
        None
    }

    /// The inclusive range of codes the filter matches.
    pub fn range(&self) -> (u16, u16) {
        match *self {
            StatusFilter::Exact(c) => (c, c),
            StatusFilter::Class(k) => (u16::from(k) * 100, u16::from(k) * 100 + 99),
        }
    }
}

/// Filters for listing events. Every field is optional and they combine with AND.
/// Built (and validated) by the API; backends translate it into one indexed query.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Inclusive lower bound on the event time.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound on the event time.
    pub to: Option<Timestamp>,
    /// The client address falls in this network.
    pub client: Option<IpNet>,
    /// Exact method (case-sensitive, as logged).
    pub method: Option<String>,
    /// Status code or class.
    pub status: Option<StatusFilter>,
    /// The path starts with this prefix (case-sensitive, as logged).
    pub path_prefix: Option<String>,
    /// Exact host.
    pub host: Option<String>,
    /// Exact source name.
    pub source: Option<String>,
    /// Event kind.
    pub kind: Option<EventKind>,
    /// Case-insensitive substring searched in path, query, user agent, referer,
    /// message and user.
    pub text: Option<String>,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Page size, 1..=[`MAX_LIMIT`].
    pub limit: u32,
}

/// Filters for listing dead letters.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterQuery {
    /// Inclusive lower bound on when the line was rejected.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound on when the line was rejected.
    pub to: Option<Timestamp>,
    /// Exact source name.
    pub source: Option<String>,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Page size, 1..=[`MAX_LIMIT`].
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_rejects_junk() {
        let c = Cursor { ts: -5, id: 42 };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("!!!"), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("1:x")), None);
    }

    #[test]
    fn status_filters() {
        assert_eq!(StatusFilter::parse("404"), Some(StatusFilter::Exact(404)));
        assert_eq!(StatusFilter::parse("5XX"), Some(StatusFilter::Class(5)));
        assert_eq!(StatusFilter::Class(4).range(), (400, 499));
        for bad in ["", "4x", "600", "abc", "0xx", "99"] {
            assert_eq!(StatusFilter::parse(bad), None, "{bad}");
        }
    }
}
