//! Alerts to and from columns, and the grouping rules both backends apply inside their
//! transaction, so they merge, reopen and plan notifications identically.

use palisade_core::Timestamp;
use palisade_core::severity::Severity;

use crate::{
    Activity, Alert, AlertChangeKind, AlertHistoryEntry, AlertHit, AlertState, Delivery,
    DeliveryState, SpecInput, SpecRecord, StoreError,
};

/// The alert columns, in the order every `SELECT` lists them.
pub(crate) const ALERT_COLUMNS: &str = "id, rule_id, rule_name, group_key, title, severity, \
    category, state, count, first_seen, last_seen, created_at, updated_at, state_at, state_by, \
    state_comment, notified_at, next_notify_at";

/// The delivery columns, in the order every `SELECT` lists them.
pub(crate) const DELIVERY_COLUMNS: &str = "id, alert_id, channel_id, message_id, event, payload, \
    state, attempts, next_at, created_at, last_attempt_at, last_status, last_error, delivered_at";

/// The spec columns.
pub(crate) const SPEC_COLUMNS: &str = "id, name, kind, enabled, spec, created_at, updated_at";

/// The activity columns.
pub(crate) const ACTIVITY_COLUMNS: &str = "id, at, kind, actor, summary, detail";

/// An alert row as plain values.
pub(crate) struct AlertColumns {
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    pub group_key: String,
    pub title: String,
    pub severity: String,
    pub category: String,
    pub state: String,
    pub count: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub state_at: i64,
    pub state_by: Option<String>,
    pub state_comment: Option<String>,
    pub notified_at: Option<i64>,
    pub next_notify_at: Option<i64>,
}

pub(crate) fn state_of(s: &str) -> Result<AlertState, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("alert state {s:?}")))
}

impl AlertColumns {
    pub(crate) fn into_alert(self) -> Result<Alert, StoreError> {
        let severity: Severity = self
            .severity
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("alert severity {:?}", self.severity)))?;
        Ok(Alert {
            id: self.id,
            rule_id: self.rule_id,
            rule_name: self.rule_name,
            group_key: self.group_key,
            title: self.title,
            severity,
            category: self.category,
            state: state_of(&self.state)?,
            count: u64::try_from(self.count).unwrap_or(0),
            first_seen: Timestamp(self.first_seen),
            last_seen: Timestamp(self.last_seen),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            state_at: Timestamp(self.state_at),
            state_by: self.state_by,
            state_comment: self.state_comment,
            notified_at: self.notified_at.map(Timestamp),
            next_notify_at: self.next_notify_at.map(Timestamp),
        })
    }
}

