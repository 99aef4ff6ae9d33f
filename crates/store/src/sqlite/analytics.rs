//! [`AnalyticsStore`] for the SQLite backend.
//!
//! Roll-up passes run on the writer connection in an IMMEDIATE transaction, so they
//! take turns with ingest writes (and with other processes on the same file); each pass
//! covers a bounded number of ids so that ingest never waits long. SQLite assigns ids
//! inside the write lock, so every id up to the largest one seen is committed: the
//! watermark can follow `max(id)` directly. Reads run in one deferred transaction on a
//! reader connection: the state, the roll-ups and the rows they are combined with come
//! from the same snapshot.

use std::time::Duration;

use async_trait::async_trait;
use palisade_core::Timestamp;
use rusqlite::{Connection, TransactionBehavior, params};

use super::{SqliteStore, count, limit_sql, lock, params_of, sqlite_err};
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

const D: Dialect = Dialect::Sqlite;

fn read_state(conn: &Connection) -> Result<State, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, value FROM analytics_state")
        .map_err(sqlite_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sqlite_err)?;
    let rows = rows.collect::<Result<Vec<_>, _>>().map_err(sqlite_err)?;
    Ok(State::from_rows(rows))
}

fn set_state(conn: &Connection, name: &str, value: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE analytics_state SET value = ?2 WHERE name = ?1")
        .and_then(|mut s| s.execute(params![name, value]))
        .map_err(sqlite_err)?;
    Ok(())
}

fn one_i64(conn: &Connection, sql: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<i64>>(0)))
        .map_err(sqlite_err)
}

/// The oldest row time of a table (`min` over its time index).
fn oldest(conn: &Connection, table: &str) -> Result<Option<i64>, StoreError> {
    one_i64(conn, &format!("SELECT min(ts) FROM {table}"))
}

fn run_counts(conn: &Connection, sql: &Sql) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
    let rows = stmt
        .query_map(&params_of(sql)[..], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(sqlite_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sqlite_err)
}

fn hours_of(
    conn: &Connection,
    sql: &str,
    p: &[&dyn rusqlite::ToSql],
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite_err)?;
    let rows = stmt
        .query_map(p, |r| r.get::<_, i64>(0))
        .map_err(sqlite_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sqlite_err)
}

/// One roll-up pass for the stored series in `series`, over ids `(lo, hi]`.
fn roll(
    conn: &Connection,
    series: &[Series],
    lo: i64,
    hi: i64,
    now: i64,
) -> Result<(), StoreError> {
    for s in series {
        for (sql, bind) in rollup_steps(D, *s) {
            let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_err)?;
            match bind {
                Bind::Nothing => stmt.execute([]),
                Bind::Range => stmt.execute(params![lo, hi]),
                Bind::RangeNow => stmt.execute(params![lo, hi, now]),
                Bind::Now => stmt.execute(params![now]),
            }
            .map_err(sqlite_err)?;
        }
    }
    Ok(())
}

