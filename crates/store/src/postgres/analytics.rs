//! [`AnalyticsStore`] for the PostgreSQL backend.
//!
//! Ids are drawn when a row is inserted but become visible when its transaction
//! commits, so a plain `max(id)` could skip a row whose transaction is still running.
//! Event writers (and threat writers) hold an advisory lock until they commit; the
//! roll-up reads `max(id)` in a short transaction under that lock, when every id up to
//! it is committed, and rolls up to there. Passes of several nodes take turns on a lock
//! of their own. Reads run in one REPEATABLE READ transaction, so the state, the
//! roll-ups and the rows they are combined with come from the same snapshot.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient};
use palisade_core::Timestamp;
use tokio_postgres::IsolationLevel;

use super::ingest::EVENT_ID_LOCK;
use super::threats::THREAT_ID_LOCK;
use super::{PgStore, corrupt, count, params_of, pg_err};
use crate::analytics::{
    AnalyticsStore, CountQuery, RollupDelta, RollupProgress, RollupRetention, RollupStatus, Series,
    SeriesPoint, SeriesQuery, TopDimension, TopPage, TopQuery, Width,
};
use crate::codec::analytics::{
    Marker, State, finish_counts, finish_top, next_floor, series_key, top_plan,
};
use crate::codec::u64_to_i64;
use crate::sqlgen::analytics::{
    Bind, count_query, delta_upsert, plan, rollup_steps, series_query, source, top_query,
    top_refresh, unrolled_hours,
};
use crate::sqlgen::{Dialect, Sql};
use crate::{Count, StoreError};

const D: Dialect = Dialect::Postgres;

/// Advisory lock key of roll-up passes and top-key refreshes (one at a time across
/// nodes, so that no row is added twice).
const ROLLUP_LOCK: i64 = 0x7061_6c69_726f_6c6c;

async fn read_state(c: &impl GenericClient) -> Result<State, StoreError> {
    let rows = c
        .query("SELECT name, value FROM analytics_state", &[])
        .await
        .map_err(pg_err)?;
    let pairs = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(corrupt)?;
    Ok(State::from_rows(pairs))
}

async fn set_state(c: &impl GenericClient, name: &str, value: i64) -> Result<(), StoreError> {
    c.execute(
        "UPDATE analytics_state SET value = $2 WHERE name = $1",
        &[&name, &value],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

async fn one_i64(c: &impl GenericClient, sql: &str) -> Result<Option<i64>, StoreError> {
    let row = c.query_one(sql, &[]).await.map_err(pg_err)?;
    row.try_get::<_, Option<i64>>(0).map_err(corrupt)
}

async fn oldest(c: &impl GenericClient, table: &str) -> Result<Option<i64>, StoreError> {
    one_i64(c, &format!("SELECT min(ts) FROM {table}")).await
}

async fn run_counts(c: &impl GenericClient, sql: &Sql) -> Result<Vec<(String, i64)>, StoreError> {
    let stmt = c.prepare_cached(&sql.text).await.map_err(pg_err)?;
    let rows = c.query(&stmt, &params_of(sql)).await.map_err(pg_err)?;
    rows.iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(corrupt)
}

async fn hours_of(
    c: &impl GenericClient,
    sql: &str,
    p: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<i64>, StoreError> {
    let rows = c.query(sql, p).await.map_err(pg_err)?;
    rows.iter()
        .map(|r| r.try_get::<_, i64>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)
}

/// The largest id of `table` with every id up to it committed: read under the lock its
/// writers hold until they commit.
async fn committed_max(client: &mut Client, lock: i64, table: &str) -> Result<i64, StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
        .await
        .map_err(pg_err)?;
    let max = one_i64(&tx, &format!("SELECT max(id) FROM {table}")).await?;
    tx.commit().await.map_err(pg_err)?;
    Ok(max.unwrap_or(0))
}

async fn roll(
    c: &impl GenericClient,
    series: &[Series],
    lo: i64,
    hi: i64,
    now: i64,
) -> Result<(), StoreError> {
    for s in series {
        for (sql, bind) in rollup_steps(D, *s) {
            let stmt = c.prepare_cached(&sql).await.map_err(pg_err)?;
            match bind {
                Bind::Nothing => c.execute(&stmt, &[]).await,
                Bind::Range => c.execute(&stmt, &[&lo, &hi]).await,
                Bind::RangeNow => c.execute(&stmt, &[&lo, &hi, &now]).await,
                Bind::Now => c.execute(&stmt, &[&now]).await,
            }
            .map_err(pg_err)?;
        }
    }
    Ok(())
}

async fn update_floor(
    c: &impl GenericClient,
    state: &State,
    series: Series,
    now: i64,
) -> Result<(), StoreError> {
    let Some(src) = source(D, series) else {
        return Ok(());
    };
    let (floor, last_min) = match series {
        Series::Events => (state.events_floor, state.events_min),
        _ => (state.threats_floor, state.threats_min),
    };
    let current = oldest(c, src.floor_table).await?;
    let (floor2, min2) = next_floor(floor, last_min, current, now);
    if floor2 != floor {
        set_state(c, src.floor_name, floor2).await?;
    }
    if min2 != last_min {
        set_state(c, src.min_name, min2).await?;
    }
    Ok(())
}

impl PgStore {
    /// A read-only transaction on one snapshot.
    async fn snapshot<'a>(
        client: &'a mut Client,
    ) -> Result<deadpool_postgres::Transaction<'a>, StoreError> {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)
    }
}

