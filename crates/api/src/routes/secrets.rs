//! Encrypted secrets (channel credentials, the NVD API key…) for admins. Values go in
//! and are never shown again: listings are masked.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_core::Timestamp;
use palisade_core::security::SecretRecord;
use serde::{Deserialize, Serialize};

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::problem::Problem;

/// A secret as listed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretView {
    /// Name.
    pub name: String,
    /// Masked value (the last two characters of long values).
    pub value: String,
    /// The id of the key that encrypted it.
    pub key_id: String,
    /// Last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Who changed it.
    pub updated_by: Option<String>,
}

/// The secrets listing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretPage {
    /// Secrets by name.
    pub items: Vec<SecretView>,
    /// Always null.
    pub next_cursor: Option<String>,
}

/// A value to store.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// The plaintext (at most 64 KiB).
    #[schema(min_length = 1, max_length = 65536)]
    pub value: String,
}

/// Checks a secret name: a plain identifier.
pub fn valid_secret_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(
            "name",
            "must be 1 to 128 letters, digits, '_', '-' or '.'",
        ))
    }
}

/// Lists secrets, masked.
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets", responses((status = 200, description = "Secrets, masked", body = SecretPage)), security(("bearer" = [])))]
pub async fn list_secrets(
    State(state): State<AppState>,
) -> Result<axum::Json<SecretPage>, Problem> {
    let boxed = state.auth.secret_box();
    let items = state
        .store
        .list_secrets()
        .await?
        .into_iter()
        .map(|s| {
            let value = boxed
                .open(&s.name, &s.key_id, &s.nonce, &s.ciphertext)
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .map_or_else(
                    || "(unreadable with the current keys)".to_owned(),
                    |v| palisade_auth::secrets::mask(&v),
                );
            SecretView {
                name: s.name,
                value,
                key_id: s.key_id,
                updated_at: s.updated_at,
                updated_by: s.updated_by,
            }
        })
        .collect();
    Ok(axum::Json(SecretPage {
        items,
        next_cursor: None,
    }))
}

/// Stores (or replaces) a secret, encrypted.
#[utoipa::path(put, path = "/api/v1/secrets/{name}", tag = "secrets", request_body = SecretValue, params(("name" = String, Path, description = "Secret name")), responses(
    (status = 204, description = "Stored"),
    (status = 400, description = "Invalid name or value", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn put_secret(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SecretValue>,
) -> Result<StatusCode, Problem> {
    valid_secret_name(&name)?;
    if body.value.is_empty() || body.value.len() > 64 * 1024 {
        return Err(Problem::invalid("value", "must be 1 byte to 64 KiB"));
    }
    let sealed = state
        .auth
        .secret_box()
        .seal(&name, body.value.as_bytes())
        .map_err(|e| Problem::internal(&e))?;
    state
        .store
        .put_secret(&SecretRecord {
            name: name.clone(),
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            updated_at: Timestamp::now(),
            updated_by: Some(principal.actor()),
        })
        .await?;
    audit(
        &state,
        Some(principal.actor()),
        "secret.set",
        Some(name),
        true,
        &ip,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a secret.
#[utoipa::path(delete, path = "/api/v1/secrets/{name}", tag = "secrets", params(("name" = String, Path, description = "Secret name")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such secret", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn delete_secret(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    valid_secret_name(&name)?;
    if !state.store.delete_secret(&name).await? {
        return Err(Problem::not_found(format!("no secret named {name}")));
    }
    audit(
        &state,
        Some(principal.actor()),
        "secret.delete",
        Some(name),
        true,
        &ip,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
