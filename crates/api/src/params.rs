//! Query-string parsing for list endpoints: every parameter is checked here, and a bad
//! one is answered with a problem that names it, never with a 500 or a silent default.

use palisade_core::net::IpNet;
use palisade_core::{EventKind, Timestamp};
use palisade_store::{Cursor, DeadLetterQuery, EventQuery, MAX_LIMIT, StatusFilter};

use crate::problem::Problem;

/// A resource id from the path: a positive integer, else a problem naming `id`. The
/// one parser every `/{id}` route uses.
pub fn path_id(raw: &str) -> Result<i64, Problem> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Problem::invalid("id", "must be a positive integer"))
}

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;

/// Longest accepted free-text search.
pub const MAX_TEXT: usize = 256;

/// The parameters `GET /api/v1/events` accepts; kept in one list so that the parser and
/// the OpenAPI document agree (a test checks it).
pub const EVENT_PARAMS: &[&str] = &[
    "from",
    "to",
    "range",
    "client_ip",
    "method",
    "status",
    "path_prefix",
    "host",
    "source",
    "kind",
    "q",
    "cursor",
    "limit",
];

/// The parameters `GET /api/v1/dead-letters` accepts.
pub const DEAD_LETTER_PARAMS: &[&str] = &["from", "to", "range", "source", "cursor", "limit"];

/// Raw `(name, value)` pairs as they came, checked for unknown and repeated names.
pub struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    /// Checks that every name is known and given once.
    pub fn new(pairs: &'a [(String, String)], known: &[&str]) -> Result<Self, Problem> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(Problem::invalid(
                    name,
                    format!("unknown parameter; accepted: {}", known.join(", ")),
                ));
            }
            if pairs.iter().skip(i + 1).any(|(n, _)| n == name) {
                return Err(Problem::invalid(name, "given more than once"));
            }
        }
        Ok(Params { pairs })
    }

    /// The value of a parameter, `None` when absent. An empty value is an error: it
    /// almost always means a client bug, and silently ignoring it hides that.
    pub fn get(&self, name: &str) -> Result<Option<&'a str>, Problem> {
        match self.pairs.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, v)) if v.trim().is_empty() => Err(Problem::invalid(name, "must not be empty")),
            Some((_, v)) => Ok(Some(v.as_str())),
        }
    }

    /// A text parameter: at most `max` bytes, no control characters.
    pub fn text(&self, name: &str, max: usize) -> Result<Option<String>, Problem> {
        match self.get(name)? {
            Some(v) if v.len() > max => {
                Err(Problem::invalid(name, format!("longer than {max} bytes")))
            }
            Some(v) if v.chars().any(char::is_control) => Err(Problem::invalid(
                name,
                "must not contain control characters",
            )),
            other => Ok(other.map(str::to_owned)),
        }
    }

    /// An address or CIDR parameter (`10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`): every
    /// filter by address takes both, and says so the same way when it gets neither.
    pub fn ip_net(&self, name: &str) -> Result<Option<IpNet>, Problem> {
        self.get(name)?
            .map(|v| {
                v.trim().parse::<IpNet>().map_err(|e| {
                    Problem::invalid(
                        name,
                        format!("{e}; give an address or a CIDR like 10.0.0.0/8"),
                    )
                })
            })
            .transpose()
    }

    /// The page size, 1..=MAX_LIMIT, default 100.
    pub fn limit(&self) -> Result<u32, Problem> {
        match self.get("limit")? {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Problem::invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
                }),
        }
    }

    /// The cursor a previous page returned.
    pub fn cursor(&self) -> Result<Option<Cursor>, Problem> {
        self.get("cursor")?
            .map(|v| {
                Cursor::decode(v).ok_or_else(|| {
                    Problem::invalid(
                        "cursor",
                        "not a cursor returned by this endpoint (use next_cursor as given)",
                    )
                })
            })
            .transpose()
    }

    /// `from`/`to` as instants, or `range` as a window ending now.
    pub fn time_range(
        &self,
        now: Timestamp,
    ) -> Result<(Option<Timestamp>, Option<Timestamp>), Problem> {
        let instant = |name: &str| -> Result<Option<Timestamp>, Problem> {
            self.get(name)?
                .map(|v| {
                    Timestamp::parse_api(v).map_err(|_| {
                        Problem::invalid(
                            name,
                            "must be an RFC 3339 time (2024-05-01T12:00:00Z) or epoch seconds",
                        )
                    })
                })
                .transpose()
        };
        let from = instant("from")?;
        let to = instant("to")?;
        if let Some(range) = self.get("range")? {
            if from.is_some() || to.is_some() {
                return Err(Problem::invalid(
                    "range",
                    "cannot be combined with from or to",
                ));
            }
            let secs = parse_range(range)
                .ok_or_else(|| Problem::invalid("range", "must be one of 15m, 1h, 24h, 7d, 30d"))?;
            return Ok((Some(now.add_micros(-secs * 1_000_000)), None));
        }
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(Problem::invalid("to", "must be later than from"));
        }
        Ok((from, to))
    }
}

