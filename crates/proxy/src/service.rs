//! One request through the proxy: refuse a banned client, read the body (bounded; a
//! compressed body decoded for inspection), judge the whole request with the Guard,
//! answer 403 or forward it, and stream the upstream's answer back. When the answer
//! ends, the request is stored as an event ([`crate::traffic`]).
//!
//! Every request the service answers was judged by the Guard as far as it could be
//! read: one refused for its size, a stalled or unreadable body, or an unknown content
//! coding is judged on its head, so an attack in its target is still blocked and
//! recorded, and its event carries a verdict.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Incoming};
use palisade_core::request_id::new_request_id;
use palisade_core::verdict::Action;
use palisade_detect::HttpRequest;
use palisade_pipeline::{Front, Judgement};

use crate::body::{Buffered, PrefixedBody, read_limited};
use crate::config::OversizePolicy;
use crate::connections::Activity;
use crate::decode::{self, DecodeError, Limits};
use crate::headers::{
    Peer, X_REQUEST_ID, announces_body, client_ip, is_upgrade, set_forwarded, strip_hop_by_hop,
    version_text,
};
use crate::raw_head::{RawHead, SentHead};
use crate::refusal::{self, Refusal};
use crate::traffic::{Completion, ObservedBody, RequestRecord};
use crate::{ProxyBody, Shared, page, tunnel};

/// What goes to the upstream after inspection.
enum Outgoing {
    Whole(Bytes),
    Prefixed(PrefixedBody),
    Nothing,
}

impl Outgoing {
    fn into_body(self) -> ProxyBody {
        match self {
            Outgoing::Whole(b) => Full::new(b).map_err(|never| match never {}).boxed_unsync(),
            Outgoing::Prefixed(p) => p.boxed_unsync(),
            Outgoing::Nothing => Empty::new().map_err(|never| match never {}).boxed_unsync(),
        }
    }
}

/// An answer, with what the metrics and the event need to know about it.
struct Answer {
    outcome: &'static str,
    verdict: Option<Action>,
    response: Response<ProxyBody>,
    upgraded: bool,
}

impl Answer {
    fn new(
        outcome: &'static str,
        verdict: Option<Action>,
        response: Response<ProxyBody>,
    ) -> Answer {
        Answer {
            outcome,
            verdict,
            response,
            upgraded: false,
        }
    }
}

/// Serves one request; never fails (every problem is an HTTP answer).
pub async fn handle(
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    req: Request<Incoming>,
    activity: Arc<Activity>,
) -> Response<ProxyBody> {
    // Read in place (no copy of the recorded bytes); handed down, not kept in the
    // request's extensions (a map allocated for this one value).
    // The head is read into the strings the connection's previous request left.
    let spare = activity.take_spare();
    let SentHead(sent) = activity.with_recorded_head(|head| SentHead::read(head, &req, spare));
    activity.request_started();
    let started = Instant::now();
    let request_id = new_request_id();
    let client = client_ip(peer.ip(), req.headers(), &shared.config.trusted_proxies);
    let record = shared.traffic.as_ref().map(|t| {
        (
            RequestRecord::new(&shared.config.name, client, &req, &request_id),
            t.clone(),
        )
    });
    let answer = serve(&shared, &peer, client, &request_id, req, sent, &activity).await;
    shared
        .metrics
        .finish(answer.outcome, started.elapsed().as_secs_f64());
    let status = answer.response.status().as_u16();
    let (parts, body) = answer.response.into_parts();
    let body = ObservedBody::new(
        body,
        Completion {
            record,
            status,
            verdict: answer.verdict,
            activity,
            upgraded: answer.upgraded,
        },
    );
    Response::from_parts(parts, body.boxed_unsync())
}

/// The request target hyper read (origin form: path and query; `/` when it has none).
fn target_of(parts: &Parts) -> &str {
    parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
}

