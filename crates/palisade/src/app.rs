//! Start-up and shutdown of the service: the one place where the pipeline's stages are
//! wired together.
//!
//! ```text
//! tail sources ─► BatchWriter (bounded) ─► Store ◄─ API reads
//! HTTP push ────┘        │                   ▲ ▲
//!                        ▼ stored batches    │ └── ThreatRecorder ◄─ /check, proxies
//!                 ingest inspector ──threats─┘
//!                       DB monitor (migrate, ping) ─► health
//!                       decision sync (load, reload, expire) ─► DecisionSet ─► /check
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use palisade_api::{AppState, DbHealth};
use palisade_sources::{BatchWriter, SourceRegistry};
use palisade_store::SharedStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Settings;

/// How often the database is pinged for health.
const DB_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Longest a graceful shutdown waits for sources and the writer to flush.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    shutdown: watch::Sender<bool>,
    source_tasks: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    writer_task: JoinHandle<()>,
    inspect_task: JoinHandle<()>,
    behaviour_task: JoinHandle<()>,
    threat_task: JoinHandle<()>,
    proxies: Vec<palisade_proxy::BoundProxy>,
    writer: BatchWriter,
    store: SharedStore,
}

/// Creates the data directory (owner-only: it will hold keys and the database).
pub fn prepare_data_dir(settings: &Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} (set --data-dir or PALISADE_DATA_DIR to a writable place)",
            settings.data_dir.display()
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ =
            std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Loads (or creates, 0600) the JWT signing key and the secrets keyring, and builds the
/// authentication context.
pub fn build_auth(settings: &Settings) -> anyhow::Result<palisade_api::auth::AuthContext> {
    use palisade_auth::{jwt, secrets};
    prepare_data_dir(settings)?;
    let jwt_key = match &settings.auth.jwt_key {
        Some(k) => k.0.as_bytes().to_vec(),
        None => jwt::load_or_create_key(&settings.auth.jwt_key_file)
            .with_context(|| format!("JWT signing key {}", settings.auth.jwt_key_file.display()))?,
    };
    let keys = jwt::JwtKeys::new(jwt_key, "palisade", "palisade-api")
        .context("JWT signing key (PALISADE_JWT_KEY must be 32 to 64 bytes)")?;
    let (mut active, mut older) = secrets::load_or_create_keyring(&settings.auth.secrets_key_file)
        .with_context(|| {
            format!(
                "secrets keyring {}",
                settings.auth.secrets_key_file.display()
            )
        })?;
    if let Some(k) = &settings.auth.secrets_key {
        let from_env = secrets::parse_key(&k.0).context("PALISADE_SECRETS_KEY")?;
        if from_env != active {
            older.push(active);
            active = from_env;
        }
    }
    Ok(palisade_api::auth::AuthContext::new(
        keys,
        secrets::SecretBox::new(active, older),
        settings.auth.config.clone(),
    ))
}

