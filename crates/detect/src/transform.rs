//! Decoding and normalising transformations applied to a value before rules match.
//!
//! Attackers hide payloads behind encodings; every transformation here is a pure
//! `&str -> Cow<str>` so a rule's chain can be applied once per value and cached, and so a
//! value that needs no change is never copied.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;

/// One named transformation a rule can ask for, so rules stay data and chains can be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transform {
    /// Lenient `%XX` and `+` decoding; invalid escapes are kept as they are.
    UrlDecode,
    /// Like [`Transform::UrlDecode`] and also decodes IIS-style `%uXXXX`.
    UrlDecodeUni,
    /// Decodes common named HTML entities and numeric (decimal and hex) references.
    HtmlEntityDecode,
    /// Lowercases, so signatures can be written once in lower case.
    Lowercase,
    /// Resolves `.`/`..` segments and duplicate slashes, turns backslashes into slashes.
    NormalizePath,
    /// Turns every run of whitespace into a single space.
    CompressWhitespace,
    /// Removes NUL characters that split keywords.
    RemoveNulls,
    /// Removes SQL comments (`/* */`, `-- `, `#`) that split keywords.
    SqlCommentStrip,
    /// Folds full-width forms (U+FF01–FF5E, U+3000) onto ASCII.
    FullwidthFold,
    /// Decodes standard or URL-safe base64; values that are not base64 are kept.
    Base64Decode,
    /// ModSecurity `cmdLine`: removes `\ ' " ^`, normalises separators and case.
    CmdLine,
}

impl Transform {
    /// Parses the name used in rule files, so a typo is reported instead of ignored.
    pub fn from_name(name: &str) -> Option<Transform> {
        Some(match name {
            "url_decode" => Transform::UrlDecode,
            "url_decode_uni" => Transform::UrlDecodeUni,
            "html_entity_decode" => Transform::HtmlEntityDecode,
            "lowercase" => Transform::Lowercase,
            "normalize_path" => Transform::NormalizePath,
            "compress_whitespace" => Transform::CompressWhitespace,
            "remove_nulls" => Transform::RemoveNulls,
            "sql_comment_strip" => Transform::SqlCommentStrip,
            "fullwidth_fold" | "nfkc_lite" => Transform::FullwidthFold,
            "base64_decode" => Transform::Base64Decode,
            "cmd_line" => Transform::CmdLine,
            _ => return None,
        })
    }

    /// The name used in rule files, so errors and documentation print the same spelling.
    pub fn name(self) -> &'static str {
        match self {
            Transform::UrlDecode => "url_decode",
            Transform::UrlDecodeUni => "url_decode_uni",
            Transform::HtmlEntityDecode => "html_entity_decode",
            Transform::Lowercase => "lowercase",
            Transform::NormalizePath => "normalize_path",
            Transform::CompressWhitespace => "compress_whitespace",
            Transform::RemoveNulls => "remove_nulls",
            Transform::SqlCommentStrip => "sql_comment_strip",
            Transform::FullwidthFold => "fullwidth_fold",
            Transform::Base64Decode => "base64_decode",
            Transform::CmdLine => "cmd_line",
        }
    }

    /// Applies this transformation, so the engine can dispatch on data.
    pub fn apply(self, input: &str) -> Cow<'_, str> {
        match self {
            Transform::UrlDecode => url_decode(input),
            Transform::UrlDecodeUni => url_decode_uni(input),
            Transform::HtmlEntityDecode => html_entity_decode(input),
            Transform::Lowercase => lowercase(input),
            Transform::NormalizePath => normalize_path(input),
            Transform::CompressWhitespace => compress_whitespace(input),
            Transform::RemoveNulls => remove_nulls(input),
            Transform::SqlCommentStrip => sql_comment_strip(input),
            Transform::FullwidthFold => fullwidth_fold(input),
            Transform::Base64Decode => base64_decode(input),
            Transform::CmdLine => cmd_line(input),
        }
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Applies a whole chain in order, so callers need not thread `Cow`s by hand.
pub fn apply_chain<'a>(chain: &[Transform], input: &'a str) -> Cow<'a, str> {
    let mut current: Cow<'a, str> = Cow::Borrowed(input);
    for t in chain {
        current = match current {
            Cow::Borrowed(s) => t.apply(s),
            // A step that changes nothing hands its input back borrowed: keep the owned
            // value as it is rather than copying it once per remaining step.
            Cow::Owned(s) => match changed(t.apply(&s)) {
                Some(next) => Cow::Owned(next),
                None => Cow::Owned(s),
            },
        };
    }
    current
}

