//! Flows as pipeline events (`kind = "flow"`), so the behaviour scenarios see them like
//! any log line: the originator is the client, the responder and the outcome are
//! `extra` fields the scenario filters and groups use (`dst_ip`, `dst_port`, `state`,
//! `app`, `probe`; for DNS flows `dns_queries`, and `dns_suspect`, `dns_suspicious`,
//! `dns_domain`, `dns_tunnel` when queries looked like tunnelled data). The importer adds
//! `flow_id` (the stored flow) and, for a regular series, `beacon` (see `beacon`).

use palisade_core::event::{Event, EventKind};
use palisade_core::time::Timestamp;

use crate::flow::FlowRecord;

/// Data-like DNS queries in one flow that make it a tunnel (`dns_tunnel = "true"`).
pub const DNS_TUNNEL_QUERIES: u32 = 20;

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
    if let Some(hassh) = &f.app.hassh {
        extra.push(("hassh".to_string(), hassh.clone()));
    }
    if f.app.dns_queries > 0 {
        extra.push(("dns_queries".to_string(), f.app.dns_queries.to_string()));
    }
    if f.app.dns_suspicious > 0 {
        extra.push(("dns_suspect".to_string(), "true".to_string()));
        extra.push((
            "dns_suspicious".to_string(),
            f.app.dns_suspicious.to_string(),
        ));
        if let Some(d) = &f.app.dns_domain {
            extra.push(("dns_domain".to_string(), d.clone()));
        }
        if f.app.dns_suspicious >= DNS_TUNNEL_QUERIES {
            extra.push(("dns_tunnel".to_string(), "true".to_string()));
        }
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

/// The HTTP request a flow carried (its first one), as an `http` event, so the signature
/// stage judges it like a logged request (SQL injection, traversal … inside captures).
/// `None` when the flow held no HTTP request.
pub fn http_event(f: &FlowRecord, source: &str) -> Option<Event> {
    let method = f.app.http_method.clone()?;
    let target = f.app.http_path.clone()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target, None),
    };
    Some(Event {
        ts: Timestamp(f.start_us),
        kind: EventKind::Http,
        source: source.to_string(),
        client_ip: Some(f.src_ip),
        host: f.app.http_host.clone(),
        method: Some(method),
        path: Some(path),
        query,
        protocol: Some("HTTP/1.1".to_string()),
        status: f.app.http_status,
        user_agent: f.app.http_user_agent.clone(),
        extra: vec![(
            "flow".to_string(),
            format!("{}:{} -> {}:{}", f.src_ip, f.src_port, f.dst_ip, f.dst_port),
        )],
        ..Event::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::DirStats;

    fn record() -> FlowRecord {
        FlowRecord {
            start_us: 5,
            end_us: 9,
            protocol: "tcp".into(),
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: 40000,
            dst_ip: "10.0.0.2".parse().unwrap(),
            dst_port: 80,
            orig: DirStats::default(),
            resp: DirStats::default(),
            state: "SF".into(),
            end_reason: "closed".into(),
            app: crate::app::AppInfo::default(),
            src_mac: None,
            dst_mac: None,
        }
    }

    #[test]
    fn flow_event_fields_the_scenarios_read() {
        let e = flow_event(&record(), "cap");
        let get = |k: &str| {
            e.extra
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            (e.kind, get("dst_port"), get("state"), get("transport")),
            (EventKind::Flow, Some("80"), Some("SF"), Some("tcp"))
        );
        assert_eq!(
            get("probe"),
            Some("false"),
            "a completed exchange is no probe"
        );
        let mut refused = record();
        refused.state = "REJ".into();
        let e = flow_event(&refused, "cap");
        assert!(e.extra.contains(&("probe".to_string(), "true".to_string())));
        assert!(http_event(&record(), "cap").is_none());
    }

    #[test]
    fn dns_tunnel_fields() {
        let mut f = record();
        f.app.dns_queries = 222;
        f.app.dns_suspicious = 210;
        f.app.dns_domain = Some("pirate.sea".into());
        let e = flow_event(&f, "cap");
        for (k, v) in [
            ("dns_suspect", "true"),
            ("dns_tunnel", "true"),
            ("dns_domain", "pirate.sea"),
        ] {
            assert!(e.extra.contains(&(k.to_string(), v.to_string())), "{k}");
        }
        f.app.dns_suspicious = DNS_TUNNEL_QUERIES - 1;
        let e = flow_event(&f, "cap");
        assert!(!e.extra.iter().any(|(k, _)| k == "dns_tunnel"));
    }

    #[test]
    fn http_request_becomes_a_request_event() {
        let mut f = record();
        f.app.http_method = Some("GET".into());
        f.app.http_path = Some("/dvwa/?id=1%27+or+1%3D1".into());
        f.app.http_host = Some("victim".into());
        let e = http_event(&f, "cap").unwrap();
        assert_eq!(
            (e.kind, e.path.as_deref(), e.query.as_deref()),
            (EventKind::Http, Some("/dvwa/"), Some("id=1%27+or+1%3D1"))
        );
        assert_eq!(e.client_ip, Some(f.src_ip));
    }
}
