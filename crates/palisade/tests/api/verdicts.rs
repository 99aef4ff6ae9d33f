//! One request, one verdict, whichever way it reaches the engine (issue 17): in-process
//! as `palisade eval` runs it, through `/api/v1/check`, through the protecting proxy, and
//! from a stored access-log line by the ingest inspector. Attacks of the newly covered
//! classes and places, and hard-benign requests, are judged alike on all four paths.
//!
//! Protocol attacks (smuggling shapes, bad framing, method and header abuse) are judged
//! alike in-process, through `/api/v1/check/request` and through the proxy, from the
//! same bytes: the proxy judges the head as sent, and what its HTTP parser refuses is a
//! recorded, explained threat (975140 / 975150) carrying the engine's finding too.
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
    ("/files/..%bg%qf..%bgetc/passwd", true),
    ("/login?user=%25n%25n%25x%25x", true),
    ("/sale?discount=50%25%20off", false),
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

/// A protocol case: request line, header lines as sent, body as sent, and the rule that
/// must explain it (`None`: hard benign, must pass everywhere).
struct Wire {
    line: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    rule: Option<u32>,
}

const WIRE: &[Wire] = &[
    Wire {
        line: "POST /cart HTTP/1.1",
        headers: &[("Content-Length", "6"), ("Transfer-Encoding", "chunked")],
        body: "0\r\n\r\n",
        rule: Some(920150),
    },
    Wire {
        line: "POST /cart HTTP/1.1",
        headers: &[("Content-Length", "3"), ("Content-Length", "30")],
        body: "a=1",
        rule: Some(920300),
    },
    Wire {
        line: "POST /cart HTTP/1.1",
        headers: &[("Transfer-Encoding", "xchunked")],
        body: "",
        rule: Some(920310),
    },
    Wire {
        line: "POST /cart HTTP/1.1",
        headers: &[("Transfer-Encoding", "chunked, identity")],
        body: "",
        rule: Some(920310),
    },
    Wire {
        line: "POST /cart HTTP/1.0",
        headers: &[("Transfer-Encoding", "chunked")],
        body: "0\r\n\r\n",
        rule: Some(920313),
    },
    Wire {
        line: "POST /cart HTTP/1.1",
        headers: &[("Transfer-Encoding ", "chunked")],
        body: "",
        rule: Some(920320),
    },
    Wire {
        line: "GET / HTTP/1.1",
        headers: &[("X-Custom", "a\r\n Transfer-Encoding: chunked")],
        body: "",
        rule: Some(920321),
    },
    Wire {
        line: "GET / HTTP/1.7",
        headers: &[],
        body: "",
        rule: Some(920324),
    },
    Wire {
        line: "POST /upload HTTP/1.1",
        headers: &[("Transfer-Encoding", "chunked")],
        body: "0x5\r\nhello\r\n0\r\n\r\n",
        rule: Some(920316),
    },
    Wire {
        line: "TRACE / HTTP/1.1",
        headers: &[],
        body: "",
        rule: Some(920340),
    },
    Wire {
        line: "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1",
        headers: &[],
        body: "",
        rule: Some(920332),
    },
    Wire {
        line: "GET / HTTP/1.1",
        headers: &[("X-Original-URL", "/admin/users")],
        body: "",
        rule: Some(920350),
    },
    Wire {
        line: "GET /account HTTP/1.1",
        headers: &[("Connection", "X-Api-Key")],
        body: "",
        rule: Some(920354),
    },
    Wire {
        line: "GET /video.mp4 HTTP/1.1",
        headers: &[(
            "Range",
            "bytes=0-,5-0,5-1,5-2,5-3,5-4,5-5,5-6,5-7,5-8,5-9,5-10",
        )],
        body: "",
        rule: Some(920361),
    },
    Wire {
        line: "POST /upload HTTP/1.1",
        headers: &[
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "application/json"),
        ],
        body: "c\r\n{\"name\":\"a\"}\r\n0\r\n\r\n",
        rule: None,
    },
    Wire {
        line: "GET /doc.pdf HTTP/1.1",
        headers: &[("Range", "bytes=0-1023, 4096-8191")],
        body: "",
        rule: None,
    },
    Wire {
        line: "PROPFIND /dav/ HTTP/1.1",
        headers: &[("Depth", "1")],
        body: "",
        rule: None,
    },
    Wire {
        line: "POST /api/items/7 HTTP/1.1",
        headers: &[
            ("X-HTTP-Method-Override", "DELETE"),
            ("Content-Length", "0"),
        ],
        body: "",
        rule: None,
    },
];

