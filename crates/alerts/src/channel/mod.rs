//! Notification channels: one file per kind implementing [`Channel`], built from the
//! stored spec (and, for signed webhooks, the secret from the secrets store).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod email;
pub mod slack;
pub mod webhook;

/// One message to send.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Unique id (receivers de-duplicate by it).
    pub id: &'a str,
    /// Unix seconds of this attempt (signed webhooks reject stale ones).
    pub timestamp: i64,
    /// The notification document (JSON).
    pub payload: &'a str,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// When the receiver asked to be retried (`Retry-After` on 429/503).
    pub retry_after: Option<Duration>,
    /// Retrying will not help (410 Gone, an unusable spec).
    pub permanent: bool,
    /// What happened.
    pub message: String,
}

impl SendError {
    /// A failure before or without an answer.
    pub fn transport(message: impl Into<String>) -> SendError {
        SendError {
            status: None,
            retry_after: None,
            permanent: false,
            message: message.into(),
        }
    }
}

/// A way to tell people: one implementation per kind.
#[async_trait]
pub trait Channel: Send + Sync {
    /// Sends one message; `Ok` carries the receiver's status.
    async fn send(&self, client: &reqwest::Client, message: Message<'_>) -> Result<u16, SendError>;
}

/// A channel as stored and shown (the webhook secret lives in the secrets store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelSpec {
    /// A Standard Webhooks v1 signed POST.
    Webhook {
        /// Where to POST.
        url: String,
    },
    /// A Slack-compatible incoming webhook. Its URL is a credential (whoever has it can
    /// post to the channel): given when the channel is created or re-pointed, then
    /// sealed in the secrets store like a webhook's secret and never shown back.
    Slack {
        /// The incoming-webhook URL: only in requests (absent when read; channels
        /// stored before it was sealed keep it here and are still read).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// Where the URL points (`https://hooks.slack.com`), shown instead of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// E-mail through an SMTP relay (the password, when `username` is set, lives in
    /// the secrets store like a webhook's secret).
    Email {
        /// The relay's host name.
        host: String,
        /// The relay's port (default 587, submission with STARTTLS).
        #[serde(default = "submission_port")]
        port: u16,
        /// `starttls` (default), `tls` (implicit, port 465) or `none` (loopback only,
        /// no credentials).
        #[serde(default)]
        security: email::Security,
        /// `AUTH PLAIN` user name; the password is the channel's secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// The sender (`alerts@example.com` or `Palisade <alerts@example.com>`).
        from: String,
        /// The recipients (1 to 50).
        to: Vec<String>,
        /// Extra trusted CA certificates (PEM), for a relay with a private CA.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_pem: Option<String>,
    },
}

fn submission_port() -> u16 {
    587
}

fn bad(field: &'static str, message: impl Into<String>) -> ChannelError {
    ChannelError {
        field,
        message: message.into(),
    }
}

/// An address as a mailbox: something@something, no spaces or line breaks in it.
fn mailbox(address: &str) -> bool {
    let bare = match (address.rfind('<'), address.rfind('>')) {
        (Some(a), Some(b)) if a < b => &address[a + 1..b],
        _ => address.trim(),
    };
    !address.contains(['\r', '\n'])
        && bare.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && !d.is_empty() && !bare.contains(char::is_whitespace)
        })
}

