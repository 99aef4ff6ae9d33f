//! `/api/v1/decisions`: IP bans and allow-list entries, listed by viewers, created and
//! deleted by analysts and admins (each change audited). A change is in force at once on
//! this instance (the enforcement set is updated with the store) and within one reload
//! interval on the others.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_core::Timestamp;
use palisade_core::decision::{
    Decision, DecisionKind, DecisionOrigin, DecisionScope, DecisionTarget, MAX_DURATION_SECS,
    NewDecision, PutOutcome, TargetError, parse_duration,
};
use palisade_pipeline::decisions::DecisionError;
use palisade_store::DecisionQuery;
use serde::Serialize;
use serde_json::Value;

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::params::Params;
use crate::problem::Problem;

/// A ban lasts this long when the request gives no duration (CrowdSec's default).
pub const DEFAULT_BAN_SECS: i64 = 4 * 3600;

/// The longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 256;

/// A decision as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// Whether it is in force now (neither deleted nor expired).
    pub active: bool,
}

impl DecisionView {
    fn at(decision: Decision, now: Timestamp) -> Self {
        let active = decision.is_active(now);
        DecisionView { decision, active }
    }
}

/// One page of decisions.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionPage {
    /// Decisions, newest first.
    pub items: Vec<DecisionView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What a create did: one decision of each kind is in force per value, so asking again
/// extends it (when the new one lasts longer) instead of adding a duplicate.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionWritten {
    /// created (201), extended or unchanged (200).
    pub outcome: PutOutcome,
    /// The decision in force.
    #[serde(flatten)]
    pub decision: Decision,
    /// Always true.
    pub active: bool,
}

/// Query parameters of the decisions listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DecisionParams {
    /// ban or allow.
    #[param(pattern = "^(ban|allow)$")]
    kind: Option<String>,
    /// ip or range.
    #[param(pattern = "^(ip|range)$")]
    scope: Option<String>,
    /// An address (or CIDR): the decision on it and every range containing it.
    ip: Option<String>,
    /// manual, scenario or waf.
    #[param(pattern = "^(manual|scenario|waf)$")]
    origin: Option<String>,
    /// Exact scenario (or reason).
    scenario: Option<String>,
    /// true (default): in force now; false: deleted or expired; any: both.
    #[param(pattern = "^(true|false|any)$")]
    active: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the decisions listing accepts.
pub const DECISION_PARAMS: &[&str] = &[
    "kind", "scope", "ip", "origin", "scenario", "active", "cursor", "limit",
];

/// Lists decisions, newest first (by default only those in force).
#[utoipa::path(get, path = "/api/v1/decisions", tag = "decisions", params(DecisionParams), responses(
    (status = 200, description = "A page of decisions", body = DecisionPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_decisions(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DecisionPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, DECISION_PARAMS)?;
    let now = Timestamp::now();
    let kind = p
        .get("kind")?
        .map(|v| {
            DecisionKind::parse(v.trim())
                .ok_or_else(|| Problem::invalid("kind", "must be ban or allow"))
        })
        .transpose()?;
    let scope = p
        .get("scope")?
        .map(|v| {
            DecisionScope::parse(v.trim())
                .ok_or_else(|| Problem::invalid("scope", "must be ip or range"))
        })
        .transpose()?;
    let origin = p
        .get("origin")?
        .map(|v| {
            DecisionOrigin::parse(v.trim())
                .ok_or_else(|| Problem::invalid("origin", "must be manual, scenario or waf"))
        })
        .transpose()?;
    let overlaps = p.ip_net("ip")?;
    let active = match p.get("active")?.map(str::trim) {
        None | Some("true") => Some(true),
        Some("false") => Some(false),
        Some("any") => None,
        Some(_) => return Err(Problem::invalid("active", "must be true, false or any")),
    };
    let q = DecisionQuery {
        kind,
        scope,
        overlaps,
        origin,
        scenario: p.text("scenario", MAX_REASON_CHARS * 4)?,
        active,
        now,
        cursor: p.cursor()?,
        limit: p.limit()?,
    };
    let page = state.store.query_decisions(&q).await?;
    Ok(Json(DecisionPage {
        items: page
            .items
            .into_iter()
            .map(|d| DecisionView::at(d, now))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A duration: seconds, or text such as `4h`, `30m`, `1h30m`, `7d` (units s, m, h, d).
pub struct DurationSpec;

impl utoipa::PartialSchema for DurationSpec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(MAX_DURATION_SECS)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^([0-9]+|([0-9]+[smhd])+)$")),
            )
            .description(Some(
                "Seconds, or text such as 4h, 30m, 1h30m, 7d; at most ten years",
            ))
            .into()
    }
}

impl utoipa::ToSchema for DurationSpec {}

/// A decision to create. Unknown fields are refused.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CreateDecision {
    /// ban or allow.
    kind: DecisionKind,
    /// An address or CIDR network (host bits are cleared; /0 is refused).
    #[schema(min_length = 1, max_length = 64)]
    value: String,
    /// How long it lasts; null for good. Absent: 4h for a ban, for good for an allow.
    #[schema(value_type = Option<DurationSpec>)]
    duration: Option<Value>,
    /// Why (shown to bouncers as the scenario); at most 256 characters.
    #[schema(max_length = 256)]
    reason: Option<String>,
}

