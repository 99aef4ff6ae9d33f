//! The [`Store`] core for the PostgreSQL backend: the ingest tables (events, dead
//! letters, checkpoints, idempotency keys), written together in one transaction (events
//! by binary COPY), and their reads; also the schema migration and ping entry points.
//!
//! A child module of `postgres` so that it shares that backend's pool and error mapping.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use palisade_core::dead_letter::StoredDeadLetter;
use palisade_core::event::StoredEvent;
use palisade_core::{Checkpoint, Timestamp};
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::copy_rows::CopyRows;
use super::{PgStore, corrupt, count, migrate, params_of, pg_err};
use crate::codec::ingest::{
    CHECKPOINT_SELECT_COLUMNS, CheckpointColumns, CheckpointColumnsIn, DeadLetterColumns,
    DeadLetterColumnsIn, EVENT_INSERT_COLUMNS, EVENT_SELECT_COLUMNS, EventColumns, EventColumnsIn,
};
use crate::codec::u64_to_i64;
use crate::migrations::POSTGRES as MIGRATIONS;
use crate::sqlgen::{self, Dialect};
use crate::{
    Cursor, DeadLetterQuery, EventQuery, IngestBatch, Page, Store, StoreError, WriteOutcome,
};

/// Advisory lock key held by event writers so each batch's ids are consecutive
/// (`"palisade.events"` folded into a bigint; any constant unique to Palisade works).
pub(super) const EVENT_ID_LOCK: i64 = 0x7061_6c69_7361_6465;

/// The column types of `COPY events (EVENT_INSERT_COLUMNS)`, in that order.
const EVENT_COPY_TYPES: [Type; 19] = [
    Type::INT8,  // ts
    Type::INT8,  // received_at
    Type::TEXT,  // kind
    Type::TEXT,  // source
    Type::BYTEA, // client_ip
    Type::TEXT,  // host
    Type::TEXT,  // method
    Type::TEXT,  // path
    Type::TEXT,  // query
    Type::TEXT,  // protocol
    Type::INT4,  // status
    Type::INT8,  // bytes
    Type::TEXT,  // referer
    Type::TEXT,  // user_agent
    Type::TEXT,  // user_name
    Type::INT8,  // duration_us
    Type::TEXT,  // message
    Type::TEXT,  // extra
    Type::TEXT,  // verdict
];

pub(super) fn event_from_row(r: &Row) -> Result<EventColumns, tokio_postgres::Error> {
    Ok(EventColumns {
        id: r.try_get(0)?,
        ts: r.try_get(1)?,
        received_at: r.try_get(2)?,
        kind: r.try_get(3)?,
        source: r.try_get(4)?,
        client_ip: r.try_get(5)?,
        host: r.try_get(6)?,
        method: r.try_get(7)?,
        path: r.try_get(8)?,
        query: r.try_get(9)?,
        protocol: r.try_get(10)?,
        status: r.try_get::<_, Option<i32>>(11)?.map(i64::from),
        bytes: r.try_get(12)?,
        referer: r.try_get(13)?,
        user_agent: r.try_get(14)?,
        user_name: r.try_get(15)?,
        duration_us: r.try_get(16)?,
        message: r.try_get(17)?,
        extra: r.try_get(18)?,
        verdict: r.try_get(19)?,
    })
}

fn dead_letter_from_row(r: &Row) -> Result<DeadLetterColumns, tokio_postgres::Error> {
    Ok(DeadLetterColumns {
        id: r.try_get(0)?,
        source: r.try_get(1)?,
        line_no: r.try_get(2)?,
        byte_offset: r.try_get(3)?,
        raw: r.try_get(4)?,
        reason: r.try_get(5)?,
        received_at: r.try_get(6)?,
    })
}

