//! Flows over the real service: a generated capture (an nmap-style SYN scan of 30 closed
//! ports, one HTTP exchange) imported through `palisade_flows::import`, then listed
//! with every filter, paged, read by id, and bad parameters answered with a problem
//! naming the parameter. On SQLite and PostgreSQL.

use palisade_flows::reader::{PcapWriter, tcp_frame};
use palisade_flows::{FlowConfig, import::import_capture};

use crate::helpers::{
    TestApp, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres, spawn_with, test_settings,
};

const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const RST_ACK: u8 = 0x14;
const FIN_ACK: u8 = 0x11;

/// Writes the capture: 30 refused SYNs from 10.9.0.66, then one full HTTP exchange
/// from 10.9.0.5, times within the last minute.
fn capture(path: &std::path::Path) {
    let scanner = [10, 9, 0, 66];
    let client = [10, 9, 0, 5];
    let server = [10, 9, 0, 1];
    let t0 = palisade_core::Timestamp::now().as_micros() - 60_000_000;
    let mut w = PcapWriter::new(std::fs::File::create(path).expect("create"), 1).expect("header");
    let mut t = t0;
    for port in 1000..1030u16 {
        w.packet(t, &tcp_frame(scanner, server, 55_555, port, SYN, b""))
            .expect("write");
        w.packet(
            t + 50,
            &tcp_frame(server, scanner, port, 55_555, RST_ACK, b""),
        )
        .expect("write");
        t += 1_000;
    }
    let req =
        b"GET /index.html HTTP/1.1\r\nHost: intranet.example\r\nUser-Agent: test-agent/1\r\n\r\n";
    let res = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for (from_client, flags, payload) in [
        (true, SYN, &b""[..]),
        (false, SYN_ACK, &b""[..]),
        (true, ACK, &b""[..]),
        (true, PSH_ACK, &req[..]),
        (false, PSH_ACK, &res[..]),
        (true, FIN_ACK, &b""[..]),
        (false, FIN_ACK, &b""[..]),
        (true, ACK, &b""[..]),
    ] {
        let frame = if from_client {
            tcp_frame(client, server, 40_000, 80, flags, payload)
        } else {
            tcp_frame(server, client, 80, 40_000, flags, payload)
        };
        w.packet(t, &frame).expect("write");
        t += 100;
    }
    w.finish().expect("flush");
}

async fn flows_are_listed_filtered_and_paged(app: &TestApp) {
    let path = app.dir.path().join("scan.pcap");
    capture(&path);
    let summary = import_capture(
        path,
        "scan.pcap".into(),
        FlowConfig::default(),
        app.store.clone(),
        None,
        None,
    )
    .await
    .expect("import");
    assert_eq!(
        (
            summary.stats.packets,
            summary.flows,
            summary.stats.malformed()
        ),
        (68, 31, 0)
    );

    let (status, all) = app.get_json("/api/v1/flows?range=1h&limit=1000").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["items"].as_array().map(Vec::len), Some(31));

    let (_, rej) = app.get_json("/api/v1/flows?state=REJ&ip=10.9.0.66").await;
    let rej = rej["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(rej.len(), 30);
    assert!(
        rej.iter().all(|f| f["src_ip"] == "10.9.0.66"
            && f["protocol"] == "tcp"
            && f["resp_packets"] == 1)
    );

    let (_, http) = app
        .get_json("/api/v1/flows?application=http&port=80&protocol=tcp&ip=10.9.0.0/24")
        .await;
    let http = http["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(http.len(), 1, "{http:?}");
    let f = &http[0];
    assert_eq!(
        (
            f["state"].as_str(),
            f["src_ip"].as_str(),
            f["app_by_port"].as_bool()
        ),
        (Some("SF"), Some("10.9.0.5"), Some(false))
    );
    assert_eq!(f["detail"]["http_host"], "intranet.example");
    assert_eq!(f["detail"]["http_path"], "/index.html");
    assert_eq!(f["detail"]["http_user_agent"], "test-agent/1");
    assert_eq!(f["detail"]["http_status"], 200);

    let id = f["id"].as_i64().expect("id");
    let (status, one) = app.get_json(&format!("/api/v1/flows/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["orig_packets"], 5);
    assert_eq!(one["resp_packets"], 3);
    let (status, _) = app.get_json("/api/v1/flows/999999").await;
    assert_eq!(status, 404);

    // Pages of 7 cover every flow once.
    let mut seen = std::collections::BTreeSet::new();
    let mut next = Some(String::new());
    while let Some(cursor) = next {
        let q = if cursor.is_empty() {
            String::new()
        } else {
            format!("&cursor={cursor}")
        };
        let (_, page) = app.get_json(&format!("/api/v1/flows?limit=7{q}")).await;
        for item in page["items"].as_array().cloned().unwrap_or_default() {
            assert!(seen.insert(item["id"].as_i64().unwrap_or(-1)));
        }
        next = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 31);

    for (query, field) in [
        ("ip=10.9.0.300", "ip"),
        ("port=70000", "port"),
        ("state=XX", "state"),
        ("colour=red", "colour"),
        ("limit=0", "limit"),
    ] {
        let resp = app.get(&format!("/api/v1/flows?{query}")).await;
        assert_eq!(resp.status().as_u16(), 400, "{query}");
        let body = resp.text().await.unwrap_or_default();
        assert!(body.contains(&format!("\"{field}\"")), "{query}: {body}");
    }
    let (status, _) = app.get_json("/api/v1/flows/abc").await;
    assert_eq!(status, 400);
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
async fn flows_are_listed_filtered_and_paged_sqlite() {
    let app = spawn_on(None).await;
    flows_are_listed_filtered_and_paged(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn flows_are_listed_filtered_and_paged_postgres() {
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let app = spawn_on(Some(url)).await;
    flows_are_listed_filtered_and_paged(&app).await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}
