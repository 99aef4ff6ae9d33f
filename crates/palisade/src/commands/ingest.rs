//! `palisade ingest FILE...`: one-shot import with a progress bar and a summary.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use palisade_sources::BatchWriter;
use palisade_sources::import::{ImportConfig, ImportProgress, import_file};

use crate::cli::IngestArgs;
use crate::config::{Overrides, format_spec};

/// Imports every file, then prints totals. Exit 1 when any file failed.
pub fn run(o: &Overrides, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let settings = super::settings(o)?;
    crate::telemetry::init(
        if args.quiet {
            "warn"
        } else {
            &settings.log_level
        },
        settings.log_format,
    );
    let format = format_spec(args.format.as_deref(), args.log_format.as_deref(), None)
        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    super::runtime()?.block_on(async move {
        let store = crate::app::open_store(&settings)?;
        store
            .migrate()
            .await
            .with_context(|| format!("preparing {}", palisade_store::redact_url(&settings.database_url)))?;
        // The same pipeline as the service (one-shot purpose): imported requests are
        // inspected and replayed through the behaviour scenarios, in log time, with no
        // saved state (a one-shot import is its own window).
        let mut config = crate::app::pipeline_config(&settings);
        config.writer.queue_batches = config.writer.queue_batches.clamp(1, IMPORT_QUEUE_BATCHES);
        // An import's batches are big already: one per group commit, so that the groups
        // the detection stages hold stay small.
        config.writer.group_rows = 1;
        // The files' sources: their events a killed import stored but had not inspected
        // yet are inspected first (issue 16).
        let files: Vec<ImportConfig> = args
            .files
            .iter()
            .filter(|p| !palisade_flows::import::is_capture(p))
            .map(|p| file_config(p, &args))
            .collect();
        config.reinspect = files.iter().map(|f| f.name.clone()).collect();
        // Of those, the files an earlier import left part-way or was killed on: their
        // stored events go through the baselines and scenarios again first, so that the
        // rest of the file is judged as an uninterrupted import would judge it (issue 16).
        let mut markers = Vec::new();
        if !args.no_detect {
            for file in files {
                let marker = RunningMarker::new(&settings.data_dir, &file.name);
                let killed = marker.exists();
                if !markers.contains(&marker) {
                    markers.push(marker);
                }
                if !config.replay.contains(&file.name) && needs_replay(&file, &store, killed).await {
                    config.replay.push(file.name);
                }
            }
        }
        // Captures: threats raised over flow events are linked to their flows.
        let linker = if !args.no_detect && args.files.iter().any(|p| palisade_flows::import::is_capture(p)) {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            config.threat_observers.observers.push(tx);
            Some(tokio::spawn(palisade_flows::threat_links::link_threats(store.clone(), rx)))
        } else {
            None
        };
        for marker in &markers {
            marker.set();
        }
        let ingest = if args.no_detect {
            let supervisor =
                palisade_core::supervisor::Supervisor::new(palisade_core::Shutdown::never());
            // The events stored are not to be inspected at a later start either.
            let (observer, marking) = palisade_pipeline::skip_inspection(store.clone());
            let mut writer_config = config.writer;
            writer_config.observers.push(observer);
            let (writer, task) = BatchWriter::spawn(store.clone(), writer_config, &supervisor);
            Ingest::StoreOnly(writer, task, marking)
        } else {
            let running =
                palisade_pipeline::Pipeline::build(store.clone(), config, palisade_pipeline::Purpose::Import)
                    .await
                    .context("starting the pipeline")?;
            Ingest::Pipeline(Box::new(running))
        };
        // A resumed import's replay (done by now) raised again the alerts of the lines
        // stored before: the summary counts this run's alerts only.
        let replayed = match &ingest {
            Ingest::Pipeline(r) => scenario_counts(&r.handle().behaviour),
            Ingest::StoreOnly(..) => Vec::new(),
        };
        let writer = match &ingest {
            Ingest::StoreOnly(w, ..) => w.clone(),
            Ingest::Pipeline(r) => r.handle().writer.clone(),
        };
        let started = Instant::now();
        let bulk = !args.keep_indexes
            && store
                .begin_bulk_load(expected_lines(&args.files))
                .await
                .context("preparing the store for a bulk load")?;
        let (mut lines, mut events, mut dead, mut failed) = (0u64, 0u64, 0u64, 0usize);
        let show_bar = !args.quiet && std::io::stderr().is_terminal();
        for path in &args.files {
            // A packet capture (pcap/pcapng by its magic, gzip allowed) becomes flows.
            if palisade_flows::import::is_capture(path) {
                let name = args.source.clone().unwrap_or_else(|| path.display().to_string());
                let (events_to, judge) = match &ingest {
                    // The flow model judges flows whenever detection runs.
                    Ingest::Pipeline(r) => (
                        Some(writer.clone()),
                        r.handle()
                            .guard
                            .flow_model()
                            .map(|s| s.clone() as Arc<dyn palisade_flows::FlowJudge>),
                    ),
                    Ingest::StoreOnly(..) => (None, None),
                };
                match palisade_flows::import::import_capture_judged(path.clone(), name, settings.flows.clone(), store.clone(), events_to, None, judge).await {
                    Ok(s) => {
                        let secs = s.elapsed_s.max(1e-9);
                        println!(
                            "{}: capture, {} packets, {} flows ({} malformed packets, {} evictions), {} devices new or changed in {secs:.2}s, {:.0} packets/s",
                            path.display(),
                            s.stats.packets,
                            s.flows,
                            s.stats.malformed(),
                            s.stats.table.evictions,
                            s.devices_changed,
                            s.stats.packets as f64 / secs
                        );
                        events += s.flows;
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}: capture import failed: {e}", path.display());
                    }
                }
                continue;
            }
            let mut config = file_config(path, &args);
            config.format = format.clone();
            config.batch_size = settings.batch_size().max(5000);
            let progress = Arc::new(ImportProgress::default());
            let bar = progress_bar(show_bar, path.display().to_string());
            let ticker = spawn_ticker(bar.clone(), progress.clone());
            let result = import_file(config, store.clone(), writer.clone(), progress).await;
            ticker.abort();
            bar.finish_and_clear();
            match result {
                Ok(s) => {
                    let secs = s.elapsed.as_secs_f64().max(1e-9);
                    println!(
                        "{}: {} lines, {} parsed, {} dead letters ({}) in {:.2}s, {:.0} lines/s{}",
                        path.display(),
                        s.lines,
                        s.events,
                        s.dead_letters,
                        s.format,
                        secs,
                        s.lines as f64 / secs,
                        if s.resumed_after > 0 {
                            format!(", resumed after line {}", s.resumed_after)
                        } else {
                            String::new()
                        }
                    );
                    lines += s.lines;
                    events += s.events;
                    dead += s.dead_letters;
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("{}: import failed: {e}", path.display());
                }
            }
        }
        drop(writer);
        if bulk {
            // Every batch is stored (each import waits for its last one); the
            // inspector and scenarios go on over the queued groups meanwhile.
            let indexing = Instant::now();
            store
                .end_bulk_load()
                .await
                .context("building the events indexes after the bulk load")?;
            if !args.quiet {
                eprintln!(
                    "events indexes built in {:.2}s",
                    indexing.elapsed().as_secs_f64()
                );
            }
        }
        let threats = match ingest {
            Ingest::Pipeline(running) => {
                let behaviour = running.handle().behaviour.clone();
                running.shutdown(Duration::from_secs(3600)).await;
                // Every stage has taken every stored event: a rerun need not replay.
                for marker in &markers {
                    marker.clear();
                }
                let found = palisade_pipeline::stages::inspector::threats_found().get();
                let (overflows, by_scenario) = scenario_overflows(&behaviour, &replayed);
                let skipped = palisade_pipeline::stages::behaviour::bans_skipped("import").get();
                let bans = if skipped > 0 {
                    format!(
                        " ({skipped} asked for a ban: recorded as threats; a one-shot import makes no bans, `palisade serve` does)"
                    )
                } else {
                    String::new()
                };
                let links = match linker {
                    Some(task) => match tokio::time::timeout(Duration::from_secs(30), task).await {
                        Ok(Ok(n)) => format!(", {n} threat-flow links"),
                        _ => ", threat-flow links unfinished".to_string(),
                    },
                    None => String::new(),
                };
                format!(
                    ", {found} signature threats, {overflows} scenario alerts{by_scenario}{bans}{links}"
                )
            }
            Ingest::StoreOnly(w, task, marking) => {
                drop(w);
                let _ = task.await;
                let _ = marking.await;
                String::new()
            }
        };
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        println!(
            "total: {} files, {lines} lines, {events} parsed, {dead} dead letters{threats} in {secs:.2}s ({:.0} lines/s){}",
            args.files.len(),
            lines as f64 / secs,
            if failed > 0 { format!(", {failed} failed") } else { String::new() }
        );
        Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    })
}

