//! The alerts half of the store: alert rules and notification channels (kept as
//! validated JSON specs, so the alerts component owns their shape), alerts grouped from
//! threats with their lifecycle history, the durable notification queue with its
//! delivery log, and the activity feed.
//!
//! Grouping happens inside one transaction ([`AlertStore::record_alert_hits`]): the
//! latest alert of a (rule, group key) is read and merged into, reopened or superseded
//! by the same rules on both backends (`codec/alerts.rs`), so a burst of threats becomes
//! one alert whatever the API does to it at the same moment.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::severity::Severity;
use serde::Serialize;

use crate::{Cursor, Page, StoreError};

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Firing, nobody has looked at it yet.
    Active,
    /// Someone is on it: no more repeat notifications.
    Acknowledged,
    /// Over; the group firing again reopens it.
    Resolved,
    /// Not worth acting on; later threats of the group are absorbed silently.
    Dismissed,
}

impl AlertState {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertState::Active => "active",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
            AlertState::Dismissed => "dismissed",
        }
    }

    /// Whether the alert still wants attention (active or acknowledged).
    pub const fn is_open(self) -> bool {
        matches!(self, AlertState::Active | AlertState::Acknowledged)
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown alert state: use active, acknowledged, resolved or dismissed")]
pub struct UnknownAlertState;

impl FromStr for AlertState {
    type Err = UnknownAlertState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => AlertState::Active,
            "acknowledged" => AlertState::Acknowledged,
            "resolved" => AlertState::Resolved,
            "dismissed" => AlertState::Dismissed,
            _ => return Err(UnknownAlertState),
        })
    }
}

/// Threats of one rule and group seen together, to be merged into the group's alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertHit {
    /// The rule that matched.
    pub rule_id: i64,
    /// Its name, kept on the alert so history survives the rule's deletion.
    pub rule_name: String,
    /// The grouping key's value (`client_ip=203.0.113.7 category=sqli`).
    pub group_key: String,
    /// A one-line summary for a new alert.
    pub title: String,
    /// The most serious severity among the threats.
    pub severity: Severity,
    /// The threats' category (the first one, when several).
    pub category: String,
    /// The threats' ids (linked to the alert).
    pub threat_ids: Vec<i64>,
    /// Earliest threat time.
    pub first_seen: Timestamp,
    /// Latest threat time.
    pub last_seen: Timestamp,
    /// When the hit is recorded (now).
    pub at: Timestamp,
    /// How long after resolution (or after its last threat, when dismissed) the group
    /// still belongs to the same alert, in µs.
    pub window_us: i64,
    /// Wait before the first notification, in µs.
    pub group_wait_us: i64,
    /// Least time between two notifications of an update, in µs.
    pub group_interval_us: i64,
}

/// What recording a hit did to the group's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertChangeKind {
    /// A new alert.
    Opened,
    /// More threats on an open alert.
    Updated,
    /// A resolved alert fired again and is active.
    Reopened,
    /// A dismissed alert took the threats silently.
    Absorbed,
}

/// An alert after a hit, and what the hit did.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    /// What happened.
    pub kind: AlertChangeKind,
    /// The alert as it is now.
    pub alert: Alert,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    /// Its id.
    pub id: i64,
    /// The rule that raised it.
    pub rule_id: i64,
    /// That rule's name when it was raised.
    pub rule_name: String,
    /// The group it covers.
    pub group_key: String,
    /// One-line summary.
    pub title: String,
    /// The most serious severity seen.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// Category of its threats.
    pub category: String,
    /// Lifecycle state.
    pub state: AlertState,
    /// Threats grouped into it.
    pub count: u64,
    /// First threat.
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    /// Latest threat.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Raised.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When the state last changed.
    #[schema(value_type = String, format = DateTime)]
    pub state_at: Timestamp,
    /// Who changed it last (`null`: the rule engine).
    pub state_by: Option<String>,
    /// Their comment.
    pub state_comment: Option<String>,
    /// Last notification queued.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub notified_at: Option<Timestamp>,
    /// Next notification due (`null`: none planned).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_notify_at: Option<Timestamp>,
}

