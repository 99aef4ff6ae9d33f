//! Start-up and shutdown of the service: the pipeline (`palisade-pipeline`) with the
//! fronts on top of it, the HTTP API and the protecting proxies.
//!
//! ```text
//! sources ─► BatchWriter (bounded) ─► Store ◄─ API reads
//! HTTP push ┘        │                  ▲ ▲
//!                    ▼ stored batches   │ └── ThreatRecorder ◄─ Guard ◄─ /check, proxies
//!         inspector + behaviour stages ─┘
//!         database monitor, decision sync, rule watch (all supervised)
//!         analytics: real-time sampler, roll-up worker, posture schedule (supervised)
//!         alerts: rule stage (fed by the recorder), notifier, delivery (supervised)
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use palisade_analytics::{Analytics, AnalyticsSetup, RealtimeInputs};
use palisade_api::AppState;
use palisade_pipeline::{Pipeline, PipelineConfig, RunningPipeline};
use palisade_store::SharedStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::posture_facts::ServiceFacts;

/// Longest a graceful shutdown waits for sources and the writer to flush.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    pipeline: RunningPipeline,
    bootstrap: JoinHandle<()>,
    proxies: Vec<palisade_proxy::BoundProxy>,
    limits: palisade_api::server::ListenerLimits,
    store: SharedStore,
    analytics: Vec<JoinHandle<()>>,
    alerts: Vec<JoinHandle<()>>,
    /// `[[kafka]]` sources (done at shutdown) and the `[kafka_sink]` task (done once
    /// the threat recorder has drained).
    kafka: (Vec<JoinHandle<()>>, Option<JoinHandle<()>>),
    /// The live bus relay of a scale-out role (`--role api|worker`).
    relay: Vec<JoinHandle<()>>,
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
/// default password. Once an admin exists the variable is ignored, with a warning that
/// says how to reset a password instead.
pub async fn ensure_admin(store: &SharedStore, password: Option<&str>) -> anyhow::Result<()> {
    if store.count_active_admins().await? > 0 {
        if password.is_some() {
            tracing::warn!(
                message = "PALISADE_ADMIN_PASSWORD is ignored: an admin already exists, and the variable only sets the first admin's password. To reset a password, run `palisade user passwd admin` (or `palisade user unlock admin` if it is locked out).",
            );
        }
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
    palisade_store::open_with(&settings.database_url, &settings.data_dir, settings.search)
        .with_context(|| {
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
        decisions: settings.decisions.clone(),
        writer: settings.writer.clone(),
        tails: settings.sources.clone(),
        syslog: settings.syslog.clone(),
        own_addresses: own_addresses(settings),
        other_sources: settings
            .proxies
            .iter()
            .map(|p| p.name.clone())
            .chain(settings.kafka.iter().map(|k| k.name.clone()))
            .collect(),
        threat_observers: Default::default(),
        jobs: palisade_jobs::JobsSetup {
            config: settings.jobs.clone(),
            extra_kinds: Vec::new(),
            secrets: None,
        },
        vuln: settings.vuln.clone(),
        models: settings.models.clone(),
        baselines: settings.baselines.clone(),
        predictions: None,
        reinspect: Vec::new(),
        replay: Vec::new(),
    }
}

/// The secrets store as the job system reads it: a command's secret environment
/// variables are opened with the keyring in use (rotation included).
pub struct StoreSecrets {
    /// The store holding the sealed secrets.
    pub store: SharedStore,
    /// The keyring in use.
    pub auth: Arc<palisade_api::auth::AuthContext>,
}

#[async_trait::async_trait]
impl palisade_jobs::SecretSource for StoreSecrets {
    async fn reveal(&self, name: &str) -> Result<Option<String>, String> {
        let Some(record) = self.store.secret(name).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let plain = self
            .auth
            .secret_box()
            .open(
                &record.name,
                &record.key_id,
                &record.nonce,
                &record.ciphertext,
            )
            .map_err(|e| e.to_string())?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| format!("the secret '{name}' is not text"))
    }
}

/// Addresses no ban may cover: where Palisade listens (unless a wildcard) and the
/// front proxies it trusts.
fn own_addresses(settings: &Settings) -> Vec<(palisade_core::net::IpNet, String)> {
    let mut own = Vec::new();
    let mut add = |text: String| {
        if let Ok(net) = text.parse::<palisade_core::net::IpNet>() {
            own.push((net, text));
        }
    };
    for addr in std::iter::once(settings.listen).chain(settings.proxies.iter().map(|p| p.listen)) {
        if !addr.ip().is_unspecified() {
            add(addr.ip().to_string());
        }
    }
    for p in &settings.proxies {
        for net in &p.trusted_proxies {
            own.push((*net, format!("a trusted proxy of [[proxy]] {}", p.name)));
        }
    }
    for net in &settings.check.trusted_proxies {
        own.push((
            *net,
            "a trusted proxy of /api/v1/check ([check])".to_owned(),
        ));
    }
    own
}

/// Starts the analytics component (real-time sampler, roll-up worker, posture schedule)
/// under the pipeline's supervisor, with the facts the posture checks need.
fn start_analytics(
    settings: &Settings,
    store: &SharedStore,
    handle: &palisade_pipeline::PipelineHandle,
    proxies: &[palisade_proxy::BoundProxy],
) -> (Arc<Analytics>, Vec<JoinHandle<()>>) {
    let facts = ServiceFacts::new(
        settings,
        &settings.analytics,
        handle.detection.clone(),
        proxies
            .iter()
            .map(palisade_proxy::BoundProxy::observations)
            .collect(),
    )
    .with_models(handle.guard.models().cloned());
    let db = handle.db.clone();
    Analytics::start(
        AnalyticsSetup {
            config: settings.analytics.clone(),
            store: store.clone(),
            bus: handle.live.clone(),
            inputs: RealtimeInputs {
                sources: handle.sources.clone(),
                queue_capacity: handle.writer.capacity(),
            },
            facts: Arc::new(facts),
            ready: Arc::new(move || db.ready()),
        },
        &handle.supervisor,
    )
}

/// Descriptors kept back for the database, files, syslog sockets and the upstream
/// pools, beyond the connection caps.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and checks that the connection
/// caps of the API and every proxy fit in it, each within its own budget (a flood of
/// one listener can then never take the descriptors another needs). Caps that do not
/// fit are lowered, with a warning that says how to fix it.
pub fn budget_descriptors(settings: &mut Settings) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(error) => {
            tracing::warn!(message = "Cannot read or raise the open-files limit.", %error);
            return;
        }
    };
    let wanted: u64 = settings.api.max_connections as u64
        + settings
            .proxies
            .iter()
            .map(|p| p.max_connections as u64)
            .sum::<u64>();
    let available = limit.saturating_sub(RESERVED_DESCRIPTORS).max(16);
    if wanted <= available {
        tracing::debug!(message = "Descriptor budget fits.", limit, wanted);
        return;
    }
    let scale = available as f64 / wanted as f64;
    let shrink = |n: usize| ((n as f64 * scale).floor() as usize).max(4);
    settings.api.max_connections = shrink(settings.api.max_connections);
    for p in &mut settings.proxies {
        p.max_connections = shrink(p.max_connections);
    }
    tracing::warn!(
        message = "The open-files limit is too low for the configured connection caps; caps lowered. Raise LimitNOFILE (systemd) or ulimit -n, or lower [http] max_connections and [[proxy]] max_connections.",
        limit,
        wanted,
        api_max_connections = settings.api.max_connections,
    );
}

