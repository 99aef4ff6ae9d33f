//! Compressed request bodies (`Content-Encoding`, RFC 9110 §8.4.1), decoded for
//! inspection only: the upstream still gets the bytes the client sent.
//!
//! An attack gzip-compressed is the same attack, so a body in a coding is inspected in
//! its decoded form, held to the same size limit as a plain body, and to a ratio limit
//! against decompression bombs. Decoding runs in memory (bounded by both limits) with
//! pure-Rust decoders: `flate2` (gzip, deflate) and `brotli-decompressor` (br).
//!
//! What cannot be decoded is refused rather than forwarded unseen: an unknown coding
//! (415, counted and logged: a client choice, not an attack), a corrupt stream (415 and
//! a threat: a body that claims a coding it does not have is an evasion shape), a
//! stream that expands past the ratio (413 and a threat: a bomb), and a decoded body
//! past `max_body_bytes` (413, like a plain body that size; with `oversize =
//! "inspect_prefix"` its decoded prefix is inspected instead).

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

/// Decoded bodies are not held to the ratio until they pass this size: small, very
/// repetitive bodies (JSON arrays, padding) legitimately compress far better than 100:1
/// and cost nothing to inspect.
const RATIO_FLOOR: usize = 64 * 1024;

/// One content coding the proxy can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (or `x-gzip`), RFC 1952; several members are read one after another.
    Gzip,
    /// `deflate`: a zlib stream (RFC 1950), or, as clients also send, a raw one.
    Deflate,
    /// `br`, RFC 7932.
    Brotli,
}

impl Coding {
    /// The coding's name as written in `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
        }
    }
}

/// Limits on decoding one body.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most decoded bytes inspected (`max_body_bytes`).
    pub max_bytes: usize,
    /// Most decoded bytes per encoded byte past [`RATIO_FLOOR`].
    pub max_ratio: u32,
    /// Keep the first `max_bytes` of a larger body instead of refusing it.
    pub allow_prefix: bool,
}

/// Why a body cannot be inspected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A coding the proxy does not decode (compress, zstd, a typo).
    #[error("content coding '{0}' cannot be decoded for inspection")]
    Unsupported(String),
    /// The body is not valid in the coding it claims.
    #[error("the body is not valid {coding}: {reason}")]
    Corrupt {
        /// The coding claimed.
        coding: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// Decoding expands the body past the ratio limit.
    #[error("the {coding} body expands more than {ratio}:1 (a decompression bomb)")]
    Bomb {
        /// The coding being decoded.
        coding: &'static str,
        /// The limit.
        ratio: u32,
    },
    /// The decoded body is larger than the inspection limit.
    #[error("the decoded body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// The codings a request says its body is in, in the order they were applied
/// (`identity` left out). Empty for a plain body.
pub fn codings(headers: &HeaderMap) -> Result<Vec<Coding>, DecodeError> {
    let mut out = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let coding = match name.to_ascii_lowercase().as_str() {
                "identity" => continue,
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                "br" => Coding::Brotli,
                _ => return Err(DecodeError::Unsupported(name.chars().take(64).collect())),
            };
            out.push(coding);
        }
    }
    Ok(out)
}

/// Decodes `body` (coded with `codings`, in that order) for inspection. `truncated`
/// says the body is only the first part of a longer one (an oversized body inspected
/// by prefix): the decoders then stop quietly where it ends. Returns the decoded bytes
/// and whether they are only a prefix.
pub fn decode(
    codings: &[Coding],
    body: Bytes,
    truncated: bool,
    limits: Limits,
) -> Result<(Bytes, bool), DecodeError> {
    let mut data = body;
    let mut partial = truncated;
    for &coding in codings.iter().rev() {
        let (out, cut) = decode_one(coding, &data, partial, limits)?;
        data = out;
        partial |= cut;
    }
    Ok((data, partial))
}

fn decode_one(
    coding: Coding,
    input: &[u8],
    truncated: bool,
    limits: Limits,
) -> Result<(Bytes, bool), DecodeError> {
    let ratio_cap = input
        .len()
        .saturating_mul(limits.max_ratio as usize)
        .max(RATIO_FLOOR);
    let cap = limits.max_bytes.min(ratio_cap);
    let result = match coding {
        Coding::Gzip => read_capped(flate2::read::MultiGzDecoder::new(input), cap),
        Coding::Brotli => read_capped(brotli_decompressor::Decompressor::new(input, 4096), cap),
        Coding::Deflate => match read_capped(flate2::read::ZlibDecoder::new(input), cap) {
            Ok(out) => Ok(out),
            Err(_) => read_capped(flate2::read::DeflateDecoder::new(input), cap),
        },
    };
    let (out, more) = match result {
        Ok(done) => done,
        // A prefix of a stream ends early; what was decoded is what there is to see.
        Err((out, _)) if truncated => (out, false),
        Err((_, error)) => {
            return Err(DecodeError::Corrupt {
                coding: coding.as_str(),
                reason: error.to_string(),
            });
        }
    };
    if !more {
        return Ok((Bytes::from(out), false));
    }
    if cap < limits.max_bytes {
        return Err(DecodeError::Bomb {
            coding: coding.as_str(),
            ratio: limits.max_ratio,
        });
    }
    if limits.allow_prefix {
        return Ok((Bytes::from(out), true));
    }
    Err(DecodeError::TooLarge {
        limit: limits.max_bytes,
    })
}

