//! SecLang transformations (`t:...`), with ModSecurity's documented behaviour.
//!
//! Values are text; bytes that are not UTF-8 after decoding are kept as Latin-1
//! characters (see [`crate::transform::bytes_to_text`]), so nothing is lost.

use std::borrow::Cow;

use crate::transform as base;

/// One transformation; `t:none` is not one, it clears the list while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecTransform {
    /// ASCII lower case.
    Lowercase,
    /// ASCII upper case.
    Uppercase,
    /// `%XX` and `+`.
    UrlDecode,
    /// `%XX`, `+` and `%uXXXX`.
    UrlDecodeUni,
    /// HTML entities.
    HtmlEntityDecode,
    /// JavaScript escapes `\xHH`, `\uHHHH`, `\n`, octal, `\c`.
    JsDecode,
    /// CSS escapes `\H…` (1–6 hex digits) and `\c`.
    CssDecode,
    /// Removes NUL bytes.
    RemoveNulls,
    /// Replaces NUL bytes with spaces.
    ReplaceNulls,
    /// Collapses whitespace runs into one space.
    CompressWhitespace,
    /// Removes all whitespace.
    RemoveWhitespace,
    /// `/* … */` becomes one space (an unterminated comment too).
    ReplaceComments,
    /// Removes `/* */`, `<!-- -->`, `--` and `#` comments.
    RemoveComments,
    /// Removes comment characters `/*`, `*/`, `<!--`, `-->`, `--`, `#`.
    RemoveCommentsChar,
    /// ModSecurity's `cmdLine`.
    CmdLine,
    /// Resolves `./`, `../` and `//`.
    NormalizePath,
    /// Like `NormalizePath` after turning `\` into `/`.
    NormalizePathWin,
    /// Base64 (stops at the first invalid character).
    Base64Decode,
    /// Base64, skipping invalid characters.
    Base64DecodeExt,
    /// Hex pairs to bytes.
    HexDecode,
    /// Bytes to hex pairs.
    HexEncode,
    /// `0x…` SQL hex literals to bytes.
    SqlHexDecode,
    /// Non-ASCII characters to `%uHHHH`.
    Utf8ToUnicode,
    /// ANSI C escapes (`\n`, `\x41`, octal).
    EscapeSeqDecode,
    /// The value's length in bytes.
    Length,
    /// Leading and trailing whitespace removed.
    Trim,
    /// Leading whitespace removed.
    TrimLeft,
    /// Trailing whitespace removed.
    TrimRight,
    /// `%`-encodes.
    UrlEncode,
}

impl SecTransform {
    /// Parses a `t:` name (case-insensitive, as ModSecurity); `None` when unknown.
    pub fn from_name(name: &str) -> Option<SecTransform> {
        use SecTransform as T;
        Some(match name.to_ascii_lowercase().as_str() {
            "lowercase" => T::Lowercase,
            "uppercase" => T::Uppercase,
            "urldecode" => T::UrlDecode,
            "urldecodeuni" => T::UrlDecodeUni,
            "htmlentitydecode" => T::HtmlEntityDecode,
            "jsdecode" => T::JsDecode,
            "cssdecode" => T::CssDecode,
            "removenulls" => T::RemoveNulls,
            "replacenulls" => T::ReplaceNulls,
            "compresswhitespace" => T::CompressWhitespace,
            "removewhitespace" => T::RemoveWhitespace,
            "replacecomments" => T::ReplaceComments,
            "removecomments" => T::RemoveComments,
            "removecommentschar" => T::RemoveCommentsChar,
            "cmdline" => T::CmdLine,
            "normalisepath" | "normalizepath" => T::NormalizePath,
            "normalisepathwin" | "normalizepathwin" => T::NormalizePathWin,
            "base64decode" => T::Base64Decode,
            "base64decodeext" => T::Base64DecodeExt,
            "hexdecode" => T::HexDecode,
            "hexencode" => T::HexEncode,
            "sqlhexdecode" => T::SqlHexDecode,
            "utf8tounicode" => T::Utf8ToUnicode,
            "escapeseqdecode" => T::EscapeSeqDecode,
            "length" => T::Length,
            "trim" => T::Trim,
            "trimleft" => T::TrimLeft,
            "trimright" => T::TrimRight,
            "urlencode" => T::UrlEncode,
            _ => return None,
        })
    }

