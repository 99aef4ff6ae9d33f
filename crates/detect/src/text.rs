//! Bounded copies of request text for the records a request leaves (a finding's
//! evidence, threats, predictions): the same text as `s.chars().take(n).collect()`,
//! without building the `String` one `char` at a time. A threat is raised on about one
//! stored log line in eight; collecting the URI `char` by `char` showed in the ingest
//! profile (issue 16, `ingest5`), and copying a finding's evidence that way was a sixth
//! of a finding line's instructions in the engine (engine10).

/// The first `n` characters of `s`, as an owned `String`.
pub fn first_chars(s: &str, n: usize) -> String {
    // Every char is at least one byte, so a text of at most `n` bytes has at most `n`
    // chars: all of it.
    if s.len() <= n {
        return s.to_owned();
    }
    match s.char_indices().nth(n) {
        Some((end, _)) => s.get(..end).unwrap_or(s).to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(s: &str, n: usize) -> String {
        s.chars().take(n).collect()
    }

    #[test]
    fn cuts_where_taking_chars_cuts() {
        let pieces = ["a", "/", "é", "€", "𝄞", "?q=1", "", "%C3%A9", "\u{0}", "ü"];
        // Every sequence of up to four pieces, cut at every length up to its char count
        // and past it.
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for t in &texts {
                for p in pieces {
                    next.push(format!("{t}{p}"));
                }
            }
            texts.extend(next);
        }
        texts.push("x".repeat(3000));
        texts.push("é".repeat(3000));
        for t in &texts {
            for n in (0..=t.chars().count() + 2).chain([32, 2048]) {
                assert_eq!(first_chars(t, n), reference(t, n), "{t:?} {n}");
            }
        }
    }
}