/// The request as the engine sees it: the head as the client sent it when it could be
/// read back (`sent`: every header line, duplicates and framing headers hyper merged or
/// dropped; an absolute-form target with its authority; moved in, not copied), else
/// hyper's view of it.
fn inspected(
    parts: &Parts,
    target: &str,
    body: Vec<u8>,
    client: IpAddr,
    sent: Option<RawHead>,
) -> HttpRequest {
    let (headers, sent_target, spare) = match sent {
        Some(head) => (
            head.headers,
            Some(head.target),
            Some((head.method, head.version)),
        ),
        None => (
            parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            None,
            None,
        ),
    };
    // hyper removed the chunked framing; the engine judges bodies as sent (so `eval`
    // and `/check` give the same verdict on the same bytes), so frame it again.
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding")
            && v.rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
    });
    let body = if chunked && !body.is_empty() {
        let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
        framed.extend_from_slice(&body);
        framed.extend_from_slice(b"\r\n0\r\n\r\n");
        framed
    } else {
        body
    };
    // The method and version hyper read, written into the strings the head read back
    // holds for them (its method is hyper's, checked as it was read), not new ones.
    let (method, protocol) = match spare {
        Some((mut method, mut protocol)) => {
            method.clear();
            method.push_str(parts.method.as_str());
            protocol.clear();
            protocol.push_str(version_text(parts.version));
            (method, protocol)
        }
        None => (
            parts.method.as_str().to_owned(),
            version_text(parts.version).to_owned(),
        ),
    };
    HttpRequest {
        method,
        uri: sent_target.unwrap_or_else(|| target.to_owned()),
        protocol,
        headers,
        body,
        client_ip: Some(client),
    }
}

