//! The notification document every channel starts from, in the Standard Webhooks
//! shape (`type`, `timestamp`, `data`): a webhook sends it as it is, Slack turns it
//! into text. Built when the notification is queued, so a retry sends what was true
//! then.

use palisade_core::Timestamp;
use palisade_store::Alert;
use serde::{Deserialize, Serialize};

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    /// The first notification of an alert.
    Firing,
    /// The alert grew since the last notification.
    Updated,
    /// Still active and nobody acknowledged it.
    Repeat,
    /// Someone resolved it.
    Resolved,
    /// An admin's channel test.
    Test,
}

impl NotifyEvent {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Firing => "firing",
            NotifyEvent::Updated => "updated",
            NotifyEvent::Repeat => "repeat",
            NotifyEvent::Resolved => "resolved",
            NotifyEvent::Test => "test",
        }
    }

    /// Which event an alert's due notification is.
    pub fn of(alert: &Alert) -> NotifyEvent {
        match (alert.state, alert.notified_at) {
            (palisade_store::AlertState::Resolved, _) => NotifyEvent::Resolved,
            (_, None) => NotifyEvent::Firing,
            (_, Some(n)) if alert.updated_at > n => NotifyEvent::Updated,
            _ => NotifyEvent::Repeat,
        }
    }
}

/// The document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `alert.firing`, `alert.updated`, `alert.repeat`, `alert.resolved`, `test`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was queued (RFC 3339).
    pub timestamp: String,
    /// The alert (or the test's words).
    pub data: serde_json::Value,
}

impl Notification {
    /// The notification of an alert.
    pub fn alert(alert: &Alert, event: NotifyEvent, now: Timestamp) -> Notification {
        Notification {
            kind: format!("alert.{}", event.as_str()),
            timestamp: now.to_string(),
            data: serde_json::to_value(alert).unwrap_or_default(),
        }
    }

    /// A channel test.
    pub fn test(channel: &str, now: Timestamp) -> Notification {
        Notification {
            kind: "test".into(),
            timestamp: now.to_string(),
            data: serde_json::json!({
                "title": format!("Palisade test notification for channel {channel}"),
            }),
        }
    }

    /// A line for people: `[FIRING] title — 12 threats, error, client_ip=… category=…`.
    pub fn text(&self) -> String {
        let d = &self.data;
        let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let label = self
            .kind
            .strip_prefix("alert.")
            .unwrap_or(&self.kind)
            .to_ascii_uppercase();
        match d.get("count").and_then(|c| c.as_u64()) {
            Some(count) => format!(
                "[{label}] {} ({count} threats, {}, {}, alert #{})",
                s("title"),
                s("severity"),
                s("group_key"),
                d.get("id").and_then(|v| v.as_i64()).unwrap_or_default()
            ),
            None => format!("[{label}] {}", s("title")),
        }
    }
}
