//! API keys for sensors and proxies (admins only). A key is shown once, at creation.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_core::Timestamp;
use palisade_core::security::{ApiKey, NewApiKey, Scope};
use serde::{Deserialize, Serialize};

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::problem::Problem;

/// A key as listed: never the key itself.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Public prefix (the key starts `pal_<prefix>_`).
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Creator.
    pub created_by: Option<String>,
    /// Created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last used (to the minute).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    /// Revoked.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created_by: k.created_by,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// The keys listing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiKeyPage {
    /// Keys, newest first.
    pub items: Vec<ApiKeyView>,
    /// Always null.
    pub next_cursor: Option<String>,
}

/// A key to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1–64 printable characters, unique.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f]*[^\\s][^\\x00-\\x1f]*$"
    )]
    pub name: String,
    /// ingest, check, read and/or bouncer.
    #[schema(value_type = Vec<palisade_core::security::Scope>, min_items = 1)]
    pub scopes: Vec<String>,
}

/// A created key: the only time the key is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// The key, for `X-Api-Key` or `Authorization: Bearer`. Store it now.
    pub key: String,
    /// The stored record.
    #[serde(flatten)]
    pub record: ApiKeyView,
}

/// Parses scope names, rejecting unknown or repeated ones.
pub fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, Problem> {
    if names.is_empty() {
        return Err(Problem::invalid(
            "scopes",
            "give at least one of ingest, check, read, bouncer",
        ));
    }
    let mut scopes = Vec::new();
    for n in names {
        let s = Scope::parse(n.trim()).ok_or_else(|| {
            Problem::invalid(
                "scopes",
                format!("'{n}' is not one of ingest, check, read, bouncer"),
            )
        })?;
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    Ok(scopes)
}

/// Checks a key name.
pub fn valid_key_name(name: &str) -> Result<(), Problem> {
    if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "name",
            "must be 1 to 64 printable characters",
        ));
    }
    Ok(())
}

/// Lists keys.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", responses((status = 200, description = "Keys", body = ApiKeyPage)), security(("bearer" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
) -> Result<axum::Json<ApiKeyPage>, Problem> {
    let items = state
        .store
        .list_api_keys()
        .await?
        .into_iter()
        .map(ApiKeyView::from)
        .collect();
    Ok(axum::Json(ApiKeyPage {
        items,
        next_cursor: None,
    }))
}

/// Creates a key and shows it once.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKey, responses(
    (status = 201, description = "Created; the key is in `key`", body = CreatedApiKey),
    (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, axum::Json<CreatedApiKey>), Problem> {
    valid_key_name(&body.name)?;
    let scopes = parse_scopes(&body.scopes)?;
    let (key, prefix) = palisade_auth::tokens::new_api_key().map_err(|e| Problem::internal(&e))?;
    let record = state
        .store
        .create_api_key(NewApiKey {
            name: body.name.trim().to_owned(),
            prefix,
            key_hash: palisade_auth::tokens::sha256_hex(&key),
            scopes,
            created_by: Some(principal.actor()),
        })
        .await
        .map_err(|e| match e {
            palisade_store::StoreError::Conflict(_) => {
                let mut p = Problem::new(StatusCode::CONFLICT, "name: a key with this name exists");
                p.field = Some("name".into());
                p
            }
            other => Problem::from(other),
        })?;
    audit(
        &state,
        Some(principal.actor()),
        "apikey.create",
        Some(record.name.clone()),
        true,
        &ip,
        None,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedApiKey {
            key,
            record: record.into(),
        }),
    ))
}

/// Revokes a key.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = i64, Path, description = "Key id")), responses(
    (status = 204, description = "Revoked"),
    (status = 404, description = "No such live key", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = crate::params::path_id(&raw)?;
    if !state.store.revoke_api_key(id, Timestamp::now()).await? {
        return Err(Problem::not_found(format!("no live key with id {id}")));
    }
    audit(
        &state,
        Some(principal.actor()),
        "apikey.revoke",
        Some(format!("id {id}")),
        true,
        &ip,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