/// The new value a step made, `None` when it left its input as it was.
fn changed(step: Cow<'_, str>) -> Option<String> {
    match step {
        Cow::Owned(s) => Some(s),
        Cow::Borrowed(_) => None,
    }
}

/// Whether any byte of `s` satisfies `pred`. Tested 16 bytes at a time with no early
/// exit inside a block, which the compiler turns into vector compares: a value that
/// holds none of the bytes (nearly every value) costs a fraction of a byte-by-byte scan.
/// The bytes after the last whole block are tested as the last 16 bytes of `s` (some
/// tested twice, which does not change an "any"), so only a value shorter than a block
/// is read byte by byte.
pub(crate) fn any_byte(s: &[u8], pred: impl Fn(u8) -> bool) -> bool {
    let in_block = |block: &[u8; 16]| block.iter().fold(false, |seen, &b| seen | pred(b));
    let (blocks, rest) = s.as_chunks::<16>();
    for block in blocks {
        if in_block(block) {
            return true;
        }
    }
    if rest.is_empty() {
        return false;
    }
    match last_block(s) {
        Some(last) => in_block(last),
        None => rest.iter().any(|&b| pred(b)),
    }
}

/// The last 16 bytes of `s`, when it has that many.
fn last_block(s: &[u8]) -> Option<&[u8; 16]> {
    let start = s.len().checked_sub(16)?;
    s.get(start..)?.try_into().ok()
}

/// Whether any two neighbouring bytes of `s` (each byte and the next) satisfy `pred`,
/// tested 16 pairs at a time like [`any_byte`]: [`compress_whitespace`]'s fast answer
/// asks about a double space in the same vectorised pass as its other bytes.
pub(crate) fn any_pair(s: &[u8], pred: impl Fn(u8, u8) -> bool) -> bool {
    let (Some(firsts), Some(seconds)) = (s.get(..s.len().saturating_sub(1)), s.get(1..)) else {
        return false;
    };
    let (a, a_rest) = firsts.as_chunks::<16>();
    let (b, b_rest) = seconds.as_chunks::<16>();
    // Blocks by index, not `zip` (left a call per value in the build without LTO).
    let pair = |x: &[u8], y: &[u8], j: usize| match (x.get(j), y.get(j)) {
        (Some(&p), Some(&q)) => pred(p, q),
        _ => false,
    };
    for (k, x) in a.iter().enumerate() {
        let Some(y) = b.get(k) else { break };
        if (0..16).fold(false, |seen, j| seen | pair(x, y, j)) {
            return true;
        }
    }
    (0..a_rest.len()).any(|j| pair(a_rest, b_rest, j))
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Turns decoded bytes into text: UTF-8 when valid, otherwise Latin-1, so legacy
/// `%E9`-style encodings stay readable instead of becoming replacement characters.
///
/// Overlong UTF-8 forms of ASCII (`C0 AE` for `.`, `E0 80 AF` for `/`), which no valid
/// encoder produces and which lenient servers decode, are folded to the ASCII they smuggle.
pub fn bytes_to_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            let mut out = String::with_capacity(bytes.len());
            push_not_utf8(&bytes, &mut out);
            out
        }
    }
}

/// [`bytes_to_text`] appended to a buffer the caller keeps (no allocation once it has
/// grown), for the request parse.
pub(crate) fn push_bytes_as_text(bytes: &[u8], out: &mut String) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => push_not_utf8(bytes, out),
    }
}

