//! The topics clients subscribe to.

use std::fmt;
use std::str::FromStr;

/// A topic of the live feed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Alerts opened, updated, acknowledged, resolved.
    Alerts,
    /// Threats as they are stored.
    Threats,
    /// Stored traffic, in batches (about every two seconds).
    Traffic,
    /// The activity feed (alert changes, sources up/down, reloads, settings).
    Activities,
    /// Real-time figures, every few seconds.
    Metrics,
    /// Every job's state and progress.
    Jobs,
    /// One job's log lines and progress (`job:<id>`).
    Job(i64),
    /// Network flows as they are finalised.
    Flows,
    /// Device inventory changes.
    Devices,
    /// Control messages of the feed itself (subscription changes, gaps, errors).
    Control,
}

/// Why a topic name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError(pub String);

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown topic '{}': use alerts, threats, traffic, activities, metrics, jobs, job:<id>, flows or devices",
            self.0
        )
    }
}

impl std::error::Error for TopicError {}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "alerts" => Topic::Alerts,
            "threats" => Topic::Threats,
            "traffic" => Topic::Traffic,
            "activities" => Topic::Activities,
            "metrics" => Topic::Metrics,
            "jobs" => Topic::Jobs,
            "flows" => Topic::Flows,
            "devices" => Topic::Devices,
            other => match other.strip_prefix("job:").map(str::parse::<i64>) {
                Some(Ok(id)) if id > 0 => Topic::Job(id),
                _ => return Err(TopicError(s.chars().take(64).collect())),
            },
        })
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Alerts => f.write_str("alerts"),
            Topic::Threats => f.write_str("threats"),
            Topic::Traffic => f.write_str("traffic"),
            Topic::Activities => f.write_str("activities"),
            Topic::Metrics => f.write_str("metrics"),
            Topic::Jobs => f.write_str("jobs"),
            Topic::Job(id) => write!(f, "job:{id}"),
            Topic::Flows => f.write_str("flows"),
            Topic::Devices => f.write_str("devices"),
            Topic::Control => f.write_str("control"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_bad_ones_say_what_is_accepted() {
        for t in ["alerts", "threats", "traffic", "job:42", "devices"] {
            assert_eq!(t.parse::<Topic>().unwrap().to_string(), t);
        }
        for bad in ["", "job:", "job:-1", "job:x", "everything", "control"] {
            let err = bad.parse::<Topic>().unwrap_err();
            assert!(err.to_string().contains("use alerts"), "{bad}");
        }
    }
}
