//! One-shot import of a file (plain or gzip), resumable: an interrupted or repeated
//! import of the same file continues from its checkpoint instead of storing lines twice.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palisade_core::Checkpoint;
use palisade_formats::FormatSpec;
use palisade_store::SharedStore;

use crate::batcher::{
    Batcher, DETECT_SAMPLE_LINES, FormatChoiceError, choose_parser, fingerprint, trim_eol,
};
use crate::writer::{BatchWriter, WriterError};

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    /// The file; a name ending in `.gz` is decompressed.
    pub path: PathBuf,
    /// Source name for its events and checkpoint (default `import:<path>`).
    pub name: String,
    /// Its format (`Auto` detects from the first lines).
    pub format: FormatSpec,
    /// Lines per batch.
    pub batch_size: usize,
    /// Ignore a previous import's checkpoint and read from the start.
    pub restart: bool,
}

impl ImportConfig {
    /// Defaults for a path.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        ImportConfig {
            name: format!("import:{}", path.display()),
            path,
            format: FormatSpec::Auto,
            batch_size: 5000,
            restart: false,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportSummary {
    /// Non-blank lines read in this run.
    pub lines: u64,
    /// Events parsed.
    pub events: u64,
    /// Lines kept as dead letters.
    pub dead_letters: u64,
    /// Lines skipped because an earlier import had stored them.
    pub resumed_after: u64,
    /// The format used.
    pub format: String,
    /// Wall time.
    #[serde(skip)]
    pub elapsed: Duration,
}

/// Progress an import reports as it goes (bytes of the file on disk).
#[derive(Debug, Default)]
pub struct ImportProgress {
    /// Bytes of the file read so far.
    pub bytes_read: AtomicU64,
    /// The file's size on disk.
    pub bytes_total: AtomicU64,
    /// Lines read so far.
    pub lines: AtomicU64,
    /// Set to stop the import early (a cancelled job): it stops before its next line,
    /// after the batches already handed to the writer, and a later import of the same
    /// file resumes from the last stored checkpoint.
    pub cancelled: std::sync::atomic::AtomicBool,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// The format could not be chosen.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// The cause.
        source: FormatChoiceError,
    },
    /// The store could not be read.
    #[error("reading the import checkpoint: {0}")]
    Store(#[from] palisade_store::StoreError),
    /// The writer stopped or the store refused the data.
    #[error(transparent)]
    Writer(#[from] WriterError),
    /// The reader thread failed.
    #[error("import thread failed: {0}")]
    Join(String),
    /// Stopped through [`ImportProgress::cancelled`].
    #[error("import stopped on request")]
    Cancelled,
}

struct CountingReader<R> {
    inner: R,
    progress: Arc<ImportProgress>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open_reader(path: &Path, progress: Arc<ImportProgress>) -> io::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path)?;
    progress
        .bytes_total
        .store(file.metadata()?.len(), Ordering::Relaxed);
    let counted = CountingReader {
        inner: file,
        progress,
    };
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, counted)),
        ))
    } else {
        Box::new(BufReader::with_capacity(256 * 1024, counted))
    })
}

/// Reads the first lines of a file (decompressing `.gz`) for format detection and
/// fingerprinting.
fn head_lines(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut reader = open_reader(path, Arc::default())?;
    let mut lines = Vec::new();
    let mut line = Vec::new();
    while lines.len() < DETECT_SAMPLE_LINES {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let l = trim_eol(&line);
        if !l.iter().all(u8::is_ascii_whitespace) {
            lines.push(l.to_vec());
        }
    }
    Ok(lines)
}

/// The line after which an import of `config` would resume (0: from the start): its
/// source's checkpoint, when it is of the same file (device, inode and first line) and
/// `restart` is not asked. `palisade ingest` asks before importing, to rebuild the
/// stateful detectors of an import that resumes after a kill.
pub async fn resume_point(config: &ImportConfig, store: &SharedStore) -> Result<u64, ImportError> {
    let path = &config.path;
    let io_err = |source| ImportError::Io {
        path: path.display().to_string(),
        source,
    };
    if config.restart {
        return Ok(0);
    }
    let meta = std::fs::metadata(path).map_err(io_err)?;
    let file_id = format!("{}:{}", meta.dev(), meta.ino());
    let sample = head_lines(path).map_err(io_err)?;
    let fp = sample.first().map_or(0, |l| fingerprint(l));
    Ok(match store.checkpoint(&config.name).await? {
        Some(cp) if cp.fingerprint == fp && cp.file_id == file_id => cp.line_no,
        _ => 0,
    })
}

/// Whether `path` holds more than `line_no` lines, counted as an import counts them
/// (a last line without its newline is a line). `palisade ingest` asks it of a file
/// whose checkpoint says `line_no` lines are stored: a finished import run again has
/// nothing left to judge, so its detectors' state need not be rebuilt.
pub fn has_lines_after(path: &Path, line_no: u64) -> io::Result<bool> {
    let mut reader = open_reader(path, Arc::default())?;
    let mut newlines = 0u64;
    let mut open_line = false;
    loop {
        let buf = reader.fill_buf()?;
        let Some(&last) = buf.last() else {
            return Ok(newlines + u64::from(open_line) > line_no);
        };
        newlines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        open_line = last != b'\n';
        let read = buf.len();
        reader.consume(read);
        if newlines > line_no {
            return Ok(true);
        }
    }
}

