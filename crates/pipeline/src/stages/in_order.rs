//! A reorder buffer for work done out of order and applied in order (issue 16): the
//! ingest inspector's threads finish a group's slices in whatever order their timing
//! gives, and the per-endpoint baselines must learn them in event order, as the replay
//! of a resumed import does (`resume.rs`). Whoever completes the next slice in order
//! applies it, then every later one already completed, so no thread waits for another:
//! a thread that completes a slice out of turn leaves it and takes more work.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Items `0..n` completed in any order on any thread, applied one at a time in index
/// order.
pub(crate) struct InOrder<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    /// The index to apply next.
    next: usize,
    /// Completed items not applied yet, by index.
    ready: Vec<Option<T>>,
    /// Whether a thread is applying (the others leave their items to it).
    applying: bool,
}

impl<T> InOrder<T> {
    /// A buffer for `n` items.
    pub(crate) fn new(n: usize) -> InOrder<T> {
        InOrder {
            state: Mutex::new(State {
                next: 0,
                ready: (0..n).map(|_| None).collect(),
                applying: false,
            }),
        }
    }

    /// Hands in item `index` (at most once per index). If no thread is applying, this
    /// one applies, with `apply`, every item from the next in order that is complete,
    /// those other threads hand in meanwhile included, and returns once the next is
    /// not complete yet. `apply` runs outside the buffer's lock, on one thread at a
    /// time, in index order; it must not panic (a panic would leave the items after it
    /// unapplied: catch it inside). An index out of range is ignored.
    pub(crate) fn complete(&self, index: usize, item: T, mut apply: impl FnMut(usize, T)) {
        let mut state = self.lock();
        if let Some(slot) = state.ready.get_mut(index) {
            *slot = Some(item);
        }
        if state.applying {
            return;
        }
        state.applying = true;
        loop {
            let next = state.next;
            let Some(item) = state.ready.get_mut(next).and_then(Option::take) else {
                state.applying = false;
                return;
            };
            state.next = next + 1;
            drop(state);
            apply(next, item);
            state = self.lock();
        }
    }

    /// How many items were applied (or are being applied).
    #[cfg(test)]
    pub(crate) fn applied(&self) -> usize {
        self.lock().next
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn items_completed_in_reverse_are_applied_in_order_by_the_last_completer()
    -> Result<(), Box<dyn std::error::Error>> {
        let buffer = InOrder::new(4);
        let mut applied = Vec::new();
        for i in [3, 2, 1] {
            buffer.complete(i, i * 10, |n, item| applied.push((n, item)));
            if !applied.is_empty() {
                return Err(format!("applied out of turn: {applied:?}").into());
            }
        }
        buffer.complete(0, 0, |n, item| applied.push((n, item)));
        if applied != [(0, 0), (1, 10), (2, 20), (3, 30)] {
            return Err(format!("{applied:?}").into());
        }
        if buffer.applied() != 4 {
            return Err(format!("{}", buffer.applied()).into());
        }
        Ok(())
    }

    #[test]
    fn threads_completing_in_any_order_apply_each_item_once_in_order_one_at_a_time()
    -> Result<(), Box<dyn std::error::Error>> {
        const ITEMS: usize = 2_000;
        for round in 0..20 {
            let buffer = Arc::new(InOrder::new(ITEMS));
            let next_to_take = Arc::new(AtomicUsize::new(0));
            let applied = Arc::new(Mutex::new(Vec::with_capacity(ITEMS)));
            let inside = Arc::new(AtomicBool::new(false));
            let overlaps = Arc::new(AtomicUsize::new(0));
            std::thread::scope(|scope| {
                for thread in 0..4usize {
                    let (buffer, next_to_take, applied, inside, overlaps) = (
                        buffer.clone(),
                        next_to_take.clone(),
                        applied.clone(),
                        inside.clone(),
                        overlaps.clone(),
                    );
                    scope.spawn(move || {
                        loop {
                            let i = next_to_take.fetch_add(1, Ordering::Relaxed);
                            if i >= ITEMS {
                                return;
                            }
                            // Uneven work, so that the threads finish out of order.
                            let spin = (i * 7 + thread * 13 + round) % 50;
                            for _ in 0..spin * 20 {
                                std::hint::spin_loop();
                            }
                            buffer.complete(i, i, |n, item| {
                                if inside.swap(true, Ordering::AcqRel) {
                                    overlaps.fetch_add(1, Ordering::Relaxed);
                                }
                                applied
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push((n, item));
                                inside.store(false, Ordering::Release);
                            });
                        }
                    });
                }
            });
            let applied = applied.lock().unwrap_or_else(PoisonError::into_inner);
            let expected: Vec<(usize, usize)> = (0..ITEMS).map(|i| (i, i)).collect();
            if *applied != expected {
                return Err(format!("round {round}: applied out of order or not once").into());
            }
            if overlaps.load(Ordering::Relaxed) != 0 {
                return Err(format!("round {round}: two threads applied at once").into());
            }
            if buffer.applied() != ITEMS {
                return Err(format!("round {round}: {} applied", buffer.applied()).into());
            }
        }
        Ok(())
    }
}
