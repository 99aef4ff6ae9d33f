//! `[jobs]`: the worker pool, per-kind limits, retention, schedules and the
//! allow-listed commands.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use palisade_core::config::{ConfigProblem, Validate, check_range};
use palisade_core::duration::Span;
use palisade_store::DataKind;
use serde::Deserialize;
use serde_json::Value;

use crate::kind::KindLimits;
use crate::kinds::command::CommandSpec;
use crate::schedule::CronSchedule;

/// `[jobs]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobConfig {
    /// Jobs running at once in this process, all kinds together.
    pub workers: usize,
    /// How often the queue is looked at when nothing announced a job (jobs submitted
    /// through this process start at once; others within this interval).
    pub poll: Span,
    /// How long a worker's hold on a running job lasts without renewal: a job whose
    /// process died is taken up again after this.
    pub lease: Span,
    /// How often a running job's hold is renewed and a cancel request looked for.
    pub heartbeat: Span,
    /// How long a job asked to stop may take to stop before it is killed.
    pub stop_grace: Span,
    /// Log lines kept per attempt; further lines are counted, not kept.
    pub max_log_lines: u64,
    /// Directories `import_logs` may read from (none: the kind refuses every path).
    pub import_dirs: Vec<PathBuf>,
    /// Retention per kind of data (`[jobs.retention]`), enforced by `retention_cleanup`.
    pub retention: RetentionConfig,
    /// Per-kind limits (`[jobs.kinds.NAME]`).
    pub kinds: BTreeMap<String, KindOverrides>,
    /// Schedules declared here (`[[jobs.schedules]]`); changed only here.
    pub schedules: Vec<ScheduleConfig>,
    /// Allow-listed commands (`[[jobs.commands]]`), run by the `command` kind.
    pub commands: Vec<CommandSpec>,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            workers: 4,
            poll: Span::from_secs(1),
            lease: Span::from_secs(30),
            heartbeat: Span::from_secs(2),
            stop_grace: Span::from_secs(10),
            max_log_lines: 100_000,
            import_dirs: Vec::new(),
            retention: RetentionConfig::default(),
            kinds: BTreeMap::new(),
            schedules: Vec::new(),
            commands: Vec::new(),
        }
    }
}

/// `[jobs.kinds.NAME]`: limits that replace a kind's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindOverrides {
    /// Jobs of the kind at once in this process.
    pub concurrency: Option<usize>,
    /// Failed attempts that end a job.
    pub max_attempts: Option<u32>,
    /// Longest attempt.
    pub timeout: Option<Span>,
    /// First retry delay (doubled each time, with jitter).
    pub backoff: Option<Span>,
    /// Longest retry delay.
    pub max_backoff: Option<Span>,
}

impl KindOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: KindLimits) -> KindLimits {
        KindLimits {
            concurrency: self.concurrency.unwrap_or(base.concurrency),
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            timeout: self.timeout.unwrap_or(base.timeout),
            backoff: self.backoff.unwrap_or(base.backoff),
            max_backoff: self.max_backoff.unwrap_or(base.max_backoff),
        }
    }
}

/// `[jobs.retention]`: how long each kind of data is kept (absent: for good), and when
/// the clean-up runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Events, by event time.
    pub events: Option<Span>,
    /// Dead letters.
    pub dead_letters: Option<Span>,
    /// Threats.
    pub threats: Option<Span>,
    /// Audit log entries.
    pub audit: Option<Span>,
    /// Finished jobs with their attempts, logs and outputs.
    pub jobs: Option<Span>,
    /// Log lines of finished jobs (the jobs stay).
    pub job_logs: Option<Span>,
    /// Resolved and dismissed alerts, by when they were closed (open ones stay).
    pub alerts: Option<Span>,
    /// Finished notification deliveries (the delivery log), by when queued.
    pub alert_deliveries: Option<Span>,
    /// Activity feed entries.
    pub activities: Option<Span>,
    /// When `retention_cleanup` runs (cron); empty: never by itself.
    pub schedule: String,
    /// The schedule's time zone.
    pub timezone: String,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            events: None,
            dead_letters: None,
            threats: None,
            audit: None,
            jobs: Some(Span::from_secs(30 * 86_400)),
            job_logs: None,
            // Alert history is worth a half-year of look-back; the delivery log and the
            // feed are for the weeks after.
            alerts: Some(Span::from_secs(180 * 86_400)),
            alert_deliveries: Some(Span::from_secs(30 * 86_400)),
            activities: Some(Span::from_secs(90 * 86_400)),
            schedule: "17 3 * * *".into(),
            timezone: "UTC".into(),
        }
    }
}

