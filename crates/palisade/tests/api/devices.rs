//! The device inventory over the real service: a generated capture (a DHCP request
//! naming a NAS, the NAS opening SSH to the router and HTTP to a public server, an
//! unanswered ARP sweep) imported with a live bus; the devices listed and filtered, one
//! read with its flows, flows filtered by device and by threat, flow analytics, and the
//! `flows` / `devices` topics carrying what was stored. On SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_flows::reader::{PcapWriter, tcp_frame, udp_frame, with_macs};
use palisade_flows::{FlowConfig, import::import_capture};
use palisade_live::{Bus, BusConfig, Next, Topic};

use crate::helpers::{
    TestApp, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with, test_settings,
};

const NAS: [u8; 6] = [0x00, 0x11, 0x32, 0x17, 0x49, 0xf0];
const ROUTER: [u8; 6] = [0x00, 0x00, 0x0c, 0x01, 0x02, 0x03];
const BCAST: [u8; 6] = [0xff; 6];

fn dhcp_request() -> Vec<u8> {
    let mut m = vec![1, 1, 6, 0];
    m.extend([0; 24]);
    m.extend(NAS);
    m.extend([0; 10 + 64 + 128]);
    m.extend([0x63, 0x82, 0x53, 0x63]);
    for (code, v) in [
        (53u8, &[3u8][..]),
        (50, &[192, 168, 7, 20]),
        (12, b"nas1\0"),
        (60, b"MSFT 5.0"),
    ] {
        m.push(code);
        m.push(v.len() as u8);
        m.extend(v);
    }
    m.push(255);
    m
}

fn capture(path: &std::path::Path) {
    let (nas, router, web) = ([192, 168, 7, 20], [192, 168, 7, 1], [198, 51, 100, 80]);
    let t0 = palisade_core::Timestamp::now().as_micros() - 60_000_000;
    let mut w = PcapWriter::new(std::fs::File::create(path).expect("create"), 1).expect("header");
    let frames = [
        with_macs(udp_frame([0, 0, 0, 0], [255; 4], 68, 67, &dhcp_request()), NAS, BCAST, 128),
        with_macs(tcp_frame(nas, router, 40_000, 22, 0x02, b""), NAS, ROUTER, 128),
        with_macs(tcp_frame(router, nas, 22, 40_000, 0x12, b""), ROUTER, NAS, 64),
        with_macs(tcp_frame(nas, router, 40_000, 22, 0x10, b""), NAS, ROUTER, 128),
        with_macs(tcp_frame(nas, web, 40_001, 80, 0x02, b""), NAS, ROUTER, 128),
        with_macs(tcp_frame(web, nas, 80, 40_001, 0x12, b""), ROUTER, NAS, 50),
        with_macs(
            tcp_frame(
                nas,
                web,
                40_001,
                80,
                0x18,
                b"GET /update/check?channel=stable&model=ds920 HTTP/1.1\r\nHost: upd.example\r\nUser-Agent: nas-updater/2\r\nAccept: application/json\r\n\r\n",
            ),
            NAS,
            ROUTER,
            128,
        ),
    ];
    for (i, f) in frames.iter().enumerate() {
        w.packet(t0 + i as i64 * 1_000, f).expect("write");
    }
    w.finish().expect("flush");
}

