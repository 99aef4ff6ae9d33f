//! Protocol checks on how a request is framed and routed (issue 17, protocol attacks):
//! the shapes request smuggling, desynchronisation, cache poisoning and routing bypasses
//! are made of. They read the raw header list (names as sent, duplicates kept, raw
//! `Content-Length` / `Transfer-Encoding` values), the method, the version and the
//! target, and report named anomalies that the `anomalies` rules of `protocol.toml`
//! score. Every check here is about the technique (an ambiguous length, a coding no
//! server agrees on, a header that re-routes the request), not about a payload list.

use crate::request::HttpRequest;
use crate::transform::{any_byte, url_decode};

/// One anomaly: its name (what the rules match) and the offending text (evidence).
pub(crate) type Found = (&'static str, String);

/// Protocol versions a client may send (HTTP/3 as nginx logs it, too).
const VERSIONS: &[&str] = &[
    "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0", "HTTP/3", "HTTP/3.0",
];

/// Transfer codings registered with IANA that a request may carry.
const CODINGS: &[&str] = &[
    "chunked",
    "gzip",
    "x-gzip",
    "deflate",
    "compress",
    "x-compress",
    "identity",
];

/// Headers that re-route a request inside some frameworks (IIS URL Rewrite, Symfony,
/// Zend): a client that sends them asks the application to serve another path than the
/// one the proxy and its access rules saw.
const URL_OVERRIDE_HEADERS: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-override-url",
    "x-http-destinationurl",
];

/// Headers naming the host a request was meant for, which applications use to build
/// absolute links (password-reset mails) and caches key on.
const FORWARDED_HOST_HEADERS: &[&str] = &["x-forwarded-host", "x-host", "x-forwarded-server"];

/// Headers that tunnel a method past a front that filters methods.
const METHOD_OVERRIDE_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// End-to-end headers whose removal changes who the client is or what it may do: a
/// `Connection` header naming one makes the next hop strip it (the hop-by-hop trick,
/// e.g. `Connection: close, X-Forwarded-For` to hide the client from the application).
const PROTECTED_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "forwarded",
    "content-length",
    "transfer-encoding",
    "true-client-ip",
    "cf-connecting-ip",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-user",
    "x-real-ip",
    "x-client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-authenticated-user",
];

/// Connection options a client legitimately sends.
/// Methods a reverse proxy has no business serving: they echo the request (`TRACE`,
/// `TRACK`: cross-site tracing), switch on debugging (`DEBUG`, ASP.NET) or open a tunnel
/// (`CONNECT`).
const DIAGNOSTIC_METHODS: &[&str] = &["TRACE", "TRACK", "DEBUG", "CONNECT"];

/// More byte ranges than this in one `Range` is the overlapping-ranges DoS shape
/// (CVE-2011-3192); PDF readers ask for a handful.
pub(crate) const MAX_RANGES: usize = 10;
/// More sorted, non-overlapping ranges than this is too many even for a PDF reader
/// (CRS 920201 allows 62 for PDFs).
pub(crate) const MAX_ORDERLY_RANGES: usize = 62;
/// From this many ranges on, a paranoia-2 warning (CRS 920200 counts the same).
pub(crate) const MANY_RANGES: usize = 6;
/// Longest `Host` accepted (a DNS name is at most 253 characters, plus a port).
const MAX_HOST_LEN: usize = 261;

/// Runs every framing check on `req`; `known_method` says whether the method is one
/// the parser knows (for override values).
pub(crate) fn check(req: &HttpRequest, known_method: fn(&str) -> bool) -> Vec<Found> {
    let mut out = Vec::new();
    version(req, &mut out);
    method(req, known_method, &mut out);
    header_syntax(req, &mut out);
    lengths(req, &mut out);
    host(req, &mut out);
    routing_headers(req, &mut out);
    ranges(req, &mut out);
    connection(req, &mut out);
    target(req, &mut out);
    content_type(req, &mut out);
    out
}