async fn serve(
    shared: &Shared,
    peer: &Peer,
    client: IpAddr,
    request_id: &str,
    mut req: Request<Incoming>,
    sent: Option<RawHead>,
    activity: &Activity,
) -> Answer {
    let config = &shared.config;
    let peer_trusted = config.trusted_proxies.iter().any(|n| n.contains(peer.ip()));
    // A banned client is refused before its body is read.
    if let Some(judgement) = shared.guard.refuse_banned(client) {
        return banned(shared, request_id, client, &judgement);
    }
    let upgrade = is_upgrade(req.headers());
    if upgrade && announces_body(req.headers()) {
        let (parts, _) = req.into_parts();
        let request = inspected(&parts, target_of(&parts), Vec::new(), client, sent);
        let verdict = refusal::record(
            &shared.guard,
            &request,
            &config.name,
            &Refusal::UpgradeWithBody,
        );
        return Answer::new(
            "bad_request",
            Some(verdict),
            page::closing(page::bad_request(request_id)),
        );
    }
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let target = target_of(&parts);

    let (body_read, outgoing, truncated) = if upgrade {
        (Bytes::new(), Outgoing::Nothing, false)
    } else if body.is_end_stream() {
        // No body (no `Content-Length` or 0, no `Transfer-Encoding`: hyper hands over
        // an empty one): what reading it would give, without arming the client timeout
        // and polling it for the end.
        (Bytes::new(), Outgoing::Whole(Bytes::new()), false)
    } else {
        let read = tokio::time::timeout(
            config.client_timeout,
            read_limited(body, config.max_body_bytes),
        )
        .await;
        match read {
            Err(_) => {
                return judge_head(
                    shared,
                    &parts,
                    target,
                    client,
                    request_id,
                    sent,
                    ("client_timeout", page::client_timeout),
                );
            }
            Ok(Err(error)) if broken_framing(&error) => {
                let request = inspected(&parts, target, Vec::new(), client, sent);
                let refusal = Refusal::BrokenChunking {
                    reason: error.to_string(),
                };
                let verdict = refusal::record(&shared.guard, &request, &config.name, &refusal);
                return Answer::new(
                    "bad_request",
                    Some(verdict),
                    page::closing(page::bad_request(request_id)),
                );
            }
            Ok(Err(_)) => {
                return judge_head(
                    shared,
                    &parts,
                    target,
                    client,
                    request_id,
                    sent,
                    ("bad_request", page::bad_request),
                );
            }
            Ok(Ok(Buffered::Complete(b))) => (b.clone(), Outgoing::Whole(b), false),
            Ok(Ok(Buffered::Oversize(prefix, rest))) => match config.oversize {
                OversizePolicy::Reject => {
                    return judge_head(
                        shared,
                        &parts,
                        target,
                        client,
                        request_id,
                        sent,
                        ("too_large", page::too_large),
                    );
                }
                OversizePolicy::InspectPrefix => (
                    prefix.slice(..config.max_body_bytes.min(prefix.len())),
                    Outgoing::Prefixed(PrefixedBody::new(prefix, rest, config.client_timeout)),
                    true,
                ),
            },
        }
    };

    let body_inspected = match decoded(shared, &parts, body_read, truncated) {
        Ok(body) => body,
        Err(refused) => {
            return refuse_undecodable(shared, &parts, target, client, request_id, sent, refused);
        }
    };

    let request = inspected(&parts, target, body_inspected.to_vec(), client, sent);
    let judgement = shared.guard.judge(&request, Front::Proxy(&config.name));
    match judgement.action {
        Action::Ban => return banned(shared, request_id, client, &judgement),
        Action::Block => {
            log_blocked(shared, request_id, client, &request, &judgement);
            return Answer::new(
                Action::Block.as_str(),
                Some(Action::Block),
                page::blocked(request_id),
            );
        }
        Action::Allow | Action::Detect => {}
    }
    // Judged: its header strings are kept for the connection's next head.
    activity.give_back(request.headers);
    let verdict = Some(judgement.action);

    let Some(uri) = shared.upstream.uri_for(&parts.uri, target) else {
        return Answer::new("bad_request", verdict, page::bad_request(request_id));
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    if upgrade {
        // Nothing follows the handshake but the tunnel: no framing is forwarded.
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    let id_value = HeaderValue::from_str(request_id).ok();
    set_forwarded(
        &mut parts.headers,
        peer,
        client,
        peer_trusted,
        id_value.as_ref(),
    );
    if !config.preserve_host
        && let Some(host) = shared.upstream.host()
    {
        parts.headers.insert(header::HOST, host.clone());
    }
    let upstream_req = Request::from_parts(parts, outgoing.into_body());
    let sent = async {
        if upgrade {
            shared.upstream.send_upgrade(upstream_req).await
        } else {
            shared.upstream.send(upstream_req).await
        }
    };
    let mut resp = match tokio::time::timeout(config.response_timeout, sent).await {
        Err(_) => {
            tracing::warn!(message = "Upstream did not answer in time.", proxy = %config.name, request_id = %request_id);
            return Answer::new(
                "upstream_timeout",
                verdict,
                page::gateway_timeout(request_id),
            );
        }
        Ok(Err(error)) => {
            tracing::warn!(message = "Upstream failed.", proxy = %config.name, request_id = %request_id, %error);
            return Answer::new("upstream_error", verdict, page::bad_gateway(request_id));
        }
        Ok(Ok(resp)) => resp,
    };
    shared.guard.answered(&judgement, resp.status().as_u16());
    let banners = shared.responses.observe(resp.headers());
    observe_software(shared, banners);

    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let mut upgraded = false;
    if let (true, Some(client_upgrade)) = (switching, client_upgrade) {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tunnel::spawn(client_upgrade, upstream_upgrade, request_id.to_owned());
        upgraded = true;
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, switching);
    if let Some(v) = id_value {
        parts.headers.entry(X_REQUEST_ID).or_insert(v);
    }
    Answer {
        outcome: judgement.action.as_str(),
        verdict,
        response: Response::from_parts(parts, body.map_err(Into::into).boxed_unsync()),
        upgraded,
    }
}

/// Whether a body read failed on the body's framing (a chunk-size line that is not hex
/// or overflows, a chunk that does not end where its size says), not on the client
/// going away: hyper reports those as `InvalidData` / `InvalidInput`.
fn broken_framing(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            );
        }
        source = e.source();
    }
    false
}

/// The body as it is inspected: decoded when it is in a content coding.
fn decoded(
    shared: &Shared,
    parts: &Parts,
    body: Bytes,
    truncated: bool,
) -> Result<Bytes, DecodeError> {
    let codings = decode::codings(&parts.headers)?;
    if codings.is_empty() {
        return Ok(body);
    }
    let limits = Limits {
        max_bytes: shared.config.max_body_bytes,
        max_ratio: shared.config.max_decompression_ratio,
        allow_prefix: shared.config.oversize == OversizePolicy::InspectPrefix,
    };
    decode::decode(&codings, body, truncated, limits).map(|(body, _)| body)
}

