//! The one gate every request passes: rate limit, authenticate, authorise.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use palisade_auth::tokens;
use palisade_core::Timestamp;
use palisade_core::metrics::registry;

use super::Principal;
use super::policy::{self, Access};
use crate::AppState;
use crate::problem::Problem;

/// The caller's address as the server saw it (no proxy headers are trusted here).
pub fn client_ip(req_ext: &axum::http::Extensions) -> String {
    req_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// The caller's address, for audit entries and rate limits ("unknown" when the server
/// runs without connection info, as in some tests).
pub struct ClientIp(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions)))
    }
}

/// The credential a request presents: `Authorization: Bearer X` or `X-Api-Key: X`.
///
/// `X-Api-Key` wins: a proxy asking `/api/v1/check` forwards the original request's
/// own `Authorization` header, which belongs to the protected application.
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(key);
    }
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = v.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn unauthorized(detail: &str) -> Response {
    count("unauthenticated");
    let mut resp = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"palisade\""),
    );
    resp
}

fn rate_limited(retry_after: u64) -> Response {
    count("rate_limited");
    let mut p = Problem::unavailable(
        format!("rate limit reached; retry in {retry_after} s"),
        retry_after,
    );
    p.status = StatusCode::TOO_MANY_REQUESTS.as_u16();
    p.title = "Too Many Requests".into();
    p.into_response()
}

fn count(outcome: &'static str) {
    registry()
        .counter(
            "palisade_auth_decisions_total",
            "Authentication and authorisation outcomes.",
            &["outcome"],
            &[outcome],
        )
        .inc();
}

/// Why a credential was not accepted (kept vague towards the client on purpose).
pub enum AuthFailure {
    /// Not a valid credential.
    Invalid,
    /// The store could not be asked.
    Unavailable(palisade_store::StoreError),
}

/// Resolves a credential to a principal: an API key (`pal_…`, looked up by prefix and
/// compared by hash in constant time) or an access token (verified, then the user is
/// re-read so that a disabled or deleted user loses access at once).
pub async fn authenticate(state: &AppState, presented: &str) -> Result<Principal, AuthFailure> {
    if let Some(prefix) = tokens::api_key_prefix(presented) {
        let key = state
            .store
            .api_key_by_prefix(prefix)
            .await
            .map_err(AuthFailure::Unavailable)?
            .ok_or(AuthFailure::Invalid)?;
        if key.revoked_at.is_some() || !tokens::ct_eq(&tokens::sha256_hex(presented), &key.key_hash)
        {
            return Err(AuthFailure::Invalid);
        }
        let now = Timestamp::now();
        let stale = key
            .last_used_at
            .is_none_or(|t| now.as_micros() - t.as_micros() > 60_000_000);
        if stale {
            let _ = state.store.touch_api_key(key.id, now).await;
        }
        return Ok(Principal::ApiKey {
            id: key.id,
            name: key.name,
            scopes: key.scopes,
        });
    }
    let claims = state
        .auth
        .jwt
        .verify(presented)
        .map_err(|_| AuthFailure::Invalid)?;
    let user = match state.store.user_by_id(claims.uid).await {
        Ok(user) => user.ok_or(AuthFailure::Invalid)?,
        // The database is down: a verified, short-lived token is still good evidence,
        // so operators keep health and degraded reads instead of being locked out.
        Err(e) if e.is_transient() => {
            return Ok(Principal::User {
                id: claims.uid,
                username: claims.sub,
                role: claims.role,
            });
        }
        Err(e) => return Err(AuthFailure::Unavailable(e)),
    };
    // Logout, a refresh-token replay, a password change or disabling revoke the
    // user's access tokens issued before that moment.
    let revoked = user
        .tokens_valid_after
        .is_some_and(|after| claims.issued_at_micros() < after.as_micros());
    if user.disabled || user.username != claims.sub || revoked {
        return Err(AuthFailure::Invalid);
    }
    Ok(Principal::User {
        id: user.id,
        username: user.username,
        role: user.role,
    })
}

/// Rate limit, authenticate and authorise. Unrouted requests pass through to the 404
/// fallback; a routed request whose route has no declared access is refused (a
/// programming error, logged).
///
/// Rate limits are keyed by what is known for sure: the address for requests without a
/// credential and for every open route (whatever headers they carry), the address again
/// for credentials that fail (in a separate bucket, checked before the lookup), and the
/// verified user or key otherwise. A random credential header therefore never buys a
/// fresh bucket.
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(route) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let Some(access) = policy::access(&method, &route) else {
        tracing::error!(message = "Route has no declared access; refusing.", %method, %route);
        count("undeclared");
        return Problem::new(StatusCode::FORBIDDEN, "this route has no access policy")
            .into_response();
    };

    let class = policy::rate_class(&method, &route);
    let ip = client_ip(req.extensions());
    let open =
        access == Access::Open || (access == Access::Metrics && state.auth.config.metrics_public);
    // CrowdSec bouncers expect the Local API's own refusal: 403 for any bad key.
    let bouncer = access == Access::Bouncer;
    // A credential names a bucket only once it is verified; open routes verify none, so
    // any header there (or none) is the caller's address.
    let presented = if open {
        None
    } else {
        credential(req.headers()).map(str::to_owned)
    };
    let Some(presented) = presented else {
        if let Err(retry_after) = state.auth.rate_check(class, &format!("ip:{ip}")) {
            return rate_limited(retry_after);
        }
        if open {
            return next.run(req).await;
        }
        if bouncer {
            count("unauthenticated");
            return crate::routes::lapi::forbidden();
        }
        return unauthorized(
            "credentials required: send Authorization: Bearer <token> or X-Api-Key",
        );
    };
    // Credentials that fail are charged to the address, in a bucket of their own; once
    // it is empty, presented credentials are refused before any lookup.
    let failures = format!("bad:{ip}");
    if let Err(retry_after) = state.auth.rate_peek(class, &failures) {
        return rate_limited(retry_after);
    }
    let principal = match authenticate(&state, &presented).await {
        Ok(p) => p,
        Err(AuthFailure::Invalid) => {
            if let Err(retry_after) = state.auth.rate_check(class, &failures) {
                return rate_limited(retry_after);
            }
            if bouncer {
                count("unauthenticated");
                return crate::routes::lapi::forbidden();
            }
            return unauthorized("invalid or expired credentials");
        }
        Err(AuthFailure::Unavailable(e)) => return Problem::from(e).into_response(),
    };
    let verified = match &principal {
        Principal::User { id, .. } => format!("u:{id}"),
        Principal::ApiKey { id, .. } => format!("k:{id}"),
    };
    if let Err(retry_after) = state.auth.rate_check(class, &verified) {
        return rate_limited(retry_after);
    }
    if !principal.allows(access) && bouncer {
        count("forbidden");
        return crate::routes::lapi::forbidden();
    }
    if !principal.allows(access) {
        count("forbidden");
        return Problem::new(
            StatusCode::FORBIDDEN,
            "your role or key scope does not allow this",
        )
        .into_response();
    }
    count("allowed");
    req.extensions_mut().insert(principal);
    next.run(req).await
}
