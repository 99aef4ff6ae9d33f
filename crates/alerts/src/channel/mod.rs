//! Notification channels: one file per kind implementing [`Channel`], built from the
//! stored spec (and, for signed webhooks, the secret from the secrets store).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
    /// A Slack-compatible incoming webhook.
    Slack {
        /// The incoming-webhook URL.
        url: String,
    },
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
        }
    }

    /// Checks the URL: http or https, with a host.
    pub fn validate(&self) -> Result<(), ChannelError> {
        let (ChannelSpec::Webhook { url } | ChannelSpec::Slack { url }) = self;
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

    /// The secrets-store name of a channel's signing secret.
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
            ChannelSpec::Slack { url } => Ok(Box::new(slack::Slack { url: url.clone() })),
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
