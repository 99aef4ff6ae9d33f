//! The behaviour stage: every stored event goes through the scenario engine
//! (`palisade-scenarios`); each overflow becomes a threat with its evidence and, when
//! the scenario says so, an IP ban handed to the decision stage.
//!
//! Like the signature inspector it runs after the store (alerts point at event ids) on a
//! blocking thread fed by the writer's bounded observer channel. Bucket state is saved
//! to a file periodically and at shutdown and restored at start, so an attack that
//! straddles a restart is still caught.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use palisade_core::metrics::registry;
use palisade_core::severity::Severity;
use palisade_scenarios::{Alert, ScenarioEngine, Snapshot};
use palisade_sources::StoredBatches;
use serde::Serialize;
use tokio::sync::mpsc;

use palisade_core::config::{ConfigProblem, Validate};
use palisade_core::decision::DecisionOrigin;

use crate::ban_policy::{BanPolicy, BanSources};
use palisade_core::supervisor::{SharedReceiver, Supervisor};

use crate::recorder::ThreatRecorder;

/// `[scenarios]`: behaviour detection's start-up settings.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourConfig {
    /// Extra scenario files (`*.toml`) on top of the built-in ones.
    pub dir: Option<PathBuf>,
    /// Most buckets held (least recently used evicted); `None`: the engine's default.
    pub max_buckets: Option<usize>,
}

impl Validate for BehaviourConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.max_buckets == Some(0) {
            problems.push(ConfigProblem::new("max_buckets", "must be at least 1"));
        }
        if let Err(error) = palisade_scenarios::ScenarioSet::load(self.dir.as_deref()) {
            problems.push(ConfigProblem::new("dir", error));
        }
        problems
    }
}

/// How often the buckets are saved while running.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Groups of batches that may wait for the stage (two: see the inspector's queue).
const QUEUE: usize = 2;

/// The engine, shared between the stage's thread and the API.
pub struct Behaviour {
    engine: Mutex<ScenarioEngine>,
    state_file: Option<PathBuf>,
}

/// One loaded scenario with its counters, as `GET /api/v1/scenarios` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScenarioView {
    /// Stable id (also the threat's rule id).
    pub id: u32,
    /// Short name.
    pub name: String,
    /// What it detects.
    pub description: String,
    /// Threat category.
    pub category: String,
    /// Severity of its threats.
    pub severity: Severity,
    /// The file it came from (`builtin/...` or a user file).
    pub source: String,
    /// Whether an overflow bans the source.
    pub bans: bool,
    /// Overflows (alerts) seen by this process since it started.
    pub overflows: u64,
    /// Threats this scenario has raised that are in the store, over all time and
    /// every process (imports included); `null` when the store cannot be asked.
    pub stored_threats: Option<u64>,
}

/// Engine-wide state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScenariosStatus {
    /// Live buckets.
    pub buckets: usize,
    /// Their estimated memory.
    pub approx_bytes: usize,
    /// Every loaded scenario.
    pub scenarios: Vec<ScenarioView>,
}

