//! `GET /api/v1/events`: filters, pagination and errors.

use crate::helpers::{line, spawn_app};

async fn seed(app: &crate::helpers::TestApp) {
    let body = [
        line(
            "10.0.0.1",
            "10/Oct/2023:13:55:36 +0000",
            "GET",
            "/index.html",
            200,
            "Mozilla/5.0",
        ),
        line(
            "10.0.0.2",
            "10/Oct/2023:13:56:36 +0000",
            "POST",
            "/login?user=admin",
            401,
            "curl/8.0",
        ),
        line(
            "10.0.1.9",
            "10/Oct/2023:13:57:36 +0000",
            "GET",
            "/admin/panel",
            403,
            "sqlmap/1.7",
        ),
        line(
            "192.168.5.5",
            "10/Oct/2023:13:58:36 +0000",
            "GET",
            "/admin/users",
            404,
            "Mozilla/5.0",
        ),
        line(
            "2001:db8::7",
            "10/Oct/2023:13:59:36 +0000",
            "GET",
            "/api/items?id=1",
            500,
            "python-requests/2.31",
        ),
    ]
    .join("\n");
    let r = app.push("?format=combined&source=seed", &body).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

fn paths(v: &serde_json::Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["path"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn filters_combine_and_run_in_the_database() {
    let app = spawn_app().await;
    seed(&app).await;
    let cases: &[(&str, &[&str])] = &[
        (
            "",
            &[
                "/api/items",
                "/admin/users",
                "/admin/panel",
                "/login",
                "/index.html",
            ],
        ),
        ("?client_ip=10.0.0.0/24", &["/login", "/index.html"]),
        ("?client_ip=10.0.1.9", &["/admin/panel"]),
        ("?client_ip=2001:db8::/32", &["/api/items"]),
        ("?status=4xx", &["/admin/users", "/admin/panel", "/login"]),
        ("?status=404", &["/admin/users"]),
        ("?method=POST", &["/login"]),
        ("?path_prefix=/admin", &["/admin/users", "/admin/panel"]),
        ("?path_prefix=/admin&status=403", &["/admin/panel"]),
        ("?q=SQLMAP", &["/admin/panel"]),
        ("?q=user", &["/admin/users", "/login"]),
        (
            "?from=2023-10-10T13:56:00Z&to=2023-10-10T13:58:00Z",
            &["/admin/panel", "/login"],
        ),
        ("?source=seed&kind=http&status=5xx", &["/api/items"]),
        ("?source=other", &[]),
        ("?range=15m", &[]),
    ];
    for (query, want) in cases {
        let (status, body) = app.get_json(&format!("/api/v1/events{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(paths(&body), *want, "{query}");
        assert!(
            body.get("next_cursor").is_some(),
            "{query}: next_cursor must be present"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn cursor_pagination_walks_every_event_once() {
    let app = spawn_app().await;
    let body: Vec<String> = (0..25)
        .map(|i| {
            line(
                "10.1.1.1",
                "10/Oct/2023:13:55:36 +0000",
                "GET",
                &format!("/p/{i}"),
                200,
                "ua",
            )
        })
        .collect();
    assert_eq!(
        app.push("?format=combined", &body.join("\n"))
            .await
            .status(),
        200
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let q = match &cursor {
            Some(c) => format!("/api/v1/events?limit=7&cursor={c}"),
            None => "/api/v1/events?limit=7".to_owned(),
        };
        let (status, page) = app.get_json(&q).await;
        assert_eq!(status, 200);
        seen.extend(paths(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25);
    app.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_problems_naming_the_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1001", "limit"),
        ("client_ip=300.1.1.1", "client_ip"),
        ("status=99x", "status"),
        ("from=notatime", "from"),
        ("range=1y", "range"),
        ("cursor=xyz", "cursor"),
        ("q=", "q"),
        ("nope=1", "nope"),
        ("kind=dns", "kind"),
    ] {
        let r = app.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{query}"
        );
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["field"], field, "{query}: {body}");
        assert_eq!(body["status"], 400);
        assert_eq!(body["invalid-params"][0]["name"], field);
    }
    let (status, body) = app.get_json("/api/v1/events/abc").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("id")));
    let (status, body) = app.get_json("/api/v1/events/999999").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app.get_json("/api/v1/nothing-here").await;
    assert_eq!(status, 404);
    let r = app
        .req(reqwest::Method::DELETE, "/api/v1/events")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 405);
    app.stop().await;
}

#[tokio::test]
async fn one_event_by_id_round_trips() {
    let app = spawn_app().await;
    seed(&app).await;
    let (_, page) = app.get_json("/api/v1/events?method=POST").await;
    let id = page["items"][0]["id"].as_i64().expect("id");
    let (status, event) = app.get_json(&format!("/api/v1/events/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(event["client_ip"], "10.0.0.2");
    assert_eq!(event["path"], "/login");
    assert_eq!(event["query"], "user=admin");
    assert_eq!(event["status"], 401);
    assert_eq!(event["ts"], "2023-10-10T13:56:36Z");
    assert_eq!(event["source"], "seed");
    app.stop().await;
}
