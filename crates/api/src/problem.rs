//! RFC 7807 problem details: the one shape every error response takes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer. Built by handlers and extractors; rendered as
/// `application/problem+json`. A problem about a request parameter names it in `field`
/// and in `invalid_params`, so a client can point at what to fix.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this case, in words a user can act on.
    pub detail: String,
    /// The parameter or body field at fault, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// RFC 7807's `invalid-params` extension: every field at fault with its reason.
    #[serde(rename = "invalid-params", skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<InvalidParam>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

/// One invalid parameter and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvalidParam {
    /// The parameter's name.
    pub name: String,
    /// Why it was rejected.
    pub reason: String,
}

impl Problem {
    /// A problem with a status and a detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            invalid_params: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 for a bad parameter or body field, naming it.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let mut p = Problem::new(StatusCode::BAD_REQUEST, format!("{field}: {reason}"));
        p.kind = "https://palisade.dev/problems/invalid-parameter".into();
        p.title = "Invalid parameter".into();
        p.field = Some(field.to_owned());
        p.invalid_params.push(InvalidParam {
            name: field.to_owned(),
            reason,
        });
        p
    }

    /// 404 for a resource that does not exist.
    pub fn not_found(what: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, what)
    }

    /// 503 for a dependency that is down, with a hint when to retry.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail);
        p.retry_after = Some(retry_after_secs);
        p
    }

    /// 500 for a failure that is ours; the detail stays generic (the cause is logged).
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(message = "Request failed.", error = %cause);
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "an internal error occurred; see the server log",
        )
    }
}

impl From<palisade_store::StoreError> for Problem {
    fn from(e: palisade_store::StoreError) -> Self {
        if e.is_transient() {
            Problem::unavailable(format!("the database is unavailable: {e}"), 5)
        } else {
            Problem::internal(&e)
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
