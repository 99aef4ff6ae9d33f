//! A one-pass byte check that tells, without tokenizing, that the SQLi detector can
//! find nothing in a value: most values a log line carries (numbers, words, dates,
//! slugs, URLs) hold none of what any of its fingerprints or rules needs.
//!
//! Why it is exact (never skips a finding), for an ASCII value without quotes (then only
//! the as-is context is tokenized; a quote, or any non-ASCII char, goes the full way):
//! every finding of the as-is context needs, among the first five folded tokens or
//! anywhere in the stream, a token of one of these kinds (see `sqli::analyse`): a
//! parenthesis or `;` (those chars), a logic operator (`||`, `&&`, the words `and`,
//! `or`, `xor`), `union`, `by` (folded into `order by` / `group by`), the keywords
//! `into`, `waitfor` and `procedure`, a function (a word before `(`) or a word ending in
//! `xp_cmdshell`. A word token always runs to the end of its run of word chars
//! (letters, digits, `_`, `$`, `.`); it is the whole run when the run starts with a
//! letter, `_` or `$` (the tokenizer reaches such a run at its start and takes all of
//! it), and otherwise a suffix of the run (after a number, a hex or binary literal,
//! dots, or a `/*!` version's digits). So it is enough to look at how each run ends.

/// Words that make the token kinds listed above (lower case).
const TRIGGERS: &[&[u8]] = &[
    b"and",
    b"or",
    b"xor",
    b"union",
    b"by",
    b"into",
    b"waitfor",
    b"procedure",
];

/// A byte that continues a word token (ASCII: `sqli::is_word_char`).
const WORD: u8 = 1;
/// A byte that alone may make a finding possible: a quote (a quoted context is
/// tokenized), a parenthesis, `;`, or any byte of a non-ASCII char.
const STOP: u8 = 2;
/// `|` and `&`: a logic operator when doubled.
const PAIR: u8 = 3;

/// The class of every byte (0: none of the above).
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'.' {
            WORD
        } else if c >= 0x80 || c == b'\'' || c == b'"' || c == b'(' || c == b')' || c == b';' {
            STOP
        } else if c == b'|' || c == b'&' {
            PAIR
        } else {
            0
        };
        b += 1;
    }
    t
}

/// Whether `run` (ASCII, lower or upper case) ends in `word` (lower case).
fn ends_with_ignore_case(run: &[u8], word: &[u8]) -> bool {
    run.len() >= word.len()
        && run
            .get(run.len() - word.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(word))
}

/// Whether a maximal run of word chars may hold a word token that makes one of the
/// token kinds a finding needs.
fn run_may_trigger(run: &[u8]) -> bool {
    // Every trigger ends in one of these letters: most runs are let go here.
    let Some(&last) = run.last() else {
        return false;
    };
    if !matches!(
        last.to_ascii_lowercase(),
        b'd' | b'r' | b'n' | b'y' | b'o' | b'e' | b'l'
    ) {
        return false;
    }
    if ends_with_ignore_case(run, b"xp_cmdshell") {
        return true;
    }
    // A run starting with a digit or `.` may hold a word token after a number; one
    // starting with a letter, `_` or `$` is one word token (or a variable's name).
    let word_may_start_inside = run
        .first()
        .is_some_and(|&b| b.is_ascii_digit() || b == b'.');
    TRIGGERS
        .iter()
        .any(|t| (word_may_start_inside || run.len() == t.len()) && ends_with_ignore_case(run, t))
}

/// Whether the SQLi detector is sure to find nothing in `input` (as given to one
/// tokenizing pass, before or after percent-decoding): `false` means "tokenize it",
/// never "it is an attack".
pub(crate) fn cannot_match(input: &str) -> bool {
    let b = input.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match CLASS[usize::from(c)] {
            WORD => {
                let start = i;
                i += 1;
                while b.get(i).is_some_and(|&x| CLASS[usize::from(x)] == WORD) {
                    i += 1;
                }
                if run_may_trigger(b.get(start..i).unwrap_or_default()) {
                    return false;
                }
                continue;
            }
            STOP => return false,
            PAIR if b.get(i + 1) == Some(&c) => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::cannot_match;

    #[test]
    fn plain_values_need_no_tokenizing() {
        for v in [
            "",
            "12345",
            "en-US",
            "search words for a colour",
            "/index.html",
            "http://example.com/a/b?x=1&y=2",
            "editor",
            "Mozilla/5.0 Gecko",
            "2019-05-01T10:00:00Z",
            "a&b|c",
            "land.byte_or",
        ] {
            assert!(cannot_match(v), "{v:?}");
        }
    }

    #[test]
    fn values_with_what_a_finding_needs_are_tokenized() {
        for v in [
            "1 or 1=1",
            "x AND y",
            "1and",
            "0xfor",
            "1e5union",
            ".by",
            "/*!50000union*/",
            "a || b",
            "a && b",
            "f(1)",
            "1;x",
            "O'Brien",
            "say \"hi\"",
            "master..xp_cmdshell",
            "caf\u{e9}",
            "INTO",
            "WaitFor",
            "procedure",
            "XoR",
        ] {
            assert!(!cannot_match(v), "{v:?}");
        }
    }
}