fn checkpoint_from_row(r: &Row) -> Result<CheckpointColumns, tokio_postgres::Error> {
    Ok(CheckpointColumns {
        source: r.try_get(0)?,
        file_id: r.try_get(1)?,
        byte_offset: r.try_get(2)?,
        line_no: r.try_get(3)?,
        fingerprint: r.try_get(4)?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // Indexes a killed bulk load left aside are built first: their definitions
        // belong to the schema as it was, before any migration this start applies.
        super::bulk::end(&self.pool, self.search).await?;
        let mut client = self.client().await?;
        migrate(&mut client, MIGRATIONS).await?;
        let indexed = super::text_index::sync(&client, self.search).await?;
        self.text_index.store(indexed.trigram, Ordering::Relaxed);
        self.tagged_index.store(indexed.tagged, Ordering::Relaxed);
        Ok(())
    }

    async fn begin_bulk_load(&self, expected_rows: u64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        super::bulk::begin(&mut client, expected_rows).await
    }

    async fn end_bulk_load(&self) -> Result<(), StoreError> {
        super::bulk::end(&self.pool, self.search).await
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg_err)?;
        Ok(start.elapsed())
    }

    async fn write_batches(
        &self,
        batches: Arc<[IngestBatch]>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let now = Timestamp::now();
        let mut client = self.client().await?;
        // Dropping `tx` without commit (any `?` below, or a dropped future) rolls back.
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EVENT_ID_LOCK])
            .await
            .map_err(pg_err)?;
        let mut outcomes = Vec::with_capacity(batches.len());
        for batch in batches.iter() {
            outcomes.push(write_in(&tx, batch, now).await?);
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(outcomes)
    }

    async fn checkpoint(&self, source: &str) -> Result<Option<Checkpoint>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {CHECKPOINT_SELECT_COLUMNS} FROM checkpoints WHERE source = $1"
            ))
            .await
            .map_err(pg_err)?;
        let source = crate::codec::clean(source);
        let source: &str = &source;
        let row = client.query_opt(&stmt, &[&source]).await.map_err(pg_err)?;
        row.map(|r| checkpoint_from_row(&r).map_err(corrupt)?.into_checkpoint())
            .transpose()
    }

    async fn source_totals(&self) -> Result<Vec<crate::SourceTotals>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT source, events, dead_letters FROM source_totals ORDER BY source COLLATE \"C\"",
            )
            .await
            .map_err(pg_err)?;
        let rows = client.query(&stmt, &[]).await.map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok(crate::SourceTotals {
                    source: r.try_get(0).map_err(corrupt)?,
                    events: count(r.try_get(1).map_err(corrupt)?)?,
                    dead_letters: count(r.try_get(2).map_err(corrupt)?)?,
                })
            })
            .collect()
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {CHECKPOINT_SELECT_COLUMNS} FROM checkpoints ORDER BY source COLLATE \"C\""
            ))
            .await
            .map_err(pg_err)?;
        let rows = client.query(&stmt, &[]).await.map_err(pg_err)?;
        rows.iter()
            .map(|r| checkpoint_from_row(r).map_err(corrupt)?.into_checkpoint())
            .collect()
    }

    async fn query_events(&self, query: &EventQuery) -> Result<Page<StoredEvent>, StoreError> {
        let mut client = self.client().await?;
        // One read-only transaction, so that the JIT is off for its statements only.
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)?;
        tx.batch_execute(NO_JIT).await.map_err(pg_err)?;
        let indexes = super::text_index::TextIndexes {
            trigram: self.text_index.load(Ordering::Relaxed),
            tagged: self.tagged_index.load(Ordering::Relaxed),
        };
        let page = list_events(&tx, query, indexes).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(page)
    }

    async fn get_event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {EVENT_SELECT_COLUMNS} FROM events WHERE id = $1"
            ))
            .await
            .map_err(pg_err)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(pg_err)?;
        row.map(|r| event_from_row(&r).map_err(corrupt)?.into_stored())
            .transpose()
    }

    async fn query_dead_letters(
        &self,
        query: &DeadLetterQuery,
    ) -> Result<Page<StoredDeadLetter>, StoreError> {
        let sql = sqlgen::dead_letters_query(Dialect::Postgres, query);
        let client = self.client().await?;
        let rows = client
            .query(sql.text.as_str(), &params_of(&sql))
            .await
            .map_err(pg_err)?;
        let items = rows
            .iter()
            .map(|r| dead_letter_from_row(r).map_err(corrupt)?.into_stored())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, query.limit, |d| Cursor {
            ts: d.dead_letter.received_at.as_micros(),
            id: d.id,
        }))
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*) FROM events", &[])
            .await
            .map_err(pg_err)?;
        count(row.try_get(0).map_err(corrupt)?)
    }
}

/// The PostgreSQL JIT off for the rest of the transaction: a listing reads at most a
/// few tens of thousands of rows, but a plan that sorts the candidates of the text
/// index is costed above `jit_optimize_above_cost` at 10M events, and compiling it
/// took 325 ms of a 1,008 ms query (`/tienda1` + `GET` + `windows`, the GIN part
/// 579 ms).
const NO_JIT: &str = "SET LOCAL jit = off";

