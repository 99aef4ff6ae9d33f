//! What may be banned, and by whom: the guard rails around IP decisions.
//!
//! Without them an `ingest` key could push forged log lines that trip a scenario and
//! ban loopback (after which every request through the protecting proxy got 403), and
//! an analyst could ban a `/1`. So:
//! - nobody bans loopback, the unspecified address, Palisade's own listen addresses or
//!   the trusted front proxies (`/check` and proxy configuration), nor anything in
//!   `[decisions] protected`; a ban whose range *overlaps* one of these is refused;
//! - automatic bans (scenarios, the WAF) also leave private ranges (RFC 1918, ULA,
//!   link-local, CGNAT) alone unless `[decisions] ban_private = true`;
//! - no ban is wider than `max_prefix_v4` / `max_prefix_v6` (default /16 and /32:
//!   a narrower prefix number is a wider network);
//! - only the sources allowed to (`BanSources`) may cause scenario bans: configured
//!   sources by default, HTTP pushes only with `[ingest] push_bans = true`.

use std::collections::HashSet;
use std::net::IpAddr;

use palisade_core::decision::{DecisionOrigin, DecisionTarget};
use palisade_core::net::IpNet;

/// Why a ban was refused, for the API's problem answer and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BanRefused {
    /// The range covers an address Palisade must keep reaching.
    #[error("{target} covers {protected}, which is never banned ({why})")]
    Protected {
        /// The requested target.
        target: String,
        /// The protected range it overlaps.
        protected: String,
        /// Why that range is protected.
        why: &'static str,
    },
    /// Wider than the configured limit.
    #[error("{target} is wider than the largest ban allowed (/{max} for this family)")]
    TooWide {
        /// The requested target.
        target: String,
        /// The smallest prefix length accepted.
        max: u32,
    },
}

/// One protected range and why.
#[derive(Debug, Clone)]
struct Protected {
    net: IpNet,
    text: String,
    why: &'static str,
    /// Only automatic bans are refused (private ranges).
    automatic_only: bool,
}

/// The rules a ban must pass (see the module documentation).
#[derive(Debug, Clone)]
pub struct BanPolicy {
    protected: Vec<Protected>,
    max_prefix_v4: u32,
    max_prefix_v6: u32,
}

const ALWAYS: &[(&str, &str)] = &[
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("0.0.0.0/32", "the unspecified address"),
    ("::/128", "the unspecified address"),
    ("::ffff:127.0.0.0/104", "loopback"),
];

const PRIVATE: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
];

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy::new(&[], &[], false, 16, 32)
    }
}

impl BanPolicy {
    /// The policy: the built-in protected ranges, Palisade's own addresses and trusted
    /// proxies (`own`, never banned), the operator's `protected` ranges, whether
    /// automatic bans may touch private ranges, and the widest prefixes allowed.
    pub fn new(
        own: &[(IpNet, String)],
        protected: &[(IpNet, String)],
        ban_private: bool,
        max_prefix_v4: u32,
        max_prefix_v6: u32,
    ) -> BanPolicy {
        let mut list: Vec<Protected> = ALWAYS
            .iter()
            .filter_map(|(net, why)| {
                Some(Protected {
                    net: net.parse().ok()?,
                    text: (*net).to_owned(),
                    why,
                    automatic_only: false,
                })
            })
            .collect();
        for (net, text) in own {
            list.push(Protected {
                net: *net,
                text: text.clone(),
                why: "Palisade's own address or a trusted proxy",
                automatic_only: false,
            });
        }
        for (net, text) in protected {
            list.push(Protected {
                net: *net,
                text: text.clone(),
                why: "listed in [decisions] protected",
                automatic_only: false,
            });
        }
        if !ban_private {
            list.extend(PRIVATE.iter().filter_map(|net| {
                Some(Protected {
                    net: net.parse().ok()?,
                    text: (*net).to_owned(),
                    why: "a private range; set [decisions] ban_private = true to allow automatic bans there",
                    automatic_only: true,
                })
            }));
        }
        BanPolicy {
            protected: list,
            max_prefix_v4,
            max_prefix_v6,
        }
    }

