//! The built-in dashboard in a real browser (Debian's headless Chromium through
//! chromedriver): log in, the overview's figures equal the API's, a threat found by
//! `/api/v1/check` appears in the threats page without a reload, a decision is added
//! and removed, a job is started and its log seen, the posture checks run, a setting
//! saved with secrets shown masked; a viewer sees no posture or settings page and no
//! forms that change anything. Screenshots of each page go to
//! `$CARGO_TARGET_TMPDIR/dashboard/`; the overview's time to first render and the bytes
//! it loaded (the browser's performance API) are printed, not asserted (benchmarks
//! hold speed targets, not tests).
//!
//! Without Chromium and chromedriver (`apt-get install chromium chromium-driver`, which
//! `scripts/test.sh` does) the tests skip with a message saying so.

use std::path::PathBuf;
use std::time::Duration;

use crate::helpers::{
    ADMIN_PASSWORD, TestApp, line, pg_base_url, pg_drop_schema, pg_schema_url, skip_postgres,
    spawn_with, test_settings,
};
use crate::webdriver::Browser;

async fn spawn_on(database_url: Option<String>) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, database_url);
    settings.analytics.sample_every = "1s".parse().expect("span");
    settings.analytics.rollup_every = "1s".parse().expect("span");
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    app
}

async fn browser() -> Option<Browser> {
    match Browser::start().await {
        Ok(b) => Some(b),
        Err(why) => {
            eprintln!("SKIPPED: the dashboard browser test needs Chromium: {why}");
            None
        }
    }
}

fn shots(backend: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard")
        .join(backend);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The digits of a rendered figure ("1,234" → 1234).
fn figure(text: &str) -> u64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(u64::MAX)
}

/// Traffic over the last minutes: 40 lines, of which 5 are SQL injections.
async fn push_traffic(app: &TestApp) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut body = Vec::new();
    for i in 0..40u64 {
        // CLF time, in UTC, a few seconds apart and within the last hour.
        let ts = clf(now - 600 + i * 5);
        let (target, ua) = if i % 8 == 0 {
            ("/item?id=1%27%20or%201=1--", "sqlmap/1.7")
        } else {
            ("/index.html", "Mozilla/5.0")
        };
        let status = if i % 10 == 3 { 404 } else { 200 };
        body.push(line(
            &format!("198.51.100.{}", i % 7 + 1),
            &ts,
            "GET",
            target,
            status,
            ua,
        ));
    }
    let r = app
        .push("?format=combined&source=web", &body.join("\n"))
        .await;
    assert_eq!(r.status(), 200);
}

