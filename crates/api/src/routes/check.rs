//! `/api/v1/check`: the decision endpoint for reverse proxies. One handler speaks
//! nginx `auth_request`, Traefik ForwardAuth, Caddy forward_auth and Envoy ext_authz
//! (HTTP), and `POST /api/v1/check/request` takes the request as JSON for callers that
//! want their body inspected.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use palisade_core::Timestamp;
use palisade_core::config::{ConfigProblem, Validate};
use palisade_core::forwarded;
use palisade_core::metrics::registry;
use palisade_core::net::IpNet;
use palisade_core::verdict::{Action, Mode};
use palisade_detect::HttpRequest;
use palisade_pipeline::{Front, Judgement};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::middleware::ClientIp;
use crate::json::ApiJson;
use crate::problem::Problem;

/// Headers that describe the check request itself or the hop, never the original
/// request's content.
const NOT_FORWARDED: &[&str] = &[
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "x-api-key",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `[check]`: how `/api/v1/check` finds the original client.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// Proxies whose `X-Forwarded-For` entries are believed besides the caller of
    /// `/api/v1/check` itself (always trusted: it holds a `check` key). The client is
    /// the rightmost `X-Forwarded-For` hop that is none of these. Default: loopback.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            trusted_proxies: forwarded::loopback(),
        }
    }
}

impl Validate for CheckConfig {
    /// Every network is checked while deserializing.
    fn finish(&mut self) -> Vec<ConfigProblem> {
        Vec::new()
    }
}

impl CheckConfig {
    /// The original client by the one trusted-proxies model
    /// ([`palisade_core::forwarded`]): the caller (`peer`) and the configured trusted
    /// proxies are trusted, the client is the rightmost `X-Forwarded-For` hop that is
    /// neither (`X-Real-IP` only when there is no `X-Forwarded-For`). A caller whose
    /// address is unknown (no connection info) is treated as trusted.
    pub fn original_client(&self, headers: &HeaderMap, peer: &str) -> Option<IpAddr> {
        let peer_ip: Option<IpAddr> = peer.parse().ok();
        let forwarded_for: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let real_ip = header(headers, "x-real-ip");
        let trusted =
            |ip: IpAddr| Some(ip) == peer_ip || forwarded::in_networks(&self.trusted_proxies, ip);
        match peer_ip {
            Some(peer) => Some(forwarded::forwarded_client(
                peer,
                forwarded_for,
                real_ip,
                trusted,
            )),
            None => {
                // No peer to start from: walk the hops from a stand-in trusted peer
                // (the unspecified address, which no hop can be).
                let stand_in = IpAddr::from([0, 0, 0, 0]);
                let client = forwarded::forwarded_client(stand_in, forwarded_for, real_ip, |ip| {
                    ip == stand_in || trusted(ip)
                });
                (client != stand_in).then_some(client)
            }
        }
    }
}

/// Rebuilds the request the proxy is asking about from what each proxy sends.
pub fn original_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    client_ip: Option<IpAddr>,
) -> HttpRequest {
    let envoy_path = uri
        .path()
        .strip_prefix("/api/v1/check")
        .filter(|rest| rest.starts_with('/'))
        .map(|rest| match uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        });
    let target = header(headers, "x-original-uri")
        .or_else(|| header(headers, "x-forwarded-uri"))
        .map(str::to_owned)
        .or(envoy_path)
        .unwrap_or_else(|| "/".to_owned());
    let original_method = header(headers, "x-original-method")
        .or_else(|| header(headers, "x-forwarded-method"))
        .unwrap_or(method.as_str())
        .to_owned();
    let mut forwarded: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !NOT_FORWARDED.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Some(host) = header(headers, "x-forwarded-host") {
        forwarded.retain(|(k, _)| k != "host");
        forwarded.push(("host".into(), host.to_owned()));
    }
    HttpRequest {
        method: original_method,
        uri: target,
        protocol: "HTTP/1.1".into(),
        headers: forwarded,
        body: body.to_vec(),
        client_ip,
    }
}

