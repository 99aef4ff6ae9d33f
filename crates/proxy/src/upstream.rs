//! The two ways a request reaches the upstream: ordinary requests over a keep-alive
//! pool ([`crate::pool`]), protocol upgrades over a connection of their own.
//!
//! An upgrade request (a WebSocket handshake) must never share a pooled connection:
//! if the upstream does not switch protocols, the connection's state after the answer
//! is whatever the upstream made of the handshake, and a later client's request sent
//! on it could be read with a different framing (request smuggling). So each upgrade
//! opens a fresh connection that serves that one exchange: it becomes the tunnel after
//! `101 Switching Protocols`, and is closed after any other answer.
//!
//! Both sides write conventional header case (`Content-Type`, not `content-type`):
//! HTTP/1.1 header names are case-insensitive, but some servers and scanners compare
//! them literally.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use palisade_core::supervisor::Supervisor;

use crate::pool::Pool;
use crate::{ProxyBody, ProxyConfig};

/// Why the upstream gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A connection to the upstream could not be opened in time.
    #[error("connecting to {authority}: {reason}")]
    Connect {
        /// Where.
        authority: String,
        /// Why.
        reason: String,
    },
    /// The exchange failed (write or read).
    #[error("{0}")]
    Exchange(#[from] hyper::Error),
}

/// The upstream of one proxy.
pub struct Upstream {
    pool: Arc<Pool>,
    authority: String,
    connect_timeout: Duration,
    /// Where requests go (`authority` and the path prefix).
    target: crate::config::Upstream,
    /// `authority` parsed once for every request's URI (`None`: not a URI authority;
    /// each URI is then built from text, and fails as it did before).
    uri_authority: Option<Authority>,
    /// `authority` as a `Host` value, made once.
    host: Option<HeaderValue>,
    /// The `Host` a pooled request without one gets: the authority's host, and its
    /// port unless it is 80 (as hyper-util's pool wrote it).
    default_host: Option<HeaderValue>,
}

impl Upstream {
    /// A keep-alive pool bounded like the client side (at most `max_connections` idle
    /// upstream connections), with the configured timeouts; its idle reaper runs under
    /// `supervisor` when there is one.
    pub fn new(config: &ProxyConfig, supervisor: Option<&Supervisor>) -> Upstream {
        let pool = Pool::new(
            &config.upstream.authority,
            config.connect_timeout,
            config.pool_idle_timeout,
            config.max_connections,
            supervisor.map(|s| (s, config.name.as_str())),
        );
        let uri_authority = Authority::from_str(&config.upstream.authority).ok();
        let default_host = uri_authority.as_ref().and_then(|a| match a.port_u16() {
            Some(port) if port != 80 => HeaderValue::from_str(&format!("{}:{port}", a.host())).ok(),
            _ => HeaderValue::from_str(a.host()).ok(),
        });
        Upstream {
            pool,
            authority: config.upstream.authority.clone(),
            connect_timeout: config.connect_timeout,
            target: config.upstream.clone(),
            uri_authority,
            host: HeaderValue::from_str(&config.upstream.authority).ok(),
            default_host,
        }
    }

    /// The upstream's authority as a `Host` value (when it is a valid one).
    pub fn host(&self) -> Option<&HeaderValue> {
        self.host.as_ref()
    }

    /// The upstream URI of a request whose target is `target` (`client`'s path and
    /// query): what [`crate::config::Upstream::target`] makes of it, without printing
    /// and parsing it again when there is no path prefix (the client's parsed path and
    /// query is reused).
    pub fn uri_for(&self, client: &Uri, target: &str) -> Option<Uri> {
        let (Some(authority), true) = (&self.uri_authority, self.target.base_path.is_empty())
        else {
            return self.target.target(target).ok();
        };
        let path_and_query = match client.path_and_query() {
            Some(pq) if pq.as_str() == target && target.starts_with('/') => pq.clone(),
            _ => return self.target.target(target).ok(),
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(authority.clone());
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).ok()
    }

    /// Sends an ordinary request over the pool: in origin-form (`/path?query`), with
    /// a `Host` when it has none.
    pub async fn send(
        &self,
        mut request: http::Request<ProxyBody>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let origin = match request.uri().path_and_query() {
            Some(pq) if pq.as_str() != "/" => Uri::from(pq.clone()),
            _ => Uri::default(),
        };
        *request.uri_mut() = origin;
        if let Some(host) = &self.default_host {
            request
                .headers_mut()
                .entry(http::header::HOST)
                .or_insert_with(|| host.clone());
        }
        self.pool.send(request).await
    }

    /// Sends an upgrade request over a connection of its own (see the module
    /// documentation). The connection task ends with the exchange, or hands the
    /// connection to the tunnel after `101`.
    pub async fn send_upgrade(
        &self,
        mut request: http::Request<ProxyBody>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        // A connection of our own speaks origin-form (`/path?query`) and must name the
        // host itself, as the pool does for its requests.
        let origin = request
            .uri()
            .path_and_query()
            .cloned()
            .map_or_else(|| http::Uri::from_static("/"), http::Uri::from);
        *request.uri_mut() = origin;
        if !request.headers().contains_key(http::header::HOST)
            && let Ok(host) = http::HeaderValue::from_str(&self.authority)
        {
            request.headers_mut().insert(http::header::HOST, host);
        }
        let stream = crate::pool::connect_stream(&self.authority, self.connect_timeout).await?;
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .title_case_headers(true)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(message = "Upgrade connection to the upstream ended with an error.", %error);
            }
        });
        Ok(sender.send_request(request).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Upstream {
        let config = ProxyConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            crate::config::Upstream::parse(url).unwrap(),
        );
        Upstream::new(&config, None)
    }

    #[tokio::test]
    async fn request_uris_are_those_the_configured_target_makes() {
        for url in ["http://127.0.0.1:9000", "http://app.internal/base/"] {
            let u = upstream(url);
            for target in ["/a?b=1", "/", "/x/y%20z?q=%27&r", "*", "http://h/abs?x"] {
                let client: Uri = target.parse().unwrap();
                let pq = client.path_and_query().map_or("/", |pq| pq.as_str());
                assert_eq!(
                    u.uri_for(&client, pq).map(|u| u.to_string()),
                    u.target.target(pq).ok().map(|u| u.to_string()),
                    "{url} {target}"
                );
            }
        }
        assert_eq!(
            upstream("http://127.0.0.1:9000").host().unwrap(),
            "127.0.0.1:9000"
        );
    }
}
