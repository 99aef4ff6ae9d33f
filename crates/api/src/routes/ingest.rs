//! `POST /api/v1/ingest`: HTTP push of raw log lines or NDJSON, stored before the answer.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use palisade_formats::FormatSpec;
use palisade_sources::WriterError;
use palisade_sources::batcher::{Batcher, DETECT_SAMPLE_LINES, choose_parser, trim_eol};
use serde::Serialize;

use crate::AppState;
use crate::params::Params;
use crate::problem::Problem;

/// Longest an `Idempotency-Key` may be.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// How long a push waits for the store before answering 503.
const STORE_WAIT: Duration = Duration::from_secs(15);

/// How long writes must have been failing before a push is refused without trying.
const WRITES_FAILING_FOR: Duration = Duration::from_secs(2);

/// What a push stored.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IngestResult {
    /// Non-blank lines received.
    pub lines: u64,
    /// Events stored.
    pub events: u64,
    /// Lines kept as dead letters (see `/api/v1/dead-letters`).
    pub dead_letters: u64,
    /// True when this `Idempotency-Key` was already stored: nothing was written again,
    /// and the counts are those of the first push.
    pub duplicate: bool,
    /// The format used.
    pub format: String,
}

/// Query parameters of a push.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct IngestParams {
    /// auto (default), combined, common, json, ndjson, apache_error, nginx or apache
    /// (the last two need `log_format`).
    format: Option<String>,
    /// The server's nginx `log_format` or Apache `LogFormat` string.
    log_format: Option<String>,
    /// Source name for the events (default `push`).
    source: Option<String>,
}

const INGEST_PARAMS: &[&str] = &["format", "log_format", "source"];

/// The source kind HTTP pushes are listed under in `/api/v1/sources`.
const PUSH_KIND: &str = "push";

fn format_spec(params: &Params<'_>, headers: &HeaderMap) -> Result<FormatSpec, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ndjson_body = content_type.starts_with("application/x-ndjson")
        || content_type.starts_with("application/jsonl")
        || content_type.starts_with("application/json");
    let log_format = params.get("log_format")?;
    let spec =
        match (params.get("format")?, log_format) {
            (Some("nginx"), Some(f)) => FormatSpec::Nginx(f.to_owned()),
            (Some("apache"), Some(f)) => FormatSpec::Apache(f.to_owned()),
            (Some("nginx" | "apache"), None) => {
                return Err(Problem::invalid(
                    "log_format",
                    "required with format=nginx or format=apache",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Problem::invalid(
                    "log_format",
                    "only valid with format=nginx or format=apache",
                ));
            }
            (Some("ndjson"), None) => FormatSpec::from_name("json")
                .map_err(|e| Problem::invalid("format", e.to_string()))?,
            (Some(name), None) => FormatSpec::from_name(name)
                .map_err(|e| Problem::invalid("format", e.to_string()))?,
            (None, Some(_)) => {
                return Err(Problem::invalid(
                    "format",
                    "set format=nginx or format=apache with log_format",
                ));
            }
            (None, None) if ndjson_body => FormatSpec::from_name("json")
                .map_err(|e| Problem::invalid("format", e.to_string()))?,
            (None, None) => FormatSpec::Auto,
        };
    Ok(spec)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            Problem::invalid(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// Stores pushed lines (raw log lines in any supported format, or NDJSON) and answers
/// once they are durable. A retry with the same `Idempotency-Key` stores nothing twice.
#[utoipa::path(
    post,
    path = "/api/v1/ingest",
    tag = "ingest",
    params(
        IngestParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a second push with the same key stores nothing"),
    ),
    request_body(content = String, description = "Log lines, one per line (text/plain), or NDJSON (application/x-ndjson)", content_type = "text/plain"),
    responses(
        (status = 200, description = "Stored", body = IngestResult),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable; retry with the same Idempotency-Key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ingest(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestResult>), Problem> {
    let Query(pairs) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
    let params = Params::new(&pairs, INGEST_PARAMS)?;
    let spec = format_spec(&params, &headers)?;
    let source = params.get("source")?.unwrap_or("push").to_owned();
    if source.len() > 200 || source.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "source",
            "must be at most 200 printable characters",
        ));
    }
    if let Some(kind) = state
        .pipeline
        .sources
        .kind_of(&source)
        .filter(|k| *k != PUSH_KIND)
    {
        // A push must not pass for a configured source: their events may cause bans.
        return Err(Problem::invalid(
            "source",
            format!(
                "'{source}' is the name of a configured {kind} source; give pushes a name of their own"
            ),
        ));
    }
    let key = idempotency_key(&headers)?;

    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        let mut p = Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: larger than the {limit}-byte limit; split the push"),
        );
        p.field = Some("body".into());
        p
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::invalid(
            "body",
            "is empty; send one log line per line",
        ));
    }

    let sample: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .map(trim_eol)
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(DETECT_SAMPLE_LINES)
        .collect();
    let parser =
        choose_parser(&spec, &sample).map_err(|e| Problem::invalid("format", e.to_string()))?;
    let format = parser.name().to_owned();
    let mut batcher = Batcher::new(&source, parser, None, usize::MAX);
    let mut line_no = 0u64;
    let mut offset = 0u64;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        line_no += 1;
        batcher.push_line(line, Some(line_no), Some(offset));
        offset += line.len() as u64;
    }
    let mut batch = batcher.take(None);
    let lines = (batch.events.len() + batch.dead_letters.len()) as u64;
    batch.idempotency_key = key;

    // Fail fast when the database is known to be down: the health monitor says so, or
    // writes have failed for a while. A single failed write (a pooled connection cut
    // while idle, right after a recovery) is not an outage: the writer retries it, and
    // the push waits for that below.
    let writes_failing = state
        .pipeline
        .writer
        .store_down_for()
        .is_some_and(|d| d >= WRITES_FAILING_FOR);
    if writes_failing || !state.pipeline.db.ready() {
        return Err(Problem::unavailable(
            format!(
                "the database is unavailable ({}); nothing was stored, retry later",
                state
                    .pipeline
                    .writer
                    .last_error()
                    .or(state.pipeline.db.snapshot().error)
                    .unwrap_or_else(|| "not ready".into())
            ),
            5,
        ));
    }
    let outcome = match tokio::time::timeout(STORE_WAIT, state.pipeline.writer.write(batch)).await {
        Ok(Ok(o)) => o,
        Ok(Err(WriterError::Rejected(e))) => return Err(Problem::internal(&e)),
        Ok(Err(e)) => {
            return Err(Problem::unavailable(
                format!("{e}; retry with the same Idempotency-Key"),
                5,
            ));
        }
        Err(_) => {
            return Err(Problem::unavailable(
                "the database did not answer in time; retry with the same Idempotency-Key",
                5,
            ));
        }
    };
    let status = state
        .pipeline
        .sources
        .get_or_register(&source, PUSH_KIND, "POST /api/v1/ingest");
    status.set_format(&format);
    if !outcome.duplicate {
        status.count(
            outcome.events + outcome.dead_letters,
            outcome.events,
            outcome.dead_letters,
        );
    }
    Ok((
        StatusCode::OK,
        Json(IngestResult {
            lines,
            events: outcome.events,
            dead_letters: outcome.dead_letters,
            duplicate: outcome.duplicate,
            format,
        }),
    ))
}