/// The reading of [`bytes_to_text`] for bytes that are not UTF-8 (Latin-1, overlong
/// forms of ASCII folded), appended to `out`.
fn push_not_utf8(bytes: &[u8], out: &mut String) {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // An ASCII byte is its own char (none starts a fold): a run of them is copied
        // as one piece rather than pushed char by char.
        if b.is_ascii() {
            let rest = bytes.get(i..).unwrap_or_default();
            let run = rest
                .iter()
                .position(|c| !c.is_ascii())
                .unwrap_or(rest.len());
            if let Some(text) = rest.get(..run).and_then(|r| std::str::from_utf8(r).ok()) {
                out.push_str(text);
            }
            i += run;
            continue;
        }
        let next = |k: usize| bytes.get(i + k).copied().filter(|c| c & 0xC0 == 0x80);
        match (b, next(1), next(2)) {
            (0xC0 | 0xC1, Some(c1), _) => {
                out.push(char::from(((b & 0x01) << 6) | (c1 & 0x3F)));
                i += 2;
            }
            (0xE0, Some(0x80), Some(c2)) => {
                out.push(char::from(c2 & 0x3F));
                i += 3;
            }
            (0xE0, Some(0x81), Some(c2)) => {
                out.push(char::from(0x40 | (c2 & 0x3F)));
                i += 3;
            }
            _ => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
}

/// Whether percent-decoding `input` changes it (it holds a `%` or a `+`).
fn has_escapes(input: &str) -> bool {
    // Bytes, not chars: both are ASCII, which UTF-8 never uses inside another char.
    any_byte(input.as_bytes(), |b| (b == b'%') | (b == b'+'))
}

fn percent_decode(input: &str, unicode: bool) -> Cow<'_, str> {
    if !has_escapes(input) {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    decode_bytes(input.as_bytes(), unicode, &mut out);
    Cow::Owned(bytes_to_text(out))
}

/// [`url_decode`] into buffers the caller keeps from value to value (the request parse
/// reuses them, so decoding allocates nothing once they have grown): `input` itself when
/// it holds nothing to decode, else its decoded text in `out` (cleared first). `bytes`
/// is working memory.
pub(crate) fn url_decode_into<'a>(
    input: &'a str,
    bytes: &mut Vec<u8>,
    out: &'a mut String,
) -> &'a str {
    if !has_escapes(input) {
        return input;
    }
    bytes.clear();
    decode_bytes(input.as_bytes(), false, bytes);
    out.clear();
    push_bytes_as_text(bytes, out);
    out
}

/// The percent-decoding loop: appends `bytes` decoded (`+`, `%XX`, and `%uXXXX` when
/// `unicode`) to `out`, invalid escapes kept as they are.
fn decode_bytes(bytes: &[u8], unicode: bool, out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'+' {
            out.push(b' ');
            i += 1;
            continue;
        }
        if b == b'%' {
            if unicode && matches!(bytes.get(i + 1), Some(b'u' | b'U')) {
                let digits = bytes.get(i + 2..i + 6).and_then(|d| {
                    d.iter()
                        .try_fold(0u32, |acc, &h| Some(acc * 16 + u32::from(hex_val(h)?)))
                });
                if let Some(cp) = digits {
                    let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += 6;
                    continue;
                }
            }
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex_val),
                bytes.get(i + 2).copied().and_then(hex_val),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
}

/// Lenient URL decoding (`%XX`, `+`), keeping invalid escapes, as browsers and servers do.
pub fn url_decode(input: &str) -> Cow<'_, str> {
    percent_decode(input, false)
}

/// URL decoding that also understands `%uXXXX`, which IIS accepts and attackers abuse.
pub fn url_decode_uni(input: &str) -> Cow<'_, str> {
    percent_decode(input, true)
}

const ENTITIES: &[(&str, char)] = &[
    ("lt", '<'),
    ("gt", '>'),
    ("amp", '&'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", ' '),
    ("colon", ':'),
    ("sol", '/'),
    ("lpar", '('),
    ("rpar", ')'),
    ("tab", '\t'),
    ("newline", '\n'),
    ("semi", ';'),
    ("equals", '='),
    ("num", '#'),
    ("excl", '!'),
    ("grave", '`'),
];

/// Decodes HTML entities so `&lt;script&gt;` and `&#x3c;script` match like `<script`.
pub fn html_entity_decode(input: &str) -> Cow<'_, str> {
    if !input.contains('&') {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('&') {
        out.push_str(rest.get(..pos).unwrap_or(""));
        let after = rest.get(pos + 1..).unwrap_or("");
        match decode_entity(after) {
            Some((c, used)) => {
                out.push(c);
                rest = after.get(used..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Decodes one entity body (after `&`); returns the char and bytes consumed.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        let (hex, start) = match b.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let mut end = start;
        let mut value: u32 = 0;
        while let Some(&d) = b.get(end) {
            let v = if hex {
                hex_val(d).map(u32::from)
            } else if d.is_ascii_digit() {
                Some(u32::from(d - b'0'))
            } else {
                None
            };
            match v {
                Some(v) => {
                    value = value
                        .saturating_mul(if hex { 16 } else { 10 })
                        .saturating_add(v);
                    end += 1;
                }
                None => break,
            }
        }
        if end == start {
            return None;
        }
        let c = char::from_u32(value).unwrap_or('\u{FFFD}');
        let used = if b.get(end) == Some(&b';') {
            end + 1
        } else {
            end
        };
        return Some((c, used));
    }
    let end = s
        .bytes()
        .take(10)
        .position(|c| c == b';')
        .filter(|&e| e > 0)?;
    let name = s.get(..end)?.to_ascii_lowercase();
    ENTITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, c)| (c, end + 1))
}

/// Lowercases so signatures need no case-insensitive flags.
pub fn lowercase(input: &str) -> Cow<'_, str> {
    // ASCII text (nearly every value) is checked and lowered byte by byte.
    if input.is_ascii() {
        return if any_byte(input.as_bytes(), |b| b.is_ascii_uppercase()) {
            Cow::Owned(input.to_ascii_lowercase())
        } else {
            Cow::Borrowed(input)
        };
    }
    if input.chars().any(char::is_uppercase) {
        Cow::Owned(input.to_lowercase())
    } else {
        Cow::Borrowed(input)
    }
}

/// Resolves `./`, `../`, duplicate slashes and backslashes. `..` segments that would climb
/// above the start are kept (as a leading `/..`), so traversal beyond root stays visible.
pub fn normalize_path(input: &str) -> Cow<'_, str> {
    // Without backslashes, empty inner segments, `.` or `..` the steps below give the
    // input back: say so without building it again.
    if path_is_normal(input) {
        return Cow::Borrowed(input);
    }
    normalize_path_steps(input)
}

