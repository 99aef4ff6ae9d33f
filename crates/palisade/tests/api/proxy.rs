//! The protecting proxy inside the service (issue 18): every proxied request is stored
//! as an event through the pipeline's writer, the proxy is listed as a source, and the
//! behaviour scenarios see proxied traffic, so a client probing through the proxy gets
//! banned like one found in an access log.

use std::time::Duration;

use crate::helpers::{TestApp, spawn_with, test_settings};

/// Polls `path` until `done` says yes.
async fn until(
    app: &TestApp,
    path: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..300 {
        let (status, page) = app.get_json(path).await;
        if status == 200 && done(&page) {
            return page;
        }
        last = page;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never got there: {last}");
}

#[tokio::test]
async fn proxied_traffic_is_stored_and_a_client_probing_through_the_proxy_is_banned() {
    // An application where everything under /probe/ is missing.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/probe/") {
                (axum::http::StatusCode::NOT_FOUND, "no such page")
            } else {
                (axum::http::StatusCode::OK, "hello from the app")
            }
        });
        axum::serve(upstream, app).await.unwrap();
    });

    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir, None);
    let mut proxy = palisade_proxy::ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        palisade_proxy::Upstream::parse(&format!("http://{up_addr}")).unwrap(),
    );
    proxy.name = "edge-shop".into();
    // The test client stands for a load balancer that names the real client.
    proxy.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    settings.proxies.push(proxy);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let front = format!("http://{}", app.proxies[0]);
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let attacker = "203.0.113.66";

    let ok = c
        .get(format!("{front}/products?page=2"))
        .header("X-Forwarded-For", "198.51.100.20")
        .header("User-Agent", "Mozilla/5.0 shopper")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // A scanner walking a word list: distinct missing paths, one after another.
    for i in 0..14 {
        let r = c
            .get(format!("{front}/probe/admin-{i}.php"))
            .header("X-Forwarded-For", attacker)
            .header("User-Agent", "scanner/1.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }

    // The requests are events of the proxy's source, with their verdicts.
    let page = until(&app, "/api/v1/events?source=edge-shop&limit=100", |p| {
        p["items"].as_array().is_some_and(|i| i.len() >= 15)
    })
    .await;
    let shopper = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/products")
        .expect("the shopper's request")
        .clone();
    assert_eq!(shopper["client_ip"], "198.51.100.20");
    assert_eq!(shopper["query"], "page=2");
    assert_eq!(shopper["status"], 200);
    assert_eq!(shopper["method"], "GET");
    assert_eq!(shopper["verdict"], "allow");
    assert_eq!(shopper["kind"], "http");
    assert_eq!(shopper["user_agent"], "Mozilla/5.0 shopper");
    assert_eq!(shopper["bytes"], "hello from the app".len());

    // The probing scenario saw them and banned the client...
    let decisions = until(&app, &format!("/api/v1/decisions?ip={attacker}"), |p| {
        p["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(decisions["items"][0]["kind"], "ban", "{decisions}");
    // ...which the proxy enforces at once.
    let refused = c
        .get(format!("{front}/products"))
        .header("X-Forwarded-For", attacker)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (_, threats) = app.get_json("/api/v1/threats?rule_id=970100").await;
    assert_eq!(threats["items"][0]["client_ip"], attacker, "{threats}");

    // The proxy is a source, with its counters.
    let (_, sources) = app.get_json("/api/v1/sources").await;
    let source = sources["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "edge-shop")
        .expect("the proxy is listed")
        .clone();
    assert_eq!(source["kind"], "proxy", "{source}");
    assert_eq!(source["state"], "running", "{source}");
    assert!(source["lines"].as_u64().unwrap() >= 16, "{source}");
    assert_eq!(source["dropped"], 0);

    // A blocked request is a threat named after the proxy and an event with its
    // verdict.
    let blocked = c
        .get(format!(
            "{front}/item?id=1%27%20union%20select%20password%20from%20users--"
        ))
        .header("X-Forwarded-For", "198.51.100.21")
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 403);
    let page = until(&app, "/api/v1/threats?client_ip=198.51.100.21", |p| {
        p["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(page["items"][0]["source"], "edge-shop");
    let page = until(&app, "/api/v1/events?client_ip=198.51.100.21", |p| {
        p["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(page["items"][0]["verdict"], "block");
    assert_eq!(page["items"][0]["status"], 403);
    app.stop().await;
}
