//! `GET /api/v1/audit`: the audit log, for admins.

use axum::extract::{Query, State};
use palisade_core::Timestamp;
use palisade_core::security::AuditEntry;
use palisade_store::AuditQuery;
use serde::Serialize;

use crate::AppState;
use crate::params::Params;
use crate::problem::Problem;

/// One page of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of the audit log.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditParams {
    /// At or after this time.
    from: Option<String>,
    /// Before this time.
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// Exact actor (a username or apikey:NAME).
    actor: Option<String>,
    /// Exact action, e.g. login, user.create, secret.set.
    action: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the audit log accepts.
pub const AUDIT_PARAMS: &[&str] = &["from", "to", "range", "actor", "action", "cursor", "limit"];

/// Lists audit entries, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams), responses(
    (status = 200, description = "A page of audit entries", body = AuditPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<AuditPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, AUDIT_PARAMS)?;
    let (from, to) = p.time_range(Timestamp::now())?;
    let q = AuditQuery {
        from,
        to,
        actor: p.text("actor", 200)?,
        action: p.text("action", 100)?,
        cursor: p.cursor()?,
        limit: p.limit()?,
    };
    let page = state.store.query_audit(&q).await?;
    Ok(axum::Json(AuditPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