impl Application {
    /// Builds everything and binds the listener. Returns quickly even when the database
    /// is down: migrations and health checks run in the background and retry.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_as(settings, crate::topology::Role::All).await
    }

    /// [`Application::build`] for one role of a scale-out topology (`serve --role`):
    /// an API node runs no sources, stages over stored batches or job workers; a
    /// worker serves only health and metrics; both relay their live events through
    /// PostgreSQL (refused on SQLite).
    pub async fn build_as(
        mut settings: Settings,
        role: crate::topology::Role,
    ) -> anyhow::Result<Self> {
        budget_descriptors(&mut settings);
        let store = open_store(&settings)?;
        role.check_backend(store.backend())?;
        let auth = Arc::new(build_auth(&settings)?);
        let mut config = pipeline_config(&settings);
        config.jobs.secrets = Some(Arc::new(StoreSecrets {
            store: store.clone(),
            auth: auth.clone(),
        }));
        // The alert rule stage sees every stored threat: its bounded feed is one of the
        // recorder's observers, made before the pipeline and started after it.
        let (alert_tx, alert_feed) = palisade_alerts::threat_feed(&settings.alerts);
        config.threat_observers.observers.push(alert_tx);
        #[cfg(feature = "kafka")]
        let kafka_sink = crate::kafka::attach_sink(&settings, &mut config)?;
        // Live captures: threats raised over their flows are linked to the flows.
        #[cfg(feature = "capture")]
        let capture_links = (!settings.capture.is_empty()).then(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            config.threat_observers.observers.push(tx);
            rx
        });
        let pipeline = Pipeline::build(store.clone(), config, role.purpose())
            .await
            .context("starting the pipeline")?;
        let handle = pipeline.handle().clone();
        #[cfg(feature = "kafka")]
        let kafka = crate::kafka::start(&settings, &handle, kafka_sink, role);
        #[cfg(not(feature = "kafka"))]
        let kafka = (Vec::new(), None);
        #[cfg(feature = "capture")]
        if role.works() {
            if let Some(rx) = capture_links {
                palisade_flows::threat_links::spawn(store.clone(), rx, &handle.supervisor);
            }
            palisade_flows::live::start(
                &settings.capture,
                &settings.flows,
                store.clone(),
                Some(handle.writer.clone()),
                Some(handle.live.clone()),
                handle
                    .guard
                    .flow_model()
                    .map(|s| s.clone() as Arc<dyn palisade_flows::FlowJudge>),
                &handle.supervisor,
            );
        }
        let mut proxies = Vec::new();
        if !role.serves_api() && !settings.proxies.is_empty() {
            tracing::warn!(
                message = "[[proxy]] is not started on a worker node (--role worker): run the protecting proxies on API nodes."
            );
        }
        let has_local_sources = !settings.sources.is_empty() || !settings.syslog.is_empty();
        if !role.works() && has_local_sources {
            tracing::warn!(
                message = "File tails and syslog listeners are not started on an API node (--role api): run them on a worker."
            );
        }
        for config in settings.proxies.iter().filter(|_| role.serves_api()) {
            let context = palisade_proxy::ProxyContext::from_pipeline(&handle);
            proxies.push(
                palisade_proxy::BoundProxy::bind(config.clone(), context)
                    .await
                    .context(
                        "starting a protecting proxy (is the port in use? set [[proxy]] listen)",
                    )?,
            );
        }
        let (analytics, analytics_tasks) = start_analytics(&settings, &store, &handle, &proxies);
        let start_alerts = if role.works() {
            palisade_alerts::start
        } else {
            palisade_alerts::start_rules_only
        };
        let alerts_tasks = start_alerts(
            palisade_alerts::AlertsSetup {
                config: settings.alerts.clone(),
                store: store.clone(),
                bus: handle.live.clone(),
                secrets: Some(Arc::new(StoreSecrets {
                    store: store.clone(),
                    auth: auth.clone(),
                })),
                job_events: Some(handle.jobs.events().clone()),
                sources: Some(handle.sources.clone()),
            },
            alert_feed,
            &handle.supervisor,
        );
        // The first admin, once the store is ready; supervised, so a panic in it is
        // counted, shown in health and retried.
        let bootstrap = {
            let (store, db, password) = (
                store.clone(),
                handle.db.clone(),
                settings.auth.admin_password.clone(),
            );
            handle.supervisor.spawn("bootstrap-admin", move || {
                let (store, db, password) = (store.clone(), db.clone(), password.clone());
                async move {
                    loop {
                        if db.ready() {
                            match ensure_admin(&store, password.as_ref().map(|p| p.0.as_str()))
                                .await
                            {
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
                }
            })
        };
        let state = AppState {
            store: store.clone(),
            pipeline: Arc::new(handle),
            config: Arc::new(settings.api.clone()),
            started: Instant::now(),
            auth,
            check: Arc::new(settings.check.clone()),
            analytics,
        };
        let relay = if role == crate::topology::Role::All {
            Vec::new()
        } else {
            crate::topology::start_relay(
                role,
                &settings.database_url,
                &state.pipeline.live,
                &state.pipeline.supervisor,
            )?
        };
        let mut router = palisade_api::router(state);
        if !role.serves_api() {
            router = router.layer(axum::middleware::from_fn(crate::topology::worker_only));
        }
        tracing::info!(message = "Role.", role = %role);
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
            limits: settings.api.listener_limits(),
            store,
            analytics: analytics_tasks,
            alerts: alerts_tasks,
            kafka,
            relay,
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
            limits,
            store: _,
            analytics,
            alerts,
            kafka: (kafka_sources, kafka_sink),
            relay,
        } = self;
        let proxy_tasks: Vec<JoinHandle<()>> = proxies
            .into_iter()
            .map(|p| tokio::spawn(p.serve(pipeline.shutdown_signal())))
            .collect();
        let addr = listener.local_addr()?;
        tracing::info!(message = "Serving.", address = %addr);
        let server = tokio::spawn(palisade_api::server::serve(
            listener,
            router,
            limits,
            pipeline.shutdown_signal(),
        ));
        // The signal stops everything at once: sources, proxies and the HTTP server.
        signal.await;
        tracing::info!(message = "Shutting down: draining requests, flushing sources.");
        pipeline.trigger();
        let served = server.await;
        for t in proxy_tasks {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, t).await;
        }
        bootstrap.abort();
        // The analytics tasks stop at the trigger (the sampler writes its last live
        // deltas first), before the store's users drain.
        for task in analytics {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, task).await;
        }
        // Kafka sources store and commit their last batch while the writer still runs.
        for task in kafka_sources {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, task).await;
        }
        pipeline.drain(DRAIN_TIMEOUT).await;
        // The alert stage takes the recorder's last threats before it stops.
        for task in alerts {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, task).await;
        }
        if let Some(task) = kafka_sink {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, task).await;
        }
        for task in relay {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, task).await;
        }
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
