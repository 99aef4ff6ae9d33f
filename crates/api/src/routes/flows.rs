//! `GET /api/v1/flows` and `/api/v1/flows/{id}`: network flows read from packet
//! captures (palisade-flows), filtered in the database.

use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_core::Timestamp;
use palisade_store::{FlowAnalytics, FlowAnalyticsQuery, FlowQuery, StoredFlow};
use serde::Serialize;

use crate::AppState;
use crate::params::Params;
use crate::problem::Problem;

/// One page of flows.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FlowPage {
    /// Flows, newest first (by start time).
    pub items: Vec<StoredFlow>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of the flows listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FlowParams {
    /// Flows starting at or after this time.
    from: Option<String>,
    /// Flows starting before this time.
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// Either endpoint's address, or a CIDR network.
    ip: Option<String>,
    /// Either endpoint's port.
    #[param(minimum = 0, maximum = 65535)]
    port: Option<u32>,
    /// Transport protocol: tcp, udp, icmp, icmpv6.
    protocol: Option<String>,
    /// Application protocol (dns, http, tls, ssh, quic, … or a port name).
    application: Option<String>,
    /// Zeek connection state: S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH.
    state: Option<String>,
    /// A device id: flows with either endpoint at one of its addresses.
    #[param(minimum = 1)]
    device: Option<i64>,
    /// true: only flows a threat was raised over; false: only flows none was.
    has_threat: Option<bool>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the flows listing accepts.
pub const FLOW_PARAMS: &[&str] = &[
    "from",
    "to",
    "range",
    "ip",
    "port",
    "protocol",
    "application",
    "state",
    "cursor",
    "limit",
    "device",
    "has_threat",
];

const STATES: &[&str] = &[
    "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH",
];

/// Lists flows, newest first.
#[utoipa::path(get, path = "/api/v1/flows", tag = "flows", params(FlowParams), responses(
    (status = 200, description = "A page of flows", body = FlowPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_flows(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FlowPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, FLOW_PARAMS)?;
    let (from, to) = p.time_range(Timestamp::now())?;
    let ip = p.ip_net("ip")?;
    let port = p
        .get("port")?
        .map(|v| {
            v.trim()
                .parse::<u16>()
                .map_err(|_| Problem::invalid("port", "must be a port number, 0 to 65535"))
        })
        .transpose()?;
    let protocol = p.text("protocol", 16)?.map(|s| s.to_ascii_lowercase());
    let flow_state = p.text("state", 8)?;
    if let Some(s) = &flow_state
        && !STATES.contains(&s.as_str())
    {
        return Err(Problem::invalid(
            "state",
            format!("must be one of {}", STATES.join(", ")),
        ));
    }
    let q = FlowQuery {
        from,
        to,
        ip,
        port,
        protocol,
        app: p.text("application", 32)?.map(|s| s.to_ascii_lowercase()),
        state: flow_state,
        device: p
            .get("device")?
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        Problem::invalid("device", "must be a device id (a positive integer)")
                    })
            })
            .transpose()?,
        has_threat: p
            .get("has_threat")?
            .map(|v| match v.trim() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(Problem::invalid("has_threat", "must be true or false")),
            })
            .transpose()?,
        cursor: p.cursor()?,
        limit: p.limit()?,
    };
    let page = state.store.list_flows(&q).await?;
    Ok(Json(FlowPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One flow with its application details.
#[utoipa::path(get, path = "/api/v1/flows/{id}", tag = "flows", params(("id" = i64, Path, description = "Flow id")), responses(
    (status = 200, description = "The flow", body = StoredFlow),
    (status = 400, description = "The id is invalid", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such flow", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_flow(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<StoredFlow>, Problem> {
    let id = crate::params::path_id(&raw)?;
    state
        .store
        .get_flow(id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no flow with id {id}")))
}

/// Query parameters of flow analytics.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FlowAnalyticsParams {
    /// Flows starting at or after this time (default: 24 hours before `to`).
    from: Option<String>,
    /// Flows starting before this time (default: now).
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// Width of a time bucket in seconds, 1 to 86400 (default: the period / 60, at least
    /// 1). At most 10,000 buckets.
    #[param(minimum = 1, maximum = 86400)]
    bucket: Option<i64>,
    /// Rows of each top list, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    top: Option<u32>,
}

/// The parameters flow analytics accepts.
pub const FLOW_ANALYTICS_PARAMS: &[&str] = &["from", "to", "range", "bucket", "top"];

/// Top talkers, transport protocols, applications and traffic over time for a period,
/// computed in the database from the stored flows (by flow start time).
#[utoipa::path(get, path = "/api/v1/flows/analytics", tag = "flows", params(FlowAnalyticsParams), responses(
    (status = 200, description = "Flow analytics for the period", body = FlowAnalytics),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn flow_analytics(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FlowAnalytics>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, FLOW_ANALYTICS_PARAMS)?;
    let now = Timestamp::now();
    let (from, to) = p.time_range(now)?;
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to.add_micros(-86_400_000_000));
    if from >= to {
        return Err(Problem::invalid("from", "must be earlier than to"));
    }
    let span_s = (to.as_micros() - from.as_micros()) / 1_000_000;
    let bucket = match p.get("bucket")? {
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|b| (1..=86_400).contains(b))
            .ok_or_else(|| {
                Problem::invalid("bucket", "must be a number of seconds from 1 to 86400")
            })?,
        None => (span_s / 60).clamp(1, 86_400),
    };
    if span_s / bucket > 10_000 {
        return Err(Problem::invalid(
            "bucket",
            format!(
                "gives more than 10000 buckets over the period; use at least {} seconds",
                span_s / 10_000 + 1
            ),
        ));
    }
    let top = match p.get("top")? {
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|t| (1..=100).contains(t))
            .ok_or_else(|| Problem::invalid("top", "must be an integer from 1 to 100"))?,
        None => 10,
    };
    let a = state
        .store
        .flow_analytics(&FlowAnalyticsQuery {
            from,
            to,
            bucket_secs: bucket,
            top,
        })
        .await?;
    Ok(Json(a))
}
