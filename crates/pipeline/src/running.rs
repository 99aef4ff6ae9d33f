//! Building, running and draining the pipeline: the one place its stages are wired,
//! used by `palisade serve` and `palisade ingest` alike.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use palisade_core::net::IpNet;
use palisade_core::supervisor::Supervisor;
use palisade_core::{Shutdown, ShutdownTrigger};
use palisade_jobs::{JobsHandle, JobsSetup, Services};
use palisade_scenarios::{EngineConfig as ScenarioEngineConfig, ScenarioEngine, ScenarioSet};
use palisade_sources::syslog::SyslogConfig;
use palisade_sources::tail::TailConfig;
use palisade_sources::{BatchWriter, SourceRegistry, WriterConfig};
use palisade_store::SharedStore;
use palisade_vuln::{SoftwareObserver, ThreatSink, VulnConfig};
use tokio::task::JoinHandle;

use crate::ban_policy::{BanPolicy, BanSources};
use crate::db_monitor::{self, DbHealth};
use crate::decisions::{self, Decisions, DecisionsConfig};
use crate::detection::{self, Detection, DetectionConfig};
use crate::guard::Guard;
use crate::recorder::{ThreatOutlets, ThreatRecorder};
use crate::stages::behaviour::{self, BanGate, Behaviour, BehaviourConfig};
use crate::stages::{inspector, live_traffic, software};
use palisade_live::{Bus, BusConfig, Topic};

/// How often the database is pinged for health.
const DB_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// What the pipeline is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The long-running service: sources, the database monitor, decision sync, saved
    /// behaviour state, rule reloads, scenario bans.
    Serve,
    /// A one-shot import (`palisade ingest`): the caller has migrated the database and
    /// feeds the writer itself; stages run without saved state, and scenario overflows
    /// become threats but no bans (an old log's attackers are not today's).
    Import,
    /// An API node of a scale-out topology (`palisade serve --role api`): the service
    /// without the work over stored batches. It serves the fronts (`/check`, the
    /// proxies, HTTP pushes are stored) and keeps decisions, rules and the database
    /// monitor in sync, but runs no sources, no inspector/behaviour/software stages over
    /// stored batches and no job workers or scheduler: worker nodes on the same
    /// PostgreSQL do that work.
    Api,
}

/// Everything the pipeline's components are configured with.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    /// Where state files (the behaviour buckets) are kept.
    pub data_dir: PathBuf,
    /// The signature engine.
    pub detection: DetectionConfig,
    /// Behaviour scenarios.
    pub behaviour: BehaviourConfig,
    /// IP decisions: reload and expiry intervals.
    pub decisions: DecisionsConfig,
    /// The writer's queue (its observers are added by the pipeline).
    pub writer: WriterConfig,
    /// Files to follow.
    pub tails: Vec<TailConfig>,
    /// Syslog listeners.
    pub syslog: Vec<SyslogConfig>,
    /// Palisade's own addresses and trusted front proxies: never banned.
    pub own_addresses: Vec<(IpNet, String)>,
    /// Stages that must see every stored threat (alert rules), fed by the recorder.
    pub threat_observers: ThreatOutlets,
    /// Sources configured outside the pipeline (protecting proxies, by name): like
    /// tails and syslog listeners, their events may cause scenario bans by default.
    pub other_sources: Vec<String>,
    /// `[jobs]`, extra job kinds and the secrets store for commands.
    pub jobs: JobsSetup,
    /// The vulnerability engine (`[vuln]`): software seen in traffic and logs.
    pub vuln: VulnConfig,
    /// `[models]`: the request model and the rule/model fusion policy.
    pub models: palisade_models::ModelsConfig,
    /// `[baselines]`: per-endpoint anomaly baselines and their part in the fusion.
    pub baselines: palisade_models::BaselinesConfig,
    /// Where model predictions go (`[kafka_sink] predictions_topic`); none: nowhere.
    pub predictions: Option<crate::predictions::PredictionTap>,
    /// Sources whose stored events past their inspection mark are inspected again at
    /// start-up, before anything new (issue 16): an import's source (the service adds
    /// its tails and syslog listeners itself). Only sources this process feeds: another
    /// process may be inspecting the others' events.
    pub reinspect: Vec<String>,
    /// Of an import's sources, those that resume after a kill, in the order they are
    /// imported: their stored events go through the stateful detectors again before
    /// anything new ([`crate::resume::replay`]), so that the baselines and scenarios
    /// hold what an uninterrupted import would have at the resume point. A one-shot
    /// import only; the service ignores it.
    pub replay: Vec<String>,
}

