//! Login, token refresh with rotation and reuse detection, logout, password change,
//! and WebSocket tickets.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use palisade_auth::hash_pool::PoolError;
use palisade_auth::{password, tokens};
use palisade_core::Timestamp;
use palisade_core::security::{NewAudit, RefreshToken, Role, User};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Principal;
use crate::auth::attempts;
use crate::auth::middleware::ClientIp;
use crate::json::{self, ApiJson};
use crate::problem::Problem;

/// Credentials for a login.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A refresh token to exchange or revoke.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// Optional body of a logout.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// Revoke this session only; without it, every session of the user is revoked.
    pub refresh_token: Option<String>,
}

/// A password change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new password (12 to 128 characters).
    pub new_password: String,
}

/// Tokens issued by a login or refresh.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Single-use token for `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Always `Bearer`.
    pub token_type: &'static str,
}

/// The caller.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    /// User id, absent for API keys.
    pub id: Option<i64>,
    /// Username or key name.
    pub name: String,
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// The user's role.
    pub role: Option<Role>,
    /// The key's scopes.
    pub scopes: Vec<palisade_core::security::Scope>,
}

/// A WebSocket ticket.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ticket {
    /// Pass as `?ticket=` when opening the WebSocket; valid once, for `expires_in` s.
    pub ticket: String,
    /// Seconds of validity.
    pub expires_in: u64,
}

/// Hashes a new password on the bounded hashing pool (503 when it is full).
pub async fn hash_password(state: &AppState, plain: String) -> Result<String, Problem> {
    match state.auth.hashing.hash(plain).await {
        Ok(phc) => Ok(phc),
        Err(PoolError::Busy) => Err(attempts::busy()),
        Err(e @ PoolError::Failed(_)) => Err(Problem::internal(&e)),
    }
}

/// Records an audit entry; a failure to record is logged and counted, never hidden.
pub async fn audit(
    state: &AppState,
    actor: Option<String>,
    action: &str,
    target: Option<String>,
    ok: bool,
    ip: &str,
    detail: Option<String>,
) {
    let entry = NewAudit {
        actor,
        action: action.to_owned(),
        target,
        outcome: if ok { "success" } else { "failure" }.to_owned(),
        client_ip: Some(ip.to_owned()),
        detail,
    };
    if let Err(error) = state.store.append_audit(entry).await {
        palisade_core::metrics::registry()
            .counter(
                "palisade_audit_write_failures_total",
                "Audit entries that could not be stored.",
                &[],
                &[],
            )
            .inc();
        tracing::error!(message = "Audit entry not stored.", action, %error);
    }
}

async fn issue_tokens(
    state: &AppState,
    user: &User,
    family: Option<String>,
) -> Result<TokenResponse, Problem> {
    let ttl = state.auth.config.access_ttl_secs();
    let (access_token, _) = state
        .auth
        .jwt
        .issue(&user.username, user.id, user.role, ttl)
        .map_err(|e| Problem::internal(&e))?;
    let refresh_token = tokens::random_token().map_err(|e| Problem::internal(&e))?;
    let new_family = match family {
        Some(f) => f,
        None => tokens::sha256_hex(&tokens::random_token().map_err(|e| Problem::internal(&e))?),
    };
    let now = Timestamp::now();
    let record = RefreshToken {
        token_hash: tokens::sha256_hex(&refresh_token),
        family: new_family,
        user_id: user.id,
        issued_at: now,
        expires_at: now.add_micros(
            state
                .auth
                .config
                .refresh_ttl_secs()
                .saturating_mul(1_000_000),
        ),
        used_at: None,
        revoked_at: None,
    };
    state.store.insert_refresh_token(&record).await?;
    Ok(TokenResponse {
        access_token,
        refresh_token,
        expires_in: ttl,
        token_type: "Bearer",
    })
}

fn bad_login() -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "invalid username or password")
}