/// The events listing of [`Store::query_events`] on `client` (a transaction), with
/// `indexes` saying which free-text indexes exist.
async fn list_events<C: GenericClient>(
    client: &C,
    query: &EventQuery,
    indexes: super::text_index::TextIndexes,
) -> Result<Page<StoredEvent>, StoreError> {
    let text_index = indexes.trigram;
    // A path prefix whose rows (with the method and status asked for) are few is
    // read through the (method, status, path) index and sorted: the planner's
    // estimates assume the filters independent, and they are not (no GET under
    // "/admin$"), so left alone it walked the time index past millions of rows.
    let mut drive = sqlgen::Drive::Planner;
    let mut few_under_prefix = false;
    if let Some(probe) = sqlgen::probe_query(Dialect::Postgres, query, "path") {
        let rows = probe_rows(client, &probe).await?;
        if rows < sqlgen::SMALL_MATCH {
            // Unless the prefix's rows are many enough for a walk newest first to
            // fill a page sooner (bounded; a short answer proves nothing).
            if let Some((walk, scan)) = sqlgen::pg_path_walk(query, rows, table_rows(client).await?)
            {
                let first = bounded_page(client, query, walk, scan).await?;
                if first.next_cursor.is_some() {
                    return Ok(first);
                }
            }
            drive = sqlgen::Drive::Path;
            few_under_prefix = true;
            // With a needle, unless the prefix's bucket is not much larger than its
            // rows: then the text index's candidates (the bucket's rows holding the
            // needle's trigrams) are at most about as many, and usually few.
            if text_index
                && let Some(bound) = sqlgen::pg_bucket_bound(rows)
                && let Some(bucket) = sqlgen::pg_bucket_probe(query, bound)
                && probe_rows(client, &bucket).await? < bound
            {
                drive = sqlgen::pg_tagged_drive(query, sqlgen::Drive::Text, indexes.tagged);
            }
        }
    }
    // A client network of few rows (not one address: that is an equality the
    // planner walks in time order) is read through its index alone.
    if !few_under_prefix
        && query.client.is_some_and(|net| net.first != net.last)
        && let Some(probe) = sqlgen::probe_query(Dialect::Postgres, query, "client_ip")
    {
        let rows = probe_rows(client, &probe).await?;
        // Unless the word is rare: then the planner's AND of the network's bitmap
        // with the GIN's few candidates reads fewer rows.
        let word_rows = match sqlgen::pg_word_estimate(query).filter(|_| text_index) {
            Some(probe) => planner_rows(client, &probe).await?,
            None => None,
        };
        if rows < sqlgen::SMALL_MATCH && sqlgen::pg_network_drives(rows, word_rows) {
            let sql = sqlgen::events_query(Dialect::Postgres, query, sqlgen::Drive::Network);
            return events_page(client, &sql, query).await;
        }
        // A network of many rows beside a word the planner expects rare: the text
        // index alone, the network hidden (the planner walked the time index).
        if sqlgen::pg_large_network_word(rows, word_rows) {
            let sql = sqlgen::events_query(Dialect::Postgres, query, sqlgen::Drive::Text);
            return events_page(client, &sql, query).await;
        }
    }
    // `q` (alone or beside a large prefix): a short walk newest first answers a
    // common word; a rare one is left to the index (with the prefix's bucket).
    if !few_under_prefix
        && text_index
        && let Some(walk) = sqlgen::pg_text_walk(query)
    {
        let first = bounded_page(client, query, walk, sqlgen::PG_TEXT_WALK).await?;
        if first.next_cursor.is_some() {
            return Ok(first);
        }
        // Matches found but not a page: walk on when a page looks near.
        let found = i64::try_from(first.items.len()).unwrap_or(i64::MAX);
        if found > 0 {
            let rows = table_rows(client).await?;
            if let Some(scan) =
                sqlgen::pg_walk_further(found, sqlgen::PG_TEXT_WALK, rows, query.limit)
            {
                let further = bounded_page(client, query, walk, scan).await?;
                if further.next_cursor.is_some() {
                    return Ok(further);
                }
            }
        }
        drive = sqlgen::pg_tagged_drive(query, sqlgen::pg_after_walk(query), indexes.tagged);
    }
    let sql = sqlgen::events_query(Dialect::Postgres, query, drive);
    events_page(client, &sql, query).await
}

