//! Notification channels CRUD (`/api/v1/channels`, admins only) and
//! `POST /api/v1/channels/{id}/test`. A webhook's signing secret (`whsec_<base64>`) is
//! given by the admin or generated, shown once in the answer, and kept sealed in the
//! secrets store (`alert_channel.<id>`) with the running keyring. A Slack URL (a
//! credential: whoever holds it posts to the channel) and an SMTP password are sealed
//! the same way and never shown back; a Slack channel stored with its URL in plain
//! (before sealing) is still delivered to, shows only its host, and is sealed when it
//! is next saved.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_alerts::channel::webhook::{generate_secret, secret_key};
use palisade_alerts::{ChannelSpec, Message, Notification};
use palisade_core::Timestamp;
use palisade_core::security::SecretRecord;
use palisade_store::{SpecInput, SpecRecord, SpecTable};
use serde::{Deserialize, Serialize};

use super::alert_rules::conflict;
use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::problem::Problem;

/// A channel as shown (never its secret, except once when it is set).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    /// Its id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Whether notifications go to it.
    pub enabled: bool,
    /// Where and how.
    pub spec: ChannelSpec,
    /// The webhook signing secret: only in the answer that set or generated it (an
    /// SMTP password or a Slack URL is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// The channels.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelList {
    /// Channels by name.
    pub items: Vec<ChannelView>,
}

/// A channel to create or replace.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// Unique name (1 to 100 characters).
    pub name: String,
    /// Whether notifications go to it (default true).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Where and how (`{"kind": "webhook", "url": …}`, `{"kind": "slack", "url": …}`
    /// (the URL is sealed; leave it out on a replace to keep it) or
    /// `{"kind": "email", "host": …, "from": …, "to": […], "username": …}`).
    pub spec: ChannelSpec,
    /// A webhook's `whsec_<base64>` secret (generated when a webhook has none), or an
    /// e-mail channel's SMTP password (never shown back).
    pub secret: Option<String>,
}

fn enabled() -> bool {
    true
}

/// What a test delivery did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestResult {
    /// Whether the receiver took it (2xx).
    pub delivered: bool,
    /// The receiver's HTTP status.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
    /// The message id sent.
    pub message_id: String,
}

fn view(r: SpecRecord, secret: Option<String>) -> Result<ChannelView, Problem> {
    let spec: ChannelSpec = serde_json::from_value(r.input.spec)
        .map_err(|e| Problem::internal(&format!("stored channel {} unreadable: {e}", r.id)))?;
    // Never a credential: a Slack URL stored in plain shows as its host.
    let (spec, _) = spec.sealed();
    Ok(ChannelView {
        id: r.id,
        name: r.input.name,
        enabled: r.input.enabled,
        spec,
        secret,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn checked(input: &ChannelInput) -> Result<SpecInput, Problem> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Problem::invalid("name", "must be 1 to 100 characters"));
    }
    input
        .spec
        .validate()
        .map_err(|e| Problem::invalid(&format!("spec.{}", e.field), e.message))?;
    match (&input.spec, &input.secret) {
        (ChannelSpec::Webhook { .. }, Some(s)) if secret_key(s).is_none() => {
            return Err(Problem::invalid(
                "secret",
                "must be whsec_ followed by the base64 of 16 to 64 bytes",
            ));
        }
        (spec, Some(_))
            if !matches!(spec, ChannelSpec::Webhook { .. }) && !spec.takes_password() =>
        {
            return Err(Problem::invalid(
                "secret",
                "only webhooks (signing secret) and e-mail channels with a username (SMTP password) take a secret",
            ));
        }
        (ChannelSpec::Email { .. }, Some(s)) if s.is_empty() || s.len() > 1024 => {
            return Err(Problem::invalid(
                "secret",
                "the SMTP password: 1 to 1024 bytes",
            ));
        }
        _ => {}
    }
    let (stored, _) = input.spec.sealed();
    Ok(SpecInput {
        name,
        kind: input.spec.kind().to_owned(),
        enabled: input.enabled,
        spec: serde_json::to_value(&stored).map_err(|e| Problem::internal(&e))?,
    })
}

