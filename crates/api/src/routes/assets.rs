//! `/api/v1/assets`: the hosts and services whose software is tracked, created by an
//! inventory upload or by software seen in traffic and logs; and
//! `POST /api/v1/assets/{name}/inventory`, the upload (CycloneDX or SPDX JSON, `dpkg -l`
//! or `rpm -qa` text, the format detected), matched at once.

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use palisade_core::vuln::{Asset, StoredSoftware};
use palisade_store::AssetQuery;
use palisade_vuln::inventory::Format;
use palisade_vuln::{UploadSummary, VulnError};
use serde::Serialize;

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::params::Params;
use crate::problem::Problem;

/// Longest asset name, in bytes.
pub const MAX_ASSET_NAME: usize = 255;

/// A vulnerability engine error as a problem document.
pub(crate) fn vuln_problem(e: VulnError) -> Problem {
    match e {
        VulnError::Store(e) => Problem::from(e),
        VulnError::Inventory(e) => Problem::invalid("body", e.to_string()),
        VulnError::Cancelled => Problem::unavailable("the work was cancelled (shutdown)", 5),
        other => Problem::internal(&other),
    }
}

/// Checks an asset name from the path: 1 to 255 bytes, printable, no spaces.
pub(crate) fn asset_name(raw: &str) -> Result<String, Problem> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_ASSET_NAME
        && !raw.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Problem::invalid(
            "name",
            "must be 1 to 255 bytes without spaces or control characters (a host name, host:port, …)",
        ))
    }
}

/// One page of assets.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AssetPage {
    /// Assets, newest first.
    pub items: Vec<Asset>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An asset with its software.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AssetDetail {
    /// The asset and its open matches by severity.
    #[serde(flatten)]
    pub asset: Asset,
    /// What it runs, by source then name.
    pub inventory: Vec<StoredSoftware>,
}

/// Query parameters of the assets listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AssetParams {
    /// Names starting with this.
    prefix: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The parameters the assets listing accepts.
pub const ASSET_PARAMS: &[&str] = &["prefix", "cursor", "limit"];

/// Lists assets, newest first, with their open matches by severity.
#[utoipa::path(get, path = "/api/v1/assets", tag = "vulnerabilities", params(AssetParams), responses(
    (status = 200, description = "A page of assets", body = AssetPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_assets(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AssetPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, ASSET_PARAMS)?;
    let page = state
        .store
        .query_assets(&AssetQuery {
            name_prefix: p.text("prefix", MAX_ASSET_NAME)?,
            cursor: p.cursor()?,
            limit: p.limit()?,
        })
        .await?;
    Ok(Json(AssetPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One asset with its software inventory.
#[utoipa::path(get, path = "/api/v1/assets/{name}", tag = "vulnerabilities", params(("name" = String, Path, description = "Asset name")), responses(
    (status = 200, description = "The asset", body = AssetDetail),
    (status = 400, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such asset", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_asset(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<AssetDetail>, Problem> {
    let name = asset_name(&raw)?;
    let asset = state
        .store
        .get_asset(&name)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no asset named {name}")))?;
    let inventory = state.store.asset_software(asset.id).await?;
    Ok(Json(AssetDetail { asset, inventory }))
}

/// Query parameters of the inventory upload.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct InventoryParams {
    /// cyclonedx, spdx, dpkg or rpm; detected from the content when absent.
    #[param(pattern = "^(cyclonedx|spdx|dpkg|rpm)$")]
    format: Option<String>,
}

/// Uploads an asset's software inventory: a CycloneDX or SPDX JSON SBOM, `dpkg -l` /
/// `dpkg-query -W` output or `rpm -qa` output. It replaces the previous upload of the
/// same format for that asset (the asset is created when new), and the asset is
/// matched against the stored CVEs at once: the answer says what opened and closed.
#[utoipa::path(post, path = "/api/v1/assets/{name}/inventory", tag = "vulnerabilities",
    params(("name" = String, Path, description = "Asset name"), InventoryParams),
    request_body(content = String, description = "The inventory document or listing", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored and matched", body = UploadSummary),
        (status = 400, description = "Not a recognised inventory, or a parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over the size limit", body = Problem, content_type = "application/problem+json"),
    ), security(("bearer" = [])))]
pub async fn upload_inventory(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<(StatusCode, Json<UploadSummary>), Problem> {
    let name = asset_name(&raw)?;
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, &["format"])?;
    let format = p
        .get("format")?
        .map(|f| {
            Format::parse(f)
                .ok_or_else(|| Problem::invalid("format", "must be cyclonedx, spdx, dpkg or rpm"))
        })
        .transpose()?;
    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        let mut p = Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: larger than the {limit}-byte limit ([http] max_body_bytes)"),
        );
        p.field = Some("body".into());
        p
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::invalid(
            "body",
            "is empty; send an SBOM or a package list",
        ));
    }
    let sink = state.pipeline.threat_sink();
    let summary = palisade_vuln::upload_inventory(
        &state.store,
        &name,
        &bytes,
        format,
        state.pipeline.vuln.max_inventory_items,
        Some(&sink),
    )
    .await
    .map_err(vuln_problem)?;
    audit(
        &state,
        Some(principal.actor()),
        "asset.inventory",
        Some(name),
        true,
        &ip,
        Some(format!(
            "{} items ({}), {} opened, {} resolved",
            summary.items, summary.format, summary.opened, summary.resolved
        )),
    )
    .await;
    Ok((StatusCode::OK, Json(summary)))
}