impl RetentionConfig {
    /// The period of a kind of data, if it has one.
    pub fn period(&self, kind: DataKind) -> Option<Span> {
        match kind {
            DataKind::Events => self.events,
            DataKind::DeadLetters => self.dead_letters,
            DataKind::Threats => self.threats,
            DataKind::Audit => self.audit,
            DataKind::Jobs => self.jobs,
            DataKind::JobLogs => self.job_logs,
            DataKind::Alerts => self.alerts,
            DataKind::AlertDeliveries => self.alert_deliveries,
            DataKind::Activities => self.activities,
        }
    }

    /// Whether any kind has a period.
    pub fn any(&self) -> bool {
        DataKind::ALL.iter().any(|k| self.period(*k).is_some())
    }
}

/// `[[jobs.schedules]]`: a job enqueued by cron.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Unique name.
    pub name: String,
    /// The kind to enqueue.
    pub kind: String,
    /// Cron expression.
    pub cron: String,
    /// Time zone (UTC, +02:00, Europe/Paris).
    #[serde(default = "utc")]
    pub timezone: String,
    /// The job's parameters.
    #[serde(default)]
    pub params: Option<Value>,
    /// Whether it fires.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn utc() -> String {
    "UTC".into()
}

fn yes() -> bool {
    true
}

/// Whether a name can name a schedule or a command.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The name of the schedule that runs retention.
pub const RETENTION_SCHEDULE: &str = "retention";

