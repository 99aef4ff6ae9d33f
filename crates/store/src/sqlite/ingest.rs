//! The [`Store`] core for the SQLite backend: the ingest tables (events, dead letters,
//! checkpoints, idempotency keys), written together in one transaction, and their reads;
//! also the schema migration and ping entry points.
//!
//! A child module of `sqlite` so that it shares that backend's connection handling:
//! writes go through the single writer connection, reads through the reader pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use palisade_core::dead_letter::StoredDeadLetter;
use palisade_core::event::StoredEvent;
use palisade_core::{Checkpoint, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::binder::Binder;
use super::{INSERT_IN_TRANSACTION, SqliteStore, count, lock, migrate, params_of, sqlite_err};
use crate::codec::ingest::{
    CHECKPOINT_SELECT_COLUMNS, CheckpointColumns, CheckpointColumnsIn, DeadLetterColumns,
    DeadLetterColumnsIn, EVENT_INSERT_COLUMNS, EVENT_SELECT_COLUMNS, EventColumns, EventColumnsIn,
};
use crate::codec::u64_to_i64;
use crate::migrations::SQLITE as MIGRATIONS;
use crate::sqlgen::{self, Dialect};
use crate::{
    Cursor, DeadLetterQuery, EventQuery, IngestBatch, Page, Store, StoreError, WriteOutcome,
};

pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventColumns> {
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
        verdict: row.get(19)?,
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
    if let Some(first_id) = outcomes.iter().filter_map(|o| o.first_event_id).min() {
        super::text_index::index_new(&tx, first_id)?;
    }
    tx.commit().map_err(sqlite_err)?;
    Ok(outcomes)
}

/// Events per multi-row `INSERT`: one statement execution per row would open the
/// table's and every index's cursors and update `sqlite_sequence` once per row; this
/// does it once per chunk (3 + 16 columns × 64 rows = 1,027 parameters, far below the
/// limit).
const INSERT_CHUNK: usize = 64;

/// Columns of [`EVENT_INSERT_COLUMNS`].
const EVENT_COLUMNS: usize = 19;

/// Columns a chunk's rows share, bound once per chunk as its first parameters: the
/// columns 1 to 3 of [`EVENT_INSERT_COLUMNS`], `received_at` (one time per group
/// commit), `kind` and `source` (an import's batch is one source, of one kind). Two of
/// them are text, which SQLite copies at every bind: bound once rather than 64 times,
/// they cost a chunk ~1.2k instructions a row less (docs/BENCHMARKS.md, ingest7).
const SHARED_COLUMNS: usize = 3;

/// Columns each row of a chunk binds itself.
const OWN_COLUMNS: usize = EVENT_COLUMNS - SHARED_COLUMNS;

/// The parameter that column `column` (of [`EVENT_INSERT_COLUMNS`]) of row `row` is
/// bound to: in a chunk statement (`shared`), the first [`SHARED_COLUMNS`] parameters
/// after the shared columns' own; otherwise 19 parameters a row, in column order.
fn parameter(row: usize, column: usize, shared: bool) -> usize {
    if !shared {
        return row * EVENT_COLUMNS + column + 1;
    }
    let own_start = SHARED_COLUMNS + row * OWN_COLUMNS + 1;
    match column {
        0 => own_start,
        c if c <= SHARED_COLUMNS => c,
        c => own_start + c - SHARED_COLUMNS,
    }
}

/// The `INSERT OR FAIL INTO events` text for `rows` rows, their columns numbered by
/// [`parameter`] (only ever run inside [`write_batches`]' transaction: see
/// [`INSERT_IN_TRANSACTION`]).
fn insert_events_sql(rows: usize, shared: bool) -> String {
    let mut sql = format!("{INSERT_IN_TRANSACTION} events ({EVENT_INSERT_COLUMNS}) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..EVENT_COLUMNS {
            if c > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("?{}", parameter(r, c, shared)));
        }
        sql.push(')');
    }
    sql
}

