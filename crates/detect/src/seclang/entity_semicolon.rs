//! CRS's multipart file-name rule (920120, "Attempted multipart/form-data bypass")
//! without look-behind.
//!
//! Its pattern, `(?<!&(?:[aAoOuUyY]uml)|&(?:[aAeEiIoOuU]circ)|…|&(?:amp)|&(?:apos));|['"=]`,
//! matches a quote, a double quote or `=` anywhere, or a `;` that does not end one of
//! eight HTML entity names (`&auml;`, `&Ecirc;`, `&eacute;`, `&ograve;`, `&ccedil;`,
//! `&ntilde;`, `&amp;`, `&apos;` and their listed case variants): a file name with
//! those characters can smuggle a second parameter past a multipart parser. The
//! linear-time `regex` crate has no look-behind, so the rule used to be skipped (the
//! only regex rule of Debian's CRS 3.3.4 that was). The look-behind is a fixed set of
//! suffixes, so it runs here as one pass over the bytes: leftmost match first, as PCRE
//! reports it, checked against `grep -P` with the same pattern on random strings
//! (`tests/fixtures/crs-920120-grep.tsv`).

/// CRS 3.3.4's (and 4.x's) 920120 pattern, as the lexer hands it over (Apache's `\"`
/// already unquoted).
const PATTERN: &str = r#"(?<!&(?:[aAoOuUyY]uml)|&(?:[aAeEiIoOuU]circ)|&(?:[eEiIoOuUyY]acute)|&(?:[aAeEiIoOuU]grave)|&(?:[cC]cedil)|&(?:[aAnNoO]tilde)|&(?:amp)|&(?:apos));|['"=]"#;

/// The look-behind's entities: first letters allowed, then the rest of the name.
const ENTITIES: &[(&[u8], &[u8])] = &[
    (b"aAoOuUyY", b"uml"),
    (b"aAeEiIoOuU", b"circ"),
    (b"eEiIoOuUyY", b"acute"),
    (b"aAeEiIoOuU", b"grave"),
    (b"cC", b"cedil"),
    (b"aAnNoO", b"tilde"),
    (b"a", b"mp"),
    (b"a", b"pos"),
];

/// The 920120 matcher (the pattern has no parameters: recognised or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntitySemicolon;

impl EntitySemicolon {
    /// Recognises CRS's 920120 pattern (also with the `\"` of the rule file still in
    /// it); any other look-behind stays unsupported.
    pub fn recognize(pattern: &str) -> Option<EntitySemicolon> {
        (pattern.replace("\\\"", "\"") == PATTERN).then_some(EntitySemicolon)
    }

    /// The leftmost match in `s` as its byte span: a `'`, `"` or `=`, or a `;` not
    /// ending one of the entities.
    pub fn find(&self, s: &[u8]) -> Option<(usize, usize)> {
        s.iter().enumerate().find_map(|(i, &c)| {
            let hit = match c {
                b'\'' | b'"' | b'=' => true,
                b';' => !ends_with_entity(s.get(..i).unwrap_or_default()),
                _ => false,
            };
            hit.then_some((i, i + 1))
        })
    }
}

/// Whether `before` ends with `&` and one of [`ENTITIES`] (without its `;`).
fn ends_with_entity(before: &[u8]) -> bool {
    ENTITIES.iter().any(|(first, rest)| {
        let n = rest.len() + 2;
        before.len() >= n && {
            let tail = &before[before.len() - n..];
            tail[0] == b'&' && first.contains(&tail[1]) && &tail[2..] == *rest
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(s: &str) -> Option<(usize, usize)> {
        EntitySemicolon.find(s.as_bytes())
    }

    #[test]
    fn recognizes_the_crs_pattern_only() {
        assert!(EntitySemicolon::recognize(PATTERN).is_some());
        let quoted = PATTERN.replace("['\"=]", "['\\\"=]");
        assert!(EntitySemicolon::recognize(&quoted).is_some());
        assert_eq!(EntitySemicolon::recognize(r"(?<!a);"), None);
        assert_eq!(EntitySemicolon::recognize(r"['=]"), None);
    }

    #[test]
    fn quotes_equals_and_bare_semicolons() {
        assert_eq!(hit("report.pdf"), None);
        assert_eq!(
            hit("Gr&ouml;&szlig;e.txt"),
            Some((14, 15)),
            "szlig is not listed"
        );
        assert_eq!(hit("caf&eacute;.txt"), None);
        assert_eq!(hit("a&amp;b&apos;c&Ntilde;&Ccedil;"), None);
        assert_eq!(hit("a&Amp;b"), Some((5, 6)), "only lower-case amp");
        assert_eq!(hit("x;y"), Some((1, 2)));
        assert_eq!(hit("name=\"x\""), Some((4, 5)));
        assert_eq!(hit("o'brien.txt"), Some((1, 2)));
        assert_eq!(hit("&uml;"), Some((4, 5)), "a first letter is needed");
        assert_eq!(
            hit("&aacute;"),
            Some((7, 8)),
            "a is not among acute's letters"
        );
    }

    /// Equal to `grep -P` with the same pattern on random strings built from entity
    /// parts, quotes, `=`, `;` and letters: one line per string, `1` when grep matched
    /// it, then the byte offset of grep's first match (`-o -b`), then the string.
    #[test]
    fn equals_grep_p_on_random_strings() {
        let fixture = include_str!("../../tests/fixtures/crs-920120-grep.tsv");
        let mut lines = 0;
        let mut matched = 0;
        for line in fixture.lines() {
            let mut cols = line.splitn(3, '\t');
            let (m, off, s) = (
                cols.next().unwrap(),
                cols.next().unwrap(),
                cols.next().unwrap(),
            );
            let expected = (m == "1").then(|| off.parse::<usize>().unwrap());
            assert_eq!(hit(s).map(|(a, _)| a), expected, "{s:?}");
            lines += 1;
            matched += usize::from(expected.is_some());
        }
        assert!(
            lines >= 2000 && matched > 100 && matched < lines,
            "{matched}/{lines}"
        );
    }
}
