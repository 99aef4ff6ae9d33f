//! The role matrix: every route declares here who may call it. The authorisation
//! middleware refuses any route that is missing (and a test walks every routed
//! operation), so a route cannot be added without deciding its access.

use axum::http::Method;
use palisade_core::security::{Role, Scope};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: liveness, readiness, login, refresh, the API document.
    Open,
    /// A user with at least this role, or an API key with the `read` scope when the
    /// role is `Viewer`.
    User(Role),
    /// An API key with this scope, or a user with at least `min_role`.
    Key {
        /// The scope a key needs.
        scope: Scope,
        /// The role a user needs instead.
        min_role: Role,
    },
    /// `/metrics`: open or viewer-protected by configuration.
    Metrics,
    /// The CrowdSec Local API for bouncers: an API key with the `bouncer` scope only;
    /// every refusal is answered as CrowdSec answers it (403 `{"message": …}`).
    Bouncer,
}

use Access::{Bouncer, Key, Metrics, Open, User};
use Role::{Admin, Analyst, Viewer};

/// `(method, route as written in the router, access)`.
pub const POLICY: &[(&str, &str, Access)] = &[
    ("GET", "/livez", Open),
    ("GET", "/readyz", Open),
    ("GET", "/", Open),
    ("GET", "/ui/{file}", Open),
    ("GET", "/ui/pages/{file}", Open),
    ("GET", "/docs", Open),
    ("GET", "/docs/app.js", Open),
    ("GET", "/api/v1/openapi.json", Open),
    ("POST", "/api/v1/auth/login", Open),
    ("POST", "/api/v1/auth/refresh", Open),
    ("GET", "/metrics", Metrics),
    ("POST", "/api/v1/auth/logout", User(Viewer)),
    ("GET", "/api/v1/auth/me", User(Viewer)),
    ("POST", "/api/v1/auth/password", User(Viewer)),
    ("POST", "/api/v1/auth/ws-ticket", User(Viewer)),
    // The single-use ticket, redeemed by the handler, is the credential.
    ("GET", "/api/v1/ws", Open),
    ("GET", "/api/v1/health", User(Viewer)),
    ("GET", "/api/v1/health/detailed", User(Viewer)),
    ("GET", "/api/v1/events", User(Viewer)),
    ("GET", "/api/v1/events/{id}", User(Viewer)),
    ("GET", "/api/v1/dead-letters", User(Viewer)),
    ("GET", "/api/v1/sources", User(Viewer)),
    ("POST", "/api/v1/sources/{name}/pause", User(Admin)),
    ("POST", "/api/v1/sources/{name}/resume", User(Admin)),
    (
        "POST",
        "/api/v1/ingest",
        Key {
            scope: Scope::Ingest,
            min_role: Analyst,
        },
    ),
    ("GET", "/api/v1/users", User(Admin)),
    ("POST", "/api/v1/users", User(Admin)),
    ("PATCH", "/api/v1/users/{id}", User(Admin)),
    ("DELETE", "/api/v1/users/{id}", User(Admin)),
    ("GET", "/api/v1/api-keys", User(Admin)),
    ("POST", "/api/v1/api-keys", User(Admin)),
    ("DELETE", "/api/v1/api-keys/{id}", User(Admin)),
    ("GET", "/api/v1/secrets", User(Admin)),
    ("PUT", "/api/v1/secrets/{name}", User(Admin)),
    ("DELETE", "/api/v1/secrets/{name}", User(Admin)),
    ("GET", "/api/v1/audit", User(Admin)),
    (
        "POST",
        "/api/v1/check/request",
        Key {
            scope: Scope::Check,
            min_role: Analyst,
        },
    ),
    ("GET", "/api/v1/threats", User(Viewer)),
    ("GET", "/api/v1/threats/stats", User(Viewer)),
    ("GET", "/api/v1/threats/{id}", User(Viewer)),
    ("GET", "/api/v1/detection/config", User(Viewer)),
    ("PUT", "/api/v1/detection/config", User(Admin)),
    ("GET", "/api/v1/detection/rules", User(Viewer)),
    ("GET", "/api/v1/scenarios", User(Viewer)),
    ("POST", "/api/v1/detection/rules/reload", User(Admin)),
    ("GET", "/api/v1/models", User(Viewer)),
    ("POST", "/api/v1/models/reload", User(Admin)),
    ("GET", "/api/v1/decisions", User(Viewer)),
    ("POST", "/api/v1/decisions", User(Analyst)),
    ("GET", "/api/v1/decisions/{id}", User(Viewer)),
    ("DELETE", "/api/v1/decisions/{id}", User(Analyst)),
    ("GET", "/api/v1/jobs", User(Viewer)),
    ("POST", "/api/v1/jobs", User(Analyst)),
    ("GET", "/api/v1/jobs/kinds", User(Viewer)),
    ("DELETE", "/api/v1/jobs/logs", User(Admin)),
    ("GET", "/api/v1/jobs/schedules", User(Viewer)),
    ("POST", "/api/v1/jobs/schedules", User(Admin)),
    ("GET", "/api/v1/jobs/schedules/{id}", User(Viewer)),
    ("PUT", "/api/v1/jobs/schedules/{id}", User(Admin)),
    ("DELETE", "/api/v1/jobs/schedules/{id}", User(Admin)),
    ("GET", "/api/v1/jobs/{id}", User(Viewer)),
    ("POST", "/api/v1/jobs/{id}/cancel", User(Analyst)),
    ("POST", "/api/v1/jobs/{id}/retry", User(Analyst)),
    ("GET", "/api/v1/jobs/{id}/logs", User(Viewer)),
    ("DELETE", "/api/v1/jobs/{id}/logs", User(Admin)),
    ("GET", "/api/v1/jobs/{id}/output", User(Viewer)),
    ("GET", "/api/v1/assets", User(Viewer)),
    ("GET", "/api/v1/assets/{name}", User(Viewer)),
    (
        "POST",
        "/api/v1/assets/{name}/inventory",
        Key {
            scope: Scope::Ingest,
            min_role: Analyst,
        },
    ),
    ("GET", "/api/v1/vulnerabilities", User(Viewer)),
    ("GET", "/api/v1/vulnerabilities/{id}", User(Viewer)),
    ("PATCH", "/api/v1/vulnerabilities/{id}", User(Analyst)),
    ("GET", "/api/v1/cves/{id}", User(Viewer)),
    ("GET", "/api/v1/reports", User(Viewer)),
    ("POST", "/api/v1/reports", User(Analyst)),
    ("GET", "/api/v1/reports/{id}", User(Viewer)),
    ("GET", "/v1/decisions/stream", Bouncer),
    ("GET", "/v1/decisions", Bouncer),
    ("GET", "/api/v1/metrics/realtime", User(Viewer)),
    ("GET", "/api/v1/analytics/timeseries", User(Viewer)),
    ("GET", "/api/v1/analytics/overview", User(Viewer)),
    ("GET", "/api/v1/analytics/trends", User(Viewer)),
    ("GET", "/api/v1/analytics/top", User(Viewer)),
    // Posture names weak spots (stale admins, open key files): analysts and admins.
    ("GET", "/api/v1/posture", User(Analyst)),
    ("POST", "/api/v1/posture/run", User(Analyst)),
    ("POST", "/api/v1/posture/checks/{id}/run", User(Analyst)),
    // Alerts: analysts read and act on them; admins manage rules and channels (channel
    // URLs and secrets are credentials); the activity feed is for analysts.
    ("GET", "/api/v1/alerts", User(Analyst)),
    ("GET", "/api/v1/alerts/{id}", User(Analyst)),
    ("POST", "/api/v1/alerts/{id}/acknowledge", User(Analyst)),
    ("POST", "/api/v1/alerts/{id}/resolve", User(Analyst)),
    ("POST", "/api/v1/alerts/{id}/dismiss", User(Analyst)),
    ("GET", "/api/v1/alert-rules", User(Analyst)),
    ("GET", "/api/v1/alert-rules/{id}", User(Analyst)),
    ("POST", "/api/v1/alert-rules", User(Admin)),
    ("PUT", "/api/v1/alert-rules/{id}", User(Admin)),
    ("DELETE", "/api/v1/alert-rules/{id}", User(Admin)),
    ("GET", "/api/v1/channels", User(Admin)),
    ("GET", "/api/v1/channels/{id}", User(Admin)),
    ("POST", "/api/v1/channels", User(Admin)),
    ("PUT", "/api/v1/channels/{id}", User(Admin)),
    ("DELETE", "/api/v1/channels/{id}", User(Admin)),
    ("POST", "/api/v1/channels/{id}/test", User(Admin)),
    ("GET", "/api/v1/activities", User(Analyst)),
    ("GET", "/api/v1/flows", User(Viewer)),
    ("GET", "/api/v1/flows/{id}", User(Viewer)),
    ("GET", "/api/v1/flows/analytics", User(Viewer)),
    ("GET", "/api/v1/devices", User(Viewer)),
    ("GET", "/api/v1/devices/{id}", User(Viewer)),
];