/// Filters of the alert listing; newest first by creation.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// Exact state.
    pub state: Option<AlertState>,
    /// Exact severity.
    pub severity: Option<Severity>,
    /// Exact category.
    pub category: Option<String>,
    /// Alerts with threats at or after.
    pub from: Option<Timestamp>,
    /// Alerts with threats before.
    pub to: Option<Timestamp>,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
}

/// A person moving an alert along its lifecycle.
#[derive(Debug, Clone)]
pub struct AlertTransition {
    /// Acknowledged, Resolved or Dismissed.
    pub to: AlertState,
    /// Who.
    pub actor: String,
    /// Why.
    pub comment: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// The result of a transition.
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionOutcome {
    /// Done; the alert as it is now.
    Done(Box<Alert>),
    /// No such alert.
    NotFound,
    /// Not allowed from the alert's current state.
    NotAllowed(AlertState),
}

/// One line of an alert's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlertHistoryEntry {
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `opened`, `reopened`, `acknowledged`, `resolved`, `dismissed`.
    pub action: String,
    /// Who (`null`: the rule engine).
    pub actor: Option<String>,
    /// State before (`null` when opened).
    pub from_state: Option<AlertState>,
    /// State after.
    pub to_state: AlertState,
    /// Their comment.
    pub comment: Option<String>,
}

/// Which list of named specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecTable {
    /// Alert rules.
    Rules,
    /// Notification channels.
    Channels,
}

impl SpecTable {
    /// The table name (never user input).
    pub(crate) const fn table(self) -> &'static str {
        match self {
            SpecTable::Rules => "alert_rules",
            SpecTable::Channels => "alert_channels",
        }
    }
}

/// A named, validated spec (a rule or a channel) to store.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecInput {
    /// Unique name within its table.
    pub name: String,
    /// The channel kind (`webhook`, `slack`), or the rule's origin (`builtin`, `user`).
    pub kind: String,
    /// Whether it is in use.
    pub enabled: bool,
    /// The component's own JSON form.
    pub spec: serde_json::Value,
}

/// A stored spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecRecord {
    /// Its id.
    pub id: i64,
    /// What was stored.
    pub input: SpecInput,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A notification to queue for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The channel.
    pub channel_id: i64,
    /// Unique message id (the webhook's `webhook-id`: receivers de-duplicate by it).
    pub message_id: String,
    /// `firing`, `updated`, `repeat`, `resolved`, `test`.
    pub event: String,
    /// The notification document (JSON), formatted per channel at sending time.
    pub payload: String,
}

/// Where a queued notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The channel took it.
    Delivered,
    /// Given up (permanent refusal, deleted channel, or out of retry time).
    Failed,
}

impl DeliveryState {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            other => return Err(StoreError::Corrupt(format!("delivery state {other:?}"))),
        })
    }
}

/// A queued notification and its delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The alert (`null` for a channel test).
    pub alert_id: Option<i64>,
    /// The channel.
    pub channel_id: i64,
    /// Unique message id.
    pub message_id: String,
    /// What it announces.
    pub event: String,
    /// The notification document.
    #[serde(skip)]
    pub payload: String,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt (pending), or when it ended.
    #[schema(value_type = String, format = DateTime)]
    pub next_at: Timestamp,
    /// Queued.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last attempt.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<Timestamp>,
    /// The receiver's last HTTP status.
    pub last_status: Option<u16>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the channel took it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    /// Delivered, failed for good, or pending again at `next_at`.
    pub state: DeliveryState,
    /// Next attempt (pending).
    pub next_at: Timestamp,
    /// When the attempt ended.
    pub at: Timestamp,
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
}

/// An entry for the activity feed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    /// When.
    pub at: Timestamp,
    /// `alert.opened`, `alert.acknowledged`, `job.failed`, `decision.added`, …
    pub kind: String,
    /// Who (`null`: the system).
    pub actor: Option<String>,
    /// One line for people.
    pub summary: String,
    /// The facts.
    pub detail: serde_json::Value,
}

