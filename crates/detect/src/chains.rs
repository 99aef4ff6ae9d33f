//! Transformation chains as a prefix tree, so a part's value goes through each shared
//! prefix once.
//!
//! Nearly every built-in chain starts with `url_decode_uni`, and many continue with
//! `remove_nulls` or `html_entity_decode`: applying each chain from the start decoded
//! the same value once per chain. Every chain here is its parent chain (all its steps
//! but the last) plus one step, so a part's value for a chain is one step applied to
//! its parent's value, and a step that changes nothing makes the chain's value its
//! parent's (no copy). The text is the one [`crate::transform::apply_chain`] gives.

use std::borrow::Cow;

use crate::transform::Transform;

/// Interned chains: each with its steps and its parent (the chain without its last step).
#[derive(Debug, Default)]
pub(crate) struct Chains {
    steps: Vec<Vec<Transform>>,
    /// For each chain: its parent and last step; `None` for the empty chain.
    parent: Vec<Option<(usize, Transform)>>,
}

impl Chains {
    /// The id of `chain`, interning it and every prefix of it.
    pub(crate) fn id(&mut self, chain: &[Transform]) -> usize {
        if let Some(i) = self.steps.iter().position(|c| c == chain) {
            return i;
        }
        let parent = chain
            .split_last()
            .map(|(&last, prefix)| (self.id(prefix), last));
        self.steps.push(chain.to_vec());
        self.parent.push(parent);
        self.steps.len() - 1
    }

    /// Number of chains (prefixes included).
    pub(crate) fn len(&self) -> usize {
        self.steps.len()
    }

    /// The steps of chain `c`.
    #[cfg(test)]
    pub(crate) fn steps(&self, c: usize) -> &[Transform] {
        self.steps.get(c).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// What is known of one chain's value for the current part.
#[derive(Debug, Default)]
enum Slot<'p> {
    /// Not computed yet.
    #[default]
    Empty,
    /// The value (borrowed: the part's own value).
    Text(Cow<'p, str>),
    /// The same text as this other chain's (its last step changed nothing).
    Same(usize),
}

/// How many kinds of [`Transform`] there are (a kind past it is just never shared).
const STEP_KINDS: usize = Transform::CmdLine as usize + 1;

/// A part's values per chain, computed on demand; kept by the caller so its buffer is
/// reused from part to part.
#[derive(Debug, Default)]
pub(crate) struct Values<'p> {
    slots: Vec<Slot<'p>>,
    /// For each kind of step, the text it was last applied to (the chain holding it)
    /// and the chain that got the result. Chains ending in the same step over the same
    /// text (14 built-in chains end in `lowercase`, and most of their parents give a
    /// plain value back unchanged) share the result instead of computing it again.
    last: [Option<(usize, usize)>; STEP_KINDS],
}

impl<'p> Values<'p> {
    /// Forgets the previous part's values.
    pub(crate) fn reset(&mut self, chains: &Chains) {
        self.slots.clear();
        self.slots.resize_with(chains.len(), Slot::default);
        self.last = Default::default();
    }

    /// Computes chain `c`'s value of `value` (and its parents') unless known.
    pub(crate) fn fill(&mut self, chains: &Chains, c: usize, value: &'p str) {
        if !matches!(self.slots.get(c), Some(Slot::Empty)) {
            return;
        }
        let next = match chains.parent.get(c).copied().flatten() {
            None => Slot::Text(Cow::Borrowed(value)),
            Some((parent, step)) => {
                self.fill(chains, parent, value);
                let parent = self.resolve(parent);
                let kind = step as usize;
                match self.last.get(kind).copied().flatten() {
                    // The same step over the same text: that chain's value.
                    Some((from, done)) if from == parent => Slot::Same(done),
                    _ => {
                        if let Some(last) = self.last.get_mut(kind) {
                            *last = Some((parent, c));
                        }
                        match step.apply(self.text(parent, value)) {
                            Cow::Borrowed(_) => Slot::Same(parent),
                            Cow::Owned(s) => Slot::Text(Cow::Owned(s)),
                        }
                    }
                }
            }
        };
        if let Some(slot) = self.slots.get_mut(c) {
            *slot = next;
        }
    }

    /// The chain whose slot holds chain `c`'s text.
    fn resolve(&self, mut c: usize) -> usize {
        // Each link points to a parent, so this ends within the chain's length.
        while let Some(Slot::Same(p)) = self.slots.get(c) {
            c = *p;
        }
        c
    }

    /// Chain `c`'s value ([`Values::fill`] first); the part's value when not filled.
    pub(crate) fn get<'a>(&'a self, c: usize, value: &'a str) -> &'a str {
        self.text(self.resolve(c), value)
    }

    fn text<'a>(&'a self, c: usize, value: &'a str) -> &'a str {
        match self.slots.get(c) {
            Some(Slot::Text(t)) => t,
            _ => value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::apply_chain;
    use Transform as T;

    #[test]
    fn a_chain_through_its_prefixes_gives_what_the_whole_chain_gives() {
        let wanted: &[&[Transform]] = &[
            &[T::UrlDecodeUni, T::Lowercase],
            &[T::UrlDecodeUni, T::RemoveNulls, T::Lowercase],
            &[
                T::UrlDecodeUni,
                T::HtmlEntityDecode,
                T::FullwidthFold,
                T::RemoveNulls,
                T::SqlCommentStrip,
                T::CompressWhitespace,
                T::Lowercase,
            ],
            &[T::UrlDecodeUni, T::UrlDecodeUni, T::Lowercase],
            &[T::UrlDecodeUni, T::RemoveNulls, T::CmdLine],
            &[T::NormalizePath, T::Lowercase],
            &[T::Lowercase],
            &[],
        ];
        let mut chains = Chains::default();
        let ids: Vec<usize> = wanted.iter().map(|c| chains.id(c)).collect();
        // Prefixes are interned once: the first two share `[url_decode_uni]`.
        assert_eq!(chains.id(&[T::UrlDecodeUni]), chains.id(&[T::UrlDecodeUni]));
        for (c, id) in wanted.iter().zip(&ids) {
            assert_eq!(chains.steps(*id), *c);
        }
        for value in [
            "plain",
            "Blue+Shoes",
            "%2541%20B",
            "1%27%20UNION/**/SELECT%00x",
            "&lt;ScRiPt&gt;",
            "ｓｃｒｉｐｔ",
            "c^a^t /e't'c/pass\"wd",
            "..\\..\\Windows\\win.ini",
            "",
        ] {
            let mut values = Values::default();
            // Filled in an order where later chains find their prefixes known, and in
            // the order given (chains ending in the same step over other texts in
            // between), with one `Values` reused as the engine reuses it.
            for forward in [false, true] {
                values.reset(&chains);
                let order: Vec<(&&[Transform], &usize)> = if forward {
                    wanted.iter().zip(&ids).collect()
                } else {
                    wanted.iter().zip(&ids).rev().collect()
                };
                for (c, id) in order {
                    values.fill(&chains, *id, value);
                    assert_eq!(
                        values.get(*id, value),
                        apply_chain(c, value),
                        "{c:?} {value:?}"
                    );
                }
                for (c, id) in wanted.iter().zip(&ids) {
                    assert_eq!(values.get(*id, value), apply_chain(c, value), "{c:?}");
                }
            }
        }
    }
}
