//! [`InspectionStore`] for the SQLite backend: marks written through the writer
//! connection, reads through the reader pool.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::event::StoredEvent;
use rusqlite::{OptionalExtension, params};

use super::ingest::event_from_row;
use super::{SqliteStore, lock, sqlite_err};
use crate::codec::clean;
use crate::codec::ingest::EVENT_SELECT_COLUMNS;
use crate::{InspectionStore, StoreError};

#[async_trait]
impl InspectionStore for SqliteStore {
    async fn inspected_through(&self, source: &str) -> Result<i64, StoreError> {
        let source = clean(source).into_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT event_id FROM inspection_marks WHERE source = ?1")
                .and_then(|mut s| s.query_row([source], |r| r.get(0)).optional())
                .map(Option::unwrap_or_default)
                .map_err(sqlite_err)
        })
        .await
    }

    async fn mark_inspected(&self, marks: &[(String, i64)]) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        let marks: Vec<(String, i64)> = marks
            .iter()
            .map(|(s, id)| (clean(s).into_owned(), *id))
            .collect();
        let now = Timestamp::now().as_micros();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn.transaction().map_err(sqlite_err)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO inspection_marks (source, event_id, updated_at)
                         VALUES (?1, ?2, ?3)
                         ON CONFLICT (source) DO UPDATE SET
                             event_id = max(inspection_marks.event_id, excluded.event_id),
                             updated_at = excluded.updated_at",
                    )
                    .map_err(sqlite_err)?;
                for (source, id) in &marks {
                    stmt.execute(params![source, id, now]).map_err(sqlite_err)?;
                }
            }
            tx.commit().map_err(sqlite_err)
        })
        .await
    }

    async fn events_after(
        &self,
        source: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let source = clean(source).into_owned();
        self.read(move |conn| {
            // The id order walks the primary key from the mark: the events past it are
            // few, and `events` has no index on source.
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_SELECT_COLUMNS} FROM events
                     WHERE id > ?1 AND source = ?2 ORDER BY id LIMIT ?3"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![after, source, i64::from(limit)], event_from_row)
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_stored()).collect()
        })
        .await
    }

    async fn threatened_events(
        &self,
        source: &str,
        from: i64,
        through: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let source = clean(source).into_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT event_id FROM threats
                     WHERE event_id BETWEEN ?1 AND ?2 AND source = ?3 ORDER BY event_id",
                )
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![from, through, source], |r| r.get(0))
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)).collect()
        })
        .await
    }
}
