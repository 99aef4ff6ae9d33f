//! The SQLite backend: the zero-configuration default.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a few reader
//! connections; with WAL, readers see the last committed state and never wait for a
//! write batch. All database work runs on Tokio's blocking pool so that it never stalls
//! the async workers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use palisade_core::dead_letter::StoredDeadLetter;
use palisade_core::event::StoredEvent;
use palisade_core::{Checkpoint, Timestamp};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use crate::codec::ingest::{
    CHECKPOINT_SELECT_COLUMNS, CheckpointColumns, CheckpointColumnsIn, DeadLetterColumns,
    DeadLetterColumnsIn, EVENT_INSERT_COLUMNS, EVENT_SELECT_COLUMNS, EventColumns, EventColumnsIn,
};
use crate::codec::u64_to_i64;
use crate::migrations::{Migration, SQLITE as MIGRATIONS};
use crate::sqlgen::{self, Dialect, Param, Sql};
use crate::{
    Cursor, DeadLetterQuery, EventQuery, IngestBatch, Page, Store, StoreError, WriteOutcome,
};

// The security tables: a child module so that it shares this backend's connections.
mod security;

// The threat and settings tables, likewise.
mod threats;

// The decisions table, likewise.
mod decisions;

/// Idle reader connections kept open for reuse.
const IDLE_READERS: usize = 4;

/// How long a statement waits for a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A store in one SQLite file, shareable between tasks (cheap to clone).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
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
    /// switches it to WAL. The schema is created by [`Store::migrate`].
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
        })
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
            // 64 MiB of page cache: index pages of a big batch stay in memory.
            conn.pragma_update(None, "cache_size", -65_536)
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

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventColumns> {
    Ok(EventColumns {
        id: row.get(0)?,
        ts: row.get(1)?,
        received_at: row.get(2)?,
        kind: row.get(3)?,
        source: row.get(4)?,
        client_ip: row.get(5)?,
        host: row.get(6)?,
        method: row.get(7)?,
        path: row.get(8)?,
        query: row.get(9)?,
        protocol: row.get(10)?,
        status: row.get(11)?,
        bytes: row.get(12)?,
        referer: row.get(13)?,
        user_agent: row.get(14)?,
        user_name: row.get(15)?,
        duration_us: row.get(16)?,
        message: row.get(17)?,
        extra: row.get(18)?,
    })
}

fn dead_letter_from_row(row: &Row<'_>) -> rusqlite::Result<DeadLetterColumns> {
    Ok(DeadLetterColumns {
        id: row.get(0)?,
        source: row.get(1)?,
        line_no: row.get(2)?,
        byte_offset: row.get(3)?,
        raw: row.get(4)?,
        reason: row.get(5)?,
        received_at: row.get(6)?,
    })
}

