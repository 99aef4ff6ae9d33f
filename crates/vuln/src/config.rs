//! `[vuln]`: the vulnerability engine's settings (feeds, observation of software in
//! traffic and logs, upload limits).

use palisade_core::config::{ConfigProblem, Validate, check_range};
use palisade_core::duration::Span;
use serde::Deserialize;

use crate::http::RetryPolicy;

/// `[vuln]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VulnConfig {
    /// `[vuln.nvd]`: the NVD API 2.0 feed.
    pub nvd: NvdConfig,
    /// `[vuln.circl]`: the CIRCL vulnerability-lookup feed.
    pub circl: CirclConfig,
    /// Record software seen in proxied answers (`Server`, `X-Powered-By`) and syslog
    /// lines, and match it.
    pub observe: bool,
    /// Sightings waiting to be recorded; beyond it they are dropped (and counted), so
    /// that the proxy never waits.
    pub observe_queue: usize,
    /// The same sighting (asset, header text) is recorded again at most this often.
    pub observe_refresh: Span,
    /// Most software items one inventory upload may hold.
    pub max_inventory_items: usize,
}

impl Default for VulnConfig {
    fn default() -> Self {
        VulnConfig {
            nvd: NvdConfig::default(),
            circl: CirclConfig::default(),
            observe: true,
            observe_queue: 1024,
            observe_refresh: Span::from_secs(600),
            max_inventory_items: 100_000,
        }
    }
}

/// `[vuln.nvd]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NvdConfig {
    /// The CVE API 2.0 endpoint.
    pub url: String,
    /// The name of the secret (in the encrypted secrets store) holding the API key; no
    /// such secret means no key and the lower rate limit.
    pub api_key_secret: String,
    /// Records per page (the API allows up to 2000).
    pub page_size: u32,
    /// Requests allowed per `rate_window` without an API key (NVD publishes 5 per 30 s).
    pub requests_without_key: u32,
    /// Requests allowed per `rate_window` with an API key (NVD publishes 50 per 30 s).
    pub requests_with_key: u32,
    /// The rate-limit window.
    pub rate_window: Span,
    /// Per-request timeout.
    pub timeout: Span,
    /// Attempts per page before the sync stops (it resumes from its cursor next time).
    pub attempts: u32,
    /// First pause between attempts (doubling, with jitter).
    pub backoff: Span,
    /// Longest pause between attempts.
    pub max_backoff: Span,
    /// An incremental sync starts this long before the last one started, so that
    /// records modified during a sync are not missed.
    pub overlap: Span,
    /// Largest page accepted, in bytes.
    pub max_page_bytes: usize,
}

impl Default for NvdConfig {
    fn default() -> Self {
        NvdConfig {
            url: "https://services.nvd.nist.gov/rest/json/cves/2.0".into(),
            api_key_secret: "nvd_api_key".into(),
            page_size: 2000,
            requests_without_key: 5,
            requests_with_key: 50,
            rate_window: Span::from_secs(30),
            timeout: Span::from_secs(120),
            attempts: 8,
            backoff: Span::from_secs(2),
            max_backoff: Span::from_secs(120),
            overlap: Span::from_secs(3600),
            max_page_bytes: 256 * 1024 * 1024,
        }
    }
}

impl NvdConfig {
    /// The retry policy these settings describe.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.attempts,
            first_backoff: self.backoff.to_std(),
            max_backoff: self.max_backoff.to_std(),
            timeout: self.timeout.to_std(),
            max_body: self.max_page_bytes,
        }
    }
}

/// `[vuln.circl]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CirclConfig {
    /// The vulnerability-lookup instance.
    pub url: String,
    /// Requests allowed per `rate_window` (a courtesy limit: CIRCL publishes none).
    pub requests: u32,
    /// The rate-limit window.
    pub rate_window: Span,
    /// Per-request timeout.
    pub timeout: Span,
    /// Attempts per record.
    pub attempts: u32,
    /// First pause between attempts (doubling, with jitter).
    pub backoff: Span,
    /// Longest pause between attempts.
    pub max_backoff: Span,
}

impl Default for CirclConfig {
    fn default() -> Self {
        CirclConfig {
            url: "https://vulnerability.circl.lu".into(),
            requests: 10,
            rate_window: Span::from_secs(1),
            timeout: Span::from_secs(30),
            attempts: 5,
            backoff: Span::from_secs(1),
            max_backoff: Span::from_secs(60),
        }
    }
}

