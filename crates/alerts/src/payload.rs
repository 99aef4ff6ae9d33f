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
    /// A resolved alert's group fired again and the alert is active again.
    Reopened,
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
            NotifyEvent::Reopened => "reopened",
            NotifyEvent::Repeat => "repeat",
            NotifyEvent::Resolved => "resolved",
            NotifyEvent::Test => "test",
        }
    }

    /// Which event an alert's due notification is. An active alert whose state changed
    /// after it was raised and after its last notification was reopened (nothing else
    /// makes an alert active again).
    pub fn of(alert: &Alert) -> NotifyEvent {
        let reopened = alert.state == palisade_store::AlertState::Active
            && alert.state_at > alert.created_at
            && alert.notified_at.is_none_or(|n| alert.state_at > n);
        match (alert.state, alert.notified_at) {
            (palisade_store::AlertState::Resolved, _) => NotifyEvent::Resolved,
            _ if reopened => NotifyEvent::Reopened,
            (_, None) => NotifyEvent::Firing,
            (_, Some(n)) if alert.updated_at > n => NotifyEvent::Updated,
            _ => NotifyEvent::Repeat,
        }
    }
}

/// The document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `alert.firing`, `alert.updated`, `alert.reopened`, `alert.repeat`,
    /// `alert.resolved`, `test`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::severity::Severity;
    use palisade_store::AlertState;

    fn alert(state: AlertState, state_at: i64, notified: Option<i64>, updated: i64) -> Alert {
        Alert {
            id: 7,
            rule_id: 1,
            rule_name: "web".into(),
            group_key: "client_ip=203.0.113.7".into(),
            title: "web: client_ip=203.0.113.7".into(),
            severity: Severity::Error,
            category: "sqli".into(),
            state,
            count: 3,
            first_seen: Timestamp(10),
            last_seen: Timestamp(20),
            created_at: Timestamp(10),
            updated_at: Timestamp(updated),
            state_at: Timestamp(state_at),
            state_by: None,
            state_comment: None,
            notified_at: notified.map(Timestamp),
            next_notify_at: Some(Timestamp(100)),
        }
    }

    #[test]
    fn a_reopened_alert_is_announced_as_reopened_then_as_usual() {
        use AlertState::*;
        let of = |a: &Alert| NotifyEvent::of(a);
        assert_eq!(of(&alert(Active, 10, None, 10)), NotifyEvent::Firing);
        assert_eq!(of(&alert(Active, 10, Some(30), 40)), NotifyEvent::Updated);
        assert_eq!(of(&alert(Active, 10, Some(30), 30)), NotifyEvent::Repeat);
        assert_eq!(
            of(&alert(Resolved, 50, Some(30), 30)),
            NotifyEvent::Resolved
        );
        // Resolved (and notified at 50), then fired again at 60.
        let reopened = alert(Active, 60, Some(50), 60);
        assert_eq!(of(&reopened), NotifyEvent::Reopened);
        let n = Notification::alert(&reopened, NotifyEvent::Reopened, Timestamp(61));
        assert_eq!(n.kind, "alert.reopened");
        assert!(
            n.text()
                .starts_with("[REOPENED] web: client_ip=203.0.113.7"),
            "{}",
            n.text()
        );
        // Resolved before any notification went out, then reopened: still reopened.
        assert_eq!(of(&alert(Active, 60, None, 60)), NotifyEvent::Reopened);
        // Once notified, growth after the reopening is an update again.
        assert_eq!(of(&alert(Active, 60, Some(70), 80)), NotifyEvent::Updated);
    }
}
