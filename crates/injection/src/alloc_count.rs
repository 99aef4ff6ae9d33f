//! Counts this thread's allocations: the global allocator of the test binaries that
//! check a warm path allocates nothing (the injection detectors' and the request
//! parse's). One file, included by each such test module with `#[path]`, since a test
//! binary's global allocator cannot come from a dependency's test code.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// A global allocator can only be written with `unsafe` (the workspace denies it
// everywhere else); every call is forwarded to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread so far.
pub(crate) fn this_thread() -> usize {
    COUNT.with(Cell::get)
}

/// The counter counts: without it, a "nothing allocated" test would pass vacuously.
#[test]
fn an_allocation_is_counted() {
    let before = this_thread();
    let held = std::hint::black_box(vec![0u8; 64]);
    assert!(this_thread() > before);
    drop(held);
}
