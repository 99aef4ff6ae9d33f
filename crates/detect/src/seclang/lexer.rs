//! Splits SecLang (ModSecurity configuration) text into directives and their arguments.
//!
//! Apache-style configuration: `#` comments, a trailing backslash continues a line, and
//! arguments are separated by whitespace, with double quotes grouping one argument. As
//! Apache's `ap_getword_conf` does, `\\` becomes `\` and `\"` inside quotes becomes `"`;
//! every other backslash is kept for the regex engine.

/// One directive as written: its name, its arguments, and the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// `SecRule`, `SecAction`, ...
    pub name: String,
    /// The arguments, quotes removed.
    pub args: Vec<String>,
    /// 1-based line number of the directive's first line.
    pub line: usize,
}

/// Splits a configuration file into directives. Never fails: an unterminated quote takes
/// the rest of the line, and the caller judges the arguments.
pub fn directives(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if logical.is_empty() {
            start = i + 1;
            if line.trim_start().starts_with('#') {
                continue;
            }
        }
        match line.strip_suffix('\\') {
            Some(head) => logical.push_str(head),
            None => {
                logical.push_str(line);
                push_logical(&mut out, &logical, start);
                logical.clear();
            }
        }
    }
    if !logical.is_empty() {
        push_logical(&mut out, &logical, start);
    }
    out
}

fn push_logical(out: &mut Vec<Directive>, logical: &str, line: usize) {
    let mut words = split_words(logical);
    if words.is_empty() {
        return;
    }
    let name = words.remove(0);
    if name.starts_with('#') {
        return;
    }
    out.push(Directive {
        name,
        args: words,
        line,
    });
}

/// Whitespace-separated words, double quotes grouping.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if matches!(chars.peek(), Some('"' | '\\')) => {
                        if let Some(n) = chars.next() {
                            word.push(n);
                        }
                    }
                    '"' => break,
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' && chars.peek() == Some(&'\\') {
                    chars.next();
                }
                word.push(c);
            }
        }
        words.push(word);
    }
    words
}

/// Splits an action list on commas outside single quotes: `id:1,msg:'a, b',pass`.
pub fn split_actions(s: &str) -> Vec<(String, Option<String>)> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted && chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                items.push(std::mem::take(&mut cur));
            }
            c => cur.push(c),
        }
    }
    items.push(cur);
    items
        .into_iter()
        .filter_map(|item| {
            let item = item.trim();
            if item.is_empty() {
                return None;
            }
            Some(match item.split_once(':') {
                Some((k, v)) => (k.trim().to_string(), Some(unquote(v.trim()).to_string())),
                None => (item.to_string(), None),
            })
        })
        .collect()
}

/// Removes one pair of surrounding single quotes.
pub fn unquote(s: &str) -> &str {
    s.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_quotes_and_comments() {
        let text = "# comment\nSecRule ARGS \"@rx a\\\"b\\d\" \\\n    \"id:1,\\\n    phase:2\"\n\nSecMarker END\n";
        let d = directives(text);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "SecRule");
        assert_eq!(d[0].args, vec!["ARGS", "@rx a\"b\\d", "id:1,    phase:2"]);
        assert_eq!(d[0].line, 2);
        assert_eq!(d[1].args, vec!["END"]);
        let d = directives("SecRule ARGS \"@rx [^\\\\\\\\]\\\\\\\\c\" \"id:2\"\n");
        assert_eq!(
            d[0].args[1], "@rx [^\\\\]\\\\c",
            "\\\\ is one backslash, as in Apache"
        );
    }

    #[test]
    fn actions_split_outside_quotes() {
        let a = split_actions("id:1, msg:'a, b' ,t:none,pass,setvar:'tx.x=+%{tx.y}'");
        assert_eq!(a[1], ("msg".into(), Some("a, b".into())));
        assert_eq!(a[3], ("pass".into(), None));
        assert_eq!(a[4], ("setvar".into(), Some("tx.x=+%{tx.y}".into())));
    }
}
