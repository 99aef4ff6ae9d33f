//! `GET /api/v1/alerts`, `GET /api/v1/alerts/{id}` (with its threats, history and
//! delivery log) and `POST /api/v1/alerts/{id}/acknowledge|resolve|dismiss` with an
//! optional comment. Analysts read and act on alerts; each change goes on the live
//! `alerts` topic and into the activity feed.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_alerts::{Activities, AlertMessage};
use palisade_core::Timestamp;
use palisade_core::severity::Severity;
use palisade_core::threat::StoredThreat;
use palisade_live::Topic;
use palisade_store::{
    Alert, AlertHistoryEntry, AlertQuery, AlertState, AlertTransition, Delivery, TransitionOutcome,
};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Principal;
use crate::params::Params;
use crate::problem::Problem;

/// Threats shown with an alert, newest first.
const THREATS_SHOWN: u32 = 100;

/// One page of alerts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    /// Alerts, newest first.
    pub items: Vec<Alert>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An alert with what explains it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertDetail {
    /// The alert.
    pub alert: Alert,
    /// Its newest threats (at most 100; `alert.count` says how many there were).
    pub threats: Vec<StoredThreat>,
    /// Its lifecycle, oldest first.
    pub history: Vec<AlertHistoryEntry>,
    /// Its notifications and their delivery.
    pub deliveries: Vec<Delivery>,
}

/// Query parameters of the alerts listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AlertParams {
    /// active, acknowledged, resolved or dismissed.
    #[param(pattern = "^(active|acknowledged|resolved|dismissed)$")]
    state: Option<String>,
    /// critical, error, warning or notice.
    #[param(pattern = "^(critical|error|warning|notice)$")]
    severity: Option<String>,
    /// Threat category.
    category: Option<String>,
    /// Alerts with threats at or after this time.
    from: Option<String>,
    /// Alerts with threats before this time.
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

const ALERT_PARAMS: &[&str] = &[
    "state", "severity", "category", "from", "to", "range", "cursor", "limit",
];

/// A person's note on a lifecycle change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertAction {
    /// Why (at most 2000 characters).
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

/// Lists alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertParams), responses(
    (status = 200, description = "A page of alerts", body = AlertPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, ALERT_PARAMS)?;
    let (from, to) = p.time_range(Timestamp::now())?;
    let alert_state = p
        .get("state")?
        .map(|s| {
            s.parse::<AlertState>().map_err(|_| {
                Problem::invalid(
                    "state",
                    "must be active, acknowledged, resolved or dismissed",
                )
            })
        })
        .transpose()?;
    let severity = p
        .get("severity")?
        .map(|s| {
            s.parse::<Severity>().map_err(|_| {
                Problem::invalid("severity", "must be critical, error, warning or notice")
            })
        })
        .transpose()?;
    let page = state
        .store
        .query_alerts(&AlertQuery {
            state: alert_state,
            severity,
            category: p.text("category", 64)?,
            from,
            to,
            cursor: p.cursor()?,
            limit: p.limit()?,
        })
        .await?;
    Ok(Json(AlertPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One alert with its threats, history and delivery log.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = i64, Path, description = "Alert id")), responses(
    (status = 200, description = "The alert", body = AlertDetail),
    (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_alert(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<AlertDetail>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let alert = state
        .store
        .get_alert(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no alert {id}")))?;
    let mut threats = Vec::new();
    for tid in state.store.alert_threat_ids(id, THREATS_SHOWN).await? {
        // A threat removed by retention is simply not shown.
        if let Some(t) = state.store.get_threat(tid).await? {
            threats.push(t);
        }
    }
    Ok(Json(AlertDetail {
        alert,
        threats,
        history: state.store.alert_history(id).await?,
        deliveries: state.store.alert_deliveries(id).await?,
    }))
}

async fn act(
    state: &AppState,
    principal: &Principal,
    raw: &str,
    body: &Bytes,
    to: AlertState,
) -> Result<Json<Alert>, Problem> {
    let id = crate::params::path_id(raw)?;
    let action: AlertAction = if body.iter().all(u8::is_ascii_whitespace) {
        AlertAction { comment: None }
    } else {
        crate::json::parse(body)?
    };
    let comment = action.comment.filter(|c| !c.trim().is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > 2000) {
        return Err(Problem::invalid("comment", "at most 2000 characters"));
    }
    let actor = principal.actor();
    let outcome = state
        .store
        .transition_alert(
            id,
            &AlertTransition {
                to,
                actor: actor.clone(),
                comment: comment.clone(),
                at: Timestamp::now(),
            },
        )
        .await?;
    let alert = match outcome {
        TransitionOutcome::Done(a) => *a,
        TransitionOutcome::NotFound => return Err(Problem::not_found(format!("no alert {id}"))),
        TransitionOutcome::NotAllowed(current) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                format!("the alert is {current}: it cannot be {to} now"),
            ));
        }
    };
    state.pipeline.live.publish(
        Topic::Alerts,
        &AlertMessage {
            change: to.as_str(),
            alert: &alert,
        },
    );
    Activities::new(state.store.clone(), Some(state.pipeline.live.clone()))
        .note(
            &format!("alert.{to}"),
            Some(&actor),
            format!("Alert #{id} {to} by {actor}: {}", alert.title),
            serde_json::json!({"alert_id": id, "comment": comment}),
        )
        .await;
    tracing::info!(message = "Alert changed.", alert = id, state = to.as_str(), actor = %actor);
    Ok(Json(alert))
}

/// Acknowledges an active alert (no more repeat notifications).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = i64, Path, description = "Alert id")), request_body(content = AlertAction, description = "Optional"), responses(
    (status = 200, description = "The alert as it is now", body = Alert),
    (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Not allowed from the alert's state", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Alert>, Problem> {
    act(&state, &principal, &raw, &body, AlertState::Acknowledged).await
}

/// Resolves an active or acknowledged alert (the group firing again reopens it).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", params(("id" = i64, Path, description = "Alert id")), request_body(content = AlertAction, description = "Optional"), responses(
    (status = 200, description = "The alert as it is now", body = Alert),
    (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Not allowed from the alert's state", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn resolve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Alert>, Problem> {
    act(&state, &principal, &raw, &body, AlertState::Resolved).await
}

/// Dismisses an active or acknowledged alert (its group is absorbed silently for the
/// rule's window).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/dismiss", tag = "alerts", params(("id" = i64, Path, description = "Alert id")), request_body(content = AlertAction, description = "Optional"), responses(
    (status = 200, description = "The alert as it is now", body = Alert),
    (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Not allowed from the alert's state", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn dismiss(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Alert>, Problem> {
    act(&state, &principal, &raw, &body, AlertState::Dismissed).await
}