fn clf(secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Waits until the stored threats include the pushed injections.
async fn wait_threats(app: &TestApp, at_least: u64) {
    for _ in 0..200 {
        let (_, o) = app.get_json("/api/v1/analytics/overview?range=24h").await;
        if o["threats"]["total"].as_u64().unwrap_or(0) >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the pushed injections never became threats");
}

/// The overview's stored totals equal the API's for the same range. Both are read
/// again until they agree (a threat recorded late makes the page reload its figures),
/// within the wait; the API's overview is returned.
async fn figures_match(b: &Browser, app: &TestApp) -> serde_json::Value {
    let pairs = [
        ("events-total", "/events/total"),
        ("http-requests", "/http/requests"),
        ("http-errors", "/http/errors"),
        ("threats-total", "/threats/total"),
        ("threats-blocked", "/threats/blocked"),
    ];
    let started = std::time::Instant::now();
    loop {
        let (_, o) = app.get_json("/api/v1/analytics/overview?range=24h").await;
        let mut differ = Vec::new();
        for (figure_id, pointer) in pairs {
            let shown = b
                .wait_text(&format!("[data-figure={figure_id}]"), |_| true)
                .await;
            let api = o.pointer(pointer).and_then(serde_json::Value::as_u64);
            if Some(figure(&shown)) != api {
                differ.push(format!("{figure_id}: page {shown:?}, API {api:?}"));
            }
        }
        if differ.is_empty() {
            return o;
        }
        assert!(
            started.elapsed() < crate::webdriver::WAIT,
            "the overview disagrees with the API: {differ:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn login(b: &Browser, app: &TestApp, user: &str, password: &str) {
    b.goto(&app.url("/")).await;
    b.type_into("#username", user).await;
    b.type_into("#password", password).await;
    b.click_on("#login-form button[type=submit]").await;
}

async fn go(b: &Browser, hash: &str) {
    b.exec(&format!("location.hash = {hash:?};")).await;
}

async fn dashboard_flow(app: &TestApp, backend: &str) {
    let Some(b) = browser().await else { return };
    let dir = shots(backend);
    push_traffic(app).await;
    wait_threats(app, 5).await;

    // Log in; the overview's figures are the API's.
    login(&b, app, "admin", ADMIN_PASSWORD).await;
    b.wait_for("[data-figure=events-total]").await;
    let o = figures_match(&b, app).await;
    assert_eq!(o["events"]["total"], 40, "{o}");
    // Active alerts: the API's count, or, on a build without alerts, a tile that says so.
    let (alerts_status, open_alerts) = app.get_json("/api/v1/alerts?state=active&limit=100").await;
    let tile = b
        .wait_text("#live-tiles", |t| t.contains("Active alerts"))
        .await;
    if alerts_status == 404 {
        assert!(tile.contains("alerts not available"), "{tile}");
    } else {
        // The tile first shows a placeholder, and scenarios may still raise alerts from
        // the traffic: wait for a figure, and for it to be the API's count of that moment.
        let mut open_alerts = open_alerts;
        let started = std::time::Instant::now();
        loop {
            let n = open_alerts["items"].as_array().map_or(0, Vec::len) as u64;
            let shown = b
                .wait_text("[data-figure=alerts-active]", |t| figure(t) != u64::MAX)
                .await;
            if figure(&shown) == n {
                break;
            }
            assert!(
                started.elapsed() < crate::webdriver::WAIT,
                "the tile shows {shown:?}, the API counts {n}: {tile}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            open_alerts = app
                .get_json("/api/v1/alerts?state=active&limit=100")
                .await
                .1;
        }
    }
    // Page load of the overview for a signed-in user (a reload: the session resumes
    // from the tab's storage), as the browser measures it. (A new address, so that the
    // browser loads the document again rather than only moving to a fragment.)
    // With an empty cache: what a first visit costs.
    b.cdp("Network.clearBrowserCache", serde_json::json!({}))
        .await;
    b.goto(&app.url("/?measure=1#/overview")).await;
    b.wait_for("[data-figure=events-total]").await;
    let perf = b
        .exec(
            "const m = performance.getEntriesByName('palisade:overview-rendered')[0];
             const nav = performance.getEntriesByType('navigation')[0];
             const res = performance.getEntriesByType('resource');
             const ui = res.filter(r => new URL(r.name).pathname.startsWith('/ui/'));
             return { first_render_ms: m ? m.startTime : null,
                      dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
                      page_bytes: nav ? nav.decodedBodySize : null,
                      asset_bytes: ui.reduce((s, r) => s + r.decodedBodySize, 0),
                      assets: ui.length,
                      api_calls: res.length - ui.length };",
        )
        .await;
    assert!(perf["first_render_ms"].as_f64().is_some(), "{perf}");
    eprintln!("dashboard overview ({backend}): {perf}");
    b.screenshot(&dir.join("overview.png")).await;

    // The threats page, then a threat caught by /check arrives live, without a reload.
    go(&b, "#/threats").await;
    b.wait_for("#threat-list table").await;
    let before = b.find_all("tr[data-threat-id]").await.len();
    b.exec("window.__sameDocument = true;").await;
    let r = app
        .req(reqwest::Method::GET, "/api/v1/check")
        .header(
            "X-Original-URI",
            "/search?q=1%27%20union%20select%20password%20from%20users--",
        )
        .header("X-Original-Method", "GET")
        .header("X-Forwarded-For", "203.0.113.77")
        .send()
        .await
        .expect("check");
    assert!(r.status().as_u16() == 403 || r.status().as_u16() == 200);
    b.wait_text("#threat-list tbody tr:first-child", |t| {
        t.contains("203.0.113.77")
    })
    .await;
    assert!(b.find_all("tr[data-threat-id]").await.len() > before);
    assert_eq!(
        b.exec("return window.__sameDocument === true;").await,
        true,
        "the page reloaded"
    );
    // Its evidence, with the matched text highlighted.
    b.click_on("#threat-list tbody tr:first-child").await;
    let detail = b
        .wait_text("#threat-detail", |t| t.contains("Evidence"))
        .await;
    assert!(detail.contains("203.0.113.77"), "{detail}");
    b.wait_for("#threat-detail mark").await;
    b.screenshot(&dir.join("threats.png")).await;
    // An XSS payload from a request is shown as text, never run.
    let r = app
        .req(reqwest::Method::GET, "/api/v1/check")
        .header(
            "X-Original-URI",
            "/q?s=%3Cimg%20src%3Dx%20onerror%3D%22window.__pwned%3D1%22%3E",
        )
        .header("X-Original-Method", "GET")
        .header("X-Forwarded-For", "203.0.113.78")
        .send()
        .await
        .expect("check");
    assert!(r.status().as_u16() == 403 || r.status().as_u16() == 200);
    b.wait_text("#threat-list tbody tr:first-child", |t| {
        t.contains("203.0.113.78")
    })
    .await;
    b.click_on("#threat-list tbody tr:first-child").await;
    b.wait_text("#threat-detail", |t| t.contains("<img src=x onerror"))
        .await;
    assert_eq!(b.exec("return window.__pwned === undefined;").await, true);

    // Alerts (when the build has them): a critical finding raises or adds to an alert,
    // and the alerts page shows it live; acknowledged there with a comment.
    if alerts_status != 404 {
        go(&b, "#/alerts").await;
        b.wait_for("#alert-list").await;
        b.exec("window.__sameDocument = true;").await;
        let (_, before) = app.get_json("/api/v1/alerts?state=active&limit=100").await;
        let counts = |v: &serde_json::Value| -> Vec<(i64, u64)> {
            v["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| Some((x["id"].as_i64()?, x["count"].as_u64()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let before = counts(&before);
        let r = app
            .req(reqwest::Method::GET, "/api/v1/check")
            .header(
                "X-Original-URI",
                "/search?q=1%27%20union%20select%20password%20from%20users--",
            )
            .header("X-Original-Method", "GET")
            .header("X-Forwarded-For", "203.0.113.79")
            .send()
            .await
            .expect("check");
        assert!(r.status().as_u16() == 403 || r.status().as_u16() == 200);
        let mut changed = None;
        for _ in 0..200 {
            let (_, now) = app.get_json("/api/v1/alerts?state=active&limit=100").await;
            changed = counts(&now).into_iter().find(|c| !before.contains(c));
            if changed.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (id, count) = changed.expect("an alert raised or grown by the critical finding");
        let row = format!("#alert-list tr[data-alert-id='{id}']");
        b.wait_text(&row, |t| t.contains(&count.to_string())).await;
        assert_eq!(
            b.exec("return window.__sameDocument === true;").await,
            true,
            "the page reloaded"
        );
        b.click_on(&row).await;
        b.type_into("#alert-comment", "looked at it: a scanner")
            .await;
        b.click_on("#alert-actions button[data-action=acknowledge]")
            .await;
        b.wait_text("#alert-detail", |t| t.contains("looked at it: a scanner"))
            .await;
        let (_, d) = app.get_json(&format!("/api/v1/alerts/{id}")).await;
        assert_eq!(d["alert"]["state"], "acknowledged", "{d}");
        assert_eq!(
            d["alert"]["state_comment"], "looked at it: a scanner",
            "{d}"
        );
        b.screenshot(&dir.join("alerts.png")).await;
    }

    // Traffic explorer: filter by address, open one request.
    go(&b, "#/events?client_ip=198.51.100.1").await;
    b.wait_for("#event-list tr[data-event-id]").await;
    let rows = b.find_all("#event-list tr[data-event-id]").await.len();
    let (_, page) = app
        .get_json("/api/v1/events?client_ip=198.51.100.1&limit=50")
        .await;
    assert_eq!(rows, page["items"].as_array().expect("items").len());
    b.click_on("#event-list tr[data-event-id]").await;
    b.wait_text("#event-detail", |t| t.contains("198.51.100.1"))
        .await;
    b.screenshot(&dir.join("traffic.png")).await;

    // Decisions: add a ban, see it, remove it.
    go(&b, "#/decisions").await;
    b.type_into("#d-value", "192.0.2.200").await;
    b.type_into("#d-duration", "1h").await;
    b.type_into("#d-reason", "dashboard test").await;
    b.click_on("#decision-add button[type=submit]").await;
    b.wait_for("tr[data-decision='192.0.2.200']").await;
    let (_, active) = app.get_json("/api/v1/decisions?ip=192.0.2.200").await;
    assert_eq!(active["items"][0]["value"], "192.0.2.200", "{active}");
    b.screenshot(&dir.join("decisions.png")).await;
    b.click_on("tr[data-decision='192.0.2.200'] button.danger")
        .await;
    b.wait_gone("tr[data-decision='192.0.2.200']").await;
    let (_, after) = app.get_json("/api/v1/decisions?ip=192.0.2.200").await;
    assert_eq!(
        after["items"].as_array().expect("items").len(),
        0,
        "{after}"
    );

    // Jobs: start one from its generated form and watch its log.
    go(&b, "#/jobs").await;
    b.click_on("#job-kind option[value=retention_cleanup]")
        .await;
    b.click_on("#job-form button[type=submit]").await;
    let log = b.wait_text("#job-log", |t| t.contains("[info]")).await;
    b.wait_text("#job-detail", |t| t.contains("succeeded"))
        .await;
    let id = b
        .exec("return Number(new URLSearchParams(location.hash.split('?')[1]).get('id'));")
        .await;
    let (_, lines) = app
        .get_json(&format!(
            "/api/v1/jobs/{}/logs",
            id.as_i64().expect("job id")
        ))
        .await;
    for l in lines["items"].as_array().expect("lines") {
        assert!(
            log.contains(l["message"].as_str().expect("message")),
            "{log}"
        );
    }
    b.screenshot(&dir.join("jobs.png")).await;

    // An inventory uploaded from the vulnerabilities page becomes an asset.
    let list = app.dir.path().join("dpkg-l.txt");
    std::fs::write(
        &list,
        "ii  base-files 12.4+deb12u5 amd64 Debian base system miscellaneous files\n\
         ii  openssh-server 1:9.2p1-2+deb12u2 amd64 secure shell (SSH) server\n\
         ii  nginx 1.22.1-9 amd64 small, powerful, scalable web/proxy server\n",
    )
    .expect("inventory file");
    go(&b, "#/vulnerabilities").await;
    b.type_into("#u-asset", "web-7").await;
    b.type_into("#u-file", &list.display().to_string()).await;
    b.click_on("#inventory-upload button[type=submit]").await;
    b.wait_text("#asset-list", |t| t.contains("web-7")).await;
    let (status, asset) = app.get_json("/api/v1/assets/web-7").await;
    assert_eq!(status, 200, "{asset}");
    let names: Vec<&str> = asset["inventory"]
        .as_array()
        .expect("inventory")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    for package in ["base-files", "openssh-server", "nginx"] {
        assert!(names.contains(&package), "{asset}");
    }

    // The other pages draw from the API without an error.
    for page in ["vulnerabilities", "posture", "health", "alerts"] {
        go(&b, &format!("#/{page}")).await;
        b.wait_text(&format!("#page-{page}"), |t| !t.is_empty())
            .await;
        assert!(
            b.find_all(&format!("#page-{page} .error")).await.is_empty(),
            "{page}: {}",
            b.wait_text(&format!("#page-{page}"), |_| true).await
        );
        b.screenshot(&dir.join(format!("{page}.png"))).await;
    }
    // Posture: run the checks from the page; the score shown is the API's.
    go(&b, "#/posture").await;
    b.click_on("#posture-run").await;
    let score = b
        .wait_text("[data-figure=score]", |t| t.contains('%'))
        .await;
    let (_, posture) = app.get_json("/api/v1/posture").await;
    assert_eq!(figure(&score), posture["score"].as_u64().expect("score"));
    b.wait_for("#page-posture table").await;
    b.screenshot(&dir.join("posture.png")).await;
    if alerts_status == 404 {
        go(&b, "#/alerts").await;
        let page = b.wait_text("#page-alerts", |t| !t.is_empty()).await;
        assert!(page.contains("not available"), "{page}");
    }

    // Settings (admin): a secret is shown masked; the detection threshold is saved.
    let r = app
        .req(reqwest::Method::PUT, "/api/v1/secrets/webhook-token")
        .json(&serde_json::json!({"value": "s3cret-Value-Never-Shown"}))
        .send()
        .await
        .expect("secret");
    assert!(r.status().is_success(), "{}", r.status());
    go(&b, "#/settings").await;
    let secrets = b
        .wait_text("#settings-secrets", |t| t.contains("webhook-token"))
        .await;
    assert!(!secrets.contains("s3cret-Value-Never-Shown"), "{secrets}");
    b.type_into("#s-threshold", "7").await;
    b.click_on("#detection-form button[type=submit]").await;
    b.wait_for("#settings-detection").await;
    let mut saved = serde_json::Value::Null;
    for _ in 0..100 {
        saved = app.get_json("/api/v1/detection/config").await.1;
        if saved["threshold"] == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(saved["threshold"], 7, "{saved}");
    b.screenshot(&dir.join("settings.png")).await;

    // Log out: back to the login form, the refresh token gone from the tab. (Logging
    // out ends every access token of the admin, the test's own included: the viewer
    // is created first.)
    let password = "viewer-Password-123";
    let r = app
        .req(reqwest::Method::POST, "/api/v1/users")
        .json(&serde_json::json!({"username": "watcher", "password": password, "role": "viewer"}))
        .send()
        .await
        .expect("user");
    assert_eq!(r.status(), 201);

    b.click_on("#logout").await;
    b.wait_for("#login-form").await;
    assert_eq!(
        b.exec("return sessionStorage.length + localStorage.length;")
            .await,
        0
    );

    // A viewer: no posture page, no forms that change decisions or start jobs.
    login(&b, app, "watcher", password).await;
    b.wait_for("[data-figure=events-total]").await;
    assert!(b.find_all("#nav-posture").await.is_empty());
    assert!(b.find_all("#nav-settings").await.is_empty());
    assert!(b.find_all("#nav-alerts").await.is_empty());
    go(&b, "#/settings").await;
    b.wait_text("#page-settings", |t| t.contains("cannot see"))
        .await;
    assert!(!b.find_all("#nav-health").await.is_empty());
    go(&b, "#/posture").await;
    b.wait_text("#page-posture", |t| t.contains("cannot see"))
        .await;
    go(&b, "#/decisions").await;
    b.wait_for("#decision-list").await;
    assert!(b.find_all("#decision-add").await.is_empty());
    go(&b, "#/jobs").await;
    b.wait_for("#job-list").await;
    assert!(b.find_all("#job-form").await.is_empty());
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let app = spawn_on(None).await;
    dashboard_flow(&app, "sqlite").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser_postgres() {
    if skip_postgres() {
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let app = spawn_on(Some(url)).await;
    dashboard_flow(&app, "postgres").await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}

/// An access token that expires while a form is being filled in is renewed with the
/// refresh token and the request retried: nothing typed is lost and no login is asked
/// for; a reload of the tab resumes the session; the refresh token was rotated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_renewed_without_losing_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir, None);
    // One second (under the 1 min the configuration accepts), plus the 30 s clock-skew
    // leeway of the token check.
    settings.auth.config.access_ttl = palisade_core::duration::Span::from_secs(1);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    let Some(b) = browser().await else { return };
    push_traffic(&app).await;
    login(&b, &app, "admin", ADMIN_PASSWORD).await;
    b.wait_for("[data-figure=events-total]").await;
    let first = b
        .exec("return sessionStorage.getItem('palisade.refresh');")
        .await;
    assert!(first.as_str().is_some_and(|t| !t.is_empty()), "{first}");
    go(&b, "#/events").await;
    b.type_into("#f-client_ip", "198.51.100.1").await;
    tokio::time::sleep(Duration::from_secs(33)).await;
    b.click_on("#event-filters button[type=submit]").await;
    b.wait_for("#event-list tr[data-event-id]").await;
    let rows = b.find_all("#event-list tr[data-event-id]").await.len();
    assert_eq!(rows, 6, "{}", b.page_text().await);
    assert!(b.find_all("#login-form").await.is_empty());
    let second = b
        .exec("return sessionStorage.getItem('palisade.refresh');")
        .await;
    assert_ne!(first, second, "the refresh token was rotated");
    // A reload resumes the session from the tab's storage.
    b.goto(&app.url("/#/overview")).await;
    b.wait_for("[data-figure=events-total]").await;
    b.quit().await;
    app.stop().await;
}

/// The live feed shows when it is offline, reconnects by itself and replays what was
/// published meanwhile (`since`): a threat found while the browser was cut off appears
/// once it is back, without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_reconnects_and_replays_what_it_missed() {
    let app = spawn_on(None).await;
    let Some(b) = browser().await else { return };
    let check = |ip: &'static str| {
        app.req(reqwest::Method::GET, "/api/v1/check")
            .header(
                "X-Original-URI",
                "/search?q=1%27%20union%20select%20password%20from%20users--",
            )
            .header("X-Original-Method", "GET")
            .header("X-Forwarded-For", ip)
            .send()
    };
    login(&b, &app, "admin", ADMIN_PASSWORD).await;
    b.wait_for("[data-figure=events-total]").await;
    go(&b, "#/threats").await;
    b.wait_for("#threat-list").await;
    b.wait_text("#live", |t| t == "live").await;
    // A first threat arrives live: the page now knows the feed's sequence number.
    check("203.0.113.98").await.expect("check");
    b.wait_text("#threat-list", |t| t.contains("203.0.113.98"))
        .await;
    b.exec("window.__sameDocument = true; document.querySelector('#threat-list table').dataset.kept = '1';")
        .await;
    b.cdp("Network.enable", serde_json::json!({})).await;
    let conditions = |offline: bool| serde_json::json!({"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1});
    b.cdp("Network.emulateNetworkConditions", conditions(true))
        .await;
    b.wait_text("#live", |t| t.contains("offline")).await;
    // A second one while the browser is cut off.
    check("203.0.113.99").await.expect("check");
    let mut recorded = false;
    for _ in 0..100 {
        let (_, t) = app.get_json("/api/v1/threats?client_ip=203.0.113.99").await;
        if t["items"].as_array().is_some_and(|i| !i.is_empty()) {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recorded, "the threat was not recorded");
    assert!(
        !b.wait_text("#threat-list", |_| true)
            .await
            .contains("203.0.113.99")
    );
    b.cdp("Network.emulateNetworkConditions", conditions(false))
        .await;
    // Replayed from the last sequence number seen: added to the same table (not a
    // reload of the page's data), and the first one not again.
    b.wait_text("#threat-list", |t| t.contains("203.0.113.99"))
        .await;
    b.wait_text("#live", |t| t == "live").await;
    assert_eq!(
        b.exec("return window.__sameDocument === true && document.querySelector('#threat-list table').dataset.kept === '1';")
            .await,
        true,
        "the page or its data was reloaded"
    );
    assert_eq!(b.find_all("#threat-list tr[data-threat-id]").await.len(), 2);
    b.quit().await;
    app.stop().await;
}

/// The capture the flows page is tested with: a real HTTP exchange from the shared data
/// set (`../shared/data/pcaps`), when it is there.
fn shared_pcap() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/pcaps/http/zeek_wikipedia.pcap");
    p.is_file().then_some(p)
}

/// The number of `items` of an API page.
fn items(v: &serde_json::Value) -> usize {
    v["items"].as_array().map_or(0, Vec::len)
}

/// An admin manages alerting and access from the settings page (an alert rule created
/// and edited, a webhook channel whose "send test" reaches a receiver here with a valid
/// signature, an API key created and revoked so the API refuses it, a viewer created who
/// then cannot see the settings), follows an address to everything it did and bans it,
/// and reads the flows of a real packet capture.
async fn settings_pivot_and_flows(app: &TestApp, backend: &str) {
    let Some(b) = browser().await else { return };
    let dir = shots(backend);
    push_traffic(app).await;
    wait_threats(app, 5).await;
    let pcap = shared_pcap();
    if let Some(p) = &pcap {
        palisade_flows::import::import_capture(
            p.clone(),
            "zeek_wikipedia.pcap".into(),
            palisade_flows::FlowConfig::default(),
            app.store.clone(),
            None,
            None,
        )
        .await
        .expect("import the capture");
    } else {
        eprintln!("SKIPPED (flows part): ../shared/data/pcaps is not there");
    }
    let (hook, received) = crate::alerts::receiver().await;
    login(&b, app, "admin", ADMIN_PASSWORD).await;
    b.wait_for("[data-figure=events-total]").await;
    // The overview over all stored data: every event, whatever its age.
    go(&b, "#/overview?range=all").await;
    b.wait_text("#period", |t| t.contains("all stored data"))
        .await;
    let all = b.wait_text("[data-figure=events-total]", |_| true).await;
    assert_eq!(figure(&all), 40, "{all}");

    // Alert rule: created from the form, then edited.
    go(&b, "#/settings").await;
    b.type_into("#r-name", "web injections").await;
    b.click_on("#r-min_severity option[value=error]").await;
    b.type_into("#r-categories", "sqli, xss").await;
    b.click_on("#rule-form button[type=submit]").await;
    b.wait_for("tr[data-rule='web injections']").await;
    let rule_of = |v: &serde_json::Value| {
        v["items"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == "web injections").cloned())
    };
    let (_, rules) = app.get_json("/api/v1/alert-rules").await;
    let rule = rule_of(&rules).expect("the rule is stored");
    assert_eq!(rule["spec"]["min_severity"], "error", "{rule}");
    assert_eq!(
        rule["spec"]["categories"],
        serde_json::json!(["sqli", "xss"])
    );
    b.click_on("tr[data-rule='web injections'] button[aria-label^=Edit]")
        .await;
    b.wait_text("#rule-form", |t| t.contains("Save rule")).await;
    b.type_into("#r-window", "30m").await;
    b.click_on("#rule-form button[type=submit]").await;
    b.wait_text("tr[data-rule='web injections']", |t| t.contains("30m"))
        .await;
    let (_, rules) = app.get_json("/api/v1/alert-rules").await;
    let rule = rule_of(&rules).expect("still there");
    assert_eq!(rule["spec"]["window"], "30m", "{rule}");
    assert_eq!(
        rule["spec"]["categories"],
        serde_json::json!(["sqli", "xss"])
    );

    // Webhook channel: its secret is shown once; "send test" reaches the receiver, signed.
    b.type_into("#c-name", "ops hook").await;
    b.type_into("#c-url", &format!("http://{hook}/hook")).await;
    b.click_on("#channel-form button[type=submit]").await;
    let secret = b
        .wait_text("#channel-secret code", |t| t.starts_with("whsec_"))
        .await;
    b.click_on("tr[data-channel='ops hook'] button[data-action=test]")
        .await;
    let result = b
        .wait_text("#channel-test-result [data-delivered]", |t| {
            t.contains("Delivered")
        })
        .await;
    assert!(result.contains("HTTP 200"), "{result}");
    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 1, "one test message");
    let (headers, body) = &got[0];
    crate::alerts::verify(headers, body, &secret);
    let id = headers["webhook-id"].to_str().expect("id");
    assert!(
        result.contains(id),
        "the page names the message sent: {result}"
    );
    let msg: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(msg["type"], "test", "{msg}");
    b.screenshot(&dir.join("settings-alerting.png")).await;
    // Deleting the rule takes a second press.
    let del = "tr[data-rule='web injections'] button.danger";
    b.click_on(del).await;
    assert!(rule_of(&app.get_json("/api/v1/alert-rules").await.1).is_some());
    b.click_on(del).await;
    b.wait_gone("tr[data-rule='web injections']").await;
    assert!(rule_of(&app.get_json("/api/v1/alert-rules").await.1).is_none());

    // API key: shown once, works, revoked from the page, then refused by the API.
    b.type_into("#k-name", "shipper").await;
    b.click_on("#k-scope-ingest").await;
    b.click_on("#key-form button[type=submit]").await;
    let key = b.wait_text("#new-key-value", |t| !t.is_empty()).await;
    let ingest = |key: String| {
        app.client
            .post(app.url("/api/v1/ingest?format=combined&source=web"))
            .header("x-api-key", key)
            .body(line(
                "192.0.2.9",
                &clf(std::time::UNIX_EPOCH.elapsed().expect("clock").as_secs()),
                "GET",
                "/",
                200,
                "curl/8",
            ))
            .send()
    };
    assert_eq!(ingest(key.clone()).await.expect("ingest").status(), 200);
    let revoke = "tr[data-key='shipper'] button.danger";
    b.click_on(revoke).await;
    b.click_on(revoke).await;
    b.wait_text("tr[data-key='shipper']", |t| t.contains("revoked"))
        .await;
    assert_eq!(ingest(key).await.expect("ingest").status(), 401);

    // A viewer created from the page.
    let password = "viewer-Password-456";
    b.type_into("#n-username", "reader").await;
    b.type_into("#n-password", password).await;
    b.click_on("#n-role option[value=viewer]").await;
    b.click_on("#user-form button[type=submit]").await;
    b.wait_text("tr[data-user=reader]", |t| t.contains("active"))
        .await;
    b.screenshot(&dir.join("settings-access.png")).await;

    // Pivot: from one request of the traffic explorer to everything its client did.
    let ip = "198.51.100.1";
    go(&b, &format!("#/events?client_ip={ip}")).await;
    b.click_on("#event-list tr[data-event-id]").await;
    b.click_on("#pivot-ip").await;
    b.wait_for("#ip-events tr[data-event-id]").await;
    b.wait_for("#ip-threats tr[data-threat-id]").await;
    let (_, events) = app
        .get_json(&format!("/api/v1/events?client_ip={ip}&limit=50"))
        .await;
    let (_, threats) = app
        .get_json(&format!("/api/v1/threats?client_ip={ip}&limit=50"))
        .await;
    assert!(items(&threats) > 0, "{threats}");
    assert_eq!(
        b.find_all("#ip-events tr[data-event-id]").await.len(),
        items(&events)
    );
    assert_eq!(
        b.find_all("#ip-threats tr[data-threat-id]").await.len(),
        items(&threats)
    );
    let shown = b.wait_text("#ip-threats", |_| true).await;
    for t in threats["items"].as_array().expect("items") {
        let uri = t["uri"].as_str().expect("uri");
        assert!(shown.contains(uri), "{shown} lacks {uri}");
    }
    b.type_into("#ban-duration", "2h").await;
    b.click_on("#ip-ban button[type=submit]").await;
    b.wait_for(&format!("#ip-decisions tr[data-decision='{ip}']"))
        .await;
    let (_, bans) = app
        .get_json(&format!("/api/v1/decisions?ip={ip}&kind=ban"))
        .await;
    assert_eq!(bans["items"][0]["value"], ip, "{bans}");
    b.screenshot(&dir.join("address.png")).await;

    // Flows of the real capture: the page lists the API's, and one opens.
    if pcap.is_some() {
        go(&b, "#/flows").await;
        b.wait_for("#flow-list tr[data-flow-id]").await;
        let (_, flows) = app.get_json("/api/v1/flows?limit=50").await;
        assert!(items(&flows) > 0, "{flows}");
        assert_eq!(
            b.find_all("#flow-list tr[data-flow-id]").await.len(),
            items(&flows)
        );
        go(&b, "#/flows?protocol=tcp&port=80").await;
        b.wait_for("#flow-list tr[data-flow-id]").await;
        let (_, http) = app
            .get_json("/api/v1/flows?protocol=tcp&port=80&limit=50")
            .await;
        assert_eq!(
            b.find_all("#flow-list tr[data-flow-id]").await.len(),
            items(&http)
        );
        b.click_on("#flow-list tr[data-flow-id]").await;
        let first = &http["items"][0];
        let detail = b
            .wait_text("#flow-detail", |t| t.contains("Responder sent"))
            .await;
        for k in ["src_ip", "dst_ip"] {
            let v = first[k].as_str().expect("address");
            assert!(detail.contains(v), "{detail} lacks {v}");
        }
        b.screenshot(&dir.join("flows.png")).await;
    }

    // The viewer: no settings in the navigation, the page refused, and the API refuses.
    b.click_on("#logout").await;
    b.wait_for("#login-form").await;
    login(&b, app, "reader", password).await;
    b.wait_for("[data-figure=events-total]").await;
    assert!(b.find_all("#nav-settings").await.is_empty());
    go(&b, "#/settings").await;
    b.wait_text("#page-settings", |t| t.contains("cannot see"))
        .await;
    assert!(b.find_all("#rule-form").await.is_empty());
    let (status, viewer) = app.login("reader", password).await;
    assert_eq!(status, 200, "{viewer}");
    let token = viewer["access_token"].as_str().expect("token");
    for path in ["/api/v1/users", "/api/v1/api-keys", "/api/v1/channels"] {
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 403, "{path}");
    }
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_settings_address_and_flows_pages() {
    let app = spawn_on(None).await;
    settings_pivot_and_flows(&app, "sqlite").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_settings_address_and_flows_pages_postgres() {
    if skip_postgres() {
        return;
    }
    let base = pg_base_url();
    let (url, schema) = pg_schema_url(&base).await;
    let app = spawn_on(Some(url)).await;
    settings_pivot_and_flows(&app, "postgres").await;
    app.stop().await;
    pg_drop_schema(&base, &schema).await;
}