async fn devices_are_inventoried_filtered_and_published(app: &TestApp) {
    let path = app.dir.path().join("lan.pcap");
    capture(&path);
    let bus = Arc::new(Bus::new(BusConfig::default()));
    let mut sub = bus.subscribe(None);
    let summary = import_capture(
        path,
        "lan.pcap".into(),
        FlowConfig::default(),
        app.store.clone(),
        None,
        Some(bus.clone()),
    )
    .await
    .expect("import");
    assert_eq!(
        (summary.flows, summary.devices_changed),
        (3, 2),
        "{summary:?}"
    );

    // The bus carried each stored flow and each new device, with their ids.
    let mut topics = Vec::new();
    while topics.len() < 5 {
        match tokio::time::timeout(std::time::Duration::from_secs(5), sub.next()).await {
            Ok(Next::Message(m)) => {
                let v: serde_json::Value = serde_json::from_str(&m.json).expect("json");
                assert!(v["data"]["id"].as_i64().is_some(), "{v}");
                topics.push(m.topic.clone());
            }
            other => panic!("bus: {other:?}"),
        }
    }
    assert_eq!(topics.iter().filter(|t| **t == Topic::Flows).count(), 3);
    assert_eq!(topics.iter().filter(|t| **t == Topic::Devices).count(), 2);

    let (status, all) = app.get_json("/api/v1/devices").await;
    assert_eq!(status, 200, "{all}");
    let items = all["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        items.len(),
        2,
        "the NAS and the router, not the public server: {all}"
    );

    let (_, found) = app
        .get_json("/api/v1/devices?hostname=NAS&ip=192.168.7.0/24")
        .await;
    let found = found["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(found.len(), 1);
    let nas = &found[0];
    assert_eq!(nas["mac"], "00:11:32:17:49:f0");
    assert_eq!(nas["hostnames"][0], "nas1");
    assert_eq!(nas["os_guess"], "Windows", "DHCP vendor class MSFT 5.0");
    assert_eq!(nas["user_agents"][0], "nas-updater/2");
    assert_eq!(nas["ips"][0], "192.168.7.20");
    let (_, by_mac) = app.get_json("/api/v1/devices?mac=00-00-0C-01-02-03").await;
    let router = &by_mac["items"][0];
    assert_eq!(router["services"][0], "tcp/22 ssh");

    let id = nas["id"].as_i64().expect("id");
    let (status, one) = app.get_json(&format!("/api/v1/devices/{id}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["key"], "mac:00:11:32:17:49:f0");
    assert_eq!(one["flows"].as_array().map(Vec::len), Some(2), "{one}");
    assert_eq!(one["threats"].as_array().map(Vec::len), Some(0));
    let (status, _) = app.get_json("/api/v1/devices/999999").await;
    assert_eq!(status, 404);

    let (_, flows) = app
        .get_json(&format!("/api/v1/flows?device={id}&application=http"))
        .await;
    let flows = flows["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(flows.len(), 1);
    let http_flow = flows[0]["id"].as_i64().expect("flow id");

    // A threat raised over the HTTP flow: has_threat finds it, the device lists it.
    let threat = palisade_core::threat::Threat {
        tags: Vec::new(),
        ts: palisade_core::Timestamp::now(),
        category: "c2".into(),
        severity: "warning".parse().expect("severity"),
        score: 5,
        rule_ids: vec![970_660],
        client_ip: "192.168.7.20".parse().ok(),
        method: None,
        uri: None,
        source: "scenario".into(),
        event_id: None,
        decision: palisade_core::verdict::Action::Detect,
        evidence: vec![],
    };
    let tid = app.store.insert_threats(&[threat]).await.expect("threat")[0];
    app.store
        .link_flow_threats(&[(http_flow, tid)])
        .await
        .expect("link");
    let (_, with) = app.get_json("/api/v1/flows?has_threat=true").await;
    let with: Vec<i64> = with["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f["id"].as_i64())
        .collect();
    assert_eq!(with, vec![http_flow]);
    let (_, without) = app.get_json("/api/v1/flows?has_threat=false").await;
    assert_eq!(without["items"].as_array().map(Vec::len), Some(2));
    let (_, one) = app.get_json(&format!("/api/v1/devices/{id}")).await;
    assert_eq!(one["threats"][0]["id"], tid);

    let (status, a) = app
        .get_json("/api/v1/flows/analytics?range=1h&bucket=60&top=1")
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["top_talkers"][0]["key"], "192.168.7.20");
    assert_eq!(a["top_talkers"][0]["flows"], 2);
    assert_eq!(a["protocols"][0]["key"], "tcp");
    let buckets = a["over_time"].as_array().cloned().unwrap_or_default();
    let total: u64 = buckets.iter().filter_map(|b| b["flows"].as_u64()).sum();
    assert_eq!(total, 3);

    for (path, field) in [
        ("/api/v1/devices?mac=zz", "mac"),
        ("/api/v1/devices?ip=300.1.1.1", "ip"),
        ("/api/v1/devices?colour=red", "colour"),
        ("/api/v1/flows?device=x", "device"),
        ("/api/v1/flows?has_threat=maybe", "has_threat"),
        ("/api/v1/flows/analytics?bucket=0", "bucket"),
        ("/api/v1/flows/analytics?range=30d&bucket=1", "bucket"),
        ("/api/v1/flows/analytics?top=500", "top"),
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status().as_u16(), 400, "{path}");
        let body = resp.text().await.unwrap_or_default();
        assert!(body.contains(&format!("\"{field}\"")), "{path}: {body}");
    }
}

async fn spawn_on(database_url: Option<String>) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(&dir, database_url);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    app
}

#[tokio::test]
async fn devices_are_inventoried_filtered_and_published_sqlite() {
    let app = spawn_on(None).await;
    devices_are_inventoried_filtered_and_published(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn devices_are_inventoried_filtered_and_published_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let app = spawn_on(Some(url)).await;
    devices_are_inventoried_filtered_and_published(&app).await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}