/// How many rows `probe` (a `sqlgen::probe_query`: a bounded count) counts.
async fn probe_rows<C: GenericClient>(client: &C, probe: &sqlgen::Sql) -> Result<i64, StoreError> {
    single_i64(client, probe.text.as_str(), &params_of(probe)).await
}

/// The one `bigint` a one-row statement (a count, an estimate) answers.
async fn single_i64<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<i64, StoreError> {
    client
        .query_one(sql, params)
        .await
        .map_err(pg_err)?
        .try_get(0)
        .map_err(corrupt)
}

/// The planner's row estimate for `probe` (an `EXPLAIN` of it: planning only), from
/// the first line of the plan; `None` when the plan does not say.
async fn planner_rows<C: GenericClient>(
    client: &C,
    probe: &sqlgen::Sql,
) -> Result<Option<i64>, StoreError> {
    let rows = client
        .query(probe.text.as_str(), &params_of(probe))
        .await
        .map_err(pg_err)?;
    let first: Option<String> = rows
        .first()
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(corrupt)?;
    Ok(first.as_deref().and_then(sqlgen::plan_rows))
}

/// About how many events the table holds (`max(id) - min(id) + 1`: the ids are dense
/// but for deleted ranges), from two index lookups rather than a count.
async fn table_rows<C: GenericClient>(client: &C) -> Result<i64, StoreError> {
    single_i64(
        client,
        "SELECT coalesce(max(id) - min(id) + 1, 0) FROM events",
        &[],
    )
    .await
}

/// Runs an events listing and turns its rows (one more than the page) into a page.
async fn events_page<C: GenericClient>(
    client: &C,
    sql: &sqlgen::Sql,
    query: &EventQuery,
) -> Result<Page<StoredEvent>, StoreError> {
    let rows = client
        .query(sql.text.as_str(), &params_of(sql))
        .await
        .map_err(pg_err)?;
    let items = rows
        .iter()
        .map(|r| event_from_row(r).map_err(corrupt)?.into_stored())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sqlgen::into_page(items, query.limit, |e| Cursor {
        ts: e.event.ts.as_micros(),
        id: e.id,
    }))
}

/// The matches of `query` among at most `scan` rows of `walk`'s index, newest first.
/// Exact when they hold a full page and one more row (a next cursor): every match
/// left out is older than every row read. Without a next cursor it proves nothing
/// (the walk may have stopped before the matches), except how many it met.
async fn bounded_page<C: GenericClient>(
    client: &C,
    query: &EventQuery,
    walk: sqlgen::Drive,
    scan: i64,
) -> Result<Page<StoredEvent>, StoreError> {
    let sql = sqlgen::bounded_events_query(Dialect::Postgres, query, walk, Some(scan));
    events_page(client, &sql, query).await
}