/// Creates the first admin when there is none: with `PALISADE_ADMIN_PASSWORD`, or a
/// random password printed once to the terminal (never to the log). There is no
/// default password.
pub async fn ensure_admin(store: &SharedStore, password: Option<&str>) -> anyhow::Result<()> {
    if store.count_active_admins().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match password {
        Some(p) => {
            palisade_auth::password::check_strength(p, "admin")
                .map_err(|why| anyhow::anyhow!("PALISADE_ADMIN_PASSWORD is too weak: {why}"))?;
            (p.to_owned(), false)
        }
        None => (palisade_auth::password::generate()?, true),
    };
    let hash = tokio::task::spawn_blocking(move || {
        palisade_auth::password::hash(&password).map(|h| (h, password))
    })
    .await??;
    let (password_hash, password) = hash;
    let user = store
        .create_user(palisade_core::security::NewUser {
            username: "admin".into(),
            role: palisade_core::security::Role::Admin,
            password_hash,
        })
        .await;
    match user {
        Ok(_) => {
            if generated {
                eprintln!(
                    "\n  Created the first admin user 'admin' with password:\n\n      {password}\n\n  It is shown only this once. Change it with `palisade user passwd admin`.\n"
                );
            }
            tracing::info!(
                message = "Created the first admin user.",
                username = "admin"
            );
            let _ = store
                .append_audit(palisade_core::security::NewAudit {
                    actor: Some("bootstrap".into()),
                    action: "user.create".into(),
                    target: Some("admin".into()),
                    outcome: "success".into(),
                    client_ip: None,
                    detail: Some(
                        if generated {
                            "random password"
                        } else {
                            "password from PALISADE_ADMIN_PASSWORD"
                        }
                        .into(),
                    ),
                })
                .await;
            Ok(())
        }
        // Another process created it first.
        Err(palisade_store::StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Opens the configured store (never waiting on the network).
pub fn open_store(settings: &Settings) -> anyhow::Result<SharedStore> {
    prepare_data_dir(settings)?;
    palisade_store::open(&settings.database_url, &settings.data_dir).with_context(|| {
        format!(
            "cannot open the database {}",
            palisade_store::redact_url(&settings.database_url)
        )
    })
}

impl Application {
    /// Builds everything and binds the listener. Returns quickly even when the database
    /// is down: migrations and health checks run in the background and retry.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let db = Arc::new(DbHealth::new(store.backend()));
        let monitor = tokio::spawn(palisade_api::health::monitor(
            store.clone(),
            db.clone(),
            DB_CHECK_INTERVAL,
            shutdown_rx.clone(),
        ));
        let detection = Arc::new(
            palisade_api::detection::Detection::new(
                settings.detection.engine,
                settings.detection.mode,
                settings.detection.rules_dir.clone(),
            )
            .context("loading the detection rules")?,
        );
        let (threats, threat_task) =
            palisade_api::recorder::ThreatRecorder::spawn(store.clone(), shutdown_rx.clone());
        let (inspect_tx, inspect_task) =
            palisade_api::inspector::spawn(detection.clone(), threats.clone());
        let decisions = Arc::new(palisade_api::decisions::Decisions::new(store.clone()));
        let decision_sync = palisade_api::decisions::spawn_sync(
            decisions.clone(),
            db.clone(),
            settings.decisions,
            shutdown_rx.clone(),
        );
        let (bans_tx, bans_task) = palisade_api::behaviour::spawn_bans(decisions.clone());
        let behaviour = Arc::new(build_behaviour(&settings)?);
        let (behaviour_tx, behaviour_task) =
            palisade_api::behaviour::spawn(behaviour.clone(), threats.clone(), Some(bans_tx));
        let mut writer_config = settings.writer.clone();
        writer_config.observers.push(inspect_tx);
        writer_config.observers.push(behaviour_tx);
        let (writer, writer_task) =
            BatchWriter::spawn(store.clone(), writer_config, shutdown_rx.clone());

        let sources = SourceRegistry::default();
        let mut source_tasks = Vec::new();
        for tail in &settings.sources {
            let status = sources.register(&tail.name, "file", &tail.path.display().to_string());
            source_tasks.push(tokio::spawn(palisade_sources::tail::run(
                tail.clone(),
                store.clone(),
                writer.clone(),
                status,
                shutdown_rx.clone(),
            )));
        }

        for listener in &settings.syslog {
            let status = sources.register(&listener.name, "syslog", &listener.target());
            source_tasks.push(tokio::spawn(palisade_sources::syslog::run(
                listener.clone(),
                writer.clone(),
                status,
                shutdown_rx.clone(),
            )));
        }

        let auth = Arc::new(build_auth(&settings)?);
        let mut background = vec![tokio::spawn(save_behaviour(
            behaviour.clone(),
            shutdown_rx.clone(),
        ))];
        if let Some(every) = settings.detection.reload_every {
            background.push(tokio::spawn(watch_rules(
                detection.clone(),
                every,
                shutdown_rx.clone(),
            )));
        }
        let mut proxies = Vec::new();
        for config in &settings.proxies {
            let context = palisade_proxy::ProxyContext {
                detection: detection.clone(),
                threats: threats.clone(),
                decisions: Some(decisions.clone()),
            };
            proxies.push(
                palisade_proxy::BoundProxy::bind(config.clone(), context)
                    .await
                    .context(
                        "starting a protecting proxy (is the port in use? set [[proxy]] listen)",
                    )?,
            );
        }
        let bootstrap = {
            let (store, db, password) = (
                store.clone(),
                db.clone(),
                settings.auth.admin_password.clone(),
            );
            let detection = detection.clone();
            tokio::spawn(async move {
                let mut restored = false;
                loop {
                    if db.ready() {
                        if !restored {
                            match palisade_api::routes::detection_config::restore(
                                &store, &detection,
                            )
                            .await
                            {
                                Ok(()) => restored = true,
                                Err(error) => {
                                    tracing::error!(message = "Cannot restore the saved detection settings.", %error)
                                }
                            }
                        }
                        match ensure_admin(&store, password.as_ref().map(|p| p.0.as_str())).await {
                            Ok(()) => return,
                            Err(error) => {
                                tracing::error!(message = "Cannot create the first admin.", error = %format!("{error:#}"))
                            }
                        }
                        if password.is_some() {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let state = AppState {
            store: store.clone(),
            writer: writer.clone(),
            sources,
            db,
            config: Arc::new(settings.api.clone()),
            started: Instant::now(),
            auth,
            detection: detection.clone(),
            threats,
            behaviour,
            decisions,
        };
        let router = palisade_api::router(state);
        let listener = TcpListener::bind(settings.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (is another process using it? set --listen)",
                settings.listen
            )
        })?;
        Ok(Application {
            listener,
            router,
            shutdown,
            source_tasks,
            background: {
                background.extend([monitor, bootstrap, decision_sync, bans_task]);
                background
            },
            threat_task,
            inspect_task,
            behaviour_task,
            proxies,
            writer_task,
            writer,
            store,
        })
    }

    /// The addresses the protecting proxies listen on, in configuration order.
    pub fn proxy_addrs(&self) -> Vec<SocketAddr> {
        self.proxies.iter().filter_map(|p| p.local_addr()).collect()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The store the service uses.
    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }

    /// Serves until `signal` completes, then shuts down gracefully: stops accepting,
    /// lets sources flush their last batch with its checkpoint, drains the writer.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            shutdown,
            source_tasks,
            background,
            writer_task,
            inspect_task,
            behaviour_task,
            threat_task,
            proxies,
            writer,
            store: _,
        } = self;
        let proxy_tasks: Vec<JoinHandle<()>> = proxies
            .into_iter()
            .map(|p| tokio::spawn(p.serve(shutdown.subscribe())))
            .collect();
        let addr = listener.local_addr()?;
        tracing::info!(message = "Serving.", address = %addr);
        let stop = shutdown.clone();
        let server = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            signal.await;
            tracing::info!(message = "Shutting down: draining requests, flushing sources.");
            let _ = stop.send(true);
        });
        let served = server.await;
        let _ = shutdown.send(true);

        let drain = async {
            for t in proxy_tasks {
                let _ = t.await;
            }
            for t in source_tasks {
                let _ = t.await;
            }
            drop(writer);
            let _ = writer_task.await;
            let _ = inspect_task.await;
            let _ = behaviour_task.await;
            let _ = threat_task.await;
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            tracing::warn!(
                message = "Shutdown drain timed out; unflushed lines will be re-read from the checkpoint at next start."
            );
        }
        for t in background {
            t.abort();
        }
        tracing::info!(message = "Stopped.");
        served.context("the HTTP server failed")
    }
}

/// The scenario engine with its saved buckets (kept in the data directory).
fn build_behaviour(settings: &Settings) -> anyhow::Result<palisade_api::behaviour::Behaviour> {
    let set = palisade_scenarios::ScenarioSet::load(settings.scenarios.dir.as_deref())
        .context("loading the behaviour scenarios")?;
    let mut config = palisade_scenarios::EngineConfig::default();
    if let Some(cap) = settings.scenarios.max_buckets {
        config.max_buckets = cap;
    }
    prepare_data_dir(settings)?;
    Ok(palisade_api::behaviour::Behaviour::new(
        palisade_scenarios::ScenarioEngine::new(set, config),
        Some(settings.data_dir.join("scenarios.state.json")),
    ))
}

/// Saves the behaviour buckets every minute, so a crash loses at most a minute of
/// state (a clean stop saves again when the stage ends).
async fn save_behaviour(
    behaviour: Arc<palisade_api::behaviour::Behaviour>,
    mut shutdown: watch::Receiver<bool>,
) {
    let failures = palisade_core::metrics::registry().counter(
        "palisade_behaviour_state_save_failures_total",
        "Failed saves of the behaviour buckets.",
        &[],
        &[],
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.changed() => return,
        }
        let b = behaviour.clone();
        match tokio::task::spawn_blocking(move || b.save()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                failures.inc();
                tracing::error!(message = "Cannot save behaviour state; will retry.", %error)
            }
            Err(error) => {
                failures.inc();
                tracing::error!(message = "Behaviour save task failed.", %error)
            }
        }
    }
}

/// Reloads the rule directory when its files change. A broken edit keeps the rules in
/// force and is logged (and shown by `GET /api/v1/detection/rules`) until fixed.
async fn watch_rules(
    detection: Arc<palisade_api::detection::Detection>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(dir) = detection.rules_dir().map(|d| d.to_path_buf()) else {
        return;
    };
    let mut seen = palisade_core::data_dir::toml_fingerprint(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let dir2 = dir.clone();
        let Ok(now) =
            tokio::task::spawn_blocking(move || palisade_core::data_dir::toml_fingerprint(&dir2))
                .await
        else {
            continue;
        };
        if now == seen {
            continue;
        }
        seen = now;
        let d = detection.clone();
        match tokio::task::spawn_blocking(move || d.reload()).await {
            Ok(Ok(status)) => {
                tracing::info!(message = "Rules reloaded.", rules = status.rules, active = status.active, dir = %dir.display())
            }
            Ok(Err(error)) => {
                tracing::error!(message = "Rule reload failed; the previous rules stay in force.", %error)
            }
            Err(error) => tracing::error!(message = "Rule reload task failed.", %error),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
