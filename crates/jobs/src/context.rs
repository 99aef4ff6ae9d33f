//! What a running job sees: its parameters, the services, the cancellation signal, and
//! the means to report progress, log lines and structured outputs.
//!
//! Reports are published on the [`JobEvents`] bus at once and written to the store in
//! batches by a small writer that runs beside the job (every 250 ms or 500 items),
//! through a bounded queue: a job that logs faster than the store takes is slowed down
//! (a command's output pipe fills and the command waits), never buffered without limit.
//! Past `max_log_lines` lines, further lines are counted and a note says how many were
//! not kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use palisade_core::Timestamp;
use palisade_core::job::{Job, LogLevel, NewLogLine};
use palisade_core::shutdown::Shutdown;
use palisade_store::SharedStore;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::events::{JobEventBody, JobEvents};
use crate::kind::Services;

/// Items waiting for the store at most, per job.
const SINK_QUEUE: usize = 512;
/// Items written per store call at most.
const SINK_BATCH: usize = 500;
/// How often queued items are written.
const SINK_FLUSH: Duration = Duration::from_millis(250);
/// Store failures tolerated in a row before a batch is dropped (logged).
const SINK_RETRIES: u32 = 5;

enum Item {
    Log(NewLogLine),
    Output(Timestamp, Value),
    Progress(u8, Option<String>),
}

/// The context of one attempt.
pub struct JobContext {
    job: Job,
    services: Arc<Services>,
    cancel: Shutdown,
    events: JobEvents,
    tx: mpsc::Sender<Item>,
    lines: AtomicU64,
    max_lines: u64,
}

/// The writer behind a context: finish it after the run to flush what is left.
pub(crate) struct SinkTask {
    handle: JoinHandle<()>,
}

impl SinkTask {
    /// Waits until everything reported was written.
    pub(crate) async fn flush(self) {
        let _ = self.handle.await;
    }
}

impl JobContext {
    /// A context for a claimed job, with the writer that stores its reports.
    pub(crate) fn new(
        job: Job,
        services: Arc<Services>,
        cancel: Shutdown,
        events: JobEvents,
        worker: String,
        max_lines: u64,
    ) -> (JobContext, SinkTask) {
        let (tx, rx) = mpsc::channel(SINK_QUEUE);
        let handle = tokio::spawn(write_reports(
            services.store.clone(),
            job.id,
            job.attempt,
            worker,
            rx,
        ));
        (
            JobContext {
                job,
                services,
                cancel,
                events,
                tx,
                lines: AtomicU64::new(0),
                max_lines,
            },
            SinkTask { handle },
        )
    }

    /// The job as claimed (its id, parameters, attempt number).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Its normalised parameters.
    pub fn params(&self) -> &Value {
        &self.job.params
    }

    /// A parameter as text.
    pub fn param_str(&self, name: &str) -> Option<&str> {
        self.job.params.get(name).and_then(Value::as_str)
    }

