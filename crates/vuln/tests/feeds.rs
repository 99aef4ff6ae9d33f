//! The NVD and CIRCL clients against a local HTTP server that serves the recorded
//! pages and records (`tests/data`) and injects what real feeds do: 503, 429 with
//! `Retry-After`, answers slower than the timeout and bodies cut short; plus a sync cut
//! off by a cancellation and by an outage, resumed from its stored cursor.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_core::duration::Span;
use palisade_core::vuln::CveOrigin;
use palisade_store::{SharedStore, Store};
use palisade_vuln::nvd::{self, SyncState};
use palisade_vuln::{CirclConfig, NvdConfig, TaskContext, VulnError};

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

/// What the server does with the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Unavailable,
    TooMany,
    Slow,
    Truncated,
    ServerError,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    start: u64,
    window: Option<(String, String)>,
    api_key: Option<String>,
}

#[derive(Default)]
struct Feed {
    faults: Mutex<VecDeque<Fault>>,
    /// A fault for every request from then on (an outage).
    down: Mutex<Option<Fault>>,
    seen: Mutex<Vec<Seen>>,
    pages: Vec<Vec<u8>>,
}

async fn nvd_page(
    State(feed): State<Arc<Feed>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let start: u64 = get("startIndex").and_then(|s| s.parse().ok()).unwrap_or(0);
    let window = get("lastModStartDate").zip(get("lastModEndDate"));
    feed.seen.lock().unwrap().push(Seen {
        start,
        window: window.clone(),
        api_key: headers
            .get("apiKey")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let fault = feed
        .faults
        .lock()
        .unwrap()
        .pop_front()
        .or(*feed.down.lock().unwrap());
    let body = if window.is_some() {
        // Nothing changed since the last sync.
        br#"{"resultsPerPage":0,"startIndex":0,"totalResults":0,"format":"NVD_CVE","version":"2.0","vulnerabilities":[]}"#.to_vec()
    } else {
        match feed.pages.get((start / 50) as usize) {
            Some(p) if start.is_multiple_of(50) => p.clone(),
            _ => format!(r#"{{"resultsPerPage":0,"startIndex":{start},"totalResults":145,"vulnerabilities":[]}}"#).into_bytes(),
        }
    };
    match fault {
        Some(Fault::Unavailable) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Some(Fault::ServerError) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some(Fault::TooMany) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response(),
        Some(Fault::Slow) => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            body.into_response()
        }
        Some(Fault::Truncated) => body[..body.len() / 2].to_vec().into_response(),
        None => ([("content-type", "application/json")], body).into_response(),
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn nvd_server(faults: &[Fault]) -> (Arc<Feed>, String) {
    let pages = (0..3)
        .map(|i| std::fs::read(data(&format!("nvd/nvdcve-2.0-page-{i:03}.json"))).unwrap())
        .collect();
    let feed = Arc::new(Feed {
        faults: Mutex::new(faults.iter().copied().collect()),
        pages,
        ..Feed::default()
    });
    let router = axum::Router::new()
        .route("/rest/json/cves/2.0", axum::routing::get(nvd_page))
        .with_state(feed.clone());
    let base = serve(router).await;
    (feed, format!("{base}/rest/json/cves/2.0"))
}

/// Settings for a fast test: short timeout, short backoff, a generous rate.
fn nvd_config(url: &str) -> NvdConfig {
    NvdConfig {
        url: url.into(),
        timeout: Span::from_millis(500),
        backoff: Span::from_millis(10),
        max_backoff: Span::from_millis(50),
        attempts: 6,
        requests_without_key: 1000,
        requests_with_key: 1000,
        ..NvdConfig::default()
    }
}

async fn sqlite() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = palisade_store::sqlite::SqliteStore::open(&dir.path().join("p.db")).unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), dir)
}

async fn state(store: &SharedStore) -> SyncState {
    nvd::load_state(store).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_survives_503_429_slow_and_truncated_answers() {
    let faults = [
        Fault::Unavailable,
        Fault::TooMany,
        Fault::Slow,
        Fault::Truncated,
    ];
    let (feed, url) = nvd_server(&faults).await;
    let (store, _dir) = sqlite().await;
    let client = nvd::NvdClient::new(&nvd_config(&url), None).unwrap();
    let progress = Mutex::new(Vec::new());
    let report = |p: u8, _: &str| progress.lock().unwrap().push(p);
    let never = || false;
    let ctx = TaskContext::new(&report, &never);
    let summary = nvd::sync(&store, &client, Duration::from_secs(3600), &ctx)
        .await
        .unwrap();
    assert!(summary.full && !summary.resumed);
    assert_eq!(summary.pages, 3);
    assert_eq!(summary.records, 145);
    assert_eq!(summary.stored.inserted, 145);
    assert_eq!(store.cve_stats().await.unwrap().count, 145);
    let seen: Vec<u64> = feed.seen.lock().unwrap().iter().map(|s| s.start).collect();
    assert_eq!(
        seen,
        [0, 0, 0, 0, 0, 50, 100],
        "four failed tries, then three pages"
    );
    assert!(
        feed.seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.api_key.is_none())
    );
    let st = state(&store).await;
    assert!(st.running.is_none());
    assert!(st.synced_until.is_some());
    let progress = progress.lock().unwrap();
    assert_eq!(progress.last(), Some(&100));
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sync_resumes_at_the_page_it_had_not_stored() {
    let (feed, url) = nvd_server(&[]).await;
    let (store, _dir) = sqlite().await;
    let client = nvd::NvdClient::new(&nvd_config(&url), None).unwrap();
    // Cancel as soon as the first page has been stored.
    let pages = AtomicUsize::new(0);
    let report = |_: u8, _: &str| {
        pages.fetch_add(1, Ordering::SeqCst);
    };
    let cancelled = || pages.load(Ordering::SeqCst) >= 1;
    let ctx = TaskContext::new(&report, &cancelled);
    let err = nvd::sync(&store, &client, Duration::from_secs(3600), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, VulnError::Cancelled), "{err}");
    assert_eq!(store.cve_stats().await.unwrap().count, 50);
    let st = state(&store).await;
    let running = st.running.expect("the position is saved");
    assert_eq!(running.next_index, 50);
    assert!(st.synced_until.is_none());

    // A new process (a new client) picks it up where it stopped.
    let client = nvd::NvdClient::new(&nvd_config(&url), None).unwrap();
    let summary = nvd::sync(
        &store,
        &client,
        Duration::from_secs(3600),
        &TaskContext::silent(),
    )
    .await
    .unwrap();
    assert!(summary.resumed);
    assert_eq!(summary.pages, 2);
    assert_eq!(store.cve_stats().await.unwrap().count, 145);
    let seen: Vec<u64> = feed.seen.lock().unwrap().iter().map(|s| s.start).collect();
    assert_eq!(seen, [0, 50, 100], "the stored page was not fetched again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_stops_the_sync_with_its_position_saved() {
    let (feed, url) = nvd_server(&[]).await;
    let (store, _dir) = sqlite().await;
    let mut config = nvd_config(&url);
    config.attempts = 3;
    let client = nvd::NvdClient::new(&config, None).unwrap();
    // The first page is served, then the feed goes down.
    let pages = AtomicUsize::new(0);
    let feed2 = feed.clone();
    let report = move |_: u8, _: &str| {
        if pages.fetch_add(1, Ordering::SeqCst) == 0 {
            *feed2.down.lock().unwrap() = Some(Fault::ServerError);
        }
    };
    let never = || false;
    let err = nvd::sync(
        &store,
        &client,
        Duration::from_secs(3600),
        &TaskContext::new(&report, &never),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, VulnError::Http { .. }), "{err}");
    assert_eq!(state(&store).await.running.unwrap().next_index, 50);
    // Back up: the next run resumes at 50 and completes.
    *feed.down.lock().unwrap() = None;
    let summary = nvd::sync(
        &store,
        &client,
        Duration::from_secs(3600),
        &TaskContext::silent(),
    )
    .await
    .unwrap();
    assert!(summary.resumed);
    assert_eq!(store.cve_stats().await.unwrap().count, 145);
    let seen: Vec<u64> = feed.seen.lock().unwrap().iter().map(|s| s.start).collect();
    assert_eq!(seen, [0, 50, 50, 50, 50, 100]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_sync_is_incremental_with_the_key_from_the_secrets_store() {
    let (feed, url) = nvd_server(&[]).await;
    let (store, _dir) = sqlite().await;
    // The key is kept encrypted in the secrets store.
    let secrets = palisade_auth::secrets::SecretBox::new([7u8; 32], Vec::new());
    let sealed = secrets.seal("nvd_api_key", b"test-key-123").unwrap();
    store
        .put_secret(&palisade_core::security::SecretRecord {
            name: "nvd_api_key".into(),
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            updated_at: palisade_core::Timestamp::now(),
            updated_by: Some("test".into()),
        })
        .await
        .unwrap();
    let key = palisade_vuln::nvd_api_key(&store, &secrets, "nvd_api_key")
        .await
        .unwrap();
    assert_eq!(key.as_deref(), Some("test-key-123"));
    assert!(
        palisade_vuln::nvd_api_key(&store, &secrets, "other")
            .await
            .unwrap()
            .is_none()
    );
    let config = nvd_config(&url);
    palisade_vuln::fetch_nvd(&store, &config, key.clone(), None, &TaskContext::silent())
        .await
        .unwrap();
    let first = state(&store).await.synced_until.unwrap();
    let summary = palisade_vuln::fetch_nvd(&store, &config, key, None, &TaskContext::silent())
        .await
        .unwrap();
    assert!(!summary.full);
    assert_eq!(summary.records, 0);
    let seen = feed.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter()
            .all(|s| s.api_key.as_deref() == Some("test-key-123"))
    );
    let (from, to) = seen[3].window.clone().expect("a lastModified window");
    // The window starts an overlap (1h) before the previous sync began.
    let expected_from = palisade_core::Timestamp(first.as_micros() - 3_600_000_000);
    assert_eq!(from, nvd_time(expected_from));
    assert!(to > from);
    assert!(state(&store).await.synced_until.unwrap() > first);
}

fn nvd_time(t: palisade_core::Timestamp) -> String {
    let (y, mo, d, h, mi, s, us) = t.to_civil();
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}",
        us / 1000
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_pages_import_offline_and_idempotently() {
    let (store, _dir) = sqlite().await;
    let files: Vec<PathBuf> = (0..3)
        .map(|i| data(&format!("nvd/nvdcve-2.0-page-{i:03}.json")))
        .collect();
    let s = palisade_vuln::import_files(&store, &files, &TaskContext::silent())
        .await
        .unwrap();
    assert_eq!((s.files, s.records, s.stored.inserted), (3, 145, 145));
    let again = palisade_vuln::import_files(&store, &files[..1], &TaskContext::silent())
        .await
        .unwrap();
    assert_eq!(
        (
            again.stored.inserted,
            again.stored.unchanged + again.stored.updated
        ),
        (0, 50)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"{\"resultsPerPage\": 1, \"vulnerabilities\": [").unwrap();
    let err = palisade_vuln::import_files(&store, &[bad], &TaskContext::silent())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad.json"), "{err}");
    let log4shell = store.get_cve("CVE-2021-44228").await.unwrap().unwrap();
    assert_eq!(log4shell.origin, CveOrigin::Nvd);
    assert!(!store.cves_for_product("log4j").await.unwrap().is_empty());
}

#[derive(Default)]
struct Circl {
    faults: Mutex<VecDeque<Fault>>,
    seen: Mutex<Vec<String>>,
}

async fn circl_record(
    State(c): State<Arc<Circl>>,
    Path((route, id)): Path<(String, String)>,
) -> Response {
    c.seen.lock().unwrap().push(format!("{route}/{id}"));
    if c.faults.lock().unwrap().pop_front() == Some(Fault::Unavailable) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    // Recorded answers: CVE-2023-5568 from the legacy route, CVE-2020-17106 from the
    // documented one.
    let file = match (route.as_str(), id.as_str()) {
        ("cve", "CVE-2023-5568") => "circl/api_cve_CVE-2023-5568.json",
        ("vulnerability", "CVE-2020-17106") => "circl/api_cve_CVE-2020-17106.json",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    std::fs::read(data(file)).unwrap().into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circl_records_in_both_shapes_are_stored() {
    let circl = Arc::new(Circl {
        faults: Mutex::new([Fault::Unavailable].into_iter().collect()),
        ..Circl::default()
    });
    let router = axum::Router::new()
        .route("/api/{route}/{id}", axum::routing::get(circl_record))
        .with_state(circl.clone());
    let base = serve(router).await;
    let (store, _dir) = sqlite().await;
    let config = CirclConfig {
        url: base,
        backoff: Span::from_millis(10),
        max_backoff: Span::from_millis(50),
        ..CirclConfig::default()
    };
    let ids: Vec<String> = ["CVE-2023-5568", "CVE-2020-17106", "CVE-2099-0001"]
        .map(str::to_owned)
        .to_vec();
    let s = palisade_vuln::fetch_circl(&store, &config, &ids, &TaskContext::silent())
        .await
        .unwrap();
    assert_eq!(s.asked, 3);
    assert_eq!(s.unknown, ["CVE-2099-0001"]);
    assert_eq!(s.stored.inserted, 2);
    let samba = store.get_cve("CVE-2023-5568").await.unwrap().unwrap();
    assert_eq!(samba.origin, CveOrigin::Circl);
    assert_eq!(samba.score(), Some(5.9));
    assert_eq!(samba.cwes, ["CWE-122"]);
    assert!(samba.description().unwrap().contains("Samba"));
    let hevc = store.get_cve("CVE-2020-17106").await.unwrap().unwrap();
    assert_eq!(hevc.score(), Some(9.3));
    assert_eq!(
        hevc.configurations[0].nodes[0].matches[0].criteria,
        "cpe:2.3:a:microsoft:hevc_video_extensions:*:*:*:*:*:*:*:*"
    );
    let seen = circl.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "vulnerability/CVE-2023-5568",
            "vulnerability/CVE-2023-5568",
            "cve/CVE-2023-5568",
            "vulnerability/CVE-2020-17106",
            "vulnerability/CVE-2099-0001",
            "cve/CVE-2099-0001",
        ],
        "a 503 is retried, a 404 tries the legacy route"
    );
    let err = palisade_vuln::fetch_circl(
        &store,
        &config,
        &["../etc/passwd".to_owned()],
        &TaskContext::silent(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, VulnError::Parse(_)));
}
