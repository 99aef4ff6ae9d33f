//! RFC 6587 framing: cutting a TCP byte stream into syslog messages, apart from parsing
//! them. Each message is framed either by octet counting (`LEN SP MSG`, RFC 5425's
//! form, used by rsyslog and syslog-ng for RFC 5424) or by a trailing LF or NUL (the
//! traditional form), and senders may mix them, so the framing is decided again at
//! the start of every message: a frame that starts with a non-zero digit run and a
//! space is octet-counted, anything else runs to the next LF or NUL.
//!
//! Memory is bounded by the message limit: a longer message is cut at the limit
//! ([`Frame::Oversized`]) and the rest of it skipped as it arrives, never buffered.

/// One message cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole message, without its framing (length prefix, LF, CR LF or NUL).
    Message(Vec<u8>),
    /// A message longer than the limit: its first `limit` bytes. `len` is its full
    /// length when known (an octet count, or a delimiter found in the same read).
    Oversized {
        /// The first bytes of the message, up to the limit.
        head: Vec<u8>,
        /// The message's full length, when the stream said it.
        len: Option<usize>,
    },
    /// The stream ended inside an octet-counted message: what arrived of it.
    Truncated {
        /// The bytes received.
        head: Vec<u8>,
        /// The length the sender announced.
        len: usize,
    },
}

/// What the decoder is throwing away: the rest of an oversized message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// This many more bytes of an octet-counted message.
    Bytes(usize),
    /// Everything up to and including the next LF or NUL.
    ToDelimiter,
}

/// Longest octet count read (9 digits): a longer digit run is not a length.
const MAX_LEN_DIGITS: usize = 9;

/// An incremental RFC 6587 decoder for one connection. Feed it whatever each read
/// returned; it holds at most one partial message (never more than the limit plus
/// one read).
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    buf: Vec<u8>,
    skip: Skip,
}

impl Decoder {
    /// A decoder cutting messages at `limit` bytes (at least 1).
    pub fn new(limit: usize) -> Self {
        Decoder {
            limit: limit.max(1),
            buf: Vec::new(),
            skip: Skip::Nothing,
        }
    }

    /// Bytes held for an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the bytes of one read and appends every message they complete to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Frame>) {
        self.buf.extend_from_slice(data);
        let used = self.decode(out);
        self.buf.drain(..used.min(self.buf.len()));
    }

    /// The stream ended cleanly: a last message without a trailing LF is complete; an
    /// octet-counted message cut short is [`Frame::Truncated`].
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        let rest = std::mem::take(&mut self.buf);
        let skipping = self.skip != Skip::Nothing;
        self.skip = Skip::Nothing;
        let rest = trim_delimiters(&rest);
        if rest.is_empty() || skipping {
            return;
        }
        match octet_count(rest) {
            Some(Count::Complete { len, digits }) => out.push(Frame::Truncated {
                head: rest.get(digits + 1..).unwrap_or_default().to_vec(),
                len,
            }),
            _ if rest.len() > self.limit => out.push(Frame::Oversized {
                head: rest.get(..self.limit).unwrap_or_default().to_vec(),
                len: Some(rest.len()),
            }),
            _ => out.push(Frame::Message(strip_cr(rest).to_vec())),
        }
    }

    /// Cuts frames from the start of the buffer; returns how many bytes were used.
    fn decode(&mut self, out: &mut Vec<Frame>) -> usize {
        let mut pos = 0;
        loop {
            let rest = self.buf.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return pos;
            }
            match self.skip {
                Skip::Bytes(n) => {
                    let k = n.min(rest.len());
                    pos += k;
                    self.skip = if n > k {
                        Skip::Bytes(n - k)
                    } else {
                        Skip::Nothing
                    };
                    continue;
                }
                Skip::ToDelimiter => match delimiter(rest) {
                    Some(i) => {
                        pos += i + 1;
                        self.skip = Skip::Nothing;
                        continue;
                    }
                    None => return self.buf.len(),
                },
                Skip::Nothing => {}
            }
            // Delimiters between frames (an LF after an octet-counted message, CR LF).
            if matches!(rest.first(), Some(b'\n' | b'\r' | b'\0')) {
                pos += 1;
                continue;
            }
            match octet_count(rest) {
                Some(Count::NeedMore) => return pos,
                Some(Count::Complete { len, digits }) => {
                    let body = rest.get(digits + 1..).unwrap_or_default();
                    if len <= self.limit {
                        let Some(msg) = body.get(..len) else {
                            return pos;
                        };
                        out.push(Frame::Message(msg.to_vec()));
                        pos += digits + 1 + len;
                    } else {
                        let Some(head) = body.get(..self.limit) else {
                            return pos;
                        };
                        out.push(Frame::Oversized {
                            head: head.to_vec(),
                            len: Some(len),
                        });
                        pos += digits + 1 + self.limit;
                        self.skip = Skip::Bytes(len - self.limit);
                    }
                    continue;
                }
                None => {}
            }
            match delimiter(rest) {
                Some(i) => {
                    let msg = rest.get(..i).unwrap_or_default();
                    if i > self.limit {
                        out.push(Frame::Oversized {
                            head: msg.get(..self.limit).unwrap_or_default().to_vec(),
                            len: Some(i),
                        });
                    } else {
                        out.push(Frame::Message(strip_cr(msg).to_vec()));
                    }
                    pos += i + 1;
                }
                None => {
                    if rest.len() > self.limit {
                        out.push(Frame::Oversized {
                            head: rest.get(..self.limit).unwrap_or_default().to_vec(),
                            len: None,
                        });
                        self.skip = Skip::ToDelimiter;
                        return self.buf.len();
                    }
                    return pos;
                }
            }
        }
    }
}

