//! User management for admins.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_core::Timestamp;
use palisade_core::security::{NewUser, Role, User};
use serde::{Deserialize, Serialize};

use super::auth::{audit, hash_password};
use crate::AppState;
use crate::auth::Principal;
use crate::auth::attempts::account_locked_until;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::problem::Problem;

/// A user as listed (never the password hash).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// Until then, logins from addresses this user never logged in from are refused
    /// (too many failed passwords from many addresses); `palisade user unlock` lifts it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub locked_until: Option<Timestamp>,
    /// Created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl UserView {
    /// The view of a user, with its account-wide lock looked up.
    async fn of(state: &AppState, u: User) -> Result<Self, Problem> {
        Ok(UserView {
            locked_until: account_locked_until(state, &u.username).await?,
            id: u.id,
            username: u.username,
            role: u.role,
            disabled: u.disabled,
            created_at: u.created_at,
        })
    }
}

/// The users listing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserPage {
    /// Users by name.
    pub items: Vec<UserView>,
    /// Always null.
    pub next_cursor: Option<String>,
}

/// A user to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1–64 of letters, digits, `.`, `_`, `-`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub username: String,
    /// 12–128 characters.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
    /// viewer, analyst or admin.
    #[schema(pattern = "^(viewer|analyst|admin)$")]
    pub role: String,
}

/// Changes to a user; only the given fields change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New role.
    pub role: Option<String>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// New password (ends the user's sessions).
    pub password: Option<String>,
}

/// Checks a username: short, plain characters only.
pub fn valid_username(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(
            "username",
            "must be 1 to 64 letters, digits, '.', '_' or '-'",
        ))
    }
}

fn parse_role(s: &str) -> Result<Role, Problem> {
    Role::parse(s).ok_or_else(|| Problem::invalid("role", "must be viewer, analyst or admin"))
}

/// Lists users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, description = "Users", body = UserPage)), security(("bearer" = [])))]
pub async fn list_users(State(state): State<AppState>) -> Result<axum::Json<UserPage>, Problem> {
    let mut items = Vec::new();
    for user in state.store.list_users().await? {
        items.push(UserView::of(&state, user).await?);
    }
    Ok(axum::Json(UserPage {
        items,
        next_cursor: None,
    }))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, responses(
    (status = 201, description = "Created", body = UserView),
    (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, axum::Json<UserView>), Problem> {
    valid_username(&body.username)?;
    let role = parse_role(&body.role)?;
    palisade_auth::password::check_strength(&body.password, &body.username)
        .map_err(|r| Problem::invalid("password", r))?;
    let password_hash = hash_password(&state, body.password).await?;
    let user = state
        .store
        .create_user(NewUser {
            username: body.username.clone(),
            role,
            password_hash,
        })
        .await
        .map_err(|e| match e {
            palisade_store::StoreError::Conflict(_) => {
                let mut p = Problem::new(StatusCode::CONFLICT, "username: already taken");
                p.field = Some("username".into());
                p
            }
            other => Problem::from(other),
        })?;
    audit(
        &state,
        Some(principal.actor()),
        "user.create",
        Some(user.username.clone()),
        true,
        &ip,
        Some(format!("role {}", role.as_str())),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        axum::Json(UserView::of(&state, user).await?),
    ))
}

async fn would_remove_last_admin(state: &AppState, user: &User) -> Result<bool, Problem> {
    Ok(user.role == Role::Admin && !user.disabled && state.store.count_active_admins().await? <= 1)
}

fn last_admin() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "this is the last enabled admin; create another admin first",
    )
}

/// Changes a user's role, disabled flag or password. Disabling or a new password ends
/// the user's sessions and access tokens; a new password also lifts every lock.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUser, params(("id" = i64, Path, description = "User id")), responses(
    (status = 200, description = "Updated", body = UserView),
    (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Would leave no admin", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<axum::Json<UserView>, Problem> {
    let id = crate::params::path_id(&raw)?;
    let mut user = state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no user with id {id}")))?;
    let new_role = body.role.as_deref().map(parse_role).transpose()?;
    let demoting = new_role.is_some_and(|r| r != Role::Admin) || body.disabled == Some(true);
    if demoting && would_remove_last_admin(&state, &user).await? {
        return Err(last_admin());
    }
    let mut end_sessions = false;
    let mut reset_failures = false;
    let mut changes = Vec::new();
    if let Some(role) = new_role {
        user.role = role;
        changes.push(format!("role {}", role.as_str()));
    }
    if let Some(disabled) = body.disabled {
        user.disabled = disabled;
        end_sessions |= disabled;
        changes.push(format!("disabled {disabled}"));
    }
    if let Some(pw) = body.password {
        palisade_auth::password::check_strength(&pw, &user.username)
            .map_err(|r| Problem::invalid("password", r))?;
        user.password_hash = hash_password(&state, pw).await?;
        end_sessions = true;
        reset_failures = true;
        changes.push("password".into());
    }
    state.store.update_user(&user).await?;
    if end_sessions {
        let now = Timestamp::now();
        state.store.revoke_user_refresh_tokens(user.id, now).await?;
        state.store.revoke_access_tokens(user.id, now).await?;
    }
    if reset_failures {
        state
            .store
            .clear_login_failures(&user.username, None)
            .await?;
    }
    audit(
        &state,
        Some(principal.actor()),
        "user.update",
        Some(user.username.clone()),
        true,
        &ip,
        Some(changes.join(", ")),
    )
    .await;
    Ok(axum::Json(UserView::of(&state, user).await?))
}

/// Deletes a user and ends their sessions.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path, description = "User id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Would leave no admin", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = crate::params::path_id(&raw)?;
    let user = state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no user with id {id}")))?;
    if would_remove_last_admin(&state, &user).await? {
        return Err(last_admin());
    }
    state.store.delete_user(id).await?;
    audit(
        &state,
        Some(principal.actor()),
        "user.delete",
        Some(user.username),
        true,
        &ip,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
