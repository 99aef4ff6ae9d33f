//! The built-in dashboard: `GET /` (the page) and `GET /ui/{file}` (its modules and
//! style sheet), embedded in the binary with `include_bytes!` so that it works on a
//! machine with no internet and needs no JavaScript build step.
//!
//! The assets are hand-written ES modules and one CSS file under
//! `crates/api/assets/dashboard/`; the page carries no inline script, so the strict
//! Content-Security-Policy of `middleware::security_headers` holds. Each answer has an
//! `ETag` (a hash of the bytes, computed once) and `Cache-Control: no-cache`, so a
//! browser revalidates with a cheap 304 and never runs a stale module after an upgrade.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;

/// One embedded file: the name it is served under, its media type and its bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

/// Declares an embedded file of `assets/dashboard/`.
macro_rules! asset {
    ($name:literal, $media:expr) => {
        Asset {
            name: $name,
            media_type: $media,
            bytes: include_bytes!(concat!("../../assets/dashboard/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the dashboard. A new page is one module in `pages/` plus one line here
/// and one in `pages/index.js`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("live.js", JS),
    asset!("ui.js", JS),
    asset!("chart.js", JS),
    asset!("pages/index.js", JS),
    asset!("pages/overview.js", JS),
    asset!("pages/alerts.js", JS),
    asset!("pages/threats.js", JS),
    asset!("pages/events.js", JS),
    asset!("pages/decisions.js", JS),
    asset!("pages/jobs.js", JS),
    asset!("pages/vulnerabilities.js", JS),
    asset!("pages/posture.js", JS),
    asset!("pages/health.js", JS),
    asset!("pages/settings.js", JS),
    asset!("alerting.js", JS),
    asset!("access.js", JS),
    asset!("pages/ip.js", JS),
    asset!("pages/flows.js", JS),
];

/// FNV-1a over the bytes: a stable validator, not a security measure.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The entity tags, computed on first use (one per asset, same order as `ASSETS`).
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:016x}\"", fnv1a(a.bytes)))
            .collect()
    })
}

/// Total size of the embedded dashboard in bytes (what a first visit downloads).
pub fn total_bytes() -> usize {
    ASSETS.iter().map(|a| a.bytes.len()).sum()
}

/// Answers one asset, or 304 when the browser's copy is current.
fn serve(name: &str, request: &HeaderMap) -> Option<Response> {
    let (i, asset) = ASSETS.iter().enumerate().find(|(_, a)| a.name == name)?;
    let tag = etags().get(i)?;
    let current = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if current {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.media_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    Some(resp)
}

/// The dashboard's page (the application shell; every view is drawn by its modules from
/// the API's data).
#[utoipa::path(get, path = "/", tag = "dashboard", responses(
    (status = 200, description = "The dashboard page", content_type = "text/html"),
    (status = 304, description = "The browser's copy is current"),
))]
pub async fn index(request: HeaderMap) -> Response {
    serve("index.html", &request)
        .unwrap_or_else(|| Problem::not_found("no dashboard").into_response())
}

/// One of the dashboard's modules or its style sheet.
#[utoipa::path(get, path = "/ui/{file}", tag = "dashboard", params(("file" = String, Path, description = "Asset name, e.g. app.js")), responses(
    (status = 200, description = "The asset"),
    (status = 304, description = "The browser's copy is current"),
    (status = 404, description = "No such asset", body = Problem, content_type = "application/problem+json"),
))]
pub async fn asset(Path(file): Path<String>, request: HeaderMap) -> Response {
    serve(&file, &request)
        .unwrap_or_else(|| Problem::not_found(format!("no dashboard file {file}")).into_response())
}

/// One of the dashboard's page modules (one file per page, under `pages/`).
#[utoipa::path(get, path = "/ui/pages/{file}", tag = "dashboard", params(("file" = String, Path, description = "Page module, e.g. overview.js")), responses(
    (status = 200, description = "The module"),
    (status = 304, description = "The browser's copy is current"),
    (status = 404, description = "No such page", body = Problem, content_type = "application/problem+json"),
))]
pub async fn page_module(Path(file): Path<String>, request: HeaderMap) -> Response {
    serve(&format!("pages/{file}"), &request)
        .unwrap_or_else(|| Problem::not_found(format!("no dashboard page {file}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str) -> &'static str {
        let a = ASSETS.iter().find(|a| a.name == name).expect("asset");
        std::str::from_utf8(a.bytes).expect("utf-8")
    }

    /// Relative module specifiers (`from './x.js'`, `import('./x.js')`) of a module.
    fn imports(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        for quote in ['\'', '"'] {
            let mut rest = src;
            let pat = format!("{quote}./");
            let pat2 = format!("{quote}../");
            // The nearer of the two kinds of relative specifier, so neither is skipped.
            let next = |r: &str| match (r.find(&pat), r.find(&pat2)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            while let Some(i) = next(rest) {
                let tail = &rest[i + 1..];
                let Some(end) = tail.find(quote) else { break };
                let spec = &tail[..end];
                if spec.ends_with(".js") {
                    out.push(spec.to_owned());
                }
                rest = &tail[end..];
            }
        }
        out
    }

    fn resolve(from: &str, spec: &str) -> String {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for seg in spec.split('/') {
            match seg {
                "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        parts.join("/")
    }

    #[test]
    fn every_module_import_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for spec in imports(text(a.name)) {
                let target = resolve(a.name, &spec);
                assert!(
                    ASSETS.iter().any(|b| b.name == target),
                    "{} imports {spec} ({target}), which is not embedded",
                    a.name
                );
            }
        }
        // The page list names every page module that is embedded.
        let list = text("pages/index.js");
        for a in ASSETS.iter().filter(|a| a.name.starts_with("pages/")) {
            if a.name != "pages/index.js" {
                let file = a.name.trim_start_matches("pages/");
                assert!(list.contains(file), "{} is not listed", a.name);
            }
        }
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere_and_no_script_is_inline() {
        for a in ASSETS {
            // The SVG namespace is a name, not a place anything is loaded from.
            let t = text(a.name).replace("'http://www.w3.org/2000/svg'", "");
            assert!(
                !t.contains("http://") && !t.contains("https://"),
                "{}",
                a.name
            );
            assert!(!t.contains("localStorage."), "{} uses localStorage", a.name);
            assert!(!t.contains("eval("), "{}", a.name);
            // Logged values are attacker-controlled: text goes into the page as text
            // nodes only, never parsed as HTML.
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!t.contains(sink), "{} uses {sink}", a.name);
            }
        }
        let page = text("index.html");
        assert!(page.contains("src=\"/ui/app.js\""));
        assert_eq!(
            page.matches("<script").count(),
            1,
            "one external module only"
        );
        for handler in ["onclick", "onload", "onsubmit", "onerror", "javascript:"] {
            assert!(!page.contains(handler), "no inline handler ({handler})");
        }
    }

    #[test]
    fn assets_are_small() {
        // The whole dashboard stays small enough to load in one round of requests (a
        // first visit loads the shell and one page; other pages load when opened).
        assert!(total_bytes() < 160 * 1024, "{} bytes", total_bytes());
    }

    #[tokio::test]
    async fn a_current_copy_is_answered_304_and_an_unknown_file_404() {
        let first = asset(Path("app.js".into()), HeaderMap::new()).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CONTENT_TYPE], JS);
        let tag = first.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag);
        let again = asset(Path("app.js".into()), h).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let missing = asset(Path("../Cargo.toml".into()), HeaderMap::new()).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let page = index(HeaderMap::new()).await;
        assert_eq!(page.status(), StatusCode::OK);
    }
}
