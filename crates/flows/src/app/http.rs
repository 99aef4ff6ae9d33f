//! HTTP/1.x request and response heads: method, target, Host and User-Agent; status.

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub host: Option<String>,
    pub user_agent: Option<String>,
}

/// What the bytes were.
#[derive(Debug)]
pub(crate) enum Outcome {
    NeedMore,
    NotHttp,
    Request(Request),
    Response(u16),
}

const METHODS: &[&str] = &[
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PROPFIND",
];

/// Parses an HTTP head from the start of a direction's bytes.
pub(crate) fn parse(buf: &[u8], _from_client: bool) -> Outcome {
    let first_word: &[u8] = buf.split(|b| *b == b' ').next().unwrap_or(&[]);
    let is_method = METHODS.iter().any(|m| m.as_bytes() == first_word);
    let is_status = first_word.starts_with(b"HTTP/1.");
    if !is_method && !is_status {
        // Could still become one when more bytes come.
        let maybe = buf.len() < 9
            && !buf.contains(&b' ')
            && (METHODS.iter().any(|m| m.as_bytes().starts_with(buf))
                || b"HTTP/1.".starts_with(buf));
        return if maybe {
            Outcome::NeedMore
        } else {
            Outcome::NotHttp
        };
    }
    let Some(line_end) = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .or_else(|| buf.iter().position(|b| *b == b'\n'))
    else {
        return if buf.len() > 8192 {
            Outcome::NotHttp
        } else {
            Outcome::NeedMore
        };
    };
    let line = String::from_utf8_lossy(buf.get(..line_end).unwrap_or(&[])).into_owned();
    let mut parts = line.split(' ');
    if is_status {
        let status = parts.nth(1).and_then(|s| s.parse::<u16>().ok());
        return status.map_or(Outcome::NotHttp, Outcome::Response);
    }
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/")) {
        return Outcome::NotHttp;
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
    if head_end.is_none() && buf.len() < super::INSPECT_BYTES {
        return Outcome::NeedMore;
    }
    let head = String::from_utf8_lossy(buf.get(..head_end.unwrap_or(buf.len())).unwrap_or(&[]))
        .into_owned();
    let mut req = Request {
        method,
        path,
        host: None,
        user_agent: None,
    };
    for h in head.split("\r\n").skip(1) {
        let Some((k, v)) = h.split_once(':') else {
            continue;
        };
        if k.eq_ignore_ascii_case("host") {
            req.host = Some(v.trim().to_string());
        } else if k.eq_ignore_ascii_case("user-agent") {
            req.user_agent = Some(v.trim().to_string());
        }
    }
    Outcome::Request(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_status() {
        assert!(matches!(
            parse(b"HTTP/1.1 404 Not Found\r\n", false),
            Outcome::Response(404)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 abc\r\n", false),
            Outcome::NotHttp
        ));
    }

    #[test]
    fn partial_method_waits_and_garbage_does_not() {
        assert!(matches!(parse(b"GE", true), Outcome::NeedMore));
        assert!(matches!(parse(b"\x16\x03\x01", true), Outcome::NotHttp));
        assert!(matches!(parse(b"GET /x FTP/1\r\n", true), Outcome::NotHttp));
    }
}
