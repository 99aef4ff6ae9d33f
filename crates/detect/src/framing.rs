//! Protocol checks on how a request is framed and routed (issue 17, protocol attacks):
//! the shapes request smuggling, desynchronisation, cache poisoning and routing bypasses
//! are made of. They read the raw header list (names as sent, duplicates kept, raw
//! `Content-Length` / `Transfer-Encoding` values), the method, the version and the
//! target, and report named anomalies that the `anomalies` rules of `protocol.toml`
//! score. Every check here is about the technique (an ambiguous length, a coding no
//! server agrees on, a header that re-routes the request), not about a payload list.

use crate::request::HttpRequest;
use crate::split::{split_at, split_once_at};
use crate::transform::{any_byte, url_decode};

/// One anomaly: its name (what the rules match) and the offending text (evidence).
pub(crate) type Found = (&'static str, String);

/// Protocol versions a client may send (HTTP/3 as nginx logs it, too): `HTTP/` in any
/// case, then one of these numbers (digits and `.` have no case, so they are compared
/// as written).
const VERSION_NUMBERS: &[&[u8]] = &[b"1.0", b"1.1", b"2", b"2.0", b"3", b"3.0"];

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
    let h = Headers::new(&req.headers);
    version(req, &mut out);
    method(req, &h, known_method, &mut out);
    header_syntax(req, &mut out);
    lengths(req, &h, &mut out);
    host(req, &h, &mut out);
    routing_headers(&h, &mut out);
    ranges(&h, &mut out);
    connection(&h, &mut out);
    target(req, &mut out);
    content_type(&h, &mut out);
    out
}

/// What a header's name makes it to these checks. Every check used to look for its
/// headers in the whole list, comparing each name again; the names are now read once.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// None of those below (most headers).
    Other,
    ContentType,
    ContentLength,
    TransferEncoding,
    Host,
    Range,
    RequestRange,
    Connection,
    /// Tunnels a method past a front that filters methods.
    MethodOverride,
    /// Re-routes a request inside some frameworks (IIS URL Rewrite, Symfony, Zend): a
    /// client that sends one asks the application to serve another path than the one
    /// the proxy and its access rules saw.
    UrlOverride,
    /// Names the host a request was meant for, which applications use to build
    /// absolute links (password-reset mails) and caches key on.
    ForwardedHost,
    Forwarded,
    Proxy,
    Expect,
}

impl Kind {
    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The kind of header `name` is, compared case-blind on its bytes (no lowercased copy):
/// the length picks the one to three names it can be.
fn classify(name: &str) -> Kind {
    let is = |s: &str| name.eq_ignore_ascii_case(s);
    match name.len() {
        4 if is("host") => Kind::Host,
        5 if is("range") => Kind::Range,
        5 if is("proxy") => Kind::Proxy,
        6 if is("expect") => Kind::Expect,
        6 if is("x-host") => Kind::ForwardedHost,
        9 if is("forwarded") => Kind::Forwarded,
        10 if is("connection") => Kind::Connection,
        12 if is("content-type") => Kind::ContentType,
        13 if is("request-range") => Kind::RequestRange,
        13 if is("x-http-method") => Kind::MethodOverride,
        13 if is("x-rewrite-url") => Kind::UrlOverride,
        14 if is("content-length") => Kind::ContentLength,
        14 if is("x-original-url") || is("x-override-url") => Kind::UrlOverride,
        16 if is("x-forwarded-host") => Kind::ForwardedHost,
        17 if is("transfer-encoding") => Kind::TransferEncoding,
        17 if is("x-method-override") => Kind::MethodOverride,
        18 if is("x-forwarded-server") => Kind::ForwardedHost,
        21 if is("x-http-destinationurl") => Kind::UrlOverride,
        22 if is("x-http-method-override") => Kind::MethodOverride,
        _ => Kind::Other,
    }
}

/// Kinds kept on the stack; a request with more headers has the rest classified again
/// when asked (a rare request, and the answer is the same).
const KEPT_KINDS: usize = 32;

/// The request's headers with each name classified once, and which kinds occur, so a
/// check whose headers are absent (nearly every check on nearly every request) costs
/// one bit test.
struct Headers<'a> {
    list: &'a [(String, String)],
    kinds: [Kind; KEPT_KINDS],
    present: u16,
}

