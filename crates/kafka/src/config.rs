//! `[[kafka]]` (a consumer-group source) and `[kafka_sink]` (threats produced to a
//! topic): what the operator writes, checked once at start-up so the running code
//! never sees an invalid value.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_core::config::{ConfigProblem, Validate, check_range};
use palisade_core::duration::Span;
use palisade_formats::{FormatSpec, JsonFieldMap};

/// Where a group with no committed offset starts reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record the broker keeps (nothing already in the topic is missed).
    Earliest,
    /// Only records produced from now on.
    Latest,
}

impl StartPosition {
    /// The librdkafka `auto.offset.reset` value.
    pub fn as_reset(self) -> &'static str {
        match self {
            StartPosition::Earliest => "earliest",
            StartPosition::Latest => "latest",
        }
    }
}

/// One `[[kafka]]` source: the topics a consumer group reads and how their records are
/// parsed. Records become events through the same parsers as a tailed file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "KafkaSection")]
pub struct KafkaSourceConfig {
    /// Stable source name, used in events, dead letters, checkpoints and the status.
    pub name: String,
    /// Bootstrap brokers, comma-separated `host:port` (librdkafka's
    /// `bootstrap.servers`).
    pub brokers: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// The consumer group: several Palisade processes with the same group share the
    /// partitions.
    pub group: String,
    /// How a record's payload is parsed (one line per record; a payload with several
    /// lines is several lines).
    pub format: FormatSpec,
    /// Where to start when the group has no committed offset.
    pub start: StartPosition,
    /// Records per store batch (and the most held in memory before a write).
    pub batch_size: usize,
    /// Longest a record waits for its batch to fill.
    pub flush_interval: Duration,
    /// The group's session timeout: how long a member that died is waited for before
    /// its partitions move. Also bounds the first join (about half of it on Tansu).
    pub session_timeout: Duration,
    /// Extra librdkafka properties (SASL, TLS: `security.protocol`, `sasl.mechanism`,
    /// `sasl.username`, `ssl.ca.location`, …), passed through unchanged.
    pub options: BTreeMap<String, String>,
}

impl KafkaSourceConfig {
    /// Defaults for a source reading `topics` from `brokers` as group `palisade`.
    pub fn new(name: impl Into<String>, brokers: impl Into<String>, topics: Vec<String>) -> Self {
        KafkaSourceConfig {
            name: name.into(),
            brokers: brokers.into(),
            topics,
            group: "palisade".into(),
            format: FormatSpec::Json(JsonFieldMap::default()),
            start: StartPosition::Earliest,
            batch_size: 2000,
            flush_interval: Duration::from_millis(200),
            session_timeout: Duration::from_secs(10),
            options: BTreeMap::new(),
        }
    }

    /// What the source reads, for the source status (`kafka://b1:9092/t1,t2`).
    pub fn target(&self) -> String {
        format!("kafka://{}/{}", self.brokers, self.topics.join(","))
    }
}

/// `[[kafka]]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSection {
    name: Option<String>,
    brokers: String,
    topics: Vec<String>,
    group: Option<String>,
    format: Option<String>,
    log_format: Option<String>,
    json_fields: Option<JsonFieldMap>,
    start: Option<String>,
    batch_size: Option<usize>,
    flush_interval: Option<Span>,
    session_timeout: Option<Span>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

/// librdkafka properties Palisade sets itself: overriding them would break the
/// at-least-once contract (offsets committed only after the store has the batch).
const RESERVED_OPTIONS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.idempotence",
];

fn check_options(options: &BTreeMap<String, String>) -> Result<(), ConfigProblem> {
    match options
        .keys()
        .find(|k| RESERVED_OPTIONS.contains(&k.as_str()))
    {
        Some(k) => Err(ConfigProblem::new(
            format!("options.{k}"),
            "is set by Palisade from the section's own keys; remove it",
        )),
        None => Ok(()),
    }
}

impl TryFrom<KafkaSection> for KafkaSourceConfig {
    type Error = ConfigProblem;

    fn try_from(f: KafkaSection) -> Result<Self, Self::Error> {
        let mut c = KafkaSourceConfig::new(
            f.name.unwrap_or_else(|| "kafka".into()),
            f.brokers.trim(),
            f.topics,
        );
        if c.brokers.is_empty() {
            return Err(ConfigProblem::new("brokers", "name at least one host:port"));
        }
        if c.topics.is_empty() || c.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(ConfigProblem::new(
                "topics",
                "name at least one topic, none empty",
            ));
        }
        if let Some(g) = f.group {
            if g.trim().is_empty() {
                return Err(ConfigProblem::new("group", "must not be empty"));
            }
            c.group = g;
        }
        if f.format.is_some() || f.log_format.is_some() || f.json_fields.is_some() {
            let spec =
                FormatSpec::from_parts(f.format.as_deref(), f.log_format.as_deref(), f.json_fields)
                    .map_err(|e| ConfigProblem::new("format", e))?;
            c.format = match spec {
                // An unset name with a field map means JSON.
                FormatSpec::Auto => {
                    return Err(ConfigProblem::new(
                        "format",
                        "auto-detection is not available for Kafka topics; name the format (json, combined, common, syslog, …)",
                    ));
                }
                other => other,
            };
        }
        c.start = match f.start.as_deref().map(str::trim) {
            None | Some("earliest") => StartPosition::Earliest,
            Some("latest") => StartPosition::Latest,
            Some(other) => {
                return Err(ConfigProblem::new(
                    "start",
                    format!("'{other}' is not earliest or latest"),
                ));
            }
        };
        if let Some(n) = f.batch_size {
            c.batch_size = n;
        }
        if let Some(t) = f.flush_interval {
            c.flush_interval = t.to_std();
        }
        if let Some(t) = f.session_timeout {
            c.session_timeout = t.to_std();
        }
        check_options(&f.options)?;
        c.options = f.options;
        Ok(c)
    }
}

