//! The log the bulk-import and resume tests share: an SQL injection on one line in seven,
//! the rest benign, each line from its own client. Kept apart from `common/mod.rs` so that
//! the test binaries not importing a log do not compile (and warn about) it.

use std::path::{Path, PathBuf};

/// Writes `lines` lines to `DIR/access.log` and returns its path. Line `i` comes from
/// `10.{i / 62,500}.{(i / 250) % 250}.{i % 250}`, so every client address is distinct
/// up to 15.6M lines.
pub fn write(dir: &Path, lines: usize) -> std::io::Result<PathBuf> {
    let path = dir.join("access.log");
    let mut body = String::new();
    for i in 0..lines {
        let target = if i % 7 == 3 {
            format!("/item?id={i}%27%20or%201=1--")
        } else {
            format!("/item?page={i}")
        };
        body.push_str(&format!(
            "10.{}.{}.{} - - [10/Oct/2023:13:55:36 +0000] \"GET {target} HTTP/1.1\" 200 5 \"-\" \"Mozilla/5.0\"\n",
            i / 62_500,
            (i / 250) % 250,
            i % 250
        ));
    }
    std::fs::write(&path, body)?;
    Ok(path)
}
