//! `GET /api/v1/flows` and `/api/v1/flows/{id}`: network flows read from packet
//! captures (palisade-flows), filtered in the database.

use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_core::Timestamp;
use palisade_core::net::IpNet;
use palisade_store::{FlowQuery, StoredFlow};
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
    let ip = p
        .get("ip")?
        .map(|v| {
            v.parse::<IpNet>()
                .map_err(|e| Problem::invalid("ip", format!("{e}; give an address or a CIDR")))
        })
        .transpose()?;
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
