//! Event fields a scenario groups by, counts distinct values of, or samples.
//!
//! One enum for all three uses, so `group_by`, `distinct` and `samples` accept the same
//! spellings and read the event the same way.

use std::fmt::Write as _;
use std::net::IpAddr;

use palisade_core::Event;
use palisade_core::net::ip_key;

use crate::hash::Seed;

/// A field of [`Event`], named as in scenario files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// The client address, masked to a network (`/32` and `/128` for the address itself).
    ClientIp {
        /// Prefix length kept for IPv4 addresses.
        v4: u8,
        /// Prefix length kept for IPv6 addresses.
        v6: u8,
    },
    /// The (attempted) user name.
    User,
    /// The virtual host.
    Host,
    /// The HTTP method.
    Method,
    /// The request path (as logged, still percent-encoded).
    Path,
    /// The User-Agent header.
    UserAgent,
    /// The response status.
    Status,
    /// The event source's name.
    Source,
    /// A named entry of `Event::extra` (`extra:outcome`).
    Extra(String),
}

impl Field {
    /// Parses `client_ip`, `client_ip/24`, `client_ip/24/64`, `client_net` (= /24 and
    /// /64), `user`, `host`, `method`, `path`, `user_agent`, `status`, `source` and
    /// `extra:NAME`.
    pub fn parse(name: &str) -> Option<Field> {
        let name = name.trim();
        if let Some(n) = name.strip_prefix("extra:") {
            return (!n.is_empty()).then(|| Field::Extra(n.to_owned()));
        }
        if name == "client_net" {
            return Some(Field::ClientIp { v4: 24, v6: 64 });
        }
        if let Some(rest) = name.strip_prefix("client_ip") {
            if rest.is_empty() {
                return Some(Field::ClientIp { v4: 32, v6: 128 });
            }
            let rest = rest.strip_prefix('/')?;
            let (a, b) = match rest.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (rest, None),
            };
            let v4: u8 = a.parse().ok().filter(|p| (1..=32).contains(p))?;
            let v6: u8 = match b {
                Some(b) => b.parse().ok().filter(|p| (1..=128).contains(p))?,
                None => 64,
            };
            return Some(Field::ClientIp { v4, v6 });
        }
        Some(match name {
            "user" => Field::User,
            "host" => Field::Host,
            "method" => Field::Method,
            "path" => Field::Path,
            "user_agent" => Field::UserAgent,
            "status" => Field::Status,
            "source" => Field::Source,
            _ => return None,
        })
    }

    /// The spelling used in alerts and snapshots (`client_ip`, `client_net/24/64`, …).
    pub fn name(&self) -> String {
        match self {
            Field::ClientIp { v4: 32, v6: 128 } => "client_ip".into(),
            Field::ClientIp { v4, v6 } => format!("client_ip/{v4}/{v6}"),
            Field::User => "user".into(),
            Field::Host => "host".into(),
            Field::Method => "method".into(),
            Field::Path => "path".into(),
            Field::UserAgent => "user_agent".into(),
            Field::Status => "status".into(),
            Field::Source => "source".into(),
            Field::Extra(n) => format!("extra:{n}"),
        }
    }

    /// Whether this is the client address (whole or masked).
    pub fn is_ip(&self) -> bool {
        matches!(self, Field::ClientIp { .. })
    }

    /// The string value, for fields that are strings.
    pub(crate) fn str_value<'e>(&self, ev: &'e Event) -> Option<&'e str> {
        match self {
            Field::User => ev.user.as_deref(),
            Field::Host => ev.host.as_deref(),
            Field::Method => ev.method.as_deref(),
            Field::Path => ev.path.as_deref(),
            Field::UserAgent => ev.user_agent.as_deref(),
            Field::Source => Some(ev.source.as_str()),
            Field::Extra(n) => extra(ev, n),
            Field::ClientIp { .. } | Field::Status => None,
        }
    }

    /// The masked client address as a 16-byte key (IPv4 mapped), when this is the
    /// client address field and the event has one.
    pub(crate) fn ip_value(&self, ev: &Event) -> Option<u128> {
        match self {
            Field::ClientIp { v4, v6 } => ev.client_ip.map(|ip| masked(ip, *v4, *v6)),
            _ => None,
        }
    }

    /// A keyed hash of the value; `None` when the event lacks the field.
    pub(crate) fn hash(&self, ev: &Event, seed: &Seed, tag: u64) -> Option<u64> {
        match self {
            Field::ClientIp { .. } => {
                let k = self.ip_value(ev)?;
                Some(seed.hash_bytes(tag, &k.to_le_bytes()))
            }
            Field::Status => ev.status.map(|s| seed.hash_bytes(tag, &s.to_le_bytes())),
            _ => self
                .str_value(ev)
                .map(|s| seed.hash_bytes(tag, s.as_bytes())),
        }
    }

    /// The value as text for samples and alert keys; networks as `a.b.c.0/24`.
    pub(crate) fn render(&self, ev: &Event, out: &mut String) -> bool {
        match self {
            Field::ClientIp { v4, v6 } => {
                let Some(ip) = ev.client_ip else {
                    return false;
                };
                out.push_str(&render_net(ip, *v4, *v6));
                true
            }
            Field::Status => match ev.status {
                Some(s) => {
                    let _ = write!(out, "{s}");
                    true
                }
                None => false,
            },
            _ => match self.str_value(ev) {
                Some(v) => {
                    push_capped(out, v, MAX_VALUE_CHARS);
                    true
                }
                None => false,
            },
        }
    }
}

