//! Header rewriting between client and upstream (RFC 9110 §7.6.1): hop-by-hop headers
//! stay on their hop, the upstream learns who the client is through `X-Forwarded-*`,
//! and the client address used for detection only believes trusted front proxies.

use std::net::IpAddr;

use http::Version;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use palisade_core::forwarded::{forwarded_client, in_networks};
use palisade_core::net::IpNet;

/// `X-Forwarded-For`, parsed once (a `&str` name is parsed again on every use).
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Real-IP`.
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// `X-Request-Id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
    // One pass over the names present (a handful) instead of a removal, each a hash
    // and a probe, for every hop-by-hop name whether it is there or not. Each kind is
    // present at most once among the names, so they fit on the stack.
    let mut listed: [Option<HeaderName>; HOP_BY_HOP_KINDS] = Default::default();
    let mut count = 0;
    for name in headers.keys().filter(|k| is_hop_by_hop(k)) {
        if let Some(slot) = listed.get_mut(count) {
            *slot = Some(name.clone());
            count += 1;
        }
    }
    if count == 0 {
        return;
    }
    let upgrade = keep_upgrade.then(|| headers.get(header::UPGRADE).cloned());
    // The names the `Connection` header lists go first, then the listed ones as they
    // came (the order of the removals decides the order of the headers left, which
    // the upstream and the client see). Its values are copied (a reference count
    // each) before anything is removed; each name is removed by its text, read as a
    // `HeaderName` would read it (one that is not a valid name removes nothing).
    let mut values = headers.get_all(header::CONNECTION).iter();
    let first = values.next().cloned();
    let more: Vec<HeaderValue> = values.cloned().collect();
    for value in first.iter().chain(&more) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for token in value.split(',') {
            headers.remove(token.trim());
        }
    }
    for name in listed.iter().flatten() {
        headers.remove(name);
    }
    if let Some(Some(upgrade)) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// How many header names [`is_hop_by_hop`] accepts.
const HOP_BY_HOP_KINDS: usize = 9;

/// A header that belongs to one connection: the standard hop-by-hop ones,
/// `Keep-Alive` and `Proxy-Connection`. (Those a `Connection` header names are found
/// through it: `Connection` is itself hop-by-hop.)
fn is_hop_by_hop(name: &HeaderName) -> bool {
    // By text: a match on a few short strings, where comparing with `HeaderName`s
    // builds and drops one per comparison.
    matches!(
        name.as_str(),
        "connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "keep-alive"
            | "proxy-connection"
    )
}

/// The client's address by the one trusted-proxies model
/// ([`palisade_core::forwarded`]): the peer, unless the peer is a trusted front proxy,
/// in which case the rightmost `X-Forwarded-For` hop that is not itself trusted.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    // An untrusted peer is the client whatever its headers say (`forwarded_client`'s
    // first step): their look-ups are skipped.
    if !in_networks(trusted, peer) {
        return peer;
    }
    forwarded_client(
        peer,
        headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        headers.get(&X_REAL_IP).and_then(|v| v.to_str().ok()),
        |ip| in_networks(trusted, ip),
    )
}

/// The client connection's peer, with its address as text and as a header value made
/// once per connection: every request on the connection forwards them
/// (`X-Forwarded-For`, `X-Real-IP`), which cost a formatting, a check and a copy each
/// time when made per request.
#[derive(Debug, Clone)]
pub struct Peer {
    ip: IpAddr,
    text: String,
    value: Option<HeaderValue>,
}

impl Peer {
    /// The peer at `ip`.
    pub fn new(ip: IpAddr) -> Peer {
        let text = ip_text(ip);
        let value = HeaderValue::from_str(&text).ok();
        Peer { ip, text, value }
    }

    /// The peer's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

/// Sets what the upstream needs to know about the original request.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: &Peer,
    client: IpAddr,
    peer_trusted: bool,
    request_id: Option<&HeaderValue>,
) {
    let host = headers.get(header::HOST).cloned();
    let chain = match headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|_| peer_trusted)
    {
        Some(prior) => HeaderValue::from_str(&format!("{prior}, {}", peer.text)).ok(),
        None => peer.value.clone(),
    };
    if let Some(v) = chain {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !(peer_trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if let Some(host) = host
        && !(peer_trusted && headers.contains_key(&X_FORWARDED_HOST))
    {
        headers.insert(X_FORWARDED_HOST, host);
    }
    let real_ip = if client == peer.ip {
        peer.value.clone()
    } else {
        HeaderValue::from_str(&ip_text(client)).ok()
    };
    if let Some(v) = real_ip {
        headers.insert(X_REAL_IP, v);
    }
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID, id.clone());
    }
}

