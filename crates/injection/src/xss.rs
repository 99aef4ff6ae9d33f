//! XSS detection: a small, lenient HTML tokenizer (following browser rules
//! closely enough for attack shapes) run in data, unquoted/single/double
//! quoted attribute-value contexts, plus a bare URL-value check.

use crate::Match;
use crate::util::percent_decode;

/// Tags that are dangerous whatever their attributes.
const DANGEROUS_TAGS: &[&str] = &[
    "script", "iframe", "frame", "object", "embed", "applet", "base", "isindex", "xml",
];

/// Attributes whose value is fetched or navigated to as a URL.
const URL_ATTRS: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "xlink:href",
    "background",
    "poster",
    "codebase",
    "dynsrc",
    "lowsrc",
    "from",
    "to",
    "values",
    "ping",
    "srcset",
];

/// Known event-handler attributes (only these fire, so `one=two` is benign).
const HANDLERS: &[&str] = &[
    "onabort",
    "onafterprint",
    "onanimationcancel",
    "onanimationend",
    "onanimationiteration",
    "onanimationstart",
    "onauxclick",
    "onbeforecopy",
    "onbeforecut",
    "onbeforeinput",
    "onbeforepaste",
    "onbeforeprint",
    "onbeforetoggle",
    "onbeforeunload",
    "onbegin",
    "onblur",
    "onbounce",
    "oncancel",
    "oncanplay",
    "oncanplaythrough",
    "onchange",
    "onclick",
    "onclose",
    "oncontentvisibilityautostatechange",
    "oncontextmenu",
    "oncopy",
    "oncuechange",
    "oncut",
    "ondblclick",
    "ondrag",
    "ondragend",
    "ondragenter",
    "ondragleave",
    "ondragover",
    "ondragstart",
    "ondrop",
    "ondurationchange",
    "onemptied",
    "onend",
    "onended",
    "onerror",
    "onfinish",
    "onfocus",
    "onfocusin",
    "onfocusout",
    "onformdata",
    "onfullscreenchange",
    "ongotpointercapture",
    "onhashchange",
    "oninput",
    "oninvalid",
    "onkeydown",
    "onkeypress",
    "onkeyup",
    "onload",
    "onloadeddata",
    "onloadedmetadata",
    "onloadend",
    "onloadstart",
    "onlostpointercapture",
    "onmessage",
    "onmousedown",
    "onmouseenter",
    "onmouseleave",
    "onmousemove",
    "onmouseout",
    "onmouseover",
    "onmouseup",
    "onmousewheel",
    "onpagehide",
    "onpageshow",
    "onpaste",
    "onpause",
    "onplay",
    "onplaying",
    "onpointercancel",
    "onpointerdown",
    "onpointerenter",
    "onpointerleave",
    "onpointermove",
    "onpointerout",
    "onpointerover",
    "onpointerrawupdate",
    "onpointerup",
    "onpopstate",
    "onprogress",
    "onratechange",
    "onreadystatechange",
    "onrepeat",
    "onreset",
    "onresize",
    "onscroll",
    "onscrollend",
    "onsearch",
    "onsecuritypolicyviolation",
    "onseeked",
    "onseeking",
    "onselect",
    "onselectionchange",
    "onselectstart",
    "onshow",
    "onslotchange",
    "onstalled",
    "onstart",
    "onstorage",
    "onsubmit",
    "onsuspend",
    "ontimeupdate",
    "ontoggle",
    "ontouchcancel",
    "ontouchend",
    "ontouchmove",
    "ontouchstart",
    "ontransitioncancel",
    "ontransitionend",
    "ontransitionrun",
    "ontransitionstart",
    "onunload",
    "onvolumechange",
    "onwaiting",
    "onwheel",
    "onzoom",
    "onactivate",
    "onbeforeactivate",
    "onbeforedeactivate",
    "ondeactivate",
    "onfilterchange",
    "onpropertychange",
    "onresizeend",
    "onresizestart",
];

pub(crate) fn detect(input: &str) -> Option<Match> {
    if let Some(m) = scan(input, 0) {
        return Some(m);
    }
    let decoded = percent_decode(input)?;
    scan(&decoded, 0)
}

fn found(rule: String, matched: &[char]) -> Match {
    let matched: String = matched.iter().take(200).collect();
    Match {
        fingerprint: rule,
        matched,
    }
}

fn scan(input: &str, depth: u8) -> Option<Match> {
    let c: Vec<char> = input.chars().collect();
    if let Some(m) = bare_url(&c) {
        return Some(m);
    }
    if let Some(m) = html(&c, 0, false, depth) {
        return Some(m);
    }
    // Attribute contexts: the value was spliced inside a tag, unquoted or
    // inside '...' / "...". Skip to where it would leave the value.
    let unquoted_end = c
        .iter()
        .position(|&x| x.is_whitespace() || x == '>')
        .unwrap_or(c.len());
    if unquoted_end < c.len()
        && let Some(m) = html(&c, unquoted_end, true, depth)
    {
        return Some(m);
    }
    for q in ['\'', '"'] {
        if let Some(p) = c.iter().position(|&x| x == q)
            && let Some(m) = html(&c, p + 1, true, depth)
        {
            return Some(m);
        }
    }
    None
}