fn parse_range(v: &str) -> Option<i64> {
    Some(match v.trim() {
        "15m" => 15 * 60,
        "1h" => 3600,
        "24h" | "1d" => 86_400,
        "7d" => 7 * 86_400,
        "30d" => 30 * 86_400,
        _ => return None,
    })
}

/// Builds an [`EventQuery`] from query pairs.
pub fn event_query(pairs: &[(String, String)], now: Timestamp) -> Result<EventQuery, Problem> {
    let p = Params::new(pairs, EVENT_PARAMS)?;
    let (from, to) = p.time_range(now)?;
    let client = p.ip_net("client_ip")?;
    let method = p.text("method", 32)?;
    if let Some(m) = &method
        && !m
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Problem::invalid(
            "method",
            "must be an HTTP method token such as GET",
        ));
    }
    let status = p
        .get("status")?
        .map(|v| {
            StatusFilter::parse(v).ok_or_else(|| {
                Problem::invalid(
                    "status",
                    "must be a code from 100 to 599 (404) or a class (4xx)",
                )
            })
        })
        .transpose()?;
    if let Some(StatusFilter::Exact(c)) = status
        && !(100..=599).contains(&c)
    {
        return Err(Problem::invalid(
            "status",
            "must be a code from 100 to 599 (404) or a class (4xx)",
        ));
    }
    let kind = p
        .get("kind")?
        .map(|v| {
            EventKind::parse(v.trim()).ok_or_else(|| {
                Problem::invalid("kind", "must be one of http, error_log, auth, syslog, flow")
            })
        })
        .transpose()?;
    let text = p.text("q", MAX_TEXT)?.map(|q| q.trim().to_owned());
    Ok(EventQuery {
        from,
        to,
        client,
        method,
        status,
        path_prefix: p.text("path_prefix", 2048)?,
        host: p.text("host", 255)?,
        source: p.text("source", 512)?,
        kind,
        text,
        cursor: p.cursor()?,
        limit: p.limit()?,
    })
}

/// Builds a [`DeadLetterQuery`] from query pairs.
pub fn dead_letter_query(
    pairs: &[(String, String)],
    now: Timestamp,
) -> Result<DeadLetterQuery, Problem> {
    let p = Params::new(pairs, DEAD_LETTER_PARAMS)?;
    let (from, to) = p.time_range(now)?;
    Ok(DeadLetterQuery {
        from,
        to,
        source: p.text("source", 512)?,
        cursor: p.cursor()?,
        limit: p.limit()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    }

    fn field_of(r: Result<EventQuery, Problem>) -> String {
        r.err().and_then(|p| p.field).unwrap_or_default()
    }

    #[test]
    fn full_query_parses() {
        let q = event_query(
            &pairs(&[
                ("range", "1h"),
                ("client_ip", "10.0.0.0/8"),
                ("method", "GET"),
                ("status", "4xx"),
                ("path_prefix", "/admin"),
                ("q", " curl "),
                ("limit", "1000"),
            ]),
            Timestamp::from_secs(10_000),
        )
        .unwrap();
        assert_eq!(q.from, Some(Timestamp::from_secs(10_000 - 3600)));
        assert_eq!(q.status, Some(StatusFilter::Class(4)));
        assert_eq!(q.text.as_deref(), Some("curl"));
        assert_eq!(q.limit, 1000);
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let now = Timestamp::from_secs(10_000);
        for (name, value) in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "-5"),
            ("limit", "ten"),
            ("from", "yesterday"),
            ("range", "2h"),
            ("client_ip", "10.0.0.0/40"),
            ("client_ip", "host.example"),
            ("status", "700"),
            ("status", "abc"),
            ("method", "GE T"),
            ("kind", "smtp"),
            ("cursor", "zzz"),
            ("q", ""),
            ("bogus", "1"),
        ] {
            assert_eq!(
                field_of(event_query(&pairs(&[(name, value)]), now)),
                name,
                "{name}={value}"
            );
        }
        assert_eq!(
            field_of(event_query(&pairs(&[("q", &"x".repeat(300))]), now)),
            "q"
        );
        assert_eq!(
            field_of(event_query(&pairs(&[("range", "1h"), ("from", "1")]), now)),
            "range"
        );
        assert_eq!(
            field_of(event_query(&pairs(&[("from", "20"), ("to", "10")]), now)),
            "to"
        );
        assert_eq!(
            field_of(event_query(&pairs(&[("limit", "5"), ("limit", "6")]), now)),
            "limit"
        );
    }

    #[test]
    fn dead_letter_params_checked() {
        let now = Timestamp::from_secs(1);
        assert!(dead_letter_query(&pairs(&[("source", "x"), ("limit", "5")]), now).is_ok());
        let e = dead_letter_query(&pairs(&[("status", "404")]), now)
            .err()
            .unwrap();
        assert_eq!(e.field.as_deref(), Some("status"));
    }
}
