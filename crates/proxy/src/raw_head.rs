//! A request head read back from the bytes the client sent, leniently: names as sent,
//! duplicates and order kept, folded lines joined (`\r\n ` stays in the value), bare LF
//! accepted. hyper's parser merges or drops what request smuggling is made of (a second
//! `Content-Length`, a `Content-Length` beside `Transfer-Encoding`) and refuses heads
//! with invalid names, folding or versions outright; the engine judges the head as sent,
//! so the proxy gives the same verdict as `palisade eval` and `/api/v1/check` on the same
//! bytes. This parser never decides framing: hyper does; it only reads.

/// Most header lines kept.
const MAX_HEADERS: usize = 200;

/// A request head as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHead {
    /// The method token as sent.
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// The version as sent (`HTTP/1.1`), empty when the line had none.
    pub version: String,
    /// Header lines in order: name as sent (untrimmed) and value (leading and trailing
    /// spaces and tabs removed; folded continuation lines joined with `\r\n `).
    pub headers: Vec<(String, String)>,
    /// Whether the blank line that ends the head was seen.
    pub complete: bool,
}

/// The head as sent of the request hyper handed over, kept in its extensions for the
/// engine: `None` inside when the recorded bytes are not this request's head (HTTP/2,
/// a pipelined request read while the previous one was served).
#[derive(Debug, Clone)]
pub struct SentHead(pub Option<RawHead>);

impl SentHead {
    /// Reads `recorded` and keeps it when its method and target are the request's.
    pub fn read<B>(recorded: &[u8], req: &http::Request<B>) -> SentHead {
        let head = parse(recorded).filter(|h| {
            h.method == req.method().as_str()
                && (req
                    .uri()
                    .path_and_query()
                    .is_some_and(|pq| pq.as_str() == h.target)
                    || req.uri().to_string() == h.target)
        });
        SentHead(head)
    }
}

/// Reads a head from the start of `bytes`; `None` when the first line does not look
/// like an HTTP request line (a TLS hello, binary noise).
pub fn parse(bytes: &[u8]) -> Option<RawHead> {
    // Only the head: up to and including the blank line, when there is one.
    let end = head_end(bytes);
    let text = String::from_utf8_lossy(bytes.get(..end).unwrap_or(bytes));
    // A final newline ends the last line; only an empty line of its own ends the head.
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next()?;
    let mut words = first.split(' ').filter(|w| !w.is_empty());
    let method = words.next()?;
    if !method.bytes().all(|c| c.is_ascii_graphic()) || method.len() > 64 {
        return None;
    }
    let target = words.next()?;
    let rest: Vec<&str> = words.collect();
    // A target with spaces: everything up to the last word when that word is a version.
    let (target, version) = match rest.split_last() {
        Some((v, middle)) if v.to_ascii_uppercase().starts_with("HTTP/") => {
            let mut t = target.to_owned();
            for w in middle {
                t.push(' ');
                t.push_str(w);
            }
            (t, (*v).to_owned())
        }
        Some(_) => (format!("{target} {}", rest.join(" ")), String::new()),
        None => (target.to_owned(), String::new()),
    };
    if version.is_empty() && !target.starts_with('/') && !target.contains("://") {
        return None;
    }
    // Room for a browser's usual dozen headers without growing the list.
    let mut headers: Vec<(String, String)> = Vec::with_capacity(16);
    let mut complete = false;
    for line in lines {
        if line.is_empty() {
            complete = true;
            break;
        }
        if line.starts_with([' ', '\t'])
            && let Some((_, value)) = headers.last_mut()
        {
            value.push_str("\r\n ");
            value.push_str(line.trim_matches([' ', '\t']));
            continue;
        }
        if headers.len() >= MAX_HEADERS {
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    Some(RawHead {
        method: method.to_owned(),
        target,
        version,
        headers,
        complete,
    })
}

/// Where the head ends: four bytes past the first newline followed by another newline
/// or a carriage return (the blank line), or the end of `bytes` when there is none.
/// Jumps from newline to newline rather than comparing every pair of bytes.
fn head_end(bytes: &[u8]) -> usize {
    let mut from = 0;
    while let Some(i) = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        let at = from + i;
        match bytes.get(at + 1) {
            Some(b'\n' | b'\r') => return (at + 4).min(bytes.len()),
            Some(_) => from = at + 1,
            None => break,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_read_as_sent() {
        let h = parse(
            b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nTransfer-Encoding : xchunked\r\nX-A: one\r\n two\r\n\r\nbody",
        )
        .unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str()), ("POST", "/a?b=1"));
        assert_eq!(h.version, "HTTP/1.1");
        assert!(h.complete);
        assert_eq!(
            h.headers,
            vec![
                ("Host".to_owned(), "x".to_owned()),
                ("Content-Length".to_owned(), "5".to_owned()),
                ("Content-Length".to_owned(), "6".to_owned()),
                ("Transfer-Encoding ".to_owned(), "xchunked".to_owned()),
                ("X-A".to_owned(), "one\r\n two".to_owned()),
            ]
        );
    }

    #[test]
    fn the_head_ends_where_a_pairwise_search_says() {
        let pairwise = |bytes: &[u8]| {
            bytes
                .windows(2)
                .position(|w| w == b"\n\n" || w == b"\n\r")
                .map_or(bytes.len(), |i| (i + 4).min(bytes.len()))
        };
        for case in [
            &b""[..],
            b"\n",
            b"\n\n",
            b"\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody",
            b"GET / HTTP/1.1\nHost: a\n\nbody",
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r",
            b"GET / HTTP/1.1\r\nX: \n\n",
            b"a\nb\nc\n\rd",
            b"no newline at all",
        ] {
            assert_eq!(head_end(case), pairwise(case), "{case:?}");
        }
    }

    #[test]
    fn odd_request_lines_are_read_and_noise_is_not() {
        let h = parse(b"GET /a b HTTP/1.1\nHost: x\n").unwrap();
        assert_eq!(
            (h.target.as_str(), h.version.as_str()),
            ("/a b", "HTTP/1.1")
        );
        assert!(!h.complete);
        assert_eq!(
            parse(b"GET / HTTP/3.7\r\n\r\n").unwrap().version,
            "HTTP/3.7"
        );
        assert!(parse(b"\x16\x03\x01\x02\x00 TLS").is_none());
        assert!(parse(b"").is_none());
    }
}
