//! File tail: follows a log file across rename-rotation and truncation, resuming from
//! the checkpoint stored with the last batch, so that a restart (even after `kill -9`)
//! neither repeats nor skips a line.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_core::Checkpoint;
use palisade_core::Shutdown;
use palisade_core::config::{ConfigProblem, Validate};
use palisade_formats::FormatSpec;
use palisade_store::SharedStore;

use crate::batcher::{Batcher, DETECT_SAMPLE_LINES, choose_parser, fingerprint};
use crate::status::{SourceState, SourceStatus};
use crate::writer::BatchWriter;

/// Longest line kept whole; a longer run of bytes without a newline is cut here and
/// becomes a dead letter rather than growing memory without bound.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

const READ_CHUNK: usize = 256 * 1024;
const FINGERPRINT_BYTES: usize = 1024;
/// How long the followed path may be missing (a rotation renames then recreates it)
/// before the source counts as down.
const VANISHED_AFTER: Duration = Duration::from_secs(2);

/// `[[sources]]`: what to tail and how. Deserializes itself from the configuration
/// (`type = "file"`, `path`, `name`, `format`, `log_format`, `json_fields`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "TailSection")]
pub struct TailConfig {
    /// Stable source name, used in events and as the checkpoint key.
    pub name: String,
    /// The file to follow.
    pub path: PathBuf,
    /// Its format (`Auto` detects from the first lines).
    pub format: FormatSpec,
    /// Lines per batch.
    pub batch_size: usize,
    /// How often to look for new data, rotation and truncation at end of file.
    pub poll_interval: Duration,
    /// Longest time a partial batch waits before it is written.
    pub flush_interval: Duration,
}

impl TailConfig {
    /// Defaults for a path: source named after the path, auto-detected format.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        TailConfig {
            name: path.display().to_string(),
            path,
            format: FormatSpec::Auto,
            batch_size: 2000,
            poll_interval: Duration::from_millis(200),
            flush_interval: Duration::from_millis(500),
        }
    }
}

/// `[[sources]]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TailSection {
    #[serde(rename = "type")]
    kind: Option<String>,
    path: Option<PathBuf>,
    name: Option<String>,
    format: Option<String>,
    log_format: Option<String>,
    json_fields: Option<palisade_formats::JsonFieldMap>,
}

impl TryFrom<TailSection> for TailConfig {
    type Error = ConfigProblem;

    fn try_from(f: TailSection) -> Result<Self, Self::Error> {
        if let Some(kind) = f.kind.as_deref().filter(|k| *k != "file") {
            return Err(ConfigProblem::new(
                "type",
                format!("'{kind}' is not supported here; use \"file\""),
            ));
        }
        let path = f
            .path
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| ConfigProblem::new("path", "missing; give the log file to follow"))?;
        let format =
            FormatSpec::from_parts(f.format.as_deref(), f.log_format.as_deref(), f.json_fields)
                .map_err(|e| ConfigProblem::new("format", e))?;
        let mut config = TailConfig::new(path);
        if let Some(name) = f.name {
            config.name = name;
        }
        config.format = format;
        Ok(config)
    }
}

impl Validate for TailConfig {
    /// Everything is checked while deserializing.
    fn finish(&mut self) -> Vec<ConfigProblem> {
        Vec::new()
    }
}

/// An open file being read, with the position up to which whole lines were handed on.
struct TailFile {
    file: File,
    file_id: String,
    /// Offset just past the last complete line handed on.
    offset: u64,
    /// Physical lines handed on so far.
    line_no: u64,
    fingerprint: u64,
    /// Bytes read past `offset` that do not yet end in a newline.
    pending: Vec<u8>,
}

/// How far one `fill` got.
struct Fill {
    bytes: usize,
    eof: bool,
}

fn file_id(meta: &std::fs::Metadata) -> String {
    format!("{}:{}", meta.dev(), meta.ino())
}

