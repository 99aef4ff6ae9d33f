//! `GET /api/v1/ws`: the live feed over a WebSocket.
//!
//! Browsers cannot put a token on a WebSocket, so the client first trades its token for
//! a single-use ticket (`POST /api/v1/auth/ws-ticket`) and opens
//! `/api/v1/ws?ticket=…[&since=N]`. It then sends `{"subscribe": ["threats", …]}` (and
//! `{"unsubscribe": […]}`) and receives `{"seq":N,"topic":"…","data":{…}}` for the
//! topics it follows; control answers (`topic` `control`, `gap`, `error`) carry
//! `"seq": null`. The server pings every 20 s and drops a peer silent for 60 s. A
//! client too slow for the bus's buffer is closed with code 1008 and the reason
//! `too slow: …` (reconnect with `since` to catch up): nobody else waits for it.
//!
//! Batched frames (`&batch=true`): when more than one message is already waiting for
//! a client, they go in one text frame holding a JSON array of the same messages
//! (`[{"seq":N,…},{"seq":N+1,…}]`, in order, each with its own `seq`); a lone message
//! is still a single object. One frame and one write instead of dozens is what keeps
//! a burst fanned out to a thousand clients fast. Without the flag every message is
//! its own frame, as before.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use palisade_core::metrics::registry;
use palisade_live::{Message, Next, Topic};
use serde::Deserialize;

use crate::AppState;
use crate::problem::Problem;

/// How often the server pings.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A peer that sends nothing (not even a pong) for this long is dropped.
const SILENT_FOR: Duration = Duration::from_secs(60);
/// Longest a single send may take before the client counts as stalled.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Most topics one client may follow.
const MAX_TOPICS: usize = 64;
/// Most messages in one batched frame.
const MAX_PER_FRAME: usize = 256;
/// A batched frame stops growing past this many bytes.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Query of the upgrade request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// The single-use ticket from `POST /api/v1/auth/ws-ticket`.
    pub ticket: String,
    /// The last `seq` this client saw: what came after it is sent first (once the
    /// client has subscribed to something).
    pub since: Option<u64>,
    /// Topics to follow from the start, comma-separated (the same as a first
    /// `{"subscribe": […]}` message).
    pub topics: Option<String>,
    /// `true`: messages already waiting together are sent as one frame holding a JSON
    /// array of them (each keeps its `seq`); a lone message stays a single object.
    pub batch: Option<bool>,
}

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    unsubscribe: Vec<String>,
}

/// Opens the live feed (WebSocket upgrade). Topics: alerts, threats, traffic,
/// activities, metrics, jobs, `job:<id>`, flows, devices; given in `topics=` or in a
/// `{"subscribe": […]}` message. With `since`, what was published after it is sent
/// first (or a `gap` notice when the replay buffer no longer holds it).
#[utoipa::path(get, path = "/api/v1/ws", tag = "live", params(LiveQuery), responses(
    (status = 101, description = "Switching to the WebSocket feed"),
    (status = 400, description = "Not a WebSocket request", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Missing, used or expired ticket", body = Problem, content_type = "application/problem+json"),
))]
pub async fn ws(
    State(state): State<AppState>,
    query: Result<Query<LiveQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return Problem::invalid("ticket", e.body_text()).into_response(),
    };
    let Some(principal) = state.auth.tickets.redeem(&query.ticket) else {
        return Problem::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "ticket: unknown, already used or expired; get one from POST /api/v1/auth/ws-ticket",
        )
        .into_response();
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            return Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("not a WebSocket upgrade: {e}"),
            )
            .into_response();
        }
    };
    tracing::debug!(message = "Live feed client connected.", who = %principal.actor());
    let bus = state.pipeline.live.clone();
    let since = query.since;
    let batch = query.batch.unwrap_or(false);
    let mut topics = HashSet::new();
    for name in query.topics.as_deref().unwrap_or("").split(',') {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        match name.parse::<Topic>() {
            Ok(t) if topics.len() < MAX_TOPICS => {
                topics.insert(t);
            }
            Ok(_) => {
                return Problem::invalid("topics", format!("at most {MAX_TOPICS}")).into_response();
            }
            Err(e) => return Problem::invalid("topics", e.to_string()).into_response(),
        }
    }
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| feed(socket, bus, since, topics, batch))
}

fn control(kind: &str, data: serde_json::Value) -> WsMessage {
    WsMessage::Text(Utf8Bytes::from(
        serde_json::json!({"seq": null, "topic": kind, "data": data}).to_string(),
    ))
}

/// Why a client's feed ends, seen while taking messages from the bus.
enum Stop {
    Lagged(u64),
    Closed,
}

/// Keeps a message for the client when it follows its topic; says when to stop.
fn take(next: Next, topics: &HashSet<Topic>, out: &mut Vec<Arc<Message>>) -> Option<Stop> {
    match next {
        Next::Message(m) => {
            if topics.contains(&m.topic) {
                out.push(m);
            }
            None
        }
        Next::Lagged(n) => Some(Stop::Lagged(n)),
        Next::Closed => Some(Stop::Closed),
    }
}

