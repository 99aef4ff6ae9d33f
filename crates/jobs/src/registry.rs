//! The one place kinds are registered: by name, with their configured limits. The API
//! validates submissions here, the worker pool looks kinds up here, the CLI types its
//! `--param` values from the schemas here.

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_core::job::{NewJob, NewSchedule, ScheduleOrigin};
use palisade_core::security::Role;
use serde_json::Value;

use crate::config::{JobConfig, KindOverrides, RETENTION_SCHEDULE};
use crate::kind::{KindLimits, SharedKind};
use crate::kinds;
use crate::params::ParamError;
use crate::schedule::{CronSchedule, ScheduleError};

/// Why a job or a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// No kind has that name.
    #[error("unknown job kind '{0}'")]
    UnknownKind(String),
    /// A parameter was refused.
    #[error("parameter {0}")]
    Param(#[from] ParamError),
    /// The caller's role is below what the kind (or command) requires.
    #[error("this job needs the {0} role")]
    Forbidden(&'static str),
    /// The schedule's cron expression or time zone is unusable.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// Kinds by name.
#[derive(Clone, Default)]
pub struct JobRegistry {
    kinds: BTreeMap<String, SharedKind>,
    overrides: BTreeMap<String, KindOverrides>,
}

/// A job checked and ready to enqueue.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The job.
    pub job: NewJob,
    /// Its limits.
    pub limits: KindLimits,
}

impl JobRegistry {
    /// The built-in kinds with the configured limits.
    pub fn builtin(config: &JobConfig) -> JobRegistry {
        let mut registry = JobRegistry {
            kinds: BTreeMap::new(),
            overrides: config.kinds.clone(),
        };
        for kind in kinds::builtin(config) {
            registry.kinds.insert(kind.name().to_owned(), kind);
        }
        registry
    }

    /// Adds a kind (a later one with the same name replaces the earlier).
    pub fn register(&mut self, kind: SharedKind) {
        self.kinds.insert(kind.name().to_owned(), kind);
    }

    /// Problems with the configuration that only the registered kinds can tell:
    /// limits or schedules for unknown kinds, schedule parameters a kind refuses.
    pub fn check(&self, config: &JobConfig) -> Vec<String> {
        let mut problems = Vec::new();
        for name in config.kinds.keys() {
            if !self.kinds.contains_key(name) {
                problems.push(format!(
                    "jobs.kinds.{name}: there is no job kind '{name}' (kinds: {})",
                    self.names().join(", ")
                ));
            }
        }
        for (i, s) in config.schedules.iter().enumerate() {
            match self.kinds.get(&s.kind) {
                None => problems.push(format!(
                    "jobs.schedules[{i}].kind: there is no job kind '{}' (kinds: {})",
                    s.kind,
                    self.names().join(", ")
                )),
                Some(kind) => {
                    let params = s.params.clone().unwrap_or(Value::Null);
                    if let Err(e) = kind.validate(&params) {
                        problems.push(format!("jobs.schedules[{i}].params.{e}"));
                    }
                }
            }
        }
        problems
    }

    /// Every kind's name.
    pub fn names(&self) -> Vec<String> {
        self.kinds.keys().cloned().collect()
    }

    /// Every kind, by name.
    pub fn kinds(&self) -> impl Iterator<Item = &SharedKind> {
        self.kinds.values()
    }

    /// One kind.
    pub fn get(&self, name: &str) -> Option<&SharedKind> {
        self.kinds.get(name)
    }

    /// A kind's configured limits (its defaults under `[jobs.kinds.NAME]`).
    pub fn configured_limits(&self, kind: &SharedKind) -> KindLimits {
        let base = kind.default_limits();
        match self.overrides.get(kind.name()) {
            Some(o) => o.apply(base),
            None => base,
        }
    }

    /// The limits of one job.
    pub fn limits(&self, kind: &SharedKind, params: &Value) -> KindLimits {
        kind.limits_for(params, self.configured_limits(kind))
    }

    /// Checks a submission (kind, parameters, the caller's role) and builds the job.
    pub fn prepare(
        &self,
        kind: &str,
        params: &Value,
        created_by: &str,
        role: Role,
    ) -> Result<Prepared, SubmitError> {
        let k = self
            .kinds
            .get(kind)
            .ok_or_else(|| SubmitError::UnknownKind(kind.to_owned()))?;
        let params = k.validate(params)?;
        let needed = k.required_role(&params);
        if role < needed {
            return Err(SubmitError::Forbidden(needed.as_str()));
        }
        let limits = self.limits(k, &params);
        Ok(Prepared {
            job: NewJob {
                kind: kind.to_owned(),
                params,
                max_attempts: limits.max_attempts.max(1),
                created_by: created_by.to_owned(),
                schedule_id: None,
                run_after: Timestamp::now(),
            },
            limits,
        })
    }

    /// Checks a schedule definition and builds it, its first run computed from `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_schedule(
        &self,
        name: &str,
        kind: &str,
        params: &Value,
        cron: &str,
        timezone: &str,
        enabled: bool,
        origin: ScheduleOrigin,
        created_by: &str,
        now: Timestamp,
    ) -> Result<NewSchedule, SubmitError> {
        let k = self
            .kinds
            .get(kind)
            .ok_or_else(|| SubmitError::UnknownKind(kind.to_owned()))?;
        let params = k.validate(params)?;
        let schedule = CronSchedule::parse(cron, timezone)?;
        Ok(NewSchedule {
            name: name.to_owned(),
            kind: kind.to_owned(),
            params,
            cron: cron.trim().to_owned(),
            timezone: timezone.trim().to_owned(),
            enabled,
            origin,
            created_by: created_by.to_owned(),
            next_run_at: if enabled {
                schedule.next_after(now)
            } else {
                None
            },
        })
    }

    /// The configuration's schedules (and the retention schedule) as stored ones.
    pub fn config_schedules(
        &self,
        config: &JobConfig,
        now: Timestamp,
    ) -> Result<Vec<NewSchedule>, Vec<String>> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for (i, s) in config.schedules.iter().enumerate() {
            let params = s.params.clone().unwrap_or(Value::Null);
            match self.prepare_schedule(
                &s.name,
                &s.kind,
                &params,
                &s.cron,
                &s.timezone,
                s.enabled,
                ScheduleOrigin::Config,
                "config",
                now,
            ) {
                Ok(schedule) => out.push(schedule),
                Err(e) => problems.push(format!("jobs.schedules[{i}]: {e}")),
            }
        }
        let r = &config.retention;
        if r.any() && !r.schedule.trim().is_empty() {
            match self.prepare_schedule(
                RETENTION_SCHEDULE,
                "retention_cleanup",
                &Value::Null,
                &r.schedule,
                &r.timezone,
                true,
                ScheduleOrigin::Config,
                "config",
                now,
            ) {
                Ok(schedule) => out.push(schedule),
                Err(e) => problems.push(format!("jobs.retention.schedule: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

/// A registry shared between the API, the pool and the scheduler.
pub type SharedRegistry = Arc<JobRegistry>;
