//! Issue 19, finding 6 (the proxy's half): with a small open-files limit, a flood of
//! idle connections to the protecting proxy must neither make the proxy unreachable
//! for a new client nor take the descriptors the API needs. The real binary runs under
//! `prlimit --nofile=256`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

async fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(url).await.is_err() {
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_flood_on_the_proxy_leaves_it_and_the_api_reachable_within_256_descriptors() {
    if !Path::new("/usr/bin/prlimit").exists() {
        eprintln!("prlimit (util-linux) is not installed; skipped");
        return;
    }
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "hello from the app" });
        axum::serve(upstream, app).await.unwrap();
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let (api, front) = (free_port(), free_port());
    let _palisade = Guard(
        Command::new("/usr/bin/prlimit")
            .arg("--nofile=256:256")
            .arg(env!("CARGO_BIN_EXE_palisade"))
            .args(["serve", "--listen", &format!("127.0.0.1:{api}")])
            .args(["--proxy-listen", &format!("127.0.0.1:{front}")])
            .args(["--proxy-upstream", &format!("http://{up_addr}")])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("PALISADE_DATABASE_URL")
            .env_remove("PALISADE_CONFIG")
            .env("PALISADE_LOG", "warn")
            .env("PALISADE_ADMIN_PASSWORD", "descriptors-Admin-Password-42")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("palisade"),
    );
    wait_http(&format!("http://127.0.0.1:{api}/readyz")).await;

    // More idle connections than the process has descriptors.
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(
            tokio::net::TcpStream::connect(("127.0.0.1", front))
                .await
                .expect("connect"),
        );
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let through = client
        .get(format!("http://127.0.0.1:{front}/products"))
        .send()
        .await
        .expect("the proxy answers a new client");
    assert_eq!(through.status(), 200);
    assert_eq!(through.text().await.unwrap(), "hello from the app");
    let live = client
        .get(format!("http://127.0.0.1:{api}/livez"))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(live.status(), 200);
    drop(flood);
}