/// Whether [`normalize_path_steps`] gives `input` back: no `\`, no `//`, no `.` or `..`
/// segment. One pass over the bytes (three searches and a split cost about four times
/// as much on the paths every log line has).
fn path_is_normal(input: &str) -> bool {
    let b = input.as_bytes();
    let dots = |seg: &[u8]| matches!(seg, b"." | b"..");
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\\' {
            return false;
        }
        if c == b'/' {
            // A `/` right after a `/` is a `//`; the segment before it ends here.
            if (i > 0 && b.get(i - 1) == Some(&b'/')) || dots(b.get(start..i).unwrap_or_default()) {
                return false;
            }
            start = i + 1;
        }
    }
    !dots(b.get(start..).unwrap_or_default())
}

/// [`normalize_path`] step by step (the fast answer above is checked against it), in
/// one pass: segments split at `/` and `\\` are written to the output as they come and
/// a `..` takes the last one back off (three allocations and a join fewer than
/// replacing, splitting into a stack and joining; checked against that in the tests).
fn normalize_path_steps(input: &str) -> Cow<'_, str> {
    let is_slash = |c: char| c == '/' || c == '\\';
    let absolute = input.starts_with(is_slash);
    let trailing = input.ends_with(is_slash) && input.len() > 1;
    let mut out = String::with_capacity(input.len() + 1);
    if absolute {
        out.push('/');
    }
    let base = out.len();
    for seg in input.split(is_slash) {
        match seg {
            "" | "." => {}
            ".." => {
                // The last segment written starts after the last `/` past `base`.
                let last = out
                    .get(base..)
                    .and_then(|kept| kept.rfind('/'))
                    .map_or(base, |p| base + p + 1);
                if out.len() > base && out.get(last..) != Some("..") {
                    out.truncate(if last > base { last - 1 } else { base });
                } else {
                    if out.len() > base {
                        out.push('/');
                    }
                    out.push_str("..");
                }
            }
            s => {
                if out.len() > base {
                    out.push('/');
                }
                out.push_str(s);
            }
        }
    }
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    if out == input {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(out)
    }
}

/// Collapses whitespace runs, so `union   select` and `union\tselect` match one pattern.
pub fn compress_whitespace(input: &str) -> Cow<'_, str> {
    // ASCII without a tab, line break, vertical tab or form feed has only the space as
    // whitespace, and then only a double space changes anything: told on the bytes in
    // one vectorised pass over neighbouring pairs instead of a walk over `char`s.
    let bytes = input.as_bytes();
    let odd = |b: u8| (b.wrapping_sub(b'\t') < 5) | (b >= 0x80);
    if !bytes.last().is_some_and(|&b| odd(b))
        && !any_pair(bytes, |x, y| odd(x) | ((x == b' ') & (y == b' ')))
    {
        return Cow::Borrowed(input);
    }
    compress_whitespace_steps(input)
}

