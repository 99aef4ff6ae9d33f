//! The rules the stage and the notifier use, read from the store and kept for a few
//! seconds (an API change takes effect within [`REFRESH`]); the built-in rules are
//! created once, the first time the store answers, so deleting them sticks.

use std::time::{Duration, Instant};

use palisade_store::{SharedStore, SpecInput, SpecTable, StoreError};

use crate::rule::{RuleSpec, builtin_rules};

/// How long a read of the rules is used.
pub const REFRESH: Duration = Duration::from_secs(2);
/// The setting that records that the built-in rules were created.
const SEEDED: &str = "alerts.builtin_rules_created";

/// A rule ready to match.
#[derive(Debug, Clone)]
pub struct LoadedRule {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its spec.
    pub spec: RuleSpec,
}

/// The cached enabled rules.
#[derive(Debug, Default)]
pub struct RuleCache {
    rules: Vec<LoadedRule>,
    loaded: Option<Instant>,
    seed: bool,
    seeded: bool,
}

impl RuleCache {
    /// A cache that creates the built-in rules when `seed` is set.
    pub fn new(seed: bool) -> RuleCache {
        RuleCache {
            seed,
            ..RuleCache::default()
        }
    }

    /// The enabled rules, read again when older than [`REFRESH`]; on a store error the
    /// previous read is kept (and the error logged).
    pub async fn get(&mut self, store: &SharedStore) -> &[LoadedRule] {
        if self.loaded.is_none_or(|at| at.elapsed() >= REFRESH) {
            match self.load(store).await {
                Ok(rules) => {
                    self.rules = rules;
                    self.loaded = Some(Instant::now());
                }
                Err(error) => {
                    tracing::warn!(message = "Cannot read the alert rules; using the last ones read.", %error);
                }
            }
        }
        &self.rules
    }

    async fn load(&mut self, store: &SharedStore) -> Result<Vec<LoadedRule>, StoreError> {
        if self.seed && !self.seeded {
            seed_builtin(store).await?;
            self.seeded = true;
        }
        let mut rules = Vec::new();
        for record in store.list_specs(SpecTable::Rules).await? {
            if !record.input.enabled {
                continue;
            }
            match serde_json::from_value::<RuleSpec>(record.input.spec) {
                Ok(spec) => rules.push(LoadedRule {
                    id: record.id,
                    name: record.input.name,
                    spec,
                }),
                Err(error) => tracing::warn!(
                    message = "Skipping an alert rule whose stored spec is unreadable.",
                    rule = record.id,
                    %error
                ),
            }
        }
        Ok(rules)
    }
}

/// Creates the built-in rules unless that was done before (in this store's life).
pub async fn seed_builtin(store: &SharedStore) -> Result<(), StoreError> {
    if store.setting(SEEDED).await?.is_some() {
        return Ok(());
    }
    let existing = store.list_specs(SpecTable::Rules).await?;
    for (name, spec) in builtin_rules() {
        if existing.iter().any(|r| r.input.name == name) {
            continue;
        }
        let input = SpecInput {
            name,
            kind: "builtin".into(),
            enabled: true,
            spec: serde_json::to_value(&spec).unwrap_or_default(),
        };
        match store.insert_spec(SpecTable::Rules, &input).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    store.put_setting(SEEDED, "1").await?;
    tracing::info!(message = "Created the built-in alert rules.");
    Ok(())
}
