//! `/api/v1/reports`: generated reports for a period (a vulnerability report per asset
//! and severity, or a security summary), kept in the store and served as JSON, CSV or
//! a self-contained HTML page (`?format=`, else the `Accept` header). `POST` generates
//! one at once; the job queue runs the same generator (`palisade_vuln::generate_report`)
//! as a job kind.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_core::Timestamp;
use palisade_store::ReportMeta;
use palisade_vuln::TaskContext;
use palisade_vuln::report::{self, Format, ReportKind, ReportRequest};
use serde::Serialize;
use serde_json::Value;

use super::assets::vuln_problem;
use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::params::Params;
use crate::problem::Problem;

/// The longest period a report may cover.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// A stored report's description with its links.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportCreated {
    /// The report.
    #[serde(flatten)]
    pub report: ReportMeta,
    /// Where to fetch it in each format.
    pub links: ReportLinks,
}

/// Where to fetch a report.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportLinks {
    /// As JSON.
    pub json: String,
    /// As CSV.
    pub csv: String,
    /// As one HTML page.
    pub html: String,
}

fn links(id: i64) -> ReportLinks {
    let base = format!("/api/v1/reports/{id}");
    ReportLinks {
        json: format!("{base}?format=json"),
        csv: format!("{base}?format=csv"),
        html: format!("{base}?format=html"),
    }
}

/// One page of reports.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportPage {
    /// Reports, newest first.
    pub items: Vec<ReportMeta>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A report to generate. Unknown fields are refused.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewReportBody {
    /// vulnerabilities or security.
    #[schema(pattern = "^(vulnerabilities|security)$")]
    kind: String,
    /// Start of the period (RFC 3339 or epoch seconds).
    from: Option<String>,
    /// End of the period (default now).
    to: Option<String>,
    /// Instead of from/to: a period ending now, 15m, 1h, 24h, 7d or 30d.
    #[schema(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
}

fn time(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<Timestamp>, Problem> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Timestamp::parse_api(s).map(Some).map_err(|_| {
            Problem::invalid(
                key,
                "must be an RFC 3339 time (2024-05-01T12:00:00Z) or epoch seconds",
            )
        }),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|s| *s >= 0)
            .map(|s| Some(Timestamp::from_secs(s)))
            .ok_or_else(|| Problem::invalid(key, "epoch seconds must be a whole number")),
        Some(_) => Err(Problem::invalid(key, "must be a time")),
    }
}

fn parse_request(
    body: &Value,
    now: Timestamp,
) -> Result<(ReportKind, Timestamp, Timestamp), Problem> {
    let Some(obj) = body.as_object() else {
        return Err(Problem::invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "kind" | "from" | "to" | "range"))
    {
        return Err(Problem::invalid(
            unknown,
            "unknown field; accepted: kind, from, to, range",
        ));
    }
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => ReportKind::parse(k.trim()),
        None => {
            return Err(Problem::invalid(
                "kind",
                "missing; give vulnerabilities or security",
            ));
        }
        Some(_) => None,
    }
    .ok_or_else(|| Problem::invalid("kind", "must be vulnerabilities or security"))?;
    let (from, to) = match obj.get("range") {
        None | Some(Value::Null) => {
            let to = time(obj, "to")?.unwrap_or(now);
            let from = time(obj, "from")?
                .ok_or_else(|| Problem::invalid("from", "missing; give from (and to) or range"))?;
            (from, to)
        }
        Some(Value::String(r)) => {
            if obj.contains_key("from") || obj.contains_key("to") {
                return Err(Problem::invalid(
                    "range",
                    "cannot be combined with from or to",
                ));
            }
            let secs = match r.as_str() {
                "15m" => 900,
                "1h" => 3600,
                "24h" => 86_400,
                "7d" => 7 * 86_400,
                "30d" => 30 * 86_400,
                _ => {
                    return Err(Problem::invalid(
                        "range",
                        "must be one of 15m, 1h, 24h, 7d, 30d",
                    ));
                }
            };
            (now.add_micros(-secs * 1_000_000), now)
        }
        Some(_) => return Err(Problem::invalid("range", "must be a string such as 7d")),
    };
    if from >= to {
        return Err(Problem::invalid("to", "must be later than from"));
    }
    if to.as_micros() - from.as_micros() > MAX_PERIOD_DAYS * 86_400 * 1_000_000 {
        return Err(Problem::invalid(
            "from",
            "the period is longer than 366 days",
        ));
    }
    Ok((kind, from, to))
}