/// Moves a series' floor after a pass (see `codec::analytics::next_floor`).
fn update_floor(
    conn: &Connection,
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
    let current = oldest(conn, src.floor_table)?;
    let (floor2, min2) = next_floor(floor, last_min, current, now);
    if floor2 != floor {
        set_state(conn, src.floor_name, floor2)?;
    }
    if min2 != last_min {
        set_state(conn, src.min_name, min2)?;
    }
    Ok(())
}

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn roll_up(&self, max_rows: u64, now: Timestamp) -> Result<RollupProgress, StoreError> {
        let step = u64_to_i64(max_rows.max(1));
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let state = read_state(&tx)?;
            let max_event = one_i64(&tx, "SELECT max(id) FROM events")?.unwrap_or(0);
            let max_threat = one_i64(&tx, "SELECT max(id) FROM threats")?.unwrap_or(0);
            let mut progress = RollupProgress::default();
            let hi = max_event.min(state.events_id.saturating_add(step));
            if hi > state.events_id {
                roll(&tx, &[Series::Events], state.events_id, hi, now.as_micros())?;
                set_state(&tx, "events_id", hi)?;
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
                )?;
                set_state(&tx, "threats_id", hi_t)?;
                progress.threats = count(hi_t - state.threats_id)?;
            }
            update_floor(&tx, &state, Series::Events, now.as_micros())?;
            update_floor(&tx, &state, Series::Threats, now.as_micros())?;
            tx.commit().map_err(sqlite_err)?;
            progress.more = max_event > hi || max_threat > hi_t;
            Ok(progress)
        })
        .await
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
        let hours = self
            .read(move |conn| {
                // The limit is in the text, not bound: see `super::limit_sql`.
                hours_of(
                    conn,
                    &format!(
                        "SELECT hour FROM analytics_dirty_hours WHERE hour <= ?1 ORDER BY hour {}",
                        limit_sql(max_hours)
                    ),
                    &[&closed_before],
                )
            })
            .await?;
        let mut done = 0;
        for hour in hours {
            self.blocking(move |inner| {
                let mut conn = lock(&inner.writer);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sqlite_err)?;
                let end = hour + Width::Hour.micros();
                for dim in TopDimension::ALL {
                    let sql = top_refresh(D, dim);
                    let name = dim.as_str();
                    tx.prepare_cached(&sql.delete)
                        .and_then(|mut s| s.execute(params![name, hour]))
                        .map_err(sqlite_err)?;
                    for stmt in [&sql.insert, &sql.marker] {
                        tx.prepare_cached(stmt)
                            .and_then(|mut s| s.execute(params![name, hour, end, per_hour]))
                            .map_err(sqlite_err)?;
                    }
                }
                tx.prepare_cached("DELETE FROM analytics_dirty_hours WHERE hour = ?1")
                    .and_then(|mut s| s.execute([hour]))
                    .map_err(sqlite_err)?;
                tx.commit().map_err(sqlite_err)
            })
            .await?;
            done += 1;
        }
        Ok(done)
    }

    async fn add_rollups(&self, at: Timestamp, deltas: &[RollupDelta]) -> Result<(), StoreError> {
        let deltas: Vec<RollupDelta> = deltas.iter().filter(|d| d.value > 0).cloned().collect();
        if deltas.is_empty() {
            return Ok(());
        }
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            {
                let mut stmt = tx.prepare_cached(delta_upsert(D)).map_err(sqlite_err)?;
                for d in &deltas {
                    for width in [Width::Minute, Width::Hour] {
                        let bucket = width.floor(at.as_micros());
                        stmt.execute(params![
                            width.secs(),
                            d.series.as_str(),
                            bucket,
                            &d.dims[0],
                            &d.dims[1],
                            &d.dims[2],
                            u64_to_i64(d.value)
                        ])
                        .map_err(sqlite_err)?;
                    }
                }
            }
            tx.commit().map_err(sqlite_err)
        })
        .await
    }

    async fn prune_rollups(&self, retention: RollupRetention) -> Result<u64, StoreError> {
        let minutes = Width::Minute.floor(retention.minutes_from.as_micros());
        let hours = Width::Hour.floor(retention.hours_from.as_micros());
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let mut n = 0usize;
            let mut del = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
                n += tx
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute(p))
                    .map_err(sqlite_err)?;
                Ok(())
            };
            for series in ["events", "threats", "rules", "requests", "latency"] {
                del(
                    "DELETE FROM analytics_counts WHERE width = 60 AND series = ?1 AND bucket < ?2",
                    &[&series, &minutes],
                )?;
                del(
                    "DELETE FROM analytics_counts WHERE width = 3600 AND series = ?1 AND bucket < ?2",
                    &[&series, &hours],
                )?;
            }
            for dim in TopDimension::ALL {
                let name = dim.as_str();
                del(
                    "DELETE FROM analytics_top WHERE dimension = ?1 AND hour < ?2",
                    &[&name, &hours],
                )?;
                del(
                    "DELETE FROM analytics_top_hours WHERE dimension = ?1 AND hour < ?2",
                    &[&name, &hours],
                )?;
            }
            del("DELETE FROM analytics_dirty_hours WHERE hour < ?1", &[&hours])?;
            let state = read_state(&tx)?;
            if minutes > state.minute_horizon {
                set_state(&tx, "minute_horizon", minutes)?;
            }
            if hours > state.hour_horizon {
                set_state(&tx, "hour_horizon", hours)?;
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn rollup_status(&self) -> Result<RollupStatus, StoreError> {
        self.read(|conn| {
            let state = read_state(conn)?;
            let dirty = one_i64(conn, "SELECT count(*) FROM analytics_dirty_hours")?.unwrap_or(0);
            Ok(RollupStatus {
                events_id: state.events_id,
                threats_id: state.threats_id,
                dirty_hours: count(dirty)?,
            })
        })
        .await
    }

    async fn count_exact(&self, query: &CountQuery) -> Result<Vec<Count>, StoreError> {
        let q = query.clone();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction().map_err(sqlite_err)?;
            let state = read_state(&tx)?;
            let (from, to) = (q.from.as_micros(), q.to.as_micros());
            let p = match source(D, q.series) {
                Some(src) => {
                    let floor = state.floor(q.series, oldest(&tx, src.floor_table)?);
                    plan(from, to, floor, state.minute_horizon, state.hour_horizon)
                }
                None => Default::default(),
            };
            let sql = count_query(D, &q, &p, state.watermark(q.series));
            let rows = run_counts(&tx, &sql)?;
            finish_counts(q.series, q.group.is_some(), rows)
        })
        .await
    }

    async fn rollup_series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let q = query.clone();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction().map_err(sqlite_err)?;
            let state = read_state(&tx)?;
            let sql = series_query(D, &q, state.watermark(q.series), state.horizon(q.width));
            let mut stmt = tx.prepare_cached(&sql.text).map_err(sqlite_err)?;
            let rows = stmt
                .query_map(&params_of(&sql)[..], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sqlite_err)?;
            rows.map(|r| {
                let (t, k, n) = r.map_err(sqlite_err)?;
                Ok(SeriesPoint {
                    bucket: Timestamp(t),
                    key: series_key(q.series, k),
                    value: count(n)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn top_keys(&self, query: &TopQuery) -> Result<TopPage, StoreError> {
        let q = query.clone();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction().map_err(sqlite_err)?;
            let state = read_state(&tx)?;
            let (from, to) = (q.from.as_micros(), q.to.as_micros());
            let floor = state.floor(Series::Events, oldest(&tx, "events")?);
            let (h0, h1) = (Width::Hour.ceil(from), Width::Hour.floor(to));
            let (markers, dirty, unrolled) = if h0 < h1 {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT hour, key_count, kept FROM analytics_top_hours \
                         WHERE dimension = ?1 AND hour >= ?2 AND hour < ?3",
                    )
                    .map_err(sqlite_err)?;
                let markers = stmt
                    .query_map(params![q.dimension.as_str(), h0, h1], |r| {
                        Ok(Marker {
                            hour: r.get(0)?,
                            key_count: r.get(1)?,
                            kept: r.get(2)?,
                        })
                    })
                    .map_err(sqlite_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sqlite_err)?;
                let dirty = hours_of(
                    &tx,
                    "SELECT hour FROM analytics_dirty_hours WHERE hour >= ?1 AND hour < ?2",
                    &[&h0, &h1],
                )?;
                let unrolled = hours_of(&tx, &unrolled_hours(D), &[&state.events_id, &h0, &h1])?;
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
            let rows = run_counts(&tx, &sql)?;
            finish_top(q.dimension, q.limit, plan.truncated, rows)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::analytics::{CountQuery, Dim};

    /// The plan lines SQLite chooses for `sql`.
    fn plan_of(conn: &Connection, sql: &Sql) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
            .unwrap();
        stmt.query_map(&params_of(sql)[..], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Found by the 10M-event benchmark: without statistics SQLite answered "rows past
    /// the watermark in these 30 days" by walking the time index over all 30 days
    /// (a second per overview), and would as happily walk the primary key for an edge
    /// of two minutes. Each branch must search by the range that is short.
    #[tokio::test]
    async fn each_branch_searches_by_its_short_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let store = SqliteStore::open(&path).unwrap();
        store.migrate().await.unwrap();
        let conn = Connection::open(&path).unwrap();
        let day = 86_400_000_000;
        let (from, to) = (100 * day + 17, 130 * day + 5);
        let q = CountQuery {
            series: Series::Events,
            from: Timestamp(from),
            to: Timestamp(to),
            filters: vec![],
            group: Some(Dim::D1),
            limit: None,
            offset: 0,
        };
        let p = plan(from, to, Some(0), 0, 0);
        assert_eq!(p.raw.len(), 2, "{p:?}");
        let lines = plan_of(&conn, &count_query(D, &q, &p, 1_000_000));
        let on_events: Vec<&String> = lines.iter().filter(|l| l.contains("events")).collect();
        assert_eq!(on_events.len(), 3, "{lines:?}");
        assert!(
            on_events[..2].iter().all(|l| l.contains("events_ts")),
            "edges by time: {lines:?}"
        );
        assert!(
            on_events[2].contains("INTEGER PRIMARY KEY"),
            "past the watermark by id: {lines:?}"
        );
        let s = SeriesQuery {
            series: Series::Events,
            width: Width::Hour,
            from: Timestamp(from),
            to: Timestamp(to),
            filters: vec![],
            group: None,
        };
        let lines = plan_of(&conn, &series_query(D, &s, 1_000_000, 0));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("events") && l.contains("INTEGER PRIMARY KEY")),
            "{lines:?}"
        );
        let hours = Sql {
            text: unrolled_hours(D),
            params: vec![
                crate::sqlgen::Param::I64(5),
                crate::sqlgen::Param::I64(from),
                crate::sqlgen::Param::I64(to),
            ],
        };
        let lines = plan_of(&conn, &hours);
        assert!(
            lines.iter().any(|l| l.contains("INTEGER PRIMARY KEY")),
            "{lines:?}"
        );
        let top = top_query(D, TopDimension::Path, &[], &[(from, from + day)], 10, 0);
        let lines = plan_of(&conn, &top);
        assert!(lines.iter().any(|l| l.contains("events_ts")), "{lines:?}");
    }
}
