//! Requests hyper's HTTP parser refuses. hyper answers them itself (400, 414, 431)
//! and closes the connection, so the service never sees them; this is where they are
//! counted (`palisade_proxy_requests_total{outcome="malformed"}`) and, when the head
//! can be read back, recorded as explained protocol threats, never silently dropped.
//!
//! Two kinds are told apart. A request target with characters RFC 3986 does not allow
//! unencoded but nginx accepts (`"`, `<`, `>`, `\`, `^`, a backtick, `{`, `|`, `}`,
//! depending on path or query): hyper's URI type refuses them and cannot be told
//! otherwise, and rewriting the byte stream in front of the parser would be a
//! request-smuggling risk of its own, so the proxy deliberately refuses them as rule
//! 975100, naming the characters. Every other refusal (conflicting `Content-Length`,
//! a `Transfer-Encoding` that is not chunked or comes with HTTP/1.0, a header name
//! with a space, a folded line, an unknown version) is rule 975140 with hyper's reason;
//! in both cases the head, read back as sent ([`crate::raw_head`]), also goes through
//! the Guard's policy, so the engine's findings (e.g. 920310 for `xchunked`, or the XSS
//! in `?q=<script>`) explain it too. The event is stored with status 400. Clients that
//! percent-encode and frame requests as RFC 9112 says, as browsers and HTTP libraries
//! do, are not affected.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use palisade_detect::HttpRequest;

use crate::Shared;
use crate::connections::Activity;
use crate::headers::client_ip;
use crate::raw_head::{self, RawHead};
use crate::refusal::{self, Refusal};
use crate::traffic::RequestRecord;

/// A refused head read back, and why it was refused.
struct RefusedHead {
    head: RawHead,
    refusal: Refusal,
}

/// Handles a client connection that ended with an error: counts parse refusals and
/// explains those whose head can be read back.
pub fn connection_failed(shared: &Shared, peer: IpAddr, error: &hyper::Error, activity: &Activity) {
    if !error.is_parse() {
        tracing::debug!(message = "Client connection ended with an error.", %peer, %error);
        return;
    }
    shared.metrics.count("malformed");
    let Some(RefusedHead { head, refusal }) = read_back(&activity.recorded_head(), error) else {
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
        protocol: head.version.clone(),
        headers: head.headers.clone(),
        body: Vec::new(),
        client_ip: Some(client),
    };
    let verdict = refusal::record(&shared.guard, &request, &shared.config.name, &refusal);
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

/// The head in `bytes` and why hyper refused it: its target when the URI type refuses
/// it, else the parser's own reason (invalid header name, folding, version, lengths).
fn read_back(bytes: &[u8], error: &hyper::Error) -> Option<RefusedHead> {
    let head = raw_head::parse(bytes)?;
    let refusal = if http::Uri::try_from(head.target.as_str()).is_err()
        && !head.target.contains(char::is_whitespace)
    {
        Refusal::UnparsableTarget {
            characters: refused_characters(&head.target),
        }
    } else {
        Refusal::MalformedHead {
            reason: error.to_string(),
        }
    };
    Some(RefusedHead { head, refusal })
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

    /// A parse error from hyper itself, for the reason text.
    async fn hyper_error(bytes: &'static [u8]) -> hyper::Error {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = server.write_all(bytes).await;
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut server, &mut sink).await;
        });
        let service = hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(hyper::Response::new(String::new()))
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(client), service)
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_target_hyper_refuses_is_read_back_with_its_characters() {
        let bytes: &[u8] =
            b"GET /search?q=\"<script>\"&x=`id`|{} HTTP/1.1\r\nHost: shop\r\nUser-Agent: t\r\n\r\n";
        let e = hyper_error(bytes).await;
        let r = read_back(bytes, &e).unwrap();
        assert_eq!(r.head.method, "GET");
        assert_eq!(r.head.target, "/search?q=\"<script>\"&x=`id`|{}");
        // The query accepts a backtick, `|` and braces raw; quotes and angle brackets
        // are what the URI type refuses there.
        assert_eq!(
            r.refusal,
            Refusal::UnparsableTarget {
                characters: "\"<>".into()
            }
        );
        let bytes: &[u8] = b"GET /a`b HTTP/1.1\r\nHost: shop\r\n\r\n";
        let r = read_back(bytes, &hyper_error(bytes).await).unwrap();
        assert_eq!(
            r.refusal,
            Refusal::UnparsableTarget {
                characters: "`".into()
            }
        );
        assert!(r.head.headers.contains(&("Host".into(), "shop".into())));
    }

    #[tokio::test]
    async fn heads_refused_for_their_framing_are_read_back_as_sent() {
        for bytes in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
            b"GET / HTTP/3.7\r\nHost: x\r\n\r\n",
        ] {
            let e = hyper_error(bytes).await;
            assert!(e.is_parse(), "{e}");
            let r = read_back(bytes, &e).unwrap();
            assert!(
                matches!(r.refusal, Refusal::MalformedHead { .. }),
                "{:?}",
                r.refusal
            );
            assert_eq!(r.head.headers.first(), Some(&("Host".into(), "x".into())));
        }
        // Not HTTP at all: nothing to explain.
        let bytes: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        assert!(read_back(bytes, &hyper_error(bytes).await).is_none());
    }
}
