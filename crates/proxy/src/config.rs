//! What one protecting proxy listens on, where it forwards, and the limits it applies.

use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;
use palisade_core::config::{ConfigProblem, Validate};
use palisade_core::duration::Span;
use palisade_core::net::IpNet;

/// What to do with a request body larger than the inspection buffer.
///
/// Inspecting only part of a body lets an attacker pad a payload past the limit, so the
/// safe default is to refuse; upload-heavy applications can choose to inspect the
/// first `max_body_bytes` and stream the rest unseen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OversizePolicy {
    /// Answer 413 without contacting the upstream.
    #[default]
    Reject,
    /// Inspect the first `max_body_bytes`, then forward the whole body.
    InspectPrefix,
}

impl OversizePolicy {
    /// Reads `reject` or `inspect_prefix`.
    pub fn parse(s: &str) -> Option<OversizePolicy> {
        match s {
            "reject" => Some(OversizePolicy::Reject),
            "inspect_prefix" => Some(OversizePolicy::InspectPrefix),
            _ => None,
        }
    }
}

/// The application a proxy protects: plain HTTP (TLS is terminated in front of
/// Palisade, or the upstream is on the same host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `host:port`, as used for connecting and, when the Host is not preserved, as Host.
    pub authority: String,
    /// A path prefix put before every forwarded path (`""` for none).
    pub base_path: String,
}

/// Why an upstream URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// Not a URL at all.
    #[error("upstream '{0}' is not a URL: expected http://host:port[/prefix]")]
    NotAUrl(String),
    /// https or another scheme.
    #[error(
        "upstream '{0}': only http:// upstreams are supported (terminate TLS in front of Palisade, \
         or run the application on a local plain-HTTP port)"
    )]
    Scheme(String),
    /// A query or fragment, which cannot be combined with forwarded targets.
    #[error("upstream '{0}' must not carry a query string")]
    Query(String),
}

impl Upstream {
    /// Reads `http://host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<Upstream, UpstreamError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| UpstreamError::NotAUrl(url.to_owned()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(UpstreamError::Scheme(url.to_owned())),
            None => return Err(UpstreamError::NotAUrl(url.to_owned())),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| UpstreamError::NotAUrl(url.to_owned()))?;
        if uri.query().is_some() {
            return Err(UpstreamError::Query(url.to_owned()));
        }
        let authority = if authority.port().is_some() {
            authority.as_str().to_owned()
        } else {
            format!("{}:80", authority.host())
        };
        Ok(Upstream {
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream URI for an incoming request target.
    pub fn target(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let pq = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            "/"
        };
        Uri::builder()
            .scheme("http")
            .authority(self.authority.as_str())
            .path_and_query(format!("{}{pq}", self.base_path))
            .build()
    }
}

/// `[[proxy]]`: one protecting proxy. Deserializes itself from the configuration
/// (every key: `deploy/README.md`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "ProxySection")]
pub struct ProxyConfig {
    /// A name for logs, metrics, events and threats (their source). The binary's
    /// configuration names unnamed proxies `proxy`, `proxy-2`, …; a deployment detail
    /// such as the listen address is never the default.
    pub name: String,
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The protected application.
    pub upstream: Upstream,
    /// Largest body held for inspection; a compressed body is inspected decoded, and
    /// its decoded form is held to the same limit.
    pub max_body_bytes: usize,
    /// How much a compressed body may expand while it is decoded for inspection
    /// (decoded bytes per encoded byte, checked once the decoded body passes 64 KiB):
    /// beyond it the body is refused as a decompression bomb (413).
    pub max_decompression_ratio: u32,
    /// What happens beyond it.
    pub oversize: OversizePolicy,
    /// Longest wait for a connection to the upstream.
    pub connect_timeout: Duration,
    /// Longest wait for the upstream's response headers.
    pub response_timeout: Duration,
    /// Longest a client may take to send its headers (also how long an idle
    /// keep-alive connection is kept), then its body, and between two pieces of a body
    /// streamed on beyond the inspection limit.
    pub client_timeout: Duration,
    /// How long an idle upstream connection is kept for reuse.
    pub pool_idle_timeout: Duration,
    /// Client connections served at once (lowered to a quarter of the process's
    /// open-files limit when that is smaller, so the proxy cannot take the descriptors
    /// the API needs). At the cap, a new connection takes the place of the connection
    /// idle the longest (keep-alive, or still sending its headers); with none idle it
    /// waits.
    pub max_connections: usize,
    /// Pass the client's Host to the upstream (as Traefik and Caddy do) rather than
    /// the upstream's own address.
    pub preserve_host: bool,
    /// Front proxies (load balancers) whose `X-Forwarded-For` is believed when
    /// finding the client's address; everyone else's is ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// Store every proxied request as an event (source: the proxy's name), so the
    /// traffic explorer, analytics and behaviour scenarios see it.
    pub store_events: bool,
}

