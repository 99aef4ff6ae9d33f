//! The request model and its bounded parser.
//!
//! Parsing turns a request into a flat list of [`Part`]s (path, arguments, cookies,
//! headers, ...) under hard limits, so a hostile request cannot make inspection slow or
//! unbounded; whatever exceeds a limit is cut and flagged as a protocol anomaly instead.

use std::net::IpAddr;

use crate::framing;
use crate::places;
use crate::split::{split_at, split_once_at};
use crate::transform::{bytes_to_text, push_bytes_as_text, url_decode_into};

mod kept;
#[cfg(test)]
mod tests_kept;

use kept::{Kept, Scratch, Spare};

/// Most parts one request yields; more are dropped and flagged.
pub const MAX_PARTS: usize = 1_000;
/// Longest value inspected (bytes); longer values are truncated and flagged.
pub const MAX_VALUE_LEN: usize = 64 * 1024;
/// Deepest JSON nesting descended into; deeper values are flagged and skipped.
pub const MAX_JSON_DEPTH: usize = 32;
/// Most body bytes inspected.
pub const MAX_BODY: usize = 1024 * 1024;
/// More arguments than this is a protocol anomaly (CRS default).
pub const MAX_ARGS: usize = 255;

/// An HTTP request as the engine sees it, independent of any server framework.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request target as sent: origin form (`/a?b`) or absolute form (`http://h/a?b`).
    pub uri: String,
    /// Protocol version, e.g. `HTTP/1.1`.
    pub protocol: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Vec<u8>,
    /// Client address when known, carried for callers that report on it.
    pub client_ip: Option<IpAddr>,
}

/// Where in the request a part came from; rule targets select on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// The URL-decoded path.
    Path,
    /// The raw (undecoded) request target, for rules about encodings.
    UriRaw,
    /// The raw query string.
    QueryString,
    /// A query argument's name (decoded).
    QueryArgName,
    /// A query argument's value (decoded).
    QueryArgValue,
    /// A body argument's name (form field, JSON path, multipart field).
    BodyArgName,
    /// A body argument's value.
    BodyArgValue,
    /// A cookie name.
    CookieName,
    /// A cookie value.
    CookieValue,
    /// A header name.
    HeaderName,
    /// A header value.
    HeaderValue,
    /// The raw body (up to [`MAX_BODY`]).
    Body,
    /// The method.
    Method,
    /// The protocol version.
    Protocol,
    /// A protocol anomaly found while parsing; the value is the anomaly's name.
    Anomaly,
    /// One URL-decoded path segment (`/a/b%27c` gives `a` and `b'c`), so payloads placed
    /// in REST-style paths meet the argument rules.
    PathSegment,
    /// The value of a header outside the always-inspected set (every header but
    /// credentials), for the injection rules that make sense in any header.
    OtherHeaderValue,
}

impl Location {
    /// Every location, in declaration order (`ALL[l as usize] == l`), so per-location
    /// tables can be built once and indexed by a part's location.
    pub const ALL: [Location; 17] = [
        Location::Path,
        Location::UriRaw,
        Location::QueryString,
        Location::QueryArgName,
        Location::QueryArgValue,
        Location::BodyArgName,
        Location::BodyArgValue,
        Location::CookieName,
        Location::CookieValue,
        Location::HeaderName,
        Location::HeaderValue,
        Location::Body,
        Location::Method,
        Location::Protocol,
        Location::Anomaly,
        Location::PathSegment,
        Location::OtherHeaderValue,
    ];

    /// A stable name for reports and evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::UriRaw => "uri_raw",
            Location::QueryString => "query_string",
            Location::QueryArgName => "query_arg_name",
            Location::QueryArgValue => "query_arg",
            Location::BodyArgName => "body_arg_name",
            Location::BodyArgValue => "body_arg",
            Location::CookieName => "cookie_name",
            Location::CookieValue => "cookie",
            Location::HeaderName => "header_name",
            Location::HeaderValue => "header",
            Location::Body => "body",
            Location::Method => "method",
            Location::Protocol => "protocol",
            Location::Anomaly => "anomaly",
            Location::PathSegment => "path_segment",
            Location::OtherHeaderValue => "other_header",
        }
    }
}

