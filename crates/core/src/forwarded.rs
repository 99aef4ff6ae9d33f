//! Who the client is when a request came through proxies: the one trusted-proxies
//! model shared by `/api/v1/check` and the protecting proxy.
//!
//! Each proxy appends the address it received the request from to `X-Forwarded-For`,
//! so the list reads client, proxy 1, proxy 2, … and only its right end was written by
//! proxies we trust: anything to the left of the first untrusted hop was written by
//! someone we do not trust and may be invented. The client is therefore the rightmost
//! hop that is not a trusted proxy, walking left from the peer (nginx's `real_ip` with
//! `real_ip_recursive on` works the same way). Headers are believed only from a trusted
//! peer; from anyone else the peer is the client.
//!
//! `X-Real-IP` is a trusted peer's one-hop statement of the client and is read only when
//! there is no `X-Forwarded-For` at all: front proxies that append to
//! `X-Forwarded-For` but pass the client's own `X-Real-IP` through cannot be fooled by it,
//! and older set-ups that only set `X-Real-IP` keep working.

use std::net::{IpAddr, SocketAddr};

use crate::net::IpNet;

/// Loopback networks: the default trusted proxies of `/api/v1/check` (a reverse proxy
/// on the same host).
pub fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Whether `ip` is in any of `networks`.
pub fn in_networks(networks: &[IpNet], ip: IpAddr) -> bool {
    networks.iter().any(|n| n.contains(ip))
}

/// Reads one `X-Forwarded-For` entry: an address, optionally with a port
/// (`203.0.113.9:5678`, `[2001:db8::1]:443`) or in brackets. `None` for anything else
/// (`unknown`, obfuscated identifiers, garbage).
pub fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

/// The client of a request received from `peer`, given the values of its
/// `X-Forwarded-For` headers (in order; each may hold a comma-separated list), its
/// `X-Real-IP` value, and which addresses are trusted proxies.
///
/// - An untrusted peer is the client; its headers are ignored.
/// - Otherwise the hops are walked from the right: the first untrusted one is the
///   client. An entry that is not an address stops the walk (nothing to its left can
///   be believed) and the last trusted hop is the client. When every hop is trusted the
///   leftmost one is the client.
/// - Without `X-Forwarded-For`, a trusted peer's `X-Real-IP` names the client.
pub fn forwarded_client<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    real_ip: Option<&str>,
    trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    if !trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if hops.is_empty() {
        return real_ip.and_then(parse_hop).unwrap_or(peer);
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if !trusted(ip) => return ip,
            Some(ip) => client = ip,
            None => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let trusted = nets(&["10.0.0.0/8"]);
        let client = forwarded_client(ip("198.51.100.7"), ["8.8.8.8"], Some("8.8.4.4"), |a| {
            in_networks(&trusted, a)
        });
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client_so_prepended_entries_do_not_count() {
        let trusted = nets(&["10.0.0.0/8"]);
        let t = |a| in_networks(&trusted, a);
        // The client sent "8.8.8.8"; the load balancer appended what it saw.
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), ["8.8.8.8, 203.0.113.9"], None, t),
            ip("203.0.113.9")
        );
        // Several trusted hops, several headers.
        assert_eq!(
            forwarded_client(
                ip("10.0.0.2"),
                ["6.6.6.6, 203.0.113.9", "10.1.1.1"],
                None,
                t
            ),
            ip("203.0.113.9")
        );
        // X-Real-IP cannot override an X-Forwarded-For the proxies wrote.
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), ["203.0.113.9"], Some("8.8.8.8"), t),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost_and_garbage_stops_the_walk() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.0/8"]);
        let t = |a| in_networks(&trusted, a);
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), ["10.9.9.9, 10.0.0.3"], None, t),
            ip("10.9.9.9")
        );
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), ["8.8.8.8, unknown, 10.0.0.3"], None, t),
            ip("10.0.0.3")
        );
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), ["garbage"], None, t),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn without_forwarded_for_a_trusted_peers_real_ip_is_read() {
        let trusted = loopback();
        let t = |a| in_networks(&trusted, a);
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), [], Some("203.0.113.5"), t),
            ip("203.0.113.5")
        );
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), [], Some("nope"), t),
            ip("127.0.0.1")
        );
        assert_eq!(forwarded_client(ip("::1"), [], None, t), ip("::1"));
    }

    #[test]
    fn hops_with_ports_and_brackets_are_read() {
        assert_eq!(parse_hop("203.0.113.9:5678"), Some(ip("203.0.113.9")));
        assert_eq!(parse_hop("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("\"2001:db8::1\""), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("unknown"), None);
        assert_eq!(parse_hop("_hidden"), None);
    }
}