impl Behaviour {
    /// Wraps an engine; with `state_file`, restores saved buckets from it (a missing,
    /// old or unreadable file starts empty, with a warning).
    pub fn new(mut engine: ScenarioEngine, state_file: Option<PathBuf>) -> Behaviour {
        if let Some(path) = &state_file {
            match std::fs::read(path) {
                Ok(bytes) => match Snapshot::from_json(&bytes).and_then(|s| engine.restore(s)) {
                    Ok(report) => tracing::info!(
                        message = "Behaviour buckets restored.",
                        restored = report.restored,
                        dropped = report.dropped
                    ),
                    Err(error) => tracing::warn!(
                        message = "Saved behaviour state not usable; starting empty.",
                        file = %path.display(),
                        %error
                    ),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(
                    message = "Cannot read saved behaviour state.",
                    file = %path.display(),
                    %error
                ),
            }
        }
        Behaviour {
            engine: Mutex::new(engine),
            state_file,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ScenarioEngine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves the buckets (write to a temporary file, then rename: a crash mid-write
    /// keeps the previous state).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let bytes = self.lock().snapshot().to_json();
        write_atomically(path, &bytes)
    }

    /// What is loaded and how much state it holds.
    pub fn status(&self) -> ScenariosStatus {
        let engine = self.lock();
        let stats = engine.stats();
        let scenarios = engine
            .overflows()
            .map(|(s, overflows)| ScenarioView {
                id: s.id,
                name: s.name.clone(),
                description: s.description.clone(),
                category: s.category.clone(),
                severity: s.severity,
                source: s.source.clone(),
                bans: s.decision.is_some(),
                overflows,
                stored_threats: None,
            })
            .collect();
        ScenariosStatus {
            buckets: stats.buckets,
            approx_bytes: stats.approx_bytes,
            scenarios,
        }
    }
}

impl Behaviour {
    /// Passes stored events (ascending ids) through the engine again, as the stage
    /// would have, to rebuild its buckets after a killed import
    /// ([`crate::resume::replay`]): an alert raised by an event that already has a
    /// scenario threat stored (`alerted`) was recorded before the kill and is dropped;
    /// any other is delivered as the stage delivers it. Returns the alerts delivered.
    pub(crate) fn replay<'e>(
        &self,
        events: impl Iterator<Item = (i64, &'e palisade_core::Event)>,
        alerted: &std::collections::HashSet<i64>,
        gate: &BanGate,
        threats: &ThreatRecorder,
    ) -> u64 {
        let mut alerts = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        {
            let mut engine = self.lock();
            for (id, event) in events {
                let before = alerts.len();
                engine.observe_into(event, Some(id), &mut alerts);
                sources.extend((before..alerts.len()).map(|_| event.source.clone()));
            }
        }
        let mut delivered = 0;
        for (alert, source) in alerts.into_iter().zip(sources) {
            if alert.event_id.is_some_and(|id| alerted.contains(&id)) {
                continue;
            }
            delivered += 1;
            deliver(alert, &source, gate, threats);
        }
        delivered
    }
}

/// Applies scenario bans: each alert with a decision bans its target for the
/// scenario's duration, counted from now. An alert whose ban would already have run
/// out in log time (an old log replayed) bans nothing. Store errors are retried a few
/// times, then logged and counted.
pub fn spawn_bans(
    decisions: Arc<crate::decisions::Decisions>,
    supervisor: &Supervisor,
) -> (mpsc::Sender<Alert>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Alert>(1000);
    let rx = SharedReceiver::new(rx);
    let task = supervisor.spawn("scenario-bans", move || {
        apply_bans(decisions.clone(), rx.clone())
    });
    (tx, task)
}

async fn apply_bans(decisions: Arc<crate::decisions::Decisions>, rx: SharedReceiver<Alert>) {
    let mut rx = rx.lock().await;
    {
        let failures = registry().counter(
            "palisade_scenario_ban_failures_total",
            "Scenario bans that could not be stored after retries.",
            &[],
            &[],
        );
        while let Some(alert) = rx.recv().await {
            let Some(decision) = &alert.decision else {
                continue;
            };
            if decision.until < palisade_core::Timestamp::now() {
                tracing::debug!(message = "Scenario ban already over in log time; skipped.", scenario = %alert.scenario, target = %decision.target);
                continue;
            }
            let duration = std::time::Duration::from_secs(decision.duration_secs);
            let mut attempt = 0;
            loop {
                match decisions
                    .ban(decision.target, duration, &alert.scenario, None)
                    .await
                {
                    Ok(outcome) => {
                        tracing::info!(message = "Scenario ban applied.", scenario = %alert.scenario, target = %decision.target, ?outcome);
                        break;
                    }
                    Err(error @ crate::decisions::DecisionError::Refused(_)) => {
                        bans_skipped("policy").inc();
                        tracing::warn!(message = "Scenario ban refused by the ban policy.", scenario = %alert.scenario, target = %decision.target, %error);
                        break;
                    }
                    Err(error) if attempt < 5 => {
                        attempt += 1;
                        tracing::warn!(message = "Cannot store a scenario ban yet; retrying.", %error);
                        tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                    }
                    Err(error) => {
                        failures.inc();
                        tracing::error!(message = "Scenario ban not applied.", scenario = %alert.scenario, target = %decision.target, %error);
                        break;
                    }
                }
            }
        }
    }
}

/// Saves the buckets every minute until shutdown, so a crash loses at most a minute of
/// state (a clean stop saves again when the stage ends).
pub async fn save_periodically(behaviour: Arc<Behaviour>, mut shutdown: palisade_core::Shutdown) {
    let failures = registry().counter(
        "palisade_behaviour_state_save_failures_total",
        "Failed saves of the behaviour buckets.",
        &[],
        &[],
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SAVE_EVERY) => {}
            _ = shutdown.recv() => return,
        }
        let b = behaviour.clone();
        match tokio::task::spawn_blocking(move || b.save()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                failures.inc();
                tracing::error!(message = "Cannot save behaviour state; will retry.", %error)
            }
            Err(error) => {
                failures.inc();
                tracing::error!(message = "Behaviour save task failed.", %error)
            }
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Starts the stage: alerts become threats; alerts with a decision also go to `bans`
/// (the decision stage), when there is one. Ends when the writer goes away.
pub fn spawn(
    behaviour: Arc<Behaviour>,
    threats: ThreatRecorder,
    gate: BanGate,
    supervisor: &Supervisor,
) -> (mpsc::Sender<StoredBatches>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<StoredBatches>(QUEUE);
    let rx = SharedReceiver::new(rx);
    let task = supervisor.spawn_blocking("behaviour", move || {
        let (behaviour, threats, gate, rx) =
            (behaviour.clone(), threats.clone(), gate.clone(), rx.clone());
        move || observe(&behaviour, &threats, &gate, &rx)
    });
    (tx, task)
}

/// What happens to the bans scenarios ask for.
#[derive(Clone)]
pub enum BanGate {
    /// The service: bans go to the decision stage when the source that overflowed the
    /// bucket may cause bans and the ban policy allows the target.
    Serve {
        /// The decision stage.
        bans: mpsc::Sender<Alert>,
        /// Sources whose events may cause bans.
        sources: BanSources,
        /// Protected addresses, widest ban.
        policy: BanPolicy,
    },
    /// A one-shot import: overflows are recorded as threats, no ban is made (an old
    /// log's attackers are not today's; `serve` bans).
    Import,
}

impl BanGate {
    /// Why an alert's ban will not be made, if it will not.
    fn refusal(&self, alert: &Alert, source: &str) -> Option<String> {
        let decision = alert.decision.as_ref()?;
        match self {
            BanGate::Import => Some("a one-shot import records threats but makes no bans".into()),
            BanGate::Serve { sources, .. } if !sources.allows(source) => Some(format!(
                "source '{source}' may not cause bans (see [decisions] ban_sources)"
            )),
            BanGate::Serve { policy, .. } => policy
                .check(&decision.target, DecisionOrigin::Scenario)
                .err()
                .map(|e| e.to_string()),
        }
    }
}

/// `palisade_scenario_bans_skipped_total{reason}`: scenario bans not made, by reason
/// (`import`, `source`, `policy`).
pub fn bans_skipped(reason: &str) -> Arc<palisade_core::metrics::Counter> {
    registry().counter(
        "palisade_scenario_bans_skipped_total",
        "Bans asked for by scenarios and not made, by reason (import, source, policy).",
        &["reason"],
        &[reason],
    )
}

/// The stage's loop: one run of the supervised task.
fn observe(
    behaviour: &Behaviour,
    threats: &ThreatRecorder,
    gate: &BanGate,
    rx: &SharedReceiver<StoredBatches>,
) {
    let mut rx = rx.blocking_lock();
    {
        let mut alerts = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        while let Some(stored) = rx.blocking_recv() {
            {
                let mut engine = behaviour.lock();
                for (id, event) in stored.events() {
                    let before = alerts.len();
                    engine.observe_into(event, Some(id), &mut alerts);
                    // The event that overflowed a bucket says which source caused it.
                    sources.extend((before..alerts.len()).map(|_| event.source.clone()));
                }
            }
            for (alert, source) in alerts.drain(..).zip(sources.drain(..)) {
                deliver(alert, &source, gate, threats);
            }
        }
        if let Err(error) = behaviour.save() {
            tracing::error!(message = "Cannot save behaviour state.", %error);
        }
        tracing::debug!(message = "Behaviour stage stopped.");
    }
}

/// What the stage does with one alert raised by an event of `source`: the ban it asks
/// for is refused (and counted) when the gate says so, the threat is recorded, and a
/// ban let through goes to the decision stage.
fn deliver(mut alert: Alert, source: &str, gate: &BanGate, threats: &ThreatRecorder) {
    let refusal = gate.refusal(&alert, source);
    if let Some(why) = &refusal {
        // The threat must not claim a ban that is not made.
        alert.decision = None;
        let reason = match gate {
            BanGate::Import => "import",
            BanGate::Serve { sources, .. } if !sources.allows(source) => "source",
            BanGate::Serve { .. } => "policy",
        };
        bans_skipped(reason).inc();
        if matches!(gate, BanGate::Import) {
            // An import's summary counts these; one line each would
            // interleave with its progress bar.
            tracing::debug!(message = "Scenario overflow.", scenario = %alert.scenario, key = %alert.key(), summary = %alert.summary(), ban = %format!("not made: {why}"));
        } else {
            tracing::info!(message = "Scenario overflow.", scenario = %alert.scenario, key = %alert.key(), summary = %alert.summary(), ban = %format!("not made: {why}"));
        }
    } else if matches!(gate, BanGate::Import) {
        tracing::debug!(message = "Scenario overflow.", scenario = %alert.scenario, key = %alert.key(), summary = %alert.summary());
    } else {
        tracing::info!(message = "Scenario overflow.", scenario = %alert.scenario, key = %alert.key(), summary = %alert.summary());
    }
    threats.record_blocking(alert.to_threat());
    if alert.decision.is_some()
        && let BanGate::Serve { bans, .. } = gate
        && bans.blocking_send(alert).is_err()
    {
        tracing::warn!(message = "The decision stage has stopped; ban not applied.");
    }
}
