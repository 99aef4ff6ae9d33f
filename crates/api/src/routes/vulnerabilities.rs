//! `/api/v1/vulnerabilities`: CVE matches on assets, listed with filters (asset, CVE,
//! severity, status) and a keyset cursor, one with its CVE record, and triage: a match
//! is marked accepted or fixed (with a comment saying why) or opened again. Each
//! change is audited. `GET /api/v1/cves/{id}` is the CVE record alone.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_core::Timestamp;
use palisade_core::vuln::{Cve, CvssSeverity, MatchStatus, VulnMatch};
use palisade_store::MatchQuery;
use serde::Serialize;
use serde_json::Value;

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::params::Params;
use crate::problem::Problem;

/// Longest triage comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// One page of matches.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VulnerabilityPage {
    /// Matches, newest first.
    pub items: Vec<VulnMatch>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A match with its CVE record.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VulnerabilityDetail {
    /// The match.
    #[serde(flatten)]
    pub matched: VulnMatch,
    /// The CVE record (null if it was removed since).
    pub cve: Option<Cve>,
}

/// Query parameters of the matches listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct VulnerabilityParams {
    /// The asset's exact name.
    asset: Option<String>,
    /// A CVE id, e.g. CVE-2021-44228.
    #[param(pattern = "^CVE-[0-9]{4}-[0-9]{4,12}$")]
    cve: Option<String>,
    /// critical, high, medium, low, none or unknown.
    #[param(pattern = "^(critical|high|medium|low|none|unknown)$")]
    severity: Option<String>,
    /// open, accepted or fixed.
    #[param(pattern = "^(open|accepted|fixed)$")]
    status: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the matches listing accepts.
pub const VULNERABILITY_PARAMS: &[&str] =
    &["asset", "cve", "severity", "status", "cursor", "limit"];

fn cve_id(raw: &str, field: &str) -> Result<String, Problem> {
    let id = raw.trim().to_ascii_uppercase();
    if palisade_vuln::circl::is_cve_id(&id) {
        Ok(id)
    } else {
        Err(Problem::invalid(
            field,
            "must be a CVE id such as CVE-2021-44228",
        ))
    }
}

/// Lists vulnerability matches, newest first.
#[utoipa::path(get, path = "/api/v1/vulnerabilities", tag = "vulnerabilities", params(VulnerabilityParams), responses(
    (status = 200, description = "A page of matches", body = VulnerabilityPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_vulnerabilities(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<VulnerabilityPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, VULNERABILITY_PARAMS)?;
    let asset = p
        .get("asset")?
        .map(super::assets::asset_name)
        .transpose()
        .map_err(|_| {
            Problem::invalid("asset", "must be an asset name (1 to 255 bytes, no spaces)")
        })?;
    let cve = p.get("cve")?.map(|v| cve_id(v, "cve")).transpose()?;
    let severity = p
        .get("severity")?
        .map(|v| {
            CvssSeverity::parse(v).ok_or_else(|| {
                Problem::invalid(
                    "severity",
                    "must be critical, high, medium, low, none or unknown",
                )
            })
        })
        .transpose()?;
    let status = p
        .get("status")?
        .map(|v| {
            MatchStatus::parse(v.trim())
                .ok_or_else(|| Problem::invalid("status", "must be open, accepted or fixed"))
        })
        .transpose()?;
    let page = state
        .store
        .query_matches(&MatchQuery {
            asset,
            cve,
            severity,
            status,
            cursor: p.cursor()?,
            limit: p.limit()?,
            ..MatchQuery::default()
        })
        .await?;
    Ok(Json(VulnerabilityPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One match with its CVE record.
#[utoipa::path(get, path = "/api/v1/vulnerabilities/{id}", tag = "vulnerabilities", params(("id" = i64, Path, description = "Match id")), responses(
    (status = 200, description = "The match", body = VulnerabilityDetail),
    (status = 400, description = "Invalid id", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such match", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_vulnerability(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<VulnerabilityDetail>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let matched = state
        .store
        .get_match(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no vulnerability match with id {id}")))?;
    let cve = state.store.get_cve(&matched.cve_id).await?;
    Ok(Json(VulnerabilityDetail { matched, cve }))
}

/// A triage change. Unknown fields are refused.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TriageChange {
    /// accepted, fixed or open.
    #[schema(pattern = "^(open|accepted|fixed)$")]
    status: String,
    /// Why (required for accepted and fixed); at most 1000 characters.
    #[schema(max_length = 1000)]
    comment: Option<String>,
}

/// Reads and checks a triage body field by field.
fn parse_change(body: &Value) -> Result<(MatchStatus, Option<String>), Problem> {
    let Some(obj) = body.as_object() else {
        return Err(Problem::invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "status" | "comment"))
    {
        return Err(Problem::invalid(
            unknown,
            "unknown field; accepted: status, comment",
        ));
    }
    let status = match obj.get("status") {
        Some(Value::String(s)) => MatchStatus::parse(s.trim()),
        None => {
            return Err(Problem::invalid(
                "status",
                "missing; give accepted, fixed or open",
            ));
        }
        Some(_) => None,
    }
    .ok_or_else(|| Problem::invalid("status", "must be accepted, fixed or open"))?;
    let comment = match obj.get("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => {
            let c = c.trim();
            if c.chars().count() > MAX_COMMENT_CHARS {
                return Err(Problem::invalid("comment", "longer than 1000 characters"));
            }
            if c.chars().any(|ch| ch.is_control() && ch != '\n') {
                return Err(Problem::invalid(
                    "comment",
                    "must not contain control characters",
                ));
            }
            (!c.is_empty()).then(|| c.to_owned())
        }
        Some(_) => return Err(Problem::invalid("comment", "must be a string")),
    };
    if comment.is_none() && status != MatchStatus::Open {
        return Err(Problem::invalid(
            "comment",
            "required when accepting or fixing: say why (an advisory, a compensating control)",
        ));
    }
    Ok((status, comment))
}

/// Sets a match's triage status: accepted (the risk is taken) or fixed, each with a
/// comment, or open again. A match the matcher finds again on the same version keeps
/// what a person set; a new version that is still affected opens it again.
#[utoipa::path(patch, path = "/api/v1/vulnerabilities/{id}", tag = "vulnerabilities", params(("id" = i64, Path, description = "Match id")), request_body = TriageChange, responses(
    (status = 200, description = "Changed", body = VulnMatch),
    (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such match", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn update_vulnerability(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<VulnMatch>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let (status, comment) = parse_change(&body)?;
    let actor = principal.actor();
    let changed = state
        .store
        .set_match_status(id, status, comment.as_deref(), &actor, Timestamp::now())
        .await?
        .ok_or_else(|| Problem::not_found(format!("no vulnerability match with id {id}")))?;
    audit(
        &state,
        Some(actor),
        "vulnerability.status",
        Some(format!("{} on {}", changed.cve_id, changed.asset)),
        true,
        &ip,
        Some(format!(
            "{}: {}",
            status.as_str(),
            comment.as_deref().unwrap_or("(no comment)")
        )),
    )
    .await;
    Ok(Json(changed))
}

/// One CVE record.
#[utoipa::path(get, path = "/api/v1/cves/{id}", tag = "vulnerabilities", params(("id" = String, Path, description = "CVE id")), responses(
    (status = 200, description = "The record", body = Cve),
    (status = 400, description = "Invalid id", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not in the store", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_cve(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Cve>, Problem> {
    let id = cve_id(&raw, "id")?;
    state
        .store
        .get_cve(&id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("{id} is not in the store (fetch NVD or CIRCL)")))
}