impl CirclConfig {
    /// The retry policy these settings describe.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.attempts,
            first_backoff: self.backoff.to_std(),
            max_backoff: self.max_backoff.to_std(),
            timeout: self.timeout.to_std(),
            max_body: 16 * 1024 * 1024,
        }
    }
}

fn check_url(problems: &mut Vec<ConfigProblem>, key: &str, url: &str) {
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 10 {
        problems.push(ConfigProblem::new(
            key,
            format!("'{url}' must be an http:// or https:// URL"),
        ));
    }
}

fn check_span(problems: &mut Vec<ConfigProblem>, key: &str, v: Span, min: Span, max: Span) {
    if !v.within(min, max) {
        problems.push(ConfigProblem::new(
            key,
            format!("must be between {min} and {max} (got {v})"),
        ));
    }
}

impl Validate for VulnConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let n = &self.nvd;
        check_url(&mut p, "nvd.url", &n.url);
        if n.api_key_secret.trim().is_empty() || n.api_key_secret.len() > 128 {
            p.push(ConfigProblem::new(
                "nvd.api_key_secret",
                "must be a secret name of 1 to 128 characters",
            ));
        }
        check_range(&mut p, "nvd.page_size", n.page_size, 1..=2000);
        check_range(
            &mut p,
            "nvd.requests_without_key",
            n.requests_without_key,
            1..=1000,
        );
        check_range(
            &mut p,
            "nvd.requests_with_key",
            n.requests_with_key,
            1..=1000,
        );
        check_range(&mut p, "nvd.attempts", n.attempts, 1..=100);
        check_range(
            &mut p,
            "nvd.max_page_bytes",
            n.max_page_bytes,
            1024..=4 * 1024 * 1024 * 1024,
        );
        let (ms, day) = (Span::from_millis(1), Span::from_secs(86_400));
        check_span(
            &mut p,
            "nvd.rate_window",
            n.rate_window,
            ms,
            Span::from_secs(3600),
        );
        check_span(&mut p, "nvd.timeout", n.timeout, ms, Span::from_secs(3600));
        check_span(&mut p, "nvd.backoff", n.backoff, ms, Span::from_secs(3600));
        check_span(&mut p, "nvd.max_backoff", n.max_backoff, n.backoff, day);
        check_span(
            &mut p,
            "nvd.overlap",
            n.overlap,
            ms,
            Span::from_secs(30 * 86_400),
        );
        let c = &self.circl;
        check_url(&mut p, "circl.url", &c.url);
        check_range(&mut p, "circl.requests", c.requests, 1..=1000);
        check_range(&mut p, "circl.attempts", c.attempts, 1..=100);
        check_span(
            &mut p,
            "circl.rate_window",
            c.rate_window,
            ms,
            Span::from_secs(3600),
        );
        check_span(
            &mut p,
            "circl.timeout",
            c.timeout,
            ms,
            Span::from_secs(3600),
        );
        check_span(
            &mut p,
            "circl.backoff",
            c.backoff,
            ms,
            Span::from_secs(3600),
        );
        check_span(&mut p, "circl.max_backoff", c.max_backoff, c.backoff, day);
        check_range(&mut p, "observe_queue", self.observe_queue, 1..=1_000_000);
        check_span(
            &mut p,
            "observe_refresh",
            self.observe_refresh,
            Span::from_secs(1),
            day,
        );
        check_range(
            &mut p,
            "max_inventory_items",
            self.max_inventory_items,
            1..=10_000_000,
        );
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(VulnConfig::default().finish().is_empty());
        let mut c: VulnConfig = toml::from_str(
            "observe_queue = 0\n[nvd]\nurl = \"ftp://x\"\npage_size = 5000\nbackoff = \"10s\"\nmax_backoff = \"1s\"\n",
        )
        .unwrap();
        let keys: Vec<String> = c.finish().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "nvd.url",
                "nvd.page_size",
                "nvd.max_backoff",
                "observe_queue"
            ]
        );
        assert!(toml::from_str::<VulnConfig>("nope = 1").is_err());
        let c: VulnConfig = toml::from_str("[nvd]\ntimeout = \"90s\"\n").unwrap();
        assert_eq!(c.nvd.timeout, Span::from_secs(90));
    }
}
