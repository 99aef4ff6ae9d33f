//! The `palisade` binary: parses the command line and runs one command.

use clap::Parser;

/// mimalloc instead of glibc's malloc (see [`allocator`]).
#[global_allocator]
static ALLOCATOR: allocator::Tuned = allocator::Tuned;

fn main() -> std::process::ExitCode {
    let cli = palisade::cli::Cli::parse();
    match palisade::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The process's allocator: mimalloc, set before its first allocation to commit its
/// arenas as they are used and to purge freed pages at once.
///
/// The protecting proxy allocates and frees a few dozen small blocks per request
/// (hyper's buffers, the engine's parse, the event) and glibc's allocator was a sixth
/// of its instructions; mimalloc's are a fraction of that. With mimalloc's defaults
/// (arenas committed eagerly on Linux, freed pages held a while) a bulk
/// `palisade ingest` peaked at 235–245 MB against glibc's 147–153 MB; with these
/// settings it stays at glibc's (docs/BENCHMARKS.md, `proxy4`). They must be in force
/// before the first arena is reserved, at the first allocation, which is why they are
/// set from the allocator itself and not from `main`.
mod allocator {
    use std::alloc::{GlobalAlloc, Layout};
    use std::ffi::{c_int, c_long};
    use std::sync::atomic::{AtomicBool, Ordering};

    use mimalloc::MiMalloc;

    /// `mi_option_arena_eager_commit` in mimalloc's `mi_option_e` (include/mimalloc.h,
    /// the same number in its versions 2 and 3).
    const ARENA_EAGER_COMMIT: c_int = 4;
    /// `mi_option_purge_delay` (milliseconds; 0 purges at once).
    const PURGE_DELAY: c_int = 15;

    #[allow(unsafe_code)]
    unsafe extern "C" {
        fn mi_option_set(option: c_int, value: c_long);
    }

    static SET: AtomicBool = AtomicBool::new(false);

    /// Sets the options once (two threads racing set the same values twice).
    #[inline]
    fn set_options() {
        if !SET.load(Ordering::Relaxed) {
            SET.store(true, Ordering::Relaxed);
            // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; it
            // takes no pointers, does not allocate and may be called at any time.
            #[allow(unsafe_code)]
            unsafe {
                mi_option_set(ARENA_EAGER_COMMIT, 0);
                mi_option_set(PURGE_DELAY, 0);
            }
        }
    }

    /// mimalloc with the options set before its first allocation.
    pub struct Tuned;

    // SAFETY: every call is passed on unchanged to mimalloc's `GlobalAlloc`; a block is
    // allocated before it can be freed or resized, so the options are set by then.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Tuned {
        #[inline]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            set_options();
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.alloc(layout) }
        }

        #[inline]
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            set_options();
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }

        #[inline]
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }

        #[inline]
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}