/// What to do with a hit, given the group's latest alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// A new alert, its first notification due at `notify_at`.
    Open { notify_at: i64 },
    /// Merge into alert `id`: its new state, severity and next notification.
    Merge {
        id: i64,
        kind: AlertChangeKind,
        state: AlertState,
        severity: Severity,
        next_notify_at: Option<i64>,
    },
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The grouping rules. An open alert takes every hit of its group (an update is
/// notified no sooner than `group_interval` after the last notification; an
/// acknowledged alert is not notified again). A resolved alert is reopened by a hit
/// within `window` of its resolution, a dismissed one absorbs hits within `window` of
/// its last threat; past that a new alert begins.
pub(crate) fn plan(latest: Option<&Alert>, hit: &AlertHit) -> Plan {
    let at = hit.at.as_micros();
    let open = Plan::Open {
        notify_at: at.saturating_add(hit.group_wait_us),
    };
    let Some(a) = latest else { return open };
    let severity = a.severity.max(hit.severity);
    match a.state {
        AlertState::Active => {
            let update = a
                .notified_at
                .map(|n| at.max(n.as_micros().saturating_add(hit.group_interval_us)));
            Plan::Merge {
                id: a.id,
                kind: AlertChangeKind::Updated,
                state: AlertState::Active,
                severity,
                next_notify_at: min_opt(a.next_notify_at.map(Timestamp::as_micros), update),
            }
        }
        AlertState::Acknowledged => Plan::Merge {
            id: a.id,
            kind: AlertChangeKind::Updated,
            state: AlertState::Acknowledged,
            severity,
            next_notify_at: a.next_notify_at.map(Timestamp::as_micros),
        },
        AlertState::Resolved if at.saturating_sub(a.state_at.as_micros()) <= hit.window_us => {
            Plan::Merge {
                id: a.id,
                kind: AlertChangeKind::Reopened,
                state: AlertState::Active,
                severity,
                next_notify_at: Some(at.saturating_add(hit.group_wait_us)),
            }
        }
        AlertState::Dismissed
            if hit
                .first_seen
                .as_micros()
                .saturating_sub(a.last_seen.as_micros())
                <= hit.window_us =>
        {
            Plan::Merge {
                id: a.id,
                kind: AlertChangeKind::Absorbed,
                state: AlertState::Dismissed,
                severity,
                next_notify_at: None,
            }
        }
        AlertState::Resolved | AlertState::Dismissed => open,
    }
}

/// Which transitions people may make, and what becomes of the notification plan.
/// Resolving a notified alert sends one last (resolved) notification; acknowledging
/// and dismissing stop them.
pub(crate) fn transition_allowed(from: AlertState, to: AlertState) -> bool {
    matches!(
        (from, to),
        (AlertState::Active, AlertState::Acknowledged)
            | (
                AlertState::Active | AlertState::Acknowledged,
                AlertState::Resolved | AlertState::Dismissed
            )
    )
}

/// The next notification after a transition to `to`.
pub(crate) fn next_after_transition(alert: &Alert, to: AlertState, at: i64) -> Option<i64> {
    match to {
        AlertState::Resolved if alert.notified_at.is_some() => Some(at),
        _ => None,
    }
}

/// A history row.
pub(crate) fn history(
    at: i64,
    action: String,
    actor: Option<String>,
    from: Option<String>,
    to: String,
    comment: Option<String>,
) -> Result<AlertHistoryEntry, StoreError> {
    Ok(AlertHistoryEntry {
        at: Timestamp(at),
        action,
        actor,
        from_state: from.as_deref().map(state_of).transpose()?,
        to_state: state_of(&to)?,
        comment,
    })
}

/// The history action of a change.
pub(crate) fn action_of(kind: AlertChangeKind) -> Option<&'static str> {
    match kind {
        AlertChangeKind::Opened => Some("opened"),
        AlertChangeKind::Reopened => Some("reopened"),
        AlertChangeKind::Updated | AlertChangeKind::Absorbed => None,
    }
}

/// A delivery row as plain values.
pub(crate) struct DeliveryColumns {
    pub id: i64,
    pub alert_id: Option<i64>,
    pub channel_id: i64,
    pub message_id: String,
    pub event: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_at: i64,
    pub created_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

impl DeliveryColumns {
    pub(crate) fn into_delivery(self) -> Result<Delivery, StoreError> {
        let state: DeliveryState = self.state.parse()?;
        Ok(Delivery {
            id: self.id,
            alert_id: self.alert_id,
            channel_id: self.channel_id,
            message_id: self.message_id,
            event: self.event,
            payload: self.payload,
            state,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_at: Timestamp(self.next_at),
            created_at: Timestamp(self.created_at),
            last_attempt_at: self.last_attempt_at.map(Timestamp),
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            delivered_at: self.delivered_at.map(Timestamp),
        })
    }
}

/// A spec row from its columns.
pub(crate) fn spec_record(
    id: i64,
    name: String,
    kind: String,
    enabled: bool,
    spec: String,
    created_at: i64,
    updated_at: i64,
) -> Result<SpecRecord, StoreError> {
    let spec = serde_json::from_str(&spec)
        .map_err(|e| StoreError::Corrupt(format!("spec of {name:?}: {e}")))?;
    Ok(SpecRecord {
        id,
        input: SpecInput {
            name,
            kind,
            enabled,
            spec,
        },
        created_at: Timestamp(created_at),
        updated_at: Timestamp(updated_at),
    })
}

/// An activity row from its columns.
pub(crate) fn activity(
    id: i64,
    at: i64,
    kind: String,
    actor: Option<String>,
    summary: String,
    detail: String,
) -> Result<Activity, StoreError> {
    let detail = serde_json::from_str(&detail)
        .map_err(|e| StoreError::Corrupt(format!("activity {id} detail: {e}")))?;
    Ok(Activity {
        id,
        at: Timestamp(at),
        kind,
        actor,
        summary,
        detail,
    })
}

/// A unique-name violation, as the message the API shows.
pub(crate) fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("the name {name:?} is taken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn hit(at: i64) -> AlertHit {
        AlertHit {
            rule_id: 1,
            rule_name: "r".into(),
            group_key: "k".into(),
            title: "t".into(),
            severity: Severity::Error,
            category: "sqli".into(),
            threat_ids: vec![1],
            first_seen: Timestamp(at),
            last_seen: Timestamp(at),
            at: Timestamp(at),
            window_us: 10 * MIN,
            group_wait_us: 30_000_000,
            group_interval_us: 5 * MIN,
        }
    }

