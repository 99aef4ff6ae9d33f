//! The detection engine as the API holds it: swappable (a change of paranoia, a
//! threshold or a rule file builds a new engine and replaces it; requests in flight
//! finish on the old one) with the enforcement mode beside it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use palisade_core::Shutdown;
use palisade_core::config::ConfigProblem;
use palisade_store::SharedStore;

use palisade_core::metrics::registry;
pub use palisade_core::verdict::Mode;
use palisade_detect::seclang::{Program, SeclangError};
use palisade_detect::{Engine, EngineConfig, RuleError, RuleSet};
use serde::{Deserialize, Serialize};

/// The detection settings that can change at run time, as served and stored
/// (`/api/v1/detection/config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DetectionConfig)]
pub struct DetectionTuning {
    /// block or detect.
    pub mode: Mode,
    /// 1 to 4.
    pub paranoia: u8,
    /// Anomaly score that blocks (≥ 1).
    pub threshold: u32,
}

/// `[detection]`: how the signature engine starts. Deserializes itself from the
/// configuration (`mode`, `paranoia`, `threshold`, `rules_dir`, `reload`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "DetectionSection")]
pub struct DetectionConfig {
    /// Block or detect only.
    pub mode: Mode,
    /// Paranoia level and threshold.
    pub engine: EngineConfig,
    /// Extra rule files (`*.toml`) on top of the built-in rules.
    pub rules_dir: Option<PathBuf>,
    /// How often `rules_dir` is checked for changes (`None`: never).
    pub reload_every: Option<Duration>,
    /// OWASP CRS / SecLang rule files (`crs_dir`), loaded as they are.
    pub crs_dir: Option<PathBuf>,
    /// Whether CRS rules add to the built-in rules or replace them (`crs_mode`).
    pub crs_mode: CrsMode,
}

/// `crs_mode`: how CRS rule files combine with the built-in rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CrsMode {
    /// Both run; a request is blocked when either would block it.
    #[default]
    Add,
    /// CRS rules only (the built-in rules and `rules_dir` are not used).
    Replace,
}

/// `[detection]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectionSection {
    mode: Option<String>,
    paranoia: Option<u8>,
    threshold: Option<u32>,
    rules_dir: Option<PathBuf>,
    /// How often `rules_dir` is checked: a duration, or 0 for never.
    #[serde(alias = "reload_secs")]
    reload: Option<toml_like::DurationOrOff>,
    crs_dir: Option<PathBuf>,
    crs_mode: Option<String>,
}

/// A duration key where `0` switches the feature off.
mod toml_like {
    use palisade_core::duration::Span;
    use serde::Deserialize;

    /// `0` (off) or a duration.
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum DurationOrOff {
        /// `0`.
        Off(u8),
        /// A duration.
        On(Span),
    }
}

impl TryFrom<DetectionSection> for DetectionConfig {
    type Error = ConfigProblem;

    fn try_from(f: DetectionSection) -> Result<Self, Self::Error> {
        let mode = match f.mode.as_deref() {
            None => Mode::Block,
            Some(m) => Mode::parse(m).ok_or_else(|| {
                ConfigProblem::new("mode", format!("'{m}' must be block or detect"))
            })?,
        };
        let paranoia = f.paranoia.unwrap_or(1);
        if !(1..=4).contains(&paranoia) {
            return Err(ConfigProblem::new("paranoia", "must be 1, 2, 3 or 4"));
        }
        let threshold = f.threshold.unwrap_or(5);
        if threshold == 0 {
            return Err(ConfigProblem::new("threshold", "must be at least 1"));
        }
        let reload_every = match f.reload {
            Some(toml_like::DurationOrOff::Off(0)) => None,
            Some(toml_like::DurationOrOff::Off(_)) => {
                return Err(ConfigProblem::new(
                    "reload",
                    "give a duration such as \"2s\", or 0 for never",
                ));
            }
            Some(toml_like::DurationOrOff::On(span)) => Some(span.to_std()),
            None => Some(Duration::from_secs(2)),
        };
        let crs_mode = match f.crs_mode.as_deref() {
            None | Some("add") => CrsMode::Add,
            Some("replace") => CrsMode::Replace,
            Some(m) => {
                return Err(ConfigProblem::new(
                    "crs_mode",
                    format!("'{m}' must be add or replace"),
                ));
            }
        };
        Ok(DetectionConfig {
            crs_dir: f.crs_dir,
            crs_mode,
            mode,
            engine: EngineConfig {
                paranoia,
                threshold,
            },
            reload_every: f.rules_dir.as_ref().and(reload_every),
            rules_dir: f.rules_dir,
        })
    }
}