fn checkpoint_from_row(row: &Row<'_>) -> rusqlite::Result<CheckpointColumns> {
    Ok(CheckpointColumns {
        source: row.get(0)?,
        file_id: row.get(1)?,
        byte_offset: row.get(2)?,
        line_no: row.get(3)?,
        fingerprint: row.get(4)?,
    })
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

/// Writes several batches in ONE transaction (group commit): in SQLite the cost of a
/// commit is the index pages it rewrites, so fewer, larger commits are much faster,
/// while each batch keeps its own checkpoint and idempotency key.
fn write_batches(
    conn: &mut Connection,
    batches: &[IngestBatch],
) -> Result<Vec<WriteOutcome>, StoreError> {
    let now = Timestamp::now();
    // Dropping `tx` without commit (any `?` below) rolls everything back.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let outcomes = batches
        .iter()
        .map(|b| write_in(&tx, b, now))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit().map_err(sqlite_err)?;
    Ok(outcomes)
}

/// Writes one batch inside an open transaction; a batch whose idempotency key is
/// already stored writes nothing and reports the first write's counts.
fn write_in(
    tx: &rusqlite::Transaction<'_>,
    batch: &IngestBatch,
    now: Timestamp,
) -> Result<WriteOutcome, StoreError> {
    let mut outcome = WriteOutcome {
        events: batch.events.len() as u64,
        dead_letters: batch.dead_letters.len() as u64,
        duplicate: false,
        first_event_id: None,
    };
    if let Some(key) = &batch.idempotency_key {
        let inserted = tx
            .prepare_cached(
                "INSERT INTO ingest_keys (key, events, dead_letters, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key,
                    u64_to_i64(outcome.events),
                    u64_to_i64(outcome.dead_letters),
                    now.as_micros()
                ])
            })
            .map_err(sqlite_err)?;
        if inserted == 0 {
            let (events, dead_letters): (i64, i64) = tx
                .query_row(
                    "SELECT events, dead_letters FROM ingest_keys WHERE key = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sqlite_err)?;
            return Ok(WriteOutcome {
                events: count(events)?,
                dead_letters: count(dead_letters)?,
                duplicate: true,
                first_event_id: None,
            });
        }
    }
    if !batch.events.is_empty() {
        let mut stmt = tx
            .prepare_cached(&format!(
                "INSERT INTO events ({EVENT_INSERT_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
            ))
            .map_err(sqlite_err)?;
        for e in &batch.events {
            let c = EventColumnsIn::new(e, now)?;
            stmt.execute(params![
                c.ts,
                c.received_at,
                c.kind,
                &*c.source,
                c.client_ip.as_ref().map(|k| &k[..]),
                c.host.as_deref(),
                c.method.as_deref(),
                c.path.as_deref(),
                c.query.as_deref(),
                c.protocol.as_deref(),
                c.status,
                c.bytes,
                c.referer.as_deref(),
                c.user_agent.as_deref(),
                c.user_name.as_deref(),
                c.duration_us,
                c.message.as_deref(),
                c.extra.as_deref(),
            ])
            .map_err(sqlite_err)?;
        }
        // One writer connection inside one transaction: rowids are consecutive.
        outcome.first_event_id = Some(tx.last_insert_rowid() - u64_to_i64(outcome.events) + 1);
    }
    if !batch.dead_letters.is_empty() {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO dead_letters (source, line_no, byte_offset, raw, reason, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sqlite_err)?;
        for d in &batch.dead_letters {
            let c = DeadLetterColumnsIn::new(d);
            stmt.execute(params![
                &*c.source,
                c.line_no,
                c.byte_offset,
                &*c.raw,
                &*c.reason,
                c.received_at
            ])
            .map_err(sqlite_err)?;
        }
    }
    if let Some(cp) = &batch.checkpoint {
        let c = CheckpointColumnsIn::new(cp);
        tx.prepare_cached(
            "INSERT INTO checkpoints (source, file_id, byte_offset, line_no, fingerprint, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (source) DO UPDATE SET
                 file_id = excluded.file_id, byte_offset = excluded.byte_offset,
                 line_no = excluded.line_no, fingerprint = excluded.fingerprint,
                 updated_at = excluded.updated_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                &*c.source,
                &*c.file_id,
                c.byte_offset,
                c.line_no,
                c.fingerprint,
                now.as_micros()
            ])
        })
        .map_err(sqlite_err)?;
    }
    Ok(outcome)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.blocking(|inner| migrate(&mut lock(&inner.writer), MIGRATIONS))
            .await
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(sqlite_err)
        })
        .await?;
        Ok(start.elapsed())
    }

    async fn write_batches(
        &self,
        batches: Arc<[IngestBatch]>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        self.blocking(move |inner| write_batches(&mut lock(&inner.writer), &batches))
            .await
    }

    async fn checkpoint(&self, source: &str) -> Result<Option<Checkpoint>, StoreError> {
        let source = source.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {CHECKPOINT_SELECT_COLUMNS} FROM checkpoints WHERE source = ?1"
            ))
            .and_then(|mut s| s.query_row([&source], checkpoint_from_row).optional())
            .map_err(sqlite_err)?
            .map(CheckpointColumns::into_checkpoint)
            .transpose()
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {CHECKPOINT_SELECT_COLUMNS} FROM checkpoints ORDER BY source"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([], checkpoint_from_row)
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_checkpoint())
                .collect()
        })
        .await
    }

    async fn query_events(&self, query: &EventQuery) -> Result<Page<StoredEvent>, StoreError> {
        let query_owned = query.clone();
        let limit = query.limit;
        let rows = self
            .read(move |conn| {
                let q = &query_owned;
                let small = |column: &str| -> Result<bool, StoreError> {
                    match sqlgen::probe_query(Dialect::Sqlite, q, column) {
                        Some(probe) => conn
                            .prepare_cached(&probe.text)
                            .and_then(|mut s| {
                                s.query_row(&params_of(&probe)[..], |r| r.get::<_, i64>(0))
                            })
                            .map(|n| n < sqlgen::SMALL_MATCH)
                            .map_err(sqlite_err),
                        None => Ok(false),
                    }
                };
                let drive = sqlgen::sqlite_drive(q, small("client_ip")?, small("path")?);
                let sql = sqlgen::events_query(Dialect::Sqlite, q, drive);
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], event_from_row)
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err)?.into_stored())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(rows, limit, |e| Cursor {
            ts: e.event.ts.as_micros(),
            id: e.id,
        }))
    }

    async fn get_event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {EVENT_SELECT_COLUMNS} FROM events WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id], event_from_row).optional())
            .map_err(sqlite_err)?
            .map(EventColumns::into_stored)
            .transpose()
        })
        .await
    }

    async fn query_dead_letters(
        &self,
        query: &DeadLetterQuery,
    ) -> Result<Page<StoredDeadLetter>, StoreError> {
        let sql = sqlgen::dead_letters_query(Dialect::Sqlite, query);
        let limit = query.limit;
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], dead_letter_from_row)
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err)?.into_stored())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(rows, limit, |d| Cursor {
            ts: d.dead_letter.received_at.as_micros(),
            id: d.id,
        }))
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        let n = self
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
                    .map_err(sqlite_err)
            })
            .await?;
        count(n)
    }
}
