//! IP addresses as sortable bytes, so that a CIDR filter becomes an index range scan on
//! both store backends.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// Why an address or network could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("'{0}' is not an IP address")]
    BadAddress(String),
    /// The prefix length is not a number within the address family's width.
    #[error("prefix length '{0}' is out of range")]
    BadPrefix(String),
}

/// The 16-byte form used for storage: IPv4 is mapped into `::ffff:0:0/96`, so that one
/// column and one ordering hold both families.
pub fn ip_key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Reads the 16-byte storage form back, unmapping IPv4.
pub fn ip_from_key(key: &[u8]) -> Option<IpAddr> {
    let arr: [u8; 16] = key.try_into().ok()?;
    let v6 = Ipv6Addr::from(arr);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// An IP network (a single address is a /32 or /128), as the inclusive range of
/// storage keys it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The lowest storage key in the network.
    pub first: [u8; 16],
    /// The highest storage key in the network.
    pub last: [u8; 16],
}

impl IpNet {
    /// Whether an address falls inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let k = ip_key(ip);
        self.first <= k && k <= self.last
    }
}

impl FromStr for IpNet {
    type Err = NetError;

    /// Accepts `1.2.3.4`, `1.2.3.0/24`, `2001:db8::1` and `2001:db8::/32`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| NetError::BadAddress(addr.to_owned()))?;
        let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match prefix {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|b| *b <= width)
                .ok_or_else(|| NetError::BadPrefix(p.to_owned()))?,
        };
        let host_bits = width - bits;
        let key = u128::from_be_bytes(ip_key(ip));
        let mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        Ok(IpNet {
            first: (key & !mask).to_be_bytes(),
            last: (key | mask).to_be_bytes(),
        })
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    /// Reads the text forms [`IpNet::from_str`] accepts, so configuration sections can
    /// hold lists of networks.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(|error: NetError| {
            serde::de::Error::custom(format!(
                "'{text}' is not an IP address or CIDR network ({error})"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_network_bounds() {
        let n: IpNet = "10.1.2.3/24".parse().unwrap();
        assert!(n.contains("10.1.2.0".parse().unwrap()));
        assert!(n.contains("10.1.2.255".parse().unwrap()));
        assert!(!n.contains("10.1.3.0".parse().unwrap()));
        assert!(!n.contains("::a01:200".parse().unwrap()));
    }

    #[test]
    fn v6_and_single_address() {
        let n: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(n.contains("2001:db8:ffff::1".parse().unwrap()));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert_eq!(one.first, one.last);
        let all: IpNet = "::/0".parse().unwrap();
        assert!(all.contains("1.1.1.1".parse().unwrap()));
    }

    #[test]
    fn rejects_bad_input() {
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nope/8".parse::<IpNet>().is_err());
        assert!("10.0.0.0/x".parse::<IpNet>().is_err());
    }

    #[test]
    fn key_round_trip() {
        for s in ["1.2.3.4", "::1", "2001:db8::5"] {
            let ip: IpAddr = s.parse().unwrap();
            assert_eq!(ip_from_key(&ip_key(ip)), Some(ip));
        }
    }
}
