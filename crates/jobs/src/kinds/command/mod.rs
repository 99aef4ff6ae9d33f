//! `command`: the team's own scripts, allow-listed by an admin in `[[jobs.commands]]`.
//!
//! Parameters: `command` (the declared name) and that command's declared parameters,
//! nothing else. The program runs without a shell, with its arguments rendered from the
//! template, a clean environment (plus secrets by name), in its own process group;
//! stdout and stderr become log lines, stdout lines that are JSON objects also become
//! the job's outputs, and the exit status decides success.

mod process;
pub mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use palisade_core::duration::Span;
use palisade_core::security::Role;
use serde_json::{Value, json};

pub use spec::CommandSpec;

use crate::context::JobContext;
use crate::kind::{JobError, JobKind, KindLimits};
use crate::params::ParamError;

/// The `PATH` a command gets unless it inherits the environment.
const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The `command` kind over the declared commands.
pub struct CommandKind {
    commands: BTreeMap<String, Arc<CommandSpec>>,
    stop_grace: Span,
}

impl CommandKind {
    /// The kind for these (already checked) declarations.
    pub fn new(commands: &[CommandSpec], stop_grace: Span) -> CommandKind {
        CommandKind {
            commands: commands
                .iter()
                .map(|c| (c.name.clone(), Arc::new(c.clone())))
                .collect(),
            stop_grace,
        }
    }

    fn command_of(&self, params: &Value) -> Result<&Arc<CommandSpec>, ParamError> {
        let names = || self.commands.keys().cloned().collect::<Vec<_>>().join(", ");
        match params.get("command") {
            Some(Value::String(name)) => self.commands.get(name).ok_or_else(|| {
                ParamError::new(
                    "command",
                    if self.commands.is_empty() {
                        "no command is allow-listed ([[jobs.commands]] in the configuration)"
                            .to_owned()
                    } else {
                        format!(
                            "'{name}' is not an allow-listed command; declared: {}",
                            names()
                        )
                    },
                )
            }),
            Some(_) => Err(ParamError::new("command", "must be text")),
            None => Err(ParamError::new(
                "command",
                "missing; name one of the allow-listed commands",
            )),
        }
    }
}

#[async_trait]
impl JobKind for CommandKind {
    fn name(&self) -> &str {
        "command"
    }

    fn description(&self) -> &str {
        "Runs an allow-listed command ([[jobs.commands]]) with typed parameters, without a shell; stdout/stderr become log lines, JSON-object stdout lines become outputs."
    }

    fn params_schema(&self) -> Value {
        let alternatives: Vec<Value> = self.commands.values().map(|c| c.schema()).collect();
        json!({ "oneOf": alternatives })
    }

    fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        if !params.is_object() {
            return Err(ParamError::new("params", "must be a JSON object"));
        }
        let spec = self.command_of(params)?;
        let mut values = spec.check(params)?;
        values.insert("command".into(), Value::String(spec.name.clone()));
        Ok(Value::Object(values))
    }

    fn default_limits(&self) -> KindLimits {
        KindLimits {
            concurrency: 2,
            max_attempts: 1,
            timeout: Span::from_secs(3600),
            ..KindLimits::default()
        }
    }

    fn limits_for(&self, params: &Value, configured: KindLimits) -> KindLimits {
        match self.command_of(params) {
            Ok(spec) => KindLimits {
                timeout: spec.timeout.unwrap_or(configured.timeout),
                max_attempts: spec.max_attempts.unwrap_or(configured.max_attempts),
                ..configured
            },
            Err(_) => configured,
        }
    }

    fn required_role(&self, params: &Value) -> Role {
        self.command_of(params)
            .map_or(Role::Analyst, |spec| spec.role())
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        // Checked again: the configuration may have changed since the job was stored.
        let spec = self
            .command_of(ctx.params())
            .map_err(|e| JobError::fatal(e.to_string()))?
            .clone();
        let values = spec
            .check(ctx.params())
            .map_err(|e| JobError::fatal(format!("parameter {e}")))?;
        let mut env = BTreeMap::new();
        if spec.inherit_env {
            env.extend(std::env::vars());
        } else {
            env.insert("PATH".to_owned(), SAFE_PATH.to_owned());
            env.insert("LANG".to_owned(), "C.UTF-8".to_owned());
        }
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let key = format!("{}-{}", ctx.job().id, ctx.job().created_at.as_micros());
        if ctx.job().interruptions > 0 {
            let killed = process::reap_leftovers(&key);
            if killed > 0 {
                ctx.warn(format!(
                    "killed {killed} process group(s) left running by an attempt that was cut off"
                ))
                .await;
            }
        }
        env.insert("PALISADE_JOB_KEY".into(), key);
        env.insert("PALISADE_JOB_ID".into(), ctx.job().id.to_string());
        env.insert("PALISADE_JOB_ATTEMPT".into(), ctx.job().attempt.to_string());
        for (var, name) in &spec.secret_env {
            let Some(secrets) = &ctx.services().secrets else {
                return Err(JobError::fatal(format!(
                    "{var} needs the secret '{name}' but no secrets store is available"
                )));
            };
            match secrets.reveal(name).await {
                Ok(Some(value)) => {
                    env.insert(var.clone(), value);
                }
                Ok(None) => {
                    return Err(JobError::fatal(format!(
                        "{var} needs the secret '{name}', which is not in the secrets store"
                    )));
                }
                Err(why) => {
                    return Err(JobError::retry(format!(
                        "cannot read the secret '{name}': {why}"
                    )));
                }
            }
        }
        process::run(
            ctx,
            process::Invocation {
                program: spec.program.clone(),
                argv: spec.argv(&values),
                dir: spec.dir.clone().unwrap_or_else(|| PathBuf::from("/")),
                env,
                grace: self.stop_grace.to_std(),
            },
        )
        .await
    }
}