    /// Applies the transformation.
    pub fn apply(self, s: &str) -> Cow<'_, str> {
        use SecTransform as T;
        match self {
            T::Lowercase => {
                if s.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(s.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(s)
                }
            }
            T::Uppercase => Cow::Owned(s.to_ascii_uppercase()),
            T::UrlDecode => base::url_decode(s),
            T::UrlDecodeUni => base::url_decode_uni(s),
            T::HtmlEntityDecode => base::html_entity_decode(s),
            T::JsDecode => js_decode(s),
            T::CssDecode => css_decode(s),
            T::RemoveNulls => base::remove_nulls(s),
            T::ReplaceNulls => Cow::Owned(s.replace('\0', " ")),
            T::CompressWhitespace => base::compress_whitespace(s),
            T::RemoveWhitespace => {
                Cow::Owned(s.chars().filter(|c| !is_space(*c)).collect::<String>())
            }
            T::ReplaceComments => replace_comments(s),
            T::RemoveComments => remove_comments(s),
            T::RemoveCommentsChar => {
                let mut o = s.to_string();
                for pat in ["/*", "*/", "<!--", "-->", "--", "#"] {
                    o = o.replace(pat, "");
                }
                Cow::Owned(o)
            }
            T::CmdLine => base::cmd_line(s),
            T::NormalizePath => normalize_path(s, false),
            T::NormalizePathWin => normalize_path(s, true),
            T::Base64Decode => base64(s, false),
            T::Base64DecodeExt => base64(s, true),
            T::HexDecode => hex_decode(s),
            T::HexEncode => Cow::Owned(s.bytes().map(|b| format!("{b:02x}")).collect()),
            T::SqlHexDecode => sql_hex_decode(s),
            T::Utf8ToUnicode => utf8_to_unicode(s),
            T::EscapeSeqDecode => escape_seq_decode(s),
            T::Length => Cow::Owned(s.len().to_string()),
            T::Trim => Cow::Borrowed(s.trim_matches(is_space)),
            T::TrimLeft => Cow::Borrowed(s.trim_start_matches(is_space)),
            T::TrimRight => Cow::Borrowed(s.trim_end_matches(is_space)),
            T::UrlEncode => Cow::Owned(url_encode(s)),
        }
    }
}

/// Applies a list in order.
pub fn apply_all<'a>(list: &[SecTransform], s: &'a str) -> Cow<'a, str> {
    let mut cur: Cow<'a, str> = Cow::Borrowed(s);
    for t in list {
        cur = match cur {
            Cow::Borrowed(b) => t.apply(b),
            Cow::Owned(o) => Cow::Owned(t.apply(&o).into_owned()),
        };
    }
    cur
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{A0}')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_run(bytes: &[u8], from: usize, max: usize) -> (u32, usize) {
    let mut v = 0u32;
    let mut n = 0;
    while n < max {
        match bytes.get(from + n).copied().and_then(hex) {
            Some(h) => {
                v = v * 16 + u32::from(h);
                n += 1;
            }
            None => break,
        }
    }
    (v, n)
}