impl palisade_core::config::Validate for DetectionConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = match RuleSet::load(self.rules_dir.as_deref()) {
            Ok(_) => Vec::new(),
            Err(error) => vec![ConfigProblem::new("rules_dir", error)],
        };
        if let Some(Err(error)) = self.crs_dir.as_deref().map(Program::load_dir) {
            problems.push(ConfigProblem::new("crs_dir", error));
        }
        problems
    }
}

/// The settings key the configuration is kept under across restarts.
pub const SETTING_KEY: &str = "detection.config";

/// Where the rules in use came from, for the API and for operators chasing a rule file
/// that did not load.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RulesStatus {
    /// Rules in the loaded set (all paranoia levels).
    pub rules: usize,
    /// Rules active at the current paranoia level.
    pub active: usize,
    /// Exclusions in the loaded set.
    pub exclusions: usize,
    /// The user rule directory, if one is configured.
    pub directory: Option<String>,
    /// The last reload's error; the previous rules stay in force while it is set.
    pub error: Option<String>,
    /// The OWASP CRS rule files, when `crs_dir` is set.
    pub crs: Option<CrsStatus>,
}

/// What the CRS rule files loaded, and what they could not (those rules do not run).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CrsStatus {
    /// `crs_dir`.
    pub directory: String,
    /// add or replace.
    pub mode: CrsMode,
    /// Files read.
    pub files: usize,
    /// Request-phase rules compiled and running.
    pub rules_loaded: usize,
    /// Rules removed by `SecRuleRemove*` in the exclusion files.
    pub removed: usize,
    /// Rules not loaded, by reason (`regex`: not linear-time compilable; `operator`,
    /// `transformation`, `variable`: not implemented; `response_phase`: Palisade
    /// inspects requests only).
    pub skipped: std::collections::BTreeMap<String, usize>,
    /// Ids of the skipped request-phase rules.
    pub skipped_ids: Vec<u32>,
    /// Directives without effect here, with counts.
    pub unsupported_directives: std::collections::BTreeMap<String, usize>,
}

/// The loaded CRS program and how it combines with the built-in rules.
#[derive(Clone)]
struct Crs {
    dir: PathBuf,
    mode: CrsMode,
    program: Arc<Program>,
}

impl Crs {
    fn load(dir: &Path, mode: CrsMode) -> Result<Crs, SeclangError> {
        let program = Program::load_dir(dir)?;
        let report = program.report();
        let skipped: Vec<String> = report
            .skipped
            .iter()
            .filter(|s| s.reason.kind() != "response_phase")
            .map(|s| format!("{} ({})", s.id, s.reason))
            .collect();
        tracing::warn!(
            message = "OWASP CRS rule files loaded; rules that cannot run here are skipped.",
            dir = %dir.display(),
            summary = %report.summary(),
            skipped = %skipped.join("; "),
        );
        Ok(Crs {
            dir: dir.to_path_buf(),
            mode,
            program: Arc::new(program),
        })
    }

    fn status(&self) -> CrsStatus {
        let r = self.program.report();
        CrsStatus {
            directory: self.dir.display().to_string(),
            mode: self.mode,
            files: r.files.len(),
            rules_loaded: r.rules_loaded,
            removed: r.removed,
            skipped: r
                .skipped_by_kind()
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            skipped_ids: r
                .skipped
                .iter()
                .filter(|s| s.reason.kind() != "response_phase")
                .map(|s| s.id)
                .collect(),
            unsupported_directives: r.unsupported_directives.clone(),
        }
    }
}

