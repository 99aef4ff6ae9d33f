//! Splitting request text at one ASCII byte (`&`, `=`, `/`, `?`, `#`), as `str::split`
//! and `str::split_once` with that character split it, found by a plain byte loop in
//! text shorter than [`SHORT`] and by the `memchr` crate's vector search in longer.
//!
//! The parse and the framing checks split every target and query into pieces (an
//! argument pair is a few dozen bytes, a query under a hundred); the standard library's
//! character searcher cost ~100 instructions a search whatever the length, 20-odd
//! searches a benign GET (docs/BENCHMARKS.md, `proxy9`). An ASCII byte never occurs
//! inside a multi-byte UTF-8 sequence, so the byte positions are the character
//! positions and the pieces are the same.

/// Below this many bytes a byte loop finds a byte in fewer instructions than `memchr`
/// (about five a byte against a set-up of ~60; measured with callgrind, `proxy9`).
const SHORT: usize = 16;

/// Where `sep` first occurs in `bytes`.
#[inline]
fn find(bytes: &[u8], sep: u8) -> Option<usize> {
    if bytes.len() < SHORT {
        bytes.iter().position(|&b| b == sep)
    } else {
        memchr::memchr(sep, bytes)
    }
}

/// `s` split at every `sep`, as `s.split(sep as char)` gives it. `sep` must be ASCII
/// (every caller passes a literal): a non-ASCII byte would split inside characters.
pub(crate) fn split_at(s: &str, sep: u8) -> SplitAt<'_> {
    debug_assert!(sep.is_ascii(), "split_at needs an ASCII separator");
    SplitAt { rest: Some(s), sep }
}

/// `s` split at its first `sep`, as `s.split_once(sep as char)` gives it (`sep`
/// ASCII, as for [`split_at`]).
pub(crate) fn split_once_at(s: &str, sep: u8) -> Option<(&str, &str)> {
    debug_assert!(sep.is_ascii(), "split_once_at needs an ASCII separator");
    let i = find(s.as_bytes(), sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// The pieces of [`split_at`].
pub(crate) struct SplitAt<'a> {
    /// What is left to split; `None` once the last piece was given.
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitAt<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match find(s.as_bytes(), self.sep) {
            Some(i) => {
                self.rest = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts with separators at both ends, doubled, absent, and beside multi-byte
    /// characters (whose bytes are never ASCII).
    const TEXTS: &[&str] = &[
        "",
        "&",
        "&&",
        "a",
        "a&b",
        "&a&",
        "a&&b=c&=d&e=",
        "id=3&nombre=Vino+Rioja&precio=100&B1=A%F1adir+al+carrito",
        "/tienda1/publico/anadir.jsp",
        "//a//b/",
        "é&ü=ß/€&𝄞=/&",
        "=a=b==",
        "a=é=&=&==/",
        // Longer than a short text, the separators before, at and after its end.
        "aaaaaaaaaaaaaaa&bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=c&&ddddddddddddddddd/e",
        "0123456789abcde&0123456789abcdef=0123456789abcdefg/0123456789abcdefgh",
        "ééééééééé&üüüüüüüüüüü=€€€€€€€€€€€€/𝄞𝄞𝄞𝄞𝄞𝄞𝄞𝄞&",
    ];

    #[test]
    fn pieces_are_those_of_str_split() -> Result<(), String> {
        for text in TEXTS {
            for sep in [b'&', b'=', b'/', b';'] {
                let ours: Vec<&str> = split_at(text, sep).collect();
                let std: Vec<&str> = text.split(char::from(sep)).collect();
                if ours != std {
                    return Err(format!("{text:?} at {:?}: {ours:?} ≠ {std:?}", sep as char));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn random_texts_split_as_str_split_does() -> Result<(), String> {
        // Texts of 0 to 80 pieces drawn from separators, ASCII and multi-byte
        // characters, so the byte loop and the vector search both meet separators at
        // every place (a fixed linear congruential sequence: the same texts each run).
        let pieces = [
            "a", "&", "=", "/", "#", "?", "bc", "é", "€", "𝄞", "%26", " ",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for _ in 0..3_000 {
            let len = next(81);
            let text: String = (0..len)
                .map(|_| pieces.get(next(pieces.len())).copied().unwrap_or("a"))
                .collect();
            for sep in [b'&', b'=', b'/', b'#', b'?'] {
                let ours: Vec<&str> = split_at(&text, sep).collect();
                let std: Vec<&str> = text.split(char::from(sep)).collect();
                if ours != std || split_once_at(&text, sep) != text.split_once(char::from(sep)) {
                    return Err(format!("{text:?} at {:?}", sep as char));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn the_first_split_is_that_of_str_split_once() -> Result<(), String> {
        for text in TEXTS {
            for sep in [b'&', b'=', b'/', b'?'] {
                let ours = split_once_at(text, sep);
                let std = text.split_once(char::from(sep));
                if ours != std {
                    return Err(format!("{text:?} at {:?}: {ours:?} ≠ {std:?}", sep as char));
                }
            }
        }
        Ok(())
    }
}