/// Exchanges a username and password for tokens. Failures are counted per username and
/// address (and account-wide): after 5 the address is locked for a growing time, after 20
/// from anywhere the account is locked for addresses it never logged in from. Unknown
/// usernames are counted and answered exactly like existing ones.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "Logged in", body = TokenResponse),
    (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Wrong username or password", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Locked or rate limited; see Retry-After", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "Too many password checks at once, or the first admin is not created yet; see Retry-After", body = Problem, content_type = "application/problem+json"),
))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<axum::Json<TokenResponse>, Problem> {
    if body.username.is_empty() || body.username.len() > 64 {
        return Err(Problem::invalid("username", "must be 1 to 64 characters"));
    }
    if body.password.is_empty() || body.password.len() > 1024 {
        return Err(Problem::invalid("password", "must be 1 to 1024 characters"));
    }
    if !state.auth.first_admin_exists(&state.store).await? {
        return Err(Problem::unavailable(
            "the first admin is still being created; retry in a moment",
            1,
        ));
    }
    let user = state.store.user_by_name(&body.username).await?;
    let attempt = match attempts::begin(&state, &body.username, user.as_ref(), &ip).await {
        Ok(attempt) => attempt,
        Err(refused) => {
            if refused.status == StatusCode::TOO_MANY_REQUESTS.as_u16() {
                let why = Some(format!("refused: {}", refused.detail));
                audit(&state, Some(body.username), "login", None, false, &ip, why).await;
            }
            return Err(refused);
        }
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = attempt.check(body.password, stored).await?;
    let user = match user {
        Some(user) if ok => user,
        user => {
            attempt.failed().await?;
            let why = if user.is_some() {
                "wrong password"
            } else {
                "unknown user"
            };
            audit(
                &state,
                Some(body.username),
                "login",
                None,
                false,
                &ip,
                Some(why.into()),
            )
            .await;
            return Err(bad_login());
        }
    };
    if user.disabled {
        // The right password: not a guess to count, but no login either.
        let why = Some("disabled user".into());
        audit(&state, Some(user.username), "login", None, false, &ip, why).await;
        return Err(bad_login());
    }
    attempt.succeeded(user.id).await?;
    let tokens = issue_tokens(&state, &user, None).await?;
    // For the stale-credentials posture check; a failure only loses this mark.
    if let Err(error) = state.store.record_login(user.id, Timestamp::now()).await {
        tracing::warn!(message = "Cannot record the login time.", user = %user.username, %error);
    }
    audit(
        &state,
        Some(user.username.clone()),
        "login",
        None,
        true,
        &ip,
        None,
    )
    .await;
    Ok(axum::Json(tokens))
}

/// Exchanges a refresh token for new tokens. Each refresh token works once; presenting
/// a spent one revokes its whole family (the token was stolen or replayed).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "New tokens", body = TokenResponse),
    (status = 401, description = "Invalid, expired, revoked or reused token", body = Problem, content_type = "application/problem+json"),
))]
pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<axum::Json<TokenResponse>, Problem> {
    let invalid = || Problem::new(StatusCode::UNAUTHORIZED, "invalid or expired refresh token");
    if body.refresh_token.is_empty() || body.refresh_token.len() > 512 {
        return Err(invalid());
    }
    let hash = tokens::sha256_hex(&body.refresh_token);
    let now = Timestamp::now();
    let Some(token) = state.store.refresh_token(&hash).await? else {
        return Err(invalid());
    };
    if token.revoked_at.is_some() || token.expires_at <= now {
        return Err(invalid());
    }
    if token.used_at.is_some() || !state.store.use_refresh_token(&hash, now).await? {
        let revoked = state
            .store
            .revoke_refresh_family(&token.family, now)
            .await?;
        // The access tokens issued to the family die with it (the thief's included).
        state.store.revoke_access_tokens(token.user_id, now).await?;
        audit(
            &state,
            None,
            "refresh.reuse",
            Some(format!("user:{}", token.user_id)),
            false,
            &ip,
            Some(format!("family revoked ({revoked} live tokens)")),
        )
        .await;
        return Err(invalid());
    }
    let user = state
        .store
        .user_by_id(token.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(invalid)?;
    Ok(axum::Json(
        issue_tokens(&state, &user, Some(token.family)).await?,
    ))
}

/// Ends a session (or all of the user's sessions). The user's access tokens issued
/// until now stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body(content = LogoutRequest, description = "Optional"), responses(
    (status = 204, description = "Logged out"),
    (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    body: axum::body::Bytes,
) -> Result<StatusCode, Problem> {
    let body: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        json::parse(&body)?
    };
    let Principal::User { id, username, .. } = &principal else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let now = Timestamp::now();
    let one = body.refresh_token;
    match one {
        Some(t) => {
            if let Some(token) = state
                .store
                .refresh_token(&tokens::sha256_hex(&t))
                .await?
                .filter(|t| t.user_id == *id)
            {
                state
                    .store
                    .revoke_refresh_family(&token.family, now)
                    .await?;
            }
        }
        None => {
            state.store.revoke_user_refresh_tokens(*id, now).await?;
        }
    }
    // Access tokens are refused from now on: the one used here, and the user's others
    // (their sessions refresh into new ones if their refresh tokens still live).
    state.store.revoke_access_tokens(*id, now).await?;
    audit(
        &state,
        Some(username.clone()),
        "logout",
        None,
        true,
        &ip,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, description = "The caller", body = Me)), security(("bearer" = [])))]