/// What the start of a frame says about octet counting.
enum Count {
    /// `LEN SP` read.
    Complete { len: usize, digits: usize },
    /// Only digits so far: the next read decides.
    NeedMore,
}

/// `Some` when `rest` starts an octet-counted frame (or may, once more bytes arrive).
fn octet_count(rest: &[u8]) -> Option<Count> {
    if !matches!(rest.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_LEN_DIGITS {
        return None;
    }
    match rest.get(digits) {
        None => Some(Count::NeedMore),
        Some(b' ') => {
            let len = rest
                .get(..digits)?
                .iter()
                .fold(0usize, |v, &b| v * 10 + usize::from(b - b'0'));
            Some(Count::Complete { len, digits })
        }
        Some(_) => None,
    }
}

/// The first LF or NUL.
fn delimiter(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n' || c == b'\0')
}

fn strip_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn trim_delimiters(mut b: &[u8]) -> &[u8] {
    while let [b'\n' | b'\r' | b'\0', rest @ ..] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Message(m) => String::from_utf8_lossy(m).into_owned(),
                Frame::Oversized { head, len } => {
                    format!("OVERSIZED({len:?}):{}", String::from_utf8_lossy(head))
                }
                Frame::Truncated { head, len } => {
                    format!("TRUNCATED({len}):{}", String::from_utf8_lossy(head))
                }
            })
            .collect()
    }

    fn decode_in_chunks(input: &[u8], chunk: usize, limit: usize) -> Vec<String> {
        let mut d = Decoder::new(limit);
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            d.feed(c, &mut out);
            assert!(d.buffered() <= limit + chunk + MAX_LEN_DIGITS + 1);
        }
        d.finish(&mut out);
        msgs(&out)
    }

    #[test]
    fn newline_and_nul_framing() {
        let input = b"<13>a b\n<13>c\r\n<13>d\0<13>e";
        for chunk in [1, 2, 3, 5, 100] {
            assert_eq!(
                decode_in_chunks(input, chunk, 1024),
                ["<13>a b", "<13>c", "<13>d", "<13>e"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn octet_counting_and_mixed() {
        let input = b"11 <13>1 - - x17 <13>1 - - - - - x\n<13>lf framed\n4 a\nb\n9 123456789";
        for chunk in [1, 2, 7, 1000] {
            assert_eq!(
                decode_in_chunks(input, chunk, 1024),
                [
                    "<13>1 - - x",
                    "<13>1 - - - - - x",
                    "<13>lf framed",
                    "a\nb\n",
                    "123456789"
                ],
                "chunk {chunk}"
            );
        }
        // A digit run that is not followed by a space is an LF-framed message (an
        // RFC 3339 time without <PRI>).
        assert_eq!(
            decode_in_chunks(b"2024-01-01T00:00:00Z h x: y\n", 3, 1024),
            ["2024-01-01T00:00:00Z h x: y"]
        );
    }

    #[test]
    fn oversized_messages_are_cut_and_skipped() {
        // Octet-counted: 20 bytes with a limit of 8.
        let input = b"20 0123456789abcdefghij5 hello";
        for chunk in [1, 3, 100] {
            assert_eq!(
                decode_in_chunks(input, chunk, 8),
                ["OVERSIZED(Some(20)):01234567", "hello"],
                "chunk {chunk}"
            );
        }
        // LF-framed, longer than the limit within one read and across reads.
        let mut long = vec![b'x'; 50];
        long.extend_from_slice(b"\nok\n");
        assert_eq!(
            decode_in_chunks(&long, 100, 8),
            ["OVERSIZED(Some(50)):xxxxxxxx", "ok"]
        );
        assert_eq!(
            decode_in_chunks(&long, 4, 8),
            ["OVERSIZED(None):xxxxxxxx", "ok"]
        );
        // A stream that never sends a delimiter holds at most the limit plus a read.
        let mut d = Decoder::new(16);
        let mut out = Vec::new();
        for _ in 0..10_000 {
            d.feed(&[b'y'; 100], &mut out);
            assert!(d.buffered() <= 116);
        }
        assert_eq!(out.len(), 1);
        d.feed(b"\nafter\n", &mut out);
        assert_eq!(msgs(&out)[1], "after");
    }

    #[test]
    fn stream_ends() {
        assert_eq!(decode_in_chunks(b"10 abc", 2, 100), ["TRUNCATED(10):abc"]);
        assert_eq!(decode_in_chunks(b"\n\n", 1, 100), Vec::<String>::new());
        assert_eq!(decode_in_chunks(b"", 1, 100), Vec::<String>::new());
        assert_eq!(decode_in_chunks(b"123", 1, 100), ["123"]);
        assert_eq!(decode_in_chunks(b"123", 1, 2), ["OVERSIZED(Some(3)):12"]);
        // The rest of an oversized message being skipped is not a message.
        assert_eq!(
            decode_in_chunks(b"30 0123456789", 100, 4),
            ["OVERSIZED(Some(30)):0123"]
        );
    }

    #[test]
    fn huge_or_odd_counts_do_not_allocate() {
        // A 9-digit count is a length: cut at the limit, the rest skipped as it comes.
        assert_eq!(
            decode_in_chunks(b"999999999 abcdefgh", 100, 4),
            ["OVERSIZED(Some(999999999)):abcd"]
        );
        // Ten digits is no length: LF framing.
        assert_eq!(
            decode_in_chunks(b"1234567890 x\n", 100, 64),
            ["1234567890 x"]
        );
        assert_eq!(decode_in_chunks(b"0 x\n", 100, 64), ["0 x"]);
    }

    #[test]
    fn random_streams_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789 \n\r\0<>ab";
        for _ in 0..2_000 {
            let len = (next() % 300) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let limit = 1 + (next() % 40) as usize;
            let chunk = 1 + (next() % 50) as usize;
            let mut d = Decoder::new(limit);
            let mut out = Vec::new();
            for c in data.chunks(chunk) {
                d.feed(c, &mut out);
                assert!(d.buffered() <= limit + chunk + MAX_LEN_DIGITS + 1);
            }
            d.finish(&mut out);
            for f in &out {
                match f {
                    Frame::Message(m) => assert!(m.len() <= limit),
                    Frame::Oversized { head, .. } => assert_eq!(head.len(), limit),
                    Frame::Truncated { head, len } => assert!(head.len() < *len),
                }
            }
        }
    }
}