/// Top-level media types: a parameter whose value is `type/subtype` of one of these is
/// a second content type hidden in the header.
const MEDIA_TYPES: &[&str] = &[
    "application",
    "text",
    "multipart",
    "image",
    "audio",
    "video",
    "message",
    "model",
    "font",
];

/// Parsers that look for `json` or `xml` anywhere in `Content-Type` read
/// `application/x-www-form-urlencoded;boundary="application/json"` as JSON while others
/// read a form (body-parser confusion, CRS 921421/921422); two `Content-Type` headers
/// leave the choice to each server.
fn content_type(req: &HttpRequest, out: &mut Vec<Found>) {
    let types: Vec<&str> = headers(req, "content-type").collect();
    if types.len() > 1 {
        out.push(("content_type_confusion", clip(&types.join(" | "))));
        return;
    }
    let Some(value) = types.first() else {
        return;
    };
    let mut pieces = value.split([';', ',']);
    let main = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
    let hidden = pieces.any(|p| {
        let (name, v) = p.split_once('=').unwrap_or(("", p));
        // multipart/related names its root part's type (RFC 2387: `type`, `start-info`),
        // as SOAP with attachments (MTOM) does.
        let name = name.trim().to_ascii_lowercase();
        if main.starts_with("multipart/") && (name == "type" || name == "start-info") {
            return false;
        }
        let v = v.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
        v.split_once('/').is_some_and(|(t, s)| {
            MEDIA_TYPES.contains(&t)
                && !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".+-_".contains(&c))
        })
    });
    if hidden {
        out.push(("content_type_confusion", clip(value)));
    }
}

fn headers<'a>(req: &'a HttpRequest, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

fn version(req: &HttpRequest, out: &mut Vec<Found>) {
    let p = req.protocol.as_str();
    if !p.is_empty() && !VERSIONS.iter().any(|v| v.eq_ignore_ascii_case(p)) {
        out.push(("invalid_protocol", clip(p)));
    }
}

fn method(req: &HttpRequest, known_method: fn(&str) -> bool, out: &mut Vec<Found>) {
    if DIAGNOSTIC_METHODS.contains(&req.method.as_str()) {
        out.push(("diagnostic_method", clip(&req.method)));
    }
    let query = req.uri.split_once('?').map(|(_, q)| q).unwrap_or("");
    let from_query = query.split('&').filter_map(|p| {
        let (n, v) = p.split_once('=')?;
        url_decode(n)
            .eq_ignore_ascii_case("_method")
            .then(|| url_decode(v).into_owned())
    });
    let from_headers = req
        .headers
        .iter()
        .filter(|(k, _)| {
            METHOD_OVERRIDE_HEADERS
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
        })
        .map(|(_, v)| v.clone());
    for value in from_headers.chain(from_query) {
        let m = value.trim().to_ascii_uppercase();
        if DIAGNOSTIC_METHODS.contains(&m.as_str()) || !known_method(&m) {
            out.push(("dangerous_method_override", clip(&value)));
        }
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn header_syntax(req: &HttpRequest, out: &mut Vec<Found>) {
    for (name, value) in &req.headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            out.push(("invalid_header_name", clip(name)));
        }
        // `Transfer_Encoding`, `Content-Length ` and the like: servers that fold `_`
        // into `-` or trim names read a framing header the proxy did not.
        let lookalike = ["transfer-encoding", "content-length"]
            .iter()
            .any(|framing| folds_to(name, framing) && !name.eq_ignore_ascii_case(framing));
        if lookalike {
            out.push(("framing_header_lookalike", clip(name)));
        }
        // Both findings below are about control bytes: a value without any (nearly
        // every value) is told in one vectorised pass.
        if !any_byte(value.as_bytes(), |c| (c < 0x20) | (c == 0x7f)) {
            continue;
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            out.push(("header_line_break", clip(&format!("{name}: {value}"))));
        } else if value
            .bytes()
            .any(|c| (c < 0x20 && c != b'\t' && c != 0) || c == 0x7f)
        {
            out.push(("header_control_char", clip(name)));
        }
    }
}

