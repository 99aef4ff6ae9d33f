//! [`InspectionStore`] for the PostgreSQL backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::event::StoredEvent;

use super::ingest::event_from_row;
use super::{PgStore, corrupt, pg_err};
use crate::codec::clean;
use crate::codec::ingest::EVENT_SELECT_COLUMNS;
use crate::{InspectionStore, StoreError};

#[async_trait]
impl InspectionStore for PgStore {
    async fn inspected_through(&self, source: &str) -> Result<i64, StoreError> {
        let source = clean(source);
        let source: &str = &source;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT event_id FROM inspection_marks WHERE source = $1")
            .await
            .map_err(pg_err)?;
        let row = client.query_opt(&stmt, &[&source]).await.map_err(pg_err)?;
        Ok(row
            .map(|r| r.try_get::<_, i64>(0).map_err(corrupt))
            .transpose()?
            .unwrap_or_default())
    }

    async fn mark_inspected(&self, marks: &[(String, i64)]) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now().as_micros();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO inspection_marks (source, event_id, updated_at)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (source) DO UPDATE SET
                     event_id = GREATEST(inspection_marks.event_id, excluded.event_id),
                     updated_at = excluded.updated_at",
            )
            .await
            .map_err(pg_err)?;
        for (source, id) in marks {
            let source = clean(source);
            let source: &str = &source;
            tx.execute(&stmt, &[&source, id, &now])
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn events_after(
        &self,
        source: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let source = clean(source);
        let source: &str = &source;
        let client = self.client().await?;
        // The id order walks the primary key from the mark: the events past it are
        // few, and `events` has no index on source.
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {EVENT_SELECT_COLUMNS} FROM events
                 WHERE id > $1 AND source = $2 ORDER BY id LIMIT $3"
            ))
            .await
            .map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&after, &source, &i64::from(limit)])
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| event_from_row(r).map_err(corrupt)?.into_stored())
            .collect()
    }

    async fn threatened_events(
        &self,
        source: &str,
        from: i64,
        through: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let source = clean(source);
        let source: &str = &source;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT DISTINCT event_id FROM threats
                 WHERE event_id BETWEEN $1 AND $2 AND source = $3 ORDER BY event_id",
            )
            .await
            .map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&from, &through, &source])
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| r.try_get::<_, i64>(0).map_err(corrupt))
            .collect()
    }
}