/// A create request, checked.
struct Create {
    kind: DecisionKind,
    target: DecisionTarget,
    secs: Option<i64>,
    reason: Option<String>,
}

/// Reads and checks a create body field by field, naming the field at fault.
fn parse_create(body: &Value) -> Result<Create, Problem> {
    let Some(obj) = body.as_object() else {
        return Err(Problem::invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "kind" | "value" | "duration" | "reason"))
    {
        return Err(Problem::invalid(
            unknown,
            "unknown field; accepted: kind, value, duration, reason",
        ));
    }
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => DecisionKind::parse(k.trim()),
        None => return Err(Problem::invalid("kind", "missing; give ban or allow")),
        Some(_) => None,
    }
    .ok_or_else(|| Problem::invalid("kind", "must be ban or allow"))?;
    let target = match obj.get("value") {
        Some(Value::String(v)) if v.len() <= 64 => {
            v.parse::<DecisionTarget>().map_err(|e| match e {
                TargetError::EveryAddress => Problem::invalid("value", e.to_string()),
                TargetError::Net(e) => {
                    Problem::invalid("value", format!("{e}; give an address or a CIDR"))
                }
            })?
        }
        Some(Value::String(_)) => {
            return Err(Problem::invalid("value", "longer than 64 characters"));
        }
        None => {
            return Err(Problem::invalid(
                "value",
                "missing; give an address or a CIDR",
            ));
        }
        Some(_) => {
            return Err(Problem::invalid(
                "value",
                "must be a string (an address or a CIDR)",
            ));
        }
    };
    let secs = match obj.get("duration") {
        None => match kind {
            DecisionKind::Ban => Some(DEFAULT_BAN_SECS),
            DecisionKind::Allow => None,
        },
        Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let secs = n.as_i64().ok_or_else(|| {
                Problem::invalid(
                    "duration",
                    "seconds must be a whole number from 1 to 315360000 (ten years)",
                )
            })?;
            Some(
                parse_duration(&secs.to_string())
                    .map_err(|e| Problem::invalid("duration", e.to_string()))?,
            )
        }
        Some(Value::String(t)) => {
            Some(parse_duration(t).map_err(|e| Problem::invalid("duration", e.to_string()))?)
        }
        Some(_) => {
            return Err(Problem::invalid(
                "duration",
                "give seconds, text such as 4h, or null for good",
            ));
        }
    };
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => {
            let r = r.trim();
            if r.chars().count() > MAX_REASON_CHARS {
                return Err(Problem::invalid("reason", "longer than 256 characters"));
            }
            if r.chars().any(char::is_control) {
                return Err(Problem::invalid(
                    "reason",
                    "must not contain control characters",
                ));
            }
            (!r.is_empty()).then(|| r.to_owned())
        }
        Some(_) => return Err(Problem::invalid("reason", "must be a string")),
    };
    Ok(Create {
        kind,
        target,
        secs,
        reason,
    })
}

/// Bans or allow-lists an address or network. Asking again for a value already
/// decided extends the decision in force (200) instead of adding a duplicate (201).
#[utoipa::path(post, path = "/api/v1/decisions", tag = "decisions", request_body = CreateDecision, responses(
    (status = 201, description = "Created", body = DecisionWritten),
    (status = 200, description = "Already in force: extended or unchanged", body = DecisionWritten),
    (status = 400, description = "Invalid field, or a ban the policy refuses (loopback, Palisade's own or trusted addresses, protected ranges, wider than the limit)", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn create_decision(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<DecisionWritten>), Problem> {
    let c = parse_create(&body)?;
    let now = Timestamp::now();
    let actor = principal.actor();
    let reason = c
        .reason
        .unwrap_or_else(|| format!("manual {} by {actor}", c.kind.as_str()));
    let (decision, outcome) = state
        .pipeline
        .decisions
        .put(NewDecision {
            kind: c.kind,
            target: c.target,
            origin: DecisionOrigin::Manual,
            scenario: reason,
            created_by: actor.clone(),
            threat_id: None,
            expires_at: c.secs.map(|s| now.add_micros(s.saturating_mul(1_000_000))),
        })
        .await
        .map_err(|e| match e {
            DecisionError::Refused(why) => Problem::invalid("value", why.to_string()),
            DecisionError::Store(e) => Problem::from(e),
        })?;
    let how_long = c
        .secs
        .map_or_else(|| "for good".to_owned(), |s| format!("{s}s"));
    audit(
        &state,
        Some(actor),
        "decision.create",
        Some(decision.value.clone()),
        true,
        &ip,
        Some(format!(
            "{} {how_long} (id {}, {}): {}",
            decision.kind.as_str(),
            decision.id,
            outcome_name(outcome),
            decision.scenario
        )),
    )
    .await;
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(DecisionWritten {
            outcome,
            decision,
            active: true,
        }),
    ))
}

