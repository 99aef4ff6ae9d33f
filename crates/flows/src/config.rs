//! `[flows]`: flow-table timeouts and its size cap.

use palisade_core::config::{ConfigProblem, Validate, check_range};
use palisade_core::duration::Span;
use serde::Deserialize;

/// `[flows]` (every key optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// A flow with no packet for this long (packet time) is finished (`idle`).
    pub idle_timeout: Span,
    /// A flow older than this is reported and started afresh (`active`), so long
    /// connections show up before they end.
    pub active_timeout: Span,
    /// A TCP flow closed by RST or both FINs is finished this long after the close, so
    /// the last ACKs and retransmitted RSTs still land in it.
    pub closed_timeout: Span,
    /// Most flows tracked at once; past it the least recently active flow is finished
    /// (`evicted`) and counted. About 2.5 KiB per flow at the peak (docs/BENCHMARKS.md).
    pub max_flows: usize,
    /// Keep the device inventory (MAC vendor, addresses, names, OS guess, fingerprints,
    /// services) from the packets and flows.
    pub devices: bool,
    /// Most devices held between two writes to the inventory; past it observations are
    /// dropped and counted.
    pub max_devices: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout: Span::from_secs(120),
            active_timeout: Span::from_secs(1800),
            closed_timeout: Span::from_secs(5),
            max_flows: 1_000_000,
            devices: true,
            max_devices: 65_536,
        }
    }
}

impl Validate for FlowConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut span = |key: &str, v: Span, min: Span, max: Span| {
            if !v.within(min, max) {
                problems.push(ConfigProblem::new(
                    key,
                    format!("must be between {min} and {max} (got {v})"),
                ));
            }
        };
        span(
            "idle_timeout",
            self.idle_timeout,
            Span::from_secs(1),
            Span::from_secs(86_400),
        );
        span(
            "active_timeout",
            self.active_timeout,
            Span::from_secs(10),
            Span::from_secs(7 * 86_400),
        );
        span(
            "closed_timeout",
            self.closed_timeout,
            Span::from_millis(0),
            Span::from_secs(600),
        );
        check_range(&mut problems, "max_flows", self.max_flows, 16..=50_000_000);
        check_range(
            &mut problems,
            "max_devices",
            self.max_devices,
            16..=10_000_000,
        );
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(FlowConfig::default().finish().is_empty());
        let mut c: FlowConfig = toml::from_str("idle_timeout = \"2s\"\nmax_flows = 1").unwrap();
        let keys: Vec<String> = c.finish().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["max_flows".to_string()]);
        assert!(toml::from_str::<FlowConfig>("nope = 1").is_err());
    }
}