/// [`compress_whitespace`] by `char`s (the fast answer above is checked against it).
fn compress_whitespace_steps(input: &str) -> Cow<'_, str> {
    // Most values have no whitespace run to collapse: say so without building a copy.
    let is_ws = |c: char| c.is_whitespace() || c == '\u{0B}';
    let mut previous_ws = false;
    let unchanged = input.chars().all(|c| {
        let ws = is_ws(c);
        let keeps = !ws || (c == ' ' && !previous_ws);
        previous_ws = ws;
        keeps
    });
    if unchanged {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len());
    let mut in_ws = false;
    for c in input.chars() {
        if c.is_whitespace() || c == '\u{0B}' {
            if !in_ws {
                out.push(' ');
            }
            in_ws = true;
        } else {
            out.push(c);
            in_ws = false;
        }
    }
    if out == input {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(out)
    }
}

/// Removes NULs, which some parsers skip and so can split keywords.
pub fn remove_nulls(input: &str) -> Cow<'_, str> {
    if input.contains('\0') {
        Cow::Owned(input.replace('\0', ""))
    } else {
        Cow::Borrowed(input)
    }
}

/// Replaces SQL comments with a space, so `UN/**/ION` style splitting and `'--` tails are
/// normalised before keyword matching.
pub fn sql_comment_strip(input: &str) -> Cow<'_, str> {
    // Only `/*`, `--` and `#` start anything the steps below change: without any of
    // them (paths, user agents and most values have `/` or `-`, seldom these) the
    // value is given back without building its copy.
    let bytes = input.as_bytes();
    if !any_byte(bytes, |b| (b == b'/') | (b == b'-') | (b == b'#')) {
        return Cow::Borrowed(input);
    }
    let opens = bytes.contains(&b'#')
        || bytes
            .windows(2)
            .any(|w| matches!(w, [b'/', b'*'] | [b'-', b'-']));
    if !opens {
        return Cow::Borrowed(input);
    }
    sql_comment_strip_steps(input)
}

/// [`sql_comment_strip`] step by step (the fast answers above are checked against it).
fn sql_comment_strip_steps(input: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    let mut changed = false;
    loop {
        let next = [rest.find("/*"), rest.find("--"), rest.find('#')]
            .into_iter()
            .flatten()
            .min();
        let Some(pos) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(rest.get(..pos).unwrap_or(""));
        let tail = rest.get(pos..).unwrap_or("");
        if let Some(body) = tail.strip_prefix("/*!") {
            // MySQL executable comment: its content runs, so keep it (minus the version).
            changed = true;
            out.push(' ');
            let body = body.trim_start_matches(|c: char| c.is_ascii_digit());
            let end = body.find("*/").unwrap_or(body.len());
            out.push_str(body.get(..end).unwrap_or(""));
            out.push(' ');
            rest = body.get(end + 2..).unwrap_or("");
        } else if tail.starts_with("/*") {
            changed = true;
            out.push(' ');
            rest = match tail.get(2..).and_then(|t| t.find("*/").map(|e| (t, e))) {
                Some((t, e)) => t.get(e + 2..).unwrap_or(""),
                None => "",
            };
        } else if tail.starts_with("--") {
            let after = tail.get(2..).unwrap_or("");
            if after.is_empty() || after.starts_with(char::is_whitespace) {
                changed = true;
                out.push(' ');
                rest = after.find('\n').and_then(|e| after.get(e..)).unwrap_or("");
            } else {
                out.push_str("--");
                rest = after;
            }
        } else {
            changed = true;
            out.push(' ');
            let after = tail.get(1..).unwrap_or("");
            rest = after.find('\n').and_then(|e| after.get(e..)).unwrap_or("");
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(input)
    }
}

/// Folds full-width ASCII look-alikes (an NFKC subset), so `ｓｃｒｉｐｔ` matches `script`.
pub fn fullwidth_fold(input: &str) -> Cow<'_, str> {
    let folds = |c: char| ('\u{FF01}'..='\u{FF5E}').contains(&c) || c == '\u{3000}';
    // ASCII text holds none of them, and is told in one vectorised pass.
    if input.is_ascii() || !input.chars().any(folds) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(
        input
            .chars()
            .map(|c| {
                if c == '\u{3000}' {
                    ' '
                } else if folds(c) {
                    char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c)
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// Decodes base64 (standard or URL-safe, padding optional); anything else is kept, so a
/// rule asking for it never loses the original value.
pub fn base64_decode(input: &str) -> Cow<'_, str> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = input.trim().trim_end_matches('=');
    if trimmed.len() < 4 {
        return Cow::Borrowed(input);
    }
    let decoded = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed));
    match decoded {
        Ok(bytes) => Cow::Owned(bytes_to_text(bytes)),
        Err(_) => Cow::Borrowed(input),
    }
}

/// ModSecurity's `cmdLine`: drops `\ ' " ^`, drops spaces before `/` and `(`, turns `,`
/// and `;` into spaces, collapses spaces and lowercases, defeating shell obfuscation like
/// `c^a^t /e't'c/passwd`.
pub fn cmd_line(input: &str) -> Cow<'_, str> {
    // Lowercase ASCII with none of the characters the steps below drop or replace,
    // and no space they would drop, is given back as it is.
    let bytes = input.as_bytes();
    let kept = bytes.iter().all(|&b| {
        b.is_ascii()
            && !b.is_ascii_uppercase()
            && !matches!(
                b,
                b'\\' | b'\'' | b'"' | b'^' | b',' | b';' | b'\t' | b'\n' | b'\r'
            )
    }) && !bytes
        .windows(2)
        .any(|w| matches!(w, [b' ', b' ' | b'/' | b'(']));
    if kept {
        return Cow::Borrowed(input);
    }
    cmd_line_steps(input)
}

