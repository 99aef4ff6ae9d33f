//! IP decisions: bans for a duration (or for good) and allow-list entries that win over
//! them. A decision names one address or one CIDR network; it is enforced in memory by
//! [`crate::decision_set::DecisionSet`] and served to CrowdSec bouncers as it changes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::net::{IpNet, NetError, ip_from_key};
use crate::time::Timestamp;

/// What a decision does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Refuse the address (403 from `/api/v1/check`, and bouncers drop it).
    Ban,
    /// Never ban the address: an allow-list entry wins over every ban that covers it
    /// (the WAF still inspects its requests).
    Allow,
}

impl DecisionKind {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Ban => "ban",
            DecisionKind::Allow => "allow",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ban" => Some(DecisionKind::Ban),
            "allow" => Some(DecisionKind::Allow),
            _ => None,
        }
    }
}

/// Whether a decision names one address or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionScope {
    /// One address (`/32` or `/128`).
    Ip,
    /// A CIDR network.
    Range,
}

impl DecisionScope {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionScope::Ip => "ip",
            DecisionScope::Range => "range",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ip" => Some(DecisionScope::Ip),
            "range" => Some(DecisionScope::Range),
            _ => None,
        }
    }
}

/// Who took a decision, so that an analyst can tell a person's ban from an automatic
/// one (and bouncers can filter on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOrigin {
    /// A person, through the API.
    Manual,
    /// A behaviour scenario (brute force, probing, floods…).
    Scenario,
    /// The WAF (repeated blocked requests).
    Waf,
}

impl DecisionOrigin {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionOrigin::Manual => "manual",
            DecisionOrigin::Scenario => "scenario",
            DecisionOrigin::Waf => "waf",
        }
    }

    /// Reads a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(DecisionOrigin::Manual),
            "scenario" => Some(DecisionOrigin::Scenario),
            "waf" => Some(DecisionOrigin::Waf),
            _ => None,
        }
    }
}

/// Why a decision target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an address or a CIDR network.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A `/0` names every address of its family: as a ban it would refuse everyone, as
    /// an allow-list entry it would switch every ban off.
    #[error("a /0 network covers every address; give a narrower network")]
    EveryAddress,
}

/// The address or network a decision is about, parsed once: its scope, the range of
/// storage keys it covers, and its canonical text (so that `10.0.0.7/24` and
/// `10.0.0.0/24` are the same decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionTarget {
    net: IpNet,
}

impl DecisionTarget {
    /// The target covering exactly one address.
    pub fn ip(ip: IpAddr) -> Self {
        let key = crate::net::ip_key(ip);
        DecisionTarget {
            net: IpNet {
                first: key,
                last: key,
            },
        }
    }

    /// The network as a key range.
    pub fn net(&self) -> IpNet {
        self.net
    }

    /// `Ip` for a single address, `Range` for a wider network.
    pub fn scope(&self) -> DecisionScope {
        if self.net.first == self.net.last {
            DecisionScope::Ip
        } else {
            DecisionScope::Range
        }
    }

    /// The prefix length in the address's own family (32 for one IPv4 address).
    pub fn prefix_len(&self) -> u32 {
        let (addr, key_bits) = self.parts();
        match addr {
            IpAddr::V4(_) => key_bits.saturating_sub(96),
            IpAddr::V6(_) => key_bits,
        }
    }

    /// The first address of the target (its family says how to read
    /// [`DecisionTarget::prefix_len`]).
    pub fn first(&self) -> IpAddr {
        self.parts().0
    }

    /// The first address and the prefix length over the 128-bit key.
    fn parts(&self) -> (IpAddr, u32) {
        let span = u128::from_be_bytes(self.net.first) ^ u128::from_be_bytes(self.net.last);
        let key_bits = span.leading_zeros();
        let addr = ip_from_key(&self.net.first).unwrap_or(IpAddr::V6(self.net.first.into()));
        // An IPv4-mapped network narrower than /96 in key space is an IPv4 network.
        match addr {
            IpAddr::V4(_) if key_bits < 96 => (IpAddr::V6(self.net.first.into()), key_bits),
            other => (other, key_bits),
        }
    }
}

impl fmt::Display for DecisionTarget {
    /// `1.2.3.4` for one address, `1.2.3.0/24` for a network (IPv6 per RFC 5952).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (addr, _) = self.parts();
        match self.scope() {
            DecisionScope::Ip => write!(f, "{addr}"),
            DecisionScope::Range => write!(f, "{addr}/{}", self.prefix_len()),
        }
    }
}

impl FromStr for DecisionTarget {
    type Err = TargetError;

