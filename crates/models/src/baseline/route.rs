//! Endpoint keys: host + method + route template, so that `/item/17` and `/item/18`
//! share one baseline while `/item` and `/cart` do not.
//!
//! A path segment that is a number, a UUID, a long hexadecimal string or a long opaque
//! token becomes a placeholder (`{n}`, `{uuid}`, `{hex}`, `{token}`); other segments are
//! kept (lower-cased, at most 64 characters), and at most 16 segments are kept.

use palisade_detect::HttpRequest;
use palisade_detect::transform::url_decode;

/// Segments kept in a template; deeper paths share the template of their first 16.
const MAX_SEGMENTS: usize = 16;
/// Characters kept of a literal segment.
const MAX_SEGMENT_CHARS: usize = 64;

/// The placeholder a path segment stands for, if it is an identifier.
pub fn placeholder(segment: &str) -> Option<&'static str> {
    let b = segment.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some("{n}");
    }
    // Every placeholder below needs 8 characters or more (most segments are shorter).
    if b.len() < 8 {
        return None;
    }
    if is_uuid(b) {
        return Some("{uuid}");
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if b.len() >= 8 && digits > 0 && b.iter().all(u8::is_ascii_hexdigit) {
        return Some("{hex}");
    }
    // Opaque tokens (base64url, session ids): long, no dots (file names), and either
    // many digits or upper case, lower case and digits mixed; slugs such as
    // `sysadvent-2010-begins` stay literal.
    if b.len() < 20 {
        return None;
    }
    let upper = b.iter().filter(|c| c.is_ascii_uppercase()).count();
    let lower = b.iter().filter(|c| c.is_ascii_lowercase()).count();
    if digits > 0
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'='))
        && (digits * 4 >= b.len() || (upper > 0 && lower > 0))
    {
        return Some("{token}");
    }
    None
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The route template of a raw path (`/api/users/42/orders` → `/api/users/{n}/orders`).
pub fn template(raw_path: &str) -> String {
    let mut out = String::with_capacity(raw_path.len().min(256));
    push_template(&mut out, raw_path);
    out
}

/// [`template`] appended to `out` (the endpoint key is built in one buffer).
fn push_template(out: &mut String, raw_path: &str) {
    let path = url_decode(raw_path);
    let start = out.len();
    for segment in segments(&path).take(MAX_SEGMENTS) {
        out.push('/');
        match placeholder(segment) {
            Some(p) => out.push_str(p),
            // An ASCII segment within the bound (nearly all): one copy, lower-cased in
            // place, rather than a character at a time.
            None if segment.len() <= MAX_SEGMENT_CHARS && segment.is_ascii() => {
                let at = out.len();
                out.push_str(segment);
                if let Some(pushed) = out.get_mut(at..) {
                    pushed.make_ascii_lowercase();
                }
            }
            None => out.extend(
                segment
                    .chars()
                    .take(MAX_SEGMENT_CHARS)
                    .flat_map(char::to_lowercase),
            ),
        }
    }
    if out.len() == start || path.ends_with('/') {
        out.push('/');
    }
}

/// The non-empty segments of a path between its `/`s (`path.split('/')` without the
/// empty ones), found by bytes: `/` is one byte in UTF-8 and never part of another
/// character, so every cut is at a character boundary (the `char` pattern's searcher
/// cost more than the rest of the template).
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let bytes = path.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        loop {
            let rest = bytes.get(from..)?;
            if rest.is_empty() {
                return None;
            }
            let len = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
            let segment = path.get(from..from + len);
            from += len + 1;
            if len > 0 {
                return segment;
            }
        }
    })
}

/// The request's host (Host header, else the authority of an absolute target), lower
/// case without the port; `-` when unknown.
pub fn host(request: &HttpRequest) -> String {
    let mut out = String::new();
    push_host(&mut out, raw_host(request));
    out
}

/// [`host`] appended to `out`, from the request's [`raw_host`]; an ASCII host (nearly
/// all) without building it apart.
fn push_host(out: &mut String, raw: &str) {
    if raw.is_empty() {
        out.push('-');
    } else if raw.is_ascii() {
        // One copy, lower-cased in place (the first 255 characters are bytes here).
        let at = out.len();
        out.push_str(raw.get(..raw.len().min(255)).unwrap_or(raw));
        if let Some(pushed) = out.get_mut(at..) {
            pushed.make_ascii_lowercase();
        }
    } else {
        out.push_str(&raw.chars().take(255).collect::<String>().to_lowercase());
    }
}

