//! The PostgreSQL backend, for deployments that outgrow one SQLite file.
//!
//! The pool connects lazily: start-up never waits on the database, a database that is
//! down turns calls into [`StoreError::Unavailable`] within a few seconds, and calls
//! work again as soon as it is back, without a restart.
//!
//! This module holds what every table shares: the pool, the error mapping and the
//! schema migration. Each group of tables is a child module (so that it shares the pool)
//! implementing its store trait: `ingest` the [`Store`](crate::Store) core, then one
//! file per sub-store.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use palisade_core::Timestamp;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use crate::migrations::Migration;
use crate::sqlgen::{Param, Sql};
use crate::{StoreError, redact_url};

// Events, dead letters, checkpoints and idempotency keys: the `Store` core.
mod ingest;

// The security tables.
mod security;

// The threat and settings tables.
mod threats;

// The inspection marks (resuming inspection after a crash).
mod inspection;

// The decisions table.
mod decisions;

// Login failure runs and known addresses.
mod logins;
// The job queue: jobs, attempts, logs, outputs, schedules.
mod jobs;

// Retention deletes and integrity checks.
mod maintenance;
// The vulnerability tables: CVEs, assets, software, matches, feed positions.
mod vulns;

// Stored reports and report queries.
mod reports;
// The analytics roll-ups and top keys.
mod analytics;

// Posture runs and credential use.
mod posture;
// `FlowStore`: network flows.
mod baselines;
mod flows;
// `DeviceStore`: the device inventory, flow-threat links, flow analytics.
mod devices;

// Alert rules, channels, alerts, the notification queue and the activity feed.
mod alerts;
pub mod relay;

// The optional free-text index behind `q`.
mod text_index;

// Bulk loads: the events indexes set aside during a large import, built at its end.
mod bulk;

// Binary `COPY` rows sent in large messages.
mod copy_rows;

/// Connections kept by the pool at most.
const POOL_SIZE: usize = 16;

/// How long a call waits for a connection (free, new or checked) before failing with
/// `Unavailable`, so that a dead database makes calls fail fast rather than hang.
const POOL_TIMEOUT: Duration = Duration::from_secs(3);

/// The TCP/handshake timeout used when the URL does not set `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A store in a PostgreSQL database, shareable between tasks (cheap to clone).
///
/// Plain TCP only (`NoTls`): put the database on a trusted network or a local socket.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    search: crate::SearchConfig,
    /// Whether the free-text index (of the current layout, with the path bucket) is
    /// known to exist: set by [`Store::migrate`](crate::Store::migrate), read by the
    /// events query before it asks for the bucket (shared by the clones).
    text_index: Arc<AtomicBool>,
    /// Whether the tagged trigram index exists too (same lifecycle): the events query
    /// asks for its key, in place of the bucket's, for a path prefix plus `q`.
    tagged_index: Arc<AtomicBool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Parses `url` and builds the connection pool without connecting.
    ///
    /// The URL is a libpq-style `postgres://user:pass@host:port/db?param=value` URL;
    /// `options` is honoured, e.g. `?options=-c%20search_path%3Dmyschema` to keep the
    /// tables in a schema of their own. Only a malformed URL is an error here.
    pub fn connect_lazy(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::InvalidUrl(format!("invalid PostgreSQL URL '{}': {e}", redact_url(url)))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("palisade");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::InvalidUrl(format!("cannot build connection pool: {e}")))?;
        Ok(PgStore {
            pool,
            search: crate::SearchConfig::default(),
            text_index: Arc::new(AtomicBool::new(false)),
            tagged_index: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The `[search]` settings to apply at the next [`Store::migrate`](crate::Store::migrate)
    /// (which builds or drops the free-text index to match).
    #[must_use]
    pub fn with_search(mut self, search: crate::SearchConfig) -> Self {
        self.search = search;
        self
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Runs one statement built by `sqlgen` and returns its rows: the listing queries
    /// of every resource go through here, so they fail the same way when the
    /// database is away.
    async fn query_generated(&self, sql: &Sql) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        client
            .query(sql.text.as_str(), &params_of(sql))
            .await
            .map_err(pg_err)
    }
}

/// Errors that mean "the database is not reachable right now" become `Unavailable`
/// (retry later); errors the database reported about the statement become `Database`.
fn pg_err(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let text = match db.detail() {
            Some(detail) => format!("{} ({code}): {detail}", db.message()),
            None => format!("{} ({code})", db.message()),
        };
        // 08: connection exception, 57P: operator intervention (shutdown, starting up),
        // 53300: too many connections.
        return if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
            StoreError::Unavailable(text)
        } else {
            StoreError::Database(text)
        };
    }
    // The top-level message is generic ("error connecting to server"): add the causes.
    let mut text = e.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let mut io = false;
    while let Some(s) = source {
        io |= s.is::<std::io::Error>();
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_closed() || io {
        StoreError::Unavailable(text)
    } else {
        StoreError::Database(text)
    }
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Timeout(kind) => StoreError::Unavailable(format!(
            "no database connection within {}s ({kind:?})",
            POOL_TIMEOUT.as_secs()
        )),
        PoolError::Backend(e) => pg_err(e),
        PoolError::Closed => StoreError::Unavailable("connection pool closed".into()),
        PoolError::PostCreateHook(e) => StoreError::Unavailable(e.to_string()),
        PoolError::NoRuntimeSpecified => {
            StoreError::Database("connection pool has no runtime".into())
        }
    }
}

fn corrupt(e: tokio_postgres::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn migration_err(e: tokio_postgres::Error) -> StoreError {
    match pg_err(e) {
        StoreError::Database(m) => StoreError::Migration(m),
        other => other,
    }
}

fn params_of(sql: &Sql) -> Vec<&(dyn ToSql + Sync)> {
    sql.params
        .iter()
        .map(|p| -> &(dyn ToSql + Sync) {
            match p {
                Param::I64(v) => v,
                Param::I32(v) => v,
                Param::Text(v) => v,
                Param::Bytes(v) => v,
            }
        })
        .collect()
}

fn count(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative count {v}")))
}

/// Applies, in one transaction, the migrations the database lacks.
async fn migrate(
    client: &mut deadpool_postgres::Client,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    // Processes starting together queue here instead of racing on CREATE TABLE;
    // the key is per schema so that separate schemas do not wait for each other.
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(hashtext('palisade.migrate.' || coalesce(current_schema(), '')));
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT   NOT NULL,
             applied_at BIGINT NOT NULL
         );",
    )
    .await
    .map_err(migration_err)?;
    let applied: HashSet<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(migration_err)?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(corrupt)?;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        tx.batch_execute(m.sql).await.map_err(|e| match pg_err(e) {
            StoreError::Database(msg) => {
                StoreError::Migration(format!("{} (version {}): {msg}", m.name, m.version))
            }
            other => other,
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &Timestamp::now().as_micros()],
        )
        .await
        .map_err(migration_err)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "postgres migration applied"
        );
    }
    tx.commit().await.map_err(pg_err)
}
