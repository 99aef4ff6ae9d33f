//! Cross-cutting request handling: request ids, the per-request log line, HTTP metrics
//! and security headers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use palisade_core::metrics::registry;

/// The header carrying the request id, in and out.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, for handlers that want to mention it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub use palisade_core::request_id::new_request_id;

/// Accepts a caller's request id only when it is short and plain, so it cannot inject
/// anything into logs.
fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Assigns a request id, logs one line per request, and records the HTTP metrics.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    req.extensions_mut().insert(RequestId(id.clone()));

    let mut resp = next.run(req).await;

    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    let status_text = status.to_string();
    registry()
        .histogram(
            "palisade_http_request_duration_seconds",
            "HTTP request latency by route.",
            &["method", "route", "status"],
            &[method.as_str(), &route, &status_text],
        )
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        message = "Request served.",
        request_id = %id,
        method = %method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
    );
    resp
}

/// Headers every response carries: no sniffing, no framing by other sites, a CSP ready
/// for the built-in dashboard (same-origin everything), and no referrer leakage.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(HeaderName::from_static("content-security-policy"))
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ));
    resp
}

/// Longest request target accepted (414 beyond).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes accepted, names and values together (431 beyond).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields accepted (431 beyond).
pub const MAX_HEADERS: usize = 100;

/// Refuses oversized request targets and header sets before any work is done on them.
pub async fn request_limits(req: Request, next: Next) -> Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        let mut p = crate::problem::Problem::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        );
        p.field = Some("uri".into());
        return p.into_response();
    }
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        let mut p = crate::problem::Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "at most {MAX_HEADERS} header fields and {MAX_HEADER_BYTES} bytes of headers are accepted"
            ),
        );
        p.field = Some("headers".into());
        return p.into_response();
    }
    next.run(req).await
}

/// Turns a handler panic (a bug) into a logged 500 problem instead of a dropped
/// connection, and counts it.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    registry()
        .counter(
            "palisade_http_panics_total",
            "Handler panics caught and answered 500.",
            &[],
            &[],
        )
        .inc();
    axum::response::IntoResponse::into_response(crate::problem::Problem::internal(
        &"a request handler panicked",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_caller_ids_sanitised() {
        assert_ne!(new_request_id(), new_request_id());
        assert!(acceptable("abc-123"));
        assert!(!acceptable("a b"));
        assert!(!acceptable("x\ny"));
        assert!(!acceptable(&"a".repeat(200)));
    }
}