/// Generates a report now and stores it (the job queue runs the same generator in the
/// background).
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports", request_body = NewReportBody, responses(
    (status = 201, description = "Generated", body = ReportCreated),
    (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn create_report(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<ReportCreated>), Problem> {
    let (kind, from, to) = parse_request(&body, Timestamp::now())?;
    let actor = principal.actor();
    let meta = palisade_vuln::generate_report(
        &state.store,
        &ReportRequest {
            kind,
            from,
            to,
            created_by: actor.clone(),
        },
        &TaskContext::silent(),
    )
    .await
    .map_err(vuln_problem)?;
    audit(
        &state,
        Some(actor),
        "report.create",
        Some(meta.id.to_string()),
        true,
        &ip,
        Some(format!("{} {from} – {to}", kind.as_str())),
    )
    .await;
    let id = meta.id;
    Ok((
        StatusCode::CREATED,
        Json(ReportCreated {
            report: meta,
            links: links(id),
        }),
    ))
}

/// Query parameters of the reports listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportListParams {
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Lists stored reports, newest first.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", params(ReportListParams), responses(
    (status = 200, description = "A page of reports", body = ReportPage),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn list_reports(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ReportPage>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, &["cursor", "limit"])?;
    let page = state.store.query_reports(p.cursor()?, p.limit()?).await?;
    Ok(Json(ReportPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Query parameters of a report fetch.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportFormatParams {
    /// json, csv or html; else from the Accept header (default json).
    #[param(pattern = "^(json|csv|html)$")]
    format: Option<String>,
}

/// The format an `Accept` header asks for (the first known media type).
fn accepted(headers: &HeaderMap) -> Format {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or_default().trim();
        match media {
            "text/csv" => return Format::Csv,
            "text/html" => return Format::Html,
            "application/json" => return Format::Json,
            _ => {}
        }
    }
    Format::Json
}

/// One report, as JSON, CSV or one self-contained HTML page.
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports", params(("id" = i64, Path, description = "Report id"), ReportFormatParams), responses(
    (status = 200, description = "The report", content(
        (palisade_vuln::report::ReportDoc = "application/json"),
        (String = "text/csv"),
        (String = "text/html"),
    )),
    (status = 400, description = "Invalid id or format", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such report", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn get_report(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = crate::params::path_id(&raw)?;
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let p = Params::new(&pairs, &["format"])?;
    let format = match p.get("format")? {
        Some(f) => Format::parse(f)
            .ok_or_else(|| Problem::invalid("format", "must be json, csv or html"))?,
        None => accepted(&headers),
    };
    let stored = state
        .store
        .get_report(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no report with id {id}")))?;
    let body = report::render(id, &stored.doc, format).map_err(vuln_problem)?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if format == Format::Csv
        && let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"palisade-report-{id}.csv\""
        ))
    {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_the_field_at_fault() {
        let now = Timestamp::from_secs(1_700_000_000);
        let field = |v: Value| parse_request(&v, now).unwrap_err().field;
        assert_eq!(field(serde_json::json!([])), Some("body".into()));
        assert_eq!(
            field(serde_json::json!({"kind": "x", "range": "7d"})),
            Some("kind".into())
        );
        assert_eq!(
            field(serde_json::json!({"kind": "security"})),
            Some("from".into())
        );
        assert_eq!(
            field(serde_json::json!({"kind": "security", "range": "7d", "from": "1"})),
            Some("range".into())
        );
        assert_eq!(
            field(
                serde_json::json!({"kind": "security", "from": 1_700_000_000, "to": 1_600_000_000})
            ),
            Some("to".into())
        );
        assert_eq!(
            field(serde_json::json!({"kind": "security", "from": 0})),
            Some("from".into()),
            "longer than a year"
        );
        assert_eq!(
            field(serde_json::json!({"kind": "security", "range": "7d", "x": 1})),
            Some("x".into())
        );
        let (kind, from, to) = parse_request(
            &serde_json::json!({"kind": "vulnerabilities", "range": "24h"}),
            now,
        )
        .unwrap();
        assert_eq!(kind, ReportKind::Vulnerabilities);
        assert_eq!(to, now);
        assert_eq!(from, now.add_micros(-86_400_000_000));
    }

    #[test]
    fn accept_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(accepted(&h), Format::Json);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9"),
        );
        assert_eq!(accepted(&h), Format::Html);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("image/png, text/csv;q=0.5"),
        );
        assert_eq!(accepted(&h), Format::Csv);
    }
}