#[async_trait]
impl AnalyticsStore for PgStore {
    async fn roll_up(&self, max_rows: u64, now: Timestamp) -> Result<RollupProgress, StoreError> {
        let step = u64_to_i64(max_rows.max(1));
        let mut client = self.client().await?;
        let max_event = committed_max(&mut client, EVENT_ID_LOCK, "events").await?;
        let max_threat = committed_max(&mut client, THREAT_ID_LOCK, "threats").await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROLLUP_LOCK])
            .await
            .map_err(pg_err)?;
        let state = read_state(&tx).await?;
        let mut progress = RollupProgress::default();
        let hi = max_event.min(state.events_id.saturating_add(step));
        if hi > state.events_id {
            roll(&tx, &[Series::Events], state.events_id, hi, now.as_micros()).await?;
            set_state(&tx, "events_id", hi).await?;
            progress.events = count(hi - state.events_id)?;
        }
        let hi_t = max_threat.min(state.threats_id.saturating_add(step));
        if hi_t > state.threats_id {
            roll(
                &tx,
                &[Series::Threats, Series::Rules],
                state.threats_id,
                hi_t,
                now.as_micros(),
            )
            .await?;
            set_state(&tx, "threats_id", hi_t).await?;
            progress.threats = count(hi_t - state.threats_id)?;
        }
        update_floor(&tx, &state, Series::Events, now.as_micros()).await?;
        update_floor(&tx, &state, Series::Threats, now.as_micros()).await?;
        tx.commit().await.map_err(pg_err)?;
        // Another node may have rolled further meanwhile: the next pass will see it.
        progress.more =
            max_event > hi.max(state.events_id) || max_threat > hi_t.max(state.threats_id);
        Ok(progress)
    }

    async fn refresh_top(
        &self,
        now: Timestamp,
        grace: Duration,
        per_hour: u32,
        max_hours: u32,
    ) -> Result<u32, StoreError> {
        let closed_before = now.as_micros()
            - Width::Hour.micros()
            - i64::try_from(grace.as_micros()).unwrap_or(i64::MAX / 4);
        let mut client = self.client().await?;
        let hours = hours_of(
            &client,
            "SELECT hour FROM analytics_dirty_hours WHERE hour <= $1 ORDER BY hour LIMIT $2",
            &[&closed_before, &i64::from(max_hours)],
        )
        .await?;
        let per_hour = i64::from(per_hour);
        let mut done = 0;
        for hour in hours {
            let tx = client.transaction().await.map_err(pg_err)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROLLUP_LOCK])
                .await
                .map_err(pg_err)?;
            let end = hour + Width::Hour.micros();
            for dim in TopDimension::ALL {
                let sql = top_refresh(D, dim);
                let name = dim.as_str();
                let delete = tx.prepare_cached(&sql.delete).await.map_err(pg_err)?;
                tx.execute(&delete, &[&name, &hour]).await.map_err(pg_err)?;
                for text in [&sql.insert, &sql.marker] {
                    let stmt = tx.prepare_cached(text).await.map_err(pg_err)?;
                    tx.execute(&stmt, &[&name, &hour, &end, &per_hour])
                        .await
                        .map_err(pg_err)?;
                }
            }
            tx.execute(
                "DELETE FROM analytics_dirty_hours WHERE hour = $1",
                &[&hour],
            )
            .await
            .map_err(pg_err)?;
            tx.commit().await.map_err(pg_err)?;
            done += 1;
        }
        Ok(done)
    }

    async fn add_rollups(&self, at: Timestamp, deltas: &[RollupDelta]) -> Result<(), StoreError> {
        if deltas.iter().all(|d| d.value == 0) {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let stmt = tx.prepare_cached(delta_upsert(D)).await.map_err(pg_err)?;
        for d in deltas.iter().filter(|d| d.value > 0) {
            for width in [Width::Minute, Width::Hour] {
                let bucket = width.floor(at.as_micros());
                tx.execute(
                    &stmt,
                    &[
                        &width.secs(),
                        &d.series.as_str(),
                        &bucket,
                        &d.dims[0],
                        &d.dims[1],
                        &d.dims[2],
                        &u64_to_i64(d.value),
                    ],
                )
                .await
                .map_err(pg_err)?;
            }
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn prune_rollups(&self, retention: RollupRetention) -> Result<u64, StoreError> {
        let minutes = Width::Minute.floor(retention.minutes_from.as_micros());
        let hours = Width::Hour.floor(retention.hours_from.as_micros());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let mut n = 0u64;
        n += tx
            .execute(
                "DELETE FROM analytics_counts WHERE width = 60 AND bucket < $1",
                &[&minutes],
            )
            .await
            .map_err(pg_err)?;
        n += tx
            .execute(
                "DELETE FROM analytics_counts WHERE width = 3600 AND bucket < $1",
                &[&hours],
            )
            .await
            .map_err(pg_err)?;
        for sql in [
            "DELETE FROM analytics_top WHERE hour < $1",
            "DELETE FROM analytics_top_hours WHERE hour < $1",
            "DELETE FROM analytics_dirty_hours WHERE hour < $1",
        ] {
            n += tx.execute(sql, &[&hours]).await.map_err(pg_err)?;
        }
        tx.execute(
            "UPDATE analytics_state SET value = GREATEST(value, $2) WHERE name = $1",
            &[&"minute_horizon", &minutes],
        )
        .await
        .map_err(pg_err)?;
        tx.execute(
            "UPDATE analytics_state SET value = GREATEST(value, $2) WHERE name = $1",
            &[&"hour_horizon", &hours],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(n)
    }

    async fn rollup_status(&self) -> Result<RollupStatus, StoreError> {
        let client = self.client().await?;
        let state = read_state(&client).await?;
        let dirty = one_i64(&client, "SELECT count(*) FROM analytics_dirty_hours")
            .await?
            .unwrap_or(0);
        Ok(RollupStatus {
            events_id: state.events_id,
            threats_id: state.threats_id,
            dirty_hours: count(dirty)?,
        })
    }

    async fn count_exact(&self, q: &CountQuery) -> Result<Vec<Count>, StoreError> {
        let mut client = self.client().await?;
        let tx = PgStore::snapshot(&mut client).await?;
        let state = read_state(&tx).await?;
        let (from, to) = (q.from.as_micros(), q.to.as_micros());
        let p = match source(D, q.series) {
            Some(src) => {
                let floor = state.floor(q.series, oldest(&tx, src.floor_table).await?);
                plan(from, to, floor, state.minute_horizon, state.hour_horizon)
            }
            None => Default::default(),
        };
        let sql = count_query(D, q, &p, state.watermark(q.series));
        let rows = run_counts(&tx, &sql).await?;
        tx.commit().await.map_err(pg_err)?;
        finish_counts(q.series, q.group.is_some(), rows)
    }

    async fn rollup_series(&self, q: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let mut client = self.client().await?;
        let tx = PgStore::snapshot(&mut client).await?;
        let state = read_state(&tx).await?;
        let sql = series_query(D, q, state.watermark(q.series), state.horizon(q.width));
        let stmt = tx.prepare_cached(&sql.text).await.map_err(pg_err)?;
        let rows = tx.query(&stmt, &params_of(&sql)).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok(SeriesPoint {
                    bucket: Timestamp(r.try_get(0).map_err(corrupt)?),
                    key: series_key(q.series, r.try_get(1).map_err(corrupt)?),
                    value: count(r.try_get(2).map_err(corrupt)?)?,
                })
            })
            .collect()
    }

    async fn top_keys(&self, q: &TopQuery) -> Result<TopPage, StoreError> {
        let mut client = self.client().await?;
        let tx = PgStore::snapshot(&mut client).await?;
        let state = read_state(&tx).await?;
        let (from, to) = (q.from.as_micros(), q.to.as_micros());
        let floor = state.floor(Series::Events, oldest(&tx, "events").await?);
        let (h0, h1) = (Width::Hour.ceil(from), Width::Hour.floor(to));
        let (markers, dirty, unrolled) = if h0 < h1 {
            let rows = tx
                .query(
                    "SELECT hour, key_count, kept FROM analytics_top_hours \
                     WHERE dimension = $1 AND hour >= $2 AND hour < $3",
                    &[&q.dimension.as_str(), &h0, &h1],
                )
                .await
                .map_err(pg_err)?;
            let markers = rows
                .iter()
                .map(|r| {
                    Ok(Marker {
                        hour: r.try_get(0)?,
                        key_count: r.try_get(1)?,
                        kept: r.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(corrupt)?;
            let dirty = hours_of(
                &tx,
                "SELECT hour FROM analytics_dirty_hours WHERE hour >= $1 AND hour < $2",
                &[&h0, &h1],
            )
            .await?;
            let unrolled = hours_of(&tx, &unrolled_hours(D), &[&state.events_id, &h0, &h1]).await?;
            (markers, dirty, unrolled)
        } else {
            Default::default()
        };
        let plan = top_plan(
            from,
            to,
            floor,
            state.hour_horizon,
            &markers,
            &dirty,
            &unrolled,
        );
        let sql = top_query(D, q.dimension, &plan.clean, &plan.raw, q.limit, q.offset);
        let rows = run_counts(&tx, &sql).await?;
        tx.commit().await.map_err(pg_err)?;
        finish_top(q.dimension, q.limit, plan.truncated, rows)
    }
}
