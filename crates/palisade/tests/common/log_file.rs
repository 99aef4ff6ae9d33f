//! Writing a test's log file, whole or appended to (a log that grows between two
//! imports). Kept apart from `common/mod.rs` so that the test binaries not writing logs
//! line by line do not compile (and warn about) it.

use std::io::Write as _;
use std::path::Path;

/// Writes `lines` to `path`, one per line: appended when `append`, else replacing it.
pub fn write_lines(path: &Path, lines: &[String], append: bool) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .expect("open log");
    for line in lines {
        writeln!(file, "{line}").expect("write log");
    }
}