/// The checked spec to store and the secret to seal, for a new channel (`id` none) or
/// a replaced one. A Slack channel given without `url` keeps its sealed URL (or has
/// the plain one it was stored with sealed now) and the host it showed.
async fn prepare(
    state: &AppState,
    id: Option<i64>,
    input: &ChannelInput,
) -> Result<(SpecInput, Option<String>), Problem> {
    let mut spec = checked(input)?;
    if !matches!(input.spec, ChannelSpec::Slack { url: None, .. }) {
        let secret = secret_to_set(state, id, input).await?;
        return Ok((spec, secret));
    }
    let stored = match id {
        Some(id) => state.store.get_spec(SpecTable::Channels, id).await?,
        None => None,
    };
    let stored = stored.and_then(|r| serde_json::from_value::<ChannelSpec>(r.input.spec).ok());
    let sealed = match id {
        Some(id) => state
            .store
            .secret(&ChannelSpec::secret_name(id))
            .await?
            .is_some(),
        None => false,
    };
    let (kept, secret) = match stored {
        Some(old @ ChannelSpec::Slack { url: None, .. }) if sealed => (old, None),
        Some(old @ ChannelSpec::Slack { url: Some(_), .. }) => {
            let (kept, url) = old.sealed();
            (kept, url)
        }
        _ => {
            return Err(Problem::invalid(
                "spec.url",
                "a Slack channel needs its incoming-webhook URL",
            ));
        }
    };
    spec.spec = serde_json::to_value(&kept).map_err(|e| Problem::internal(&e))?;
    Ok((spec, secret))
}

async fn store_secret(
    state: &AppState,
    id: i64,
    secret: &str,
    actor: String,
) -> Result<(), Problem> {
    let name = ChannelSpec::secret_name(id);
    let sealed = state
        .auth
        .secret_box()
        .seal(&name, secret.as_bytes())
        .map_err(|e| Problem::internal(&e))?;
    state
        .store
        .put_secret(&SecretRecord {
            name,
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            updated_at: Timestamp::now(),
            updated_by: Some(actor),
        })
        .await?;
    Ok(())
}

async fn reveal(state: &AppState, id: i64) -> Result<Option<String>, Problem> {
    let name = ChannelSpec::secret_name(id);
    let Some(r) = state.store.secret(&name).await? else {
        return Ok(None);
    };
    let plain = state
        .auth
        .secret_box()
        .open(&r.name, &r.key_id, &r.nonce, &r.ciphertext)
        .map_err(|e| Problem::internal(&e))?;
    Ok(String::from_utf8(plain).ok())
}

/// The secret to set: for a webhook the given one, or a new one when it has none; for
/// an e-mail channel with a username the given SMTP password, which a new channel must
/// have (a replaced one keeps its stored password).
async fn secret_to_set(
    state: &AppState,
    id: Option<i64>,
    input: &ChannelInput,
) -> Result<Option<String>, Problem> {
    if input.spec.takes_password() {
        if input.secret.is_some() {
            return Ok(input.secret.clone());
        }
        let stored = match id {
            Some(id) => state
                .store
                .secret(&ChannelSpec::secret_name(id))
                .await?
                .is_some(),
            None => false,
        };
        return if stored {
            Ok(None)
        } else {
            Err(Problem::invalid(
                "secret",
                "an e-mail channel with a username needs its SMTP password here",
            ))
        };
    }
    if let ChannelSpec::Slack { url, .. } = &input.spec {
        return Ok(url.clone());
    }
    if !matches!(input.spec, ChannelSpec::Webhook { .. }) {
        return Ok(None);
    }
    if let Some(s) = &input.secret {
        return Ok(Some(s.clone()));
    }
    // A webhook keeps its signing secret; a channel that was of another kind (its
    // secret a password or a Slack URL) gets a new one.
    if let Some(id) = id
        && state
            .store
            .get_spec(SpecTable::Channels, id)
            .await?
            .is_some_and(|r| r.input.kind == "webhook")
        && state
            .store
            .secret(&ChannelSpec::secret_name(id))
            .await?
            .is_some()
    {
        return Ok(None);
    }
    generate_secret()
        .map(Some)
        .map_err(|e| Problem::internal(&e))
}

/// Lists the channels.
#[utoipa::path(get, path = "/api/v1/channels", tag = "alerts", responses(
    (status = 200, description = "The channels", body = ChannelList),
), security(("bearer" = [])))]
pub async fn list_channels(State(state): State<AppState>) -> Result<Json<ChannelList>, Problem> {
    let items = state
        .store
        .list_specs(SpecTable::Channels)
        .await?
        .into_iter()
        .map(|r| view(r, None))
        .collect::<Result<_, _>>()?;
    Ok(Json(ChannelList { items }))
}