fn build_engine(rules: &RuleSet, config: EngineConfig, crs: Option<&Crs>) -> Engine {
    match crs {
        None => Engine::new(rules.clone(), config),
        Some(c) => {
            let rules = match c.mode {
                CrsMode::Add => rules.clone(),
                CrsMode::Replace => RuleSet::default(),
            };
            Engine::with_crs(rules, config, Some(c.program.clone()))
        }
    }
}

struct Loaded {
    rules: Arc<RuleSet>,
    engine: Engine,
    config: DetectionTuning,
    error: Option<String>,
}

/// The engine in use, its mode, its configuration and its rule source.
pub struct Detection {
    rules_dir: Option<PathBuf>,
    crs: Option<Crs>,
    loaded: RwLock<Loaded>,
}

/// Why the detection engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum DetectionError {
    /// A TOML rule file is broken.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// The CRS directory cannot be read.
    #[error("crs_dir: {0}")]
    Crs(#[from] SeclangError),
}

impl Detection {
    /// An engine over the built-in rules (an error here is a bug in a shipped rule file).
    pub fn builtin(config: EngineConfig, mode: Mode) -> Result<Self, RuleError> {
        Detection::new(config, mode, None)
    }

    /// An engine over the built-in rules plus every `*.toml` in `rules_dir`. A broken
    /// user file fails here, at start-up, where the operator is looking.
    pub fn new(
        config: EngineConfig,
        mode: Mode,
        rules_dir: Option<PathBuf>,
    ) -> Result<Self, RuleError> {
        let rules = Arc::new(RuleSet::load(rules_dir.as_deref())?);
        let engine = Engine::new((*rules).clone(), config);
        Ok(Detection {
            rules_dir,
            crs: None,
            loaded: RwLock::new(Loaded {
                rules,
                engine,
                config: DetectionTuning {
                    mode,
                    paranoia: config.paranoia,
                    threshold: config.threshold,
                },
                error: None,
            }),
        })
    }

