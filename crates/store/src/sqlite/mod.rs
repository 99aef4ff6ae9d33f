//! The SQLite backend: the zero-configuration default.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a few reader
//! connections; with WAL, readers see the last committed state and never wait for a
//! write batch. All database work runs on Tokio's blocking pool so that it never stalls
//! the async workers.
//!
//! This module holds what every table shares: the connections, the error mapping and
//! the schema migration. Each group of tables is a child module (so that it shares the
//! connections) implementing its store trait: `ingest` the [`Store`](crate::Store) core,
//! then one file per sub-store.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use palisade_core::Timestamp;
use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};

use crate::StoreError;
use crate::migrations::Migration;
use crate::sqlgen::{Param, Sql};

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

// The optional free-text index behind `q`.
mod text_index;

// Events listings driven by a client network, read in time order.
mod network;

// Events listings driven by the free-text index, read newest id first.
mod text_drive;

// Events listings that would walk the time index, read highest id first.
mod id_walk;

// Bulk loads: the events indexes set aside during a large import, built at its end.
mod bulk;

// Binding rows again without binding what is bound already.
mod binder;

/// How the multi-row inserts of the write paths (events, threats) begin: `INSERT OR
/// FAIL`, not the default `INSERT` (ABORT).
///
/// A multi-row `INSERT` with a constraint that may abort it (the NOT NULL columns, with
/// the default ABORT) runs in a statement journal: SQLite copies every page the
/// statement is the first to change into an in-memory journal, and frees it when the
/// statement ends, so that a failing row can take back the rows before it. These
/// inserts only ever run inside a transaction that is rolled back whole when any of its
/// statements fails, so that undo is never used; with FAIL a failing statement keeps
/// its earlier rows (the transaction's rollback then drops them too) and SQLite opens no
/// statement journal: ~3% of a detection-on import's instructions (docs/BENCHMARKS.md,
/// ingest7). `threat_rules` keeps its journal: its foreign key may abort whatever the
/// verb says.
const INSERT_IN_TRANSACTION: &str = "INSERT OR FAIL INTO";

/// The writer's page cache, KiB: 64 MiB, so that the index pages a big batch touches
/// stay in memory.
const WRITER_CACHE_KIB: i64 = 65_536;

/// Idle reader connections kept open for reuse.
const IDLE_READERS: usize = 4;

/// How long a statement waits for a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A store in one SQLite file, shareable between tasks (cheap to clone).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    search: crate::SearchConfig,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its parent directories, and
    /// switches it to WAL. The schema is created by
    /// [`Store::migrate`](crate::Store::migrate).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let writer = open_connection(path, Role::Writer)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
            search: crate::SearchConfig::default(),
        })
    }

    /// The `[search]` settings to apply at the next [`Store::migrate`](crate::Store::migrate)
    /// (which builds or drops the free-text index to match).
    #[must_use]
    pub fn with_search(mut self, search: crate::SearchConfig) -> Self {
        self.search = search;
        self
    }

    /// The database file this store writes.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the blocking pool with access to the connections.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }

    /// Runs `f` with a reader connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(move |inner| inner.with_reader(f)).await
    }
}

impl Inner {
    /// Borrows an idle reader (opening one when all are busy, so reads never queue) and
    /// keeps it for reuse afterwards if fewer than [`IDLE_READERS`] are idle.
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_connection(&self.path, Role::Reader)?,
        };
        let result = f(&conn);
        let mut idle = lock(&self.readers);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// A mutex guard even if a previous holder panicked: the connection is still sound (an
/// open transaction was rolled back when it was dropped during the unwind).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_connection(path: &Path, role: Role) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sqlite_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "{} cannot use WAL (journal_mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite_err)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sqlite_err)?;
    match role {
        Role::Writer => {
            conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
                .map_err(sqlite_err)?;
            conn.set_prepared_statement_cache_capacity(32);
            // Checkpoint every 64 MiB of WAL instead of every 4 MiB: a batch into the
            // random-key indexes (client_ip, path) dirties many pages, and checkpointing
            // them less often roughly halved the write cost in the bench. The WAL is
            // truncated back to the same size after each checkpoint.
            conn.pragma_update(None, "wal_autocheckpoint", 16_384)
                .map_err(sqlite_err)?;
            conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
                .map_err(sqlite_err)?;
        }
        Role::Reader => {
            conn.pragma_update(None, "cache_size", -16_384)
                .map_err(sqlite_err)?;
            conn.pragma_update(None, "query_only", "ON")
                .map_err(sqlite_err)?;
            conn.set_prepared_statement_cache_capacity(64);
        }
    }
    Ok(conn)
}

/// Busy/locked/IO failures may clear up on retry; the rest are bugs or bad data.
fn sqlite_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::FileLockingProtocolFailed => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Database(e.to_string()),
    }
}

fn params_of(sql: &Sql) -> Vec<&dyn rusqlite::ToSql> {
    sql.params
        .iter()
        .map(|p| -> &dyn rusqlite::ToSql {
            match p {
                Param::I64(v) => v,
                Param::I32(v) => v,
                Param::Text(v) => v,
                Param::Bytes(v) => v,
            }
        })
        .collect()
}

/// `LIMIT n` with the number written into the statement's text, for statements that
/// run again and again with the same limit (the pollers' batch sizes). A bound `LIMIT
/// ?N` makes SQLite (3.47 on) plan with the bound number and mark the statement to be
/// compiled again whenever that parameter is bound, which rusqlite does on every
/// execution: each run of a cached statement was a full re-preparation (~235k
/// instructions for the alert pollers, each once a second). The text keeps that plan
/// (the same number, known when the statement is prepared) and is prepared once per
/// connection and number. `n` is a number, so nothing from outside reaches the SQL.
fn limit_sql(n: impl Into<i64>) -> String {
    format!("LIMIT {}", n.into())
}

fn count(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative count {v}")))
}

fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    let mig_err = |e: rusqlite::Error| match sqlite_err(e) {
        StoreError::Database(m) => StoreError::Migration(m),
        other => other,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(mig_err)?;
    let applied: HashSet<i64> = {
        let mut stmt = tx
            .prepare("SELECT version FROM schema_migrations")
            .map_err(mig_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(mig_err)?;
        rows.collect::<Result<_, _>>().map_err(mig_err)?
    };
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        tx.execute_batch(m.sql).map_err(|e| {
            StoreError::Migration(format!("{} (version {}): {e}", m.name, m.version))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, Timestamp::now().as_micros()],
        )
        .map_err(mig_err)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "sqlite migration applied"
        );
    }
    tx.commit().map_err(sqlite_err)
}

/// How many rows `table` holds: for the tests of the multi-row inserts.
#[cfg(test)]
fn stored_rows(conn: &Connection, table: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
}