/// Whether `name`, trimmed, with `_` read as `-` and ASCII letters lowercased, is
/// `framing` (lowercase ASCII): compared byte by byte, without building the folded name.
fn folds_to(name: &str, framing: &str) -> bool {
    let t = name.trim();
    t.len() == framing.len()
        && t.bytes().zip(framing.bytes()).all(|(a, b)| {
            let a = if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            };
            a == b
        })
}

fn lengths(req: &HttpRequest, out: &mut Vec<Found>) {
    let lengths: Vec<&str> = headers(req, "content-length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if lengths.len() > 1 {
        let detail = clip(&lengths.join(", "));
        if lengths.windows(2).all(|w| w.first() == w.get(1)) {
            out.push(("duplicate_content_length", detail));
        } else {
            out.push(("conflicting_content_length", detail));
        }
    }
    let te: Vec<&str> = headers(req, "transfer-encoding").collect();
    if te.is_empty() {
        return;
    }
    if te.len() > 1 {
        out.push(("duplicate_transfer_encoding", clip(&te.join(" | "))));
    }
    if req.protocol.eq_ignore_ascii_case("HTTP/1.0") {
        out.push(("transfer_encoding_http10", clip(&te.join(", "))));
    }
    let joined = te.join(",");
    let tokens: Vec<String> = joined
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']).to_ascii_lowercase())
        .collect();
    let odd = tokens.iter().any(|t| !CODINGS.contains(&t.as_str()))
        || tokens.iter().filter(|t| *t == "chunked").count() > 1;
    let chunked_last = tokens.last().is_some_and(|t| t == "chunked");
    if odd || (tokens.iter().any(|t| t == "chunked") && !chunked_last) {
        out.push(("transfer_encoding_obfuscated", clip(&joined)));
    } else if !chunked_last {
        out.push(("transfer_encoding_not_chunked", clip(&joined)));
    }
}

/// A host as it appears in `Host` or the authority of a target: `name[:port]` or
/// `[v6][:port]`, lowercase, without the port.
fn host_name(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.rsplit('@').next().unwrap_or(v);
    let name = if let Some(rest) = v.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        v.split(':').next().unwrap_or("")
    };
    (!name.is_empty()).then(|| name.trim_end_matches('.').to_ascii_lowercase())
}