/// Sends raw bytes to the proxy; the status code of the answer.
async fn raw_status(addr: std::net::SocketAddr, bytes: Vec<u8>) -> u16 {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn protocol_attacks_get_the_same_verdict_in_process_through_check_and_the_proxy() {
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
    proxy.name = "wire-proxy".into();
    proxy.trusted_proxies.push("127.0.0.1".parse().unwrap());
    settings.proxies.push(proxy);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let key = app.api_key("edge", &["check"]).await;
    let engine = Engine::new(RuleSet::load(None).unwrap(), EngineConfig::default());

    for (i, case) in WIRE.iter().enumerate() {
        let ip = format!("198.51.100.{}", 100 + i);
        let mut parts = case.line.splitn(3, ' ');
        let (method, target, version) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), "shop.example".into()),
            ("User-Agent".into(), UA.into()),
        ];
        headers.extend(
            case.headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        headers.push(("X-Forwarded-For".into(), ip.clone()));
        let attack = case.rule.is_some();

        // In-process, as `palisade eval` judges it.
        let v = engine.inspect(&HttpRequest {
            method: method.into(),
            uri: target.into(),
            protocol: version.into(),
            headers: headers.clone(),
            body: case.body.as_bytes().to_vec(),
            client_ip: None,
        });
        assert_eq!(
            v.blocked, attack,
            "in-process: {} {:?}",
            case.line, v.findings
        );
        if let Some(rule) = case.rule {
            assert!(
                v.findings.iter().any(|f| f.rule_id == rule),
                "{}",
                case.line
            );
        }

        // /api/v1/check/request with the same method, target, version, headers, body.
        let r = app
            .client
            .post(app.url("/api/v1/check/request"))
            .header("X-Api-Key", &key)
            .json(&serde_json::json!({
                "method": method, "uri": target, "protocol": version,
                "headers": headers, "body": case.body, "client_ip": format!("192.0.2.{}", 100 + i),
            }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let answer: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status == 403, attack, "/check: {} {answer}", case.line);
        if let Some(rule) = case.rule {
            assert!(
                answer["rules"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|h| h["id"] == rule)),
                "/check: {} {answer}",
                case.line
            );
        }

        // The proxy, from the same bytes: blocked by the engine (403) or refused by its
        // HTTP parser (400), and either way a recorded threat naming the rule.
        let mut raw = format!("{}\r\n", case.line);
        for (k, v) in &headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("Connection: close\r\n\r\n");
        raw.push_str(case.body);
        let status = raw_status(app.proxies[0], raw.into_bytes()).await;
        if !attack {
            assert_eq!(status, 200, "proxy: {}", case.line);
            continue;
        }
        assert!(
            status == 403 || status == 400,
            "proxy: {} answered {status}",
            case.line
        );
        let rule = case.rule.unwrap_or_default();
        // A body the parser cannot unframe never reaches the engine: the refusal (975150,
        // "body with broken chunked framing") is the explanation.
        let explained = |r: &Vec<serde_json::Value>| {
            r.contains(&serde_json::json!(rule))
                || (rule == 920316 && r.contains(&serde_json::json!(975150)))
        };
        let mut found = Vec::new();
        for _ in 0..200 {
            found = threats_for(&app, &ip).await;
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            found
                .iter()
                .any(|t| t["rule_ids"].as_array().is_some_and(explained)),
            "proxy threat for {}: {found:?}",
            case.line
        );
    }
    app.stop().await;
}