impl ProxyConfig {
    /// A proxy with the default limits.
    pub fn new(listen: SocketAddr, upstream: Upstream) -> ProxyConfig {
        ProxyConfig {
            name: "proxy".to_owned(),
            listen,
            upstream,
            max_body_bytes: 1024 * 1024,
            max_decompression_ratio: 100,
            oversize: OversizePolicy::Reject,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            client_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            preserve_host: true,
            trusted_proxies: Vec::new(),
            store_events: true,
        }
    }
}

/// `[[proxy]]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxySection {
    name: Option<String>,
    listen: String,
    upstream: String,
    max_body_bytes: Option<usize>,
    max_decompression_ratio: Option<u32>,
    oversize: Option<String>,
    #[serde(alias = "connect_timeout_secs")]
    connect_timeout: Option<Span>,
    #[serde(alias = "response_timeout_secs")]
    response_timeout: Option<Span>,
    #[serde(alias = "client_timeout_secs")]
    client_timeout: Option<Span>,
    #[serde(alias = "pool_idle_timeout_secs")]
    pool_idle_timeout: Option<Span>,
    max_connections: Option<usize>,
    preserve_host: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    store_events: Option<bool>,
}

impl TryFrom<ProxySection> for ProxyConfig {
    type Error = ConfigProblem;

    fn try_from(p: ProxySection) -> Result<Self, Self::Error> {
        let listen: SocketAddr = p.listen.parse().map_err(|_| {
            ConfigProblem::new(
                "listen",
                format!("'{}' is not an address like 0.0.0.0:80", p.listen),
            )
        })?;
        let upstream =
            Upstream::parse(&p.upstream).map_err(|e| ConfigProblem::new("upstream", e))?;
        let mut c = ProxyConfig::new(listen, upstream);
        if let Some(name) = p.name {
            c.name = name;
        }
        if let Some(n) = p.max_body_bytes {
            if n == 0 {
                return Err(ConfigProblem::new("max_body_bytes", "must be at least 1"));
            }
            c.max_body_bytes = n;
        }
        if let Some(r) = p.max_decompression_ratio {
            if r < 2 {
                return Err(ConfigProblem::new(
                    "max_decompression_ratio",
                    "must be at least 2 (decoded bytes per encoded byte)",
                ));
            }
            c.max_decompression_ratio = r;
        }
        if let Some(o) = &p.oversize {
            c.oversize = OversizePolicy::parse(o).ok_or_else(|| {
                ConfigProblem::new(
                    "oversize",
                    format!("'{o}' must be reject or inspect_prefix"),
                )
            })?;
        }
        for (key, slot, value) in [
            ("connect_timeout", &mut c.connect_timeout, p.connect_timeout),
            (
                "response_timeout",
                &mut c.response_timeout,
                p.response_timeout,
            ),
            ("client_timeout", &mut c.client_timeout, p.client_timeout),
            (
                "pool_idle_timeout",
                &mut c.pool_idle_timeout,
                p.pool_idle_timeout,
            ),
        ] {
            if let Some(v) = value {
                if v.to_std().is_zero() {
                    return Err(ConfigProblem::new(key, "must be longer than 0"));
                }
                *slot = v.to_std();
            }
        }
        if let Some(n) = p.max_connections {
            if n == 0 {
                return Err(ConfigProblem::new("max_connections", "must be at least 1"));
            }
            c.max_connections = n;
        }
        if let Some(b) = p.preserve_host {
            c.preserve_host = b;
        }
        if let Some(b) = p.store_events {
            c.store_events = b;
        }
        for t in p.trusted_proxies.iter().flatten() {
            c.trusted_proxies.push(t.parse().map_err(|_| {
                ConfigProblem::new("trusted_proxies", format!("'{t}' is not an IP or CIDR"))
            })?);
        }
        Ok(c)
    }
}

impl Validate for ProxyConfig {
    /// Everything is checked while deserializing.
    fn finish(&mut self) -> Vec<ConfigProblem> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse_with_and_without_port_and_prefix() {
        let u = Upstream::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(u.authority, "127.0.0.1:9000");
        assert_eq!(u.base_path, "");
        assert_eq!(
            u.target("/a?b=1").unwrap().to_string(),
            "http://127.0.0.1:9000/a?b=1"
        );
        let u = Upstream::parse("http://app.internal/base/").unwrap();
        assert_eq!(u.authority, "app.internal:80");
        assert_eq!(
            u.target("/x").unwrap().to_string(),
            "http://app.internal:80/base/x"
        );
        assert_eq!(
            u.target("*").unwrap().to_string(),
            "http://app.internal:80/base/"
        );
    }

    #[test]
    fn bad_upstreams_say_why() {
        assert!(matches!(
            Upstream::parse("https://x"),
            Err(UpstreamError::Scheme(_))
        ));
        assert!(matches!(
            Upstream::parse("localhost:80"),
            Err(UpstreamError::Scheme(_) | UpstreamError::NotAUrl(_))
        ));
        assert!(matches!(
            Upstream::parse("http://x/?a=1"),
            Err(UpstreamError::Query(_))
        ));
        assert!(Upstream::parse("not a url").is_err());
    }
}