/// Why a channel spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ChannelError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ChannelSpec {
    /// The kind's name.
    pub const fn kind(&self) -> &'static str {
        match self {
            ChannelSpec::Webhook { .. } => "webhook",
            ChannelSpec::Slack { .. } => "slack",
            ChannelSpec::Email { .. } => "email",
        }
    }

    /// Whether the channel's secret is what the admin gives (a password) rather than
    /// one Palisade generates and shows once (a webhook's signing secret).
    pub const fn takes_password(&self) -> bool {
        matches!(
            self,
            ChannelSpec::Email {
                username: Some(_),
                ..
            }
        )
    }

    /// Whether the channel needs its entry in the secrets store to deliver: a webhook's
    /// signing secret, an SMTP password, a sealed Slack URL.
    pub const fn uses_secret(&self) -> bool {
        matches!(
            self,
            ChannelSpec::Webhook { .. } | ChannelSpec::Slack { url: None, .. }
        ) || self.takes_password()
    }

    /// The spec as stored and shown, and the credential to seal apart from it: a Slack
    /// URL leaves the spec (its scheme and host stay, for people to recognise it).
    pub fn sealed(&self) -> (ChannelSpec, Option<String>) {
        match self {
            ChannelSpec::Slack { url, host } => {
                let host = url
                    .as_deref()
                    .and_then(|u| reqwest::Url::parse(u).ok())
                    .map(|u| u.origin().ascii_serialization())
                    .or_else(|| host.clone());
                (ChannelSpec::Slack { url: None, host }, url.clone())
            }
            other => (other.clone(), None),
        }
    }

    /// Checks the spec: an http(s) URL with a host for webhooks; for e-mail a host,
    /// mailboxes, credentials only over TLS and plain text only to loopback.
    pub fn validate(&self) -> Result<(), ChannelError> {
        let url = match self {
            ChannelSpec::Webhook { url } | ChannelSpec::Slack { url: Some(url), .. } => url,
            // A stored Slack channel's URL is in the secrets store.
            ChannelSpec::Slack { url: None, .. } => return Ok(()),
            ChannelSpec::Email {
                host,
                port,
                security,
                username,
                from,
                to,
                ca_pem,
            } => {
                if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
                    return Err(bad("host", "must be a host name or address"));
                }
                if *port == 0 {
                    return Err(bad("port", "must be 1 to 65535"));
                }
                if !mailbox(from) {
                    return Err(bad("from", "must be a mailbox (name@domain)"));
                }
                if to.is_empty() || to.len() > 50 {
                    return Err(bad("to", "must list 1 to 50 recipients"));
                }
                if let Some(t) = to.iter().find(|t| !mailbox(t)) {
                    return Err(bad("to", format!("{t:?} is not a mailbox (name@domain)")));
                }
                if let Some(u) = username
                    && (u.is_empty() || u.contains(['\r', '\n', '\0']))
                {
                    return Err(bad("username", "must be a non-empty name on one line"));
                }
                if *security == email::Security::None {
                    if username.is_some() {
                        return Err(bad(
                            "security",
                            "credentials are never sent without TLS: use starttls or tls",
                        ));
                    }
                    let loopback = host == "localhost"
                        || host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback());
                    if !loopback {
                        return Err(bad(
                            "security",
                            "none is only for a relay on loopback: use starttls or tls",
                        ));
                    }
                }
                if let Some(pem) = ca_pem {
                    use rustls::pki_types::CertificateDer;
                    use rustls::pki_types::pem::PemObject;
                    let certs: Result<Vec<_>, _> =
                        CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
                    if !certs.is_ok_and(|c| !c.is_empty()) {
                        return Err(bad("ca_pem", "must hold PEM certificates"));
                    }
                }
                return Ok(());
            }
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| ChannelError {
            field: "url",
            message: format!("not a URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ChannelError {
                field: "url",
                message: "must be an http or https URL with a host".into(),
            });
        }
        Ok(())
    }

    /// The secrets-store name of a channel's secret (signing secret, SMTP password or
    /// Slack URL).
    pub fn secret_name(channel_id: i64) -> String {
        format!("alert_channel.{channel_id}")
    }

    /// Builds the channel; a webhook needs its secret.
    pub fn build(&self, secret: Option<&str>) -> Result<Box<dyn Channel>, SendError> {
        match self {
            ChannelSpec::Webhook { url } => {
                let secret = secret.ok_or_else(|| SendError {
                    permanent: false,
                    ..SendError::transport("the webhook's signing secret is missing")
                })?;
                Ok(Box::new(webhook::Webhook::new(url.clone(), secret)?))
            }
            ChannelSpec::Slack { url, .. } => {
                // Sealed (the secret), or stored plainly before sealing existed.
                let url = secret
                    .map(str::to_owned)
                    .or_else(|| url.clone())
                    .ok_or_else(|| {
                        SendError::transport("the Slack URL is missing from the secrets store")
                    })?;
                Ok(Box::new(slack::Slack { url }))
            }
            ChannelSpec::Email {
                host,
                port,
                security,
                username,
                from,
                to,
                ca_pem,
            } => {
                if username.is_some() && secret.is_none() {
                    return Err(SendError::transport(
                        "the e-mail channel's password is missing from the secrets store",
                    ));
                }
                Ok(Box::new(email::Email {
                    host: host.clone(),
                    port: *port,
                    security: *security,
                    username: username.clone(),
                    password: username.as_ref().and(secret.map(str::to_owned)),
                    from: from.clone(),
                    to: to.clone(),
                    ca_pem: ca_pem.clone(),
                    timeout: Duration::from_secs(30),
                }))
            }
        }
    }
}

/// Reads an HTTP answer into the channel result: 2xx is delivered; anything else is a
/// failure carrying the status and, for 429 and 503, the `Retry-After` wait.
pub(crate) async fn answer(response: reqwest::Response) -> Result<u16, SendError> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(status);
    }
    let retry_after = if matches!(status, 429 | 503) {
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::backoff::parse_retry_after(v, std::time::SystemTime::now()))
    } else {
        None
    };
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(SendError {
        status: Some(status),
        retry_after,
        permanent: status == 410,
        message: format!("HTTP {status}: {body}"),
    })
}

/// A request error as a send error.
pub(crate) fn transport(e: reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = format!("{what}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    SendError::transport(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slack_url_is_sealed_apart_and_legacy_ones_still_build() {
        let given: ChannelSpec = serde_json::from_value(serde_json::json!({
            "kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/secret"
        }))
        .unwrap();
        assert!(given.validate().is_ok());
        let (stored, secret) = given.sealed();
        assert_eq!(
            secret.as_deref(),
            Some("https://hooks.slack.com/services/T0/B0/secret")
        );
        let shown = serde_json::to_value(&stored).unwrap();
        assert_eq!(
            shown,
            serde_json::json!({"kind": "slack", "host": "https://hooks.slack.com"})
        );
        assert!(stored.uses_secret());
        assert!(stored.build(secret.as_deref()).is_ok());
        let missing = stored.build(None).err().map(|e| e.message);
        assert_eq!(
            missing.as_deref(),
            Some("the Slack URL is missing from the secrets store")
        );
        // Stored before sealing: the plain URL is still used, and never shown.
        let legacy = ChannelSpec::Slack {
            url: Some("https://chat.example/hooks/abc".into()),
            host: None,
        };
        assert!(!legacy.uses_secret());
        assert!(legacy.build(None).is_ok());
        let (shown, _) = legacy.sealed();
        assert!(!serde_json::to_string(&shown).unwrap().contains("abc"));
        let bad = ChannelSpec::Slack {
            url: Some("ftp://x".into()),
            host: None,
        };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("url"));
    }
}
