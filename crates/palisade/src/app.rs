//! Start-up and shutdown of the service: the pipeline (`palisade-pipeline`) with the
//! fronts on top of it, the HTTP API and the protecting proxies.
//!
//! ```text
//! sources ─► BatchWriter (bounded) ─► Store ◄─ API reads
//! HTTP push ┘        │                  ▲ ▲
//!                    ▼ stored batches   │ └── ThreatRecorder ◄─ Guard ◄─ /check, proxies
//!         inspector + behaviour stages ─┘
//!         database monitor, decision sync, rule watch (all supervised)
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use palisade_api::AppState;
use palisade_pipeline::{Pipeline, PipelineConfig, Purpose, RunningPipeline};
use palisade_store::SharedStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Settings;

/// Longest a graceful shutdown waits for sources and the writer to flush.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    pipeline: RunningPipeline,
    bootstrap: JoinHandle<()>,
    proxies: Vec<palisade_proxy::BoundProxy>,
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

/// The pipeline's configuration, from the validated settings.
pub fn pipeline_config(settings: &Settings) -> PipelineConfig {
    PipelineConfig {
        data_dir: settings.data_dir.clone(),
        detection: settings.detection.clone(),
        behaviour: settings.scenarios.clone(),
        decisions: settings.decisions,
        writer: settings.writer.clone(),
        tails: settings.sources.clone(),
        syslog: settings.syslog.clone(),
        vuln: settings.vuln.clone(),
    }
}

impl Application {
    /// Builds everything and binds the listener. Returns quickly even when the database
    /// is down: migrations and health checks run in the background and retry.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings)?;
        let pipeline = Pipeline::build(store.clone(), pipeline_config(&settings), Purpose::Serve)
            .await
            .context("starting the pipeline")?;
        let handle = pipeline.handle().clone();
        let auth = Arc::new(build_auth(&settings)?);
        let mut proxies = Vec::new();
        for config in &settings.proxies {
            let context = palisade_proxy::ProxyContext {
                guard: handle.guard.clone(),
                software: handle.software.clone(),
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
                handle.db.clone(),
                settings.auth.admin_password.clone(),
            );
            tokio::spawn(async move {
                loop {
                    if db.ready() {
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
            pipeline: Arc::new(handle),
            config: Arc::new(settings.api.clone()),
            started: Instant::now(),
            auth,
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
            pipeline,
            bootstrap,
            proxies,
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
    /// lets the proxies finish their requests, then drains the pipeline (sources flush
    /// their last batch with its checkpoint, the writer empties its queue, the stages
    /// and the threat recorder finish).
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            pipeline,
            bootstrap,
            proxies,
            store: _,
        } = self;
        let proxy_tasks: Vec<JoinHandle<()>> = proxies
            .into_iter()
            .map(|p| tokio::spawn(p.serve(pipeline.shutdown_signal())))
            .collect();
        let addr = listener.local_addr()?;
        tracing::info!(message = "Serving.", address = %addr);
        let mut stopping = pipeline.shutdown_signal();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = signal => {
                    tracing::info!(message = "Shutting down: draining requests, flushing sources.");
                    let _ = stop_tx.send(());
                }
                _ = stopping.recv() => {}
            }
        });
        // The signal stops everything at once: sources, proxies and the HTTP server.
        let trigger = async {
            let _ = stop_rx.await;
        };
        let (served, ()) = tokio::join!(server, async {
            trigger.await;
            pipeline.trigger();
        });
        pipeline.trigger();
        for t in proxy_tasks {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, t).await;
        }
        bootstrap.abort();
        pipeline.drain(DRAIN_TIMEOUT).await;
        tracing::info!(message = "Stopped.");
        served.context("the HTTP server failed")
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