/// Longest sample or key value kept, in characters.
pub(crate) const MAX_VALUE_CHARS: usize = 120;

/// Appends at most `max` characters of `v`, marking a cut with `…`.
pub(crate) fn push_capped(out: &mut String, v: &str, max: usize) {
    match v.char_indices().nth(max) {
        Some((cut, _)) => {
            out.push_str(&v[..cut]);
            out.push('…');
        }
        None => out.push_str(v),
    }
}

/// The first value of a named `extra` field.
pub(crate) fn extra<'e>(ev: &'e Event, name: &str) -> Option<&'e str> {
    ev.extra
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The 16-byte key of `ip` with host bits cleared (IPv4 mapped into `::ffff:0:0/96`, so
/// the IPv4 prefix applies to the last 32 bits).
pub(crate) fn masked(ip: IpAddr, v4: u8, v6: u8) -> u128 {
    let key = u128::from_be_bytes(ip_key(ip));
    let host_bits = match ip {
        IpAddr::V4(_) => 32 - u32::from(v4.min(32)),
        IpAddr::V6(_) => 128 - u32::from(v6.min(128)),
    };
    if host_bits >= 128 {
        0
    } else {
        key & !((1u128 << host_bits) - 1)
    }
}

/// `ip` as shown in alerts: the address itself, or its network in CIDR form.
pub(crate) fn render_net(ip: IpAddr, v4: u8, v6: u8) -> String {
    let (prefix, width) = match ip {
        IpAddr::V4(_) => (v4, 32),
        IpAddr::V6(_) => (v6, 128),
    };
    if prefix >= width {
        return ip.to_string();
    }
    let key = masked(ip, v4, v6);
    let base = palisade_core::net::ip_from_key(&key.to_be_bytes()).unwrap_or(ip);
    format!("{base}/{prefix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!(
            Field::parse("client_ip"),
            Some(Field::ClientIp { v4: 32, v6: 128 })
        );
        assert_eq!(
            Field::parse("client_net"),
            Some(Field::ClientIp { v4: 24, v6: 64 })
        );
        assert_eq!(
            Field::parse("client_ip/16"),
            Some(Field::ClientIp { v4: 16, v6: 64 })
        );
        assert_eq!(
            Field::parse("client_ip/24/48"),
            Some(Field::ClientIp { v4: 24, v6: 48 })
        );
        assert_eq!(
            Field::parse("extra:outcome"),
            Some(Field::Extra("outcome".into()))
        );
        for bad in [
            "client_ip/0",
            "client_ip/33",
            "client_ip/24/129",
            "extra:",
            "nope",
        ] {
            assert_eq!(Field::parse(bad), None, "{bad}");
        }
        for name in ["client_ip", "client_ip/24/64", "user", "extra:program"] {
            assert_eq!(Field::parse(name).map(|f| f.name()).as_deref(), Some(name));
        }
    }

    #[test]
    fn networks_render_and_mask() {
        let ip: IpAddr = "203.0.113.77".parse().unwrap();
        assert_eq!(render_net(ip, 24, 64), "203.0.113.0/24");
        assert_eq!(render_net(ip, 32, 128), "203.0.113.77");
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(render_net(v6, 24, 64), "2001:db8:1:2::/64");
        let other: IpAddr = "203.0.113.1".parse().unwrap();
        assert_eq!(masked(ip, 24, 64), masked(other, 24, 64));
        assert_ne!(masked(ip, 32, 128), masked(other, 32, 128));
    }

    #[test]
    fn caps_values_on_char_boundaries() {
        let mut s = String::new();
        push_capped(&mut s, "ééééé", 3);
        assert_eq!(s, "ééé…");
    }
}
