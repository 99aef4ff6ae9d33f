//! Requests hyper's HTTP parser refuses. hyper answers them itself (400, 414, 431)
//! and closes the connection, so the service never sees them; this is where they are
//! counted (`palisade_proxy_requests_total{outcome="malformed"}`) and, when the head
//! can be read back, explained.
//!
//! The case users meet is a request target with characters RFC 3986 does not allow
//! unencoded but nginx accepts: `"`, `<`, `>`, `\`, `^`, a backtick, `{`, `|`, `}`
//! (which of them depends on path or query). hyper's URI type refuses them and cannot
//! be told otherwise, and rewriting the byte stream in front of the parser would be a
//! request-smuggling risk of its own. So the proxy deliberately refuses them, and makes
//! the refusal visible: the head (recorded by the connection while it was idle) is
//! parsed again with `httparse`, judged through the Guard's policy, recorded as a
//! protocol threat (rule 975100, with any engine findings, e.g. the XSS in
//! `?q=<script>`) and stored as an event with status 400. Clients that percent-encode,
//! as browsers and HTTP libraries do, are not affected.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use palisade_detect::HttpRequest;

use crate::Shared;
use crate::connections::Activity;
use crate::headers::client_ip;
use crate::refusal::{self, Refusal};
use crate::traffic::RequestRecord;

/// Most headers read back from a refused head (hyper's own limit).
const MAX_HEADERS: usize = 100;

/// A refused head read back.
struct RefusedHead {
    method: String,
    target: String,
    version: u8,
    headers: Vec<(String, String)>,
    characters: String,
}

/// Handles a client connection that ended with an error: counts parse refusals and
/// explains those whose head can be read back.
pub fn connection_failed(shared: &Shared, peer: IpAddr, error: &hyper::Error, activity: &Activity) {
    if !error.is_parse() {
        tracing::debug!(message = "Client connection ended with an error.", %peer, %error);
        return;
    }
    shared.metrics.count("malformed");
    let Some(head) = read_back(&activity.recorded_head()) else {
        tracing::info!(
            message = "Request refused by the HTTP parser.",
            proxy = %shared.config.name,
            client = %peer,
            %error
        );
        return;
    };
    let mut header_map = HeaderMap::new();
    for (name, value) in &head.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            header_map.append(n, v);
        }
    }
    let client = client_ip(peer, &header_map, &shared.config.trusted_proxies);
    let request = HttpRequest {
        method: head.method.clone(),
        uri: head.target.clone(),
        protocol: format!("HTTP/1.{}", head.version),
        headers: head.headers.clone(),
        body: Vec::new(),
        client_ip: Some(client),
    };
    let verdict = refusal::record(
        &shared.guard,
        &request,
        &shared.config.name,
        &Refusal::UnparsableTarget {
            characters: head.characters,
        },
    );
    if let Some(traffic) = &shared.traffic {
        let record = RequestRecord::refused(
            &shared.config.name,
            client,
            &head.method,
            &head.target,
            &head.headers,
        );
        traffic.record(record.finish(400, Some(verdict), 0));
    }
}

/// The head in `bytes` when it is complete and its target is what hyper refused.
fn read_back(bytes: &[u8]) -> Option<RefusedHead> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let target = req.path?;
    if http::Uri::try_from(target).is_ok() {
        return None;
    }
    Some(RefusedHead {
        method: req.method?.to_owned(),
        target: target.to_owned(),
        version: req.version.unwrap_or(1),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        characters: refused_characters(target),
    })
}

/// The characters of `target` that hyper's URI type refuses where they stand (path or
/// query), each once, asked of the URI type itself rather than listed here.
fn refused_characters(target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut out = String::new();
    let mut check = |c: char, probe: String| {
        if c.is_ascii() && !out.contains(c) && http::uri::PathAndQuery::try_from(probe).is_err() {
            out.push(c);
        }
    };
    for c in path.chars().skip(1) {
        check(c, format!("/{c}"));
    }
    for c in query.chars() {
        check(c, format!("/?{c}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_hyper_refuses_is_read_back_with_its_characters() {
        let head = read_back(
            b"GET /search?q=\"<script>\"&x=`id`|{} HTTP/1.1\r\nHost: shop\r\nUser-Agent: t\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/search?q=\"<script>\"&x=`id`|{}");
        // The query accepts a backtick, `|` and braces raw; quotes and angle brackets
        // are what the URI type refuses there.
        assert_eq!(head.characters, "\"<>");
        let head = read_back(b"GET /a`b HTTP/1.1\r\nHost: shop\r\n\r\n").unwrap();
        assert_eq!(head.characters, "`");
        assert!(head.headers.contains(&("host".into(), "shop".into())));
    }

    #[test]
    fn other_heads_are_not_explained() {
        // A valid target: the refusal was about something else.
        assert!(read_back(b"GET /ok?a=1 HTTP/1.1\r\nHost: x\r\n\r\n").is_none());
        // Incomplete or not HTTP at all.
        assert!(read_back(b"GET /a\"b HTTP/1.1\r\nHost: x\r\n").is_none());
        assert!(read_back(b"\x16\x03\x01 TLS hello").is_none());
    }
}
