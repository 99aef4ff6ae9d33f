//! Extra places a payload hides in: XML/SOAP elements and attributes, GraphQL string
//! literals, and values wrapped in base64.
//!
//! Each extractor is a bounded single pass over the text (no recursion, no allocation
//! beyond the values it returns), so hostile documents cannot make parsing slow; the
//! parser turns what they return into ordinary argument parts, so every argument rule
//! inspects them without knowing where they came from.

use crate::transform::html_entity_decode;

/// Most values one document yields; the rest are not extracted.
const MAX_VALUES: usize = 500;
/// Shortest value tried as base64: shorter ones are words far more often than payloads.
const MIN_BASE64: usize = 12;

/// Element texts (CDATA included) and attribute values of an XML document, named by the
/// element path of local names (`Envelope.Body.login.user`, `item@id` for attributes).
///
/// Not a validating parser: comments, processing instructions and the DOCTYPE are
/// skipped (the raw body rules still see them), malformed nesting is tolerated.
pub fn xml_values(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = doc;
    while out.len() < MAX_VALUES {
        let Some(lt) = rest.find('<') else { break };
        let text = rest.get(..lt).unwrap_or("");
        push_text(&mut out, &stack, text);
        rest = rest.get(lt..).unwrap_or("");
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").unwrap_or(after.len());
            push_text(&mut out, &stack, after.get(..end).unwrap_or(""));
            rest = after.get(end + 3..).unwrap_or("");
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after
                .find("-->")
                .and_then(|e| after.get(e + 3..))
                .unwrap_or("");
        } else if let Some(after) = rest.strip_prefix("<?") {
            rest = after
                .find("?>")
                .and_then(|e| after.get(e + 2..))
                .unwrap_or("");
        } else if rest.starts_with("<!") {
            rest = skip_declaration(rest);
        } else if let Some(after) = rest.strip_prefix("</") {
            rest = after
                .find('>')
                .and_then(|e| after.get(e + 1..))
                .unwrap_or("");
            stack.pop();
        } else {
            let after = rest.get(1..).unwrap_or("");
            let end = tag_end(after);
            let tag = after.get(..end).unwrap_or("");
            rest = after.get(end + 1..).unwrap_or("");
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name_end = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
            let name = local_name(tag.get(..name_end).unwrap_or(""));
            let attrs = tag.get(name_end..).unwrap_or("");
            let path = join_path(&stack, name);
            for (attr, value) in attributes(attrs) {
                if out.len() >= MAX_VALUES {
                    break;
                }
                if !attr.starts_with("xmlns") && !value.is_empty() {
                    out.push((
                        format!("{path}@{}", local_name(attr)),
                        html_entity_decode(value).into_owned(),
                    ));
                }
            }
            if !self_closing && !name.is_empty() {
                stack.push(name);
            }
        }
    }
    out
}

fn push_text(out: &mut Vec<(String, String)>, stack: &[&str], text: &str) {
    let t = text.trim();
    if !t.is_empty() && out.len() < MAX_VALUES {
        out.push((stack.join("."), html_entity_decode(t).into_owned()));
    }
}

fn join_path(stack: &[&str], name: &str) -> String {
    let mut p = stack.join(".");
    if !p.is_empty() {
        p.push('.');
    }
    p.push_str(name);
    p
}

fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// End of a start tag: the first `>` outside a quoted attribute value.
fn tag_end(s: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i,
            _ => {}
        }
    }
    s.len()
}

/// Skips `<!DOCTYPE ...>` including an internal subset in brackets.
fn skip_declaration(s: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '>' if depth == 0 => return s.get(i + 1..).unwrap_or(""),
            _ => {}
        }
    }
    ""
}

fn attributes(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let name = rest.get(..eq).unwrap_or("").trim();
        let after = rest.get(eq + 1..).unwrap_or("").trim_start();
        let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let body = after.get(1..).unwrap_or("");
        let end = body.find(q).unwrap_or(body.len());
        out.push((name, body.get(..end).unwrap_or("")));
        rest = body.get(end + 1..).unwrap_or("");
    }
    out
}

/// Whether a value reads as a GraphQL document (an operation or a selection set).
pub fn looks_like_graphql(value: &str) -> bool {
    let t = value.trim_start();
    t.starts_with('{')
        || ["query", "mutation", "subscription", "fragment"]
            .iter()
            .any(|k| {
                t.strip_prefix(k)
                    .is_some_and(|r| r.starts_with([' ', '{', '(', '\n', '\t', '\r']))
            })
}

/// String literals of a GraphQL document (`"..."` with escapes and `"""` blocks), named
/// `graphql.<argument>` after the argument or field they are given to, so injection in
/// an inline argument is inspected like a JSON variable would be.
pub fn graphql_strings(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut last_ident = String::new();
    let mut ident = String::new();
    let mut chars = doc.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() >= MAX_VALUES {
            break;
        }
        match c {
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut value = String::new();
                if chars.peek() == Some(&'"') {
                    chars.next();
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        // Block string: up to the closing triple quote.
                        let mut quotes = 0;
                        for n in chars.by_ref() {
                            if n == '"' {
                                quotes += 1;
                                if quotes == 3 {
                                    break;
                                }
                            } else {
                                value.extend(std::iter::repeat_n('"', quotes));
                                quotes = 0;
                                value.push(n);
                            }
                        }
                    }
                } else {
                    while let Some(n) = chars.next() {
                        match n {
                            '"' => break,
                            '\\' => match chars.next() {
                                Some('n') => value.push('\n'),
                                Some('t') => value.push('\t'),
                                Some('u') => {
                                    let hex: String = chars.by_ref().take(4).collect();
                                    value.push(
                                        u32::from_str_radix(&hex, 16)
                                            .ok()
                                            .and_then(char::from_u32)
                                            .unwrap_or('\u{FFFD}'),
                                    );
                                }
                                Some(o) => value.push(o),
                                None => break,
                            },
                            o => value.push(o),
                        }
                    }
                }
                out.push((format!("graphql.{last_ident}"), value));
            }
            c if c.is_alphanumeric() || c == '_' => ident.push(c),
            _ => {
                if !ident.is_empty() {
                    last_ident = std::mem::take(&mut ident);
                }
            }
        }
    }
    out
}

