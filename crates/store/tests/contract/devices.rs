//! The device contract: observations merged into one device per key (sets grow, times
//! widen), found by address/CIDR, MAC, vendor, host name and OS with keyset pages; a
//! device's flows through the flow `device` filter; flow ↔ threat links behind the
//! `has_threat` filter and a device's threats; flow analytics computed in the database.

use palisade_core::Timestamp;
use palisade_store::{Device, DeviceQuery, FlowAnalyticsQuery, FlowQuery, NewFlow};

use crate::harness::{Db, T0, contract};

contract!(devices_merge_and_filter, device_flows_threats_and_analytics);

fn device(key: &str, at: i64, ip: &str) -> Device {
    let mut d = Device::new(key.into(), Timestamp(T0 + at));
    d.ips = vec![ip.parse().unwrap()];
    d.flows = 1;
    d
}

async fn devices_merge_and_filter(db: Db) {
    let s = &db.store;
    let mut nas = device("mac:00:11:32:17:49:f0", 0, "192.168.1.20");
    nas.mac = Some("00:11:32:17:49:f0".into());
    nas.vendor = Some("Synology Incorporated".into());
    nas.hostnames = vec!["nas1".into()];
    nas.os_guess = Some("Linux".into());
    let phone = device("mac:f0:18:98:00:00:01", 10, "192.168.1.30");
    let remote = device("ip:10.9.9.9", 20, "10.9.9.9");
    let changed = s
        .upsert_devices(&[nas.clone(), phone.clone(), remote.clone()])
        .await
        .unwrap();
    assert_eq!(changed.len(), 3, "new devices are changes");

    // The same NAS again: a second address and a later time, one row still.
    let mut again = device("mac:00:11:32:17:49:f0", 100, "192.168.1.21");
    again.user_agents = vec!["curl/8".into()];
    let changed = s.upsert_devices(&[again]).await.unwrap();
    assert_eq!(changed.len(), 1);
    let merged = &changed[0].device;
    assert_eq!(merged.ips.len(), 2);
    assert_eq!(
        (merged.first_seen, merged.last_seen, merged.flows),
        (Timestamp(T0), Timestamp(T0 + 100), 2)
    );
    // Seen again with nothing new: stored, but no change to announce.
    let changed = s
        .upsert_devices(&[device("ip:10.9.9.9", 200, "10.9.9.9")])
        .await
        .unwrap();
    assert!(changed.is_empty());

    let list = |q: DeviceQuery| async move {
        let page = s
            .list_devices(&DeviceQuery { limit: 10, ..q })
            .await
            .unwrap();
        page.items
            .into_iter()
            .map(|d| d.device.key)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(DeviceQuery::default()).await,
        vec![
            "ip:10.9.9.9",
            "mac:00:11:32:17:49:f0",
            "mac:f0:18:98:00:00:01"
        ],
        "most recently seen first"
    );
    assert_eq!(
        list(DeviceQuery {
            ip: "192.168.1.21".parse().ok(),
            ..DeviceQuery::default()
        })
        .await,
        vec!["mac:00:11:32:17:49:f0"]
    );
    assert_eq!(
        list(DeviceQuery {
            ip: "192.168.0.0/16".parse().ok(),
            ..DeviceQuery::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        list(DeviceQuery {
            vendor: Some("synology".into()),
            ..DeviceQuery::default()
        })
        .await,
        vec!["mac:00:11:32:17:49:f0"]
    );
    assert_eq!(
        list(DeviceQuery {
            hostname: Some("NAS".into()),
            ..DeviceQuery::default()
        })
        .await,
        vec!["mac:00:11:32:17:49:f0"]
    );
    assert_eq!(
        list(DeviceQuery {
            mac: Some("f0:18:98:00:00:01".into()),
            ..DeviceQuery::default()
        })
        .await
        .len(),
        0,
        "the phone's MAC was never recorded, only its key"
    );
    assert_eq!(
        list(DeviceQuery {
            os: Some("linux".into()),
            ..DeviceQuery::default()
        })
        .await,
        vec!["mac:00:11:32:17:49:f0"]
    );
    assert_eq!(
        list(DeviceQuery {
            hostname: Some("%".into()),
            ..DeviceQuery::default()
        })
        .await
        .len(),
        0,
        "wildcards are literal"
    );
    // Keyset pages of one.
    let first = s
        .list_devices(&DeviceQuery {
            limit: 1,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    let cursor = palisade_store::Cursor::decode(first.next_cursor.as_deref().unwrap());
    let second = s
        .list_devices(&DeviceQuery {
            limit: 1,
            cursor,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(second.items[0].device.key, "mac:00:11:32:17:49:f0");
    let id = second.items[0].id;
    let one = s.get_device(id).await.unwrap().unwrap();
    assert_eq!(one.device.user_agents, vec!["curl/8".to_string()]);
    assert_eq!(one.device.vendor.as_deref(), Some("Synology Incorporated"));
    assert!(s.get_device(i64::MAX).await.unwrap().is_none());
}

fn flow(at: i64, src: &str, dst: &str, app: &str, bytes: u64) -> NewFlow {
    NewFlow {
        start: Timestamp(T0 + at),
        end: Timestamp(T0 + at + 10),
        source: "c.pcap".into(),
        protocol: "tcp".into(),
        src_ip: src.parse().unwrap(),
        src_port: 40_000,
        dst_ip: dst.parse().unwrap(),
        dst_port: 443,
        orig_packets: 2,
        orig_bytes: bytes,
        resp_packets: 1,
        resp_bytes: 100,
        orig_flags: 0,
        resp_flags: 0,
        state: "SF".into(),
        app: (!app.is_empty()).then(|| app.to_string()),
        app_by_port: false,
        detail: serde_json::json!({}),
    }
}

async fn device_flows_threats_and_analytics(db: Db) {
    let s = &db.store;
    let ids = s
        .insert_flows(&[
            flow(0, "192.168.1.20", "203.0.113.5", "tls", 1_000),
            flow(60_000_000, "192.168.1.30", "203.0.113.5", "", 50),
            flow(61_000_000, "203.0.113.9", "192.168.1.20", "http", 400),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "ids in order");
    let changed = s
        .upsert_devices(&[device("mac:00:11:32:17:49:f0", 0, "192.168.1.20")])
        .await
        .unwrap();
    let nas = changed[0].id;
    let flows_of = |q: FlowQuery| async move {
        let page = s.list_flows(&FlowQuery { limit: 10, ..q }).await.unwrap();
        let mut got: Vec<i64> = page.items.iter().map(|f| f.id).collect();
        got.sort_unstable();
        got
    };
    assert_eq!(
        flows_of(FlowQuery {
            device: Some(nas),
            ..FlowQuery::default()
        })
        .await,
        vec![ids[0], ids[2]],
        "either side at one of the device's addresses"
    );

    let threat = palisade_core::threat::Threat {
        tags: Vec::new(),
        ts: Timestamp(T0),
        category: "scan".into(),
        severity: "warning".parse().unwrap(),
        score: 5,
        rule_ids: vec![970_600],
        client_ip: None,
        method: None,
        uri: None,
        source: "scenario".into(),
        event_id: None,
        decision: palisade_core::verdict::Action::Detect,
        evidence: vec![],
    };
    let threat_ids = s.insert_threats(&[threat.clone(), threat]).await.unwrap();
    s.link_flow_threats(&[
        (ids[2], threat_ids[0]),
        (ids[2], threat_ids[1]),
        (ids[2], threat_ids[0]),
    ])
    .await
    .unwrap();
    assert_eq!(
        flows_of(FlowQuery {
            has_threat: Some(true),
            ..FlowQuery::default()
        })
        .await,
        vec![ids[2]]
    );
    assert_eq!(
        flows_of(FlowQuery {
            has_threat: Some(false),
            ..FlowQuery::default()
        })
        .await,
        vec![ids[0], ids[1]]
    );
    assert_eq!(
        s.flow_threat_ids(ids[2]).await.unwrap(),
        vec![threat_ids[1], threat_ids[0]]
    );
    assert_eq!(
        s.device_threat_ids(nas, 10).await.unwrap(),
        vec![threat_ids[1], threat_ids[0]]
    );
    assert_eq!(
        s.device_threat_ids(nas, 1).await.unwrap(),
        vec![threat_ids[1]]
    );

    let a = s
        .flow_analytics(&FlowAnalyticsQuery {
            from: Timestamp(T0),
            to: Timestamp(T0 + 3_600_000_000),
            bucket_secs: 60,
            top: 2,
        })
        .await
        .unwrap();
    let talkers: Vec<(&str, u64, u64)> = a
        .top_talkers
        .iter()
        .map(|t| (t.key.as_str(), t.flows, t.bytes))
        .collect();
    assert_eq!(
        talkers,
        vec![("192.168.1.20", 2, 1_600), ("203.0.113.5", 2, 1_250)]
    );
    assert_eq!(a.protocols.len(), 1);
    assert_eq!((a.protocols[0].flows, a.protocols[0].packets), (3, 9));
    let apps: Vec<(&str, u64)> = a
        .applications
        .iter()
        .map(|t| (t.key.as_str(), t.bytes))
        .collect();
    assert_eq!(apps, vec![("tls", 1_100), ("http", 500)], "top 2 by bytes");
    let buckets: Vec<(String, u64)> = a
        .over_time
        .iter()
        .map(|t| (t.key.clone(), t.flows))
        .collect();
    let bucket = |t: i64| Timestamp(t.div_euclid(60_000_000) * 60_000_000).to_string();
    assert_eq!(
        buckets,
        vec![(bucket(T0), 1), (bucket(T0 + 60_000_000), 2)],
        "T0 + 60 s and T0 + 61 s share a minute"
    );
}
