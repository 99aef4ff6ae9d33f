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
    let head = bytes.get(..end).unwrap_or(bytes);
    // A final newline ends the last line; only an empty line of its own ends the head.
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    // Lines, names and values are cut at ASCII bytes (`\n`, `\r`, `:`, space, tab),
    // which never belong to a UTF-8 sequence, valid or not: each piece read as lossy
    // UTF-8 on its own is what the same piece of the whole head read so would be.
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lossy(lines.next()?);
    let mut words = first.split(' ').filter(|w| !w.is_empty());
    let method = words.next()?;
    if !method.bytes().all(|c| c.is_ascii_graphic()) || method.len() > 64 {
        return None;
    }
    let target = words.next()?;
    let rest: Vec<&str> = words.collect();
    // A target with spaces: everything up to the last word when that word is a version.
    let (target, version) = match rest.split_last() {
        Some((v, middle)) if v.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("HTTP/")) => {
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
        if (line.starts_with(b" ") || line.starts_with(b"\t"))
            && let Some((_, value)) = headers.last_mut()
        {
            value.push_str("\r\n ");
            value.push_str(&lossy(trim(line)));
            continue;
        }
        if headers.len() >= MAX_HEADERS {
            continue;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (
                line.get(..i).unwrap_or(line),
                line.get(i + 1..).unwrap_or(&[]),
            ),
            None => (line, &[][..]),
        };
        headers.push((lossy(name).into_owned(), lossy(trim(value)).into_owned()));
    }
    Some(RawHead {
        method: method.to_owned(),
        target,
        version,
        headers,
        complete,
    })
}

/// Bytes as text, invalid UTF-8 replaced (`String::from_utf8_lossy`); borrowed when
/// valid, checked by the fast validator first.
fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `bytes` without leading and trailing spaces and tabs.
fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or(&[])
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

    /// The parser as it was before it read bytes (the whole head as lossy text first):
    /// the byte reader must give the same head for every input.
    fn parse_as_text(bytes: &[u8]) -> Option<RawHead> {
        let end = bytes
            .windows(2)
            .position(|w| w == b"\n\n" || w == b"\n\r")
            .map_or(bytes.len(), |i| (i + 4).min(bytes.len()));
        let text = String::from_utf8_lossy(bytes.get(..end).unwrap_or(bytes));
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
        let mut headers: Vec<(String, String)> = Vec::new();
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

    #[test]
    fn the_byte_reader_reads_what_the_text_reader_read() {
        let mut cases: Vec<Vec<u8>> = [
            &b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nTransfer-Encoding : xchunked\r\nX-A: one\r\n two\r\n\r\nbody"[..],
            b"GET /a b HTTP/1.1\nHost: x\n",
            b"GET / HTTP/3.7\r\n\r\n",
            b"GET / http/1.1\r\nA:\r\n:b\r\nnocolon\r\n\t folded\t \r\n\r\n",
            b"GET /x y z\r\n\r\n",
            b"GET http://h/x\r\n\r\n",
            b"GET * HTTP/1.1\r\n \r\n\r\n",
            b" \tGET  /  HTTP/1.1 \r\nA:  b  c \t\r\n",
            b"GET /\xff\xfe HTTP/1.1\r\nX-\xc3: \xe2\x82 v\xe2\x82\xac\r\nY: a\xc3\r\n \xf0\x9f\r\n\r\n",
            b"GET /\xc3:x HTTP/1.1\r\nA\xc3:\xc3\r\n\r\n",
            b"\x16\x03\x01\x02\x00 TLS",
            b"",
            b"\n",
            b"GET / HTTP/1.1\r\n\r",
            b"GET / HTTP/1.1\r\nA: 1\r\n\rB: 2\r\n",
            b"GET / HTTP\xc3/1.1\r\n\r\n",
        ]
        .iter()
        .map(|c| c.to_vec())
        .collect();
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..(MAX_HEADERS + 5) {
            many.extend_from_slice(format!("H{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b" folded after the cap\r\n\r\n");
        cases.push(many);
        for case in &cases {
            assert_eq!(
                parse(case),
                parse_as_text(case),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
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