/// The request's host as sent, without the port (empty when unknown).
fn raw_host(request: &HttpRequest) -> &str {
    let from_header = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.as_str());
    // The target's authority only when there is no Host header (nearly never).
    let from_uri =
        || after_scheme(&request.uri).map(|rest| rest.split(['/', '?']).next().unwrap_or(rest));
    let raw = trim(from_header.or_else(from_uri).unwrap_or(""));
    if raw.starts_with('[') {
        raw.split_inclusive(']').next().unwrap_or(raw)
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    }
}

/// `text.trim()`, without its character-by-character search when `text` starts and
/// ends with an ASCII byte that is not white space (nearly every host): `trim` removes
/// Unicode white space, which in ASCII is `\t`, `\n`, `\x0B`, `\x0C`, `\r` and space, and
/// outside ASCII starts and ends with non-ASCII bytes.
fn trim(text: &str) -> &str {
    let kept =
        |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii() && !matches!(b, b'\t'..=b'\r' | b' '));
    let b = text.as_bytes();
    if kept(b.first()) && kept(b.last()) {
        text
    } else {
        text.trim()
    }
}

/// The raw path of a request target (origin or absolute form), without the query.
pub fn raw_path(uri: &str) -> &str {
    let target = match after_scheme(uri) {
        Some(rest) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => uri,
    };
    // By bytes: both are ASCII (a `[char]` pattern tests each character in turn), and
    // with memchr, which reads a word at a time.
    let end = memchr::memchr2(b'?', b'#', target.as_bytes()).unwrap_or(target.len());
    target.get(..end).unwrap_or(target)
}

/// What follows the first `://` of `uri`: `uri.split_once("://")`'s second half,
/// found by looking for `:` (`split_once` with a string pattern sets up a substring
/// search, which cost more than the rest of the key).
fn after_scheme(uri: &str) -> Option<&str> {
    let b = uri.as_bytes();
    // Each `:` found by memchr (a target without one, nearly every target, is read a
    // word at a time rather than byte by byte: this search was most of `raw_path`).
    memchr::memchr_iter(b':', b)
        .find(|&at| b.get(at + 1..at + 3) == Some(b"//".as_slice()))
        .and_then(|at| uri.get(at + 3..))
}

/// The endpoint key: `host METHOD template`. Taken from this thread's recent keys when
/// the request has the raw host, method and raw path of one keyed lately
/// ([`super::key_memo`]).
pub fn endpoint_key(request: &HttpRequest) -> String {
    let (host, method, path) = (raw_host(request), &request.method, raw_path(&request.uri));
    super::key_memo::key(host, method, path, build_key)
}