/// Refuses a body that cannot be decoded for inspection (see [`crate::decode`]).
fn refuse_undecodable(
    shared: &Shared,
    parts: &Parts,
    target: &str,
    client: IpAddr,
    request_id: &str,
    sent: Option<RawHead>,
    error: DecodeError,
) -> Answer {
    let config = &shared.config;
    let threat = match &error {
        DecodeError::Corrupt { .. } => Some((
            Refusal::CorruptCoding {
                reason: error.to_string(),
            },
            "unsupported_encoding",
            page::unsupported_encoding as fn(&str) -> Response<ProxyBody>,
        )),
        DecodeError::Bomb { .. } => Some((
            Refusal::DecompressionBomb {
                reason: error.to_string(),
            },
            "too_large",
            page::too_large as fn(&str) -> Response<ProxyBody>,
        )),
        DecodeError::Unsupported(_) | DecodeError::TooLarge { .. } => None,
    };
    match threat {
        Some((refusal, outcome, make_page)) => {
            let request = inspected(parts, target, Vec::new(), client, sent);
            let verdict = refusal::record(&shared.guard, &request, &config.name, &refusal);
            Answer::new(outcome, Some(verdict), make_page(request_id))
        }
        None => {
            tracing::info!(
                message = "Request body cannot be inspected; refused.",
                proxy = %config.name,
                request_id = %request_id,
                client = %client,
                %error
            );
            let (outcome, make_page): (&'static str, fn(&str) -> Response<ProxyBody>) = match error
            {
                DecodeError::TooLarge { .. } => ("too_large", page::too_large),
                _ => ("unsupported_encoding", page::unsupported_encoding),
            };
            judge_head(
                shared,
                parts,
                target,
                client,
                request_id,
                sent,
                (outcome, make_page),
            )
        }
    }
}

/// A request refused before its body could be inspected (too large, too slow,
/// unreadable, in an unknown coding): its head is judged, so an attack there is still
/// blocked (403) and recorded; otherwise the refusal's own page.
fn judge_head(
    shared: &Shared,
    parts: &Parts,
    target: &str,
    client: IpAddr,
    request_id: &str,
    sent: Option<RawHead>,
    (outcome, make_page): (&'static str, fn(&str) -> Response<ProxyBody>),
) -> Answer {
    let request = inspected(parts, target, Vec::new(), client, sent);
    let judgement = shared
        .guard
        .judge(&request, Front::Proxy(&shared.config.name));
    match judgement.action {
        Action::Ban => banned(shared, request_id, client, &judgement),
        Action::Block => {
            log_blocked(shared, request_id, client, &request, &judgement);
            Answer::new(
                Action::Block.as_str(),
                Some(Action::Block),
                page::blocked(request_id),
            )
        }
        action => Answer::new(outcome, Some(action), page::closing(make_page(request_id))),
    }
}

/// "Request blocked." with what an operator needs to find why: the path, the rules
/// and the score (the threat has the rest).
fn log_blocked(
    shared: &Shared,
    request_id: &str,
    client: IpAddr,
    request: &HttpRequest,
    judgement: &Judgement,
) {
    let path: String = request
        .uri
        .split('?')
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    let rules = judgement.verdict.as_ref().map_or_else(String::new, |v| {
        v.findings
            .iter()
            .map(|f| f.rule_id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    });
    tracing::info!(
        message = "Request blocked.",
        proxy = %shared.config.name,
        request_id = %request_id,
        client = %client,
        method = %request.method,
        path = %path,
        rules = %rules,
        score = judgement.verdict.as_ref().map_or(0, |v| v.score),
    );
}

/// Software seen in traffic: hands the upstream's `Server` / `X-Powered-By` answer to
/// the vulnerability engine, for the asset named by the upstream's authority. A
/// non-blocking hand-over (repeats are skipped, a full queue drops): the answer is
/// never delayed by it (see `palisade_vuln::observe`). The banners are those the
/// security-header count found in its walk over the answer's headers.
fn observe_software(shared: &Shared, banners: crate::observe::Banners<'_>) {
    if let Some(observer) = &shared.software {
        observer.http_answer(
            &shared.config.upstream.authority,
            banners.server.map(HeaderValue::as_bytes),
            banners.powered_by.map(HeaderValue::as_bytes),
        );
    }
}

/// The 403 page for a client with a ban in force, logged once.
fn banned(shared: &Shared, request_id: &str, client: IpAddr, judgement: &Judgement) -> Answer {
    tracing::info!(
        message = "Request from a banned client refused.",
        proxy = %shared.config.name,
        request_id = %request_id,
        client = %client,
        decision = judgement.ban.as_ref().map_or(0, |b| b.id),
    );
    Answer::new(
        Action::Ban.as_str(),
        Some(Action::Ban),
        page::blocked(request_id),
    )
}
