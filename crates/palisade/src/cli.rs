//! The command line, defined once; each subcommand's work lives in `commands/`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::config::Overrides;
use crate::telemetry::LogFormat;

/// Palisade: self-hosted security monitoring in one binary.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (default: ./palisade.toml when it exists).
    #[arg(long, short = 'c', env = "PALISADE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the database and keys.
    #[arg(long, env = "PALISADE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH (inside the data dir when relative) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "PALISADE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log filter, e.g. info or palisade_sources=debug,info.
    #[arg(long, env = "PALISADE_LOG", global = true)]
    pub log_level: Option<String>,
    /// Log encoding.
    #[arg(
        long = "log-output",
        env = "PALISADE_LOG_FORMAT",
        global = true,
        value_enum
    )]
    pub log_output: Option<LogFormat>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: API, sources, background tasks.
    Serve(ServeArgs),
    /// Import log files once (plain or .gz), with progress and a summary.
    Ingest(IngestArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Measure detection on labelled request corpora (TPR, FPR, precision, F1, per rule set).
    Eval(EvalArgs),
    /// Configuration commands.
    Config {
        /// The config action.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage users (works on the configured store without a running server).
    User {
        /// The user action.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API keys for sensors and proxies.
    Apikey {
        /// The apikey action.
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// The job queue: run a job (optionally waiting for it), list jobs, cancel one.
    Jobs {
        /// The jobs action.
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// The encrypted secrets store.
    Secrets {
        /// The secrets action.
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Ask a running service whether it is ready (for container health checks and
    /// scripts): exit 0 when `/readyz` answers 200, 1 otherwise.
    Health {
        /// The address to ask (default: the configured listen address, a wildcard
        /// replaced by loopback).
        #[arg(long)]
        address: Option<String>,
    },
    /// The vulnerability engine: import NVD pages offline, match assets.
    Vuln {
        /// The vuln action.
        #[command(subcommand)]
        command: VulnCommand,
    },
    /// Train the request models (threat detector and attack classifier) on labelled
    /// JSONL corpora plus generated attacks; writes a model file.
    Train(TrainArgs),
    /// Train the flow model (scans, floods, brute force over flows) on labelled packet
    /// captures; writes a flow-model file with leave-one-capture-out figures.
    TrainFlows(TrainFlowsArgs),
    /// Measure the flow model leave-one-capture-out on labelled captures, per capture,
    /// beside the rule scenarios and the online score.
    EvalFlows(EvalFlowsArgs),
    /// The request and flow models.
    Models {
        /// The models action.
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Print the version.
    Version,
}

/// `palisade models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The model the configuration loads (or FILE): version, is_real, training data,
    /// held-out figures; exit 1 when it cannot be loaded.
    List {
        /// A request-model file to show instead of the configured ones.
        #[arg(long)]
        path: Option<PathBuf>,
        /// A flow-model file to show instead of the configured ones.
        #[arg(long)]
        flow_path: Option<PathBuf>,
    },
}

/// `palisade train`
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labelled corpora in the `palisade eval` JSONL format (.gz fine).
    #[arg(long = "data", required = true, num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// Where to write the model.
    #[arg(long, default_value = "http.pmodel")]
    pub out: PathBuf,
    /// Seed for generation, shuffles and the held-out split.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Passes over the data.
    #[arg(long, default_value_t = 4)]
    pub epochs: u32,
    /// log2 of the hash buckets (10–24).
    #[arg(long, default_value_t = 18)]
    pub buckets_log2: u8,
    /// Generated attacks to add (planted in the data's normal requests); default: as
    /// many as there are normal requests.
    #[arg(long)]
    pub generated_attacks: Option<usize>,
    /// Generated ordinary modern requests (JSON, GraphQL, non-English text) to add.
    #[arg(long, default_value_t = 20000)]
    pub generated_normal: usize,
    /// Share of the data held out for the figures stored in the model.
    #[arg(long, default_value_t = 0.1)]
    pub held_out: f64,
    /// Also choose the calibrated operating point (`[models] operating_point =
    /// "calibrated"`): hold out a validation part of the data (normal requests at
    /// random, attacks in groups that share no payload value), train on the rest,
    /// learn baselines on its normal requests, and keep the graded model points with
    /// the largest validation F1 at a false-positive rate of at most `--target-fpr`;
    /// then train the final model on all the data and store the point in it.
    #[arg(long)]
    pub calibrate: bool,
    /// With `--calibrate`: let the model's points alone reach the threshold. Off by
    /// default: the model must be corroborated by the rules or the baselines, because
    /// its false-positive rate on traffic unlike its training data moves more than
    /// theirs (a held-out part of the same capture understates it).
    #[arg(long)]
    pub model_alone: bool,
    /// With `--calibrate`: the validation false-positive rate not to exceed.
    #[arg(long, default_value_t = 0.0025)]
    pub target_fpr: f64,
    /// With `--calibrate`: the share of the labelled data held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub validation: f64,
    /// With `--calibrate`: the rules' paranoia level (as in service).
    #[arg(long, default_value_t = 1)]
    pub paranoia: u8,
    /// With `--calibrate`: the rules' blocking threshold (as in service).
    #[arg(long, default_value_t = 5)]
    pub threshold: u32,
    /// With `--calibrate`: extra rule files on top of the built-in rules (as in service).
    #[arg(long)]
    pub rules_dir: Option<PathBuf>,
    /// With `--calibrate`: requests an endpoint's baseline learns before it is judged.
    #[arg(long, default_value_t = 200)]
    pub baseline_warmup: u64,
}

/// The labelled captures and training settings `train-flows` and `eval-flows` share.
#[derive(Debug, Args)]
pub struct FlowDataArgs {
    /// The labels file: one `FILE CLASS WHO` line per capture (see
    /// `crates/models/flow-labels.txt`).
    #[arg(long)]
    pub labels: PathBuf,
    /// The directory the labels' FILE paths are relative to.
    #[arg(long)]
    pub data: PathBuf,
    /// Shuffle seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Passes over the flows.
    #[arg(long, default_value_t = 20)]
    pub epochs: u32,
    /// Attack probability from which a flow is flagged.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
}

/// `palisade train-flows`
#[derive(Debug, Args)]
pub struct TrainFlowsArgs {
    /// Labels, data, seed.
    #[command(flatten)]
    pub data: FlowDataArgs,
    /// Where to write the model.
    #[arg(long, default_value = "flow.pmodel")]
    pub out: PathBuf,
}

/// `palisade eval-flows`
#[derive(Debug, Args)]
pub struct EvalFlowsArgs {
    /// Labels, data, seed.
    #[command(flatten)]
    pub data: FlowDataArgs,
    /// A flow-model file to judge every capture with as well (it may have trained on
    /// them: these figures are not held out).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The online score's warm-up, in flows, for its report.
    #[arg(long, default_value_t = 1000)]
    pub anomaly_warmup: u64,
    /// The online score's threshold (standard deviations).
    #[arg(long, default_value_t = 6.0)]
    pub anomaly_z: f32,
}

/// `palisade vuln …`
#[derive(Debug, Subcommand)]
pub enum VulnCommand {
    /// Import NVD API 2.0 pages saved as files (offline; records already stored are
    /// updated only by newer ones).
    Import {
        /// NVD API 2.0 JSON pages (or bare CVE records).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Match every asset against the stored CVEs (new critical matches become threats).
    Match {
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// `palisade user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from stdin with --password-stdin, else generated and printed once.
    Add {
        /// Login name.
        username: String,
        /// viewer, analyst or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a user's password (ends their sessions).
    Passwd {
        /// Login name.
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user.
    Remove {
        /// Login name.
        username: String,
    },
    /// Lift every login lock on a name (from failed passwords, per address and
    /// account-wide), e.g. when someone keeps guessing the admin's password.
    Unlock {
        /// Login name (locks are kept for unknown names too).
        username: String,
    },
}

/// `palisade apikey …`
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it once.
    Create {
        /// Which sensor or proxy uses it.
        #[arg(long)]
        name: String,
        /// Comma-separated: ingest, check, read, bouncer (CrowdSec bouncers pulling decisions).
        #[arg(long)]
        scope: String,
        /// Print the key alone (for scripts).
        #[arg(long)]
        quiet: bool,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id.
    Revoke {
        /// Key id (see `apikey list`).
        id: i64,
    },
}

/// `palisade jobs …`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Enqueue a job; with --wait, follow it (a server on the same store runs it, or
    /// this command does when none takes it within a second).
    Run {
        /// The kind: import_logs, validate_data, retention_cleanup, command, …
        kind: String,
        /// A parameter, NAME=VALUE (repeatable); typed by the kind's schema.
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Wait for the end with a progress bar and the job's log; exit 1 unless it succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// List jobs, newest first.
    List {
        /// Only this state: pending, running, succeeded, failed, cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Cancel a job (a running one stops within a heartbeat).
    Cancel {
        /// Job id (see `jobs list`).
        id: i64,
    },
    /// List the job kinds and their parameters.
    Kinds,
}

/// `palisade secrets …`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Add a new encryption key and re-encrypt every secret with it.
    RotateKey,
    /// List secrets, masked.
    List,
}

/// `palisade config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective settings.
    Check,
}

/// `palisade serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve on (default 127.0.0.1:8080).
    #[arg(long, env = "PALISADE_LISTEN")]
    pub listen: Option<String>,
    /// Follow this log file (repeatable); resumes from its checkpoint after a restart.
    #[arg(long, value_name = "PATH")]
    pub tail: Vec<PathBuf>,
    /// Format of the --tail files: auto, combined, common, json, apache_error, nginx, apache.
    #[arg(long)]
    pub format: Option<String>,
    /// The server's nginx log_format or Apache LogFormat string for the --tail files.
    #[arg(long = "log-format", value_name = "STRING")]
    pub log_format: Option<String>,
    /// Run a protecting proxy on this address (with --proxy-upstream): every request is
    /// inspected, body included, before it is forwarded.
    #[arg(
        long,
        value_name = "ADDR",
        env = "PALISADE_PROXY_LISTEN",
        requires = "proxy_upstream"
    )]
    pub proxy_listen: Option<String>,
    /// The application the proxy protects, e.g. http://127.0.0.1:3000.
    #[arg(
        long,
        value_name = "URL",
        env = "PALISADE_PROXY_UPSTREAM",
        requires = "proxy_listen"
    )]
    pub proxy_upstream: Option<String>,
    /// The --proxy-listen proxy's name: the source of its events and threats and the
    /// label of its metrics (default `proxy`).
    #[arg(
        long,
        value_name = "NAME",
        env = "PALISADE_PROXY_NAME",
        requires = "proxy_listen"
    )]
    pub proxy_name: Option<String>,
    /// What this process does in a scale-out topology: all (default), api (HTTP,
    /// /check, WebSocket) or worker (sources, stages, jobs, alerts; health and metrics
    /// only over HTTP). api and worker need PostgreSQL.
    #[arg(long, value_enum, env = "PALISADE_ROLE", default_value_t = crate::topology::Role::All)]
    pub role: crate::topology::Role,
}

/// `palisade ingest`
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files to import (.gz is decompressed).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// auto, combined, common, json, apache_error, nginx, apache.
    #[arg(long)]
    pub format: Option<String>,
    /// The server's nginx log_format or Apache LogFormat string.
    #[arg(long = "log-format", value_name = "STRING")]
    pub log_format: Option<String>,
    /// Source name for the events (default import:PATH).
    #[arg(long)]
    pub source: Option<String>,
    /// Read from the start even if an earlier import of the same file stored lines.
    #[arg(long)]
    pub restart: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Store the events without running the signature engine over them. They are not
    /// inspected later either: a later start does not take them for events a crash
    /// left uninspected.
    #[arg(long)]
    pub no_detect: bool,
    /// Keep the events table's indexes up to date row by row. By default an import
    /// larger than the table it goes into (SQLite or PostgreSQL, with or without
    /// detection) sets them aside and builds them once at the end, which is faster;
    /// queries during the import are slower.
    #[arg(long)]
    pub keep_indexes: bool,
}