/// One inspectable piece of a request, with where it came from and under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Where the part came from.
    pub location: Location,
    /// Its name (argument, cookie, header name or JSON path); empty when it has none.
    pub name: String,
    /// Its value (for name locations, the name again).
    pub value: String,
}

/// A request split into bounded parts, plus the decoded path used by exclusions.
///
/// Dropped, it gives its buffers to the next [`parse`] on the same thread, so a warm
/// thread parses without allocating a `String` per part.
#[derive(Debug, Clone, Default)]
pub struct ParsedRequest {
    /// The parts, at most [`MAX_PARTS`] plus anomaly markers.
    pub parts: Vec<Part>,
    /// The URL-decoded path, so exclusions can match on a path prefix.
    pub path: String,
}

impl Drop for ParsedRequest {
    fn drop(&mut self) {
        if self.parts.capacity() > 0 || self.path.capacity() > 0 {
            Kept::recycle(
                std::mem::take(&mut self.parts),
                std::mem::take(&mut self.path),
            );
        }
    }
}

/// Headers inspected at paranoia 1–2; at 3 and above every header is inspected.
const SELECTED_HEADERS: &[&str] = &[
    "user-agent",
    "referer",
    "cookie",
    "x-forwarded-for",
    "content-type",
];

/// Headers whose values are credentials (or parsed elsewhere): never inspected as other
/// headers, so tokens are not mistaken for payloads.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
    "REPORT",
    "MKCALENDAR",
    "ACL",
    "MKACTIVITY",
    "CHECKOUT",
    "MERGE",
];

/// Whether `m` is a method the parser knows (standard, WebDAV, CalDAV, DeltaV).
fn is_known_method(m: &str) -> bool {
    KNOWN_METHODS.contains(&m)
}

struct Builder {
    parts: Vec<Part>,
    /// Parts of earlier parses on this thread, refilled instead of built new.
    spare: Spare,
    /// Anomaly names with what showed them (empty when the name says it all).
    anomalies: Vec<(&'static str, String)>,
    args: usize,
}

impl Builder {
    fn anomaly(&mut self, name: &'static str) {
        self.anomaly_with(name, String::new());
    }

    /// Flags an anomaly once, keeping the first evidence for it.
    fn anomaly_with(&mut self, name: &'static str, detail: String) {
        if !self.anomalies.iter().any(|(n, _)| *n == name) {
            self.anomalies.push((name, detail));
        }
    }

    /// Adds a part, its name and value copied into a kept part's buffers and cut to
    /// [`MAX_VALUE_LEN`] bytes (flagged); past [`MAX_PARTS`] it is dropped (flagged).
    fn push(&mut self, location: Location, name: &str, value: &str) {
        if self.parts.len() >= MAX_PARTS {
            self.anomaly("too_many_parts");
            return;
        }
        let (value, value_cut) = cut(value, MAX_VALUE_LEN);
        let (name, name_cut) = cut(name, MAX_VALUE_LEN);
        if value_cut || name_cut {
            self.anomaly("value_too_long");
        }
        let mut part = self.spare.part(location);
        part.name.push_str(name);
        part.value.push_str(value);
        self.parts.push(part);
    }

    /// An argument: its name as a part, then its value (and what the value carries).
    fn arg(&mut self, name_loc: Location, value_loc: Location, name: &str, value: &str) {
        self.args += 1;
        if self.args > MAX_ARGS {
            self.anomaly("too_many_args");
        }
        self.push(name_loc, name, name);
        let last = name.rsplit(['.', ']']).next().unwrap_or(name);
        // The length first: the case-blind compare is a call, and most names are not
        // five bytes long.
        if last.len() == 5
            && last.eq_ignore_ascii_case("query")
            && places::looks_like_graphql(value)
        {
            for (n, v) in places::graphql_strings(value) {
                self.push_decoded(value_loc, &n, &v);
            }
        }
        self.push_decoded(value_loc, name, value);
    }

    /// Pushes a value and, when it is base64 of text, the text it carries too (same
    /// location and name, so argument rules and exclusions treat it alike).
    fn push_decoded(&mut self, location: Location, name: &str, value: &str) {
        let inner = places::base64_text(value);
        self.push(location, name, value);
        if let Some(text) = inner {
            self.push(location, name, &text);
        }
    }
}

/// `s` cut to at most `max` bytes on a char boundary, and whether it was cut.
fn cut(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s.get(..end).unwrap_or(""), true)
}