/// Decodes HTML character references (numeric with or without `;`, and the
/// named ones that matter for scheme obfuscation). Linear.
pub(crate) fn decode_entities(c: &[char]) -> Vec<char> {
    const NAMED: &[(&str, char)] = &[
        ("lt", '<'),
        ("gt", '>'),
        ("amp", '&'),
        ("quot", '"'),
        ("apos", '\''),
        ("colon", ':'),
        ("tab", '\t'),
        ("newline", '\n'),
        ("lpar", '('),
        ("rpar", ')'),
        ("sol", '/'),
        ("bsol", '\\'),
        ("period", '.'),
        ("comma", ','),
        ("semi", ';'),
        ("excl", '!'),
        ("equals", '='),
        ("grave", '`'),
        ("nbsp", '\u{a0}'),
    ];
    let mut out = Vec::with_capacity(c.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] != '&' {
            out.push(c[i]);
            i += 1;
            continue;
        }
        if i + 1 < c.len() && c[i + 1] == '#' {
            let mut j = i + 2;
            let hex = j < c.len() && matches!(c[j], 'x' | 'X');
            if hex {
                j += 1;
            }
            let radix = if hex { 16 } else { 10 };
            let start = j;
            let mut v: u32 = 0;
            while j < c.len() && c[j].is_digit(radix) {
                v = v
                    .saturating_mul(radix)
                    .saturating_add(c[j].to_digit(radix).unwrap_or(0));
                j += 1;
            }
            if j > start {
                if j < c.len() && c[j] == ';' {
                    j += 1;
                }
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                i = j;
                continue;
            }
            out.push('&');
            i += 1;
            continue;
        }
        // Named reference: up to 10 letters then ';'.
        let mut j = i + 1;
        while j < c.len() && j - i <= 10 && c[j].is_ascii_alphabetic() {
            j += 1;
        }
        if j < c.len() && c[j] == ';' {
            let name: String = c[i + 1..j].iter().collect::<String>().to_ascii_lowercase();
            if let Some((_, ch)) = NAMED.iter().find(|(n, _)| *n == name) {
                out.push(*ch);
                i = j + 1;
                continue;
            }
        }
        out.push('&');
        i += 1;
    }
    out
}

/// Lower-cased scheme-relevant prefix of a URL value: entities decoded,
/// whitespace and control characters removed (browsers strip them).
fn normalized_url(value: &[char]) -> String {
    decode_entities(value)
        .into_iter()
        .filter(|c| !c.is_whitespace() && !c.is_control() && *c != '\u{fffd}')
        .take(40)
        .flat_map(char::to_lowercase)
        .collect()
}

fn dangerous_scheme(norm: &str) -> Option<&'static str> {
    for s in ["javascript:", "vbscript:", "livescript:"] {
        if norm.starts_with(s) {
            return Some(&s[..s.len() - 1]);
        }
    }
    for s in [
        "data:text/html",
        "data:image/svg+xml",
        "data:application/xhtml+xml",
        "data:text/xml",
    ] {
        if norm.starts_with(s) {
            return Some("data");
        }
    }
    None
}

/// The whole input used as a URL (e.g. an `href` value).
fn bare_url(c: &[char]) -> Option<Match> {
    let decoded = decode_entities(c);
    let first = decoded
        .iter()
        .position(|x| !x.is_whitespace() && !x.is_control())?;
    let rest = &decoded[first..];
    let norm = normalized_url(rest);
    let scheme = dangerous_scheme(&norm)?;
    if scheme != "data" {
        // Require code after the scheme so "javascript: the good parts" is
        // not flagged.
        let colon = rest.iter().position(|&x| x == ':')?;
        let tail = &rest[colon + 1..];
        let code_like = tail.iter().any(|&x| matches!(x, '(' | '`' | '='))
            || (tail.starts_with(&['/', '/']) && tail.contains(&'\n'));
        if !code_like {
            return None;
        }
    }
    Some(found(format!("xss:url:{scheme}"), c))
}

fn dangerous_css(value: &[char]) -> bool {
    let s: String = decode_entities(value)
        .into_iter()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .replace("/**/", "");
    [
        "expression(",
        "javascript:",
        "vbscript:",
        "-moz-binding",
        "behavior:",
    ]
    .iter()
    .any(|p| s.contains(p))
}

fn lower(c: &[char]) -> String {
    c.iter().flat_map(|x| x.to_lowercase()).collect()
}