fn host_is_well_formed(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty()
        && v.len() <= MAX_HOST_LEN
        && v.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

/// Names that reach the server itself, its network or the cloud metadata service.
fn is_internal(host: &str) -> bool {
    let private_v4 = |h: &str| {
        let o: Vec<u16> = h.split('.').filter_map(|p| p.parse().ok()).collect();
        match o.as_slice() {
            [a, b, _, _] => {
                *a == 127
                    || *a == 10
                    || *a == 0
                    || (*a == 192 && *b == 168)
                    || (*a == 172 && (16..=31).contains(b))
                    || (*a == 169 && *b == 254)
            }
            _ => false,
        }
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".internal")
        || host.ends_with(".local")
        || host == "::1"
        || host == "0"
        || host.starts_with("metadata.")
        || private_v4(host)
}

fn host(req: &HttpRequest, out: &mut Vec<Found>) {
    let hosts: Vec<&str> = headers(req, "host").collect();
    if hosts.len() > 1 {
        out.push(("duplicate_host", clip(&hosts.join(" | "))));
    }
    for h in &hosts {
        if !h.trim().is_empty() && !host_is_well_formed(h) {
            out.push(("invalid_host", clip(h)));
        }
    }
    // Absolute form naming another host than `Host`: the two disagree on where the
    // request goes (routing-based SSRF, cache poisoning).
    if crate::request::is_absolute_http(&req.uri) {
        let after = req
            .uri
            .find("://")
            .and_then(|i| req.uri.get(i + 3..))
            .unwrap_or("");
        let authority = after.split(['/', '?', '#']).next().unwrap_or("");
        if let (Some(target), Some(Some(header))) =
            (host_name(authority), hosts.first().map(|h| host_name(h)))
            && target != header
        {
            out.push(("absolute_target_host_mismatch", clip(authority)));
        }
    }
}

fn routing_headers(req: &HttpRequest, out: &mut Vec<Found>) {
    // The lists are lowercase ASCII: a case-blind comparison is the comparison of the
    // lowercased name, without building it for every header.
    let is = |name: &str, list: &[&str]| list.iter().any(|h| name.eq_ignore_ascii_case(h));
    for (name, value) in &req.headers {
        let lname = || name.to_ascii_lowercase();
        if is(name, URL_OVERRIDE_HEADERS) {
            let lname = lname();
            out.push(("url_override_header", clip(&format!("{lname}: {value}"))));
        } else if is(name, FORWARDED_HOST_HEADERS) {
            let lname = lname();
            let bad = value
                .split(',')
                .any(|h| !host_is_well_formed(h) || host_name(h).is_some_and(|n| is_internal(&n)));
            if bad {
                out.push(("forwarded_host_abuse", clip(&format!("{lname}: {value}"))));
            }
        } else if name.eq_ignore_ascii_case("forwarded") {
            let lname = lname();
            let bad = value
                .split([',', ';'])
                .filter_map(|p| p.trim().strip_prefix("host="))
                .map(|h| h.trim_matches('"'))
                .any(|h| !host_is_well_formed(h) || host_name(h).is_some_and(|n| is_internal(&n)));
            if bad {
                out.push(("forwarded_host_abuse", clip(&format!("{lname}: {value}"))));
            }
        } else if name.eq_ignore_ascii_case("proxy") {
            // httpoxy (CVE-2016-5385): CGI turns it into HTTP_PROXY.
            out.push(("proxy_header", clip(value)));
        } else if name.eq_ignore_ascii_case("expect")
            && !value.trim().eq_ignore_ascii_case("100-continue")
        {
            out.push(("invalid_expect", clip(value)));
        }
    }
}

fn ranges(req: &HttpRequest, out: &mut Vec<Found>) {
    for value in headers(req, "range").chain(headers(req, "request-range")) {
        let specs = value
            .split_once('=')
            .map_or(value, |(_, s)| s)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let mut count = 0;
        let mut inverted = false;
        // Byte-serving PDF readers ask for many ranges, sorted and apart; the range
        // DoS asks for overlapping ones (`0-,5-0,5-1,...`).
        let mut orderly = true;
        let mut last_end: Option<u64> = None;
        for spec in specs {
            count += 1;
            let bounds = spec
                .split_once('-')
                .map(|(a, b)| (a.trim().parse::<u64>().ok(), b.trim().parse::<u64>().ok()));
            match bounds {
                Some((Some(a), Some(b))) => {
                    if b < a {
                        inverted = true;
                    }
                    if last_end.is_some_and(|e| a <= e) {
                        orderly = false;
                    }
                    last_end = Some(b);
                }
                _ => orderly = false,
            }
        }
        if inverted {
            out.push(("invalid_range", clip(value)));
        }
        if count > MAX_ORDERLY_RANGES || (count > MAX_RANGES && !orderly) {
            out.push(("too_many_ranges", clip(value)));
        } else if count >= MANY_RANGES {
            out.push(("many_ranges", clip(value)));
        }
    }
}

fn connection(req: &HttpRequest, out: &mut Vec<Found>) {
    let mut seen: Vec<String> = Vec::new();
    let mut conflicting = false;
    for value in headers(req, "connection") {
        for token in value.split(',').map(|t| t.trim().to_ascii_lowercase()) {
            if token.is_empty() {
                continue;
            }
            // A custom hop-by-hop header (`Connection: X-Hop`) is legitimate; naming
            // one that says who the client is or what it may do is the trick.
            if PROTECTED_HEADERS.contains(&token.as_str()) {
                out.push(("connection_strips_header", clip(value)));
            }
            if seen.contains(&token) {
                conflicting = true;
            }
            seen.push(token);
        }
    }
    let has = |t: &str| seen.iter().any(|s| s == t);
    if conflicting || (has("close") && has("keep-alive")) {
        out.push(("conflicting_connection", clip(&seen.join(", "))));
    }
}

fn target(req: &HttpRequest, out: &mut Vec<Found>) {
    let raw = req.uri.split('#').next().unwrap_or("");
    let path = raw.split('?').next().unwrap_or("");
    let bad = |c: u8| c < 0x20 || c == 0x7f;
    // Without `%` decoding only turns `+` into a space: the decoded path has a control
    // byte only if the raw target does, so it is decoded only when it has escapes.
    if any_byte(raw.as_bytes(), |c| bad(c) | (c == b' '))
        || (path.contains('%') && url_decode(path).bytes().any(bad))
    {
        out.push(("control_char_in_path", clip(raw)));
    }
}

/// Reads a body in chunked framing: the data of its chunks, and whatever follows the
/// last chunk and its trailers. `None` when the body is not (valid) chunked framing, as
/// when a front already removed it.
pub(crate) fn dechunk(body: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    // Lines end with CRLF, as RFC 9112 and hyper require: a bare LF is not a line end.
    fn line(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let i = b.windows(2).position(|w| w == b"\r\n")?;
        Some((b.get(..i)?, b.get(i + 2..)?))
    }
    let mut data = Vec::new();
    let mut rest = body;
    loop {
        let (size_line, after) = line(rest)?;
        let size = size_line.split(|&c| c == b';').next()?;
        let size = std::str::from_utf8(size)
            .ok()?
            .trim_end_matches([' ', '\t']);
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let n = usize::from_str_radix(size, 16).ok()?;
        if n == 0 {
            rest = after;
            break;
        }
        let chunk = after.get(..n)?;
        data.extend_from_slice(chunk);
        let tail = after.get(n..)?;
        rest = tail.strip_prefix(b"\r\n")?;
    }
    // Trailer fields, then the empty line that ends the message.
    loop {
        match line(rest) {
            Some((l, after)) if !l.is_empty() && l.contains(&b':') => rest = after,
            Some(([], after)) => {
                rest = after;
                break;
            }
            _ => break,
        }
    }
    Some((data, rest.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, protocol: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            uri: uri.into(),
            protocol: protocol.into(),
            headers: headers
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn names(r: &HttpRequest) -> Vec<&'static str> {
        check(r, |m| {
            ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&m)
        })
        .into_iter()
        .map(|(n, _)| n)
        .collect()
    }

    fn get(headers: &[(&str, &str)]) -> Vec<&'static str> {
        names(&req("GET", "/", "HTTP/1.1", headers))
    }

    #[test]
    fn framing_lookalikes_fold_as_the_folded_copy_did() {
        let by_copy = |name: &str, framing: &str| {
            name.trim().replace('_', "-").to_ascii_lowercase() == framing
        };
        for name in [
            "Transfer-Encoding",
            "transfer_encoding",
            " Content-Length ",
            "content-length",
            "CONTENT_LENGTH\t",
            "content-lengthx",
            "contént-length",
            "Transfer-Encodin",
            "",
            " ",
            "_",
            "Content–Length",
        ] {
            for framing in ["transfer-encoding", "content-length"] {
                assert_eq!(folds_to(name, framing), by_copy(name, framing), "{name:?}");
            }
        }
    }

    #[test]
    fn chunked_bodies_are_read_and_what_follows_is_kept() {
        let (data, rest) = dechunk(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n").unwrap();
        assert_eq!(
            (data.as_slice(), rest.as_slice()),
            (&b"hello world"[..], &b""[..])
        );
        let (data, rest) = dechunk(b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(data.is_empty());
        assert!(rest.starts_with(b"GET /admin"));
        assert!(dechunk(b"a=1&b=2").is_none());
        assert!(dechunk(b"zz\r\nhello\r\n0\r\n\r\n").is_none());
        assert!(dechunk(b"5\r\nhel").is_none());
        // A chunk longer than its size, or a bare LF: not the framing hyper reads.
        assert!(dechunk(b"4\r\nhello\r\n0\r\n\r\n").is_none());
        assert!(dechunk(b"5\nhello\n0\n\n").is_none());
    }

    #[test]
    fn smuggling_shapes_are_named() {
        assert_eq!(
            get(&[
                ("Host", "a"),
                ("Content-Length", "5"),
                ("Content-Length", "6")
            ]),
            ["conflicting_content_length"]
        );
        assert_eq!(
            get(&[("Host", "a"), ("Content-Length", "5, 5")]),
            ["duplicate_content_length"]
        );
        for te in [
            "xchunked",
            "chunked, identity",
            "chunked\u{b}",
            "\"chunked\"",
            "chunked, chunked",
        ] {
            assert!(
                get(&[("Host", "a"), ("Transfer-Encoding", te)])
                    .contains(&"transfer_encoding_obfuscated"),
                "{te:?}"
            );
        }
        assert_eq!(
            get(&[("Host", "a"), ("Transfer-Encoding", "gzip")]),
            ["transfer_encoding_not_chunked"]
        );
        assert!(
            get(&[
                ("Host", "a"),
                ("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", "x")
            ])
            .contains(&"duplicate_transfer_encoding")
        );
        assert_eq!(
            names(&req(
                "POST",
                "/",
                "HTTP/1.0",
                &[("Transfer-Encoding", "chunked")]
            )),
            ["transfer_encoding_http10"]
        );
        assert!(
            get(&[("Host", "a"), ("Transfer_Encoding", "chunked")])
                .contains(&"framing_header_lookalike")
        );
        assert!(
            get(&[("Host", "a"), ("Transfer-Encoding ", "chunked")])
                .contains(&"invalid_header_name")
        );
    }

    #[test]
    fn real_clients_frame_their_requests_cleanly() {
        for headers in [
            vec![
                ("Host", "shop.example:8443"),
                ("Transfer-Encoding", "chunked"),
            ],
            vec![("Host", "a"), ("Transfer-Encoding", "gzip, chunked")],
            vec![
                ("Host", "a"),
                ("Content-Length", "42"),
                ("Connection", "keep-alive"),
            ],
            vec![
                ("Host", "[::1]:8080"),
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
            ],
            vec![("Host", "a"), ("Range", "bytes=0-1023")],
            vec![("Host", "a"), ("Range", "bytes=0-99, 200-299")],
            vec![("Host", "a"), ("Expect", "100-Continue")],
            vec![
                ("Host", "a"),
                ("Connection", "TE, close"),
                ("TE", "trailers"),
            ],
            vec![
                ("Host", "a"),
                ("Connection", "keep-alive, X-Hop"),
                ("X-Hop", "secret"),
            ],
            vec![("Host", "a"), ("X-Forwarded-Host", "shop.example.com")],
            vec![
                ("Host", "a"),
                ("Forwarded", "for=192.0.2.60;proto=https;host=shop.example"),
            ],
            vec![("Host", "a"), ("X-HTTP-Method-Override", "PATCH")],
        ] {
            assert!(get(&headers).is_empty(), "{headers:?}: {:?}", get(&headers));
        }
        assert!(
            names(&req(
                "GET",
                "http://shop.example/a",
                "HTTP/1.1",
                &[("Host", "Shop.Example:80")]
            ))
            .is_empty()
        );
        assert!(names(&req("GET", "/", "HTTP/2.0", &[])).is_empty());
        assert!(names(&req("GET", "/", "", &[])).is_empty());
    }

    #[test]
    fn framing_and_routing_abuse_is_named() {
        let cases: &[(HttpRequest, &str)] = &[
            (
                req("GET", "/", "HTTP/3.7", &[("Host", "a")]),
                "invalid_protocol",
            ),
            (
                req("TRACE", "/", "HTTP/1.1", &[("Host", "a")]),
                "diagnostic_method",
            ),
            (
                req("POST", "/?_method=TRACE", "HTTP/1.1", &[("Host", "a")]),
                "dangerous_method_override",
            ),
            (
                req(
                    "POST",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("X-HTTP-Method-Override", "FOO")],
                ),
                "dangerous_method_override",
            ),
            (
                req("GET", "/", "HTTP/1.1", &[("Host", "a"), ("Host", "b")]),
                "duplicate_host",
            ),
            (
                req("GET", "/", "HTTP/1.1", &[("Host", "a b/c@d")]),
                "invalid_host",
            ),
            (
                req(
                    "GET",
                    "http://internal.corp/admin",
                    "HTTP/1.1",
                    &[("Host", "shop")],
                ),
                "absolute_target_host_mismatch",
            ),
            (
                req(
                    "GET",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("X-Original-URL", "/admin")],
                ),
                "url_override_header",
            ),
            (
                req(
                    "GET",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("X-Forwarded-Host", "169.254.169.254")],
                ),
                "forwarded_host_abuse",
            ),
            (
                req(
                    "GET",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("X-Forwarded-Host", "evil.com/x?")],
                ),
                "forwarded_host_abuse",
            ),
            (
                req(
                    "GET",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("Proxy", "http://evil:8080")],
                ),
                "proxy_header",
            ),
            (
                req(
                    "GET",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("Expect", "<script>alert(1)</script>")],
                ),
                "invalid_expect",
            ),
            (
                req(
                    "GET",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("Range", "bytes=5-0,5-1")],
                ),
                "invalid_range",
            ),
            (
                req(
                    "GET",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("Connection", "close, X-Forwarded-For")],
                ),
                "connection_strips_header",
            ),
            (
                req(
                    "GET",
                    "/",
                    "HTTP/1.1",
                    &[("Host", "a"), ("Connection", "keep-alive, close")],
                ),
                "conflicting_connection",
            ),
            (
                req("GET", "/a%0d%0ab", "HTTP/1.1", &[("Host", "a")]),
                "control_char_in_path",
            ),
            (
                req("GET", "/", "HTTP/1.1", &[("Host", "a"), ("X-A", "x\r\n y")]),
                "header_line_break",
            ),
            (
                req("GET", "/", "HTTP/1.1", &[("Host", "a"), ("X-A", "x\u{1}y")]),
                "header_control_char",
            ),
        ];
        for (r, want) in cases {
            assert!(names(r).contains(want), "{want}: {:?} for {r:?}", names(r));
        }
        let many: Vec<String> = (0..12)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        let many = format!("bytes={}", many.join(","));
        // Sorted and apart: a PDF reader's byte serving, a warning only.
        assert_eq!(get(&[("Host", "a"), ("Range", &many)]), ["many_ranges"]);
        let overlapping: Vec<String> = (0..12).map(|i| format!("0-{i}")).collect();
        let overlapping = format!("bytes={}", overlapping.join(","));
        assert_eq!(
            get(&[("Host", "a"), ("Range", &overlapping)]),
            ["too_many_ranges"]
        );
        let lots: Vec<String> = (0..70)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        let lots = format!("bytes={}", lots.join(","));
        assert_eq!(get(&[("Host", "a"), ("Range", &lots)]), ["too_many_ranges"]);
        for ct in [
            "application/x-www-form-urlencoded;boundary=\"application/json\"",
            "application/x-www-form-urlencoded; charset=text/xml",
        ] {
            assert_eq!(
                get(&[("Host", "a"), ("Content-Type", ct)]),
                ["content_type_confusion"],
                "{ct}"
            );
        }
        assert_eq!(
            get(&[
                ("Host", "a"),
                ("Content-Type", "text/plain"),
                ("Content-Type", "application/json")
            ]),
            ["content_type_confusion"]
        );
        for ct in [
            "multipart/form-data; boundary=----WebKitFormBoundary12w4lszoxn26vnd",
            "application/vnd.mycompany.myapp.customer-v2+json",
            "text/html; charset=UTF-8",
            "application/soap+xml; charset=utf-8; action=\"urn:GetUser\"",
            "multipart/related; type=\"application/xop+xml\"; boundary=\"uuid:a1\"; start-info=\"application/soap+xml\"",
        ] {
            assert!(
                get(&[("Host", "a"), ("Content-Type", ct)]).is_empty(),
                "{ct}"
            );
        }
        let six = "bytes=1-10,11-20,21-30,31-40,41-50,51-60";
        assert_eq!(get(&[("Host", "a"), ("Range", six)]), ["many_ranges"]);
    }
}