/// Cuts a string to at most `max` bytes on a char boundary.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Splits a request into bounded parts; `paranoia` ≥ 3 inspects every header.
///
/// The parts' buffers are those of parses dropped earlier on this thread when there
/// are some (`request/kept.rs`): the result is the same, only the allocations differ.
pub fn parse(req: &HttpRequest, paranoia: u8) -> ParsedRequest {
    let Kept {
        spare,
        mut list,
        mut path,
        mut scratch,
    } = Kept::take();
    list.clear();
    if list.capacity() == 0 {
        // Room for a typical request's parts, so the list is not regrown three times.
        // (Sizing it from the request's argument and header counts was measured and is
        // dearer: one allocation over the allocators' small-size classes costs more than
        // the regrowths it saves; docs/BENCHMARKS.md, `parse2`.)
        list.reserve(16);
    }
    path.clear();
    let mut b = Builder {
        parts: list,
        spare,
        anomalies: Vec::new(),
        args: 0,
    };
    b.push(Location::Method, "", &req.method);
    b.push(Location::Protocol, "", &req.protocol);
    if !is_known_method(&req.method) {
        b.anomaly_with("unknown_method", req.method.chars().take(200).collect());
    }
    for (name, detail) in framing::check(req, is_known_method) {
        b.anomaly_with(name, detail);
    }

    // Request target: strip scheme and authority of absolute form.
    if !authority_is_valid(&req.uri) {
        b.anomaly("invalid_request_target");
    }
    let target = strip_authority(&req.uri);
    let target = target.as_ref();
    b.push(Location::UriRaw, "", target);
    let (raw_path, query) = match split_once_at(target, b'?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let raw_path = split_at(raw_path, b'#').next().unwrap_or(raw_path);
    path.push_str(url_decode_into(
        raw_path,
        &mut scratch.bytes,
        &mut scratch.name,
    ));
    b.push(Location::Path, "", &path);
    for segment in split_at(raw_path, b'/') {
        let segment = url_decode_into(segment, &mut scratch.bytes, &mut scratch.name);
        // Plain names (`users`, `v2`, `app.min.js`) carry nothing the rules look for.
        let plain = segment
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'~'));
        if !plain || places::base64_text(segment).is_some() {
            b.push_decoded(Location::PathSegment, "", segment);
        }
    }
    if let Some(q) = query {
        let q = split_at(q, b'#').next().unwrap_or(q);
        b.push(Location::QueryString, "", q);
        parse_urlencoded(
            &mut b,
            &mut scratch,
            q,
            Location::QueryArgName,
            Location::QueryArgValue,
        );
    }

    // Headers.
    let mut host = false;
    let mut content_length: Option<&str> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut content_type = std::mem::take(&mut scratch.content_type);
    content_type.clear();
    let mut lname = std::mem::take(&mut scratch.lname);
    for (name, value) in &req.headers {
        lname.clear();
        lname.push_str(name);
        lname.make_ascii_lowercase();
        match lname.as_str() {
            "host" => host = true,
            "content-length" => content_length = Some(value.as_str()),
            "transfer-encoding" => {
                transfer_encoding = true;
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
            }
            "content-type" => {
                content_type.clear();
                content_type.push_str(value);
                content_type.make_ascii_lowercase();
            }
            "cookie" => parse_cookies(&mut b, value),
            _ => {}
        }
        // Names are always inspected (cheap, and scanners announce themselves there);
        // values of unselected headers only at paranoia 3 and above.
        let selected = SELECTED_HEADERS.contains(&lname.as_str());
        let inspect_value = paranoia >= 3 || selected;
        let inspect_other = !selected && !CREDENTIAL_HEADERS.contains(&lname.as_str());
        b.push(Location::HeaderName, &lname, &lname);
        if inspect_value {
            b.push(Location::HeaderValue, &lname, value);
        }
        if inspect_other {
            b.push_decoded(Location::OtherHeaderValue, &lname, value);
        }
        if value.contains('\0') || name.contains('\0') {
            b.anomaly("null_byte");
        }
    }
    scratch.lname = lname;
    // The cheap test first: log lines and proxied requests nearly all have a `Host`.
    if !host && req.protocol.eq_ignore_ascii_case("HTTP/1.1") {
        b.anomaly("missing_host");
    }
    if let Some(cl) = content_length {
        if cl.trim().is_empty() || !cl.trim().bytes().all(|c| c.is_ascii_digit()) {
            b.anomaly("invalid_content_length");
        }
        if transfer_encoding {
            b.anomaly("content_length_and_transfer_encoding");
        }
    }

    // Body.
    if !req.body.is_empty() {
        parse_body(&mut b, &mut scratch, req, chunked, &content_type);
    }
    scratch.content_type = content_type;

    let Builder {
        mut parts,
        mut spare,
        anomalies,
        ..
    } = b;
    // The value is the anomaly's name (what rules match); the name is what showed it,
    // so a finding explains itself (`transfer-encoding: xchunked`).
    for (a, detail) in anomalies {
        let mut part = spare.part(Location::Anomaly);
        part.name
            .push_str(if detail.is_empty() { a } else { &detail });
        part.value.push_str(a);
        parts.push(part);
    }
    Kept::put(spare, scratch);
    ParsedRequest { parts, path }
}