/// The protocol as events and the engine name it, `Version`'s `Debug` text
/// (`HTTP/1.1`), without formatting it for every request.
pub fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// An address as text, as `IpAddr`'s `Display` writes it; an IPv4 address without the
/// formatting machinery (this runs twice for every request).
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            out
        }
        IpAddr::V6(_) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

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
    fn the_hop_by_hop_test_names_the_listed_headers() {
        for name in HOP_BY_HOP.iter().chain([&KEEP_ALIVE, &PROXY_CONNECTION]) {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in ["host", "accept", "x-forwarded-for", "content-length", "tee"] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_headers_go_without_a_connection_header_too() {
        let mut h = map(&[
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "h2c"),
            ("accept", "*/*"),
            ("x-other", "1"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.contains_key("accept") && h.contains_key("x-other"));
        let mut untouched = map(&[("accept", "*/*"), ("host", "a")]);
        strip_hop_by_hop(&mut untouched, false);
        assert_eq!(untouched.len(), 2);
    }

    #[test]
    fn versions_are_named_as_debug_names_them() {
        for v in [
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ] {
            assert_eq!(version_text(v), format!("{v:?}"));
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for text in [
            "0.0.0.0",
            "9.9.9.9",
            "10.0.0.2",
            "127.0.0.1",
            "192.168.100.255",
            "255.255.255.255",
            "100.10.1.0",
            "::1",
            "2001:db8::7",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
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

    /// The connection's peer forwards what the per-request text of its address gave.
    #[test]
    fn a_peer_forwards_its_address_as_its_text() -> Result<(), Box<dyn std::error::Error>> {
        for text in [
            "9.9.9.9",
            "10.0.0.2",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = text.parse()?;
            let peer = Peer::new(ip);
            assert_eq!(peer.ip(), ip);
            assert_eq!(peer.text, ip.to_string());
            assert_eq!(peer.value, Some(HeaderValue::from_str(&ip.to_string())?));
            let mut h = HeaderMap::new();
            set_forwarded(&mut h, &peer, ip, false, None);
            assert_eq!(h.get(&X_FORWARDED_FOR), Some(&HeaderValue::from_str(text)?));
            assert_eq!(h.get(&X_REAL_IP), Some(&HeaderValue::from_str(text)?));
        }
        Ok(())
    }

    /// Hop-by-hop headers go in the order they went before (those the `Connection`
    /// header names first, then the listed ones as they come): the headers left keep
    /// the order the per-list removals left them in.
    #[test]
    fn the_headers_left_keep_their_order() -> Result<(), Box<dyn std::error::Error>> {
        let pairs = [
            ("accept", "*/*"),
            ("keep-alive", "timeout=5"),
            ("x-one", "1"),
            ("connection", "x-secret, keep-alive"),
            ("x-secret", "s"),
            ("te", "trailers"),
            ("x-two", "2"),
            ("x-three", "3"),
            ("upgrade", "h2c"),
            ("x-four", "4"),
        ];
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes())?,
                HeaderValue::from_str(v)?,
            );
        }
        // The removals as the two lists made them before.
        let mut reference = h.clone();
        let named: Vec<HeaderName> = vec![
            HeaderName::from_static("x-secret"),
            HeaderName::from_static("keep-alive"),
        ];
        let listed: Vec<HeaderName> = reference
            .keys()
            .filter(|k| is_hop_by_hop(k))
            .cloned()
            .collect();
        for name in named.iter().chain(&listed) {
            reference.remove(name);
        }
        strip_hop_by_hop(&mut h, false);
        let order = |m: &HeaderMap| {
            m.iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&h), order(&reference));
        assert_eq!(h.len(), 5);
        Ok(())
    }

    #[test]
    fn forwarded_headers_are_set_and_spoofed_ones_replaced() {
        let mut h = map(&[
            ("host", "shop.example"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer: IpAddr = "9.9.9.9".parse().unwrap();
        set_forwarded(
            &mut h,
            &Peer::new(peer),
            peer,
            false,
            Some(&HeaderValue::from_static("req-1")),
        );
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
        set_forwarded(
            &mut h,
            &Peer::new(lb),
            client,
            true,
            Some(&HeaderValue::from_static("req-2")),
        );
        assert_eq!(h.get("x-forwarded-for").unwrap(), "1.1.1.1, 10.0.0.2");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(h.get("x-real-ip").unwrap(), "1.1.1.1");
    }
}
