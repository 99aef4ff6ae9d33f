//! What the command-line tests share: the binary run as a user runs it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// `palisade ARGS --data-dir DATA` with warnings-only logs and no database URL or config
/// file taken from the environment, so each test sees only its own data directory.
pub fn palisade<I, S>(data: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("PALISADE_LOG", "warn")
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG");
    command
}