/// How `path` is imported: its source's name (`--source`, else the file's own) and
/// whether it is read again from the start (`--restart`).
fn file_config(path: &std::path::Path, args: &IngestArgs) -> ImportConfig {
    let mut file = ImportConfig::new(path.to_path_buf());
    if let Some(name) = &args.source {
        file.name.clone_from(name);
    }
    file.restart = args.restart;
    file
}

/// Whether `file`'s stored events must be replayed through the stateful detectors
/// before the import ([`palisade_pipeline::PipelineConfig::replay`]): it resumes from a
/// checkpoint and either the last import of its source was `killed` (its stages may not
/// have taken every stored event), or something is left to judge (lines past the
/// checkpoint, stored events past the inspection mark). A finished import run again is
/// not replayed: that would cost ~14 µs per stored event for nothing. When in doubt
/// (a read fails), replay.
async fn needs_replay(
    file: &ImportConfig,
    store: &palisade_store::SharedStore,
    killed: bool,
) -> bool {
    let stored_lines = palisade_sources::import::resume_point(file, store)
        .await
        .unwrap_or_default();
    if stored_lines == 0 {
        return false;
    }
    if killed {
        return true;
    }
    let unread = {
        let path = file.path.clone();
        tokio::task::spawn_blocking(move || {
            palisade_sources::import::has_lines_after(&path, stored_lines)
        })
        .await
        .map_or(true, |read| read.unwrap_or(true))
    };
    unread
        || async {
            let mark = store.inspected_through(&file.name).await?;
            Ok::<_, palisade_store::StoreError>(
                !store.events_after(&file.name, mark, 1).await?.is_empty(),
            )
        }
        .await
        .unwrap_or(true)
}

