//! The loaded model, swappable at run time (`POST /api/v1/models/reload`), and its
//! status for health, the API and the posture check.
//!
//! Loading never fails the process: a missing or damaged file leaves no model in
//! force at start (the rules decide alone, and the status says why); a failed reload
//! keeps the model already in force and reports the error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use palisade_core::Timestamp;
use serde::Serialize;

use crate::file::{Model, ModelError};

/// The default model, trained by `palisade train` (command in `crates/models/README.md`).
pub const BUILTIN: &[u8] = include_bytes!("../default/http.pmodel");

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The default model built into the binary.
    Builtin,
    /// A file written by `palisade train`.
    File(PathBuf),
    /// Models are turned off in the configuration.
    Disabled,
}

impl ModelSource {
    /// How health and the API name the source.
    pub fn describe(&self) -> String {
        match self {
            ModelSource::Builtin => "builtin".to_owned(),
            ModelSource::File(p) => p.display().to_string(),
            ModelSource::Disabled => "disabled".to_owned(),
        }
    }

    fn read<M: SlotModel>(&self) -> Result<M, ModelError> {
        match self {
            ModelSource::Builtin => M::builtin(),
            ModelSource::File(p) => M::load(p),
            ModelSource::Disabled => Err(ModelError::Corrupt(M::DISABLED.into())),
        }
    }

    /// The source `[models]` names: a path, the built-in model, or off.
    pub(crate) fn configured(path: &Option<PathBuf>, enabled: bool) -> ModelSource {
        match (path, enabled) {
            (_, false) => ModelSource::Disabled,
            (Some(p), true) => ModelSource::File(p.clone()),
            (None, true) => ModelSource::Builtin,
        }
    }
}

/// A kind of model a [`Slot`] holds: the request model and the flow model are loaded,
/// swapped and reported the same way, and differ only in what this names.
pub trait SlotModel: Send + Sync + Sized + 'static {
    /// Its name in health and `GET /api/v1/models` (`http`, `flow`).
    const NAME: &'static str;
    /// Why nothing loads while it is turned off.
    const DISABLED: &'static str;
    /// What decides while no model is in force (said in the log when a load fails).
    const WITHOUT: &'static str;
    /// The model built into the binary.
    fn builtin() -> Result<Self, ModelError>;
    /// A model file.
    fn load(path: &Path) -> Result<Self, ModelError>;
    /// Its version.
    fn version(&self) -> &str;
    /// Whether it was trained on real labelled traffic.
    fn is_real(&self) -> bool;
    /// Its metadata as health shows it.
    fn metadata_json(&self) -> Option<serde_json::Value>;
}

impl SlotModel for Model {
    const NAME: &'static str = "http";
    const DISABLED: &'static str = "models are disabled";
    const WITHOUT: &'static str = "rules decide alone";
    fn builtin() -> Result<Model, ModelError> {
        Model::from_bytes(BUILTIN)
    }
    fn load(path: &Path) -> Result<Model, ModelError> {
        Model::load(path)
    }
    fn version(&self) -> &str {
        &self.metadata.model_version
    }
    fn is_real(&self) -> bool {
        self.metadata.is_real
    }
    fn metadata_json(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.metadata).ok()
    }
}

/// What health, `GET /api/v1/models` and `palisade models list` show about a model.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelStatus {
    /// The model's name (`http`: the request threat detector and attack classifier).
    pub name: String,
    /// Where it is loaded from (`builtin`, a path, `disabled`).
    pub source: String,
    /// Whether a model is in force.
    pub loaded: bool,
    /// The version in force.
    pub version: Option<String>,
    /// Whether the model in force was trained on real labelled traffic.
    pub is_real: Option<bool>,
    /// When the model in force was loaded.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub loaded_at: Option<Timestamp>,
    /// The model's metadata (training data, features, held-out figures).
    /// (JSON: the request model's and the flow model's metadata differ in shape.)
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Why the last load failed (the rules decide alone when nothing is loaded).
    pub error: Option<String>,
    /// For the per-endpoint baselines (name `baselines`): what they have learnt and
    /// when they were last saved; absent for a request model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baselines: Option<crate::baseline::BaselineStatus>,
}

/// The request model's slot.
pub type ModelSlot = Slot<Model>;

/// The model in force, swapped whole on reload.
#[derive(Debug)]
pub struct Slot<M> {
    source: ModelSource,
    current: ArcSwapOption<M>,
    status: Mutex<ModelStatus>,
}

impl<M: SlotModel> Slot<M> {
    /// A slot for `source`, loaded at once (errors are kept in the status).
    pub fn new(source: ModelSource) -> Slot<M> {
        let slot = Slot {
            status: Mutex::new(ModelStatus {
                name: M::NAME.to_owned(),
                source: source.describe(),
                loaded: false,
                version: None,
                is_real: None,
                loaded_at: None,
                metadata: None,
                error: None,
                baselines: None,
            }),
            source,
            current: ArcSwapOption::empty(),
        };
        if slot.source != ModelSource::Disabled {
            let _ = slot.reload();
        }
        slot
    }

    /// The model in force, if any.
    pub fn current(&self) -> Option<Arc<M>> {
        self.current.load_full()
    }

    /// Reads the source again; on success the new model is in force, on failure the
    /// previous one stays and the error is reported.
    pub fn reload(&self) -> Result<ModelStatus, ModelError> {
        let result = self.source.read::<M>();
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(model) => {
                tracing::info!(
                    model = M::NAME,
                    source = %st.source,
                    version = %model.version(),
                    is_real = model.is_real(),
                    "model loaded"
                );
                st.loaded = true;
                st.version = Some(model.version().to_owned());
                st.is_real = Some(model.is_real());
                st.loaded_at = Some(Timestamp::now());
                st.metadata = model.metadata_json();
                st.error = None;
                self.current.store(Some(Arc::new(model)));
                Ok(st.clone())
            }
            Err(e) => {
                tracing::warn!(model = M::NAME, source = %st.source, error = %e, "model not loaded; {}", M::WITHOUT);
                st.error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The status now.
    pub fn status(&self) -> ModelStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Slot<Model> {
    /// A slot from `[models]` (`enabled`, `path`).
    pub fn from_config(c: &crate::config::ModelsConfig) -> ModelSlot {
        Slot::new(ModelSource::configured(&c.path, c.enabled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_degrades_and_a_good_file_loads_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pmodel");
        let slot = ModelSlot::new(ModelSource::File(path.clone()));
        assert!(slot.current().is_none());
        let st = slot.status();
        assert!(!st.loaded && st.error.is_some());
        crate::file::tests::toy().save(&path).unwrap();
        let st = slot.reload().unwrap();
        assert!(st.loaded && st.error.is_none());
        assert_eq!(st.version.as_deref(), Some("test"));
        // A damaged file on reload keeps the model in force and reports it.
        std::fs::write(&path, b"PALISADE-MODEL\ngarbage").unwrap();
        assert!(slot.reload().is_err());
        assert!(slot.current().is_some());
        let st = slot.status();
        assert!(st.loaded && st.error.is_some());
    }

    #[test]
    fn disabled_loads_nothing() {
        let slot = ModelSlot::from_config(&crate::config::ModelsConfig {
            enabled: false,
            ..Default::default()
        });
        assert!(slot.current().is_none());
        assert!(slot.status().error.is_none());
        assert_eq!(slot.status().source, "disabled");
    }
}