/// `palisade eval`
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Labelled request corpora, JSONL (.gz fine): {"method","uri","headers":[[n,v]..],"body","label":"normal"|"attack"}.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Paranoia levels to evaluate, e.g. 1,2.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub paranoia: Vec<u8>,
    /// Anomaly score threshold.
    #[arg(long, default_value_t = 5)]
    pub threshold: u32,
    /// Extra rule files on top of the built-in rules.
    #[arg(long)]
    pub rules_dir: Option<PathBuf>,
    /// Print this many missed attacks and false positives per level (with `--model` or
    /// `--baselines-train`, also this many attacks the fused score misses, with the
    /// score and the model's probability).
    #[arg(long, default_value_t = 0)]
    pub show: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also report a request model (from `palisade train`): rules only, model only and
    /// fused under `[models]` defaults, at the first paranoia level.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// With `--model`: also report the fused score with this `block_probability`
    /// (the model alone blocks at or above it).
    #[arg(long)]
    pub block_probability: Option<f32>,
    /// With `--model`: the model's points in the fused score (`[models] model_weight`,
    /// added at p >= min_probability); default: the `[models]` default (advisory, 0).
    #[arg(long)]
    pub model_weight: Option<u32>,
    /// OWASP CRS / SecLang rule files to run too (a CRS checkout, or Debian's
    /// /usr/share/modsecurity-crs); what loaded and what was skipped is printed.
    #[arg(long)]
    pub crs_dir: Option<PathBuf>,
    /// With `--crs-dir`: `add` (built-in and CRS rules, a request blocked if either
    /// would block it) or `replace` (CRS rules only).
    #[arg(long, default_value = "add")]
    pub crs_mode: String,
    /// Learn per-endpoint baselines from these normal-traffic corpora (their normal
    /// samples; never the evaluated files), then report baselines only and fused figures.
    #[arg(long = "baselines-train")]
    pub baselines_train: Vec<PathBuf>,
    /// Warm-up of those baselines: requests per endpoint before it is judged.
    #[arg(long, default_value_t = 200)]
    pub baseline_warmup: u64,
    /// `a`: evaluate the corpora as given. `b`: split their attacks so that no
    /// parameter value appears on both sides (seeded), evaluate on the test side (the
    /// other attacks + every normal sample); `--write-train-side` keeps the other side
    /// for `palisade train`.
    #[arg(long, default_value = "a")]
    pub protocol: String,
    /// Seed of the protocol (b) split.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Protocol (b): write the training side's attacks to this JSONL file.
    #[arg(long)]
    pub write_train_side: Option<PathBuf>,
    /// Write every request's verdict to this JSONL file (`idx` in corpus order,
    /// `paranoia`, `attack`, `blocked`, `score`, `rules`), to compare request by request
    /// with another path (the proxy through `scripts/eval-waf.sh`, ModSecurity).
    #[arg(long)]
    pub verdicts: Option<PathBuf>,
}