/// One channel.
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "alerts", params(("id" = i64, Path, description = "Channel id")), responses(
    (status = 200, description = "The channel", body = ChannelView),
    (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_channel(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ChannelView>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let r = state
        .store
        .get_spec(SpecTable::Channels, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no channel {id}")))?;
    view(r, None).map(Json)
}

/// Creates a channel; a webhook's secret is in the answer, this once.
#[utoipa::path(post, path = "/api/v1/channels", tag = "alerts", request_body = ChannelInput, responses(
    (status = 201, description = "Created", body = ChannelView),
    (status = 400, description = "Invalid channel", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn create_channel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(input): ApiJson<ChannelInput>,
) -> Result<(StatusCode, Json<ChannelView>), Problem> {
    let (spec, secret) = prepare(&state, None, &input).await?;
    let r = state
        .store
        .insert_spec(SpecTable::Channels, &spec)
        .await
        .map_err(conflict)?;
    if let Some(s) = &secret
        && let Err(p) = store_secret(&state, r.id, s, principal.actor()).await
    {
        // Without its secret the channel could never deliver: take it back.
        let _ = state.store.delete_spec(SpecTable::Channels, r.id).await;
        return Err(p);
    }
    audit(
        &state,
        Some(principal.actor()),
        "channel.create",
        Some(r.input.name.clone()),
        true,
        &ip,
        None,
    )
    .await;
    super::alert_rules::settings_changed(
        &state,
        &principal.actor(),
        "channel",
        "created",
        &r.input.name,
    )
    .await;
    // Only a webhook's signing secret is shown, this once (the receiver needs it).
    let shown = secret.filter(|_| matches!(input.spec, ChannelSpec::Webhook { .. }));
    Ok((StatusCode::CREATED, Json(view(r, shown)?)))
}

/// Replaces a channel (a webhook keeps its secret unless a new one is given).
#[utoipa::path(put, path = "/api/v1/channels/{id}", tag = "alerts", params(("id" = i64, Path, description = "Channel id")), request_body = ChannelInput, responses(
    (status = 200, description = "Replaced", body = ChannelView),
    (status = 400, description = "Invalid channel", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn update_channel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    ApiJson(input): ApiJson<ChannelInput>,
) -> Result<Json<ChannelView>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let (spec, secret) = prepare(&state, Some(id), &input).await?;
    let r = state
        .store
        .update_spec(SpecTable::Channels, id, &spec)
        .await
        .map_err(conflict)?
        .ok_or_else(|| Problem::not_found(format!("no channel {id}")))?;
    if let Some(s) = &secret {
        store_secret(&state, id, s, principal.actor()).await?;
    }
    audit(
        &state,
        Some(principal.actor()),
        "channel.update",
        Some(r.input.name.clone()),
        true,
        &ip,
        None,
    )
    .await;
    super::alert_rules::settings_changed(
        &state,
        &principal.actor(),
        "channel",
        "changed",
        &r.input.name,
    )
    .await;
    // Only a webhook's signing secret is shown, this once (the receiver needs it).
    let shown = secret.filter(|_| matches!(input.spec, ChannelSpec::Webhook { .. }));
    Ok(Json(view(r, shown)?))
}

/// Deletes a channel and its secret (its queued notifications are given up).
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "alerts", params(("id" = i64, Path, description = "Channel id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn delete_channel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = crate::params::path_id(&raw)?;
    if !state.store.delete_spec(SpecTable::Channels, id).await? {
        return Err(Problem::not_found(format!("no channel {id}")));
    }
    state
        .store
        .delete_secret(&ChannelSpec::secret_name(id))
        .await?;
    audit(
        &state,
        Some(principal.actor()),
        "channel.delete",
        Some(id.to_string()),
        true,
        &ip,
        None,
    )
    .await;
    super::alert_rules::settings_changed(
        &state,
        &principal.actor(),
        "channel",
        "deleted",
        &id.to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test notification now and says what the receiver answered.
#[utoipa::path(post, path = "/api/v1/channels/{id}/test", tag = "alerts", params(("id" = i64, Path, description = "Channel id")), responses(
    (status = 200, description = "What the receiver answered", body = TestResult),
    (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn test_channel(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<TestResult>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let r = state
        .store
        .get_spec(SpecTable::Channels, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no channel {id}")))?;
    let spec: ChannelSpec = serde_json::from_value(r.input.spec)
        .map_err(|e| Problem::internal(&format!("stored channel {id} unreadable: {e}")))?;
    let secret = reveal(&state, id).await?;
    let message_id = palisade_alerts::notify::message_id().map_err(|e| Problem::internal(&e))?;
    let now = Timestamp::now();
    let payload = serde_json::to_string(&Notification::test(&r.input.name, now))
        .map_err(|e| Problem::internal(&e))?;
    let timeout = std::time::Duration::from_secs(10);
    let result = match spec.build(secret.as_deref()) {
        Ok(channel) => {
            let client = palisade_alerts::delivery::http_client(timeout);
            let message = Message {
                id: &message_id,
                timestamp: now.as_micros() / 1_000_000,
                payload: &payload,
            };
            channel.send(&client, message).await
        }
        Err(e) => Err(e),
    };
    Ok(Json(match result {
        Ok(status) => TestResult {
            delivered: true,
            status: Some(status),
            error: None,
            message_id,
        },
        Err(e) => TestResult {
            delivered: false,
            status: e.status,
            error: Some(e.message),
            message_id,
        },
    }))
}
