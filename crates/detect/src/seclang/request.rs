//! The request as SecLang variables see it (ModSecurity v3's request body processors:
//! URL-encoded, multipart, JSON and XML).

use crate::places;
use crate::request::{HttpRequest, Location, MAX_BODY, parse, strip_authority};
use crate::transform::{bytes_to_text, url_decode};

/// Everything the variables of a request-phase rule can read, extracted once.
#[derive(Debug, Default, Clone)]
pub struct ReqView {
    /// ARGS_GET (decoded names and values).
    pub args_get: Vec<(String, String)>,
    /// ARGS_POST.
    pub args_post: Vec<(String, String)>,
    /// REQUEST_HEADERS (names as sent).
    pub headers: Vec<(String, String)>,
    /// REQUEST_COOKIES.
    pub cookies: Vec<(String, String)>,
    /// REQUEST_URI: path and query as sent (origin form).
    pub uri: String,
    /// REQUEST_URI_RAW: the request target exactly as sent.
    pub uri_raw: String,
    /// REQUEST_FILENAME: the URL-decoded path.
    pub filename: String,
    /// REQUEST_BASENAME.
    pub basename: String,
    /// REQUEST_LINE.
    pub line: String,
    /// REQUEST_METHOD.
    pub method: String,
    /// REQUEST_PROTOCOL.
    pub protocol: String,
    /// QUERY_STRING.
    pub query: String,
    /// REQUEST_BODY.
    pub body: String,
    /// Raw body length in bytes.
    pub body_len: usize,
    /// XML text nodes and attribute values (`@` in the name marks attributes).
    pub xml: Vec<(String, String)>,
    /// FILES: (field name, file name).
    pub files: Vec<(String, String)>,
    /// FILES_SIZES: (field name, size).
    pub file_sizes: Vec<(String, usize)>,
    /// MULTIPART_PART_HEADERS: (field name, header line).
    pub part_headers: Vec<(String, String)>,
    /// REQBODY_PROCESSOR.
    pub processor: &'static str,
    /// REQBODY_ERROR.
    pub body_error: bool,
    /// REMOTE_ADDR.
    pub remote_addr: String,
}