    /// Accepts an address or a CIDR network; host bits are cleared; `/0` is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let net: IpNet = s.trim().parse()?;
        let target = DecisionTarget { net };
        if target.scope() == DecisionScope::Range && target.prefix_len() == 0 {
            return Err(TargetError::EveryAddress);
        }
        Ok(target)
    }
}

impl Serialize for DecisionTarget {
    /// As its canonical text (`1.2.3.4`, `1.2.3.0/24`).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DecisionTarget {
    /// From an address or CIDR network, as [`FromStr`] reads it.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A decision as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// Store id.
    pub id: i64,
    /// ban or allow.
    pub kind: DecisionKind,
    /// ip or range.
    pub scope: DecisionScope,
    /// The address or CIDR network, canonical.
    pub value: String,
    /// The range of storage keys the value covers (for lookups; not serialised).
    #[serde(skip)]
    pub net: IpNet,
    /// manual, scenario or waf.
    pub origin: DecisionOrigin,
    /// The scenario that decided it, or the reason a person gave.
    pub scenario: String,
    /// The user or API key (`apikey:<name>`) that created it, or the scenario engine.
    pub created_by: String,
    /// The threat that led to it, when there is one.
    pub threat_id: Option<i64>,
    /// Created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last changed (created, extended or deleted): what bouncers are sent since.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When it stops; null for good (allow-list entries and manual bans only).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// When it was deleted (or, for an expired decision, when it expired); null while
    /// it has not been removed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<Timestamp>,
    /// Who deleted it, or `expiry`.
    pub deleted_by: Option<String>,
}

impl Decision {
    /// Whether it is in force at `now`: not deleted and not expired.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.deleted_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }

    /// Whether its network shares at least one address with `net`.
    pub fn overlaps(&self, net: &IpNet) -> bool {
        self.net.first <= net.last && net.first <= self.net.last
    }

    /// Whether its network contains every address of `net`.
    pub fn covers(&self, net: &IpNet) -> bool {
        self.net.first <= net.first && net.last <= self.net.last
    }
}

/// A decision to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    /// ban or allow.
    pub kind: DecisionKind,
    /// The address or network.
    pub target: DecisionTarget,
    /// manual, scenario or waf.
    pub origin: DecisionOrigin,
    /// The scenario, or the reason a person gave.
    pub scenario: String,
    /// Who creates it.
    pub created_by: String,
    /// The threat that led to it.
    pub threat_id: Option<i64>,
    /// When it stops; `None` for good.
    pub expires_at: Option<Timestamp>,
}

/// What writing a decision did: one decision is in force per kind and value, so a
/// second ban of the same address extends the first instead of adding a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    /// A new decision.
    Created,
    /// The decision in force now lasts longer.
    Extended,
    /// The decision in force already lasted at least as long.
    Unchanged,
}

/// Whether expiry `a` is later than `b` (`None` is never).
pub fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (None, None) => false,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

/// The longest duration accepted: ten years.
pub const MAX_DURATION_SECS: i64 = 3650 * 86_400;

pub use crate::duration::DurationError;

/// Reads a ban duration in whole seconds, in the one duration grammar
/// ([`crate::duration`]): `3600`, `90s`, `30m`, `4h`, `1.5h`, `7d`, `1h30m`, … At least
/// one second, at most [`MAX_DURATION_SECS`].
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let micros = crate::duration::parse_micros(text)?;
    let secs = micros / crate::duration::MICROS_PER_SEC;
    if secs < 1 {
        Err(DurationError::NotPositive)
    } else if secs > MAX_DURATION_SECS {
        Err(DurationError::TooLong)
    } else {
        Ok(secs)
    }
}

/// A duration in microseconds written as Go's `time.Duration.String()` writes it
/// (`4h0m0s`, `3h59m58.5s`, `1.5ms`, `-2s`), which is what CrowdSec bouncers parse.
pub fn go_duration(micros: i64) -> String {
    let mut out = String::new();
    if micros < 0 {
        out.push('-');
    }
    let u = micros.unsigned_abs();
    if u == 0 {
        return "0s".to_owned();
    }
    if u < 1_000 {
        out.push_str(&format!("{u}µs"));
        return out;
    }
    if u < 1_000_000 {
        out.push_str(&(u / 1_000).to_string());
        push_fraction(&mut out, u % 1_000, 3);
        out.push_str("ms");
        return out;
    }
    let secs = u / 1_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h{m}m"));
    } else if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&s.to_string());
    push_fraction(&mut out, u % 1_000_000, 6);
    out.push('s');
    out
}