/// The body's parts: its arguments by content type, then the body itself.
fn parse_body(
    b: &mut Builder,
    scratch: &mut Scratch,
    req: &HttpRequest,
    chunked: bool,
    content_type: &str,
) {
    let body_bytes = match req.body.get(..MAX_BODY) {
        Some(slice) if req.body.len() > MAX_BODY => {
            b.anomaly("body_too_long");
            slice
        }
        _ => req.body.as_slice(),
    };
    // With `Transfer-Encoding: chunked` the body is taken as sent, in its chunked
    // framing (the proxy frames what hyper read the same way): it is read through
    // its chunks; bytes after the last chunk are a request smuggled in it, and a
    // body that is not valid chunked framing (a size that is not hex, a chunk that
    // does not end where its size says) is one servers would split differently.
    let unchunked = if chunked {
        framing::dechunk(body_bytes)
    } else {
        None
    };
    // The arguments come from the dechunked data when there is some, else from the
    // body as sent: one text of it serves both the arguments and the body part.
    let dechunked = match unchunked {
        Some((data, rest)) => {
            if !rest.is_empty() {
                b.anomaly_with(
                    "data_after_last_chunk",
                    bytes_to_text(rest.iter().take(200).copied().collect()),
                );
            }
            Some(bytes_to_text(data))
        }
        None => {
            if chunked && req.body.len() <= MAX_BODY {
                b.anomaly_with(
                    "invalid_chunked_body",
                    bytes_to_text(body_bytes.iter().take(80).copied().collect()),
                );
            }
            None
        }
    };
    // The body part is filled first (its text is what the arguments are read from)
    // and added after them.
    let mut body = b.spare.body();
    push_bytes_as_text(body_bytes, &mut body.value);
    let parsed_body = dechunked.as_deref().unwrap_or(&body.value);
    if content_type.contains("json") {
        parse_json(b, parsed_body);
    } else if content_type.contains("xml") {
        for (name, value) in places::xml_values(parsed_body) {
            b.arg(Location::BodyArgName, Location::BodyArgValue, &name, &value);
        }
    } else if content_type.contains("graphql") {
        for (name, value) in places::graphql_strings(parsed_body) {
            b.arg(Location::BodyArgName, Location::BodyArgValue, &name, &value);
        }
    } else if content_type.starts_with("multipart/form-data") {
        parse_multipart(b, parsed_body, content_type);
    } else if content_type.is_empty() || content_type.contains("x-www-form-urlencoded") {
        parse_urlencoded(
            b,
            scratch,
            parsed_body,
            Location::BodyArgName,
            Location::BodyArgValue,
        );
    }
    // The raw body is bounded by MAX_BODY, not by the per-value limit.
    b.parts.push(body);
}