/// ModSecurity `jsDecode`: `\uHHHH` keeps the low byte (or the full-width ASCII fold,
/// as ModSecurity does for FF01–FF5E), `\xHH`, octal `\OOO`, `\n` and friends, and
/// `\c` → `c`.
fn js_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        match b.get(i + 1).copied() {
            Some(b'u') => {
                let (v, n) = hex_run(b, i + 2, 4);
                if n == 4 {
                    let low = if (0xFF01..=0xFF5E).contains(&v) {
                        (v - 0xFEE0) as u8
                    } else {
                        (v & 0xFF) as u8
                    };
                    out.push(low);
                    i += 6;
                } else {
                    out.push(b'u');
                    i += 2;
                }
            }
            Some(b'x') => {
                let (v, n) = hex_run(b, i + 2, 2);
                if n == 2 {
                    out.push(v as u8);
                    i += 4;
                } else {
                    out.push(b'x');
                    i += 2;
                }
            }
            Some(d @ b'0'..=b'7') => {
                let mut v = u32::from(d - b'0');
                let mut n = 1;
                while n < 3 {
                    match b.get(i + 1 + n) {
                        Some(&o @ b'0'..=b'7') if v * 8 + u32::from(o - b'0') <= 0xFF => {
                            v = v * 8 + u32::from(o - b'0');
                            n += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
                i += 1 + n;
            }
            Some(e) => {
                out.push(match e {
                    b'a' => 7,
                    b'b' => 8,
                    b'f' => 12,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 11,
                    other => other,
                });
                i += 2;
            }
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    Cow::Owned(base::bytes_to_text(out))
}

/// ModSecurity `cssDecode`: `\` + 1–6 hex digits (one optional following whitespace is
/// eaten) keeps the low byte (full-width ASCII folded); `\` + other char is that char;
/// `\` + newline is removed.
fn css_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let (v, n) = hex_run(b, i + 1, 6);
        if n > 0 {
            let low = if (0xFF01..=0xFF5E).contains(&v) {
                (v - 0xFEE0) as u8
            } else {
                (v & 0xFF) as u8
            };
            out.push(low);
            i += 1 + n;
            if b.get(i).is_some_and(|w| w.is_ascii_whitespace()) {
                i += 1;
            }
        } else {
            match b.get(i + 1).copied() {
                Some(b'\n') => i += 2,
                Some(o) => {
                    out.push(o);
                    i += 2;
                }
                None => i += 1,
            }
        }
    }
    Cow::Owned(base::bytes_to_text(out))
}

fn replace_comments(s: &str) -> Cow<'_, str> {
    if !s.contains("/*") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("/*") {
        out.push_str(rest.get(..p).unwrap_or(""));
        out.push(' ');
        let after = rest.get(p + 2..).unwrap_or("");
        rest = match after.find("*/") {
            Some(e) => after.get(e + 2..).unwrap_or(""),
            None => "",
        };
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn remove_comments(s: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let next = ["/*", "<!--", "--", "#"]
            .iter()
            .filter_map(|m| rest.find(m).map(|p| (p, *m)))
            .min_by_key(|(p, _)| *p);
        let Some((p, m)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(rest.get(..p).unwrap_or(""));
        let after = rest.get(p + m.len()..).unwrap_or("");
        let end = match m {
            "/*" => after.find("*/").map(|e| e + 2),
            "<!--" => after.find("-->").map(|e| e + 3),
            _ => after.find('\n'),
        };
        rest = match end {
            Some(e) => after.get(e..).unwrap_or(""),
            None => "",
        };
    }
    Cow::Owned(out)
}

fn normalize_path(s: &str, win: bool) -> Cow<'_, str> {
    let input: Cow<'_, str> = if win && s.contains('\\') {
        Cow::Owned(s.replace('\\', "/"))
    } else {
        Cow::Borrowed(s)
    };
    if !input.contains("/.") && !input.contains("//") && !input.starts_with("./") {
        return input;
    }
    let absolute = input.starts_with('/');
    let trailing = input.ends_with('/') || input.ends_with("/.") || input.ends_with("/..");
    let mut stack: Vec<&str> = Vec::new();
    for seg in input.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if matches!(stack.last(), Some(&l) if l != "..") {
                    stack.pop();
                } else if !absolute {
                    stack.push("..");
                }
            }
            x => stack.push(x),
        }
    }
    let mut out = String::new();
    if absolute {
        out.push('/');
    }
    out.push_str(&stack.join("/"));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    Cow::Owned(out)
}

fn base64(s: &str, ext: bool) -> Cow<'_, str> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ if ext => continue,
            _ => break,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push(((bits >> nbits) & 0xFF) as u8);
        }
    }
    Cow::Owned(base::bytes_to_text(out))
}

fn hex_decode(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let out: Vec<u8> = b
        .chunks(2)
        .filter_map(|p| match p {
            [h, l] => Some(hex(*h)? * 16 + hex(*l)?),
            _ => None,
        })
        .collect();
    Cow::Owned(base::bytes_to_text(out))
}