    fn alert(state: AlertState, state_at: i64, notified: Option<i64>, next: Option<i64>) -> Alert {
        Alert {
            id: 7,
            rule_id: 1,
            rule_name: "r".into(),
            group_key: "k".into(),
            title: "t".into(),
            severity: Severity::Warning,
            category: "sqli".into(),
            state,
            count: 3,
            first_seen: Timestamp(0),
            last_seen: Timestamp(state_at),
            created_at: Timestamp(0),
            updated_at: Timestamp(state_at),
            state_at: Timestamp(state_at),
            state_by: None,
            state_comment: None,
            notified_at: notified.map(Timestamp),
            next_notify_at: next.map(Timestamp),
        }
    }

    #[test]
    fn a_new_group_opens_with_the_group_wait() {
        assert_eq!(
            plan(None, &hit(100)),
            Plan::Open {
                notify_at: 100 + 30_000_000
            }
        );
    }

    #[test]
    fn an_active_alert_notifies_updates_after_the_group_interval() {
        let a = alert(AlertState::Active, 0, Some(MIN), Some(MIN + 240 * MIN));
        let Plan::Merge {
            next_notify_at,
            severity,
            kind,
            ..
        } = plan(Some(&a), &hit(2 * MIN))
        else {
            panic!("merge expected")
        };
        assert_eq!(kind, AlertChangeKind::Updated);
        assert_eq!(next_notify_at, Some(6 * MIN));
        assert_eq!(severity, Severity::Error);
        // Never notified yet: the group wait stays.
        let a = alert(AlertState::Active, 0, None, Some(MIN));
        let Plan::Merge { next_notify_at, .. } = plan(Some(&a), &hit(2 * MIN)) else {
            panic!("merge expected")
        };
        assert_eq!(next_notify_at, Some(MIN));
    }

    #[test]
    fn resolved_reopens_within_the_window_and_opens_anew_after() {
        let a = alert(AlertState::Resolved, 0, Some(0), None);
        assert!(matches!(
            plan(Some(&a), &hit(5 * MIN)),
            Plan::Merge {
                kind: AlertChangeKind::Reopened,
                state: AlertState::Active,
                ..
            }
        ));
        assert!(matches!(plan(Some(&a), &hit(11 * MIN)), Plan::Open { .. }));
    }

    #[test]
    fn dismissed_absorbs_within_the_window_and_acknowledged_stays_quiet() {
        let a = alert(AlertState::Dismissed, 0, None, None);
        assert!(matches!(
            plan(Some(&a), &hit(MIN)),
            Plan::Merge {
                kind: AlertChangeKind::Absorbed,
                next_notify_at: None,
                ..
            }
        ));
        assert!(matches!(plan(Some(&a), &hit(20 * MIN)), Plan::Open { .. }));
        let a = alert(AlertState::Acknowledged, 0, Some(0), None);
        assert!(matches!(
            plan(Some(&a), &hit(MIN)),
            Plan::Merge {
                state: AlertState::Acknowledged,
                next_notify_at: None,
                ..
            }
        ));
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        use AlertState::*;
        assert!(transition_allowed(Active, Acknowledged));
        assert!(transition_allowed(Acknowledged, Resolved));
        assert!(transition_allowed(Active, Dismissed));
        assert!(!transition_allowed(Acknowledged, Acknowledged));
        assert!(!transition_allowed(Resolved, Dismissed));
        assert!(!transition_allowed(Dismissed, Resolved));
        assert!(!transition_allowed(Active, Active));
    }
}