/// A file in the data directory saying a detection-on import of one source is under
/// way: set before the import starts, cleared once its stages have drained. Found at
/// the next start, it says the last import was killed, so its stored events are
/// replayed through the stateful detectors whatever the file and marks say (issue 16:
/// a kill during the final drain can leave the scenario stage behind the inspector).
#[derive(Debug, PartialEq, Eq)]
struct RunningMarker(std::path::PathBuf);

impl RunningMarker {
    /// The marker of `source` under `data_dir`: named by a 64-bit FNV-1a digest of the
    /// source's name (stable across builds, unlike the standard hasher).
    fn new(data_dir: &std::path::Path, source: &str) -> Self {
        let digest = source.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Self(
            data_dir
                .join("imports")
                .join(format!("{digest:016x}.running")),
        )
    }

    fn exists(&self) -> bool {
        self.0.exists()
    }

    /// Sets the marker; a marker that cannot be written only costs exactness after a
    /// kill in the final drain, so it is logged, not fatal.
    fn set(&self) {
        let written = self
            .0
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&self.0, b""));
        if let Err(error) = written {
            tracing::warn!(message = "Cannot mark the import as under way.", path = %self.0.display(), %error);
        }
    }

    fn clear(&self) {
        if let Err(error) = std::fs::remove_file(&self.0)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(message = "Cannot clear the import's under-way mark; the next import of this source replays it.", path = %self.0.display(), %error);
        }
    }
}

/// Parsed batches an import may queue for the writer. The file reader outruns the
/// store and the inspector, so a deeper queue only holds parsed events in memory (each
/// batch is at least 5,000 events): two keep the writer busy while the reader parses
/// the next one (docs/BENCHMARKS.md, perf-ingest3: peak RSS before and after).
const IMPORT_QUEUE_BATCHES: usize = 2;

/// Bytes per line assumed when estimating an import's size: above a typical access
/// log line, so that the estimate errs low (an import estimated smaller than the table
/// keeps its indexes up to date, the safe side).
const BYTES_PER_LINE: u64 = 300;

/// Compressed logs are assumed to expand at least this much.
const GZIP_RATIO: u64 = 5;

/// About how many lines the files hold, from their sizes on disk (packet captures do
/// not count: their flows go elsewhere).
fn expected_lines(files: &[std::path::PathBuf]) -> u64 {
    files
        .iter()
        .filter(|p| !palisade_flows::import::is_capture(p))
        .filter_map(|p| {
            let size = std::fs::metadata(p).ok()?.len();
            let gz = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
            Some(
                if gz {
                    size.saturating_mul(GZIP_RATIO)
                } else {
                    size
                } / BYTES_PER_LINE,
            )
        })
        .sum()
}

/// Scenario alerts so far, in total and by scenario.
/// Each scenario's overflows (alerts) so far, by name.
fn scenario_counts(
    behaviour: &palisade_pipeline::stages::behaviour::Behaviour,
) -> Vec<(String, u64)> {
    behaviour
        .status()
        .scenarios
        .into_iter()
        .map(|s| (s.name, s.overflows))
        .collect()
}

/// The alerts raised since `before` (the counts after a resumed import's replay): their
/// total and `" (name n, …)"` for the summary line.
fn scenario_overflows(
    behaviour: &palisade_pipeline::stages::behaviour::Behaviour,
    before: &[(String, u64)],
) -> (u64, String) {
    let fired: Vec<(String, u64)> = scenario_counts(behaviour)
        .into_iter()
        .map(|(name, n)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == name)
                .map_or(0, |(_, b)| *b);
            (name, n.saturating_sub(earlier))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let total = fired.iter().map(|(_, n)| n).sum();
    let detail = if fired.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = fired
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        format!(" ({})", parts.join(", "))
    };
    (total, detail)
}

fn progress_bar(visible: bool, label: String) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label);
    bar
}

fn spawn_ticker(bar: ProgressBar, progress: Arc<ImportProgress>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            bar.set_length(progress.bytes_total.load(Ordering::Relaxed));
            bar.set_position(progress.bytes_read.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// What an import runs: the whole pipeline (detection on), or only the writer.
enum Ingest {
    Pipeline(Box<palisade_pipeline::RunningPipeline>),
    /// `--no-detect`: the writer, its task, and the task that marks what it stores as
    /// not to inspect.
    StoreOnly(
        BatchWriter,
        tokio::task::JoinHandle<()>,
        tokio::task::JoinHandle<()>,
    ),
}