/// A stored activity.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Activity {
    /// Its id.
    pub id: i64,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// What kind of thing happened.
    pub kind: String,
    /// Who.
    pub actor: Option<String>,
    /// One line for people.
    pub summary: String,
    /// The facts.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Filters of the activity feed; newest first.
#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    /// Kinds starting with this (`alert.` for every alert change).
    pub kind_prefix: Option<String>,
    /// At or after.
    pub from: Option<Timestamp>,
    /// Before.
    pub to: Option<Timestamp>,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
}

/// Storage for alerting. Every `Store` implements it.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Every spec of a table, by name.
    async fn list_specs(&self, table: SpecTable) -> Result<Vec<SpecRecord>, StoreError>;
    /// One spec.
    async fn get_spec(&self, table: SpecTable, id: i64) -> Result<Option<SpecRecord>, StoreError>;
    /// Stores a new spec; `Conflict` when the name is taken.
    async fn insert_spec(
        &self,
        table: SpecTable,
        spec: &SpecInput,
    ) -> Result<SpecRecord, StoreError>;
    /// Replaces a spec; `None` when there is no such id, `Conflict` on a taken name.
    async fn update_spec(
        &self,
        table: SpecTable,
        id: i64,
        spec: &SpecInput,
    ) -> Result<Option<SpecRecord>, StoreError>;
    /// Deletes a spec; false when there was none.
    async fn delete_spec(&self, table: SpecTable, id: i64) -> Result<bool, StoreError>;

    /// Merges each hit into its group's alert (opening, updating, reopening or
    /// absorbing), links the threats and writes the history, in one transaction.
    async fn record_alert_hits(&self, hits: &[AlertHit]) -> Result<Vec<AlertChange>, StoreError>;
    /// One alert.
    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError>;
    /// Alerts, newest first.
    async fn query_alerts(&self, query: &AlertQuery) -> Result<Page<Alert>, StoreError>;
    /// The newest `limit` threat ids linked to an alert.
    async fn alert_threat_ids(&self, id: i64, limit: u32) -> Result<Vec<i64>, StoreError>;
    /// An alert's history, oldest first.
    async fn alert_history(&self, id: i64) -> Result<Vec<AlertHistoryEntry>, StoreError>;
    /// Acknowledges, resolves or dismisses, with history.
    async fn transition_alert(
        &self,
        id: i64,
        change: &AlertTransition,
    ) -> Result<TransitionOutcome, StoreError>;

    /// Alerts whose next notification is due at `now`, oldest due first.
    async fn due_alert_notifications(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError>;
    /// Queues notifications for an alert and plans the next one, if the alert's plan is
    /// still `seen` (compare-and-set: a change in between leaves it for the next pass).
    /// True when queued.
    async fn enqueue_alert_notifications(
        &self,
        alert_id: i64,
        seen: Timestamp,
        next: Option<Timestamp>,
        now: Timestamp,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError>;
    /// Queues one notification outside any alert (a channel test); returns its id.
    async fn enqueue_delivery(
        &self,
        delivery: &NewDelivery,
        now: Timestamp,
    ) -> Result<i64, StoreError>;
    /// Takes up to `limit` pending notifications due at `now`, counting an attempt and
    /// moving their next attempt to `lease_until` (so a crash mid-send retries later).
    /// Notifications of the channels in `skip_channels` (resting circuits) are left
    /// untouched: not claimed, no attempt counted.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_channels: &[i64],
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Records an attempt's result.
    async fn finish_delivery(&self, id: i64, update: &DeliveryUpdate) -> Result<(), StoreError>;
    /// One queued notification.
    async fn get_delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError>;
    /// An alert's notifications, oldest first.
    async fn alert_deliveries(&self, alert_id: i64) -> Result<Vec<Delivery>, StoreError>;

    /// Appends to the activity feed.
    async fn insert_activity(&self, activity: &NewActivity) -> Result<Activity, StoreError>;
    /// The activity feed, newest first.
    async fn query_activities(&self, query: &ActivityQuery) -> Result<Page<Activity>, StoreError>;
}
