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
    /// Reads `recorded` and keeps it when its method and target are the request's;
    /// the header lines are written into `spare`'s strings (see [`parse_reusing`]).
    pub fn read<B>(recorded: &[u8], req: &http::Request<B>, spare: Spare) -> SentHead {
        let head = parse_reusing(recorded, spare).filter(|h| {
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

/// Header lines kept from a head read before (a request judged earlier on the same
/// connection): [`parse_reusing`] writes the next head's lines into these strings
/// rather than allocating two for every line.
pub type Spare = Vec<(String, String)>;

/// Reads a head from the start of `bytes`; `None` when the first line does not look
/// like an HTTP request line (a TLS hello, binary noise).
pub fn parse(bytes: &[u8]) -> Option<RawHead> {
    parse_reusing(bytes, Spare::new())
}

/// [`parse`], its header lines written into the strings of `spare` (and its list)
/// where there are some: the same head, fewer allocations.
pub fn parse_reusing(bytes: &[u8], spare: Spare) -> Option<RawHead> {
    // Only the head: up to and including the blank line, when there is one.
    let end = head_end(bytes);
    let head = bytes.get(..end).unwrap_or(bytes);
    // A final newline ends the last line; only an empty line of its own ends the head.
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    // Lines, names and values are cut at ASCII bytes (`\n`, `\r`, `:`, space, tab),
    // which never belong to a UTF-8 sequence, valid or not: each piece read as lossy
    // UTF-8 on its own is what the same piece of the whole head read so would be. A
    // head that is UTF-8 as a whole (nearly all) is checked once, not piece by piece.
    let text = Text::new(head);
    let mut lines = Lines { head, at: 0 };
    let first = lines.next()?;
    let first = text.piece(first.0, first.1);
    let (method, target, version) = request_line(&first)?;
    let mut headers = spare;
    if headers.capacity() == 0 {
        // Room for a browser's usual dozen headers without growing the list.
        headers.reserve(16);
    }
    // The lines read so far: `headers[..filled]` (the rest are spare strings).
    let mut filled: usize = 0;
    let mut complete = false;
    for (start, end) in lines {
        let line = head.get(start..end).unwrap_or_default();
        if line.is_empty() {
            complete = true;
            break;
        }
        if (line.starts_with(b" ") || line.starts_with(b"\t"))
            && let Some((_, value)) = filled.checked_sub(1).and_then(|i| headers.get_mut(i))
        {
            let (s, e) = trim(head, start, end);
            value.push_str("\r\n ");
            value.push_str(&text.piece(s, e));
            continue;
        }
        if filled >= MAX_HEADERS {
            continue;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => ((start, start + i), trim(head, start + i + 1, end)),
            None => ((start, end), (end, end)),
        };
        let (name, value) = (text.piece(name.0, name.1), text.piece(value.0, value.1));
        match headers.get_mut(filled) {
            Some((n, v)) => {
                n.clear();
                n.push_str(&name);
                v.clear();
                v.push_str(&value);
            }
            None => headers.push((name.into_owned(), value.into_owned())),
        }
        filled += 1;
    }
    headers.truncate(filled);
    Some(RawHead {
        method,
        target,
        version,
        headers,
        complete,
    })
}

/// The request line's method, target and version (empty when there is none); `None`
/// when it does not look like one.
fn request_line(first: &str) -> Option<(String, String, String)> {
    let is_version = |v: &str| v.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("HTTP/"));
    // The usual line, `METHOD SP TARGET SP VERSION` with single spaces: its three words
    // taken as they are, without the word list below (the same result).
    let mut three = first.splitn(3, ' ');
    if let (Some(method), Some(target), Some(version)) = (three.next(), three.next(), three.next())
        && !method.is_empty()
        && !target.is_empty()
        && !version.is_empty()
        && !version.contains(' ')
        && is_version(version)
    {
        if !method.bytes().all(|c| c.is_ascii_graphic()) || method.len() > 64 {
            return None;
        }
        return Some((method.to_owned(), target.to_owned(), version.to_owned()));
    }
    let mut words = first.split(' ').filter(|w| !w.is_empty());
    let method = words.next()?;
    if !method.bytes().all(|c| c.is_ascii_graphic()) || method.len() > 64 {
        return None;
    }
    let target = words.next()?;
    let rest: Vec<&str> = words.collect();
    // A target with spaces: everything up to the last word when that word is a version.
    let (target, version) = match rest.split_last() {
        Some((v, middle)) if is_version(v) => {
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
    Some((method.to_owned(), target, version))
}

/// The head's lines as `(start, end)` offsets, a trailing `\r` left out: what
/// `split(|&b| b == b'\n')` gives (the last piece included, even when empty), found
/// with `memchr` rather than byte by byte.
struct Lines<'a> {
    head: &'a [u8],
    /// Where the next line starts; past the end when every line was given.
    at: usize,
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let start = self.at;
        let rest = self.head.get(start..)?;
        let end = match memchr::memchr(b'\n', rest) {
            Some(i) => {
                self.at = start + i + 1;
                start + i
            }
            None => {
                self.at = self.head.len() + 1;
                self.head.len()
            }
        };
        let end = if end > start && self.head.get(end - 1) == Some(&b'\r') {
            end - 1
        } else {
            end
        };
        Some((start, end))
    }
}

/// The head as text: borrowed pieces of it when it is UTF-8 as a whole (checked once),
/// else each piece read as lossy UTF-8 on its own.
enum Text<'a> {
    Utf8(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> Text<'a> {
    fn new(head: &'a [u8]) -> Text<'a> {
        match std::str::from_utf8(head) {
            Ok(text) => Text::Utf8(text),
            Err(_) => Text::Bytes(head),
        }
    }

    /// The piece `start..end` (cut at ASCII bytes, so at character boundaries).
    fn piece(&self, start: usize, end: usize) -> std::borrow::Cow<'a, str> {
        match self {
            Text::Utf8(text) => {
                std::borrow::Cow::Borrowed(text.get(start..end).unwrap_or_default())
            }
            Text::Bytes(bytes) => lossy(bytes.get(start..end).unwrap_or_default()),
        }
    }
}

/// Bytes as text, invalid UTF-8 replaced (`String::from_utf8_lossy`); borrowed when
/// valid, checked by the fast validator first.
fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `head[start..end]` without leading and trailing spaces and tabs, as offsets.
fn trim(head: &[u8], start: usize, end: usize) -> (usize, usize) {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let bytes = head.get(start..end).unwrap_or_default();
    let from = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let to = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(from, |i| i + 1);
    (start + from, start + to)
}

/// Where the head ends: four bytes past the first newline followed by another newline
/// or a carriage return (the blank line), or the end of `bytes` when there is none.
/// Jumps from newline to newline rather than comparing every pair of bytes.
fn head_end(bytes: &[u8]) -> usize {
    let mut from = 0;
    while let Some(i) = bytes
        .get(from..)
        .and_then(|rest| memchr::memchr(b'\n', rest))
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
            b"GET  /a HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/1.1 \r\n\r\n",
            b"GET /a  HTTP/1.1\r\n\r\n",
            b"GET /a\tb HTTP/1.1\r\n\r\n",
            b"get /a http/1.1\r\nhost: x\r\n\r\n",
            b"GET /a HTTP/1.1 extra\r\n\r\n",
            b"GET /a HTTP/\r\n\r\n",
            b"GET /a HTTP\r\n\r\n",
            b"G\xc3T /a HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/1.1\r\r\nX: 1\r\n\r\n",
            b"GET /a HTTP/1.1\r\nX: 1\r\r\n\r\n",
            b"\r\nGET /a HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/1.1",
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
        // Read into the strings another head left (fewer lines, more, longer ones,
        // none): the same head as a fresh read.
        let spares: Vec<Spare> = cases
            .iter()
            .filter_map(|c| parse(c).map(|h| h.headers))
            .chain([Spare::new(), vec![("x".repeat(300), "y".repeat(900)); 3]])
            .collect();
        for case in &cases {
            for spare in &spares {
                assert_eq!(
                    parse_reusing(case, spare.clone()),
                    parse(case),
                    "{:?} into {} spare lines",
                    String::from_utf8_lossy(case),
                    spare.len()
                );
            }
        }
    }

    #[test]
    fn lines_are_what_a_split_on_newlines_gives() {
        for case in [
            &b""[..],
            b"\n",
            b"\r",
            b"\r\n",
            b"a",
            b"a\r\nb",
            b"a\r\nb\r",
            b"a\n\nb\n",
            b"\r\r\n\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody",
        ] {
            let split: Vec<&[u8]> = case
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .collect();
            let lines: Vec<&[u8]> = Lines { head: case, at: 0 }
                .map(|(s, e)| &case[s..e])
                .collect();
            assert_eq!(lines, split, "{case:?}");
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