/// Appends `.digits` of a fraction with `width` digits, trailing zeros dropped.
fn push_fraction(out: &mut String, frac: u64, width: usize) {
    if frac == 0 {
        return;
    }
    let digits = format!("{frac:0width$}");
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> DecisionTarget {
        s.parse().unwrap()
    }

    #[test]
    fn targets_are_canonical() {
        assert_eq!(target(" 192.0.2.7 ").to_string(), "192.0.2.7");
        assert_eq!(target("192.0.2.7").scope(), DecisionScope::Ip);
        assert_eq!(target("192.0.2.7/32").to_string(), "192.0.2.7");
        assert_eq!(target("10.1.2.3/24").to_string(), "10.1.2.0/24");
        assert_eq!(target("10.1.2.3/24").scope(), DecisionScope::Range);
        assert_eq!(target("10.1.2.3/24").prefix_len(), 24);
        assert_eq!(target("2001:DB8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(target("2001:db8::1").to_string(), "2001:db8::1");
        assert_eq!(target("::ffff:192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(target("::ffff:0:0/104").to_string(), "0.0.0.0/8");
        assert_eq!(target("::ffff:0:0/95").to_string(), "::fffe:0:0/95");
        assert_eq!(target("1.0.0.0/1").to_string(), "0.0.0.0/1");
        assert_eq!(
            DecisionTarget::ip("203.0.113.5".parse().unwrap()),
            target("203.0.113.5")
        );
    }

    #[test]
    fn bad_targets_are_refused() {
        assert_eq!(
            "0.0.0.0/0".parse::<DecisionTarget>(),
            Err(TargetError::EveryAddress)
        );
        assert_eq!(
            "::/0".parse::<DecisionTarget>(),
            Err(TargetError::EveryAddress)
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<DecisionTarget>(),
            Err(TargetError::Net(_))
        ));
        assert!("example.com".parse::<DecisionTarget>().is_err());
        assert!("".parse::<DecisionTarget>().is_err());
    }

    #[test]
    fn names_round_trip() {
        for k in [DecisionKind::Ban, DecisionKind::Allow] {
            assert_eq!(DecisionKind::parse(k.as_str()), Some(k));
        }
        for s in [DecisionScope::Ip, DecisionScope::Range] {
            assert_eq!(DecisionScope::parse(s.as_str()), Some(s));
        }
        for o in [
            DecisionOrigin::Manual,
            DecisionOrigin::Scenario,
            DecisionOrigin::Waf,
        ] {
            assert_eq!(DecisionOrigin::parse(o.as_str()), Some(o));
        }
        assert_eq!(DecisionKind::parse("captcha"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("4h"), Ok(4 * 3600));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(
            parse_duration("1.5h"),
            Ok(5400),
            "the shared grammar takes fractions"
        );
        assert_eq!(parse_duration("0"), Err(DurationError::NotPositive));
        assert_eq!(parse_duration("0s"), Err(DurationError::NotPositive));
        assert_eq!(parse_duration("-5m"), Err(DurationError::NotPositive));
        assert_eq!(parse_duration("3651d"), Err(DurationError::TooLong));
        assert_eq!(
            parse_duration("99999999999999999999"),
            Err(DurationError::TooLong)
        );
        for bad in ["", "h", "4x", "4h30", "four hours"] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(4 * 3_600_000_000), "4h0m0s");
        assert_eq!(go_duration(14_398_500_000), "3h59m58.5s");
        assert_eq!(go_duration(61_000_000), "1m1s");
        assert_eq!(go_duration(1_000_000), "1s");
        assert_eq!(go_duration(1_500), "1.5ms");
        assert_eq!(go_duration(999), "999µs");
        assert_eq!(go_duration(-2_000_000), "-2s");
        assert_eq!(go_duration(3_600_000_001), "1h0m0.000001s");
    }

    #[test]
    fn expiry_order_and_activity() {
        let t = |s| Some(Timestamp::from_secs(s));
        assert!(later(None, t(5)));
        assert!(later(t(6), t(5)));
        assert!(!later(t(5), t(5)));
        assert!(!later(t(5), None));
        assert!(!later(None, None));
        let net = target("10.0.0.0/8").net();
        let d = Decision {
            id: 1,
            kind: DecisionKind::Ban,
            scope: DecisionScope::Range,
            value: "10.0.0.0/8".into(),
            net,
            origin: DecisionOrigin::Manual,
            scenario: "x".into(),
            created_by: "admin".into(),
            threat_id: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            expires_at: t(10),
            deleted_at: None,
            deleted_by: None,
        };
        assert!(d.is_active(Timestamp::from_secs(9)));
        assert!(!d.is_active(Timestamp::from_secs(10)));
        assert!(d.covers(&target("10.1.0.0/16").net()));
        assert!(!d.covers(&target("8.0.0.0/6").net()));
        assert!(d.overlaps(&target("8.0.0.0/6").net()));
        assert!(!d.overlaps(&target("11.0.0.0/8").net()));
    }
}