/// [`cmd_line`] step by step (the fast answer above is checked against it).
fn cmd_line_steps(input: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '\\' | '\'' | '"' | '^' => {}
            ',' | ';' | ' ' | '\t' | '\n' | '\r' => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            '/' | '(' => {
                if out.ends_with(' ') {
                    out.pop();
                }
                out.push(c);
            }
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c => out.extend(c.to_lowercase()),
        }
    }
    if out == input {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_byte_answers_as_a_walk_over_the_bytes() -> Result<(), String> {
        // Every length up to four blocks and a half, the one byte looked for at every
        // place (and nowhere): the whole blocks, the overlapping last block and the
        // short values each meet it at each place they read.
        for len in 0..72usize {
            for at in (0..len).map(Some).chain([None]) {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| {
                        if Some(i) == at {
                            b'%'
                        } else {
                            b'a' + (i % 26) as u8
                        }
                    })
                    .collect();
                let pred = |b: u8| b == b'%';
                if any_byte(&bytes, pred) != bytes.iter().any(|&b| pred(b)) {
                    return Err(format!("length {len}, byte at {at:?}"));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn url_decode_lenient() {
        assert_eq!(url_decode("a%20b+c"), "a b c");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        assert_eq!(url_decode("Jam%F3n"), "Jam\u{f3}n");
        assert!(matches!(url_decode("plain"), Cow::Borrowed(_)));
        // Applying twice decodes double encoding.
        let once = url_decode("%252e%252e");
        assert_eq!(url_decode(&once), "..");
    }

    #[test]
    fn overlong_utf8_folds_to_ascii() {
        assert_eq!(url_decode("..%c0%af..%c0%afetc"), "../../etc");
        assert_eq!(url_decode("%c0%ae%c0%ae/"), "../");
        assert_eq!(url_decode("%e0%80%af"), "/");
        // Legacy Latin-1 stays readable.
        assert_eq!(url_decode("caf%e9"), "café");
    }

    #[test]
    fn url_decode_uni_handles_u_escapes() {
        assert_eq!(url_decode_uni("%u003cscript%3E"), "<script>");
        assert_eq!(url_decode_uni("%u00"), "%u00");
    }

    #[test]
    fn html_entities() {
        assert_eq!(html_entity_decode("&lt;b&gt;&amp;"), "<b>&");
        assert_eq!(html_entity_decode("&#60;&#x3C;&#x3c"), "<<<");
        assert_eq!(html_entity_decode("a & b &unknown;"), "a & b &unknown;");
        assert_eq!(html_entity_decode("&#99999999999;"), "\u{FFFD}");
    }

    #[test]
    fn lowercase_works() {
        assert_eq!(lowercase("SeLeCt"), "select");
        assert!(matches!(lowercase("abc"), Cow::Borrowed(_)));
    }

    #[test]
    fn path_normalisation() {
        assert_eq!(normalize_path("/a/./b//c/../d"), "/a/b/d");
        assert_eq!(normalize_path("/a/../../etc/passwd"), "/../etc/passwd");
        assert_eq!(
            normalize_path("..\\..\\windows\\win.ini"),
            "../../windows/win.ini"
        );
        assert_eq!(normalize_path("/dir/"), "/dir/");
    }

    #[test]
    fn whitespace_and_nulls() {
        assert_eq!(compress_whitespace("a \t\n b"), "a b");
        assert_eq!(remove_nulls("sel\0ect"), "select");
    }

    #[test]
    fn values_that_need_no_change_are_not_copied() {
        assert!(matches!(compress_whitespace("a b c"), Cow::Borrowed(_)));
        assert!(matches!(compress_whitespace("ab"), Cow::Borrowed(_)));
        for (input, out) in [
            ("a  b", "a b"),
            ("a\tb", "a b"),
            (" \u{0B}x", " x"),
            ("\u{3000}", " "),
        ] {
            assert!(
                matches!(compress_whitespace(input), Cow::Owned(_)),
                "{input:?}"
            );
            assert_eq!(compress_whitespace(input), out, "{input:?}");
        }
        assert!(matches!(lowercase("/index.html"), Cow::Borrowed(_)));
        assert_eq!(lowercase("/Index.HTML"), "/index.html");
        assert_eq!(lowercase("ÉCOLE/Ab"), "école/ab");
        assert!(matches!(lowercase("école"), Cow::Borrowed(_)));
        // A chain whose later steps change nothing hands back the first step's value.
        let chain = [
            Transform::UrlDecodeUni,
            Transform::RemoveNulls,
            Transform::CompressWhitespace,
            Transform::Lowercase,
        ];
        assert_eq!(apply_chain(&chain, "%41b%20c"), "ab c");
        assert_eq!(apply_chain(&chain, "%41B%20%20C%00"), "ab c");
        assert!(matches!(apply_chain(&chain, "plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn sql_comments() {
        assert_eq!(
            sql_comment_strip("1/*!50000union*//*!select*/1"),
            "1 union  select 1"
        );
        assert_eq!(sql_comment_strip("UN/**/ION SEL/*x*/ECT"), "UN ION SEL ECT");
        assert_eq!(sql_comment_strip("admin'-- x"), "admin' ");
        assert_eq!(sql_comment_strip("a' #c\nb"), "a'  \nb");
        assert_eq!(sql_comment_strip("well-known"), "well-known");
        assert_eq!(sql_comment_strip("x /* open"), "x  ");
    }

    #[test]
    fn fullwidth() {
        assert_eq!(fullwidth_fold("ｓｃｒｉｐｔ＜"), "script<");
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("PHNjcmlwdD4="), "<script>");
        assert_eq!(base64_decode("not base64!"), "not base64!");
    }

    #[test]
    fn cmdline() {
        assert_eq!(cmd_line("C^a^T /e't'c/pass\"wd"), "cat/etc/passwd");
        assert_eq!(cmd_line("a;b,c"), "a b c");
    }

    /// What `normalize_path_steps` did before it was one pass: the reference.
    fn normalize_path_reference(input: &str) -> Cow<'_, str> {
        let replaced = input.replace('\\', "/");
        let absolute = replaced.starts_with('/');
        let trailing = replaced.ends_with('/') && replaced.len() > 1;
        let mut stack: Vec<&str> = Vec::new();
        for seg in replaced.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if matches!(stack.last(), Some(&s) if s != "..") {
                        stack.pop();
                    } else {
                        stack.push("..");
                    }
                }
                s => stack.push(s),
            }
        }
        let mut out = String::with_capacity(replaced.len());
        if absolute {
            out.push('/');
        }
        out.push_str(&stack.join("/"));
        if trailing && !out.ends_with('/') {
            out.push('/');
        }
        if out == input {
            Cow::Borrowed(input)
        } else {
            Cow::Owned(out)
        }
    }

    #[test]
    fn paths_are_normalized_in_one_pass_as_by_replace_split_and_join() {
        const PIECES: &[&str] = &[
            "a", "/", "//", ".", "..", "...", "\\", ".a", "a.", "é", "%2e",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut normal, mut not) = (0, 0);
        for _ in 0..50_000 {
            let n = next() % 7;
            let input: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let searched = !input.contains('\\')
                && !input.contains("//")
                && input.split('/').all(|seg| seg != "." && seg != "..");
            assert_eq!(path_is_normal(&input), searched, "{input:?}");
            let (one_pass, reference) = (
                normalize_path_steps(&input),
                normalize_path_reference(&input),
            );
            assert_eq!(one_pass, reference, "{input:?}");
            assert_eq!(
                matches!(one_pass, Cow::Borrowed(_)),
                matches!(reference, Cow::Borrowed(_)),
                "{input:?}"
            );
            if searched {
                normal += 1;
            } else {
                not += 1;
            }
        }
        assert!(normal > 1000 && not > 1000, "{normal} / {not}");
    }

    #[test]
    fn fast_answers_are_those_of_the_steps() {
        const PIECES: &[&str] = &[
            "a", "B", "/", "//", ".", "..", "\\", " ", "  ", "(", "'", "\"", "^", ",", ";", "*",
            "-", "#", "/*", "*/", "--", "/*!", "\r", "\t", "\n", "é", "É", "x.y", "-", "~", "=",
            "?", "\u{0B}", "\u{0C}", "\u{1C}", "\u{85}", "\u{A0}", "\u{3000}", "./", "/.",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut inputs: Vec<String> = vec![String::new(), "/".into(), ".".into(), "..".into()];
        for _ in 0..20_000 {
            let n = next() % 8;
            inputs.push(
                (0..n)
                    .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                    .collect(),
            );
        }
        for input in &inputs {
            let (fast, steps) = (normalize_path(input), normalize_path_steps(input));
            assert_eq!(fast, steps, "normalize_path {input:?}");
            assert_eq!(
                matches!(fast, Cow::Borrowed(_)),
                matches!(steps, Cow::Borrowed(_)),
                "normalize_path {input:?}"
            );
            let (fast, steps) = (sql_comment_strip(input), sql_comment_strip_steps(input));
            assert_eq!(fast, steps, "sql_comment_strip {input:?}");
            assert_eq!(
                matches!(fast, Cow::Borrowed(_)),
                matches!(steps, Cow::Borrowed(_)),
                "sql_comment_strip {input:?}"
            );
            let (fast, steps) = (compress_whitespace(input), compress_whitespace_steps(input));
            assert_eq!(fast, steps, "compress_whitespace {input:?}");
            assert_eq!(
                matches!(fast, Cow::Borrowed(_)),
                matches!(steps, Cow::Borrowed(_)),
                "compress_whitespace {input:?}"
            );
            let (fast, steps) = (cmd_line(input), cmd_line_steps(input));
            assert_eq!(fast, steps, "cmd_line {input:?}");
            assert_eq!(
                matches!(fast, Cow::Borrowed(_)),
                matches!(steps, Cow::Borrowed(_)),
                "cmd_line {input:?}"
            );
        }
    }

    /// [`push_not_utf8`] as it was, byte by byte: the reference for the ASCII runs.
    fn push_not_utf8_by_bytes(bytes: &[u8], out: &mut String) {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let next = |k: usize| bytes.get(i + k).copied().filter(|c| c & 0xC0 == 0x80);
            match (b, next(1), next(2)) {
                (0xC0 | 0xC1, Some(c1), _) => {
                    out.push(char::from(((b & 0x01) << 6) | (c1 & 0x3F)));
                    i += 2;
                }
                (0xE0, Some(0x80), Some(c2)) => {
                    out.push(char::from(c2 & 0x3F));
                    i += 3;
                }
                (0xE0, Some(0x81), Some(c2)) => {
                    out.push(char::from(0x40 | (c2 & 0x3F)));
                    i += 3;
                }
                _ => {
                    out.push(char::from(b));
                    i += 1;
                }
            }
        }
    }

    #[test]
    fn text_that_is_not_utf8_reads_as_byte_by_byte() {
        const PIECES: &[&[u8]] = &[
            b"a",
            b"/x",
            b" ",
            b"%",
            b"\x00",
            b"\x7f",
            b"\x80",
            b"\xbf",
            b"\xc0",
            b"\xc1",
            b"\xae",
            b"\xe0",
            b"\xe0\x80",
            b"\xe0\x81",
            b"\xaf",
            b"\xe9",
            b"\xff",
            b"\xc3\xa9",
            b"\xf0\x9f\x98\x80",
            b"abcdefghijklmnopq",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let n = next() % 10;
            let bytes: Vec<u8> = (0..n)
                .flat_map(|_| {
                    PIECES[(next() % PIECES.len() as u64) as usize]
                        .iter()
                        .copied()
                })
                .collect();
            let (mut fast, mut reference) = (String::from("<"), String::from("<"));
            push_not_utf8(&bytes, &mut fast);
            push_not_utf8_by_bytes(&bytes, &mut reference);
            assert_eq!(fast, reference, "{bytes:?}");
        }
    }

    #[test]
    fn chain() {
        let chain = [Transform::UrlDecode, Transform::Lowercase];
        assert_eq!(apply_chain(&chain, "%3CSCRIPT"), "<script");
        assert_eq!(Transform::from_name("cmd_line"), Some(Transform::CmdLine));
        assert_eq!(Transform::from_name("nope"), None);
    }
}