/// Turns a judgement into the answer the proxy acts on: 200 or 403, with
/// `X-Palisade-*` headers saying why.
fn answer(judgement: &Judgement) -> Response {
    let decision = judgement.action;
    registry()
        .counter(
            "palisade_check_decisions_total",
            "Decisions of /api/v1/check.",
            &["decision"],
            &[decision.as_str()],
        )
        .inc();
    if let Some(ban) = &judgement.ban {
        count_ban(if decision == Action::Ban {
            Mode::Block
        } else {
            Mode::Detect
        });
        if decision == Action::Ban {
            return banned(ban, judgement.threshold);
        }
    }
    let Some(verdict) = &judgement.verdict else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let rules: Vec<String> = verdict
        .findings
        .iter()
        .map(|f| f.rule_id.to_string())
        .collect();
    let ban = judgement.ban.as_ref().map(|b| BanHit {
        id: b.id,
        value: b.value.clone(),
        reason: b.scenario.clone(),
        expires_at: b.expires_at,
    });
    let note = ban.as_ref().map(|b| {
        format!(
            "detect-only mode: this client is banned (decision {}, {}); in block mode the request would have been refused",
            b.id, b.value
        )
    });
    let body = CheckResult {
        ban,
        note,
        decision,
        score: verdict.score,
        threshold: verdict.threshold,
        rules: verdict
            .findings
            .iter()
            .map(|f| RuleHit {
                id: f.rule_id,
                name: f.name.clone(),
                location: f.location.clone(),
                part: f.name_of_part.clone(),
                matched: f.matched.clone(),
            })
            .collect(),
    };
    let status = if decision.refuses() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-palisade-decision"),
        HeaderValue::from_static(decision.as_str()),
    );
    h.insert(
        HeaderName::from_static("x-palisade-score"),
        HeaderValue::from(verdict.score),
    );
    if let Ok(v) = HeaderValue::from_str(&rules.join(",")) {
        h.insert(HeaderName::from_static("x-palisade-rules"), v);
    }
    if let Some(ban) = &judgement.ban {
        ban_headers(h, ban);
        h.insert(
            HeaderName::from_static("x-palisade-note"),
            HeaderValue::from_static(
                "detect-only mode: banned client let through; block mode would refuse it",
            ),
        );
    }
    resp
}

/// A decision.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    /// allow, block, or detect (over the threshold in detect-only mode).
    pub decision: Action,
    /// Anomaly score.
    pub score: u32,
    /// Blocking threshold.
    pub threshold: u32,
    /// The rules that matched, with their evidence.
    pub rules: Vec<RuleHit>,
    /// The IP decision in force against the client, when one is (`decision` is then
    /// `ban`, or `detect` in detect-only mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban: Option<BanHit>,
    /// Plain words for what the answer means when it is not obvious (a banned client
    /// let through in detect-only mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The ban that refused (or, in detect-only mode, would have refused) the client.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BanHit {
    /// Decision id (`/api/v1/decisions/{id}`).
    pub id: i64,
    /// The banned address or network.
    pub value: String,
    /// The scenario, or the reason a person gave.
    pub reason: String,
    /// When the ban ends; null for good.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

/// One matched rule.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleHit {
    /// Rule id.
    pub id: u32,
    /// Rule name.
    pub name: String,
    /// Where in the request.
    pub location: String,
    /// Which part (parameter or header name).
    pub part: String,
    /// The matched text (capped).
    pub matched: String,
}

/// Checks the request a proxy forwards (nginx `auth_request`, Traefik ForwardAuth,
/// Caddy forward_auth; Envoy ext_authz uses `/api/v1/check/{path}`). 200 allows, 403
/// blocks; `X-Palisade-Decision`, `X-Palisade-Score` and `X-Palisade-Rules` say why. A
/// client with an IP ban in force gets 403 with `X-Palisade-Decision: ban` and
/// `X-Palisade-Reason` naming the decision (in detect-only mode: 200, `detect`).
#[utoipa::path(get, path = "/api/v1/check", tag = "detection", params(
    ("X-Original-URI" = Option<String>, Header, description = "nginx: the original request target"),
    ("X-Original-Method" = Option<String>, Header, description = "nginx: the original method"),
    ("X-Forwarded-Uri" = Option<String>, Header, description = "Traefik, Caddy: the original request target"),
    ("X-Forwarded-Method" = Option<String>, Header, description = "Traefik, Caddy: the original method"),
), responses(
    (status = 200, description = "Allowed (or detect-only)", body = CheckResult),
    (status = 403, description = "Blocked", body = CheckResult),
), security(("bearer" = [])))]
pub async fn check(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !names_the_original_request(&uri, &headers) {
        return misconfigured();
    }
    let client = state.check.original_client(&headers, &peer);
    let request = original_request(&method, &uri, &headers, body, client);
    decide(&state, &request)
}

/// Whether the caller says which request it is asking about (`X-Original-URI`,
/// `X-Forwarded-Uri`, or Envoy's path after `/api/v1/check/`).
fn names_the_original_request(uri: &Uri, headers: &HeaderMap) -> bool {
    header(headers, "x-original-uri").is_some()
        || header(headers, "x-forwarded-uri").is_some()
        || uri.path().starts_with("/api/v1/check/")
}

/// When a caller last asked without naming the request (microseconds since the
/// epoch; 0: never), for health.
static MISCONFIGURED_AT: AtomicI64 = AtomicI64::new(0);

/// When `/api/v1/check` was last called without the original request's target, if
/// within `window`: a proxy integration is misconfigured (health shows it).
pub fn misconfigured_since(window: std::time::Duration) -> Option<Timestamp> {
    let at = MISCONFIGURED_AT.load(Ordering::Relaxed);
    let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    (at > 0 && Timestamp::now().as_micros() - at <= window).then_some(Timestamp(at))
}