impl<'a> Headers<'a> {
    fn new(list: &'a [(String, String)]) -> Self {
        let mut kinds = [Kind::Other; KEPT_KINDS];
        let mut present = 0;
        for (i, (name, _)) in list.iter().enumerate() {
            let kind = classify(name);
            if let Some(slot) = kinds.get_mut(i) {
                *slot = kind;
            }
            present |= kind.bit();
        }
        Self {
            list,
            kinds,
            present,
        }
    }

    fn has(&self, kind: Kind) -> bool {
        self.present & kind.bit() != 0
    }

    /// The kind of the `i`th header, whose name is `name`.
    #[inline]
    fn kind_at(&self, i: usize, name: &str) -> Kind {
        self.kinds.get(i).copied().unwrap_or_else(|| classify(name))
    }

    /// Every header with its kind, in order.
    fn all(&self) -> impl Iterator<Item = (Kind, &'a str, &'a str)> + '_ {
        self.list
            .iter()
            .enumerate()
            .map(|(i, (n, v))| (self.kind_at(i, n), n.as_str(), v.as_str()))
    }

    /// The values of the headers of `kind`, in order; nothing at once when none is (the
    /// walk starts past the last header then).
    fn values<'h>(&'h self, kind: Kind) -> Values<'h, 'a> {
        let next = if self.has(kind) { 0 } else { self.list.len() };
        Values {
            headers: self,
            kind,
            next,
        }
    }
}

/// The values of one kind of header, in order (a plain loop over the kept kinds).
struct Values<'h, 'a> {
    headers: &'h Headers<'a>,
    kind: Kind,
    /// The index of the next header to look at.
    next: usize,
}