fn outcome_name(o: PutOutcome) -> &'static str {
    match o {
        PutOutcome::Created => "created",
        PutOutcome::Extended => "extended",
        PutOutcome::Unchanged => "unchanged",
    }
}

/// One decision, in force or not.
#[utoipa::path(get, path = "/api/v1/decisions/{id}", tag = "decisions", params(("id" = i64, Path, description = "Decision id")), responses(
    (status = 200, description = "The decision", body = DecisionView),
    (status = 400, description = "Invalid id", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such decision", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_decision(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<DecisionView>, Problem> {
    let id = crate::params::path_id(&raw)?;
    state
        .store
        .get_decision(id)
        .await?
        .map(|d| Json(DecisionView::at(d, Timestamp::now())))
        .ok_or_else(|| Problem::not_found(format!("no decision with id {id}")))
}

/// Deletes a decision in force (it stays listed, with `deleted_at`, and bouncers are
/// told).
#[utoipa::path(delete, path = "/api/v1/decisions/{id}", tag = "decisions", params(("id" = i64, Path, description = "Decision id")), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Invalid id", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No decision in force with this id", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn delete_decision(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = crate::params::path_id(&raw)?;
    let actor = principal.actor();
    let Some(deleted) = state.pipeline.decisions.delete(id, &actor).await? else {
        return Err(Problem::not_found(format!(
            "no decision in force with id {id}"
        )));
    };
    audit(
        &state,
        Some(actor),
        "decision.delete",
        Some(deleted.value.clone()),
        true,
        &ip,
        Some(format!(
            "{} (id {id}): {}",
            deleted.kind.as_str(),
            deleted.scenario
        )),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(body: Value) -> String {
        parse_create(&body)
            .err()
            .and_then(|p| p.field)
            .unwrap_or_default()
    }

    #[test]
    fn create_bodies_are_checked_field_by_field() {
        let ok = parse_create(&json!({"kind": "ban", "value": "10.0.0.7/24"})).unwrap();
        assert_eq!(ok.target.to_string(), "10.0.0.0/24");
        assert_eq!(ok.secs, Some(DEFAULT_BAN_SECS));
        let allow = parse_create(&json!({"kind": "allow", "value": "::1"})).unwrap();
        assert_eq!(allow.secs, None);
        let forever =
            parse_create(&json!({"kind": "ban", "value": "::1", "duration": null})).unwrap();
        assert_eq!(forever.secs, None);
        let text = parse_create(
            &json!({"kind": "ban", "value": "::1", "duration": "1h30m", "reason": " scan "}),
        )
        .unwrap();
        assert_eq!(
            (text.secs, text.reason.as_deref()),
            (Some(5400), Some("scan"))
        );
        let secs = parse_create(&json!({"kind": "ban", "value": "::1", "duration": 60})).unwrap();
        assert_eq!(secs.secs, Some(60));

        assert_eq!(field(json!([])), "body");
        assert_eq!(field(json!({"value": "1.2.3.4"})), "kind");
        assert_eq!(
            field(json!({"kind": "captcha", "value": "1.2.3.4"})),
            "kind"
        );
        assert_eq!(field(json!({"kind": 1, "value": "1.2.3.4"})), "kind");
        assert_eq!(field(json!({"kind": "ban"})), "value");
        assert_eq!(field(json!({"kind": "ban", "value": 5})), "value");
        assert_eq!(field(json!({"kind": "ban", "value": "0.0.0.0/0"})), "value");
        assert_eq!(field(json!({"kind": "ban", "value": "::/0"})), "value");
        assert_eq!(
            field(json!({"kind": "ban", "value": "10.0.0.0/33"})),
            "value"
        );
        assert_eq!(
            field(json!({"kind": "ban", "value": "x".repeat(65)})),
            "value"
        );
        for bad in [
            json!(0),
            json!(-5),
            json!(1.5),
            json!("0s"),
            json!("soon"),
            json!([]),
            json!(315_360_001),
        ] {
            assert_eq!(
                field(json!({"kind": "ban", "value": "1.2.3.4", "duration": bad})),
                "duration",
                "{bad}"
            );
        }
        assert_eq!(
            field(json!({"kind": "ban", "value": "1.2.3.4", "reason": 3})),
            "reason"
        );
        assert_eq!(
            field(json!({"kind": "ban", "value": "1.2.3.4", "reason": "a\nb"})),
            "reason"
        );
        assert_eq!(
            field(json!({"kind": "ban", "value": "1.2.3.4", "reason": "r".repeat(257)})),
            "reason"
        );
        assert_eq!(
            field(json!({"kind": "ban", "value": "1.2.3.4", "until": 5})),
            "until"
        );
    }
}
