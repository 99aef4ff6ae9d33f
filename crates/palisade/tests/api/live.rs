//! The live feed over a real WebSocket: tickets, subscriptions, threats appearing at
//! once, traffic in batches, replay after a reconnect, and a slow client cut off alone.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, line, spawn_app};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ticket(app: &TestApp) -> String {
    let r = app
        .req(reqwest::Method::POST, "/api/v1/auth/ws-ticket")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    body["ticket"].as_str().unwrap().to_owned()
}

async fn connect(app: &TestApp, since: Option<u64>) -> Socket {
    let t = ticket(app).await;
    let mut url = format!(
        "{}/api/v1/ws?ticket={t}",
        app.address.replace("http://", "ws://")
    );
    if let Some(s) = since {
        url.push_str(&format!("&since={s}"));
    }
    let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    socket
}

/// The next text message as JSON (skipping pings), within `wait`.
async fn next(socket: &mut Socket, wait: Duration) -> Option<serde_json::Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Some(serde_json::json!({"closed": frame.map(|f| f.reason.to_string())}));
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Messages of `topic` until `pred` holds on one (within 10 s).
async fn until(
    socket: &mut Socket,
    topic: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..200 {
        match next(socket, Duration::from_secs(10)).await {
            Some(m) if m["topic"] == topic && pred(&m) => return m,
            Some(_) => continue,
            None => break,
        }
    }
    panic!("no {topic} message");
}

#[tokio::test]
async fn threats_and_traffic_arrive_live_and_a_reconnect_catches_up() {
    let app = spawn_app().await;
    // A ticket is single-use and required.
    let t = ticket(&app).await;
    let url = format!(
        "{}/api/v1/ws?ticket={t}",
        app.address.replace("http://", "ws://")
    );
    let (_first, _) = tokio_tungstenite::connect_async(&url).await.expect("ws");
    assert!(
        tokio_tungstenite::connect_async(&url).await.is_err(),
        "a used ticket is refused"
    );

    let mut ws = connect(&app, None).await;
    ws.send(Message::text(
        r#"{"subscribe": ["threats", "traffic", "nonsense"]}"#,
    ))
    .await
    .unwrap();
    let answer = next(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer["topic"], "error", "{answer}");
    assert_eq!(answer["seq"], serde_json::Value::Null);
    assert_eq!(
        answer["data"]["subscribed"],
        serde_json::json!(["threats", "traffic"])
    );

    let body = [
        line(
            "198.51.100.9",
            "10/Oct/2025:13:55:36 +0000",
            "GET",
            "/item?id=1%27%20or%201=1--",
            200,
            "sqlmap/1.7",
        ),
        line(
            "198.51.100.10",
            "10/Oct/2025:13:55:37 +0000",
            "GET",
            "/index.html",
            200,
            "Mozilla/5.0",
        ),
    ]
    .join("\n");
    let r = app.push("?format=combined&source=web-live", &body).await;
    assert_eq!(r.status(), 200);
    let threat = until(&mut ws, "threats", |m| {
        m["data"]["client_ip"] == "198.51.100.9"
    })
    .await;
    assert!(threat["data"]["id"].as_i64().is_some(), "{threat}");
    let seq = threat["seq"].as_u64().unwrap();
    let traffic = until(&mut ws, "traffic", |m| {
        m["data"]["stored"].as_u64() == Some(2)
    })
    .await;
    assert_eq!(traffic["data"]["items"].as_array().unwrap().len(), 2);
    assert!(
        traffic["seq"].as_u64().unwrap() > seq,
        "one growing sequence"
    );
    drop(ws);

    // Reconnecting with the last seq seen before the threat: the threat is replayed.
    let mut again = connect(&app, Some(seq - 1)).await;
    again
        .send(Message::text(r#"{"subscribe": ["threats"]}"#))
        .await
        .unwrap();
    let replayed = until(&mut again, "threats", |m| m["seq"].as_u64() == Some(seq)).await;
    assert_eq!(replayed["data"]["client_ip"], "198.51.100.9");

    // A client from long ago (an old seq) is told about the gap.
    let mut old = connect(&app, Some(1)).await;
    let gap = next(&mut old, Duration::from_secs(5)).await.unwrap();
    assert_eq!(gap["topic"], "gap", "{gap}");
    app.stop().await;
}

#[tokio::test]
async fn job_progress_and_logs_stream_live() {
    let app = spawn_app().await;
    let t = ticket(&app).await;
    let url = format!(
        "{}/api/v1/ws?ticket={t}&topics=jobs",
        app.address.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let r = app
        .req(reqwest::Method::POST, "/api/v1/jobs")
        .json(&serde_json::json!({"kind": "validate_data", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let job: serde_json::Value = r.json().await.unwrap();
    let id = job["id"].as_i64().unwrap();
    let done = until(&mut ws, "jobs", |m| {
        m["data"]["job_id"] == id && m["data"]["state"] == "succeeded"
    })
    .await;
    assert_eq!(done["data"]["kind"], "validate_data");
    // One job's own topic carries its log lines too; a reconnect replays them.
    let seq = done["seq"].as_u64().unwrap();
    let mut one = connect(&app, Some(seq.saturating_sub(200))).await;
    one.send(Message::text(format!(r#"{{"subscribe": ["job:{id}"]}}"#)))
        .await
        .unwrap();
    until(&mut one, &format!("job:{id}"), |m| {
        m["data"]["type"] == "log"
    })
    .await;
    app.stop().await;
}

/// A reconnecting client that names its topics a moment after connecting still gets
/// what it missed (the backlog used to go out before the subscription arrived, and was
/// dropped as "not subscribed").
#[tokio::test]
async fn a_reconnect_that_subscribes_late_still_gets_its_backlog() {
    let app = spawn_app().await;
    let mut ws = connect(&app, None).await;
    ws.send(Message::text(r#"{"subscribe": ["threats"]}"#))
        .await
        .unwrap();
    let body = line(
        "198.51.100.77",
        "10/Oct/2025:13:55:36 +0000",
        "GET",
        "/item?id=1%27%20or%201=1--",
        200,
        "sqlmap/1.7",
    );
    let r = app.push("?format=combined&source=web-late", &body).await;
    assert_eq!(r.status(), 200);
    let threat = until(&mut ws, "threats", |m| {
        m["data"]["client_ip"] == "198.51.100.77"
    })
    .await;
    let seq = threat["seq"].as_u64().unwrap();
    drop(ws);

    let mut again = connect(&app, Some(seq - 1)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    again
        .send(Message::text(r#"{"subscribe": ["threats"]}"#))
        .await
        .unwrap();
    let replayed = until(&mut again, "threats", |m| m["seq"].as_u64() == Some(seq)).await;
    assert_eq!(replayed["data"]["client_ip"], "198.51.100.77");
    app.stop().await;
}