/// Whether a chunk's rows all have the same [`SHARED_COLUMNS`] (the received time is
/// the group's anyway; an import's batch is one source, one kind).
fn share_columns(rows: &[EventColumnsIn<'_>]) -> bool {
    rows.split_first().is_none_or(|(first, rest)| {
        rest.iter().all(|c| {
            c.received_at == first.received_at && c.kind == first.kind && c.source == first.source
        })
    })
}

/// Inserts events in order, in chunks of [`INSERT_CHUNK`] rows per statement (cached,
/// so each statement is prepared once per connection), the rest one by one (so is a
/// chunk whose rows do not share their [`SHARED_COLUMNS`]).
fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    events: &[palisade_core::Event],
    now: Timestamp,
) -> Result<(), StoreError> {
    // The statements' text, made once: the statement cache is keyed by it, so it was
    // printed again (1,027 parameters) for every batch only to find the cached one.
    static CHUNK_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static ROW_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let row_statement = || -> Result<_, StoreError> {
        let stmt = tx
            .prepare_cached(ROW_SQL.get_or_init(|| insert_events_sql(1, false)))
            .map_err(sqlite_err)?;
        Ok((stmt, Binder::new(EVENT_COLUMNS)))
    };
    let mut one_by_one = None;
    let mut chunks = events.chunks_exact(INSERT_CHUNK);
    if chunks.len() > 0 {
        let mut stmt = tx
            .prepare_cached(CHUNK_SQL.get_or_init(|| insert_events_sql(INSERT_CHUNK, true)))
            .map_err(sqlite_err)?;
        let mut binder = Binder::new(SHARED_COLUMNS + INSERT_CHUNK * OWN_COLUMNS);
        let mut rows = Vec::with_capacity(INSERT_CHUNK);
        for chunk in &mut chunks {
            rows.clear();
            for e in chunk {
                rows.push(EventColumnsIn::new(e, now)?);
            }
            if share_columns(&rows) {
                for (r, c) in rows.iter().enumerate() {
                    bind_event(&mut stmt, &mut binder, r, c, true)?;
                }
                stmt.raw_execute().map_err(sqlite_err)?;
            } else {
                if one_by_one.is_none() {
                    one_by_one = Some(row_statement()?);
                }
                if let Some((stmt, binder)) = one_by_one.as_mut() {
                    for c in &rows {
                        bind_event(stmt, binder, 0, c, false)?;
                        stmt.raw_execute().map_err(sqlite_err)?;
                    }
                }
            }
            let_others_run();
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        if one_by_one.is_none() {
            one_by_one = Some(row_statement()?);
        }
        if let Some((stmt, binder)) = one_by_one.as_mut() {
            for e in rest {
                bind_event(stmt, binder, 0, &EventColumnsIn::new(e, now)?, false)?;
                stmt.raw_execute().map_err(sqlite_err)?;
            }
        }
        let_others_run();
    }
    Ok(())
}

/// Offers the CPU to any thread waiting for it, between two chunks of a batch's rows.
///
/// A batch of a few hundred events is milliseconds of CPU on the blocking pool. When
/// the process shares one CPU with its runtime worker (a small VM, or a process pinned
/// with `taskset`), the kernel lets the writer run on until its next scheduler tick
/// (4 ms at `HZ=250`) while the worker, with a proxied request in hand, waits: the
/// inline proxy's paced p99 was that wait (issue 16, paced1). Yielding after each
/// chunk (~0.3 ms of rows) bounds it to a chunk; with nothing else runnable it costs
/// one system call per chunk.
fn let_others_run() {
    std::thread::yield_now();
}

/// Binds row `row`'s columns where [`parameter`] puts them (in a chunk statement,
/// `shared`, the shared columns with the first row only), through `binder`.
fn bind_event(
    stmt: &mut rusqlite::CachedStatement<'_>,
    binder: &mut Binder,
    row: usize,
    c: &EventColumnsIn<'_>,
    shared: bool,
) -> Result<(), StoreError> {
    let values: [&dyn rusqlite::ToSql; EVENT_COLUMNS] = [
        &c.ts,
        &c.received_at,
        &c.kind,
        &&*c.source,
        &c.client_ip.as_ref().map(|k| &k[..]),
        &c.host.as_deref(),
        &c.method.as_deref(),
        &c.path.as_deref(),
        &c.query.as_deref(),
        &c.protocol.as_deref(),
        &c.status,
        &c.bytes,
        &c.referer.as_deref(),
        &c.user_agent.as_deref(),
        &c.user_name.as_deref(),
        &c.duration_us,
        &c.message.as_deref(),
        &c.extra.as_deref(),
        &c.verdict,
    ];
    for (column, v) in values.into_iter().enumerate() {
        let shared_column = shared && (1..=SHARED_COLUMNS).contains(&column);
        if shared_column && row > 0 {
            continue;
        }
        binder.bind(stmt, parameter(row, column, shared), v)?;
    }
    Ok(())
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
        insert_events(tx, &batch.events, now)?;
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
    for (source, events, dead_letters) in crate::batch_totals(batch) {
        let source = crate::codec::clean(source);
        tx.prepare_cached(
            "INSERT INTO source_totals (source, events, dead_letters, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (source) DO UPDATE SET
                 events = source_totals.events + excluded.events,
                 dead_letters = source_totals.dead_letters + excluded.dead_letters,
                 updated_at = excluded.updated_at",
        )
        .and_then(|mut s| s.execute(params![&*source, events, dead_letters, now.as_micros()]))
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
        let text_index = self.search.text_index;
        self.blocking(move |inner| {
            let mut writer = lock(&inner.writer);
            migrate(&mut writer, MIGRATIONS)?;
            // Indexes a killed bulk load left aside are built before anything reads.
            super::bulk::end(&mut writer)?;
            super::text_index::sync(&mut writer, text_index)
        })
        .await
    }

    async fn begin_bulk_load(&self, expected_rows: u64) -> Result<bool, StoreError> {
        self.blocking(move |inner| super::bulk::begin(&mut lock(&inner.writer), expected_rows))
            .await
    }

    async fn end_bulk_load(&self) -> Result<(), StoreError> {
        self.blocking(|inner| super::bulk::end(&mut lock(&inner.writer)))
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

    async fn source_totals(&self) -> Result<Vec<crate::SourceTotals>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT source, events, dead_letters FROM source_totals ORDER BY source",
                )
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sqlite_err)?;
            rows.map(|r| {
                let (source, events, dead_letters) = r.map_err(sqlite_err)?;
                Ok(crate::SourceTotals {
                    source,
                    events: count(events)?,
                    dead_letters: count(dead_letters)?,
                })
            })
            .collect()
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
                let probe = |column: &str| -> Result<Option<i64>, StoreError> {
                    sqlgen::probe_query(Dialect::Sqlite, q, column)
                        .map(|probe| {
                            conn.prepare_cached(&probe.text)
                                .and_then(|mut s| {
                                    s.query_row(&params_of(&probe)[..], |r| r.get::<_, i64>(0))
                                })
                                .map_err(sqlite_err)
                        })
                        .transpose()
                };
                let bucket = sqlgen::text::bucket_range(
                    q.path_prefix.as_deref().map(crate::codec::clean).as_deref(),
                );
                // A bulk load sets the path index aside (`bulk.rs`) and the path probe
                // names it: while it is away the prefix is checked on the rows another
                // index finds, which is slower but answers the same.
                let path_index = conn
                    .prepare_cached("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1")
                    .and_then(|mut s| {
                        s.query_row([sqlgen::PATH_INDEX], |r| r.get::<_, i64>(0))
                    })
                    .map_err(sqlite_err)?
                    > 0;
                let mut probes = sqlgen::Probes {
                    client: probe("client_ip")?,
                    path: if path_index { probe("path")? } else { None },
                    text: match q.text.as_deref() {
                        Some(t) if !t.is_empty() => super::text_index::candidates(
                            conn,
                            &crate::codec::clean(t),
                            bucket,
                        )?,
                        _ => None,
                    },
                    window: probe("ts")?,
                    rows: 0,
                };
                if probes.client.is_some() || probes.path.is_some() || probes.text.is_some() {
                    // The ids are dense but for deleted ranges. One min() or max() per
                    // SELECT, so that each is one index lookup and not a table scan.
                    probes.rows = conn
                        .prepare_cached(
                            "SELECT coalesce((SELECT max(id) FROM events) - (SELECT min(id) FROM events) + 1, 0)",
                        )
                        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                        .map_err(sqlite_err)?;
                }
                let drive = sqlgen::sqlite_drive(q, &probes);
                let run = |sql: sqlgen::Sql| -> Result<Vec<StoredEvent>, StoreError> {
                    let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                    let rows = stmt
                        .query_map(&params_of(&sql)[..], event_from_row)
                        .map_err(sqlite_err)?;
                    rows.map(|r| r.map_err(sqlite_err)?.into_stored())
                        .collect::<Result<Vec<_>, _>>()
                };
                // A client network that drives is read in time order, a slice at a time
                // (only its rows the text index has as candidates when both are few);
                // the free-text index's candidates newest id first, a slice at a time;
                // a time walk with no window and no cursor, the table highest id first.
                let small_window = probes.window.is_some_and(|w| w < sqlgen::SMALL_MATCH);
                let both_few = sqlgen::sqlite_both_few(q, &probes);
                let answer = |drive: sqlgen::Drive| {
                    let network = sqlgen::Drive::Column("client_ip");
                    let by = if both_few && drive == sqlgen::Drive::Text {
                        network
                    } else {
                        drive
                    };
                    if let Some(ids) = sqlgen::sqlite_network_ids(q, by) {
                        let candidates = both_few
                            .then(|| sqlgen::sqlite_text_candidates(q))
                            .flatten();
                        super::network::list(conn, q, &ids, candidates.as_ref())
                    } else if let Some(ids) = sqlgen::sqlite_text_ids(q, drive, &probes) {
                        super::text_drive::list(conn, q, &ids, small_window)
                    } else if let Some(walk) = sqlgen::sqlite_id_walk(q, drive) {
                        match super::id_walk::list(conn, q, &walk)? {
                            Some(rows) => Ok(rows),
                            None => run(sqlgen::events_query(Dialect::Sqlite, q, drive)),
                        }
                    } else {
                        run(sqlgen::events_query(Dialect::Sqlite, q, drive))
                    }
                };
                match sqlgen::sqlite_fallback(q, &probes, drive) {
                    None => answer(drive),
                    Some((fallback, scan)) => {
                        // A bounded walk first; a short answer proves nothing.
                        let page = usize::try_from(sqlgen::clamp_limit(q.limit)).unwrap_or(0);
                        let first = run(sqlgen::bounded_events_query(
                            Dialect::Sqlite,
                            q,
                            drive,
                            Some(scan),
                        ))?;
                        if first.len() > page {
                            Ok(first)
                        } else {
                            answer(fallback)
                        }
                    }
                }
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

#[cfg(test)]
mod tests {
    use palisade_core::{Checkpoint, Event, EventKind};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A migrated database on a fresh file, and a trigger that fails (`RAISE(FAIL)`:
    /// the statement stops, its earlier rows stay) the insert of an event whose path is
    /// `/refused`.
    fn refusing_store(dir: &std::path::Path) -> Result<Connection, Box<dyn std::error::Error>> {
        let mut conn = Connection::open(dir.join("t.db"))?;
        migrate(&mut conn, MIGRATIONS)?;
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.path = '/refused'
             BEGIN SELECT RAISE(FAIL, 'refused'); END",
        )?;
        Ok(conn)
    }

    fn batch(paths: impl Iterator<Item = String>, line_no: u64) -> IngestBatch {
        IngestBatch {
            events: paths
                .map(|path| Event {
                    kind: EventKind::Http,
                    source: "t".into(),
                    method: Some("GET".into()),
                    path: Some(path),
                    status: Some(200),
                    ..Event::default()
                })
                .collect(),
            checkpoint: Some(Checkpoint {
                source: "t".into(),
                file_id: "1:2".into(),
                offset: 0,
                line_no,
                fingerprint: 7,
            }),
            ..IngestBatch::default()
        }
    }

    use super::super::stored_rows as stored;

    /// Events of every shape (each optional column present or not, in changing
    /// patterns from row to row) read back as written, whether their chunk shares its
    /// kind, source and received time (bound once) or not (rows one by one), and with
    /// a remainder past the last whole chunk: the parameters [`parameter`] numbers are
    /// those the rows are bound to, and a NULL left in place by the binder is a NULL
    /// the row meant.
    #[test]
    fn events_read_back_as_written_in_shared_and_mixed_chunks() -> TestResult {
        use palisade_core::verdict::Action;
        let dir = tempfile::tempdir()?;
        let mut conn = Connection::open(dir.path().join("t.db"))?;
        migrate(&mut conn, MIGRATIONS)?;
        let some =
            |i: usize, bit: usize, value: String| ((i * 7 + bit * 3) % 5 < 2).then_some(value);
        let event = |i: usize| Event {
            ts: Timestamp(1_700_000_000_000_000 + i as i64),
            // Rows 64..128 (the second chunk) mix two sources, 128..192 two kinds.
            kind: if (128..192).contains(&i) && i.is_multiple_of(9) {
                EventKind::ErrorLog
            } else {
                EventKind::Http
            },
            source: if (64..128).contains(&i) && i.is_multiple_of(5) {
                "other".into()
            } else {
                "t".into()
            },
            client_ip: some(i, 0, String::new())
                .map(|_| std::net::IpAddr::from([10, 0, 0, (i % 256) as u8])),
            host: some(i, 1, format!("h{i}")),
            method: some(i, 2, "GET".into()),
            path: some(i, 3, format!("/p/{i}")),
            query: some(i, 4, format!("q={i}")),
            protocol: some(i, 5, "HTTP/1.1".into()),
            status: some(i, 6, String::new()).map(|_| 200 + (i % 5) as u16),
            bytes: some(i, 7, String::new()).map(|_| i as u64),
            referer: some(i, 8, format!("r{i}")),
            user_agent: some(i, 9, format!("ua{i}")),
            user: some(i, 10, format!("u{i}")),
            duration_us: some(i, 11, String::new()).map(|_| 3 * i as u64),
            message: some(i, 12, format!("m{i}")),
            verdict: some(i, 13, String::new()).map(|_| Action::Detect),
            extra: some(i, 14, String::new())
                .map(|_| vec![("k".to_owned(), format!("v{i}"))])
                .unwrap_or_default(),
        };
        let written: Vec<Event> = (0..64 * 4 + 9).map(event).collect();
        // Two group commits: the second's chunks start from the cached statement.
        for part in written.chunks(64 * 2 + 5) {
            let batch = IngestBatch {
                events: part.to_vec(),
                ..IngestBatch::default()
            };
            write_batches(&mut conn, &[batch])?;
        }
        let mut stmt = conn.prepare(&format!(
            "SELECT {EVENT_SELECT_COLUMNS} FROM events ORDER BY id"
        ))?;
        let read = stmt
            .query_map([], event_from_row)?
            .map(|r| Ok(r?.into_stored()?.event))
            .collect::<Result<Vec<Event>, Box<dyn std::error::Error>>>()?;
        assert_eq!(read.len(), written.len());
        for (i, (read, written)) in read.iter().zip(&written).enumerate() {
            assert_eq!(read, written, "row {i}");
        }
        Ok(())
    }

    /// The events' multi-row inserts run without a statement journal (`INSERT OR
    /// FAIL`): a row that fails part-way through a chunk leaves the chunk's earlier
    /// rows in the transaction, and it is the group's rollback that takes them back.
    /// Nothing of the group is stored, not even its batches before the failing one,
    /// and the same group without the failing row is then stored whole, its ids
    /// starting where they would have.
    #[test]
    fn a_row_failing_inside_a_chunk_stores_nothing_of_its_group() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut conn = refusing_store(dir.path())?;
        let first = batch((0..150).map(|i| format!("/a/{i}")), 150);
        // The refused row is the 41st of the second batch's second chunk of 64.
        let refused = batch(
            (0..200).map(|i| {
                if i == 104 {
                    "/refused".into()
                } else {
                    format!("/b/{i}")
                }
            }),
            350,
        );
        let error = write_batches(&mut conn, &[first.clone(), refused])
            .err()
            .ok_or("the group with a refused row was stored")?;
        assert!(error.to_string().contains("refused"), "{error}");
        for table in ["events", "checkpoints", "source_totals"] {
            assert_eq!(stored(&conn, table)?, 0, "{table}");
        }
        let accepted = batch((0..200).map(|i| format!("/b/{i}")), 350);
        let outcomes = write_batches(&mut conn, &[first, accepted])?;
        let firsts: Vec<Option<i64>> = outcomes.iter().map(|o| o.first_event_id).collect();
        assert_eq!(firsts, [Some(1), Some(151)]);
        assert_eq!(stored(&conn, "events")?, 350);
        let (min, max, last_path): (i64, i64, String) = conn.query_row(
            "SELECT min(id), max(id), (SELECT path FROM events ORDER BY id DESC LIMIT 1) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        assert_eq!((min, max, last_path.as_str()), (1, 350, "/b/199"));
        let line_no: i64 = conn.query_row(
            "SELECT line_no FROM checkpoints WHERE source = 't'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(line_no, 350);
        Ok(())
    }
}