fn sql_hex_decode(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if !s.contains("0x") && !s.contains("0X") {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            let mut j = i + 2;
            let mut dec = Vec::new();
            while let (Some(h), Some(l)) = (
                b.get(j).copied().and_then(hex),
                b.get(j + 1).copied().and_then(hex),
            ) {
                dec.push(h * 16 + l);
                j += 2;
            }
            if !dec.is_empty() {
                out.extend(dec);
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(base::bytes_to_text(out))
}

fn utf8_to_unicode(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("%u{:04x}", u32::from(c)));
        }
    }
    Cow::Owned(out)
}

fn escape_seq_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        match b.get(i + 1).copied() {
            Some(b'x') => {
                let (v, n) = hex_run(b, i + 2, 2);
                if n == 2 {
                    out.push(v as u8);
                    i += 4;
                } else {
                    out.extend_from_slice(b"\\x");
                    i += 2;
                }
            }
            Some(d @ b'0'..=b'7') => {
                let mut v = u32::from(d - b'0');
                let mut n = 1;
                while n < 3 {
                    match b.get(i + 1 + n) {
                        Some(&o @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(o - b'0');
                            n += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xFF) as u8);
                i += 1 + n;
            }
            Some(e) => {
                let m = match e {
                    b'a' => Some(7),
                    b'b' => Some(8),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(11),
                    b'\\' | b'?' | b'\'' | b'"' => Some(e),
                    _ => None,
                };
                match m {
                    Some(x) => out.push(x),
                    None => out.extend_from_slice(&[b'\\', e]),
                }
                i += 2;
            }
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    Cow::Owned(base::bytes_to_text(out))
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::SecTransform as T;

    fn t(name: &str, s: &str) -> String {
        T::from_name(name).unwrap().apply(s).into_owned()
    }

    // Expected values follow the ModSecurity reference manual's descriptions (and the
    // examples in its transformation test suite).
    #[test]
    fn documented_behaviour() {
        assert_eq!(t("lowercase", "SeLeCT Ä"), "select Ä");
        assert_eq!(t("urlDecodeUni", "%u0027or%201%3d1+x"), "'or 1=1 x");
        assert_eq!(t("jsDecode", "\\x3cscript\\u003e\\n\\'"), "<script>\n'");
        assert_eq!(t("jsDecode", "\\uff1cx"), "<x", "full-width folded");
        assert_eq!(t("jsDecode", "\\u0131x"), "1x", "low byte kept");
        assert_eq!(t("cssDecode", "\\6a avascript\\3a"), "javascript:");
        assert_eq!(t("cssDecode", "j\\a"), "j\n");
        assert_eq!(t("compressWhitespace", "a \t\n b"), "a b");
        assert_eq!(t("removeWhitespace", "s e\tl\ne c t"), "select");
        assert_eq!(t("replaceComments", "UN/**/ION/*x"), "UN ION ");
        assert_eq!(t("removeComments", "a/*x*/b-- c\nd#e"), "ab\nd");
        assert_eq!(t("cmdLine", "C^a\"t /E't'C/passwd;ls"), "cat/etc/passwd ls");
        assert_eq!(
            t("normalisePath", "/a/./b/../../../etc//passwd"),
            "/etc/passwd"
        );
        assert_eq!(t("normalizePathWin", "a\\b\\..\\c"), "a/c");
        assert_eq!(t("base64Decode", "c2VsZWN0IDE="), "select 1");
        assert_eq!(t("base64DecodeExt", "c2Vs.ZWN0"), "select");
        assert_eq!(t("hexDecode", "414243"), "ABC");
        assert_eq!(t("hexEncode", "AB"), "4142");
        assert_eq!(t("sqlHexDecode", "0x414243 x"), "ABC x");
        assert_eq!(t("utf8toUnicode", "aé"), "a%u00e9");
        assert_eq!(t("length", "héllo"), "6");
        assert_eq!(t("removeNulls", "a\0b"), "ab");
        assert_eq!(t("replaceNulls", "a\0b"), "a b");
        assert_eq!(t("trim", "  x "), "x");
        assert_eq!(t("escapeSeqDecode", "\\x41\\101\\n\\q"), "AA\n\\q");
        assert_eq!(t("htmlEntityDecode", "&lt;&#x73;"), "<s");
        assert!(T::from_name("sha1").is_none());
    }
}
