//! `palisade jobs run|list|cancel|kinds`: the job queue from the command line, on the
//! configured store.
//!
//! `jobs run` enqueues into the store, exactly as the API does. With `--wait` it
//! follows the job (progress bar, log lines as they come); when no server on the same
//! store takes the job within a second, this command runs it itself through the same
//! runner the server uses (claiming it atomically, so a server that wakes up late
//! cannot run it too), with the one-shot pipeline for imports. Ctrl-C asks the job to
//! stop.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use palisade_core::job::{Job, JobState};
use palisade_core::security::Role;
use palisade_core::{Shutdown, ShutdownTrigger};
use palisade_jobs::{JobsHandle, JobsSetup, Services, SubmitFailure};
use palisade_pipeline::{Pipeline, Purpose};
use palisade_store::{CancelOutcome, JobQuery, SharedStore};

use crate::cli::JobsCommand;
use crate::config::{Overrides, Settings};

/// How long `--wait` lets a server take the job before running it here.
const SERVER_GRACE: Duration = Duration::from_secs(1);

/// Runs a jobs subcommand.
pub fn run(o: &Overrides, command: JobsCommand) -> anyhow::Result<ExitCode> {
    let settings = super::settings(o)?;
    crate::telemetry::init("warn", settings.log_format);
    super::runtime()?.block_on(async move {
        let store = crate::app::open_store(&settings)?;
        store.migrate().await.context("preparing the database")?;
        let setup = JobsSetup {
            config: settings.jobs.clone(),
            ..JobsSetup::default()
        };
        let registry = setup
            .registry()
            .map_err(|p| anyhow::anyhow!("the job configuration: {}", p.join("; ")))?;
        let handle = JobsHandle::new(store.clone(), registry, settings.jobs.clone());
        match command {
            JobsCommand::Run { kind, params, wait } => {
                run_job(&settings, &handle, &kind, &params, wait).await
            }
            JobsCommand::List { state, kind, limit } => list(&store, state, kind, limit).await,
            JobsCommand::Cancel { id } => cancel(&handle, id).await,
            JobsCommand::Kinds => {
                for k in handle.registry().kinds() {
                    println!("{}: {}", k.name(), k.description());
                    println!("  params: {}", k.params_schema());
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn run_job(
    settings: &Settings,
    handle: &JobsHandle,
    kind: &str,
    pairs: &[String],
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let mut parsed = Vec::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--param {p}: give NAME=VALUE"))?;
        parsed.push((k.trim().to_owned(), v.to_owned()));
    }
    let schema = handle
        .registry()
        .get(kind)
        .map(|k| k.params_schema())
        .unwrap_or_default();
    let params = palisade_jobs::params::from_pairs(&schema, &parsed);
    // Whoever can run this command can open the store and its keys: an admin.
    let job = match handle.submit(kind, &params, "cli", Role::Admin).await {
        Ok(job) => job,
        Err(SubmitFailure::Refused(e)) => anyhow::bail!("{e}"),
        Err(SubmitFailure::Store(e)) => return Err(e.into()),
    };
    println!("job {} enqueued ({})", job.id, job.kind);
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    let stop = ShutdownTrigger::new();
    let local = follow_locally_if_untaken(settings, handle, &job, stop.subscribe());
    let finished = follow(handle, job.id, &stop);
    tokio::pin!(local, finished);
    let mut local_done = false;
    let done = loop {
        tokio::select! {
            ran = &mut local, if !local_done => {
                ran?;
                local_done = true;
            }
            done = &mut finished => break done?,
        }
    };
    if !local_done {
        local.await?;
    }
    if let Some(error) = &done.error
        && done.state != JobState::Succeeded
    {
        eprintln!("error: {error}");
    }
    let outputs = handle.store().job_outputs(done.id, 0, 1000).await?;
    for o in &outputs.items {
        println!("{}", o.value);
    }
    println!(
        "job {} {} after {} attempt(s)",
        done.id,
        done.state.as_str(),
        done.attempt
    );
    Ok(if done.state == JobState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the job here when, a second after it was enqueued, nobody took it.
async fn follow_locally_if_untaken(
    settings: &Settings,
    handle: &JobsHandle,
    job: &Job,
    stop: Shutdown,
) -> anyhow::Result<()> {
    tokio::time::sleep(SERVER_GRACE).await;
    let still_pending = handle
        .store()
        .get_job(job.id)
        .await?
        .is_some_and(|j| j.state == JobState::Pending);
    if !still_pending {
        return Ok(());
    }
    let auth = Arc::new(crate::app::build_auth(settings)?);
    let mut config = crate::app::pipeline_config(settings);
    config.writer.queue_batches = config.writer.queue_batches.max(4);
    let pipeline = Pipeline::build(handle.store().clone(), config, Purpose::Import)
        .await
        .context("starting the pipeline")?;
    let services = Services {
        store: handle.store().clone(),
        writer: Some(pipeline.handle().writer.clone()),
        secrets: Some(Arc::new(crate::app::StoreSecrets {
            store: handle.store().clone(),
            auth,
        })),
    };
    let ran = handle.run_here(job.id, services, stop).await;
    pipeline.shutdown(Duration::from_secs(3600)).await;
    ran?;
    Ok(())
}

/// Shows the job's progress and log until it finishes; Ctrl-C asks it to stop.
async fn follow(handle: &JobsHandle, id: i64, stop: &ShutdownTrigger) -> anyhow::Result<Job> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(100);
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut after = 0i64;
    let mut cancelled = false;
    let started = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let job = handle
            .store()
            .get_job(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("job {id} disappeared"))?;
        let page = handle.store().job_logs(id, after, 1000).await?;
        for line in &page.items {
            bar.println(format!(
                "[{} #{}] {}",
                line.level.as_str(),
                line.attempt,
                line.message
            ));
            after = line.id;
        }
        bar.set_position(u64::from(job.progress));
        bar.set_message(format!(
            "{} {}{}",
            job.state.as_str(),
            job.progress_message.clone().unwrap_or_default(),
            if job.state == JobState::Pending && started.elapsed() > SERVER_GRACE * 3 {
                " (waiting for a worker)"
            } else {
                ""
            }
        ));
        if job.state.is_finished() && page.next_cursor.is_none() {
            bar.finish_and_clear();
            return Ok(job);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = &mut ctrl_c, if !cancelled => {
                cancelled = true;
                bar.println("stopping the job (Ctrl-C)…");
                handle.cancel(id).await?;
                stop.trigger();
            }
        }
    }
}

async fn list(
    store: &SharedStore,
    state: Option<String>,
    kind: Option<String>,
    limit: u32,
) -> anyhow::Result<ExitCode> {
    let state = state
        .map(|s| {
            JobState::parse(&s).ok_or_else(|| {
                anyhow::anyhow!("--state: give pending, running, succeeded, failed or cancelled")
            })
        })
        .transpose()?;
    let page = store
        .query_jobs(&JobQuery {
            kind,
            state,
            limit: limit.clamp(1, 1000),
            ..JobQuery::default()
        })
        .await?;
    println!(
        "{:>6}  {:<18} {:<10} {:>7} {:>4}  {:<27} {:<16} error",
        "id", "kind", "state", "attempt", "%", "created", "by"
    );
    for j in page.items {
        println!(
            "{:>6}  {:<18} {:<10} {:>7} {:>4}  {:<27} {:<16} {}",
            j.id,
            j.kind,
            j.state.as_str(),
            format!("{}/{}", j.attempt, j.max_attempts),
            j.progress,
            j.created_at.to_string(),
            j.created_by,
            j.error.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn cancel(handle: &JobsHandle, id: i64) -> anyhow::Result<ExitCode> {
    match handle.cancel(id).await? {
        None => anyhow::bail!("no job with id {id}"),
        Some(CancelOutcome::Cancelled(_)) => println!("job {id} cancelled"),
        Some(CancelOutcome::Requested(_)) => {
            println!("job {id} is running: asked to stop (its worker stops it within a heartbeat)")
        }
        Some(CancelOutcome::Finished(j)) => {
            println!("job {id} had already finished ({})", j.state.as_str());
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