/// Finds `needle` (ASCII, lower case) in `c` case-insensitively from `from`.
/// Linear for the short needles used here.
fn find_ci(c: &[char], from: usize, needle: &str) -> Option<usize> {
    let n: Vec<char> = needle.chars().collect();
    if n.is_empty() || c.len() < n.len() {
        return None;
    }
    (from..=c.len() - n.len()).find(|&i| {
        c[i..i + n.len()]
            .iter()
            .zip(&n)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// Tokenises from `start`, either in data state or (`in_tag`) inside the
/// attribute list of an unknown tag.
fn html(c: &[char], start: usize, in_tag: bool, depth: u8) -> Option<Match> {
    let n = c.len();
    let mut i = start;
    let mut tag: Option<(String, usize)> = in_tag.then(|| (String::new(), start));
    loop {
        if let Some((name, tag_start)) = tag.take() {
            // Attribute list.
            let mut http_equiv_refresh = false;
            loop {
                while i < n && (c[i].is_whitespace() || c[i].is_control() || c[i] == '/') {
                    i += 1;
                }
                if i >= n {
                    return None;
                }
                if c[i] == '>' {
                    i += 1;
                    break;
                }
                let an = i;
                i += 1; // an attribute name may start with any char, even '='
                while i < n && !c[i].is_whitespace() && !matches!(c[i], '/' | '>' | '=') {
                    i += 1;
                }
                let attr = lower(&c[an..i]);
                let mut j = i;
                while j < n && c[j].is_whitespace() {
                    j += 1;
                }
                if j >= n || c[j] != '=' {
                    continue;
                }
                j += 1;
                while j < n && c[j].is_whitespace() {
                    j += 1;
                }
                let (vs, ve);
                if j < n && (c[j] == '"' || c[j] == '\'') {
                    let q = c[j];
                    vs = j + 1;
                    let mut k = vs;
                    while k < n && c[k] != q {
                        k += 1;
                    }
                    ve = k;
                    i = (k + 1).min(n);
                } else {
                    vs = j;
                    let mut k = j;
                    while k < n && !c[k].is_whitespace() && c[k] != '>' {
                        k += 1;
                    }
                    ve = k;
                    i = k;
                }
                let value = &c[vs..ve];
                let evidence = &c[tag_start..ve.min(n)];
                if HANDLERS.contains(&attr.as_str())
                    || attr.starts_with("onwebkit")
                    || attr.starts_with("onmoz")
                {
                    return Some(found(format!("xss:event-handler:{attr}"), evidence));
                }
                if URL_ATTRS.contains(&attr.as_str())
                    && let Some(s) = dangerous_scheme(&normalized_url(value))
                {
                    return Some(found(format!("xss:url:{s}"), evidence));
                }
                if attr == "style" && dangerous_css(value) {
                    return Some(found("xss:style".into(), evidence));
                }
                if attr == "srcdoc" && depth < 2 {
                    let inner: String = decode_entities(value).into_iter().collect();
                    if let Some(m) = scan(&inner, depth + 1) {
                        return Some(found(format!("xss:srcdoc:{}", m.fingerprint), evidence));
                    }
                }
                if name == "meta" && attr == "http-equiv" && lower(value).trim() == "refresh" {
                    http_equiv_refresh = true;
                }
                if name == "link" && attr == "rel" && lower(value).trim() == "import" {
                    return Some(found("xss:tag:link-import".into(), evidence));
                }
            }
            if http_equiv_refresh {
                return Some(found("xss:meta-refresh".into(), &c[tag_start..i]));
            }
            if name == "style" {
                let end = find_ci(c, i, "</style").unwrap_or(n);
                if dangerous_css(&c[i..end]) {
                    return Some(found("xss:style".into(), &c[tag_start..end]));
                }
                i = end;
            }
            continue;
        }
        // Data state.
        while i < n && c[i] != '<' {
            i += 1;
        }
        if i + 1 >= n {
            return None;
        }
        let lt = i;
        let next = c[i + 1];
        if next == '!' {
            if i + 3 < n && c[i + 2] == '-' && c[i + 3] == '-' {
                i = find_ci(c, i + 4, "-->").map(|e| e + 3).unwrap_or(n);
            } else {
                i = c[i..]
                    .iter()
                    .position(|&x| x == '>')
                    .map(|p| i + p + 1)
                    .unwrap_or(n);
            }
            continue;
        }
        if next == '/' || next == '?' {
            i = c[i..]
                .iter()
                .position(|&x| x == '>')
                .map(|p| i + p + 1)
                .unwrap_or(n);
            continue;
        }
        if !next.is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < n && !c[j].is_whitespace() && !matches!(c[j], '/' | '>') {
            j += 1;
        }
        let name = lower(&c[i + 1..j]);
        if DANGEROUS_TAGS.contains(&name.as_str()) {
            return Some(found(format!("xss:tag:{name}"), &c[lt..j]));
        }
        i = j;
        tag = Some((name, lt));
    }
}
