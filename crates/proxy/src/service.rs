//! One request through the proxy: read the body (bounded), inspect the whole request,
//! answer 403 or forward it, and stream the upstream's answer back.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use palisade_core::request_id::new_request_id;
use palisade_core::verdict::Action;
use palisade_detect::HttpRequest;
use palisade_pipeline::Front;

use crate::body::{Buffered, PrefixedBody, read_limited};
use crate::config::OversizePolicy;
use crate::headers::{client_ip, is_upgrade, set_forwarded, strip_hop_by_hop};
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
            Outgoing::Prefixed(p) => p.map_err(Into::into).boxed_unsync(),
            Outgoing::Nothing => Empty::new().map_err(|never| match never {}).boxed_unsync(),
        }
    }
}

/// Serves one request; never fails (every problem is an HTTP answer).
pub async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let (outcome, resp) = serve(&shared, peer.ip(), req).await;
    shared
        .metrics
        .finish(outcome, started.elapsed().as_secs_f64());
    resp
}

async fn serve(
    shared: &Shared,
    peer: IpAddr,
    mut req: Request<Incoming>,
) -> (&'static str, Response<ProxyBody>) {
    let config = &shared.config;
    let request_id = new_request_id();
    let peer_trusted = config.trusted_proxies.iter().any(|n| n.contains(peer));
    let client = client_ip(peer, req.headers(), &config.trusted_proxies);
    // A banned client is refused before its body is read.
    if let Some(judgement) = shared.guard.refuse_banned(client) {
        return refuse_banned(config, &request_id, client, &judgement);
    }
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let (inspected, outgoing) = if upgrade {
        (Bytes::new(), Outgoing::Nothing)
    } else {
        match tokio::time::timeout(
            config.client_timeout,
            read_limited(body, config.max_body_bytes),
        )
        .await
        {
            Err(_) => return ("client_timeout", page::client_timeout(&request_id)),
            Ok(Err(_)) => return ("bad_request", page::bad_request(&request_id)),
            Ok(Ok(Buffered::Complete(b))) => (b.clone(), Outgoing::Whole(b)),
            Ok(Ok(Buffered::Oversize(prefix, rest))) => match config.oversize {
                OversizePolicy::Reject => return ("too_large", page::too_large(&request_id)),
                OversizePolicy::InspectPrefix => (
                    prefix.slice(..config.max_body_bytes.min(prefix.len())),
                    Outgoing::Prefixed(PrefixedBody::new(prefix, rest)),
                ),
            },
        }
    };

    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let inspected_request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        uri: target.clone(),
        protocol: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: inspected.to_vec(),
        client_ip: Some(client),
    };
    let judgement = shared
        .guard
        .judge(&inspected_request, Front::Proxy(&config.name));
    match judgement.action {
        Action::Ban => return refuse_banned(config, &request_id, client, &judgement),
        Action::Block => {
            tracing::info!(
                message = "Request blocked.",
                proxy = %config.name,
                request_id = %request_id,
                client = %client,
                score = judgement.verdict.as_ref().map_or(0, |v| v.score),
                method = %inspected_request.method,
            );
            return (Action::Block.as_str(), page::blocked(&request_id));
        }
        Action::Allow | Action::Detect => {}
    }

    let Ok(uri) = config.upstream.target(&target) else {
        return ("bad_request", page::bad_request(&request_id));
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    set_forwarded(&mut parts.headers, peer, client, peer_trusted, &request_id);
    if !config.preserve_host
        && let Ok(host) = HeaderValue::from_str(&config.upstream.authority)
    {
        parts.headers.insert(header::HOST, host);
    }
    let upstream_req = Request::from_parts(parts, outgoing.into_body());

    let mut resp = match tokio::time::timeout(
        config.response_timeout,
        shared.client.request(upstream_req),
    )
    .await
    {
        Err(_) => {
            tracing::warn!(message = "Upstream did not answer in time.", proxy = %config.name, request_id = %request_id);
            return ("upstream_timeout", page::gateway_timeout(&request_id));
        }
        Ok(Err(error)) => {
            tracing::warn!(message = "Upstream failed.", proxy = %config.name, request_id = %request_id, %error);
            return ("upstream_error", page::bad_gateway(&request_id));
        }
        Ok(Ok(resp)) => resp,
    };

    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if let (true, Some(client_upgrade)) = (switching, client_upgrade) {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tunnel::spawn(client_upgrade, upstream_upgrade, request_id.clone());
    }
    let (mut parts, body) = resp.into_parts();
    observe_software(shared, &parts.headers);
    strip_hop_by_hop(&mut parts.headers, switching);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        parts.headers.entry("x-request-id").or_insert(v);
    }
    let outcome = judgement.action.as_str();
    (
        outcome,
        Response::from_parts(parts, body.map_err(Into::into).boxed_unsync()),
    )
}

/// Software seen in traffic: hands the upstream's `Server` / `X-Powered-By` answer to
/// the vulnerability engine, for the asset named by the upstream's authority. A
/// non-blocking hand-over (repeats are skipped, a full queue drops): the answer is
/// never delayed by it (see `palisade_vuln::observe`).
fn observe_software(shared: &Shared, headers: &http::HeaderMap) {
    if let Some(observer) = &shared.software {
        observer.http_answer(
            &shared.config.upstream.authority,
            headers.get(header::SERVER).map(HeaderValue::as_bytes),
            headers.get("x-powered-by").map(HeaderValue::as_bytes),
        );
    }
}

/// The 403 page for a client with a ban in force, logged once.
fn refuse_banned(
    config: &crate::config::ProxyConfig,
    request_id: &str,
    client: IpAddr,
    judgement: &palisade_pipeline::Judgement,
) -> (&'static str, Response<ProxyBody>) {
    tracing::info!(
        message = "Request from a banned client refused.",
        proxy = %config.name,
        request_id = %request_id,
        client = %client,
        decision = judgement.ban.as_ref().map_or(0, |b| b.id),
    );
    (Action::Ban.as_str(), page::blocked(request_id))
}