/// Methods a proxy may forward to the decision endpoint (Envoy keeps the original).
const CHECK_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The declared access of a route, `None` when it was never declared.
pub fn access(method: &Method, route: &str) -> Option<Access> {
    if matches!(route, "/api/v1/check" | "/api/v1/check/{*path}")
        && CHECK_METHODS.contains(&method.as_str())
    {
        return Some(Key {
            scope: Scope::Check,
            min_role: Analyst,
        });
    }
    // HEAD is answered by the GET handler (without the body): same access.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    POLICY
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|(_, _, a)| *a)
}

/// Which rate-limit bucket class a route falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// Login, refresh and password change: strict, against password guessing.
    Login,
    /// Ingest and check: generous, sensors and proxies are chatty.
    Ingest,
    /// Reads: moderate.
    Read,
    /// Changes: moderate.
    Write,
    /// Liveness and readiness: never limited (orchestrators poll them).
    Exempt,
}

/// The rate class of a route.
pub fn rate_class(method: &Method, route: &str) -> RateClass {
    match route {
        // The dashboard's embedded files cost nothing to serve; a page load asks for
        // a dozen at once.
        "/livez" | "/readyz" | "/" | "/ui/{file}" | "/ui/pages/{file}" => RateClass::Exempt,
        "/api/v1/auth/login" | "/api/v1/auth/refresh" | "/api/v1/auth/password" => RateClass::Login,
        "/api/v1/ingest"
        | "/api/v1/check"
        | "/api/v1/check/{*path}"
        | "/api/v1/check/request"
        | "/v1/decisions/stream"
        | "/v1/decisions" => RateClass::Ingest,
        _ if *method == Method::GET => RateClass::Read,
        _ => RateClass::Write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_declared_once() {
        for (i, (m, r, _)) in POLICY.iter().enumerate() {
            assert!(
                !POLICY
                    .iter()
                    .skip(i + 1)
                    .any(|(m2, r2, _)| m2 == m && r2 == r),
                "{m} {r} declared twice"
            );
        }
        assert_eq!(access(&Method::GET, "/livez"), Some(Open));
        assert_eq!(access(&Method::HEAD, "/v1/decisions/stream"), Some(Bouncer));
        assert_eq!(access(&Method::GET, "/nope"), None);
    }
}
