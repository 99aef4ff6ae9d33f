//! The OpenAPI document describes exactly the routes that exist.

use crate::helpers::spawn_app;

#[tokio::test]
async fn document_is_openapi_3_1_and_every_operation_answers() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10);
    for (path, ops) in paths {
        for (method, _) in ops.as_object().expect("ops") {
            let concrete = path.replace("{id}", "1").replace("{name}", "x");
            let req = app.req(method.to_uppercase().parse().expect("method"), &concrete);
            let r = req.body("").send().await.expect("req");
            let code = r.status().as_u16();
            assert!(
                code != 404 || path.contains('{'),
                "{method} {path} is documented but not routed"
            );
            assert!(code != 405, "{method} {path} is documented but not routed");
            assert!(
                code < 500 || path == "/readyz",
                "{method} {path} answered {code}"
            );
        }
    }
    let events = &paths["/api/v1/events"]["get"]["parameters"];
    let mut documented: Vec<&str> = events
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    documented.sort_unstable();
    let mut accepted = palisade_api::params::EVENT_PARAMS.to_vec();
    accepted.sort_unstable();
    assert_eq!(
        documented, accepted,
        "documented and accepted event parameters differ"
    );
    let docs = app.client.get(app.url("/docs")).send().await.expect("docs");
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.expect("html");
    assert!(
        html.contains("/docs/app.js") && !html.contains("https://"),
        "the docs page must be self-contained"
    );
    assert_eq!(app.get("/docs/app.js").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn the_root_is_the_dashboard_and_the_docs_forms_can_send_credentials() {
    let app = crate::helpers::spawn_app().await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let tag = r.headers()["etag"].clone();
    let page = r.text().await.unwrap();
    assert!(page.contains("src=\"/ui/app.js\""), "{page}");
    let again = c
        .get(app.url("/"))
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let module = c
        .get(app.url("/ui/pages/overview.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(module.status(), 200);
    assert!(
        module.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        c.get(app.url("/ui/nope.js")).send().await.unwrap().status(),
        404
    );
    let page = c
        .get(app.url("/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"token\"") && page.contains("id=\"apikey\""));
    let script = c
        .get(app.url("/docs/app.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(script.contains("Authorization") && script.contains("X-Api-Key"));
    app.stop().await;
}