/// Fails closed: a check that does not say what to check is refused (400, which
/// nginx `auth_request` turns into a 500 and Traefik, Caddy and Envoy pass on as a
/// denial), logged once and counted, instead of allowing everything with score 0.
fn misconfigured() -> Response {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    registry()
        .counter(
            "palisade_check_misconfigured_total",
            "Calls of /api/v1/check that did not name the original request (refused).",
            &[],
            &[],
        )
        .inc();
    MISCONFIGURED_AT.store(Timestamp::now().as_micros(), Ordering::Relaxed);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::error!(
            message = "A proxy called /api/v1/check without X-Original-URI (nginx), X-Forwarded-Uri (Traefik, Caddy) or a path after /api/v1/check/ (Envoy); refusing every such request. See deploy/README.md."
        );
    }
    let mut resp = Problem::invalid(
        "X-Original-URI",
        "missing: the proxy must send the original request's target (X-Original-URI for nginx, X-Forwarded-Uri for Traefik and Caddy, the path after /api/v1/check/ for Envoy); see deploy/README.md",
    )
    .into_response();
    resp.headers_mut().insert(
        HeaderName::from_static("x-palisade-decision"),
        HeaderValue::from_static("error"),
    );
    resp
}

/// Judges the request (IP decisions, then the engine: see
/// [`palisade_pipeline::guard`]) and answers.
fn decide(state: &AppState, request: &HttpRequest) -> Response {
    answer(&state.pipeline.guard.judge(request, Front::Check))
}

fn count_ban(mode: Mode) {
    registry()
        .counter(
            "palisade_check_bans_total",
            "Requests from a banned client seen by /api/v1/check, by mode (block or detect).",
            &["mode"],
            &[mode.as_str()],
        )
        .inc();
}

/// `X-Palisade-Reason: decision <id>: <scenario>` (visible ASCII only) and
/// `X-Palisade-Decision-Id`.
fn ban_headers(h: &mut HeaderMap, ban: &palisade_core::decision::Decision) {
    h.insert(
        HeaderName::from_static("x-palisade-decision-id"),
        HeaderValue::from(ban.id),
    );
    let reason: String = format!("decision {}: {} {}", ban.id, ban.value, ban.scenario)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect();
    if let Ok(v) = HeaderValue::from_str(&reason) {
        h.insert(HeaderName::from_static("x-palisade-reason"), v);
    }
}

/// 403 for a client with a ban in force.
fn banned(ban: &palisade_core::decision::Decision, threshold: u32) -> Response {
    let body = CheckResult {
        note: None,
        decision: Action::Ban,
        score: 0,
        threshold,
        rules: Vec::new(),
        ban: Some(BanHit {
            id: ban.id,
            value: ban.value.clone(),
            reason: ban.scenario.clone(),
            expires_at: ban.expires_at,
        }),
    };
    let mut resp = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-palisade-decision"),
        HeaderValue::from_static(Action::Ban.as_str()),
    );
    h.insert(
        HeaderName::from_static("x-palisade-rules"),
        HeaderValue::from_str(&format!("decision:{}", ban.id))
            .unwrap_or(HeaderValue::from_static("decision")),
    );
    ban_headers(h, ban);
    resp
}

/// A request described as JSON.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// Method.
    pub method: String,
    /// Request target (path and query).
    pub uri: String,
    /// Headers as name/value pairs.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body as text, as sent (with `Transfer-Encoding: chunked`, in its chunked
    /// framing).
    #[serde(default)]
    pub body: String,
    /// The protocol version from the request line (`HTTP/1.1` when absent), so a
    /// request judged here gets the verdict the proxy gives the same bytes.
    #[serde(default)]
    #[schema(max_length = 16)]
    pub protocol: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
}

/// Checks a request given as JSON, body included.
#[utoipa::path(post, path = "/api/v1/check/request", tag = "detection", request_body = CheckRequest, responses(
    (status = 200, description = "Allowed (or detect-only)", body = CheckResult),
    (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Blocked", body = CheckResult),
), security(("bearer" = [])))]
pub async fn check_json(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CheckRequest>,
) -> Result<Response, Problem> {
    if req.method.is_empty() || req.method.len() > 32 {
        return Err(Problem::invalid("method", "must be 1 to 32 characters"));
    }
    if req.uri.is_empty() {
        return Err(Problem::invalid("uri", "must not be empty"));
    }
    let client_ip = req
        .client_ip
        .as_deref()
        .map(|ip| {
            ip.parse::<IpAddr>()
                .map_err(|_| Problem::invalid("client_ip", "not an IP address"))
        })
        .transpose()?;
    let protocol = match req.protocol {
        None => "HTTP/1.1".to_owned(),
        Some(p) if p.chars().count() > 16 => {
            return Err(Problem::invalid(
                "protocol",
                "must be at most 16 characters",
            ));
        }
        Some(p) => p,
    };
    let request = HttpRequest {
        method: req.method,
        uri: req.uri,
        protocol,
        headers: req.headers,
        body: req.body.into_bytes(),
        client_ip,
    };
    Ok(decide(&state, &request))
}
