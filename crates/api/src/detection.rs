//! The detection engine as the API holds it: swappable (a rule reload builds a new
//! engine and replaces it) with the enforcement mode beside it.

use std::sync::RwLock;

use palisade_detect::{Engine, EngineConfig, RuleSet};

/// What a verdict over the threshold does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The engine in use and its mode.
pub struct Detection {
    engine: RwLock<Engine>,
    mode: RwLock<Mode>,
}

impl Detection {
    /// An engine over the built-in rules (an error here is a bug in a shipped rule file).
    pub fn builtin(config: EngineConfig, mode: Mode) -> Result<Self, palisade_detect::RuleError> {
        Ok(Detection::new(
            Engine::new(RuleSet::builtin()?, config),
            mode,
        ))
    }

    /// Holds a built engine.
    pub fn new(engine: Engine, mode: Mode) -> Self {
        Detection {
            engine: RwLock::new(engine),
            mode: RwLock::new(mode),
        }
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
        *self.mode.read().unwrap_or_else(|p| p.into_inner())
    }
}
