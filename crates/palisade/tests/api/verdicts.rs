//! One request, one verdict, whichever way it reaches the engine (issue 17): in-process
//! as `palisade eval` runs it, through `/api/v1/check`, through the protecting proxy, and
//! from a stored access-log line by the ingest inspector. Attacks of the newly covered
//! classes and places, and hard-benign requests, are judged alike on all four paths.
//!
//! Request targets hyper's parser refuses (raw `"`, `<`, `>`, `|`, a backtick in the
//! query) are the deliberate exception: the proxy cannot forward them as sent, so it
//! refuses them as a recorded, explained protocol threat (rule 975100), checked here too.

use std::time::Duration;

use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};

use crate::helpers::{TestApp, line, spawn_with, test_settings};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// (target, is it an attack) — the label guards against the four paths agreeing on a
/// wrong answer.
const CASES: &[(&str, bool)] = &[
    ("/item.php?id=1%20HAVING%204012%3D4012", true),
    (
        "/api/users/1%27%20UNION%20SELECT%20password%20FROM%20users--",
        true,
    ),
    ("/profile/%3Csvg%20onload%3Dalert(1)%3E", true),
    ("/login?user=admin&password[%24ne]=x", true),
    ("/people?name=*)(uid%3D*))(%7C(uid%3D*", true),
    ("/fetch?url=http%3A%2F%2F0x7f000001%2Fadmin", true),
    ("/ping?host=x%3Bnetstat%20-a%3B", true),
    ("/go?to=%250d%250aSet-Cookie%3A%20s%3D1", true),
    ("/hello?name=*%7B7*7%7D", true),
    ("/mail?box=INBOX%0d%0aV100%20CAPABILITY", true),
    ("/products?page=2&sort=price", false),
    ("/wiki/C%2B%2B_(programming_language)", false),
    (
        "/landing?utm_source=newsletter&utm_campaign=spring_sale&gclid=Cj0KCQjw8MG1BhCoARIsAHxSiQ",
        false,
    ),
    (
        "/checkout?state=eyJjYXJ0IjpbeyJpZCI6MTIsInF0eSI6Mn1dfQ",
        false,
    ),
    (
        "/search?q=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82%2C%20(select)%20%D0%BC%D0%B8%D1%80",
        false,
    ),
];

fn in_process(engine: &Engine, target: &str) -> bool {
    engine
        .inspect(&HttpRequest {
            method: "GET".into(),
            uri: target.into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![
                ("host".into(), "shop.example".into()),
                ("user-agent".into(), UA.into()),
            ],
            body: Vec::new(),
            client_ip: None,
        })
        .blocked
}

async fn threats_for(app: &TestApp, ip: &str) -> Vec<serde_json::Value> {
    let (_, page) = app
        .get_json(&format!("/api/v1/threats?client_ip={ip}&limit=50"))
        .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_same_request_gets_the_same_verdict_on_every_path() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "hello from the app" });
        axum::serve(upstream, app).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir, None);
    let mut proxy = palisade_proxy::ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        palisade_proxy::Upstream::parse(&format!("http://{up_addr}")).unwrap(),
    );
    proxy.name = "verdict-proxy".into();
    proxy.trusted_proxies.push("127.0.0.1".parse().unwrap());
    settings.proxies.push(proxy);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let key = app.api_key("edge", &["check"]).await;
    let front = format!("http://{}", app.proxies[0]);
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let engine = Engine::new(RuleSet::load(None).unwrap(), EngineConfig::default());

    let mut log = Vec::new();
    for (i, (target, attack)) in CASES.iter().enumerate() {
        // eval's path: the engine in-process.
        let eval = in_process(&engine, target);
        assert_eq!(eval, *attack, "in-process verdict for {target}");

        // /check, as nginx auth_request asks.
        let r = app
            .client
            .get(app.url("/api/v1/check"))
            .header("X-Api-Key", &key)
            .header("X-Original-URI", *target)
            .header("X-Original-Method", "GET")
            .header("X-Forwarded-Host", "shop.example")
            .header("User-Agent", UA)
            .header("X-Real-IP", format!("192.0.2.{}", i + 1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status() == 403, eval, "/check verdict for {target}");

        // The protecting proxy.
        let r = c
            .get(format!("{front}{target}"))
            .header("User-Agent", UA)
            .header("X-Forwarded-For", format!("198.51.100.{}", i + 1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status() == 403, eval, "proxy verdict for {target}");

        log.push(line(
            &format!("203.0.113.{}", i + 1),
            "10/Oct/2025:13:55:36 +0000",
            "GET",
            target,
            200,
            UA,
        ));
    }

    // The ingest inspector on the same requests as access-log lines: an over-threshold
    // verdict is a threat with decision `detect` (a log line cannot be blocked).
    let r = app
        .push("?source=verdict-log&format=combined", &log.join("\n"))
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let attacks = CASES.iter().filter(|(_, a)| *a).count();
    let mut seen = 0;
    for _ in 0..200 {
        let (_, page) = app
            .get_json("/api/v1/threats?client_ip=203.0.113.0/24&limit=100")
            .await;
        seen = page["items"]
            .as_array()
            .map(|i| i.iter().filter(|t| t["decision"] == "detect").count())
            .unwrap_or(0);
        if seen >= attacks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, attacks, "log-line verdicts");
    for (i, (target, attack)) in CASES.iter().enumerate() {
        let detected = threats_for(&app, &format!("203.0.113.{}", i + 1))
            .await
            .iter()
            .any(|t| t["decision"] == "detect");
        assert_eq!(detected, *attack, "ingest verdict for {target}");
    }

    // A target the proxy's HTTP parser refuses: answered 400 and recorded as a protocol
    // threat naming the refused characters, never silently dropped.
    let raw = tokio::task::spawn_blocking({
        let addr = app.proxies[0];
        move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(
                b"GET /search?q=\"a\"|`b`<c> HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 198.51.100.200\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        }
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    let mut refused = Vec::new();
    for _ in 0..200 {
        refused = threats_for(&app, "198.51.100.200").await;
        if !refused.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused.iter().any(|t| t["rule_ids"]
            .as_array()
            .is_some_and(|r| r.contains(&serde_json::json!(975100)))),
        "{refused:?}"
    );
    app.stop().await;
}