/// The fingerprint of a file's first complete line; 0 while it has none.
fn first_line_fingerprint(file: &File) -> io::Result<u64> {
    let mut buf = vec![0u8; FINGERPRINT_BYTES];
    let n = file.read_at(&mut buf, 0)?;
    let head = buf.get(..n).unwrap_or_default();
    Ok(match memchr_nl(head) {
        Some(end) => fingerprint(head.get(..end).unwrap_or_default()),
        None if n == FINGERPRINT_BYTES => fingerprint(head),
        None => 0,
    })
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

impl TailFile {
    fn open(path: &Path, offset: u64, line_no: u64) -> io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let fp = first_line_fingerprint(&file)?;
        Ok(TailFile {
            file_id: file_id(&meta),
            file,
            offset,
            line_no,
            fingerprint: fp,
            pending: Vec::new(),
        })
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn checkpoint(&self, source: &str) -> Checkpoint {
        Checkpoint {
            source: source.to_owned(),
            file_id: self.file_id.clone(),
            offset: self.offset,
            line_no: self.line_no,
            fingerprint: self.fingerprint,
        }
    }

    /// Reads whole lines into the batcher until it is full, `max_bytes` were read, or
    /// the end of the file.
    fn fill(&mut self, batcher: &mut Batcher, max_bytes: usize) -> io::Result<Fill> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut total = 0;
        if self.fingerprint == 0 {
            self.fingerprint = first_line_fingerprint(&self.file)?;
        }
        while total < max_bytes && !batcher.is_full() {
            let read_pos = self.offset + self.pending.len() as u64;
            let n = self.file.read_at(&mut buf, read_pos)?;
            if n == 0 {
                return Ok(Fill {
                    bytes: total,
                    eof: true,
                });
            }
            total += n;
            self.consume(buf.get(..n).unwrap_or_default(), batcher);
        }
        Ok(Fill {
            bytes: total,
            eof: false,
        })
    }

    /// Splits freshly read bytes into lines, handing complete ones to the batcher.
    fn consume(&mut self, mut data: &[u8], batcher: &mut Batcher) {
        while let Some(nl) = memchr_nl(data) {
            let (head, rest) = data.split_at(nl + 1);
            let line_start = self.offset;
            let len = (self.pending.len() + head.len()) as u64;
            if self.pending.is_empty() {
                self.emit(batcher, head, line_start);
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(head);
                self.emit(batcher, &line, line_start);
            }
            self.offset += len;
            data = rest;
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() > MAX_LINE_BYTES {
            self.flush_partial(batcher);
        }
    }

    fn emit(&mut self, batcher: &mut Batcher, line: &[u8], line_start: u64) {
        self.line_no += 1;
        batcher.push_line(line, Some(self.line_no), Some(line_start));
    }

    /// Hands on a trailing line that has no newline: used when the file will get no
    /// more data (it was rotated away) or the line is over the length limit.
    fn flush_partial(&mut self, batcher: &mut Batcher) {
        if self.pending.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.pending);
        let start = self.offset;
        self.emit(batcher, &line, start);
        self.offset += line.len() as u64;
    }
}

/// Reads up to `DETECT_SAMPLE_LINES` complete lines from the start of a file.
fn sample_lines(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let file = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = file.read_at(&mut buf, 0)?;
    let head = buf.get(..n).unwrap_or_default();
    let complete = match head.iter().rposition(|&b| b == b'\n') {
        Some(end) => head.get(..end).unwrap_or_default(),
        None => &[][..],
    };
    Ok(complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(DETECT_SAMPLE_LINES)
        .map(<[u8]>::to_vec)
        .collect())
}

/// Finds a file beside `path` with the given identity: where a file that was rotated
/// while Palisade was stopped now lives (`access.log` → `access.log.1`).
fn find_rotated(path: &Path, wanted_id: &str) -> Option<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p == path {
            continue;
        }
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.is_file()
            && file_id(&meta) == wanted_id
        {
            return Some(p);
        }
    }
    None
}