/// One frame for the messages: the message itself when alone, else a JSON array of
/// them in order.
fn frame(messages: &[Arc<Message>]) -> Utf8Bytes {
    match messages {
        [one] => Utf8Bytes::from(&*one.json),
        many => {
            let len = many.iter().map(|m| m.json.len() + 1).sum::<usize>() + 1;
            let mut text = String::with_capacity(len);
            text.push('[');
            for (i, m) in many.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&m.json);
            }
            text.push(']');
            Utf8Bytes::from(text)
        }
    }
}

/// Serves one client until it leaves, stalls or falls behind.
async fn feed(
    mut socket: WebSocket,
    bus: Arc<palisade_live::Bus>,
    since: Option<u64>,
    mut topics: HashSet<Topic>,
    batch: bool,
) {
    let slow = registry().counter(
        "palisade_live_clients_dropped_total",
        "Live feed clients disconnected, by reason.",
        &["reason"],
        &["slow"],
    );
    let mut sub = bus.subscribe(since);
    if let Some(gap) = sub.gap() {
        let msg = control(
            "gap",
            serde_json::json!({
                "since": gap.since,
                "oldest": gap.oldest,
                "detail": "what came after `since` is older than the replay buffer holds; reload the pages' data from the API",
            }),
        );
        if socket.send(msg).await.is_err() {
            return;
        }
    }
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            // Nothing is taken from the bus (the replay backlog included) until the
            // client follows a topic, so a reconnect's backlog is not skipped.
            next = sub.next(), if !topics.is_empty() => {
                let mut out = Vec::new();
                let mut stop = take(next, &topics, &mut out);
                if batch {
                    // What is already waiting goes in the same frame.
                    let mut bytes = out.iter().map(|m| m.json.len()).sum::<usize>();
                    while stop.is_none() && out.len() < MAX_PER_FRAME && bytes < MAX_FRAME_BYTES {
                        let Some(next) = sub.try_next() else { break };
                        let before = out.len();
                        stop = take(next, &topics, &mut out);
                        if out.len() > before {
                            bytes += out.last().map_or(0, |m| m.json.len());
                        }
                    }
                }
                if !out.is_empty() {
                    let send = socket.send(WsMessage::Text(frame(&out)));
                    match tokio::time::timeout(SEND_TIMEOUT, send).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            slow.inc();
                            close(&mut socket, "too slow: sending stalled; reconnect with since").await;
                            return;
                        }
                    }
                }
                match stop {
                    None => {}
                    Some(Stop::Lagged(n)) => {
                        slow.inc();
                        close(&mut socket, &format!("too slow: {n} messages behind; reconnect with since")).await;
                        return;
                    }
                    Some(Stop::Closed) => {
                        close(&mut socket, "server shutting down").await;
                        return;
                    }
                }
            },
            incoming = socket.recv() => {
                let Some(Ok(incoming)) = incoming else { return };
                heard = Instant::now();
                match incoming {
                    WsMessage::Text(text) => {
                        let answer = apply(&text, &mut topics);
                        if socket.send(answer).await.is_err() {
                            return;
                        }
                    }
                    WsMessage::Close(_) => return,
                    _ => {}
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    close(&mut socket, "no answer to pings").await;
                    return;
                }
                if socket.send(WsMessage::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Applies a subscribe/unsubscribe message; returns the answer to send.
fn apply(text: &str, topics: &mut HashSet<Topic>) -> WsMessage {
    let msg: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            return control(
                "error",
                serde_json::json!({"detail": format!("send {{\"subscribe\": [\"threats\", …]}}: {e}")}),
            );
        }
    };
    let mut bad = Vec::new();
    for name in &msg.subscribe {
        match name.parse::<Topic>() {
            Ok(t) if topics.len() < MAX_TOPICS => {
                topics.insert(t);
            }
            Ok(_) => bad.push(format!("{name}: at most {MAX_TOPICS} topics")),
            Err(e) => bad.push(e.to_string()),
        }
    }
    for name in &msg.unsubscribe {
        if let Ok(t) = name.parse::<Topic>() {
            topics.remove(&t);
        }
    }
    let mut list: Vec<String> = topics.iter().map(ToString::to_string).collect();
    list.sort();
    if bad.is_empty() {
        control("control", serde_json::json!({"subscribed": list}))
    } else {
        control(
            "error",
            serde_json::json!({"subscribed": list, "detail": bad.join("; ")}),
        )
    }
}

async fn close(socket: &mut WebSocket, reason: &str) {
    let frame = CloseFrame {
        code: 1008,
        reason: Utf8Bytes::from(reason.to_owned()),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        socket.send(WsMessage::Close(Some(frame))),
    )
    .await;
}
