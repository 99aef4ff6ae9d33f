//! A filter's `path_prefix` or `path_suffix` list, bucketed by one byte of each entry,
//! so that a path is compared only with the entries that can match it.
//!
//! Every stored event passes through every HTTP scenario's filters (issue 16,
//! docs/BENCHMARKS.md `ingest11`): the built-in files hold lists of up to 13 suffixes
//! and 10 prefixes, and trying each entry in turn was ~0.5k instructions per path filter
//! tried, ~1.4k a line of an import. An entry can only match a path whose byte at the
//! same place (the second byte for a prefix, the one after the leading `/`; the last one
//! for a suffix) is its own, case-folded when the filter ignores case, so the entries
//! are kept sorted by that byte and a path tries only its byte's bucket. The answer is
//! the same as trying every entry: the bucket holds every entry that can match.

/// Which end of the path the entries are matched at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// `path_prefix`: the entries start the path.
    Start,
    /// `path_suffix`: the entries end the path.
    Finish,
}

/// One list of path prefixes or suffixes, bucketed by their key byte.
#[derive(Debug, Clone)]
pub(crate) struct Affixes {
    end: End,
    ignore_case: bool,
    /// Entries that have a key byte, sorted by it (case-folded when ignoring case).
    keyed: Vec<Box<str>>,
    /// `keyed[starts[b]..starts[b + 1]]` have the key byte `b`; empty when `keyed` is.
    starts: Box<[u32]>,
    /// Entries too short to have a key byte (a one-byte prefix), tried on every path.
    short: Vec<Box<str>>,
}

/// The byte an entry or a path is bucketed by, if it has one: the second for a prefix
/// (the first is nearly always `/`), the last for a suffix.
fn key(end: End, bytes: &[u8]) -> Option<u8> {
    match end {
        End::Start => bytes.get(1).copied(),
        End::Finish => bytes.last().copied(),
    }
}

impl Affixes {
    /// Buckets `entries` (non-empty strings, as the filter's loader accepts them).
    pub(crate) fn new(end: End, ignore_case: bool, entries: Vec<Box<str>>) -> Affixes {
        let fold = |b: u8| {
            usize::from(if ignore_case {
                b.to_ascii_lowercase()
            } else {
                b
            })
        };
        let (mut keyed, short): (Vec<Box<str>>, Vec<Box<str>>) = entries
            .into_iter()
            .partition(|e| key(end, e.as_bytes()).is_some());
        keyed.sort_by_key(|e| key(end, e.as_bytes()).map(fold));
        let starts = if keyed.is_empty() {
            Box::default()
        } else {
            let mut counts = [0u32; 257];
            for e in &keyed {
                if let Some(slot) = key(end, e.as_bytes()).and_then(|b| counts.get_mut(fold(b) + 1))
                {
                    *slot += 1;
                }
            }
            let mut below = 0;
            for count in &mut counts {
                below += *count;
                *count = below;
            }
            Box::from(counts)
        };
        Affixes {
            end,
            ignore_case,
            keyed,
            starts,
            short,
        }
    }

    /// Whether one entry starts (or ends) `path`.
    fn fits(&self, path: &[u8], entry: &[u8]) -> bool {
        let part = match self.end {
            End::Start => path.get(..entry.len()),
            End::Finish => path
                .len()
                .checked_sub(entry.len())
                .and_then(|from| path.get(from..)),
        };
        part.is_some_and(|part| {
            if self.ignore_case {
                part.eq_ignore_ascii_case(entry)
            } else {
                part == entry
            }
        })
    }

    /// Whether any entry starts (or ends) `path`.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let p = path.as_bytes();
        if self.short.iter().any(|e| self.fits(p, e.as_bytes())) {
            return true;
        }
        let Some(b) = key(self.end, p) else {
            // A path without the key byte is too short for every keyed entry.
            return false;
        };
        let b = usize::from(if self.ignore_case {
            b.to_ascii_lowercase()
        } else {
            b
        });
        let (Some(&from), Some(&to)) = (self.starts.get(b), self.starts.get(b + 1)) else {
            return false;
        };
        self.keyed
            .get(from as usize..to as usize)
            .unwrap_or_default()
            .iter()
            .any(|e| self.fits(p, e.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Lcg;

    /// What the filter did before the buckets: every entry tried.
    fn every_entry(end: End, ignore_case: bool, entries: &[&str], path: &str) -> bool {
        let p = path.as_bytes();
        let eq = |a: &[u8], b: &[u8]| {
            if ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        entries.iter().any(|x| match end {
            End::Start => p.get(..x.len()).is_some_and(|h| eq(h, x.as_bytes())),
            End::Finish => {
                p.len() >= x.len()
                    && p.get(p.len() - x.len()..)
                        .is_some_and(|t| eq(t, x.as_bytes()))
            }
        })
    }

    /// Text over an alphabet that makes prefixes and suffixes of one another likely,
    /// both cases and non-ASCII, from the crate's deterministic test generator.
    fn text(g: &mut Lcg, max: u64) -> String {
        const ALPHABET: [&str; 12] = ["/", ".", "a", "A", "b", "B", "z", "-", "é", "É", "1", "%"];
        let len = g.below(max + 1);
        (0..len)
            .filter_map(|_| ALPHABET.get(g.below(12) as usize).copied())
            .collect()
    }

    #[test]
    fn buckets_answer_as_every_entry_tried() {
        let mut g = Lcg(7);
        for round in 0..400 {
            let end = if round % 2 == 0 {
                End::Start
            } else {
                End::Finish
            };
            let ignore_case = round % 4 < 2;
            let entries: Vec<String> = (0..1 + g.next() % 14)
                .map(|_| {
                    let t = text(&mut g, 6);
                    if t.is_empty() { "/".to_owned() } else { t }
                })
                .collect();
            let refs: Vec<&str> = entries.iter().map(String::as_str).collect();
            let list = Affixes::new(
                end,
                ignore_case,
                entries.iter().map(|e| e.as_str().into()).collect(),
            );
            let mut paths: Vec<String> = (0..60).map(|_| text(&mut g, 9)).collect();
            // Each entry itself, with text around it, in the other case too.
            for e in &entries {
                paths.push(e.clone());
                paths.push(format!("{e}x/y"));
                paths.push(format!("/q{e}"));
                paths.push(e.to_ascii_uppercase());
                paths.push(e.to_ascii_lowercase());
            }
            for p in &paths {
                assert_eq!(
                    list.matches(p),
                    every_entry(end, ignore_case, &refs, p),
                    "{end:?} ignore_case={ignore_case} {entries:?} on {p:?}"
                );
            }
        }
    }

    #[test]
    fn the_built_in_lists_match_as_written() {
        let suffixes: Vec<Box<str>> = [".css", ".js", ".map", ".png", ".woff2", ".php"]
            .into_iter()
            .map(Into::into)
            .collect();
        let list = Affixes::new(End::Finish, true, suffixes);
        assert!(list.matches("/static/app.JS"));
        assert!(list.matches("/f.woff2"));
        assert!(!list.matches("/f.woff"));
        assert!(!list.matches(""));
        let prefixes: Vec<Box<str>> = ["/.git/", "/wp-admin", "/"]
            .into_iter()
            .map(Into::into)
            .collect();
        let list = Affixes::new(End::Start, false, prefixes);
        assert!(list.matches("/anything"));
        assert!(!list.matches("x"));
        let list = Affixes::new(End::Start, true, vec!["/.git/".into()]);
        assert!(list.matches("/.GIT/config"));
        assert!(!list.matches("/"));
        assert!(!Affixes::new(End::Start, true, Vec::new()).matches("/a"));
    }
}