/// Imports one file through `writer` and waits until every batch is stored.
pub async fn import_file(
    config: ImportConfig,
    store: SharedStore,
    writer: BatchWriter,
    progress: Arc<ImportProgress>,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let path = config.path.clone();
    let io_err = |source| ImportError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(&path).map_err(io_err)?;
    let file_id = format!("{}:{}", meta.dev(), meta.ino());
    let sample = head_lines(&path).map_err(io_err)?;
    let fp = sample.first().map_or(0, |l| fingerprint(l));
    let refs: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
    let parser = choose_parser(&config.format, &refs).map_err(|source| ImportError::Format {
        path: path.display().to_string(),
        source,
    })?;
    let format = parser.name().to_owned();

    let skip = match store.checkpoint(&config.name).await? {
        Some(cp) if !config.restart && cp.fingerprint == fp && cp.file_id == file_id => cp.line_no,
        _ => 0,
    };

    let handle = tokio::runtime::Handle::current();
    let name = config.name.clone();
    let batch_size = config.batch_size;
    let prog = progress.clone();
    let (lines, events, dead) =
        tokio::task::spawn_blocking(move || -> Result<(u64, u64, u64), ImportError> {
            let io_err = |source| ImportError::Io {
                path: path.display().to_string(),
                source,
            };
            let mut reader = open_reader(&path, prog.clone()).map_err(io_err)?;
            let mut batcher = Batcher::new(&name, parser, None, batch_size);
            let mut line = Vec::with_capacity(1024);
            let mut line_no: u64 = 0;
            let (mut lines, mut events, mut dead) = (0u64, 0u64, 0u64);
            let checkpoint = |line_no| Checkpoint {
                source: name.clone(),
                file_id: file_id.clone(),
                offset: 0,
                line_no,
                fingerprint: fp,
            };
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(io_err)?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                if line_no <= skip {
                    continue;
                }
                if prog.cancelled.load(Ordering::Relaxed) {
                    return Err(ImportError::Cancelled);
                }
                lines += 1;
                prog.lines.fetch_add(1, Ordering::Relaxed);
                batcher.push_line(&line, Some(line_no), None);
                if batcher.is_full() {
                    let batch = batcher.take(Some(checkpoint(line_no)));
                    events += batch.events.len() as u64;
                    dead += batch.dead_letters.len() as u64;
                    handle.block_on(writer.send(batch))?;
                }
            }
            if !batcher.is_empty() || line_no > skip {
                let batch = batcher.take(Some(checkpoint(line_no)));
                events += batch.events.len() as u64;
                dead += batch.dead_letters.len() as u64;
                // The last batch is awaited until stored, and the writer stores batches in
                // order, so when this returns the whole file is durable.
                handle.block_on(writer.write(batch))?;
            }
            Ok((lines, events, dead))
        })
        .await
        .map_err(|e| ImportError::Join(e.to_string()))??;

    Ok(ImportSummary {
        lines,
        events,
        dead_letters: dead,
        resumed_after: skip,
        format,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// What the tests return: a file step that fails says why.
    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Writes `text` to a file named `name` (gzipped when it ends in `.gz`).
    fn file(dir: &Path, name: &str, text: &[u8]) -> io::Result<PathBuf> {
        let path = dir.join(name);
        let mut out = File::create(&path)?;
        if name.ends_with(".gz") {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            gz.write_all(text)?;
            gz.finish()?;
        } else {
            out.write_all(text)?;
        }
        Ok(path)
    }

    #[test]
    fn lines_after_are_counted_as_the_import_counts_lines() -> TestResult {
        let dir = tempfile::tempdir()?;
        // (text, how many lines the import reads from it)
        let cases: [(&[u8], u64); 6] = [
            (b"", 0),
            (b"\n", 1),
            (b"a\nb\n", 2),
            (b"a\nb", 2),
            (b"a\n\n\nb\n", 4),
            (b"\n\nlast without newline", 3),
        ];
        for (i, (text, lines)) in cases.iter().enumerate() {
            for name in [format!("plain-{i}.log"), format!("packed-{i}.log.gz")] {
                let path = file(dir.path(), &name, text)?;
                for stored in 0..lines + 2 {
                    assert_eq!(
                        has_lines_after(&path, stored)?,
                        stored < *lines,
                        "{name} {text:?} with {stored} lines stored"
                    );
                }
            }
        }
        // Lines past what one buffer holds.
        let big: Vec<u8> = b"0123456789abcdef\n".repeat(40_000);
        let path = file(dir.path(), "big.log", &big)?;
        assert!(has_lines_after(&path, 39_999)?);
        assert!(!has_lines_after(&path, 40_000)?);
        Ok(())
    }
}
