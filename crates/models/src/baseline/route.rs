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
    for segment in path.split('/').filter(|s| !s.is_empty()).take(MAX_SEGMENTS) {
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

/// The request's host (Host header, else the authority of an absolute target), lower
/// case without the port; `-` when unknown.
pub fn host(request: &HttpRequest) -> String {
    let raw = raw_host(request);
    if raw.is_empty() {
        "-".to_owned()
    } else {
        raw.chars().take(255).collect::<String>().to_lowercase()
    }
}

/// [`host`] appended to `out`; an ASCII host (nearly all) without building it apart.
fn push_host(out: &mut String, request: &HttpRequest) {
    let raw = raw_host(request);
    if raw.is_empty() {
        out.push('-');
    } else if raw.is_ascii() {
        out.extend(raw.chars().take(255).map(|c| c.to_ascii_lowercase()));
    } else {
        out.push_str(&host(request));
    }
}

/// The request's host as sent, without the port (empty when unknown).
fn raw_host(request: &HttpRequest) -> &str {
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
    if raw.starts_with('[') {
        raw.split_inclusive(']').next().unwrap_or(raw)
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    }
}

/// The raw path of a request target (origin or absolute form), without the query.
pub fn raw_path(uri: &str) -> &str {
    let target = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => uri,
    };
    let end = target.find(['?', '#']).unwrap_or(target.len());
    target.get(..end).unwrap_or(target)
}

/// The endpoint key: `host METHOD template`.
pub fn endpoint_key(request: &HttpRequest) -> String {
    let path = raw_path(&request.uri);
    let mut out = String::with_capacity(path.len().min(256) + 40);
    push_host(&mut out, request);
    out.push(' ');
    out.extend(
        request
            .method
            .chars()
            .take(16)
            .map(|c| c.to_ascii_uppercase()),
    );
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

    /// The key as first written: three strings formatted together.
    fn endpoint_key_reference(request: &HttpRequest) -> String {
        let method: String = request.method.chars().take(16).collect();
        format!(
            "{} {} {}",
            host(request),
            method.to_ascii_uppercase(),
            template(raw_path(&request.uri))
        )
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
        ];
        for h in hosts {
            for uri in uris {
                for method in ["get", "POST", "pätch-with-a-very-long-method-name"] {
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