/// Reads at most `cap` bytes; `more` is true when the stream had more. On an error,
/// what was read so far comes back with it.
fn read_capped(
    mut reader: impl Read,
    cap: usize,
) -> Result<(Vec<u8>, bool), (Vec<u8>, std::io::Error)> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok((out, false)),
            Ok(n) => {
                let room = cap - out.len();
                if n > room {
                    out.extend_from_slice(&chunk[..room]);
                    return Ok((out, true));
                }
                out.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((out, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn limits(max_bytes: usize) -> Limits {
        Limits {
            max_bytes,
            max_ratio: 100,
            allow_prefix: false,
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, value.parse().unwrap());
        h
    }

    #[test]
    fn codings_are_read_in_order_and_unknown_ones_refused() {
        assert_eq!(codings(&HeaderMap::new()).unwrap(), vec![]);
        assert_eq!(codings(&headers("identity")).unwrap(), vec![]);
        assert_eq!(
            codings(&headers("GZIP, br")).unwrap(),
            vec![Coding::Gzip, Coding::Brotli]
        );
        assert_eq!(
            codings(&headers("zstd")),
            Err(DecodeError::Unsupported("zstd".into()))
        );
    }

    #[test]
    fn stacked_codings_are_undone_last_first() {
        let plain = b"q=1' union select password from users--".to_vec();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&gzip(&plain)).unwrap();
        }
        let (out, partial) = decode(
            &[Coding::Gzip, Coding::Brotli],
            Bytes::from(br),
            false,
            limits(1 << 20),
        )
        .unwrap();
        assert_eq!(&out[..], &plain[..]);
        assert!(!partial);
    }

    #[test]
    fn raw_and_zlib_deflate_both_decode() {
        let plain = b"a=<script>alert(1)</script>";
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(plain).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(plain).unwrap();
        for body in [z.finish().unwrap(), raw.finish().unwrap()] {
            let (out, _) =
                decode(&[Coding::Deflate], Bytes::from(body), false, limits(1024)).unwrap();
            assert_eq!(&out[..], plain);
        }
    }

    #[test]
    fn bombs_corrupt_streams_and_oversize_bodies_are_told_apart() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20 * 1024, "{}", bomb.len());
        assert!(matches!(
            decode(
                &[Coding::Gzip],
                Bytes::from(bomb.clone()),
                false,
                limits(64 << 20)
            ),
            Err(DecodeError::Bomb { .. })
        ));
        // Under a small inspection limit the same stream is simply too large...
        assert_eq!(
            decode(
                &[Coding::Gzip],
                Bytes::from(bomb.clone()),
                false,
                limits(4096)
            ),
            Err(DecodeError::TooLarge { limit: 4096 })
        );
        // ...or, inspecting prefixes, its first bytes are inspected.
        let prefix = Limits {
            allow_prefix: true,
            ..limits(4096)
        };
        let (out, partial) = decode(&[Coding::Gzip], Bytes::from(bomb), false, prefix).unwrap();
        assert_eq!((out.len(), partial), (4096, true));
        assert!(matches!(
            decode(
                &[Coding::Gzip],
                Bytes::from_static(b"not gzip at all"),
                false,
                limits(4096)
            ),
            Err(DecodeError::Corrupt { coding: "gzip", .. })
        ));
        assert!(matches!(
            decode(
                &[Coding::Brotli],
                Bytes::from_static(b"\xff\xff\xff\xff"),
                false,
                limits(4096)
            ),
            Err(DecodeError::Corrupt { coding: "br", .. })
        ));
        // A prefix of a valid stream (the body was cut at the limit) is not corrupt.
        let text: String = (0..5000u32)
            .map(|i| format!("x{i}=v{}&", i.wrapping_mul(7919) % 10007))
            .collect();
        let long = gzip(text.as_bytes());
        let cut = Bytes::copy_from_slice(&long[..long.len() / 2]);
        let (out, _) = decode(&[Coding::Gzip], cut, true, limits(1 << 20)).unwrap();
        assert!(
            out.len() > 1000 && text.as_bytes().starts_with(&out),
            "{}",
            out.len()
        );
    }
}
