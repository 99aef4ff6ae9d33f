//! Request ids shared by every front that answers HTTP (the API, the protecting proxy),
//! so that one id format runs through logs, block pages and threats.

use std::sync::atomic::{AtomicU64, Ordering};

/// A short id unique within this process and unlikely to repeat across restarts, for
/// requests that arrive without one.
pub fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let t = crate::Timestamp::now().as_micros() as u64;
        format!("{:08x}", (t ^ (u64::from(std::process::id()) << 32)) as u32)
    });
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_plain() {
        let a = super::new_request_id();
        let b = super::new_request_id();
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'), "{a}");
    }
}
