//! `GET /api/v1/threats`, `/api/v1/threats/{id}` and `/api/v1/threats/stats`.

use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_core::Timestamp;
use palisade_core::severity::Severity;
use palisade_core::threat::StoredThreat;
use palisade_store::{ThreatQuery, ThreatStats};
use serde::Serialize;

use crate::AppState;
use crate::params::Params;
use crate::problem::Problem;

/// One page of threats.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ThreatPage {
    /// Threats, newest first.
    pub items: Vec<StoredThreat>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of the threats listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ThreatParams {
    /// At or after this time.
    from: Option<String>,
    /// Before this time.
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// sqli, xss, lfi, rfi, rce, ssrf, jndi, ssti, xxe, protocol, scanner, nosqli, ldapi, mail, crlf.
    category: Option<String>,
    /// critical, error, warning or notice.
    #[param(pattern = "^(critical|error|warning|notice)$")]
    severity: Option<String>,
    /// Client address or CIDR network.
    client_ip: Option<String>,
    /// A rule that matched.
    #[param(minimum = 1)]
    rule_id: Option<u32>,
    /// A tag of a matched rule, exact but case-insensitive (OWASP CRS: `attack-sqli`,
    /// `paranoia-level/1`, `OWASP_CRS/WEB_ATTACK/SQL_INJECTION`, `capec/1000/152/248/66`).
    #[param(min_length = 1, max_length = 128)]
    tag: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the threats listing accepts.
pub const THREAT_PARAMS: &[&str] = &[
    "from",
    "to",
    "range",
    "category",
    "severity",
    "client_ip",
    "rule_id",
    "tag",
    "cursor",
    "limit",
];

/// Lists threats, newest first.
#[utoipa::path(get, path = "/api/v1/threats", tag = "detection", params(ThreatParams), responses(
    (status = 200, description = "A page of threats", body = ThreatPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_threats(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ThreatPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, THREAT_PARAMS)?;
    let (from, to) = p.time_range(Timestamp::now())?;
    let severity = p.text("severity", 16)?;
    if let Some(s) = &severity
        && s.parse::<Severity>().is_err()
    {
        return Err(Problem::invalid(
            "severity",
            "must be critical, error, warning or notice",
        ));
    }
    let client = p.ip_net("client_ip")?;
    let rule_id = p
        .get("rule_id")?
        .map(|v| {
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Problem::invalid("rule_id", "must be a positive integer"))
        })
        .transpose()?;
    // 128 characters of up to 4 bytes each.
    let tag = p.text("tag", 512)?;
    if tag.as_deref().is_some_and(|t| t.chars().count() > 128) {
        return Err(Problem::invalid("tag", "longer than 128 characters"));
    }
    if tag.as_deref().is_some_and(str::is_empty) {
        return Err(Problem::invalid("tag", "must not be empty"));
    }
    let q = ThreatQuery {
        from,
        to,
        category: p.text("category", 32)?,
        severity,
        client,
        rule_id,
        tag,
        cursor: p.cursor()?,
        limit: p.limit()?,
    };
    let page = state.store.query_threats(&q).await?;
    Ok(Json(ThreatPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One threat with its evidence.
#[utoipa::path(get, path = "/api/v1/threats/{id}", tag = "detection", params(("id" = i64, Path, description = "Threat id")), responses(
    (status = 200, description = "The threat", body = StoredThreat),
    (status = 404, description = "No such threat", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_threat(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<StoredThreat>, Problem> {
    let id = crate::params::path_id(&raw)?;
    state
        .store
        .get_threat(id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no threat with id {id}")))
}

/// Query parameters of threat statistics.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StatsParams {
    /// At or after this time (default: 24 hours ago).
    from: Option<String>,
    /// Before this time (default: now).
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// Time bucket: 1m, 5m, 1h or 1d (default: about 60 buckets over the period).
    #[param(pattern = "^(1m|5m|1h|1d)$")]
    bucket: Option<String>,
}

/// Threat counts by category, severity, rule and source, and per time bucket.
#[utoipa::path(get, path = "/api/v1/threats/stats", tag = "detection", params(StatsParams), responses(
    (status = 200, description = "Statistics", body = ThreatStats),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn threat_stats(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ThreatStats>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, &["from", "to", "range", "bucket"])?;
    let now = Timestamp::now();
    let (from, to) = p.time_range(now)?;
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to.add_micros(-86_400_000_000));
    let bucket = match p.get("bucket")? {
        Some("1m") => 60,
        Some("5m") => 300,
        Some("1h") => 3600,
        Some("1d") => 86_400,
        Some(_) => return Err(Problem::invalid("bucket", "must be 1m, 5m, 1h or 1d")),
        None => ((to.as_micros() - from.as_micros()) / 1_000_000 / 60).clamp(60, 86_400),
    };
    Ok(Json(state.store.threat_stats(from, to, bucket).await?))
}
