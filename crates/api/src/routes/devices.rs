//! `GET /api/v1/devices` and `/api/v1/devices/{id}`: the network device inventory built
//! from packet captures (palisade-flows `device`), filtered in the database; a device
//! comes with its latest flows and the threats raised over them.

use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_core::Timestamp;
use palisade_core::threat::StoredThreat;
use palisade_store::{DeviceQuery, FlowQuery, StoredDevice, StoredFlow};
use serde::Serialize;

use crate::AppState;
use crate::params::Params;
use crate::problem::Problem;

/// One page of devices.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DevicePage {
    /// Devices, most recently seen first.
    pub items: Vec<StoredDevice>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One device with its latest flows and their threats.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceDetail {
    /// The device.
    #[serde(flatten)]
    pub device: StoredDevice,
    /// Its latest flows (either endpoint at one of its addresses), newest first, at
    /// most 100; page further with `GET /api/v1/flows?device={id}`.
    pub flows: Vec<StoredFlow>,
    /// Threats raised over its flows, newest first, at most 50.
    pub threats: Vec<StoredThreat>,
}

/// Query parameters of the devices listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeviceParams {
    /// Devices seen at or after this time (by last seen).
    from: Option<String>,
    /// Devices first seen before this time.
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// One of its addresses, or a CIDR network.
    ip: Option<String>,
    /// Its MAC (any case, `:` or `-` separated).
    mac: Option<String>,
    /// Vendor containing this text.
    vendor: Option<String>,
    /// A host name containing this text.
    hostname: Option<String>,
    /// OS guess containing this text.
    os: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the devices listing accepts.
pub const DEVICE_PARAMS: &[&str] = &[
    "from", "to", "range", "ip", "mac", "vendor", "hostname", "os", "cursor", "limit",
];

/// `aa:bb:cc:dd:ee:ff` from any case and `:`/`-` separators.
fn normal_mac(v: &str) -> Option<String> {
    let parts: Vec<&str> = v.trim().split([':', '-']).collect();
    (parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit())))
    .then(|| parts.join(":").to_ascii_lowercase())
}

/// Lists devices, most recently seen first.
#[utoipa::path(get, path = "/api/v1/devices", tag = "flows", params(DeviceParams), responses(
    (status = 200, description = "A page of devices", body = DevicePage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_devices(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DevicePage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, DEVICE_PARAMS)?;
    let (from, to) = p.time_range(Timestamp::now())?;
    let ip = p.ip_net("ip")?;
    let mac = p
        .get("mac")?
        .map(|v| {
            normal_mac(v).ok_or_else(|| {
                Problem::invalid("mac", "must be a MAC address like 00:11:32:17:49:f0")
            })
        })
        .transpose()?;
    let q = DeviceQuery {
        from,
        to,
        ip,
        mac,
        vendor: p.text("vendor", 128)?,
        hostname: p.text("hostname", 253)?,
        os: p.text("os", 64)?,
        cursor: p.cursor()?,
        limit: p.limit()?,
    };
    let page = state.store.list_devices(&q).await?;
    Ok(Json(DevicePage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One device with its latest flows and their threats.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "flows", params(("id" = i64, Path, description = "Device id")), responses(
    (status = 200, description = "The device", body = DeviceDetail),
    (status = 400, description = "The id is invalid", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_device(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<DeviceDetail>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let device = state
        .store
        .get_device(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no device with id {id}")))?;
    let flows = state
        .store
        .list_flows(&FlowQuery {
            device: Some(id),
            limit: 100,
            ..FlowQuery::default()
        })
        .await?
        .items;
    let mut threats = Vec::new();
    for tid in state.store.device_threat_ids(id, 50).await? {
        if let Some(t) = state.store.get_threat(tid).await? {
            threats.push(t);
        }
    }
    Ok(Json(DeviceDetail {
        device,
        flows,
        threats,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_normalised() {
        assert_eq!(
            normal_mac("00-11-32-17-49-F0").as_deref(),
            Some("00:11:32:17:49:f0")
        );
        assert_eq!(normal_mac("00:11:32:17:49"), None);
        assert_eq!(normal_mac("00:11:32:17:49:zz"), None);
    }
}