impl PipelineConfig {
    /// The rules every ban must pass.
    pub fn ban_policy(&self) -> BanPolicy {
        let d = &self.decisions;
        BanPolicy::new(
            &self.own_addresses,
            &d.protected,
            d.ban_private,
            d.max_prefix_v4,
            d.max_prefix_v6,
        )
    }

    /// The sources whose events may cause scenario bans: `[decisions] ban_sources`, or
    /// every configured source (never an HTTP push, whose name the pusher chooses).
    pub fn ban_sources(&self) -> BanSources {
        match &self.decisions.ban_sources {
            Some(list) => BanSources::only(list.iter().cloned()),
            None => BanSources::only(
                self.tails
                    .iter()
                    .map(|t| t.name.clone())
                    .chain(self.syslog.iter().map(|s| s.name.clone()))
                    .chain(self.other_sources.iter().cloned()),
            ),
        }
    }
}

/// Why the pipeline could not be built (a user file that does not load).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A rule file is invalid.
    #[error("loading the detection rules: {0}")]
    Rules(#[from] palisade_detect::RuleError),
    /// The detection engine (rule files or CRS directory) cannot start.
    #[error("loading the detection rules: {0}")]
    Detection(#[from] crate::detection::DetectionError),
    /// A scenario file is invalid.
    #[error("loading the behaviour scenarios: {0}")]
    Scenarios(#[from] palisade_scenarios::ScenarioError),
    /// The job configuration names kinds that do not exist or parameters they refuse.
    #[error("the job configuration: {}", .0.join("; "))]
    Jobs(Vec<String>),
    /// The data directory cannot be used.
    #[error("preparing the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// What the fronts (API, proxy) share with the running pipeline. Cheap to clone.
#[derive(Clone)]
pub struct PipelineHandle {
    /// The store.
    pub store: SharedStore,
    /// The swappable signature engine and its mode.
    pub detection: Arc<Detection>,
    /// The decision policy for live requests.
    pub guard: Guard,
    /// Where threats go, off the request path.
    pub threats: ThreatRecorder,
    /// The behaviour scenarios and their buckets.
    pub behaviour: Arc<Behaviour>,
    /// IP decisions: the in-memory enforcement set and the store behind it.
    pub decisions: Arc<Decisions>,
    /// The database's health as last measured.
    pub db: Arc<DbHealth>,
    /// The bounded writer (HTTP pushes use it).
    pub writer: BatchWriter,
    /// Live state of every source.
    pub sources: SourceRegistry,
    /// Every supervised task, for health.
    pub supervisor: Supervisor,
    /// The live event bus (the WebSocket feed).
    pub live: Arc<Bus>,
    /// The job queue: submit, cancel, retry, kinds, live events.
    pub jobs: JobsHandle,
    /// Where fronts hand software they see (the proxy's upstream answers); `None` when
    /// `[vuln] observe` is off.
    pub software: Option<SoftwareObserver>,
    /// The vulnerability engine's settings (upload limits, feeds).
    pub vuln: Arc<VulnConfig>,
}

impl PipelineHandle {
    /// Threats raised by vulnerability matching go to the recorder, like every other.
    pub fn threat_sink(&self) -> ThreatSink {
        let recorder = self.threats.clone();
        Arc::new(move |t| recorder.record(t))
    }
}

/// The entry point: [`Pipeline::build`].
pub struct Pipeline;

/// A started pipeline. Stop it with [`RunningPipeline::shutdown`] (or
/// [`RunningPipeline::trigger`] then [`RunningPipeline::drain`]).
pub struct RunningPipeline {
    handle: PipelineHandle,
    trigger: ShutdownTrigger,
    sources: Vec<JoinHandle<()>>,
    jobs: Vec<JoinHandle<()>>,
    writer: JoinHandle<()>,
    stages: Vec<JoinHandle<()>>,
    bans: Option<JoinHandle<()>>,
    /// Fired once every stage that records threats has drained: the recorder's end.
    producers_done: ShutdownTrigger,
    recorder: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Builds and starts every stage. Never waits on the database: the monitor applies
    /// migrations and the stages wait for it in the background.
    pub async fn build(
        store: SharedStore,
        config: PipelineConfig,
        purpose: Purpose,
    ) -> Result<RunningPipeline, PipelineError> {
        let serving = purpose != Purpose::Import;
        // Stages over stored batches, sources and job workers: not on an API node.
        let working = purpose != Purpose::Api;
        let trigger = ShutdownTrigger::new();
        let supervisor = Supervisor::new(trigger.subscribe());
        let mut background = Vec::new();

        let db = Arc::new(DbHealth::new(store.backend()));
        if serving {
            let (store, db) = (store.clone(), db.clone());
            let shutdown = supervisor.shutdown();
            background.push(supervisor.spawn("database-monitor", move || {
                db_monitor::monitor(
                    store.clone(),
                    db.clone(),
                    DB_CHECK_INTERVAL,
                    shutdown.clone(),
                )
            }));
        }

        let detection = Arc::new(Detection::with_crs(
            config.detection.engine,
            config.detection.mode,
            config.detection.rules_dir.clone(),
            config.detection.crs_dir.as_deref(),
            config.detection.crs_mode,
        )?);
        let live = Arc::new(Bus::new(BusConfig::default()));
        let mut outlets = config.threat_observers.clone();
        // Threats go on the live feed only where someone can watch it: a one-shot
        // import serves no API, so nobody subscribes, yet every threat was serialised
        // to JSON and kept for replay (2.4% of an import's CPU samples, issue 16).
        if serving {
            outlets.live = Some(live.clone());
        }
        let producers_done = ShutdownTrigger::new();
        let (threats, recorder) = ThreatRecorder::spawn(
            store.clone(),
            outlets,
            &supervisor,
            producers_done.subscribe(),
        );
        let decisions = Arc::new(Decisions::with_policy(store.clone(), config.ban_policy()));
        let guard = Guard::new(detection.clone(), Some(decisions.clone()), threats.clone())
            .with_models(
                Arc::new(palisade_models::ModelSlot::from_config(&config.models)),
                palisade_models::FusionPolicy::from(&config.models),
            )
            .with_flow_model(Arc::new(palisade_models::flow::FlowScorer::from_config(
                &config.models,
            )));
        let baselines = config
            .baselines
            .enabled
            .then(|| Arc::new(palisade_models::Baselines::new(config.baselines.clone())));
        let guard = match &baselines {
            Some(b) => guard.with_baselines(b.clone()),
            None => guard,
        };
        let guard = match &config.predictions {
            Some(tap) => guard.with_predictions(tap.clone()),
            None => guard,
        };

        let state_file = serving.then(|| config.data_dir.join("scenarios.state.json"));
        if state_file.is_some() {
            std::fs::create_dir_all(&config.data_dir).map_err(|source| PipelineError::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
        }
        let behaviour = Arc::new(Behaviour::new(
            scenario_engine(&config.behaviour)?,
            state_file,
        ));
        let (gate, bans) = if serving {
            let (tx, task) = behaviour::spawn_bans(decisions.clone(), &supervisor);
            let gate = BanGate::Serve {
                bans: tx,
                sources: config.ban_sources(),
                policy: config.ban_policy(),
            };
            (gate, Some(task))
        } else {
            (BanGate::Import, None)
        };
        let mut writer_config = config.writer.clone();
        let mut stages = Vec::new();
        let mut resume_tx = None;
        if working {
            let (inspect_tx, inspect_task) = inspector::spawn(guard.clone(), &supervisor);
            resume_tx = Some(inspect_tx.clone());
            let (behaviour_tx, behaviour_task) =
                behaviour::spawn(behaviour.clone(), threats.clone(), gate, &supervisor);
            writer_config.observers.push(inspect_tx);
            writer_config.observers.push(behaviour_tx);
            stages.extend([inspect_task, behaviour_task]);
        }
        if serving {
            let (traffic_tx, traffic_task) = live_traffic::spawn(live.clone(), &supervisor);
            writer_config.observers.push(traffic_tx);
            stages.push(traffic_task);
        }
        let software = if config.vuln.observe {
            let recorder = threats.clone();
            let sink: ThreatSink = Arc::new(move |t| recorder.record(t));
            let (observer, observer_task) = palisade_vuln::observe::spawn(
                store.clone(),
                Some(sink),
                config.vuln.observe_queue,
                config.vuln.observe_refresh.to_std(),
                &supervisor,
            );
            background.push(observer_task);
            if working {
                let (software_tx, software_task) = software::spawn(observer.clone(), &supervisor);
                writer_config.observers.push(software_tx);
                stages.push(software_task);
            }
            Some(observer)
        } else {
            None
        };
        let (writer, writer_task) = BatchWriter::spawn(store.clone(), writer_config, &supervisor);

        if let Some(b) = baselines.filter(|_| serving) {
            b.hold_until_restored();
            let (store, db, shutdown) = (store.clone(), db.clone(), supervisor.shutdown());
            let every = config.baselines.snapshot_every.to_std();
            background.push(supervisor.spawn("baseline-save", move || {
                crate::baseline::persist(
                    b.clone(),
                    store.clone(),
                    db.clone(),
                    every,
                    shutdown.clone(),
                )
            }));
        }
        if serving {
            background.extend(spawn_upkeep(
                &supervisor,
                &store,
                &live,
                &db,
                &detection,
                &behaviour,
                &decisions,
                &config,
            ));
        }
        let mut registry = config.jobs.registry().map_err(PipelineError::Jobs)?;
        // The vulnerability pipeline's kinds: their new critical matches go to the
        // recorder, like every other threat.
        let vuln_threats = threats.clone();
        let sink: palisade_vuln::ThreatSink = Arc::new(move |t| vuln_threats.record(t));
        for kind in
            palisade_vuln::jobs::kinds(&config.vuln, &config.jobs.config.import_dirs, Some(sink))
        {
            registry.register(kind);
        }
        let jobs = JobsHandle::new(store.clone(), registry, config.jobs.config.clone());
        // The pool runs jobs in the service only; a one-shot command runs its own job
        // with `JobsHandle::run_here`.
        let job_tasks = if serving && working {
            let ready = db.clone();
            jobs.start(
                Services {
                    store: store.clone(),
                    writer: Some(writer.clone()),
                    secrets: config.jobs.secrets.clone(),
                },
                &supervisor,
                Arc::new(move || ready.ready()),
            )
        } else {
            Vec::new()
        };
        if serving {
            background.push(relay_job_events(&jobs, &live, &supervisor));
        }
        // The service's sources wait for theirs (the store may not be ready yet: the
        // service never waits on it here); an import's are done before it starts.
        let mut resumed = None;
        if let Some(tx) = resume_tx {
            let names = reinspect_names(&config, serving);
            if serving {
                let (done, gate) = tokio::sync::watch::channel(false);
                resumed = Some(gate);
                background.push(crate::resume::spawn_at_start(
                    &supervisor,
                    store.clone(),
                    db.clone(),
                    tx,
                    names,
                    done,
                ));
            } else {
                for source in &config.replay {
                    if let Err(error) =
                        crate::resume::replay_logged(&store, &guard, &behaviour, source).await
                    {
                        tracing::warn!(
                            message = "Cannot replay the stored events of a resumed import; its baselines and scenarios start cold.",
                            source,
                            %error
                        );
                        if let Err(error) =
                            crate::resume::reinspect_logged(&store, &tx, source).await
                        {
                            tracing::warn!(
                                message = "Cannot read the stored events left uninspected; they wait for the next start.",
                                source,
                                %error
                            );
                        }
                    }
                }
                for source in names.iter().filter(|n| !config.replay.contains(n)) {
                    if let Err(error) = crate::resume::reinspect_logged(&store, &tx, source).await {
                        tracing::warn!(
                            message = "Cannot read the stored events left uninspected; they wait for the next start.",
                            source,
                            %error
                        );
                    }
                }
            }
        }
        let sources = SourceRegistry::default();
        let source_tasks = if serving && working {
            spawn_sources(&supervisor, &store, &writer, &sources, &config, resumed)
        } else {
            Vec::new()
        };

        Ok(RunningPipeline {
            handle: PipelineHandle {
                store,
                detection,
                guard,
                threats,
                behaviour,
                decisions,
                db,
                writer,
                sources,
                supervisor,
                live,
                jobs,
                software,
                vuln: Arc::new(config.vuln.clone()),
            },
            trigger,
            sources: source_tasks,
            jobs: job_tasks,
            writer: writer_task,
            stages,
            bans,
            producers_done,
            recorder,
            background,
        })
    }
}

/// The service's upkeep tasks: decision sync, periodic bucket saves, rule reloads and
/// the restore of saved detection settings.
#[allow(clippy::too_many_arguments)]
fn spawn_upkeep(
    supervisor: &Supervisor,
    store: &SharedStore,
    live: &Arc<Bus>,
    db: &Arc<DbHealth>,
    detection: &Arc<Detection>,
    behaviour: &Arc<Behaviour>,
    decisions: &Arc<Decisions>,
    config: &PipelineConfig,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![decisions::spawn_sync(
        decisions.clone(),
        db.clone(),
        config.decisions.clone(),
        supervisor,
    )];
    let (b, shutdown) = (behaviour.clone(), supervisor.shutdown());
    tasks.push(supervisor.spawn("behaviour-save", move || {
        behaviour::save_periodically(b.clone(), shutdown.clone())
    }));
    if let Some(every) = config.detection.reload_every {
        let (d, shutdown) = (detection.clone(), supervisor.shutdown());
        let feed = Some((store.clone(), live.clone()));
        tasks.push(supervisor.spawn("rule-watch", move || {
            detection::watch_rules(d.clone(), every, feed.clone(), shutdown.clone())
        }));
    }
    let (d, s, h, shutdown) = (
        detection.clone(),
        store.clone(),
        db.clone(),
        supervisor.shutdown(),
    );
    tasks.push(supervisor.spawn("detection-restore", move || {
        restore_detection(d.clone(), s.clone(), h.clone(), shutdown.clone())
    }));
    tasks
}

/// One supervised task per configured source (file tails, syslog listeners).
fn spawn_sources(
    supervisor: &Supervisor,
    store: &SharedStore,
    writer: &BatchWriter,
    registry: &SourceRegistry,
    config: &PipelineConfig,
    resumed: Option<tokio::sync::watch::Receiver<bool>>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for tail in &config.tails {
        let status = registry.register(&tail.name, "file", &tail.path.display().to_string());
        let (tail, store, writer, shutdown) = (
            tail.clone(),
            store.clone(),
            writer.clone(),
            supervisor.shutdown(),
        );
        let name = format!("tail:{}", tail.name);
        let gate = resumed.clone();
        tasks.push(supervisor.spawn(&name, move || {
            let run = palisade_sources::tail::run(
                tail.clone(),
                store.clone(),
                writer.clone(),
                status.clone(),
                shutdown.clone(),
            );
            let (gate, stop) = (gate.clone(), shutdown.clone());
            async move {
                if started(gate, &stop).await {
                    run.await;
                }
            }
        }));
    }
    for listener in &config.syslog {
        let status = registry.register(&listener.name, "syslog", &listener.target());
        let (listener, writer, shutdown) =
            (listener.clone(), writer.clone(), supervisor.shutdown());
        let name = format!("syslog:{}", listener.name);
        let gate = resumed.clone();
        tasks.push(supervisor.spawn(&name, move || {
            let run = palisade_sources::syslog::run(
                listener.clone(),
                writer.clone(),
                status.clone(),
                shutdown.clone(),
            );
            let (gate, stop) = (gate.clone(), shutdown.clone());
            async move {
                if started(gate, &stop).await {
                    run.await;
                }
            }
        }));
    }
    tasks
}

/// Waits until the start-up re-inspection of the sources' stored events is over
/// (issue 16). False only when the service is stopping: the source must not start
/// then. A re-inspection that ended without finishing while the service runs (it cannot
/// panic by design, but if it did) must not keep the sources down for good: they start,
/// and it is logged.
async fn started(gate: Option<tokio::sync::watch::Receiver<bool>>, shutdown: &Shutdown) -> bool {
    let Some(mut gate) = gate else {
        return true;
    };
    if gate.wait_for(|done| *done).await.is_ok() {
        return true;
    }
    if shutdown.is_shutdown() {
        return false;
    }
    tracing::error!(
        message = "The start-up re-inspection ended without finishing; the source starts anyway (stored events past its mark wait for the next start)."
    );
    true
}

/// The sources whose stored events past their inspection mark are inspected again at
/// start-up (issue 16): those this process feeds, each once.
fn reinspect_names(config: &PipelineConfig, serving: bool) -> Vec<String> {
    let mut names: Vec<String> = config.reinspect.clone();
    if serving {
        names.extend(config.tails.iter().map(|t| t.name.clone()));
        names.extend(config.syslog.iter().map(|s| s.name.clone()));
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// Job state, progress and log lines onto the live feed: every event on `job:<id>`,
/// state and progress (not log lines) on `jobs`. The job events bus is lossy for a slow
/// reader; a lag is logged and the relay carries on (the job's state stays in the store).
fn relay_job_events(jobs: &JobsHandle, live: &Arc<Bus>, supervisor: &Supervisor) -> JoinHandle<()> {
    let (jobs, live, shutdown) = (jobs.clone(), live.clone(), supervisor.shutdown());
    supervisor.spawn("live-jobs", move || {
        let mut events = jobs.events().subscribe();
        let (live, mut shutdown) = (live.clone(), shutdown.clone());
        async move {
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    _ = shutdown.recv() => return,
                };
                match event {
                    Ok(e) => {
                        if !matches!(e.body, palisade_jobs::JobEventBody::Log { .. }) {
                            live.publish(Topic::Jobs, &*e);
                        }
                        live.publish(Topic::Job(e.job_id), &*e);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(message = "The live feed missed job events.", missed = n);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    })
}

/// The scenario engine over the built-in scenarios and the user's directory.
fn scenario_engine(config: &BehaviourConfig) -> Result<ScenarioEngine, PipelineError> {
    let set = ScenarioSet::load(config.dir.as_deref())?;
    let mut engine = ScenarioEngineConfig::default();
    if let Some(cap) = config.max_buckets {
        engine.max_buckets = cap;
    }
    Ok(ScenarioEngine::new(set, engine))
}

/// Applies the saved run-time detection settings once the database is ready.
async fn restore_detection(
    detection: Arc<Detection>,
    store: SharedStore,
    db: Arc<DbHealth>,
    mut shutdown: Shutdown,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if db.ready() {
            match detection.restore(&store).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(message = "Cannot restore the saved detection settings; will retry.", %error);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => return,
        }
    }
}

impl RunningPipeline {
    /// What the fronts share.
    pub fn handle(&self) -> &PipelineHandle {
        &self.handle
    }

    /// A shutdown listener for the fronts the caller runs (HTTP server, proxies), fired
    /// by [`RunningPipeline::trigger`].
    pub fn shutdown_signal(&self) -> Shutdown {
        self.trigger.subscribe()
    }

    /// Tells every task to stop: sources flush their last batch, retry waits end.
    pub fn trigger(&self) {
        self.trigger.trigger();
    }

    /// Stops everything and waits, in order: sources, running jobs (handed back to the
    /// queue), the writer (every queued batch is written), the stages after the store, scenario bans, the threat recorder.
    /// Gives up after `timeout` (unflushed lines are re-read from their checkpoints at
    /// the next start). Call it after the fronts holding a [`PipelineHandle`] stopped.
    pub async fn shutdown(self, timeout: Duration) -> bool {
        self.trigger();
        self.drain(timeout).await
    }

    /// [`RunningPipeline::shutdown`] after [`RunningPipeline::trigger`]; true when
    /// everything drained in time.
    pub async fn drain(self, timeout: Duration) -> bool {
        let RunningPipeline {
            handle,
            trigger,
            sources,
            jobs,
            writer,
            stages,
            bans,
            producers_done,
            recorder,
            background,
        } = self;
        trigger.trigger();
        // Our clones of the writer and the recorder must go for their tasks to end.
        drop(handle);
        let drained = tokio::time::timeout(timeout, async {
            for task in sources {
                let _ = task.await;
            }
            // Running jobs hand their jobs back (taken up again at the next start) and
            // let go of the writer; an import's last batches are stored below.
            for task in jobs {
                let _ = task.await;
            }
            let _ = writer.await;
            for task in stages {
                let _ = task.await;
            }
            if let Some(task) = bans {
                let _ = task.await;
            }
            producers_done.trigger();
            let _ = recorder.await;
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(
                message = "Shutdown drain timed out; unflushed lines will be re-read from the checkpoint at next start."
            );
        }
        for task in &background {
            task.abort();
        }
        for task in background {
            let _ = task.await;
        }
        drained
    }
}