    /// Like [`Detection::new`], plus OWASP CRS rule files from `crs_dir` (loaded once;
    /// what they cannot run is logged once and shown in [`Detection::rules_status`]).
    pub fn with_crs(
        config: EngineConfig,
        mode: Mode,
        rules_dir: Option<PathBuf>,
        crs_dir: Option<&Path>,
        crs_mode: CrsMode,
    ) -> Result<Self, DetectionError> {
        let mut d = Detection::new(config, mode, rules_dir)?;
        if let Some(dir) = crs_dir {
            let crs = Crs::load(dir, crs_mode)?;
            let mut l = d.write();
            l.engine = build_engine(&l.rules, config, Some(&crs));
            drop(l);
            d.crs = Some(crs);
        }
        Ok(d)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Loaded> {
        self.loaded.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The engine (a cheap clone: it is reference counted inside).
    pub fn engine(&self) -> Engine {
        self.read().engine.clone()
    }

    /// The engine and the mode in force, read under one lock: everything one decision
    /// needs, consistent with each other.
    pub fn current(&self) -> (Engine, Mode) {
        let l = self.read();
        (l.engine.clone(), l.config.mode)
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.read().config.mode
    }

    /// The current configuration.
    pub fn config(&self) -> DetectionTuning {
        self.read().config
    }

    /// The user rule directory, if any.
    pub fn rules_dir(&self) -> Option<&Path> {
        self.rules_dir.as_deref()
    }

    /// What is loaded.
    pub fn rules_status(&self) -> RulesStatus {
        let l = self.read();
        RulesStatus {
            rules: l.rules.rules.len(),
            active: l.engine.active_rules(),
            exclusions: l.rules.exclusions.len(),
            directory: self.rules_dir.as_ref().map(|d| d.display().to_string()),
            error: l.error.clone(),
            crs: self.crs.as_ref().map(Crs::status),
        }
    }

    /// Applies a new configuration: rebuilds the engine when paranoia or threshold
    /// change, then swaps it in.
    pub fn apply(&self, new: DetectionTuning) -> Result<(), RuleError> {
        let (rules, old) = {
            let l = self.read();
            (l.rules.clone(), l.config)
        };
        let engine = ((old.paranoia, old.threshold) != (new.paranoia, new.threshold))
            .then(|| build_engine(&rules, engine_config(new), self.crs.as_ref()));
        let mut l = self.write();
        if let Some(engine) = engine {
            l.engine = engine;
        }
        l.config = new;
        Ok(())
    }

    /// Applies the run-time settings saved in the store (`PUT /api/v1/detection/config`
    /// keeps them there), if any were saved.
    pub async fn restore(&self, store: &SharedStore) -> Result<(), String> {
        let stored = store
            .setting(SETTING_KEY)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(text) = stored {
            let config: DetectionTuning = serde_json::from_str(&text)
                .map_err(|e| format!("stored detection config is invalid: {e}"))?;
            self.apply(config).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Re-reads the rule directory and swaps in a new engine. On error the rules in
    /// force stay (a half-edited file must not disarm the WAF) and the error is kept
    /// for [`Detection::rules_status`].
    pub fn reload(&self) -> Result<RulesStatus, RuleError> {
        let outcome = RuleSet::load(self.rules_dir.as_deref());
        let label = if outcome.is_ok() { "ok" } else { "error" };
        registry()
            .counter(
                "palisade_rule_reloads_total",
                "Rule reloads, by outcome.",
                &["outcome"],
                &[label],
            )
            .inc();
        match outcome {
            Ok(rules) => {
                let config = self.config();
                let engine = build_engine(&rules, engine_config(config), self.crs.as_ref());
                let mut l = self.write();
                l.rules = Arc::new(rules);
                l.engine = engine;
                l.error = None;
                drop(l);
                Ok(self.rules_status())
            }
            Err(error) => {
                self.write().error = Some(error.to_string());
                Err(error)
            }
        }
    }
}

/// Reloads the rule directory when its files change, until shutdown. A broken edit
/// keeps the rules in force and is logged (and shown by `GET /api/v1/detection/rules`)
/// until fixed. Each reload is one `rules.reloaded` activity in the feed (stored, and
/// queued for the live `activities` topic), as a reload asked through the API is.
pub async fn watch_rules(
    detection: Arc<Detection>,
    every: Duration,
    feed: Option<(SharedStore, Arc<palisade_live::Bus>)>,
    mut shutdown: Shutdown,
) {
    let Some(dir) = detection.rules_dir().map(|d| d.to_path_buf()) else {
        return;
    };
    let mut seen = palisade_core::definitions::toml_fingerprint(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.recv() => return,
        }
        let dir2 = dir.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || {
            palisade_core::definitions::toml_fingerprint(&dir2)
        })
        .await
        else {
            continue;
        };
        if now == seen {
            continue;
        }
        seen = now;
        let d = detection.clone();
        let (summary, ok) = match tokio::task::spawn_blocking(move || d.reload()).await {
            Ok(Ok(status)) => {
                tracing::info!(message = "Rules reloaded.", rules = status.rules, active = status.active, dir = %dir.display());
                (
                    format!(
                        "Detection rules reloaded after a change in {} ({} rules)",
                        dir.display(),
                        status.rules
                    ),
                    true,
                )
            }
            Ok(Err(error)) => {
                tracing::error!(message = "Rule reload failed; the previous rules stay in force.", %error);
                (
                    format!(
                        "Detection rules in {} changed but do not load (the previous rules stay in force): {error}",
                        dir.display()
                    ),
                    false,
                )
            }
            Err(error) => {
                tracing::error!(message = "Rule reload task failed.", %error);
                continue;
            }
        };
        if let Some((store, live)) = &feed {
            let activity = palisade_store::NewActivity {
                at: palisade_core::Timestamp::now(),
                kind: "rules.reloaded".into(),
                actor: None,
                summary,
                detail: serde_json::json!({ "ok": ok, "trigger": "file change" }),
            };
            match store.insert_activity(&activity).await {
                Ok(stored) => live.publish_later(palisade_live::Topic::Activities, &stored),
                Err(error) => {
                    tracing::warn!(message = "Cannot record an activity.", kind = "rules.reloaded", %error)
                }
            }
        }
    }
}

fn engine_config(c: DetectionTuning) -> EngineConfig {
    EngineConfig {
        paranoia: c.paranoia,
        threshold: c.threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_detect::HttpRequest;

    fn get(uri: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![("host".into(), "x".into())],
            body: Vec::new(),
            client_ip: None,
        }
    }

    const CUSTOM: &str = r#"
[[rule]]
id = 990001
name = "Internal admin tool"
category = "protocol"
severity = "critical"
paranoia = 1
targets = ["path"]
transforms = ["lowercase"]
match = { contains_any = ["/secret-admin"] }
"#;

    #[test]
    fn reload_picks_up_new_files_and_keeps_old_rules_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = Detection::new(
            EngineConfig::default(),
            Mode::Block,
            Some(dir.path().into()),
        )
        .unwrap();
        assert!(!d.engine().inspect(&get("/secret-admin")).blocked);
        let before = d.rules_status().rules;
        let before_print = palisade_core::definitions::toml_fingerprint(dir.path());

        std::fs::write(dir.path().join("site.toml"), CUSTOM).unwrap();
        assert_ne!(
            palisade_core::definitions::toml_fingerprint(dir.path()),
            before_print
        );
        let status = d.reload().unwrap();
        assert_eq!(status.rules, before + 1);
        assert!(d.engine().inspect(&get("/secret-admin")).blocked);

        std::fs::write(dir.path().join("zz-broken.toml"), "[[rule]]\nid = \"x\"").unwrap();
        assert!(d.reload().is_err());
        assert!(
            d.engine().inspect(&get("/secret-admin")).blocked,
            "old rules stay in force"
        );
        assert!(d.rules_status().error.unwrap().contains("zz-broken.toml"));

        std::fs::remove_file(dir.path().join("zz-broken.toml")).unwrap();
        d.reload().unwrap();
        assert!(d.rules_status().error.is_none());
    }

    #[test]
    fn crs_settings_are_checked_and_the_crs_status_is_reported() {
        use palisade_core::config::Validate;
        let parse = |t: serde_json::Value| serde_json::from_value::<DetectionConfig>(t);
        assert!(
            parse(serde_json::json!({"crs_mode": "both"}))
                .unwrap_err()
                .to_string()
                .contains("crs_mode")
        );
        let mut c = parse(serde_json::json!({"crs_dir": "/nonexistent/crs"})).unwrap();
        let problems = c.finish();
        assert!(
            problems.iter().any(|p| p.to_string().contains("crs_dir")),
            "{problems:?}"
        );

        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../detect/tests/fixtures/crs-3.3.4");
        let c = parse(serde_json::json!({"crs_dir": fixture, "crs_mode": "replace"})).unwrap();
        assert!(c.clone().finish().is_empty());
        let d =
            Detection::with_crs(c.engine, c.mode, None, c.crs_dir.as_deref(), c.crs_mode).unwrap();
        let status = d.rules_status().crs.unwrap();
        assert_eq!(status.mode, CrsMode::Replace);
        assert_eq!(status.skipped_ids, vec![901318, 901410]);
        let attack = get("/?id=1%27%20or%20%271%27%3D%271");
        let v = d.engine().inspect(&attack);
        assert!(
            v.blocked && v.findings.iter().all(|f| !f.tags.is_empty()),
            "{v:?}"
        );
        // A paranoia change rebuilds the engine with the same CRS program.
        d.apply(DetectionTuning {
            mode: Mode::Block,
            paranoia: 2,
            threshold: 5,
        })
        .unwrap();
        assert!(d.engine().inspect(&attack).blocked);
        assert!(d.engine().crs_report().is_some());
    }

    #[test]
    fn config_changes_rebuild_with_the_loaded_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.toml"), CUSTOM).unwrap();
        let d = Detection::new(
            EngineConfig::default(),
            Mode::Block,
            Some(dir.path().into()),
        )
        .unwrap();
        d.apply(DetectionTuning {
            mode: Mode::Detect,
            paranoia: 2,
            threshold: 5,
        })
        .unwrap();
        assert_eq!(d.mode(), Mode::Detect);
        assert!(d.engine().inspect(&get("/secret-admin")).blocked);
    }
}
