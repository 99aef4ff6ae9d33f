//! Flows as pipeline events (`kind = "flow"`), so the behaviour scenarios see them like
//! any log line: the originator is the client, the responder and the outcome are
//! `extra` fields the scenario filters and groups use (`dst_ip`, `dst_port`, `state`,
//! `app`, `probe`).

use palisade_core::event::{Event, EventKind};
use palisade_core::time::Timestamp;

use crate::flow::FlowRecord;

/// The event of a finished flow.
pub fn flow_event(f: &FlowRecord, source: &str) -> Event {
    let app = f.app.protocol.clone().unwrap_or_default();
    let host = f
        .app
        .http_host
        .clone()
        .or_else(|| f.app.tls_sni.clone())
        .or_else(|| f.app.dns_query.clone());
    let mut extra = vec![
        ("dst_ip".to_string(), f.dst_ip.to_string()),
        ("dst_port".to_string(), f.dst_port.to_string()),
        ("state".to_string(), f.state.clone()),
        ("transport".to_string(), f.protocol.clone()),
        (
            "probe".to_string(),
            if f.is_probe() { "true" } else { "false" }.to_string(),
        ),
    ];
    if !app.is_empty() {
        extra.push(("app".to_string(), app.clone()));
    }
    if let Some(ja3) = &f.app.ja3 {
        extra.push(("ja3".to_string(), ja3.clone()));
    }
    Event {
        ts: Timestamp(f.start_us),
        kind: EventKind::Flow,
        source: source.to_string(),
        client_ip: Some(f.src_ip),
        host,
        method: f.app.http_method.clone(),
        path: f.app.http_path.clone(),
        protocol: Some(f.protocol.clone()),
        status: f.app.http_status,
        bytes: Some(f.orig.bytes + f.resp.bytes),
        user_agent: f.app.http_user_agent.clone(),
        duration_us: u64::try_from(f.duration_us()).ok(),
        message: Some(format!(
            "{} {}:{} -> {}:{} {} {}",
            f.protocol,
            f.src_ip,
            f.src_port,
            f.dst_ip,
            f.dst_port,
            f.state,
            if app.is_empty() { "-" } else { &app }
        )),
        extra,
        ..Event::default()
    }
}
