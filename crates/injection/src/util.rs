//! Small shared helpers: bounded truncation, percent decoding, and the detectors'
//! per-thread scratch buffers.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::MAX_INPUT;

/// Runs `f` with the thread's scratch buffers in `key`, so a warm detector allocates
/// nothing per value. A nested use on the same thread (nothing does it today) gets a
/// fresh scratch instead of a borrow panic.
pub(crate) fn with_scratch<S: Default + 'static, R>(
    key: &'static LocalKey<RefCell<S>>,
    f: impl FnOnce(&mut S) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut kept) => f(&mut kept),
        Err(_) => f(&mut S::default()),
    })
}

/// The longest prefix of `input` that is at most [`MAX_INPUT`] bytes and ends
/// on a char boundary.
pub(crate) fn truncate(input: &str) -> &str {
    let mut end = input.len().min(MAX_INPUT);
    while end > 0 && !input.is_char_boundary(end) {
        end -= 1;
    }
    &input[..end]
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes once (not `+`). Returns `None` when nothing changed,
/// so callers only rescan when decoding revealed something new.
pub(crate) fn percent_decode(input: &str) -> Option<String> {
    if !input.contains('%') {
        return None;
    }
    let b = input.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            changed = true;
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    if !changed {
        return None;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}
