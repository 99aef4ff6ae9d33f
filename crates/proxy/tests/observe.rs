//! The response observations the posture checks read, through a real proxy in front of
//! a real upstream: missing security headers are counted, version banners kept, and a
//! blocked request (which never reaches the upstream) is not an application answer.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use palisade_core::ShutdownTrigger;
use palisade_detect::EngineConfig;
use palisade_pipeline::Guard;
use palisade_pipeline::detection::{Detection, Mode};
use palisade_pipeline::recorder::ThreatRecorder;
use palisade_proxy::{BoundProxy, ProxyConfig, ProxyContext, Upstream};
use tokio::net::TcpListener;

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::SERVER, "nginx/1.18.0"),
        ],
        "<html></html>",
    )
}

async fn api() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::STRICT_TRANSPORT_SECURITY, "max-age=63072000"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "{}",
    )
}

#[tokio::test]
async fn answers_are_observed_for_the_posture_checks() {
    let app = Router::new().route("/", get(page)).route("/api", get(api));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let detection = Arc::new(Detection::builtin(EngineConfig::default(), Mode::Block).unwrap());
    let (threats, _rx) = ThreatRecorder::channel(100);
    let mut config = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(&format!("http://{up}")).unwrap(),
    );
    config.name = "shop".into();
    let bound = BoundProxy::bind(
        config,
        ProxyContext::new(Guard::new(detection, None, threats)),
    )
    .await
    .unwrap();
    let addr = bound.local_addr().unwrap();
    let observations = bound.observations();
    let stop = ShutdownTrigger::new();
    tokio::spawn(bound.serve(stop.subscribe()));

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for path in ["/", "/", "/api"] {
        let r = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Refused by the WAF: no application answer to observe.
    let r = client
        .get(format!(
            "http://{addr}/?q=1'+UNION+SELECT+password+FROM+users--"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    assert_eq!(observations.name, "shop");
    assert_eq!(observations.upstream, up.to_string());
    let seen = observations.responses.snapshot();
    assert_eq!(seen.responses, 3);
    assert_eq!(seen.html_responses, 2);
    assert_eq!(seen.missing_hsts, 2);
    assert_eq!(seen.missing_csp, 2);
    assert_eq!(seen.missing_nosniff, 2);
    assert_eq!(seen.banners.len(), 1);
    assert_eq!(
        (
            seen.banners[0].header,
            seen.banners[0].value.as_str(),
            seen.banners[0].seen
        ),
        ("Server", "nginx/1.18.0", 2)
    );
}