impl Validate for KafkaSourceConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        check_range(&mut problems, "batch_size", self.batch_size, 1..=100_000);
        let ms = self.session_timeout.as_millis();
        if !(1000..=3_600_000).contains(&ms) {
            problems.push(ConfigProblem::new(
                "session_timeout",
                "must be between 1s and 1h",
            ));
        }
        if self.flush_interval.is_zero() {
            problems.push(ConfigProblem::new("flush_interval", "must be above zero"));
        }
        problems
    }
}

/// `[kafka_sink]`: stored threats produced to a topic as JSON, one record per threat,
/// keyed by the client IP (so one attacker's threats stay in order on one partition),
/// and optionally IP decisions to a second topic.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, comma-separated `host:port`.
    pub brokers: String,
    /// The topic threats are produced to.
    pub threats_topic: String,
    /// The topic IP decisions (bans and allows: created, extended, deleted, expired)
    /// are produced to, as the store holds them; none when unset.
    #[serde(default)]
    pub decisions_topic: Option<String>,
    /// The topic alert changes (opened, updated, reopened, absorbed, acknowledged,
    /// resolved, dismissed) are produced to, each with the alert as the API shows it;
    /// none when unset.
    #[serde(default)]
    pub alerts_topic: Option<String>,
    /// The topic the request model's predictions are produced to: one record per
    /// request the model scored (probability, class, model version, the threat or event
    /// it goes with), keyed by the client IP; none when unset.
    #[serde(default)]
    pub predictions_topic: Option<String>,
    /// Records the producer may hold while the broker is slow or down; beyond this new
    /// threats are dropped and counted (recording is never slowed by Kafka).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Extra librdkafka properties (SASL, TLS), passed through unchanged.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn default_queue() -> usize {
    100_000
}

impl Validate for KafkaSinkConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.brokers.trim().is_empty() {
            problems.push(ConfigProblem::new("brokers", "name at least one host:port"));
        }
        if self.threats_topic.trim().is_empty() {
            problems.push(ConfigProblem::new("threats_topic", "must not be empty"));
        }
        if self
            .decisions_topic
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            problems.push(ConfigProblem::new("decisions_topic", "must not be empty"));
        }
        if self
            .alerts_topic
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            problems.push(ConfigProblem::new("alerts_topic", "must not be empty"));
        }
        if self
            .predictions_topic
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            problems.push(ConfigProblem::new("predictions_topic", "must not be empty"));
        }
        check_range(&mut problems, "queue", self.queue, 1..=10_000_000);
        if let Err(p) = check_options(&self.options) {
            problems.push(p);
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KafkaSourceConfig, String> {
        toml::from_str::<KafkaSourceConfig>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_issue_example_parses() {
        let c = parse(
            "brokers = \"127.0.0.1:9092\"\ntopics = [\"web-logs\"]\ngroup = \"palisade\"\n\
             format = \"combined\"\nstart = \"earliest\"\n",
        )
        .unwrap();
        assert_eq!(c.name, "kafka");
        assert_eq!(c.format, FormatSpec::Combined);
        assert_eq!(c.start, StartPosition::Earliest);
        assert_eq!(c.target(), "kafka://127.0.0.1:9092/web-logs");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = parse("brokers = \"b:1\"\ntopics = []\n").unwrap_err();
        assert!(e.contains("topics"), "{e}");
        let e = parse("brokers = \"b:1\"\ntopics = [\"t\"]\nstart = \"middle\"\n").unwrap_err();
        assert!(e.contains("start"), "{e}");
        let e = parse("brokers = \"b:1\"\ntopics = [\"t\"]\nformat = \"auto\"\n").unwrap_err();
        assert!(e.contains("format"), "{e}");
        let e = parse("brokers = \"b:1\"\ntopics = [\"t\"]\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = parse(
            "brokers = \"b:1\"\ntopics = [\"t\"]\n[options]\n\"enable.auto.commit\" = \"true\"\n",
        )
        .unwrap_err();
        assert!(e.contains("enable.auto.commit"), "{e}");
    }

    #[test]
    fn ranges_are_checked() {
        let mut c = parse(
            "brokers = \"b:1\"\ntopics = [\"t\"]\nbatch_size = 0\nsession_timeout = \"10ms\"\n",
        )
        .unwrap();
        let problems: Vec<String> = c.finish().iter().map(|p| p.to_string()).collect();
        assert!(
            problems.iter().any(|p| p.contains("batch_size")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("session_timeout")),
            "{problems:?}"
        );
    }

    #[test]
    fn sink_checks_its_keys() {
        let mut s: KafkaSinkConfig =
            toml::from_str("brokers = \"\"\nthreats_topic = \"t\"\n").unwrap();
        assert_eq!(s.queue, 100_000);
        let problems: Vec<String> = s.finish().iter().map(|p| p.to_string()).collect();
        assert!(
            problems.iter().any(|p| p.contains("brokers")),
            "{problems:?}"
        );
    }
}
