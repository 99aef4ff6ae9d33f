//! The OpenAPI document and a browsable page for it, both served from the binary so
//! that they work offline.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// The OpenAPI 3.1 document.
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
}

/// The API browser page.
pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("../../assets/docs.html"))
}

/// The API browser's script (a separate file so the CSP can forbid inline scripts).
pub async fn docs_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/docs.js"),
    )
}
