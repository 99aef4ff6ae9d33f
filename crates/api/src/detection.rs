//! The detection engine as the API holds it: swappable (a change of paranoia or a rule
//! reload builds a new engine and replaces it) with the enforcement mode beside it.

use std::sync::RwLock;

use palisade_detect::{Engine, EngineConfig, RuleError, RuleSet};
use serde::{Deserialize, Serialize};

/// What a verdict over the threshold does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Answer 403.
    Block,
    /// Answer 200 and only report (`X-Palisade-Decision: detect`).
    Detect,
}

impl Mode {
    /// Reads `block` or `detect`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "block" => Some(Mode::Block),
            "detect" => Some(Mode::Detect),
            _ => None,
        }
    }
}

/// The run-time detection settings, as served and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DetectionConfig {
    /// block or detect.
    pub mode: Mode,
    /// 1 to 4.
    pub paranoia: u8,
    /// Anomaly score that blocks (≥ 1).
    pub threshold: u32,
}

/// The settings key the configuration is kept under across restarts.
pub const SETTING_KEY: &str = "detection.config";

/// The engine in use, its mode and its configuration.
pub struct Detection {
    engine: RwLock<Engine>,
    config: RwLock<DetectionConfig>,
}

impl Detection {
    /// An engine over the built-in rules (an error here is a bug in a shipped rule file).
    pub fn builtin(config: EngineConfig, mode: Mode) -> Result<Self, RuleError> {
        let engine = Engine::new(RuleSet::builtin()?, config);
        Ok(Detection {
            engine: RwLock::new(engine),
            config: RwLock::new(DetectionConfig {
                mode,
                paranoia: config.paranoia,
                threshold: config.threshold,
            }),
        })
    }

    /// The engine (a cheap clone: it is reference counted inside).
    pub fn engine(&self) -> Engine {
        self.engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.config().mode
    }

    /// The current configuration.
    pub fn config(&self) -> DetectionConfig {
        *self.config.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a new configuration: rebuilds the engine when paranoia or threshold
    /// change, then swaps it in (requests in flight finish on the old one).
    pub fn apply(&self, new: DetectionConfig) -> Result<(), RuleError> {
        let old = self.config();
        if (old.paranoia, old.threshold) != (new.paranoia, new.threshold) {
            let engine = Engine::new(
                RuleSet::builtin()?,
                EngineConfig {
                    paranoia: new.paranoia,
                    threshold: new.threshold,
                },
            );
            *self.engine.write().unwrap_or_else(|p| p.into_inner()) = engine;
        }
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }
}