    /// Whether `origin` may ban `target`.
    pub fn check(&self, target: &DecisionTarget, origin: DecisionOrigin) -> Result<(), BanRefused> {
        let text = target.to_string();
        let max = match target.first() {
            IpAddr::V4(_) => self.max_prefix_v4,
            IpAddr::V6(_) => self.max_prefix_v6,
        };
        if target.prefix_len() < max {
            return Err(BanRefused::TooWide { target: text, max });
        }
        let automatic = origin != DecisionOrigin::Manual;
        let net = target.net();
        for p in &self.protected {
            if (automatic || !p.automatic_only) && overlaps(&net, &p.net) {
                return Err(BanRefused::Protected {
                    target: text,
                    protected: p.text.clone(),
                    why: p.why,
                });
            }
        }
        Ok(())
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.first <= b.last && b.first <= a.last
}

/// The sources whose events may cause scenario bans (by source name).
#[derive(Debug, Clone, Default)]
pub struct BanSources {
    names: HashSet<String>,
    any: bool,
}

impl BanSources {
    /// Only these source names.
    pub fn only(names: impl IntoIterator<Item = String>) -> BanSources {
        BanSources {
            names: names.into_iter().collect(),
            any: false,
        }
    }

    /// Every source (tests, and setups that trust all their inputs).
    pub fn any() -> BanSources {
        BanSources {
            names: HashSet::new(),
            any: true,
        }
    }

    /// Whether events from `source` may cause a ban.
    pub fn allows(&self, source: &str) -> bool {
        self.any || self.names.contains(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DecisionTarget {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_own_and_trusted_addresses_are_never_banned() {
        let own = [("10.0.0.5".parse().unwrap(), "10.0.0.5".to_owned())];
        let p = BanPolicy::new(&own, &[], false, 16, 32);
        for (target, origin) in [
            ("127.0.0.1", DecisionOrigin::Scenario),
            ("127.0.0.1", DecisionOrigin::Manual),
            ("::1", DecisionOrigin::Manual),
            ("::ffff:127.0.0.1", DecisionOrigin::Manual),
            ("10.0.0.5", DecisionOrigin::Manual),
            ("10.0.0.0/16", DecisionOrigin::Manual),
        ] {
            assert!(
                matches!(
                    p.check(&t(target), origin),
                    Err(BanRefused::Protected { .. })
                ),
                "{target} by {origin:?}"
            );
        }
        assert!(p.check(&t("203.0.113.9"), DecisionOrigin::Scenario).is_ok());
    }

    #[test]
    fn private_ranges_only_stop_automatic_bans_unless_allowed() {
        let p = BanPolicy::default();
        assert!(
            p.check(&t("192.168.1.20"), DecisionOrigin::Scenario)
                .is_err()
        );
        assert!(p.check(&t("192.168.1.20"), DecisionOrigin::Manual).is_ok());
        let allowed = BanPolicy::new(&[], &[], true, 16, 32);
        assert!(
            allowed
                .check(&t("192.168.1.20"), DecisionOrigin::Scenario)
                .is_ok()
        );
    }

    #[test]
    fn wide_bans_are_refused() {
        let p = BanPolicy::default();
        assert!(matches!(
            p.check(&t("64.0.0.0/2"), DecisionOrigin::Manual),
            Err(BanRefused::TooWide { max: 16, .. })
        ));
        assert!(p.check(&t("198.51.0.0/16"), DecisionOrigin::Manual).is_ok());
        assert!(
            p.check(&t("2001:db8::/16"), DecisionOrigin::Manual)
                .is_err()
        );
        assert!(p.check(&t("2001:db8::/48"), DecisionOrigin::Manual).is_ok());
    }

    #[test]
    fn ban_sources() {
        let s = BanSources::only(["web1".to_owned()]);
        assert!(s.allows("web1"));
        assert!(!s.allows("push"));
        assert!(BanSources::any().allows("push"));
    }
}