pub async fn me(Extension(principal): Extension<Principal>) -> axum::Json<Me> {
    axum::Json(match principal {
        Principal::User { id, username, role } => Me {
            id: Some(id),
            name: username,
            kind: "user",
            role: Some(role),
            scopes: Vec::new(),
        },
        Principal::ApiKey { name, scopes, .. } => Me {
            id: None,
            name,
            kind: "api_key",
            role: None,
            scopes,
        },
    })
}

/// Changes the caller's password and ends all of their sessions. Wrong current
/// passwords count like failed logins, with the same lockout.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange, responses(
    (status = 204, description = "Changed"),
    (status = 400, description = "Weak new password", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Wrong current password", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Locked after wrong passwords, or rate limited; see Retry-After", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "Too many password checks at once; see Retry-After", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, Problem> {
    let Principal::User { id, .. } = principal else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "API keys have no password",
        ));
    };
    let mut user = state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| Problem::not_found("no such user"))?;
    let attempt = match attempts::begin(&state, &user.username, Some(&user), &ip).await {
        Ok(attempt) => attempt,
        Err(refused) => {
            if refused.status == StatusCode::TOO_MANY_REQUESTS.as_u16() {
                let why = Some(format!("refused: {}", refused.detail));
                let actor = Some(user.username.clone());
                audit(&state, actor, "password.change", None, false, &ip, why).await;
            }
            return Err(refused);
        }
    };
    let ok = body.current_password.len() <= 1024
        && attempt
            .check(body.current_password, Some(user.password_hash.clone()))
            .await?;
    if !ok {
        attempt.failed().await?;
        audit(
            &state,
            Some(user.username.clone()),
            "password.change",
            None,
            false,
            &ip,
            Some("wrong current password".into()),
        )
        .await;
        let mut p = Problem::new(StatusCode::FORBIDDEN, "current_password: wrong password");
        p.field = Some("current_password".into());
        return Err(p);
    }
    attempt.succeeded(user.id).await?;
    password::check_strength(&body.new_password, &user.username)
        .map_err(|r| Problem::invalid("new_password", r))?;
    user.password_hash = hash_password(&state, body.new_password).await?;
    state.store.update_user(&user).await?;
    let now = Timestamp::now();
    state.store.revoke_user_refresh_tokens(user.id, now).await?;
    state.store.revoke_access_tokens(user.id, now).await?;
    audit(
        &state,
        Some(user.username.clone()),
        "password.change",
        Some(user.username),
        true,
        &ip,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A single-use ticket for opening the live WebSocket.
#[utoipa::path(post, path = "/api/v1/auth/ws-ticket", tag = "auth", responses((status = 200, description = "A ticket", body = Ticket)), security(("bearer" = [])))]
pub async fn ws_ticket(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<axum::Json<Ticket>, Problem> {
    let ticket = state
        .auth
        .tickets
        .issue(principal)
        .map_err(|e| Problem::internal(&e))?;
    Ok(axum::Json(Ticket {
        ticket,
        expires_in: crate::auth::tickets::TICKET_TTL.as_secs(),
    }))
}