impl Validate for JobConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        check_range(&mut problems, "workers", self.workers, 1..=256);
        check_range(
            &mut problems,
            "max_log_lines",
            self.max_log_lines,
            10..=10_000_000,
        );
        let span = |problems: &mut Vec<ConfigProblem>, key: &str, v: Span, lo: Span, hi: Span| {
            if !v.within(lo, hi) {
                problems.push(ConfigProblem::new(
                    key,
                    format!("must be between {lo} and {hi} (got {v})"),
                ));
            }
        };
        span(
            &mut problems,
            "poll",
            self.poll,
            Span::from_millis(10),
            Span::from_secs(60),
        );
        span(
            &mut problems,
            "lease",
            self.lease,
            Span::from_secs(1),
            Span::from_secs(3600),
        );
        span(
            &mut problems,
            "heartbeat",
            self.heartbeat,
            Span::from_millis(50),
            Span::from_secs(600),
        );
        span(
            &mut problems,
            "stop_grace",
            self.stop_grace,
            Span::from_millis(10),
            Span::from_secs(600),
        );
        if self.heartbeat.as_micros().saturating_mul(2) > self.lease.as_micros() {
            problems.push(ConfigProblem::new(
                "heartbeat",
                format!(
                    "must be at most half of lease ({}), so that a live job's hold is renewed before it runs out",
                    self.lease
                ),
            ));
        }
        for (i, dir) in self.import_dirs.iter().enumerate() {
            if !dir.is_absolute() {
                problems.push(ConfigProblem::new(
                    format!("import_dirs[{i}]"),
                    format!("'{}' must be an absolute directory", dir.display()),
                ));
            }
        }
        for kind in DataKind::ALL {
            if let Some(p) = self.retention.period(kind)
                && !p.within(Span::from_secs(60), Span::from_secs(100 * 365 * 86_400))
            {
                problems.push(ConfigProblem::new(
                    format!("retention.{}", kind.as_str()),
                    "must be at least 1m (and at most 100 years)",
                ));
            }
        }
        if !self.retention.schedule.trim().is_empty()
            && let Err(e) = CronSchedule::parse(&self.retention.schedule, &self.retention.timezone)
        {
            problems.push(ConfigProblem::new("retention.schedule", e));
        }
        for (name, o) in &self.kinds {
            let key = format!("kinds.{name}");
            if let Some(c) = o.concurrency {
                check_range(&mut problems, &format!("{key}.concurrency"), c, 1..=256);
            }
            if let Some(m) = o.max_attempts {
                check_range(&mut problems, &format!("{key}.max_attempts"), m, 1..=100);
            }
            if let Some(t) = o.timeout {
                span(
                    &mut problems,
                    &format!("{key}.timeout"),
                    t,
                    Span::from_millis(100),
                    Span::from_secs(7 * 86_400),
                );
            }
            for (k, v) in [("backoff", o.backoff), ("max_backoff", o.max_backoff)] {
                if let Some(v) = v {
                    span(
                        &mut problems,
                        &format!("{key}.{k}"),
                        v,
                        Span::from_millis(10),
                        Span::from_secs(86_400),
                    );
                }
            }
        }
        let mut names = HashSet::new();
        for (i, s) in self.schedules.iter().enumerate() {
            let key = format!("schedules[{i}]");
            if !valid_name(&s.name) {
                problems.push(ConfigProblem::new(
                    format!("{key}.name"),
                    "1 to 64 letters, digits, '_', '-' or '.'",
                ));
            }
            if s.name == RETENTION_SCHEDULE {
                problems.push(ConfigProblem::new(
                    format!("{key}.name"),
                    "'retention' is the name of the clean-up schedule ([jobs.retention] schedule)",
                ));
            }
            if !names.insert(s.name.clone()) {
                problems.push(ConfigProblem::new(
                    format!("{key}.name"),
                    format!("two schedules are named '{}'", s.name),
                ));
            }
            if let Err(e) = CronSchedule::parse(&s.cron, &s.timezone) {
                problems.push(ConfigProblem::new(format!("{key}.cron"), e));
            }
            if s.params.as_ref().is_some_and(|p| !p.is_object()) {
                problems.push(ConfigProblem::new(
                    format!("{key}.params"),
                    "must be a table of parameters",
                ));
            }
        }
        let mut commands = HashSet::new();
        for (i, c) in self.commands.iter_mut().enumerate() {
            let key = format!("commands[{i}]");
            if !commands.insert(c.name.clone()) {
                problems.push(ConfigProblem::new(
                    format!("{key}.name"),
                    format!("two commands are named '{}'", c.name),
                ));
            }
            problems.extend(c.finish().into_iter().map(|p| p.within(&key)));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<JobConfig, Vec<String>> {
        let mut c: JobConfig = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let problems = c.finish();
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(problems.iter().map(ToString::to_string).collect())
        }
    }

    #[test]
    fn a_full_section_loads() {
        let c = load(
            r#"
            workers = 2
            lease = "10s"
            heartbeat = "1s"
            import_dirs = ["/var/log"]
            [retention]
            events = "90d"
            job_logs = "14d"
            activities = "30d"
            schedule = "0 4 * * *"
            timezone = "Europe/Paris"
            [kinds.import_logs]
            concurrency = 2
            timeout = "2h"
            [[schedules]]
            name = "nightly-check"
            kind = "validate_data"
            cron = "0 5 * * *"
            [[commands]]
            name = "backup"
            program = "/usr/local/bin/backup"
            args = ["--target", "{target}"]
            [commands.params.target]
            type = "string"
            pattern = "[a-z]+"
            required = true
            "#,
        )
        .unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(
            c.retention.period(DataKind::Events),
            Some(Span::from_secs(90 * 86_400))
        );
        assert_eq!(
            c.retention.period(DataKind::Jobs),
            Some(Span::from_secs(30 * 86_400))
        );
        // Alerting data has periods by default; each can be set.
        assert_eq!(
            c.retention.period(DataKind::Alerts),
            Some(Span::from_secs(180 * 86_400))
        );
        assert_eq!(
            c.retention.period(DataKind::AlertDeliveries),
            Some(Span::from_secs(30 * 86_400))
        );
        assert_eq!(
            c.retention.period(DataKind::Activities),
            Some(Span::from_secs(30 * 86_400))
        );
        assert_eq!(c.kinds["import_logs"].concurrency, Some(2));
        assert_eq!(c.commands[0].name, "backup");
        assert_eq!(c.schedules[0].timezone, "UTC");
    }

    #[test]
    fn problems_name_their_keys() {
        let problems = load(
            r#"
            workers = 0
            lease = "2s"
            heartbeat = "2s"
            import_dirs = ["relative"]
            [retention]
            events = "1s"
            schedule = "every night"
            [[schedules]]
            name = "retention"
            kind = "validate_data"
            cron = "0 5 * *"
            timezone = "Mars/Base"
            "#,
        )
        .unwrap_err();
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "workers",
                "heartbeat",
                "import_dirs[0]",
                "retention.events",
                "retention.schedule",
                "schedules[0].name",
                "schedules[0].cron",
            ]
        );
        assert!(load("surprise = 1").is_err());
    }
}
