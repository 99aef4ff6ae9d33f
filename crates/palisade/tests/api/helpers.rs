//! `spawn_app`: the real service on a random port with a fresh database.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use palisade::Application;
use palisade::config::{Overrides, Settings};
use palisade_store::SharedStore;
use tempfile::TempDir;

/// PostgreSQL for tests: `PALISADE_TEST_DATABASE_URL`, else the local server.
pub fn pg_base_url() -> String {
    std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether PostgreSQL tests are switched off (`PALISADE_SKIP_POSTGRES=1`).
pub fn skip_postgres() -> bool {
    std::env::var("PALISADE_SKIP_POSTGRES").is_ok_and(|v| v == "1")
}

/// A fresh schema name, unique across processes and runs.
pub fn unique_schema() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "t_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a schema and returns a URL whose connections use it.
pub async fn pg_schema_url(base: &str) -> (String, String) {
    let schema = unique_schema();
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must be reachable for these tests (or set PALISADE_SKIP_POSTGRES=1)");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    (
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        schema,
    )
}

/// Drops a test schema.
pub async fn pg_drop_schema(base: &str, schema: &str) {
    if let Ok((client, conn)) = tokio_postgres::connect(base, tokio_postgres::NoTls).await {
        tokio::spawn(conn);
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
    }
}

/// A running service and the means to talk to it.
pub struct TestApp {
    pub address: String,
    /// An admin's access token (empty until `login_admin`).
    pub token: String,
    pub client: reqwest::Client,
    pub store: SharedStore,
    /// Where the configured protecting proxies listen.
    #[allow(dead_code)]
    pub proxies: Vec<std::net::SocketAddr>,
    #[allow(dead_code)]
    pub dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request")
    }

    /// A request with the admin token.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// Logs in; returns the status and the token response body.
    pub async fn login(&self, username: &str, password: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Waits for the bootstrap admin and keeps its access token. Logs in only once the
    /// admin exists: failed logins count towards a lockout, even for unknown names.
    pub async fn login_admin(&mut self) {
        for _ in 0..400 {
            if matches!(self.store.user_by_name("admin").await, Ok(Some(_))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for _ in 0..200 {
            let (status, body) = self.login("admin", ADMIN_PASSWORD).await;
            if status == 200 {
                self.token = body["access_token"].as_str().expect("token").to_owned();
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the bootstrap admin never became able to log in");
    }

    /// Creates a user with a role and returns an access token for it.
    pub async fn token_for(&self, username: &str, role: &str) -> String {
        let password = format!("{username}-Password-123");
        let r = self
            .req(reqwest::Method::POST, "/api/v1/users")
            .json(&serde_json::json!({"username": username, "password": password, "role": role}))
            .send()
            .await
            .expect("create user");
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let (status, body) = self.login(username, &password).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// Creates an API key with scopes and returns it.
    pub async fn api_key(&self, name: &str, scopes: &[&str]) -> String {
        let r = self
            .req(reqwest::Method::POST, "/api/v1/api-keys")
            .json(&serde_json::json!({"name": name, "scopes": scopes}))
            .send()
            .await
            .expect("create key");
        assert_eq!(r.status(), 201);
        let body: serde_json::Value = r.json().await.expect("json");
        body["key"].as_str().expect("key").to_owned()
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// A GET with the admin token, as text.
    #[allow(dead_code)]
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    pub async fn push(&self, query: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/v1/ingest{query}")))
            .bearer_auth(&self.token)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    /// Polls until the service is ready (the schema is applied).
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self
                .client
                .get(self.url("/readyz"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
                == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("service never became ready");
    }

    /// Graceful stop that hands back the data directory, to start again on it.
    pub async fn stop_keep_dir(mut self) -> TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Graceful stop.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }
}

/// Settings for a test: random port, data in a temp dir.
pub fn test_settings(dir: &TempDir, database_url: Option<String>) -> Settings {
    let mut s = Settings::load(&Overrides {
        config: Some(PathBuf::from("/dev/null")),
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_path_buf()),
        database_url,
        log_level: Some(std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into())),
        ..Overrides::default()
    })
    .expect("test settings");
    s.api.max_body_bytes = 64 * 1024;
    s.auth.admin_password = Some(palisade::config::Redacted(ADMIN_PASSWORD.into()));
    let limits = &mut s.auth.config.limits;
    limits.login_per_minute = 10_000;
    limits.read_per_second = 10_000;
    limits.write_per_second = 10_000;
    limits.ingest_per_second = 10_000;
    s
}

/// The bootstrap admin's password in tests.
pub const ADMIN_PASSWORD: &str = "test-Admin-Password-42";

/// Starts the app with custom settings.
pub async fn spawn_with(settings: Settings, dir: TempDir) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        palisade::telemetry::init(&settings.log_level, palisade::telemetry::LogFormat::Text);
    }
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://{}", app.local_addr().expect("addr"));
    let store = app.store();
    let proxies = app.proxy_addrs();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        token: String::new(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        store,
        proxies,
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Starts the app on a fresh SQLite database and waits until it is ready.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(&dir, None);
    let mut app = spawn_with(settings, dir).await;
    app.wait_ready().await;
    app.login_admin().await;
    app
}

/// A combined log line.
pub fn line(ip: &str, ts: &str, method: &str, target: &str, status: u16, ua: &str) -> String {
    format!("{ip} - - [{ts}] \"{method} {target} HTTP/1.1\" {status} 512 \"-\" \"{ua}\"")
}
