//! Users' detection definitions on disk (rule files, scenario files): the `*.toml`
//! files in one directory, read in name order so that loading is deterministic, and a
//! cheap summary of them to notice edits without a file-watching dependency.
//!
//! (Not to be confused with the service's `data_dir` setting, where Palisade keeps its
//! own state.)

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A file or directory that could not be read, named for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{file}: cannot read: {source}")]
pub struct ReadError {
    /// The file or directory.
    pub file: String,
    /// What the OS said.
    pub source: std::io::Error,
}

fn toml_paths(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Every `*.toml` in `dir`, sorted by name, as (path for messages, text).
pub fn read_toml_files(dir: &Path) -> Result<Vec<(String, String)>, ReadError> {
    let files = toml_paths(dir).map_err(|source| ReadError {
        file: dir.display().to_string(),
        source,
    })?;
    files
        .into_iter()
        .map(|f| {
            let name = f.display().to_string();
            std::fs::read_to_string(&f)
                .map(|text| (name.clone(), text))
                .map_err(|source| ReadError { file: name, source })
        })
        .collect()
}

/// Names, sizes and modification times of the `*.toml` files in `dir` (empty when it
/// cannot be read): compared between polls, a change means "reload".
pub fn toml_fingerprint(dir: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    toml_paths(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name, meta.len(), meta.modified().ok()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_toml_files_in_name_order_and_notices_edits() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("b.toml"), "b = 1").unwrap();
        std::fs::write(dir.join("a.toml"), "a = 1").unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let files = read_toml_files(&dir).unwrap();
        let names: Vec<&str> = files
            .iter()
            .map(|(n, _)| n.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(names, ["a.toml", "b.toml"]);
        assert_eq!(files[0].1, "a = 1");
        let before = toml_fingerprint(&dir);
        std::fs::write(dir.join("a.toml"), "a = 12").unwrap();
        assert_ne!(toml_fingerprint(&dir), before);
        let err = read_toml_files(&dir.join("missing")).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "palisade-data-dir-{}-{}",
            std::process::id(),
            crate::Timestamp::now().as_micros()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
