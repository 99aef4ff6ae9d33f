//! A one-pass byte check that tells, without tokenizing, that the SQLi detector can
//! find nothing in a value: most values a log line carries (numbers, words, dates,
//! slugs, URLs, user agents) hold none of what any of its fingerprints or rules needs.
//!
//! Why it is exact (never skips a finding), for an ASCII value without quotes (then only
//! the as-is context is tokenized; a quote, or any non-ASCII char, goes the full way):
//! every finding of the as-is context needs, among the first five folded tokens or
//! anywhere in the stream, one of these tokens (see `sqli::analyse`): a logic operator
//! (`||`, `&&`, the words `and`, `or`, `xor`), `union`, `by` (folded into `order by` /
//! `group by`), a statement word (`select`, `drop`, ...: after `;`, `union` or `(`),
//! the keywords `into`, `waitfor` and `procedure`, a time or dangerous function's name,
//! or a word ending in `xp_cmdshell`. Parentheses and `;` matter only next to one of
//! those words. A word token always runs to the end of its run of word chars
//! (letters, digits, `_`, `$`, `.`); it is the whole run when the run starts with a
//! letter, `_` or `$` (the tokenizer reaches such a run at its start and takes all of
//! it), and otherwise a suffix of the run starting at a letter, `_` or `$` (after a
//! number, a hex or binary literal, dots, or a `/*!` version's digits).

/// The longest word any list holds (longer runs are only checked for `xp_cmdshell`).
const LONGEST: usize = 32;

/// A byte that continues a word token (ASCII: `sqli::is_word_char`).
const WORD: u8 = 1;
/// A byte that alone may make a finding possible: a quote (a quoted context is
/// tokenized) or any byte of a non-ASCII char.
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
        } else if c >= 0x80 || c == b'\'' || c == b'"' {
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

/// Whether `word` (ASCII, any case) is one of the words a finding needs: the logic
/// words, `union`, `by`, `into`, `waitfor`, `procedure`, and `sqli`'s statement, time and dangerous function names, written out as one
/// `match` (a length switch, then a few comparisons; a test checks every listed word
/// is here).
fn is_trigger(word: &[u8]) -> bool {
    if word.len() > LONGEST {
        return false;
    }
    let mut lower = [0u8; LONGEST];
    let Some(buf) = lower.get_mut(..word.len()) else {
        return false;
    };
    for (l, w) in buf.iter_mut().zip(word) {
        *l = w.to_ascii_lowercase();
    }
    matches!(
        &*buf,
        b"and"
            | b"or"
            | b"xor"
            | b"union"
            | b"by"
            | b"into"
            | b"waitfor"
            | b"procedure"
            | b"select"
            | b"insert"
            | b"update"
            | b"delete"
            | b"drop"
            | b"create"
            | b"alter"
            | b"truncate"
            | b"exec"
            | b"execute"
            | b"declare"
            | b"shutdown"
            | b"sleep"
            | b"benchmark"
            | b"pg_sleep"
            | b"pg_sleep_for"
            | b"dbms_lock.sleep"
            | b"sys.dbms_lock.sleep"
            | b"dbms_pipe.receive_message"
            | b"randomblob"
            | b"extractvalue"
            | b"updatexml"
            | b"load_file"
            | b"xp_cmdshell"
            | b"master..xp_cmdshell"
            | b"utl_inaddr.get_host_address"
            | b"utl_http.request"
            | b"name_const"
            | b"sys_eval"
            | b"sys_exec"
    )
}

/// Whether `run` (ASCII, any case) ends in `xp_cmdshell`.
fn ends_in_cmdshell(run: &[u8]) -> bool {
    const NAME: &[u8] = b"xp_cmdshell";
    run.len() >= NAME.len()
        && run
            .get(run.len() - NAME.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(NAME))
}

/// Whether a maximal run of word chars may hold a word token a finding needs.
fn run_may_trigger(run: &[u8]) -> bool {
    if ends_in_cmdshell(run) {
        return true;
    }
    match run.first() {
        // One word token, the whole run (or a variable's name).
        Some(b) if b.is_ascii_alphabetic() || matches!(b, b'_' | b'$') => {
            run.len() <= LONGEST && is_trigger(run)
        }
        // A word token may start at any letter, `_` or `$` inside it.
        _ => (0..run.len()).any(|k| {
            run.get(k..).is_some_and(|tail| {
                tail.first()
                    .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'$'))
                    && is_trigger(tail)
            })
        }),
    }
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
    use super::{LONGEST, cannot_match, is_trigger};
    use crate::sqli::{DANGEROUS_FUNCS, STATEMENTS, TIME_FUNCS};

    /// Words that make the token kinds listed above, besides the statement and function
    /// names of `sqli` (lower case).
    const WORDS: &[&str] = &[
        "and",
        "or",
        "xor",
        "union",
        "by",
        "into",
        "waitfor",
        "procedure",
    ];

    #[test]
    fn every_listed_word_is_a_trigger_in_any_case() {
        for list in [WORDS, STATEMENTS, TIME_FUNCS, DANGEROUS_FUNCS] {
            for w in list {
                assert!(w.len() <= LONGEST, "{w}");
                assert!(is_trigger(w.as_bytes()), "{w}");
                assert!(is_trigger(w.to_ascii_uppercase().as_bytes()), "{w}");
                assert!(!cannot_match(w), "{w}");
            }
        }
    }

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
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko)",
            "f(1)",
            "1;x",
            "sleepy(1)",
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
            "O'Brien",
            "1;select",
            "sleep(5)",
            "x pg_SLEEP",
            "DBMS_LOCK.SLEEP",
            "1drop",
            "utl_http.request",
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