/// The endpoint key of a request with this raw host ([`raw_host`]), method and raw path
/// ([`raw_path`]): nothing else of the request goes into it.
fn build_key(host: &str, method: &str, path: &str) -> String {
    let mut out = String::with_capacity(path.len().min(256) + 40);
    push_host(&mut out, host);
    out.push(' ');
    if method.len() <= 16 && method.is_ascii() {
        // The whole method (its first 16 characters are all of it), one copy.
        let at = out.len();
        out.push_str(method);
        if let Some(pushed) = out.get_mut(at..) {
            pushed.make_ascii_uppercase();
        }
    } else {
        out.extend(method.chars().take(16).map(|c| c.to_ascii_uppercase()));
    }
    out.push(' ');
    push_template(&mut out, path);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, host: Option<&str>) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: host
                .map(|h| vec![("Host".to_owned(), h.to_owned())])
                .unwrap_or_default(),
            body: Vec::new(),
            client_ip: None,
        }
    }

    #[test]
    fn identifiers_become_placeholders() {
        assert_eq!(template("/api/users/42/orders"), "/api/users/{n}/orders");
        assert_eq!(
            template("/o/123e4567-e89b-12d3-a456-426614174000"),
            "/o/{uuid}"
        );
        assert_eq!(template("/blob/deadbeef0123"), "/blob/{hex}");
        assert_eq!(
            template("/s/AbCdEf0123456789xyzQRS_t"),
            "/s/{token}",
            "long opaque tokens"
        );
        assert_eq!(template("/Static/Style.CSS"), "/static/style.css");
        assert_eq!(template("/"), "/");
        assert_eq!(template(""), "/");
        assert_eq!(template("/a/"), "/a/");
        assert_eq!(template("/cafe"), "/cafe", "short hex-looking words stay");
        assert_eq!(
            template("/blog/sysadvent-2010-begins.html"),
            "/blog/sysadvent-2010-begins.html",
            "slugs and file names stay"
        );
    }

    /// The key as first written: three strings formatted together (the host and the
    /// path found with `split_once("://")`, the host a character at a time).
    fn endpoint_key_reference(request: &HttpRequest) -> String {
        let method: String = request.method.chars().take(16).collect();
        let raw_path = {
            let uri = request.uri.as_str();
            let target = match uri.split_once("://") {
                Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
                None => uri,
            };
            let end = target.find(['?', '#']).unwrap_or(target.len());
            target.get(..end).unwrap_or(target).to_owned()
        };
        let from_header = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.as_str());
        let from_uri = request
            .uri
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(rest));
        let raw = from_header.or(from_uri).unwrap_or("").trim();
        let raw = if raw.starts_with('[') {
            raw.split_inclusive(']').next().unwrap_or(raw)
        } else {
            raw.rsplit_once(':').map_or(raw, |(h, _)| h)
        };
        let host = if raw.is_empty() {
            "-".to_owned()
        } else {
            raw.chars().take(255).collect::<String>().to_lowercase()
        };
        format!(
            "{host} {} {}",
            method.to_ascii_uppercase(),
            template(&raw_path)
        )
    }

    /// A segment's placeholder as first written: every question asked of every segment.
    fn placeholder_reference(segment: &str) -> Option<&'static str> {
        let b = segment.as_bytes();
        if b.is_empty() {
            return None;
        }
        if b.iter().all(u8::is_ascii_digit) {
            return Some("{n}");
        }
        if is_uuid(b) {
            return Some("{uuid}");
        }
        let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
        if b.len() >= 8 && digits > 0 && b.iter().all(u8::is_ascii_hexdigit) {
            return Some("{hex}");
        }
        let upper = b.iter().filter(|c| c.is_ascii_uppercase()).count();
        let lower = b.iter().filter(|c| c.is_ascii_lowercase()).count();
        if b.len() >= 20
            && digits > 0
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'='))
            && (digits * 4 >= b.len() || (upper > 0 && lower > 0))
        {
            return Some("{token}");
        }
        None
    }

    #[test]
    fn placeholders_asked_in_length_order_are_those_asked_in_full() {
        let mut segments: Vec<String> = [
            "",
            "7",
            "tienda1",
            "deadbee",
            "deadbeef",
            "deadbeefs",
            "1234567a",
            "123e4567-e89b-12d3-a456-426614174000",
            "AbCdEf0123456789xyzQRS_t",
            "AbCdEf0123456789xyzQ",
            "AbCdEf0123456789xyz",
            "aaaaaaaaaaaaaaaaaaa1",
            "aaaaaaaaaaaaaaaaa111",
            "sysadvent-2010-begins",
            "ÜNÏ-2010-begins-and-more",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every length around the bounds, over an alphabet reaching each branch.
        for len in 1..=40 {
            for (i, alphabet) in ["0123456789", "0a1B2c3D", "abcdef01", "x-_=9Z", "a.b1"]
                .iter()
                .enumerate()
            {
                let a: Vec<char> = alphabet.chars().collect();
                segments.push((0..len).map(|j| a[(j * (i + 3)) % a.len()]).collect());
            }
        }
        for s in &segments {
            assert_eq!(placeholder(s), placeholder_reference(s), "{s:?}");
        }
    }

    #[test]
    fn the_scheme_found_by_its_colon_is_that_of_split_once() {
        for uri in [
            "",
            ":",
            "://",
            ":/",
            "::://",
            "a:b://c",
            "http://h/p",
            "http:/x://y",
            "/p?u=http://evil.example/x",
            "/p:q",
            "ü://ö",
            "x:ü//",
        ] {
            assert_eq!(
                after_scheme(uri),
                uri.split_once("://").map(|(_, rest)| rest),
                "{uri:?}"
            );
        }
    }

    #[test]
    fn endpoint_keys_built_in_one_buffer_are_those_formatted_apart() {
        let hosts = [
            None,
            Some("Example.COM:8080"),
            Some("[::1]:80"),
            Some("  "),
            Some("ŞEHİR.example:443"),
            Some("ΟΔΟΣ.example"),
        ];
        let uris = [
            "/",
            "",
            "/a/",
            "/Shop/Items/42/?x=1",
            "http://Host.example:8080/tienda1/a.jsp?x",
            "/%2e%2e/%41bc/123e4567-e89b-12d3-a456-426614174000#frag",
            "/ünï/cödé/",
            "*",
            "/p?u=http://evil.example/x",
            "/x:y://z/w",
            "https://Other.example",
        ];
        let long_host = format!("{}.Example:1", "h".repeat(260));
        let hosts = hosts.into_iter().chain([Some(long_host.as_str())]);
        for h in hosts {
            for uri in uris {
                for method in [
                    "get",
                    "POST",
                    "pätch-with-a-very-long-method-name",
                    "sixteen-chars-ab",
                    "seventeen-chars-a",
                    "",
                ] {
                    let r = req(method, uri, h);
                    assert_eq!(endpoint_key(&r), endpoint_key_reference(&r), "{h:?} {uri}");
                }
            }
        }
    }

    /// A template as first written: every literal segment a character at a time.
    fn template_reference(raw_path: &str) -> String {
        let path = url_decode(raw_path);
        let mut out = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()).take(MAX_SEGMENTS) {
            out.push('/');
            match placeholder(segment) {
                Some(p) => out.push_str(p),
                None => out.extend(
                    segment
                        .chars()
                        .take(MAX_SEGMENT_CHARS)
                        .flat_map(char::to_lowercase),
                ),
            }
        }
        if out.is_empty() || path.ends_with('/') {
            out.push('/');
        }
        out
    }

    #[test]
    fn ascii_segments_copied_whole_are_those_lowered_a_character_at_a_time() {
        let long = format!("/{}/x", "Ab".repeat(MAX_SEGMENT_CHARS));
        let edge = format!("/{}", "Q".repeat(MAX_SEGMENT_CHARS));
        for path in [
            "/",
            "",
            "/Tienda1/Publico/Anadir.JSP",
            "/a//b/",
            "/ÜNÏ/Cödé/İx",
            "/%C3%9Cber/%41bc",
            long.as_str(),
            edge.as_str(),
            "/api/users/42/orders",
        ] {
            assert_eq!(template(path), template_reference(path), "{path}");
        }
    }

    #[test]
    fn hosts_trimmed_by_their_end_bytes_are_those_of_trim() {
        let mut texts: Vec<String> = [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{85}a",
            "a\u{a0}",
            "\u{3000}a\u{2028}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every ASCII byte and a few non-ASCII characters at either end.
        let ends: Vec<char> = (0u8..128)
            .map(char::from)
            .chain(['\u{85}', '\u{a0}', '\u{1680}', '\u{200b}', 'é', '\u{feff}'])
            .collect();
        for &c in &ends {
            texts.push(format!("{c}host"));
            texts.push(format!("host{c}"));
            texts.push(format!("{c}"));
        }
        for t in &texts {
            assert_eq!(trim(t), t.trim(), "{t:?}");
        }
    }

    #[test]
    fn paths_found_with_memchr_are_those_of_a_byte_search() {
        for uri in [
            "",
            "?",
            "#",
            "/a?b#c",
            "/a#b?c",
            "http://h",
            "http://h/p?q",
            "https://h:1/p#f",
            "/p?u=http://evil.example/x",
            "/x:y://z/w",
            "ü://ö/ä?x",
            "/ünï?é#",
        ] {
            let target = match uri.split_once("://") {
                Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
                None => uri,
            };
            let end = target.find(['?', '#']).unwrap_or(target.len());
            assert_eq!(raw_path(uri), &target[..end], "{uri:?}");
        }
    }

    #[test]
    fn keys_remembered_by_a_thread_are_those_built_afresh() {
        // Requests that share a raw path and differ elsewhere, and that differ only in
        // what the raw path leaves out (the query, the fragment), keyed in turn and again.
        let mut requests = Vec::new();
        for host in [
            None,
            Some("Shop.example:8080"),
            Some("shop.example"),
            Some("ΟΔΟΣ"),
        ] {
            for method in ["GET", "get", "POST"] {
                for uri in [
                    "/item/42?x=1",
                    "/item/43?x=2",
                    "/item/42#f",
                    "/Item/42",
                    "http://other.example/item/42",
                    "/p?u=http://evil.example/x",
                    "/%41/b",
                    "/A/b",
                ] {
                    requests.push(req(method, uri, host));
                }
            }
        }
        for round in 0..3 {
            for r in &requests {
                assert_eq!(
                    endpoint_key(r),
                    endpoint_key_reference(r),
                    "round {round}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn segments_cut_by_bytes_are_those_of_split() {
        for path in [
            "",
            "/",
            "//",
            "a",
            "/a",
            "a/",
            "/a/b",
            "//a//b//",
            "/ünï/cödé/",
            "/日本/語/",
            "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s",
        ] {
            let split: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            assert_eq!(segments(path).collect::<Vec<_>>(), split, "{path:?}");
        }
    }

    #[test]
    fn endpoint_keys_join_host_method_and_template() {
        let r = req("get", "/shop/items/7?x=1", Some("Example.COM:8080"));
        assert_eq!(endpoint_key(&r), "example.com GET /shop/items/{n}");
        let abs = req("POST", "http://localhost:8080/tienda1/a.jsp?x", None);
        assert_eq!(endpoint_key(&abs), "localhost POST /tienda1/a.jsp");
        assert_eq!(endpoint_key(&req("GET", "/x", None)), "- GET /x");
        let v6 = req("GET", "/", Some("[::1]:80"));
        assert_eq!(host(&v6), "[::1]");
    }
}