/// Writes one batch inside an open transaction (events by binary COPY); a batch whose
/// idempotency key is already stored writes nothing and reports the first write's counts.
async fn write_in(
    tx: &deadpool_postgres::Transaction<'_>,
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
        let stmt = tx
            .prepare_cached(
                "INSERT INTO ingest_keys (key, events, dead_letters, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
            )
            .await
            .map_err(pg_err)?;
        let key = crate::codec::clean(key);
        let key: &str = &key;
        let inserted = tx
            .execute(
                &stmt,
                &[
                    &key,
                    &u64_to_i64(outcome.events),
                    &u64_to_i64(outcome.dead_letters),
                    &now.as_micros(),
                ],
            )
            .await
            .map_err(pg_err)?;
        if inserted == 0 {
            // Either committed earlier, or by a concurrent writer we waited for.
            let row = tx
                .query_one(
                    "SELECT events, dead_letters FROM ingest_keys WHERE key = $1",
                    &[&key],
                )
                .await
                .map_err(pg_err)?;
            let events: i64 = row.try_get(0).map_err(corrupt)?;
            let dead_letters: i64 = row.try_get(1).map_err(corrupt)?;
            return Ok(WriteOutcome {
                events: count(events)?,
                dead_letters: count(dead_letters)?,
                duplicate: true,
                first_event_id: None,
            });
        }
    }

    if !batch.events.is_empty() {
        let sink = tx
            .copy_in(&format!(
                "COPY events ({EVENT_INSERT_COLUMNS}) FROM STDIN (FORMAT binary)"
            ))
            .await
            .map_err(pg_err)?;
        let mut writer = CopyRows::new(sink, &EVENT_COPY_TYPES);
        for e in &batch.events {
            let c = EventColumnsIn::new(e, now)?;
            let source: &str = &c.source;
            let client_ip: Option<&[u8]> = c.client_ip.as_ref().map(|k| &k[..]);
            let host = c.host.as_deref();
            let method = c.method.as_deref();
            let path = c.path.as_deref();
            let query = c.query.as_deref();
            let protocol = c.protocol.as_deref();
            let referer = c.referer.as_deref();
            let user_agent = c.user_agent.as_deref();
            let user_name = c.user_name.as_deref();
            let message = c.message.as_deref();
            let extra = c.extra.as_deref();
            writer
                .write(&[
                    &c.ts,
                    &c.received_at,
                    &c.kind,
                    &source,
                    &client_ip,
                    &host,
                    &method,
                    &path,
                    &query,
                    &protocol,
                    &c.status,
                    &c.bytes,
                    &referer,
                    &user_agent,
                    &user_name,
                    &c.duration_us,
                    &message,
                    &extra,
                    &c.verdict,
                ])
                .await?;
        }
        writer.finish().await?;
        // The ids COPY drew, in order: writers hold EVENT_ID_LOCK until commit, so no
        // other Palisade writer draws from the sequence in between.
        let row = tx
            .query_one(
                "SELECT currval(pg_get_serial_sequence('events', 'id'))",
                &[],
            )
            .await
            .map_err(pg_err)?;
        let last: i64 = row.try_get(0).map_err(corrupt)?;
        outcome.first_event_id = Some(last - u64_to_i64(outcome.events) + 1);
    }

    if !batch.dead_letters.is_empty() {
        let cols: Vec<DeadLetterColumnsIn<'_>> = batch
            .dead_letters
            .iter()
            .map(DeadLetterColumnsIn::new)
            .collect();
        let sources: Vec<&str> = cols.iter().map(|c| &*c.source).collect();
        let line_nos: Vec<Option<i64>> = cols.iter().map(|c| c.line_no).collect();
        let offsets: Vec<Option<i64>> = cols.iter().map(|c| c.byte_offset).collect();
        let raws: Vec<&str> = cols.iter().map(|c| &*c.raw).collect();
        let reasons: Vec<&str> = cols.iter().map(|c| &*c.reason).collect();
        let received: Vec<i64> = cols.iter().map(|c| c.received_at).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO dead_letters (source, line_no, byte_offset, raw, reason, received_at)
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[],
                                      $5::text[], $6::int8[])",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(
            &stmt,
            &[&sources, &line_nos, &offsets, &raws, &reasons, &received],
        )
        .await
        .map_err(pg_err)?;
    }

    if let Some(cp) = &batch.checkpoint {
        let c = CheckpointColumnsIn::new(cp);
        let stmt = tx
            .prepare_cached(
                "INSERT INTO checkpoints (source, file_id, byte_offset, line_no, fingerprint, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (source) DO UPDATE SET
                     file_id = excluded.file_id, byte_offset = excluded.byte_offset,
                     line_no = excluded.line_no, fingerprint = excluded.fingerprint,
                     updated_at = excluded.updated_at",
            )
            .await
            .map_err(pg_err)?;
        let source: &str = &c.source;
        let file_id: &str = &c.file_id;
        tx.execute(
            &stmt,
            &[
                &source,
                &file_id,
                &c.byte_offset,
                &c.line_no,
                &c.fingerprint,
                &now.as_micros(),
            ],
        )
        .await
        .map_err(pg_err)?;
    }

    for (source, events, dead_letters) in crate::batch_totals(batch) {
        let source = crate::codec::clean(source);
        let source: &str = &source;
        let now_us = now.as_micros();
        tx.execute(
            "INSERT INTO source_totals (source, events, dead_letters, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (source) DO UPDATE SET
                 events = source_totals.events + excluded.events,
                 dead_letters = source_totals.dead_letters + excluded.dead_letters,
                 updated_at = excluded.updated_at",
            &[&source, &events, &dead_letters, &now_us],
        )
        .await
        .map_err(pg_err)?;
    }
    Ok(outcome)
}