impl<'a> Iterator for Values<'_, 'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        while let Some((name, value)) = self.headers.list.get(self.next) {
            let i = self.next;
            self.next += 1;
            if self.headers.kind_at(i, name) == self.kind {
                return Some(value);
            }
        }
        None
    }
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
fn content_type(h: &Headers<'_>, out: &mut Vec<Found>) {
    if !h.has(Kind::ContentType) {
        return;
    }
    let types: Vec<&str> = h.values(Kind::ContentType).collect();
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

fn clip(s: &str) -> String {
    crate::text::first_chars(s, 200)
}

fn version(req: &HttpRequest, out: &mut Vec<Found>) {
    let p = req.protocol.as_str();
    if !p.is_empty() && !known_version(p) {
        out.push(("invalid_protocol", clip(p)));
    }
}

/// Whether `p` is a version a client may send: `HTTP/` in any case and a number of
/// [`VERSION_NUMBERS`], read on the bytes (no case-blind comparison per version).
fn known_version(p: &str) -> bool {
    p.as_bytes()
        .split_at_checked(5)
        .is_some_and(|(head, number)| {
            head.eq_ignore_ascii_case(b"HTTP/") && VERSION_NUMBERS.contains(&number)
        })
}

fn method(
    req: &HttpRequest,
    h: &Headers<'_>,
    known_method: fn(&str) -> bool,
    out: &mut Vec<Found>,
) {
    if DIAGNOSTIC_METHODS.contains(&req.method.as_str()) {
        out.push(("diagnostic_method", clip(&req.method)));
    }
    let query = split_once_at(&req.uri, b'?').map_or("", |(_, q)| q);
    let from_query = split_at(query, b'&').filter_map(|p| {
        let (n, v) = split_once_at(p, b'=')?;
        names_method(n).then(|| url_decode(v).into_owned())
    });
    let from_headers = h.values(Kind::MethodOverride).map(str::to_string);
    for value in from_headers.chain(from_query) {
        let m = value.trim().to_ascii_uppercase();
        if DIAGNOSTIC_METHODS.contains(&m.as_str()) || !known_method(&m) {
            out.push(("dangerous_method_override", clip(&value)));
        }
    }
}

/// Whether a raw query parameter name decodes to `_method` (any case), decoding only a
/// name that can: the decoded name is 7 ASCII bytes, each from at least one raw byte
/// (a byte that is not UTF-8 decodes to a non-ASCII char), so a shorter name cannot be
/// it, a 7-byte one is it only as written (`+` would be a space, `%XX` one byte) and a
/// longer one needs a `%`.
fn names_method(name: &str) -> bool {
    match name.len() {
        7 => name.eq_ignore_ascii_case("_method"),
        n if n > 7 => name.contains('%') && url_decode(name).eq_ignore_ascii_case("_method"),
        _ => false,
    }
}

/// The bytes a header name (an RFC 9110 token) may hold, as a table: one load a byte.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};

fn is_tchar(c: u8) -> bool {
    TCHAR.get(usize::from(c)).copied().unwrap_or(false)
}

fn header_syntax(req: &HttpRequest, out: &mut Vec<Found>) {
    for (name, value) in &req.headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            out.push(("invalid_header_name", clip(name)));
        }
        // `Transfer_Encoding`, `Content-Length ` and the like: servers that fold `_`
        // into `-` or trim names read a framing header the proxy did not.
        // Both are 14 bytes or more, and trimming only shortens a name.
        let lookalike = name.len() >= 14
            && ["transfer-encoding", "content-length"]
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
    // Trimming only shortens: a name shorter than `framing` is not it (no trim needed).
    if name.len() < framing.len() {
        return false;
    }
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

fn lengths(req: &HttpRequest, h: &Headers<'_>, out: &mut Vec<Found>) {
    let lengths: Vec<&str> = h
        .values(Kind::ContentLength)
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
    let te: Vec<&str> = h.values(Kind::TransferEncoding).collect();
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

fn host(req: &HttpRequest, h: &Headers<'_>, out: &mut Vec<Found>) {
    let mut hosts = h.values(Kind::Host);
    let first = hosts.next();
    if let (Some(first), Some(second)) = (first, hosts.next()) {
        let all: Vec<&str> = [first, second].into_iter().chain(hosts).collect();
        out.push(("duplicate_host", clip(&all.join(" | "))));
    }
    for value in h.values(Kind::Host) {
        if !value.trim().is_empty() && !host_is_well_formed(value) {
            out.push(("invalid_host", clip(value)));
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
        if let (Some(target), Some(Some(header))) = (host_name(authority), first.map(host_name))
            && target != header
        {
            out.push(("absolute_target_host_mismatch", clip(authority)));
        }
    }
}

fn routing_headers(h: &Headers<'_>, out: &mut Vec<Found>) {
    let routing = [
        Kind::UrlOverride,
        Kind::ForwardedHost,
        Kind::Forwarded,
        Kind::Proxy,
        Kind::Expect,
    ];
    if !routing.iter().any(|k| h.has(*k)) {
        return;
    }
    for (kind, name, value) in h.all() {
        let lname = || name.to_ascii_lowercase();
        if kind == Kind::UrlOverride {
            let lname = lname();
            out.push(("url_override_header", clip(&format!("{lname}: {value}"))));
        } else if kind == Kind::ForwardedHost {
            let lname = lname();
            let bad = value
                .split(',')
                .any(|h| !host_is_well_formed(h) || host_name(h).is_some_and(|n| is_internal(&n)));
            if bad {
                out.push(("forwarded_host_abuse", clip(&format!("{lname}: {value}"))));
            }
        } else if kind == Kind::Forwarded {
            let lname = lname();
            let bad = value
                .split([',', ';'])
                .filter_map(|p| p.trim().strip_prefix("host="))
                .map(|h| h.trim_matches('"'))
                .any(|h| !host_is_well_formed(h) || host_name(h).is_some_and(|n| is_internal(&n)));
            if bad {
                out.push(("forwarded_host_abuse", clip(&format!("{lname}: {value}"))));
            }
        } else if kind == Kind::Proxy {
            // httpoxy (CVE-2016-5385): CGI turns it into HTTP_PROXY.
            out.push(("proxy_header", clip(value)));
        } else if kind == Kind::Expect && !value.trim().eq_ignore_ascii_case("100-continue") {
            out.push(("invalid_expect", clip(value)));
        }
    }
}

fn ranges(h: &Headers<'_>, out: &mut Vec<Found>) {
    for value in h.values(Kind::Range).chain(h.values(Kind::RequestRange)) {
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

fn connection(h: &Headers<'_>, out: &mut Vec<Found>) {
    if !h.has(Kind::Connection) {
        return;
    }
    let mut seen: Vec<String> = Vec::new();
    let mut conflicting = false;
    for value in h.values(Kind::Connection) {
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
    // The raw target (before `#`) and its path (before the first `?`), found with
    // `memchr`; then whether the raw target holds a control byte or a space, and the
    // path a `%`, each in one vectorised pass. (A loop over the target's bytes with a
    // class table, which this replaced, read a benign GET's ~100-byte target at ~6
    // instructions a byte: docs/BENCHMARKS.md, `proxy9`.)
    let bytes = req.uri.as_bytes();
    let raw_end = memchr::memchr(b'#', bytes).unwrap_or(bytes.len());
    let raw_bytes = bytes.get(..raw_end).unwrap_or_default();
    let path_end = memchr::memchr(b'?', raw_bytes).unwrap_or(raw_end);
    let bad_raw = any_byte(raw_bytes, |c| (c < 0x20) | (c == 0x7f) | (c == b' '));
    let escapes = any_byte(raw_bytes.get(..path_end).unwrap_or_default(), |c| c == b'%');
    let raw = req.uri.get(..raw_end).unwrap_or("");
    let path = raw.get(..path_end).unwrap_or("");
    let bad = |c: u8| c < 0x20 || c == 0x7f;
    // Without `%` decoding only turns `+` into a space: the decoded path has a control
    // byte only if the raw target does, so it is decoded only when it has escapes.
    if bad_raw || (escapes && url_decode(path).bytes().any(bad)) {
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

    /// [`target`] as it was written before `proxy9`: one loop over the target's bytes.
    fn target_by_bytes(req: &HttpRequest, out: &mut Vec<Found>) {
        let bytes = req.uri.as_bytes();
        let (mut raw_end, mut path_end) = (bytes.len(), None);
        let (mut bad_raw, mut escapes) = (false, false);
        for (i, &c) in bytes.iter().enumerate() {
            let bad = c < 0x20 || c == 0x7f || c == b' ';
            if c == b'#' {
                raw_end = i;
                break;
            }
            bad_raw |= bad;
            if c == b'?' && path_end.is_none() {
                path_end = Some(i);
            }
            escapes |= c == b'%' && path_end.is_none();
        }
        let raw = req.uri.get(..raw_end).unwrap_or("");
        let path = raw.get(..path_end.unwrap_or(raw_end)).unwrap_or("");
        let bad = |c: u8| c < 0x20 || c == 0x7f;
        if bad_raw || (escapes && url_decode(path).bytes().any(bad)) {
            out.push(("control_char_in_path", clip(raw)));
        }
    }

    #[test]
    fn the_target_check_answers_as_the_byte_loop_did() -> Result<(), String> {
        // Targets short and long (the vector passes' whole and last blocks), with each
        // byte the check reads (`#`, `?`, `%`, escaped and raw control bytes, space) at
        // every place, alone and in pairs.
        let marks = [
            "#", "?", "%", "%0a", "%0A", "%7f", "%20", " ", "\t", "\u{7f}", "\0", "é",
        ];
        let mut targets = Vec::new();
        for len in [0usize, 1, 5, 15, 16, 17, 31, 40, 70] {
            let filler: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            targets.push(format!("/{filler}"));
            for (m, mark) in marks.iter().enumerate() {
                for at in 0..=len {
                    let (head, tail) = filler.split_at(at);
                    targets.push(format!("/{head}{mark}{tail}"));
                    let other = marks.get((m + at) % marks.len()).copied().unwrap_or("#");
                    targets.push(format!("/{head}{mark}{tail}{other}x%0d"));
                }
            }
        }
        for uri in &targets {
            let r = req("GET", uri, "HTTP/1.1", &[]);
            let (mut ours, mut before) = (Vec::new(), Vec::new());
            target(&r, &mut ours);
            target_by_bytes(&r, &mut before);
            if ours != before {
                return Err(format!("{uri:?}: {ours:?} ≠ {before:?}"));
            }
        }
        Ok(())
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

    /// The names each kind had as lists before `classify`, compared case-blind.
    fn classify_by_lists(name: &str) -> Kind {
        let lists: &[(Kind, &[&str])] = &[
            (Kind::ContentType, &["content-type"]),
            (Kind::ContentLength, &["content-length"]),
            (Kind::TransferEncoding, &["transfer-encoding"]),
            (Kind::Host, &["host"]),
            (Kind::Range, &["range"]),
            (Kind::RequestRange, &["request-range"]),
            (Kind::Connection, &["connection"]),
            (
                Kind::MethodOverride,
                &[
                    "x-http-method-override",
                    "x-http-method",
                    "x-method-override",
                ],
            ),
            (
                Kind::UrlOverride,
                &[
                    "x-original-url",
                    "x-rewrite-url",
                    "x-override-url",
                    "x-http-destinationurl",
                ],
            ),
            (
                Kind::ForwardedHost,
                &["x-forwarded-host", "x-host", "x-forwarded-server"],
            ),
            (Kind::Forwarded, &["forwarded"]),
            (Kind::Proxy, &["proxy"]),
            (Kind::Expect, &["expect"]),
        ];
        lists
            .iter()
            .find(|(_, names)| names.iter().any(|n| name.eq_ignore_ascii_case(n)))
            .map_or(Kind::Other, |(k, _)| *k)
    }

    #[test]
    fn header_names_classify_as_the_lists_did() {
        let base = [
            "Host",
            "HOST",
            "hosT",
            "Hosts",
            "Range",
            "Proxy",
            "Expect",
            "X-Host",
            "Forwarded",
            "Connection",
            "Content-Type",
            "Request-Range",
            "X-HTTP-Method",
            "X-Rewrite-URL",
            "Content-Length",
            "X-Original-URL",
            "X-Override-URL",
            "X-Forwarded-Host",
            "Transfer-Encoding",
            "X-Method-Override",
            "X-Forwarded-Server",
            "X-HTTP-DestinationURL",
            "X-HTTP-Method-Override",
            "Transfer_Encoding",
            "Content-Length ",
            "content-lengtH",
            "User-Agent",
            "Referer",
            "Accept",
            "X-Forwarded-For",
            "",
            "H\u{f6}st",
            "proxy\u{0}",
            "x-forwarded-hosT",
            "Cookie",
            "Conection",
            "\u{212a}-host",
        ];
        let names: Vec<String> = base
            .iter()
            .flat_map(|n| {
                [
                    n.to_string(),
                    n.to_ascii_uppercase(),
                    n.to_ascii_lowercase(),
                ]
            })
            .collect();
        let mut found = 0;
        for name in &names {
            assert_eq!(classify(name), classify_by_lists(name), "{name:?}");
            found += usize::from(classify(name) != Kind::Other);
        }
        assert!(found > 60, "{found}");
    }

    /// `target` as it was: split at `#`, then at `?`, then three scans.
    fn target_by_splitting(uri: &str) -> bool {
        let raw = uri.split('#').next().unwrap_or("");
        let path = raw.split('?').next().unwrap_or("");
        let bad = |c: u8| c < 0x20 || c == 0x7f;
        any_byte(raw.as_bytes(), |c| bad(c) | (c == b' '))
            || (path.contains('%') && url_decode(path).bytes().any(bad))
    }

    #[test]
    fn targets_are_checked_as_by_splitting() -> Result<(), Box<dyn std::error::Error>> {
        let pieces = [
            "/", "a", "?", "#", "%", "%0a", "%0D", "%00", "%2", "%7f", "%20", " ", "\t", "\u{7f}",
            "\u{1}", "\u{e9}", "+", "&", "=", "x=1", "%%",
        ];
        let mut flagged = 0;
        let mut n = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in ["", "/b", "?q", "#f", "%0a"] {
                        let uri = format!("/{a}{b}{c}{d}");
                        let mut out = Vec::new();
                        target(&req("GET", &uri, "HTTP/1.1", &[]), &mut out);
                        let old = target_by_splitting(&uri);
                        assert_eq!(!out.is_empty(), old, "{uri:?}");
                        if let Some((name, detail)) = out.first() {
                            assert_eq!(*name, "control_char_in_path");
                            let raw = uri.split('#').next().ok_or("no raw target")?;
                            assert_eq!(*detail, clip(raw), "{uri:?}");
                        }
                        flagged += usize::from(old);
                        n += 1;
                    }
                }
            }
        }
        assert!(flagged > 1000 && flagged < n - 1000, "{flagged} of {n}");
        Ok(())
    }

    #[test]
    fn versions_are_known_as_by_the_list() {
        let list = [
            "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0", "HTTP/3", "HTTP/3.0",
        ];
        let mut names = Vec::new();
        for v in list {
            for extra in ["", " ", "0", ".0", "\u{e9}"] {
                for name in [format!("{v}{extra}"), format!("{extra}{v}")] {
                    names.push(name.to_ascii_lowercase());
                    names.push(name.replacen("TTP", "tTp", 1));
                    names.push(name.replacen('.', ",", 1));
                    names.push(
                        name.get(..name.len().saturating_sub(1))
                            .unwrap_or("")
                            .to_string(),
                    );
                    names.push(name);
                }
            }
        }
        names
            .extend(["", "HTTP/", "HTTP", "http/1.1", "HTTPS/1.1", "HTTP/1.1\0"].map(String::from));
        let mut known = 0;
        for p in &names {
            let by_list = list.iter().any(|v| v.eq_ignore_ascii_case(p));
            assert_eq!(known_version(p), by_list, "{p:?}");
            known += usize::from(by_list);
        }
        assert!(known > 20, "{known}");
    }

    #[test]
    fn headers_past_the_kept_kinds_are_still_checked() {
        let mut headers: Vec<(&str, &str)> = vec![("X-Filler", "1"); KEPT_KINDS + 3];
        headers.push(("Proxy", "http://evil:8080"));
        headers.push(("Host", "a"));
        headers.push(("Host", "b"));
        let found = get(&headers);
        assert!(found.contains(&"proxy_header"), "{found:?}");
        assert!(found.contains(&"duplicate_host"), "{found:?}");
    }

    #[test]
    fn method_parameters_are_found_as_by_decoding_every_name() {
        let pieces = [
            "_method",
            "_METHOD",
            "_Method",
            "%5fmethod",
            "%5Fmethod",
            "_%6dethod",
            "_method%",
            "_metho",
            "+_method",
            "_method+",
            "_m+thod",
            "%ff_method",
            "%5",
            "%",
            "+",
            "",
            "method",
            "_methods",
            "%5f%6d%65%74%68%6f%64",
            "_m\u{e9}thod",
            "%5fmetho",
            "%5fmethod%00",
        ];
        let mut n = 0;
        for a in pieces {
            for b in ["", "%", "+", "_method", "x", "%64"] {
                for name in [format!("{a}{b}"), format!("{b}{a}")] {
                    let by_decoding = url_decode(&name).eq_ignore_ascii_case("_method");
                    assert_eq!(names_method(&name), by_decoding, "{name:?}");
                    n += usize::from(by_decoding);
                }
            }
        }
        assert!(n > 10, "{n}");
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