/// The text a base64-wrapped value carries: the whole value when it is base64 (standard
/// or URL-safe) of printable UTF-8, or the payload of a `data:...;base64,` URL. Tokens
/// that decode to bytes (session ids, hashes, encrypted blobs) give `None`, and JWTs are
/// not base64 as a whole (their dots), so neither becomes a part.
pub fn base64_text(value: &str) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    // What is decoded is never longer than the value: short values are words (and
    // trimming only shortens, so the untrimmed length answers first).
    if value.len() < MIN_BASE64 {
        return None;
    }
    let v = trimmed(value);
    if v.len() < MIN_BASE64 {
        return None;
    }
    let is_data_url = v.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:"));
    let v = match is_data_url.then(|| v.find(";base64,")).flatten() {
        Some(i) => v.get(i + 8..).unwrap_or(""),
        None => v,
    };
    let body = v.trim_end_matches('=');
    if body.len() < MIN_BASE64
        || v.len() - body.len() > 2
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
        // All letters of one case, or no letters, reads as a word, a hex id or a number.
        || !(body.bytes().any(|b| b.is_ascii_uppercase()) && body.bytes().any(|b| b.is_ascii_lowercase()))
    {
        return None;
    }
    let bytes = STANDARD_NO_PAD
        .decode(body)
        .or_else(|_| URL_SAFE_NO_PAD.decode(body))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let printable = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
    (printable && !text.trim().is_empty()).then_some(text)
}

/// `value.trim()`, without its walk over characters when both ends are printable
/// ASCII: neither end is whitespace then, so trimming leaves the value as it is. Most
/// values a request carries (header values, arguments) end so, and the walk decoded a
/// character at each end and looked it up in the whitespace table.
fn trimmed(value: &str) -> &str {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => value,
        _ => value.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_is_str_trim() -> Result<(), String> {
        let ends = [
            "", " ", "\t", "\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{A0}", "\u{2003}",
            "\u{3000}", "a", "=", "~", "!", "é", "\u{7F}", "\u{1F}", "\0",
        ];
        for start in ends {
            for end in ends {
                for middle in ["", "x", "QUJD REVG", " \u{A0} "] {
                    let value = format!("{start}{middle}{end}");
                    if trimmed(&value) != value.trim() {
                        return Err(format!(
                            "{value:?}: {:?} ≠ {:?}",
                            trimmed(&value),
                            value.trim()
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn xml_elements_attributes_and_cdata() {
        let doc = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://s"><soap:Body><login user="a&amp;b"><name>alice</name><pw><![CDATA[x' or '1'='1]]></pw><!-- c --><e/></login></soap:Body></soap:Envelope>"#;
        let v = xml_values(doc);
        assert!(v.contains(&("Envelope.Body.login@user".into(), "a&b".into())));
        assert!(v.contains(&("Envelope.Body.login.name".into(), "alice".into())));
        assert!(v.contains(&("Envelope.Body.login.pw".into(), "x' or '1'='1".into())));
        assert!(!v.iter().any(|(n, _)| n.contains("xmlns")));
    }

    #[test]
    fn xml_is_bounded_and_tolerant() {
        assert!(xml_values("<a><b>unterminated").len() <= 1);
        assert!(xml_values("<<<>>>\"'").len() <= 2);
        let many = "<a>x</a>".repeat(10_000);
        assert_eq!(xml_values(&many).len(), MAX_VALUES);
        assert!(
            xml_values(r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#)
                .iter()
                .any(|(n, v)| n == "x" && v == "&e;")
        );
    }

    #[test]
    fn graphql_literals_named_by_argument() {
        let doc = r#"query Q { user(name: "bob\" x", id: 3) { posts(filter: """multi
"line""") { title } } } # "not a string"
"#;
        assert!(looks_like_graphql(doc));
        let v = graphql_strings(doc);
        assert_eq!(
            v,
            vec![
                ("graphql.name".to_string(), "bob\" x".to_string()),
                ("graphql.filter".to_string(), "multi\n\"line".to_string()),
            ]
        );
        assert!(!looks_like_graphql("querying the docs"));
        assert!(looks_like_graphql("{ me { id } }"));
    }

    #[test]
    fn base64_only_when_it_carries_text() {
        // "<script>alert(1)</script>"
        assert_eq!(
            base64_text("PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==").as_deref(),
            Some("<script>alert(1)</script>")
        );
        assert_eq!(
            base64_text("data:;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjJ10pOyA/Pg==").as_deref(),
            Some("<?php system($_GET['c']); ?>")
        );
        // A JWT is not base64 as a whole; random token bytes are not text.
        assert!(base64_text("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc").is_none());
        assert!(base64_text("q83vEjRWeJASNFZ4kKvN7w==").is_none());
        // Words, hex ids and numbers are left alone.
        assert!(base64_text("administrator").is_none());
        assert!(base64_text("5f2b8c9d0e1a4b7c").is_none());
        assert!(base64_text("12345678901234").is_none());
    }
}
