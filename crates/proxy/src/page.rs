//! The small pages the proxy answers with itself. They name the request id, so a user
//! who was blocked by mistake can quote it and an operator can find the threat, and
//! they say nothing about which rule fired.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::ProxyBody;

fn escape(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// A page for a status the proxy produced.
pub fn page(status: StatusCode, title: &str, text: &str, request_id: &str) -> Response<ProxyBody> {
    let id = escape(request_id);
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{code} {title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\
         <h1>{title}</h1><p>{text}</p><p>Request id: <code>{id}</code></p></body></html>\n",
        code = status.as_u16(),
    );
    let mut resp = Response::new(
        Full::new(Bytes::from(html))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    resp
}

/// 403: the request was judged an attack.
pub fn blocked(request_id: &str) -> Response<ProxyBody> {
    page(
        StatusCode::FORBIDDEN,
        "Request blocked",
        "This request was blocked by the site's security policy. If you think this is a \
         mistake, contact the site's operator and quote the request id below.",
        request_id,
    )
}

/// 413: the body is over the inspection limit and the policy is to refuse.
pub fn too_large(request_id: &str) -> Response<ProxyBody> {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request too large",
        "The request body is larger than this site accepts.",
        request_id,
    )
}

/// 415: the body is in a content coding that cannot be decoded for inspection.
pub fn unsupported_encoding(request_id: &str) -> Response<ProxyBody> {
    page(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported content encoding",
        "The request body is compressed in a way this site cannot accept.",
        request_id,
    )
}

/// The same page, and the client connection closed after it: for a request whose body
/// was not read (what follows on the connection cannot be trusted to be a request).
pub fn closing(mut resp: Response<ProxyBody>) -> Response<ProxyBody> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// 408: the client was too slow sending its body.
pub fn client_timeout(request_id: &str) -> Response<ProxyBody> {
    page(
        StatusCode::REQUEST_TIMEOUT,
        "Request timeout",
        "The request body did not arrive in time.",
        request_id,
    )
}

/// 400: the request could not be read or forwarded as sent.
pub fn bad_request(request_id: &str) -> Response<ProxyBody> {
    page(
        StatusCode::BAD_REQUEST,
        "Bad request",
        "The request could not be read.",
        request_id,
    )
}

/// 502: the upstream could not be reached or broke the exchange.
pub fn bad_gateway(request_id: &str) -> Response<ProxyBody> {
    page(
        StatusCode::BAD_GATEWAY,
        "Bad gateway",
        "The application behind this site could not be reached.",
        request_id,
    )
}

/// 504: the upstream did not answer in time.
pub fn gateway_timeout(request_id: &str) -> Response<ProxyBody> {
    page(
        StatusCode::GATEWAY_TIMEOUT,
        "Gateway timeout",
        "The application behind this site did not answer in time.",
        request_id,
    )
}