/// The origin-form target (`/path?query`) of a request target: absolute form loses its
/// scheme and authority. When the port's digits are followed by other characters
/// (`http://localhost:8080.old`, `:8080~/x`: CSIC 2010's probes for backup files, and
/// what such a probe means), those characters start the path (`/.old`), so rules on
/// the file name see them — as the request reaches ModSecurity through
/// `shared/peers/replay.py`. Every inspection path (built-in rules and SecLang) uses this.
pub(crate) fn strip_authority(uri: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if !is_absolute_http(uri) {
        return Cow::Borrowed(uri);
    }
    let after = uri.find("://").and_then(|i| uri.get(i + 3..)).unwrap_or("");
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let authority = after.get(..end).unwrap_or("");
    if let Some(colon) = authority.rfind(':') {
        let port = authority.get(colon + 1..).unwrap_or("");
        let digits = port.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && digits < port.len() && !port.contains([']', '@']) {
            let rest = after.get(colon + 1 + digits..).unwrap_or("");
            return Cow::Owned(format!("/{}", rest.trim_start_matches('/')));
        }
    }
    match after.get(end..) {
        Some(p) if !p.is_empty() => Cow::Borrowed(p),
        _ => Cow::Borrowed("/"),
    }
}

/// Whether a request target is in absolute form with an `http` or `https` scheme (any
/// case). As the checks have always read it: the target's first 8 bytes lowercased
/// start with `http://` or `https://`, so a target shorter than 8 bytes never is.
pub(crate) fn is_absolute_http(uri: &str) -> bool {
    uri.get(..8).is_some_and(|head| {
        head.get(..7)
            .is_some_and(|h| h.eq_ignore_ascii_case("http://"))
            || head.eq_ignore_ascii_case("https://")
    })
}

/// Checks the authority of an absolute-form target is `host[:port]` (or `[v6][:port]`,
/// optionally with userinfo); origin-form targets must start with `/` (or be `*`).
fn authority_is_valid(uri: &str) -> bool {
    if !is_absolute_http(uri) {
        return uri.starts_with('/') || uri == "*" || uri.is_empty();
    }
    let after = uri.find("://").and_then(|i| uri.get(i + 3..)).unwrap_or("");
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = after.get(..end).unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (
                h,
                p.strip_prefix(':').map(Some).unwrap_or(if p.is_empty() {
                    None
                } else {
                    Some("x")
                }),
            ),
            None => return false,
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()));
    host_ok && port_ok
}

fn parse_urlencoded(
    b: &mut Builder,
    scratch: &mut Scratch,
    s: &str,
    name_loc: Location,
    value_loc: Location,
) {
    for pair in split_at(s, b'&') {
        if pair.is_empty() {
            continue;
        }
        if b.parts.len() >= MAX_PARTS {
            b.anomaly("too_many_parts");
            b.args += s.split('&').count();
            if b.args > MAX_ARGS {
                b.anomaly("too_many_args");
            }
            return;
        }
        let (n, v) = split_once_at(pair, b'=').unwrap_or((pair, ""));
        let n = url_decode_into(n, &mut scratch.bytes, &mut scratch.name);
        let v = url_decode_into(v, &mut scratch.bytes, &mut scratch.value);
        if n.contains('\0') || v.contains('\0') {
            b.anomaly("null_byte");
        }
        b.arg(name_loc, value_loc, n, v);
    }
}

fn parse_cookies(b: &mut Builder, header: &str) {
    for c in header.split(';') {
        let c = c.trim();
        if c.is_empty() {
            continue;
        }
        let (n, v) = c.split_once('=').unwrap_or((c, ""));
        b.push(Location::CookieName, n, n);
        b.push_decoded(Location::CookieValue, n, v);
    }
}

fn parse_multipart(b: &mut Builder, body: &str, content_type: &str) {
    let Some(boundary) = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|s| s.trim_matches('"'))
        .filter(|s| !s.is_empty())
    else {
        b.anomaly("multipart_without_boundary");
        return;
    };
    // Boundaries are case sensitive, but the content type was lowercased; search case
    // insensitively by lowering the body copy only for splitting positions.
    let delimiter = format!("--{boundary}");
    let lower = body.to_ascii_lowercase();
    let mut starts: Vec<usize> = lower.match_indices(&delimiter).map(|(i, _)| i).collect();
    starts.push(body.len());
    for w in starts.windows(2) {
        let (Some(&s), Some(&e)) = (w.first(), w.get(1)) else {
            continue;
        };
        let Some(section) = body.get(s + delimiter.len()..e) else {
            continue;
        };
        let Some((head, content)) = section
            .split_once("\r\n\r\n")
            .or_else(|| section.split_once("\n\n"))
        else {
            continue;
        };
        let mut name = None;
        let mut filename = None;
        for line in head.lines() {
            if line.to_ascii_lowercase().starts_with("content-disposition") {
                name = header_param(line, "name");
                filename = header_param(line, "filename");
            }
        }
        let Some(name) = name else { continue };
        let value = match filename {
            Some(f) => f,
            None => content
                .strip_suffix("\r\n")
                .or_else(|| content.strip_suffix('\n'))
                .unwrap_or(content)
                .to_string(),
        };
        b.arg(Location::BodyArgName, Location::BodyArgValue, &name, &value);
    }
}

