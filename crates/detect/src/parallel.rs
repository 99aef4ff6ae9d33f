//! The engine's build spread over the machine's cores.
//!
//! Compiling the rules (their regexes, the literal prefilters, the location scans'
//! automata) is ~1 G instructions for the built-in set, and at start-up nothing else
//! runs: an import waits for it before its first line is judged, and `palisade serve`
//! before `/check` answers. The pieces are independent, so each phase hands its items
//! to every core.

use std::sync::atomic::{AtomicUsize, Ordering};

/// At most this many threads build one engine: past it a phase's few large items
/// (one location's automaton) bound the wall time anyway.
const MAX_THREADS: usize = 4;

/// `items.iter().map(f).collect()`, computed on up to [`MAX_THREADS`] threads (the
/// caller's among them), each taking the next item not yet taken, so a few costly
/// items do not leave one thread with all the work. The results are in `items`' order,
/// whatever thread made them, so the engine built is the one a single thread builds.
///
/// A thread that cannot be started, or that fails, costs only time: its items are
/// computed here on the caller's thread.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    // Takes items until none is left; each result with the index it was taken at.
    let take = || {
        let mut made = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            made.push((i, f(item)));
        }
        made
    };
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|scope| {
        let take = &take;
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("palisade-engine-build".into())
                    .spawn_scoped(scope, take)
                    .ok()
            })
            .collect();
        let mut made = take();
        for helper in helpers {
            // A helper that failed hands nothing back; its items are made below.
            made.extend(helper.join().unwrap_or_default());
        }
        for (i, r) in made {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(r);
            }
        }
    });
    slots
        .into_iter()
        .zip(items)
        .map(|(slot, item)| slot.unwrap_or_else(|| f(item)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = map(&items, |&x| x * x);
        assert_eq!(squares, items.iter().map(|x| x * x).collect::<Vec<_>>());
    }

    #[test]
    fn uneven_items_are_all_computed_once() {
        let calls = AtomicUsize::new(0);
        // A few costly items among cheap ones.
        let items: Vec<u32> = (0..64)
            .map(|i| if i % 16 == 0 { 200_000 } else { 10 })
            .collect();
        let sums = map(&items, |&n| {
            calls.fetch_add(1, Ordering::Relaxed);
            (0..n).map(u64::from).sum::<u64>()
        });
        assert_eq!(calls.load(Ordering::Relaxed), items.len());
        let expected: Vec<u64> = items.iter().map(|&n| (0..n).map(u64::from).sum()).collect();
        assert_eq!(sums, expected);
    }

    #[test]
    fn no_items_and_one_item() {
        assert!(map(&[] as &[u8], |&x| x).is_empty());
        assert_eq!(map(&[7u8], |&x| x + 1), vec![8]);
    }
}
