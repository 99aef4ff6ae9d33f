//! Key files on disk: created owner-only (0600), refused when others can read them.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::AuthError;

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> AuthError {
    AuthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses a file that group or others may access.
#[cfg(unix)]
pub(crate) fn check_private(path: &Path, file: &File) -> Result<(), AuthError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|e| io_err(path, e))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(AuthError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Permission bits are a Unix notion; elsewhere the check is skipped.
#[cfg(not(unix))]
pub(crate) fn check_private(_path: &Path, _file: &File) -> Result<(), AuthError> {
    Ok(())
}

/// Reads a key file after checking its permissions on the open handle (no check/use race).
/// `Ok(None)` when it does not exist.
pub(crate) fn read_private(path: &Path) -> Result<Option<Vec<u8>>, AuthError> {
    use std::io::Read;
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    check_private(path, &file)?;
    let mut buf = Vec::new();
    // A key file is small; a huge one is a mistake (wrong path), not a key.
    (&mut file)
        .take(1 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    Ok(Some(buf))
}

fn open_new_private(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

fn ensure_parent(path: &Path) -> Result<(), AuthError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    }
    Ok(())
}

/// Creates `path` with `content`, mode 0600, only if it does not exist yet.
/// Returns false (and writes nothing) when another process created it first.
pub(crate) fn create_private(path: &Path, content: &[u8]) -> Result<bool, AuthError> {
    ensure_parent(path)?;
    let mut file = match open_new_private(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io_err(path, e)),
    };
    file.write_all(content).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))?;
    Ok(true)
}

/// Replaces `path` atomically with `content` (temp file 0600 in the same directory, then
/// rename), so a crash leaves either the old or the new file, never half of one.
pub(crate) fn replace_private(path: &Path, content: &[u8]) -> Result<(), AuthError> {
    ensure_parent(path)?;
    let suffix = crate::tokens::hex(&crate::rng::bytes::<6>()?);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{suffix}"));
    let tmp = path.with_file_name(name);
    let result = (|| {
        let mut file = open_new_private(&tmp).map_err(|e| io_err(&tmp, e))?;
        file.write_all(content).map_err(|e| io_err(&tmp, e))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_err(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