fn header_param(line: &str, key: &str) -> Option<String> {
    line.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Walks JSON iteratively (no recursion, so any depth is safe), emitting every string
/// leaf with its path as name, and object keys as argument names.
fn parse_json(b: &mut Builder, s: &str) {
    enum Frame {
        Obj { key: String, expect_key: bool },
        Arr { index: usize },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut chars = s.char_indices().peekable();
    let path_of = |stack: &[Frame]| {
        let mut p = String::new();
        for f in stack {
            match f {
                Frame::Obj { key, .. } => {
                    if !p.is_empty() {
                        p.push('.');
                    }
                    p.push_str(key);
                }
                Frame::Arr { index } => {
                    p.push('[');
                    p.push_str(&index.to_string());
                    p.push(']');
                }
            }
        }
        p
    };
    while let Some((_, c)) = chars.next() {
        if b.parts.len() >= MAX_PARTS {
            b.anomaly("too_many_parts");
            return;
        }
        match c {
            '{' => {
                stack.push(Frame::Obj {
                    key: String::new(),
                    expect_key: true,
                });
                if stack.len() > MAX_JSON_DEPTH {
                    b.anomaly("json_too_deep");
                }
            }
            '[' => {
                stack.push(Frame::Arr { index: 0 });
                if stack.len() > MAX_JSON_DEPTH {
                    b.anomaly("json_too_deep");
                }
            }
            '}' | ']' => {
                stack.pop();
            }
            ',' => match stack.last_mut() {
                Some(Frame::Arr { index }) => *index += 1,
                Some(Frame::Obj { expect_key, .. }) => *expect_key = true,
                None => {}
            },
            '"' => {
                let mut text = String::new();
                let mut too_long = false;
                while let Some((_, ch)) = chars.next() {
                    let decoded = match ch {
                        '"' => break,
                        '\\' => match chars.next().map(|(_, e)| e) {
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some('r') => '\r',
                            Some('b') => '\u{8}',
                            Some('f') => '\u{c}',
                            Some('u') => {
                                let hex: String = (0..4)
                                    .filter_map(|_| chars.next())
                                    .map(|(_, h)| h)
                                    .collect();
                                u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .and_then(char::from_u32)
                                    .unwrap_or('\u{FFFD}')
                            }
                            Some(other) => other,
                            None => break,
                        },
                        other => other,
                    };
                    if text.len() < MAX_VALUE_LEN {
                        text.push(decoded);
                    } else {
                        too_long = true;
                    }
                }
                if too_long {
                    b.anomaly("value_too_long");
                }
                let deep = stack.len() > MAX_JSON_DEPTH;
                match stack.last_mut() {
                    Some(Frame::Obj { key, expect_key }) if *expect_key => {
                        *expect_key = false;
                        if !deep {
                            b.push(Location::BodyArgName, &text, &text);
                        }
                        *key = text;
                    }
                    _ => {
                        if !deep {
                            let path = path_of(&stack);
                            let name = if path.is_empty() {
                                "$".to_string()
                            } else {
                                path
                            };
                            b.arg(Location::BodyArgName, Location::BodyArgValue, &name, &text);
                            // arg() also pushed the path as a name part; names of leaves
                            // are JSON paths, so keep them.
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as the tests write it (the body as text or bytes).
    pub(super) fn req(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: headers
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            body: body.as_ref().to_vec(),
            client_ip: None,
        }
    }

    #[test]
    fn each_header_gives_its_parts_in_order_named_lowercase() {
        // A selected header, an ordinary one (with base64 text), a credential; at
        // paranoia 1 and 3 (every header's value inspected).
        let r = req(
            "GET",
            "/",
            &[
                ("User-Agent", "curl/8"),
                ("X-Note", "aGVsbG8gd29ybGQgYWdhaW4="),
                ("Authorization", "Bearer x"),
            ],
            "",
        );
        let headers = |paranoia| -> Vec<(Location, String, String)> {
            parse(&r, paranoia)
                .parts
                .iter()
                .filter(|p| {
                    matches!(
                        p.location,
                        Location::HeaderName | Location::HeaderValue | Location::OtherHeaderValue
                    )
                })
                .map(|p| (p.location, p.name.clone(), p.value.clone()))
                .collect()
        };
        let part = |l, n: &str, v: &str| (l, n.to_string(), v.to_string());
        let b64 = "aGVsbG8gd29ybGQgYWdhaW4=";
        assert_eq!(
            headers(1),
            vec![
                part(Location::HeaderName, "user-agent", "user-agent"),
                part(Location::HeaderValue, "user-agent", "curl/8"),
                part(Location::HeaderName, "x-note", "x-note"),
                part(Location::OtherHeaderValue, "x-note", b64),
                part(Location::OtherHeaderValue, "x-note", "hello world again"),
                part(Location::HeaderName, "authorization", "authorization"),
            ]
        );
        assert_eq!(
            headers(3),
            vec![
                part(Location::HeaderName, "user-agent", "user-agent"),
                part(Location::HeaderValue, "user-agent", "curl/8"),
                part(Location::HeaderName, "x-note", "x-note"),
                part(Location::HeaderValue, "x-note", b64),
                part(Location::OtherHeaderValue, "x-note", b64),
                part(Location::OtherHeaderValue, "x-note", "hello world again"),
                part(Location::HeaderName, "authorization", "authorization"),
                part(Location::HeaderValue, "authorization", "Bearer x"),
            ]
        );
    }

    fn find<'a>(p: &'a ParsedRequest, loc: Location, name: &str) -> Option<&'a str> {
        p.parts
            .iter()
            .find(|x| {
                x.location == loc
                    && (x.name == name || (loc == Location::Anomaly && x.value == name))
            })
            .map(|x| x.value.as_str())
    }

    #[test]
    fn parses_query_cookies_headers() {
        let r = req(
            "GET",
            "http://h:8080/a%20b/c?x=1+2&y=%3Cs%3E",
            &[("Host", "h"), ("Cookie", "sid=abc; t=1"), ("Accept", "x")],
            "",
        );
        let p = parse(&r, 1);
        assert_eq!(p.path, "/a b/c");
        assert_eq!(find(&p, Location::QueryArgValue, "x"), Some("1 2"));
        assert_eq!(find(&p, Location::QueryArgValue, "y"), Some("<s>"));
        assert_eq!(find(&p, Location::CookieValue, "sid"), Some("abc"));
        assert_eq!(find(&p, Location::HeaderValue, "accept"), None);
        assert!(find(&parse(&r, 3), Location::HeaderValue, "accept").is_some());
        assert!(!p.parts.iter().any(|x| x.location == Location::Anomaly));
    }

    #[test]
    fn parses_json_paths() {
        let r = req(
            "POST",
            "/api",
            &[("Host", "h"), ("Content-Type", "application/json")],
            r#"{"a":{"b":["x","y\"z"]},"c":1,"d":"\u003c"}"#,
        );
        let p = parse(&r, 1);
        assert_eq!(find(&p, Location::BodyArgValue, "a.b[0]"), Some("x"));
        assert_eq!(find(&p, Location::BodyArgValue, "a.b[1]"), Some("y\"z"));
        assert_eq!(find(&p, Location::BodyArgValue, "d"), Some("<"));
    }

    #[test]
    fn parses_multipart() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.php\"\r\n\r\n<?php ?>\r\n--XyZ--\r\n";
        let r = req(
            "POST",
            "/u",
            &[
                ("Host", "h"),
                ("Content-Type", "multipart/form-data; boundary=XyZ"),
            ],
            body,
        );
        let p = parse(&r, 1);
        assert_eq!(find(&p, Location::BodyArgValue, "f"), Some("hello"));
        assert_eq!(find(&p, Location::BodyArgValue, "up"), Some("a.php"));
    }

    #[test]
    fn flags_protocol_anomalies() {
        let r = req(
            "FOO",
            "/",
            &[("Content-Length", "abc"), ("Transfer-Encoding", "chunked")],
            "",
        );
        let p = parse(&r, 1);
        for a in [
            "unknown_method",
            "missing_host",
            "invalid_content_length",
            "content_length_and_transfer_encoding",
        ] {
            assert!(find(&p, Location::Anomaly, a).is_some(), "{a}");
        }
    }

    #[test]
    fn request_target_validation() {
        assert!(authority_is_valid("http://localhost:8080/a"));
        assert!(authority_is_valid("https://[::1]:443/"));
        assert!(authority_is_valid("http://user@host"));
        assert!(authority_is_valid("/plain?x=1"));
        assert!(!authority_is_valid("http://localhost:8080.old"));
        assert_eq!(strip_authority("http://localhost:8080.old"), "/.old");
        assert_eq!(
            strip_authority("http://localhost:8080.BAK/x?a=1"),
            "/.BAK/x?a=1"
        );
        assert_eq!(strip_authority("http://localhost:8080/a?b"), "/a?b");
        assert_eq!(strip_authority("http://h?x=1"), "?x=1");
        assert_eq!(strip_authority("http://[::1]:8080/a"), "/a");
        assert_eq!(strip_authority("http://u:1x@h/a"), "/a");
        assert_eq!(strip_authority("https://h"), "/");
        assert_eq!(strip_authority("/plain"), "/plain");
        assert!(!authority_is_valid("http://localhost:8080http://x:9090/a"));
        assert!(!authority_is_valid("http://host:/"));
        assert!(!authority_is_valid("relative/path"));
    }

    #[test]
    fn absolute_targets_are_told_as_the_lowercased_head_told_them() {
        let by_copy = |uri: &str| {
            let l = uri
                .get(..8)
                .map(str::to_ascii_lowercase)
                .unwrap_or_default();
            l.starts_with("http://") || l.starts_with("https://")
        };
        for uri in [
            "",
            "/a",
            "*",
            "http://",
            "http://a",
            "HTTP://a",
            "HtTpS://x/y",
            "https:/",
            "https://",
            "https:x//",
            "http:/é",
            "httpé://",
            "http://é",
            "https://é",
            "ftp://abc",
            "http:\\\\x",
            "hTtP://h:8080/",
            "https:/a/b",
        ] {
            assert_eq!(is_absolute_http(uri), by_copy(uri), "{uri:?}");
        }
    }

    #[test]
    fn a_chunked_form_body_gives_its_dechunked_arguments_and_the_body_as_sent() {
        let sent = "7\r\na=1&b=2\r\n0\r\n\r\n";
        let r = req(
            "POST",
            "/f",
            &[
                ("Host", "h"),
                ("Transfer-Encoding", "chunked"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            sent,
        );
        let p = parse(&r, 1);
        assert_eq!(find(&p, Location::BodyArgValue, "a"), Some("1"));
        assert_eq!(find(&p, Location::BodyArgValue, "b"), Some("2"));
        assert_eq!(find(&p, Location::Body, ""), Some(sent));
        assert!(!p.parts.iter().any(|x| x.location == Location::Anomaly));
    }

    #[test]
    fn bounds_hold() {
        let big = "a".repeat(100_000);
        let r = req("GET", &format!("/?q={big}"), &[("Host", "h")], "");
        let p = parse(&r, 1);
        assert_eq!(
            find(&p, Location::QueryArgValue, "q").map(str::len),
            Some(MAX_VALUE_LEN)
        );
        assert!(find(&p, Location::Anomaly, "value_too_long").is_some());

        let many: Vec<String> = (0..10_000).map(|i| format!("p{i}=v")).collect();
        let r = req(
            "GET",
            &format!("/?{}", many.join("&")),
            &[("Host", "h")],
            "",
        );
        let p = parse(&r, 1);
        assert!(p.parts.len() <= MAX_PARTS + 10);
        assert!(find(&p, Location::Anomaly, "too_many_args").is_some());

        let deep = format!("{}\"x\"{}", "[".repeat(10_000), "]".repeat(10_000));
        let r = req(
            "POST",
            "/",
            &[("Host", "h"), ("Content-Type", "application/json")],
            &deep,
        );
        let p = parse(&r, 1);
        assert!(find(&p, Location::Anomaly, "json_too_deep").is_some());
        assert!(!p.parts.iter().any(|x| x.location == Location::BodyArgValue));
    }
}