impl ReqView {
    /// Extracts the variables of `req`.
    pub fn new(req: &HttpRequest) -> ReqView {
        let mut v = ReqView {
            method: req.method.clone(),
            protocol: req.protocol.clone(),
            uri_raw: req.uri.clone(),
            remote_addr: req.client_ip.map(|i| i.to_string()).unwrap_or_default(),
            ..ReqView::default()
        };
        v.uri = strip_authority(&req.uri).into_owned();
        v.line = format!("{} {} {}", req.method, req.uri, req.protocol);
        let (raw_path, query) = match v.uri.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (v.uri.clone(), None),
        };
        let raw_path = raw_path.split('#').next().unwrap_or("").to_string();
        v.filename = url_decode(&raw_path).into_owned();
        v.basename = v
            .filename
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .to_string();
        if let Some(q) = query {
            let q = q.split('#').next().unwrap_or("").to_string();
            v.args_get = urlencoded(&q);
            v.query = q;
        }
        let mut content_type = String::new();
        for (name, value) in &req.headers {
            if name.eq_ignore_ascii_case("cookie") {
                v.cookies.extend(cookies(value));
            }
            if name.eq_ignore_ascii_case("content-type") {
                content_type = value.to_ascii_lowercase();
            }
            v.headers.push((name.clone(), value.clone()));
        }
        v.body_len = req.body.len();
        if !req.body.is_empty() {
            let bytes = req.body.get(..MAX_BODY).unwrap_or(&req.body);
            v.body = bytes_to_text(bytes.to_vec());
            if content_type.starts_with("multipart/form-data") {
                v.processor = "MULTIPART";
                v.multipart(&content_type);
            } else if content_type.contains("json") {
                v.processor = "JSON";
                // The engine's JSON walker names leaves by path (`a.b[0]`).
                let parsed = parse(req, 4);
                let mut last: Option<(&str, &str)> = None;
                for p in parsed
                    .parts
                    .iter()
                    .filter(|p| p.location == Location::BodyArgValue)
                {
                    // Skip the extra base64-decoded copy the engine adds.
                    let decoded_copy = last.is_some_and(|(n, val)| {
                        n == p.name && places::base64_text(val).as_deref() == Some(p.value.as_str())
                    });
                    if decoded_copy {
                        continue;
                    }
                    v.args_post
                        .push((format!("json.{}", p.name), p.value.clone()));
                    last = Some((&p.name, &p.value));
                }
            } else if content_type.contains("xml") {
                v.processor = "XML";
                v.xml = places::xml_values(&v.body);
                if v.xml.is_empty() && !v.body.trim().is_empty() {
                    v.body_error = !v.body.trim_start().starts_with('<');
                }
            } else if content_type.is_empty() || content_type.contains("x-www-form-urlencoded") {
                // No Content-Type: parsed as URL-encoded, as CRS's regression tests
                // (which send bodies without one) expect.
                v.processor = "URLENCODED";
                v.args_post = urlencoded(&v.body);
            }
        }
        v
    }

    fn multipart(&mut self, content_type: &str) {
        let Some(boundary) = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|s| s.trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
        else {
            self.body_error = true;
            return;
        };
        let delimiter = format!("--{boundary}");
        let lower = self.body.to_ascii_lowercase();
        let mut starts: Vec<usize> = lower.match_indices(&delimiter).map(|(i, _)| i).collect();
        starts.push(self.body.len());
        let body = self.body.clone();
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
            let mut lines = Vec::new();
            for line in head.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if line.to_ascii_lowercase().starts_with("content-disposition") {
                    name = param(line, "name");
                    filename = param(line, "filename");
                }
                lines.push(line.to_string());
            }
            let Some(name) = name else { continue };
            for l in lines {
                self.part_headers.push((name.clone(), l));
            }
            let content = content
                .strip_suffix("\r\n")
                .or_else(|| content.strip_suffix('\n'))
                .unwrap_or(content);
            match filename {
                Some(f) => {
                    self.files.push((name.clone(), f));
                    self.file_sizes.push((name, content.len()));
                }
                None => self.args_post.push((name, content.to_string())),
            }
        }
    }
}

/// The `key` parameter of a `Content-Disposition` line. A quoted value may hold `;`
/// (`filename="notes; draft.txt"`), as multipart parsers read it: the line splits on
/// `;` outside quotes only (a backslash escapes a quote inside them).
fn param(line: &str, key: &str) -> Option<String> {
    let mut segments = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in line.char_indices() {
        match c {
            '\\' if quoted && !escaped => {
                escaped = true;
                continue;
            }
            '"' if !escaped => quoted = !quoted,
            ';' if !quoted => {
                segments.push(line.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
        escaped = false;
    }
    segments.push(line.get(start..).unwrap_or_default());
    segments.into_iter().find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .take(crate::request::MAX_ARGS)
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(n).into_owned(), url_decode(v).into_owned())
        })
        .collect()
}

fn cookies(header: &str) -> Vec<(String, String)> {
    header
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            let (n, v) = c.split_once('=').unwrap_or((c, ""));
            (n.to_string(), v.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_of_a_request() {
        let req = HttpRequest {
            method: "POST".into(),
            uri: "http://h/a/b%2fc.php?x=1+2&y".into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![
                ("Cookie".into(), "s=1; t=%41".into()),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: b"p=%27".to_vec(),
            client_ip: None,
        };
        let v = ReqView::new(&req);
        assert_eq!(v.uri, "/a/b%2fc.php?x=1+2&y");
        assert_eq!(v.filename, "/a/b/c.php");
        assert_eq!(v.basename, "c.php");
        assert_eq!(
            v.args_get,
            vec![("x".into(), "1 2".into()), ("y".into(), String::new())]
        );
        assert_eq!(
            v.cookies,
            vec![("s".into(), "1".into()), ("t".into(), "%41".into())]
        );
        assert_eq!(v.args_post, vec![("p".into(), "'".into())]);
        assert_eq!(v.processor, "URLENCODED");
    }
}