    /// What the process offers (store, writer, secrets).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.services.store
    }

    /// Whether the job was asked to stop (cancel, timeout, shutdown).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_shutdown()
    }

    /// Completes when the job is asked to stop; use it in a `select!`.
    pub async fn cancelled(&self) {
        self.cancel.clone().recv().await;
    }

    /// The cancellation signal, for work handed to another task.
    pub fn cancel_signal(&self) -> Shutdown {
        self.cancel.clone()
    }

    /// Writes a log line (published at once, stored in the next batch).
    pub async fn log(&self, level: LogLevel, message: impl Into<String>) {
        let n = self.lines.fetch_add(1, Ordering::Relaxed);
        if n >= self.max_lines {
            return;
        }
        let message = message.into();
        self.events.publish(
            self.job.id,
            &self.job.kind,
            JobEventBody::Log {
                attempt: self.job.attempt,
                level,
                message: message.clone(),
            },
        );
        let _ = self
            .tx
            .send(Item::Log(NewLogLine {
                ts: Timestamp::now(),
                level,
                message,
            }))
            .await;
    }

    /// An `info` line.
    pub async fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message).await;
    }

    /// A `warn` line.
    pub async fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message).await;
    }

    /// Reports progress (0–100, clamped) and what the job is doing.
    pub async fn progress(&self, progress: u8, message: impl Into<String>) {
        let progress = progress.min(100);
        let message = Some(message.into());
        self.events.publish(
            self.job.id,
            &self.job.kind,
            JobEventBody::Progress {
                progress,
                message: message.clone(),
            },
        );
        let _ = self.tx.send(Item::Progress(progress, message)).await;
    }

    /// Keeps a structured result (a JSON value, usually an object).
    pub async fn output(&self, value: Value) {
        self.events.publish(
            self.job.id,
            &self.job.kind,
            JobEventBody::Output {
                attempt: self.job.attempt,
                value: value.clone(),
            },
        );
        let _ = self.tx.send(Item::Output(Timestamp::now(), value)).await;
    }

    /// Notes lines dropped past the limit; called once the run is over.
    pub(crate) async fn close(self) {
        let total = self.lines.load(Ordering::Relaxed);
        if total > self.max_lines {
            let dropped = total - self.max_lines;
            let _ = self
                .tx
                .send(Item::Log(NewLogLine {
                    ts: Timestamp::now(),
                    level: LogLevel::Warn,
                    message: format!(
                        "{dropped} more log lines were not kept (jobs.max_log_lines = {})",
                        self.max_lines
                    ),
                }))
                .await;
        }
    }
}

/// Writes one attempt's reports in batches until the context is dropped.
async fn write_reports(
    store: SharedStore,
    job_id: i64,
    attempt: u32,
    worker: String,
    mut rx: mpsc::Receiver<Item>,
) {
    let mut logs = Vec::new();
    let mut outputs = Vec::new();
    let mut progress: Option<(u8, Option<String>)> = None;
    let mut open = true;
    while open {
        // Wait for the first item, then take what comes within the flush interval.
        match rx.recv().await {
            Some(item) => collect(item, &mut logs, &mut outputs, &mut progress),
            None => open = false,
        }
        let deadline = tokio::time::Instant::now() + SINK_FLUSH;
        while open && logs.len() + outputs.len() < SINK_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => collect(item, &mut logs, &mut outputs, &mut progress),
                Ok(None) => open = false,
                Err(_) => break,
            }
        }
        let mut failures = 0;
        loop {
            let result = async {
                store.append_job_logs(job_id, attempt, &logs).await?;
                store.append_job_outputs(job_id, attempt, &outputs).await?;
                if let Some((p, m)) = &progress {
                    store
                        .set_job_progress(job_id, &worker, *p, m.as_deref(), Timestamp::now())
                        .await?;
                }
                Ok::<(), palisade_store::StoreError>(())
            }
            .await;
            match result {
                Ok(()) => break,
                Err(error) => {
                    failures += 1;
                    if failures >= SINK_RETRIES {
                        tracing::warn!(
                            message = "Cannot store a job's log lines and outputs; dropping this batch.",
                            job_id,
                            lines = logs.len(),
                            outputs = outputs.len(),
                            %error
                        );
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200 << failures)).await;
                }
            }
        }
        // A line logged and then its output: the lines go first, as they were written.
        logs.clear();
        outputs.clear();
        progress = None;
    }
}

fn collect(
    item: Item,
    logs: &mut Vec<NewLogLine>,
    outputs: &mut Vec<(Timestamp, Value)>,
    progress: &mut Option<(u8, Option<String>)>,
) {
    match item {
        Item::Log(l) => logs.push(l),
        Item::Output(ts, v) => outputs.push((ts, v)),
        Item::Progress(p, m) => *progress = Some((p, m)),
    }
}