/// Runs one file tail until shutdown. Errors are retried with backoff and shown in the
/// source's status; this function only returns on shutdown.
pub async fn run(
    config: TailConfig,
    store: SharedStore,
    writer: BatchWriter,
    status: Arc<SourceStatus>,
    mut shutdown: Shutdown,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if shutdown.is_shutdown() {
            break;
        }
        match follow(&config, &store, &writer, &status, &mut shutdown).await {
            Ok(()) => break,
            Err(TailError::Checkpoint(error)) => {
                // The store is not ready yet (down, or its schema not applied): wait
                // for it quietly; health already reports the database.
                tracing::debug!(message = "Waiting for the store to read the checkpoint.", source = %config.name, %error);
                status.set_state(
                    SourceState::Waiting,
                    Some(format!("waiting for the database: {error}")),
                );
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = shutdown.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(message = "File source failed; retrying.", source = %config.name, %error);
                status.set_state(SourceState::Error, Some(error.to_string()));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.recv() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    status.set_state(SourceState::Stopped, None);
}

/// Why following a file stopped.
#[derive(Debug, thiserror::Error)]
enum TailError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("reading the checkpoint: {0}")]
    Checkpoint(palisade_store::StoreError),
    #[error(transparent)]
    Format(#[from] crate::batcher::FormatChoiceError),
    #[error(transparent)]
    Writer(#[from] crate::writer::WriterError),
    #[error("reader task failed: {0}")]
    Join(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TailError + '_ {
    move |source| TailError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Runs `f` on a blocking thread with the open file and batcher, handing them back.
async fn blocking<T: Send + 'static>(
    mut tail: TailFile,
    mut batcher: Batcher,
    f: impl FnOnce(&mut TailFile, &mut Batcher) -> T + Send + 'static,
) -> Result<(TailFile, Batcher, T), TailError> {
    tokio::task::spawn_blocking(move || {
        let out = f(&mut tail, &mut batcher);
        (tail, batcher, out)
    })
    .await
    .map_err(|e| TailError::Join(e.to_string()))
}

async fn follow(
    config: &TailConfig,
    store: &SharedStore,
    writer: &BatchWriter,
    status: &Arc<SourceStatus>,
    shutdown: &mut Shutdown,
) -> Result<(), TailError> {
    let path = config.path.as_path();
    let checkpoint = store
        .checkpoint(&config.name)
        .await
        .map_err(TailError::Checkpoint)?;

    // Wait for the file to exist and to have a first line to detect the format from.
    let sample = loop {
        match sample_lines(path) {
            Ok(lines) if !lines.is_empty() => break lines,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        status.set_state(
            SourceState::Starting,
            Some("waiting for the file to have lines".into()),
        );
        tokio::select! {
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = shutdown.recv() => return Ok(()),
        }
    };
    let sample_refs: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
    let parser = choose_parser(&config.format, &sample_refs)?;
    let mut batcher = Batcher::new(
        &config.name,
        parser,
        Some(status.clone()),
        config.batch_size,
    );

    let mut current = TailFile::open(path, 0, 0).map_err(io_err(path))?;
    if let Some(cp) = checkpoint {
        let same_file = cp.file_id == current.file_id
            && (cp.fingerprint == 0
                || current.fingerprint == 0
                || cp.fingerprint == current.fingerprint);
        let size = current.size().map_err(io_err(path))?;
        if same_file && size >= cp.offset {
            current.offset = cp.offset;
            current.line_no = cp.line_no;
        } else if let Some(old_path) = find_rotated(path, &cp.file_id) {
            tracing::info!(message = "Finishing a file rotated while stopped.", source = %config.name, file = %old_path.display());
            let mut old =
                TailFile::open(&old_path, cp.offset, cp.line_no).map_err(io_err(&old_path))?;
            if old.size().map_err(io_err(&old_path))? >= cp.offset {
                old.fingerprint = cp.fingerprint;
                batcher = drain(old, batcher, &config.name, writer).await?;
            }
        } else {
            tracing::warn!(message = "Checkpointed file is gone or was truncated; reading the current file from its start.", source = %config.name);
        }
    }

    status.set_state(SourceState::Running, None);
    let mut last_flush = Instant::now();
    // Since when the path has been missing while the open file is still read.
    let mut missing_since: Option<Instant> = None;
    loop {
        let (t, b, fill) = blocking(current, batcher, |t, b| t.fill(b, 4 * READ_CHUNK)).await?;
        current = t;
        batcher = b;
        let fill = fill.map_err(io_err(path))?;
        let size = current.size().unwrap_or(current.offset);
        status.set_position(current.offset, size);

        let due = batcher.is_full() || (fill.eof && last_flush.elapsed() >= config.flush_interval);
        if !batcher.is_empty() && (due || shutdown.is_shutdown()) {
            send(writer, &mut batcher, &current, &config.name, status).await?;
            last_flush = Instant::now();
        }
        if shutdown.is_shutdown() {
            if !batcher.is_empty() {
                send(writer, &mut batcher, &current, &config.name, status).await?;
            }
            return Ok(());
        }
        if fill.bytes > 0 && !fill.eof {
            continue;
        }
        if fill.bytes == 0 && batcher.is_empty() {
            last_flush = Instant::now();
        }

        // At the end of the file: look for rotation or truncation, then wait.
        let meta = std::fs::metadata(path);
        if meta.is_ok() && missing_since.take().is_some() && status.state() == SourceState::Error {
            tracing::info!(message = "The file is back.", source = %config.name);
            status.set_state(SourceState::Running, None);
        }
        match meta {
            Ok(meta) if file_id(&meta) != current.file_id => {
                tracing::info!(message = "File rotated; finishing the old one.", source = %config.name);
                batcher = drain(current, batcher, &config.name, writer).await?;
                current = TailFile::open(path, 0, 0).map_err(io_err(path))?;
                continue;
            }
            Ok(meta) => {
                let replaced = current.fingerprint != 0
                    && first_line_fingerprint(&current.file).map_err(io_err(path))?
                        != current.fingerprint;
                if meta.len() < current.offset + current.pending.len() as u64 || replaced {
                    tracing::info!(message = "File truncated; reading from its start.", source = %config.name);
                    if !batcher.is_empty() {
                        send(writer, &mut batcher, &current, &config.name, status).await?;
                    }
                    current = TailFile::open(path, 0, 0).map_err(io_err(path))?;
                    continue;
                }
            }
            Err(_) => {
                // Renamed away and not yet recreated: keep the open file. Gone for
                // longer than a rotation takes, the source is down until it is back.
                let since = *missing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= VANISHED_AFTER && status.state() == SourceState::Running {
                    tracing::warn!(message = "The followed file is gone; waiting for it to come back.", source = %config.name);
                    status.set_state(
                        SourceState::Error,
                        Some(format!(
                            "{} is gone: waiting for it to come back",
                            path.display()
                        )),
                    );
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = shutdown.recv() => {}
        }
    }
}

/// Sends what the batcher holds, checkpointed at the file's current position.
async fn send(
    writer: &BatchWriter,
    batcher: &mut Batcher,
    file: &TailFile,
    name: &str,
    status: &SourceStatus,
) -> Result<(), TailError> {
    let batch = batcher.take(Some(file.checkpoint(name)));
    if !writer.store_available() {
        status.set_state(SourceState::Waiting, writer.last_error());
    }
    writer.send(batch).await?;
    if status.state() == SourceState::Waiting && writer.store_available() {
        status.set_state(SourceState::Running, None);
    }
    Ok(())
}

/// Reads a file that will get no more data to its end (its last line even without a
/// newline) and sends everything, so that nothing written before a rotation is lost.
async fn drain(
    mut file: TailFile,
    mut batcher: Batcher,
    name: &str,
    writer: &BatchWriter,
) -> Result<Batcher, TailError> {
    loop {
        let (f, b, fill) = blocking(file, batcher, |t, b| {
            let r = t.fill(b, 4 * READ_CHUNK);
            if matches!(r, Ok(Fill { eof: true, .. })) {
                t.flush_partial(b);
            }
            r
        })
        .await?;
        file = f;
        batcher = b;
        let fill = fill.map_err(|source| TailError::Io {
            path: name.to_owned(),
            source,
        })?;
        if !batcher.is_empty() {
            let batch = batcher.take(Some(file.checkpoint(name)));
            writer.send(batch).await?;
        }
        if fill.eof {
            return Ok(batcher);
        }
    }
}
