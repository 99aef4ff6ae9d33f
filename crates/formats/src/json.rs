//! JSON access logs (nginx `escape=json` formats, Caddy, Traefik, ECS-style shippers):
//! one object per line, with a [`JsonFieldMap`] saying which keys hold which event
//! field. Keys nobody mapped go to `extra`, so nothing is lost.

use palisade_core::{Event, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::request_line::{split_request, split_target};
use crate::text::{decimal_micros, ip, is_empty_value};
use crate::{LineParser, ParseError};

/// JSON access logs: which JSON key holds which Event field. Each field lists candidate
/// keys, tried in order; the first present, non-null one wins. A key with dots
/// (`http.request.method`) also finds nested objects. Deserialized with
/// `#[serde(default)]` so a TOML table can override only some keys, and each entry
/// accepts a single string as well as a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonFieldMap {
    /// Event time: RFC 3339, CLF or epoch seconds (numbers above 1e11 are read as
    /// milliseconds). Required: a line without one is rejected.
    #[serde(deserialize_with = "one_or_many")]
    pub time: Vec<String>,
    /// Client address.
    #[serde(deserialize_with = "one_or_many")]
    pub client_ip: Vec<String>,
    /// Authenticated user.
    #[serde(deserialize_with = "one_or_many")]
    pub user: Vec<String>,
    /// A full request line, `GET /p?q HTTP/1.1`.
    #[serde(deserialize_with = "one_or_many")]
    pub request: Vec<String>,
    /// HTTP method (overrides the one from `request`).
    #[serde(deserialize_with = "one_or_many")]
    pub method: Vec<String>,
    /// Request target, path with optional `?query`.
    #[serde(deserialize_with = "one_or_many")]
    pub uri: Vec<String>,
    /// Query string, with or without `?`, when logged apart from the path.
    #[serde(deserialize_with = "one_or_many")]
    pub query: Vec<String>,
    /// Protocol, e.g. `HTTP/1.1`.
    #[serde(deserialize_with = "one_or_many")]
    pub protocol: Vec<String>,
    /// Response status.
    #[serde(deserialize_with = "one_or_many")]
    pub status: Vec<String>,
    /// Response size in bytes.
    #[serde(deserialize_with = "one_or_many")]
    pub bytes: Vec<String>,
    /// Referer header.
    #[serde(deserialize_with = "one_or_many")]
    pub referer: Vec<String>,
    /// User-Agent header.
    #[serde(deserialize_with = "one_or_many")]
    pub user_agent: Vec<String>,
    /// Virtual host.
    #[serde(deserialize_with = "one_or_many")]
    pub host: Vec<String>,
    /// Request duration in seconds with fraction (nginx `$request_time`).
    #[serde(deserialize_with = "one_or_many")]
    pub duration_secs: Vec<String>,
    /// Request duration in microseconds.
    #[serde(deserialize_with = "one_or_many")]
    pub duration_us: Vec<String>,
    /// Free text.
    #[serde(deserialize_with = "one_or_many")]
    pub message: Vec<String>,
}

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for JsonFieldMap {
    fn default() -> Self {
        JsonFieldMap {
            time: keys(&[
                "time",
                "timestamp",
                "@timestamp",
                "time_local",
                "time_iso8601",
                "ts",
                "msec",
                "date",
            ]),
            client_ip: keys(&[
                "remote_addr",
                "client_ip",
                "ip",
                "clientip",
                "client",
                "client.ip",
                "source.ip",
                "remote_ip",
            ]),
            user: keys(&["remote_user", "user", "username", "user.name"]),
            request: keys(&["request"]),
            method: keys(&["request_method", "method", "verb", "http.request.method"]),
            uri: keys(&["request_uri", "uri", "path", "url", "url.original"]),
            query: keys(&["args", "query_string", "query"]),
            protocol: keys(&["server_protocol", "protocol", "http_version"]),
            status: keys(&[
                "status",
                "status_code",
                "response",
                "http.response.status_code",
            ]),
            bytes: keys(&[
                "body_bytes_sent",
                "bytes",
                "bytes_sent",
                "size",
                "http.response.body.bytes",
            ]),
            referer: keys(&[
                "http_referer",
                "referer",
                "referrer",
                "http.request.referrer",
            ]),
            user_agent: keys(&[
                "http_user_agent",
                "user_agent",
                "agent",
                "user_agent.original",
            ]),
            host: keys(&["host", "server_name", "http_host", "vhost"]),
            duration_secs: keys(&["request_time"]),
            duration_us: keys(&["duration_us"]),
            message: keys(&["message", "msg"]),
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Parser for JSON access logs.
#[derive(Debug, Clone)]
pub struct JsonParser {
    map: JsonFieldMap,
}

impl JsonParser {
    /// A parser using `map` to find event fields.
    pub fn new(map: JsonFieldMap) -> Self {
        JsonParser { map }
    }
}

/// Event fields are scalars: a null, object or array under a candidate key is skipped.
fn is_scalar(v: &Value) -> bool {
    !(v.is_null() || v.is_object() || v.is_array())
}

/// Finds the first present, non-null key; returns the top-level key it used and the value.
fn lookup<'a>(
    obj: &'a Map<String, Value>,
    candidates: &'a [String],
) -> Option<(&'a str, &'a Value)> {
    for key in candidates {
        if let Some(v) = obj.get(key.as_str()).filter(|v| is_scalar(v)) {
            return Some((key.as_str(), v));
        }
        if key.contains('.') {
            let mut parts = key.split('.');
            let top = parts.next().unwrap_or_default();
            let mut cur = obj.get(top);
            for p in parts {
                cur = cur.and_then(|v| v.get(p));
            }
            if let Some(v) = cur.filter(|v| is_scalar(v)) {
                return Some((top, v));
            }
        }
    }
    None
}

/// Key lookups that remember which top-level keys were used, so the rest go to `extra`.
struct Lookup<'a> {
    obj: &'a Map<String, Value>,
    used: Vec<&'a str>,
}

impl<'a> Lookup<'a> {
    fn get(&mut self, candidates: &'a [String]) -> Option<&'a Value> {
        let (top, v) = lookup(self.obj, candidates)?;
        self.used.push(top);
        Some(v)
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn opt_str(v: &Value) -> Option<String> {
    let s = as_text(v);
    (!is_empty_value(s.as_bytes())).then_some(s)
}

fn json_time(v: &Value) -> Result<Timestamp, String> {
    match v {
        Value::String(s) => {
            let b = s.trim().as_bytes();
            let r = if b.get(4) == Some(&b'-') {
                Timestamp::parse_iso8601(b)
            } else if b.get(2) == Some(&b'/') {
                Timestamp::parse_clf(b)
            } else {
                Timestamp::parse_epoch(b)
            };
            r.map_err(|e| format!("{e} in {s:?}"))
        }
        Value::Number(n) => {
            let f = n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15);
            match f {
                Some(f) if f > 1e11 => Ok(Timestamp((f * 1_000.0) as i64)),
                Some(f) => Ok(Timestamp((f * 1_000_000.0) as i64)),
                None => Err(format!("epoch {n} out of range")),
            }
        }
        other => Err(format!("expected a string or number, got {other}")),
    }
}

fn json_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => crate::text::uint(s.as_bytes()),
        _ => None,
    }
}

impl LineParser for JsonParser {
    fn name(&self) -> &str {
        "json"
    }

    fn parse(&self, line: &[u8]) -> Result<Event, ParseError> {
        let obj: Map<String, Value> = serde_json::from_slice(line).map_err(|e| {
            ParseError::new(format!("json: expected one JSON object per line: {e}"))
        })?;
        let m = &self.map;
        let mut l = Lookup {
            obj: &obj,
            used: Vec::new(),
        };
        let mut ev = Event::default();

        let Some(t) = l.get(&m.time) else {
            return Err(ParseError::new(format!(
                "time: none of the keys {} is present; set the time key in the JSON field map",
                m.time.join(", ")
            )));
        };
        ev.ts = json_time(t).map_err(|e| ParseError::new(format!("time: {e}")))?;
        let mut extra = Vec::new();
        if let Some(v) = l.get(&m.client_ip).and_then(opt_str) {
            match ip(v.as_bytes()) {
                Some(addr) => ev.client_ip = Some(addr),
                None => extra.push(("client".to_owned(), v)),
            }
        }
        ev.user = l.get(&m.user).and_then(opt_str);
        if let Some(req) = l.get(&m.request).and_then(opt_str) {
            let parts = split_request(req.as_bytes());
            let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            ev.method = parts.method.map(s);
            if let Some(target) = parts.target {
                let (path, query) = split_target(target);
                ev.path = Some(s(path));
                ev.query = query.map(s);
            }
            ev.protocol = parts.protocol.map(s);
        }
        if let Some(v) = l.get(&m.method).and_then(opt_str) {
            ev.method = Some(v);
        }
        if let Some(uri) = l.get(&m.uri).and_then(opt_str) {
            let (path, query) = split_target(uri.as_bytes());
            ev.path = Some(String::from_utf8_lossy(path).into_owned());
            if let Some(q) = query {
                ev.query = Some(String::from_utf8_lossy(q).into_owned());
            }
        }
        if let Some(q) = l.get(&m.query).and_then(opt_str) {
            let q = q.strip_prefix('?').unwrap_or(&q);
            if !q.is_empty() {
                ev.query = Some(q.to_owned());
            }
        }
        if let Some(v) = l.get(&m.protocol).and_then(opt_str) {
            ev.protocol = Some(v);
        }
        if let Some(v) = l.get(&m.status) {
            ev.status = Some(
                json_uint(v)
                    .filter(|s| (100..=999).contains(s))
                    .map(|s| s as u16)
                    .ok_or_else(|| {
                        ParseError::new(format!("status: expected a 3-digit number, got {v}"))
                    })?,
            );
        }
        if let Some(v) = l.get(&m.bytes)
            && !is_empty_value(as_text(v).as_bytes())
        {
            ev.bytes =
                Some(json_uint(v).ok_or_else(|| {
                    ParseError::new(format!("bytes: expected a number, got {v}"))
                })?);
        }
        ev.referer = l.get(&m.referer).and_then(opt_str);
        ev.user_agent = l.get(&m.user_agent).and_then(opt_str);
        ev.host = l.get(&m.host).and_then(opt_str);
        if let Some(v) = l.get(&m.duration_secs) {
            ev.duration_us = match v {
                Value::Number(n) => n
                    .as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e9)
                    .map(|f| (f * 1_000_000.0).round() as u64),
                other => decimal_micros(as_text(other).as_bytes(), 1_000_000),
            };
        }
        if let Some(v) = l.get(&m.duration_us).and_then(json_uint) {
            ev.duration_us = Some(v);
        }
        ev.message = l.get(&m.message).and_then(opt_str);

        for (k, v) in &obj {
            if !l.used.contains(&k.as_str()) && !v.is_null() {
                extra.push((k.clone(), as_text(v)));
            }
        }
        ev.extra = extra;
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Event, ParseError> {
        JsonParser::new(JsonFieldMap::default()).parse(line.as_bytes())
    }

    #[test]
    fn nginx_escape_json_line() {
        let ev = parse(r#"{"time_local":"10/Oct/2000:13:55:36 -0700","remote_addr":"10.0.0.9","request":"GET /a?b=c HTTP/1.1","status":"404","body_bytes_sent":"15","http_referer":"","http_user_agent":"curl/8","request_time":"0.012","http_x_forwarded_for":"1.1.1.1"}"#).unwrap();
        assert_eq!(ev.ts.to_string(), "2000-10-10T20:55:36Z");
        assert_eq!(ev.client_ip, Some("10.0.0.9".parse().unwrap()));
        assert_eq!(ev.method.as_deref(), Some("GET"));
        assert_eq!(ev.path.as_deref(), Some("/a"));
        assert_eq!(ev.query.as_deref(), Some("b=c"));
        assert_eq!(ev.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(ev.status, Some(404));
        assert_eq!(ev.bytes, Some(15));
        assert_eq!(ev.referer, None);
        assert_eq!(ev.user_agent.as_deref(), Some("curl/8"));
        assert_eq!(ev.duration_us, Some(12_000));
        assert_eq!(
            ev.extra,
            vec![("http_x_forwarded_for".into(), "1.1.1.1".into())]
        );
    }

    #[test]
    fn numbers_nested_keys_and_separate_parts() {
        let ev = parse(r#"{"@timestamp":1700000000.5,"client":{"ip":"2001:db8::1"},"method":"POST","uri":"/x?y=1","status":201,"bytes":0,"request_time":0.25,"host":"h","user":"-"}"#).unwrap();
        assert_eq!(ev.ts.as_micros(), 1_700_000_000_500_000);
        assert_eq!(ev.client_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ev.method.as_deref(), Some("POST"));
        assert_eq!(ev.path.as_deref(), Some("/x"));
        assert_eq!(ev.query.as_deref(), Some("y=1"));
        assert_eq!(ev.status, Some(201));
        assert_eq!(ev.bytes, Some(0));
        assert_eq!(ev.duration_us, Some(250_000));
        assert_eq!(ev.host.as_deref(), Some("h"));
        assert_eq!(ev.user, None);
        assert!(ev.extra.is_empty(), "{:?}", ev.extra);
        let ev = parse(r#"{"ts":1700000000123,"ip":"bot.example"}"#).unwrap();
        assert_eq!(ev.ts.as_micros(), 1_700_000_000_123_000);
        assert_eq!(ev.extra, vec![("client".into(), "bot.example".into())]);
    }

    #[test]
    fn bad_lines() {
        for (line, want) in [
            ("not json", "json: expected one JSON object"),
            ("[1,2]", "json: expected one JSON object"),
            ("{\"status\":200}", "time: none of the keys"),
            ("{\"time\":\"yesterday\"}", "time: invalid timestamp"),
            ("{\"time\":true}", "time: expected a string or number"),
            (
                "{\"time\":1,\"status\":\"abc\"}",
                "status: expected a 3-digit number",
            ),
            (
                "{\"time\":1,\"status\":70000}",
                "status: expected a 3-digit number",
            ),
            ("{\"time\":1,\"bytes\":-4}", "bytes: expected a number"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.reason.starts_with(want), "{line}: {}", e.reason);
        }
    }

    #[test]
    fn field_map_overrides_only_some_keys() {
        let m: JsonFieldMap =
            serde_json::from_str(r#"{"time":"when","status":["code","st"]}"#).unwrap();
        assert_eq!(m.time, vec!["when".to_string()]);
        assert_eq!(m.status, vec!["code".to_string(), "st".to_string()]);
        assert_eq!(m.user_agent, JsonFieldMap::default().user_agent);
        let ev = JsonParser::new(m)
            .parse(br#"{"when":"2020-01-01T00:00:00Z","st":503,"time":"x"}"#)
            .unwrap();
        assert_eq!(ev.status, Some(503));
        assert_eq!(ev.extra, vec![("time".into(), "x".into())]);
    }
}
