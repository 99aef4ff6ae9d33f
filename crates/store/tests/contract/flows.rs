//! The flow contract: flows stored in one go, listed newest first with every filter
//! (time, address or network on either side, port, protocol, application, state) and
//! keyset pages, and read back by id with their JSON detail intact.

use std::net::IpAddr;

use palisade_core::Timestamp;
use palisade_store::{FlowQuery, NewFlow};

use crate::harness::{Db, T0, contract};

contract!(flows_round_trip_and_filter, flows_page_by_keyset);

fn flow(
    at: i64,
    src: &str,
    dst: &str,
    dport: u16,
    proto: &str,
    app: Option<&str>,
    state: &str,
) -> NewFlow {
    NewFlow {
        start: Timestamp(T0 + at),
        end: Timestamp(T0 + at + 1_500),
        source: "capture.pcap".into(),
        protocol: proto.into(),
        src_ip: src.parse::<IpAddr>().unwrap(),
        src_port: 40_000,
        dst_ip: dst.parse::<IpAddr>().unwrap(),
        dst_port: dport,
        orig_packets: 3,
        orig_bytes: 180,
        resp_packets: 2,
        resp_bytes: u64::MAX,
        orig_flags: 0x1b,
        resp_flags: 0x12,
        state: state.into(),
        app: app.map(Into::into),
        app_by_port: false,
        detail: serde_json::json!({"tls_sni": "example.com", "ja3": "abc"}),
    }
}

async fn flows_round_trip_and_filter(db: Db) {
    let s = &db.store;
    let flows = vec![
        flow(0, "10.0.0.1", "10.0.0.2", 443, "tcp", Some("tls"), "SF"),
        flow(10, "10.0.0.1", "192.168.1.5", 22, "tcp", Some("ssh"), "REJ"),
        flow(20, "2001:db8::1", "10.0.0.1", 53, "udp", Some("dns"), "SF"),
        flow(30, "172.16.0.9", "172.16.0.10", 8000, "tcp", None, "S0"),
    ];
    assert_eq!(s.insert_flows(&flows).await.unwrap().len(), 4);
    let all = s
        .list_flows(&FlowQuery {
            limit: 10,
            ..FlowQuery::default()
        })
        .await
        .unwrap();
    let ports: Vec<u16> = all.items.iter().map(|f| f.flow.dst_port).collect();
    assert_eq!(ports, vec![8000, 53, 22, 443], "newest first");
    // u64::MAX does not fit a BIGINT: it is stored saturated.
    assert_eq!(all.items[3].flow.resp_bytes, i64::MAX as u64);
    assert_eq!(all.items[3].flow.detail, flows[0].detail);
    let one = s.get_flow(all.items[3].id).await.unwrap().unwrap();
    assert_eq!(one.flow.app.as_deref(), Some("tls"));
    assert_eq!(one.flow.orig_flags, 0x1b);
    assert!(s.get_flow(i64::MAX).await.unwrap().is_none());

    let count = |q: FlowQuery| async move {
        let page = s.list_flows(&FlowQuery { limit: 10, ..q }).await.unwrap();
        let mut p: Vec<u16> = page.items.iter().map(|f| f.flow.dst_port).collect();
        p.sort_unstable();
        p
    };
    // Either side of the flow matches an address filter.
    assert_eq!(
        count(FlowQuery {
            ip: "10.0.0.1".parse().ok(),
            ..FlowQuery::default()
        })
        .await,
        vec![22, 53, 443]
    );
    assert_eq!(
        count(FlowQuery {
            ip: "192.168.0.0/16".parse().ok(),
            ..FlowQuery::default()
        })
        .await,
        vec![22]
    );
    assert_eq!(
        count(FlowQuery {
            ip: "2001:db8::/32".parse().ok(),
            ..FlowQuery::default()
        })
        .await,
        vec![53]
    );
    assert_eq!(
        count(FlowQuery {
            port: Some(40_000),
            ..FlowQuery::default()
        })
        .await,
        vec![22, 53, 443, 8000]
    );
    assert_eq!(
        count(FlowQuery {
            port: Some(22),
            ..FlowQuery::default()
        })
        .await,
        vec![22]
    );
    assert_eq!(
        count(FlowQuery {
            protocol: Some("udp".into()),
            ..FlowQuery::default()
        })
        .await,
        vec![53]
    );
    assert_eq!(
        count(FlowQuery {
            app: Some("tls".into()),
            ..FlowQuery::default()
        })
        .await,
        vec![443]
    );
    assert_eq!(
        count(FlowQuery {
            state: Some("S0".into()),
            ..FlowQuery::default()
        })
        .await,
        vec![8000]
    );
    let window = FlowQuery {
        from: Some(Timestamp(T0 + 10)),
        to: Some(Timestamp(T0 + 30)),
        ..FlowQuery::default()
    };
    assert_eq!(count(window).await, vec![22, 53]);
}

async fn flows_page_by_keyset(db: Db) {
    let s = &db.store;
    // Several flows share a start time: the id breaks the tie.
    let flows: Vec<NewFlow> = (0..25)
        .map(|i| flow(i / 3, "10.1.0.1", "10.1.0.2", i as u16, "tcp", None, "S0"))
        .collect();
    s.insert_flows(&flows).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list_flows(&FlowQuery {
                limit: 7,
                cursor,
                ..FlowQuery::default()
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|f| f.flow.dst_port));
        match page.next_cursor {
            Some(c) => cursor = palisade_store::Cursor::decode(&c),
            None => break,
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..25).collect::<Vec<u16>>());
}
