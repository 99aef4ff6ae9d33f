//! Header rewriting between client and upstream (RFC 9110 §7.6.1): hop-by-hop headers
//! stay on their hop, the upstream learns who the client is through `X-Forwarded-*`,
//! and the client address used for detection only believes trusted front proxies.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use palisade_core::forwarded::{forwarded_client, in_networks};
use palisade_core::net::IpNet;

/// Headers that belong to one connection and are never forwarded.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

const KEEP_ALIVE: &str = "keep-alive";
const PROXY_CONNECTION: &str = "proxy-connection";

/// Is this a protocol upgrade (WebSocket) that must be tunnelled?
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Whether a request announces a body: any `Transfer-Encoding`, or a `Content-Length`
/// other than 0. A protocol upgrade that does is refused (see `upstream`).
pub fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes().trim_ascii() != b"0")
}

/// Removes hop-by-hop headers, including any the `Connection` header names. With
/// `keep_upgrade`, `Connection: upgrade` and `Upgrade` survive so a WebSocket
/// handshake reaches the other side.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let upgrade = keep_upgrade.then(|| headers.get(header::UPGRADE).cloned());
    for name in named.iter().chain(HOP_BY_HOP) {
        headers.remove(name);
    }
    headers.remove(KEEP_ALIVE);
    headers.remove(PROXY_CONNECTION);
    if let Some(Some(upgrade)) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// The client's address by the one trusted-proxies model
/// ([`palisade_core::forwarded`]): the peer, unless the peer is a trusted front proxy,
/// in which case the rightmost `X-Forwarded-For` hop that is not itself trusted.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    forwarded_client(
        peer,
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok()),
        headers.get("x-real-ip").and_then(|v| v.to_str().ok()),
        |ip| in_networks(trusted, ip),
    )
}

/// Sets what the upstream needs to know about the original request.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    client: IpAddr,
    peer_trusted: bool,
    request_id: &str,
) {
    let host = headers.get(header::HOST).cloned();
    let chain = match headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .filter(|_| peer_trusted)
    {
        Some(prior) => format!("{prior}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
        headers.insert("x-forwarded-for", v);
    }
    if !(peer_trusted && headers.contains_key("x-forwarded-proto")) {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if let Some(host) = host
        && !(peer_trusted && headers.contains_key("x-forwarded-host"))
    {
        headers.insert("x-forwarded-host", host);
    }
    if let Ok(v) = HeaderValue::from_str(&client.to_string()) {
        headers.insert("x-real-ip", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = map(&[
            ("connection", "close, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn upgrades_keep_their_handshake() {
        let mut h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "abc"),
        ]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
        assert!(h.contains_key("sec-websocket-key"));
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn bodies_are_announced_by_length_or_transfer_coding() {
        assert!(!announces_body(&HeaderMap::new()));
        assert!(!announces_body(&map(&[("content-length", "0")])));
        assert!(announces_body(&map(&[("content-length", "12")])));
        assert!(announces_body(&map(&[("transfer-encoding", "chunked")])));
        assert!(announces_body(&map(&[
            ("content-length", "0"),
            ("content-length", "5")
        ])));
    }

    #[test]
    fn forwarded_for_is_only_believed_from_trusted_peers() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = map(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.1.1.1")]);
        let lb: IpAddr = "10.0.0.2".parse().unwrap();
        let outsider: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(
            client_ip(lb, &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(outsider, &h, &trusted), outsider);
        assert_eq!(client_ip(lb, &HeaderMap::new(), &trusted), lb);
    }

    #[test]
    fn forwarded_headers_are_set_and_spoofed_ones_replaced() {
        let mut h = map(&[
            ("host", "shop.example"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer: IpAddr = "9.9.9.9".parse().unwrap();
        set_forwarded(&mut h, peer, peer, false, "req-1");
        assert_eq!(h.get("x-forwarded-for").unwrap(), "9.9.9.9");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "shop.example");
        assert_eq!(h.get("x-real-ip").unwrap(), "9.9.9.9");
        assert_eq!(h.get("x-request-id").unwrap(), "req-1");

        let mut h = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let lb: IpAddr = "10.0.0.2".parse().unwrap();
        let client: IpAddr = "1.1.1.1".parse().unwrap();
        set_forwarded(&mut h, lb, client, true, "req-2");
        assert_eq!(h.get("x-forwarded-for").unwrap(), "1.1.1.1, 10.0.0.2");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(h.get("x-real-ip").unwrap(), "1.1.1.1");
    }
}