impl Cli {
    fn overrides(&self) -> Overrides {
        let mut o = Overrides {
            config: self.global.config.clone(),
            data_dir: self.global.data_dir.clone(),
            database_url: self.global.database_url.clone(),
            log_level: self.global.log_level.clone(),
            log_format: self.global.log_output,
            ..Overrides::default()
        };
        if let Command::Serve(s) = &self.command {
            o.listen = s.listen.clone();
            o.tail = s.tail.clone();
            o.tail_format = s.format.clone();
            o.tail_log_format = s.log_format.clone();
            o.proxy = s.proxy_listen.clone().zip(s.proxy_upstream.clone());
            o.proxy_name = s.proxy_name.clone();
        }
        o
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let overrides = cli.overrides();
    match cli.command {
        Command::Version => {
            println!("palisade {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => Ok(commands::config_check::run(&overrides)),
        Command::Serve(s) => commands::serve::run(&overrides, s.role),
        Command::Migrate => commands::migrate::run(&overrides),
        Command::Health { address } => commands::health::run(&overrides, address.as_deref()),
        Command::Ingest(args) => commands::ingest::run(&overrides, args),
        Command::Eval(args) => commands::eval::run(args),
        Command::User { command } => commands::user::run(&overrides, command),
        Command::Apikey { command } => commands::apikey::run(&overrides, command),
        Command::Secrets { command } => commands::secrets::run(&overrides, command),
        Command::Jobs { command } => commands::jobs::run(&overrides, command),
        Command::Vuln { command } => commands::vuln::run(&overrides, command),
        Command::Train(args) => commands::train::run(args),
        Command::TrainFlows(args) => commands::train_flows::train(args),
        Command::EvalFlows(args) => commands::train_flows::eval(args),
        Command::Models { command } => commands::models::run(&overrides, command),
    }
}
