//! [`AlertStore`] for the SQLite backend: one writer, so grouping reads and writes in
//! one `IMMEDIATE` transaction never race.

use async_trait::async_trait;
use palisade_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, limit_sql, lock, sqlite_err};
use crate::codec::alerts::{
    ACTIVITY_COLUMNS, ALERT_COLUMNS, AlertColumns, DELIVERY_COLUMNS, DeliveryColumns, Plan,
    SPEC_COLUMNS, action_of, activity, history, name_taken, next_after_transition, plan,
    spec_record, transition_allowed,
};
use crate::codec::clean;
use crate::sqlgen::into_page;
use crate::{
    Activity, ActivityQuery, Alert, AlertChange, AlertChangeKind, AlertHistoryEntry, AlertHit,
    AlertQuery, AlertStore, AlertTransition, Cursor, Delivery, DeliveryUpdate, NewActivity,
    NewDelivery, Page, SpecInput, SpecRecord, SpecTable, StoreError, TransitionOutcome,
};

fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertColumns> {
    Ok(AlertColumns {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        rule_name: r.get(2)?,
        group_key: r.get(3)?,
        title: r.get(4)?,
        severity: r.get(5)?,
        category: r.get(6)?,
        state: r.get(7)?,
        count: r.get(8)?,
        first_seen: r.get(9)?,
        last_seen: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        state_at: r.get(13)?,
        state_by: r.get(14)?,
        state_comment: r.get(15)?,
        notified_at: r.get(16)?,
        next_notify_at: r.get(17)?,
    })
}

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<DeliveryColumns> {
    Ok(DeliveryColumns {
        id: r.get(0)?,
        alert_id: r.get(1)?,
        channel_id: r.get(2)?,
        message_id: r.get(3)?,
        event: r.get(4)?,
        payload: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        next_at: r.get(8)?,
        created_at: r.get(9)?,
        last_attempt_at: r.get(10)?,
        last_status: r.get(11)?,
        last_error: r.get(12)?,
        delivered_at: r.get(13)?,
    })
}

fn spec_row(r: &Row<'_>) -> rusqlite::Result<(i64, String, String, bool, String, i64, i64)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn get_alert(conn: &Connection, id: i64) -> Result<Option<Alert>, StoreError> {
    conn.prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], alert_row).optional())
        .map_err(sqlite_err)?
        .map(AlertColumns::into_alert)
        .transpose()
}

fn get_spec(
    conn: &Connection,
    table: SpecTable,
    id: i64,
) -> Result<Option<SpecRecord>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {SPEC_COLUMNS} FROM {} WHERE id = ?1",
            table.table()
        ))
        .and_then(|mut s| s.query_row([id], spec_row).optional())
        .map_err(sqlite_err)?;
    row.map(|(id, n, k, e, s, c, u)| spec_record(id, n, k, e, s, c, u))
        .transpose()
}

fn name_in_use(
    conn: &Connection,
    table: SpecTable,
    name: &str,
    not: i64,
) -> Result<bool, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT 1 FROM {} WHERE name = ?1 AND id <> ?2",
        table.table()
    ))
    .and_then(|mut s| s.exists(params![name, not]))
    .map_err(sqlite_err)
}

#[allow(clippy::too_many_arguments)]
fn add_history(
    conn: &Connection,
    alert: i64,
    at: i64,
    action: &str,
    actor: Option<&str>,
    from: Option<&str>,
    to: &str,
    comment: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO alert_history (alert_id, at, action, actor, from_state, to_state, comment) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| s.execute(params![alert, at, action, actor, from, to, comment]))
    .map_err(sqlite_err)?;
    Ok(())
}

fn record_hit(conn: &Connection, hit: &AlertHit) -> Result<AlertChange, StoreError> {
    let latest = conn
        .prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE rule_id = ?1 AND group_key = ?2 \
             ORDER BY id DESC LIMIT 1"
        ))
        .and_then(|mut s| {
            s.query_row(params![hit.rule_id, clean(&hit.group_key)], alert_row)
                .optional()
        })
        .map_err(sqlite_err)?
        .map(AlertColumns::into_alert)
        .transpose()?;
    let at = hit.at.as_micros();
    let n = i64::try_from(hit.threat_ids.len()).unwrap_or(i64::MAX);
    let (id, kind) = match plan(latest.as_ref(), hit) {
        Plan::Open { notify_at } => {
            conn.prepare_cached(
                "INSERT INTO alerts (rule_id, rule_name, group_key, title, severity, category, \
                 state, count, first_seen, last_seen, created_at, updated_at, state_at, \
                 next_notify_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?9, ?10, ?10, \
                 ?10, ?11)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    hit.rule_id,
                    clean(&hit.rule_name),
                    clean(&hit.group_key),
                    clean(&hit.title),
                    hit.severity.as_str(),
                    clean(&hit.category),
                    n,
                    hit.first_seen.as_micros(),
                    hit.last_seen.as_micros(),
                    at,
                    notify_at
                ])
            })
            .map_err(sqlite_err)?;
            let id = conn.last_insert_rowid();
            add_history(conn, id, at, "opened", None, None, "active", None)?;
            (id, AlertChangeKind::Opened)
        }
        Plan::Merge {
            id,
            kind,
            state,
            severity,
            next_notify_at,
        } => {
            let reopened = kind == AlertChangeKind::Reopened;
            conn.prepare_cached(
                "UPDATE alerts SET count = count + ?2, first_seen = min(first_seen, ?3), \
                 last_seen = max(last_seen, ?4), severity = ?5, state = ?6, updated_at = ?7, \
                 next_notify_at = ?8, \
                 state_at = CASE WHEN ?9 THEN ?7 ELSE state_at END, \
                 state_by = CASE WHEN ?9 THEN NULL ELSE state_by END, \
                 state_comment = CASE WHEN ?9 THEN NULL ELSE state_comment END \
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    n,
                    hit.first_seen.as_micros(),
                    hit.last_seen.as_micros(),
                    severity.as_str(),
                    state.as_str(),
                    at,
                    next_notify_at,
                    reopened
                ])
            })
            .map_err(sqlite_err)?;
            if let (Some(action), Some(prev)) = (action_of(kind), latest.as_ref()) {
                add_history(
                    conn,
                    id,
                    at,
                    action,
                    None,
                    Some(prev.state.as_str()),
                    state.as_str(),
                    None,
                )?;
            }
            (id, kind)
        }
    };
    {
        let mut link = conn
            .prepare_cached(
                "INSERT INTO alert_threats (alert_id, threat_id) VALUES (?1, ?2) \
                 ON CONFLICT DO NOTHING",
            )
            .map_err(sqlite_err)?;
        for t in &hit.threat_ids {
            link.execute(params![id, t]).map_err(sqlite_err)?;
        }
    }
    let alert =
        get_alert(conn, id)?.ok_or_else(|| StoreError::Database(format!("alert {id} vanished")))?;
    Ok(AlertChange { kind, alert })
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn list_specs(&self, table: SpecTable) -> Result<Vec<SpecRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SPEC_COLUMNS} FROM {} ORDER BY name",
                    table.table()
                ))
                .map_err(sqlite_err)?;
            let rows = stmt.query_map([], spec_row).map_err(sqlite_err)?;
            rows.map(|r| {
                let (id, n, k, e, s, c, u) = r.map_err(sqlite_err)?;
                spec_record(id, n, k, e, s, c, u)
            })
            .collect()
        })
        .await
    }

    async fn get_spec(&self, table: SpecTable, id: i64) -> Result<Option<SpecRecord>, StoreError> {
        self.read(move |conn| get_spec(conn, table, id)).await
    }

    async fn insert_spec(
        &self,
        table: SpecTable,
        spec: &SpecInput,
    ) -> Result<SpecRecord, StoreError> {
        let spec = spec.clone();
        let text = spec.spec.to_string();
        let now = Timestamp::now().as_micros();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            if name_in_use(&tx, table, &spec.name, 0)? {
                return Err(name_taken(&spec.name));
            }
            tx.prepare_cached(&format!(
                "INSERT INTO {} (name, kind, enabled, spec, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                table.table()
            ))
            .and_then(|mut s| {
                s.execute(params![
                    clean(&spec.name),
                    clean(&spec.kind),
                    spec.enabled,
                    text,
                    now
                ])
            })
            .map_err(sqlite_err)?;
            let id = tx.last_insert_rowid();
            let record = get_spec(&tx, table, id)?
                .ok_or_else(|| StoreError::Database("spec vanished".into()))?;
            tx.commit().map_err(sqlite_err)?;
            Ok(record)
        })
        .await
    }

    async fn update_spec(
        &self,
        table: SpecTable,
        id: i64,
        spec: &SpecInput,
    ) -> Result<Option<SpecRecord>, StoreError> {
        let spec = spec.clone();
        let text = spec.spec.to_string();
        let now = Timestamp::now().as_micros();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            if get_spec(&tx, table, id)?.is_none() {
                return Ok(None);
            }
            if name_in_use(&tx, table, &spec.name, id)? {
                return Err(name_taken(&spec.name));
            }
            let n = tx
                .prepare_cached(&format!(
                    "UPDATE {} SET name = ?2, kind = ?3, enabled = ?4, spec = ?5, updated_at = ?6 \
                     WHERE id = ?1",
                    table.table()
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        clean(&spec.name),
                        clean(&spec.kind),
                        spec.enabled,
                        text,
                        now
                    ])
                })
                .map_err(sqlite_err)?;
            let record = if n == 0 {
                None
            } else {
                get_spec(&tx, table, id)?
            };
            tx.commit().map_err(sqlite_err)?;
            Ok(record)
        })
        .await
    }

    async fn delete_spec(&self, table: SpecTable, id: i64) -> Result<bool, StoreError> {
        self.blocking(move |inner| {
            let n = lock(&inner.writer)
                .prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", table.table()))
                .and_then(|mut s| s.execute([id]))
                .map_err(sqlite_err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn record_alert_hits(&self, hits: &[AlertHit]) -> Result<Vec<AlertChange>, StoreError> {
        let hits = hits.to_vec();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let changes = hits
                .iter()
                .map(|h| record_hit(&tx, h))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit().map_err(sqlite_err)?;
            Ok(changes)
        })
        .await
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        self.read(move |conn| get_alert(conn, id)).await
    }

    async fn query_alerts(&self, query: &AlertQuery) -> Result<Page<Alert>, StoreError> {
        let q = query.clone();
        let limit = crate::sqlgen::clamp_limit(q.limit);
        let rows = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {ALERT_COLUMNS} FROM alerts WHERE \
                         (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR severity = ?2) AND \
                         (?3 IS NULL OR category = ?3) AND (?4 IS NULL OR last_seen >= ?4) AND \
                         (?5 IS NULL OR first_seen < ?5) AND \
                         (?6 IS NULL OR created_at < ?6 OR (created_at = ?6 AND id < ?7)) \
                         ORDER BY created_at DESC, id DESC LIMIT ?8"
                    ))
                    .map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(
                        params![
                            q.state.map(|s| s.as_str()),
                            q.severity.map(|s| s.as_str()),
                            q.category,
                            q.from.map(Timestamp::as_micros),
                            q.to.map(Timestamp::as_micros),
                            q.cursor.map(|c| c.ts),
                            q.cursor.map(|c| c.id),
                            limit + 1
                        ],
                        alert_row,
                    )
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err)?.into_alert())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(into_page(rows, query.limit, |a| Cursor {
            ts: a.created_at.as_micros(),
            id: a.id,
        }))
    }

    async fn alert_threat_ids(&self, id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT threat_id FROM alert_threats WHERE alert_id = ?1 \
                     ORDER BY threat_id DESC LIMIT ?2",
                )
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![id, limit], |r| r.get(0))
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)).collect()
        })
        .await
    }

    async fn alert_history(&self, id: i64) -> Result<Vec<AlertHistoryEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT at, action, actor, from_state, to_state, comment FROM alert_history \
                     WHERE alert_id = ?1 ORDER BY id",
                )
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .map_err(sqlite_err)?;
            rows.map(|r| {
                let (at, action, actor, from, to, comment) = r.map_err(sqlite_err)?;
                history(at, action, actor, from, to, comment)
            })
            .collect()
        })
        .await
    }

    async fn transition_alert(
        &self,
        id: i64,
        change: &AlertTransition,
    ) -> Result<TransitionOutcome, StoreError> {
        let change = change.clone();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let Some(alert) = get_alert(&tx, id)? else {
                return Ok(TransitionOutcome::NotFound);
            };
            if !transition_allowed(alert.state, change.to) {
                return Ok(TransitionOutcome::NotAllowed(alert.state));
            }
            let at = change.at.as_micros();
            let comment = change.comment.as_deref().map(clean);
            tx.prepare_cached(
                "UPDATE alerts SET state = ?2, state_at = ?3, state_by = ?4, state_comment = ?5, \
                 updated_at = ?3, next_notify_at = ?6 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    change.to.as_str(),
                    at,
                    clean(&change.actor),
                    comment,
                    next_after_transition(&alert, change.to, at)
                ])
            })
            .map_err(sqlite_err)?;
            add_history(
                &tx,
                id,
                at,
                change.to.as_str(),
                Some(&clean(&change.actor)),
                Some(alert.state.as_str()),
                change.to.as_str(),
                comment.as_deref(),
            )?;
            let alert = get_alert(&tx, id)?
                .ok_or_else(|| StoreError::Database(format!("alert {id} vanished")))?;
            tx.commit().map_err(sqlite_err)?;
            Ok(TransitionOutcome::Done(Box::new(alert)))
        })
        .await
    }

    async fn due_alert_notifications(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        self.read(move |conn| {
            // The limit is in the text, not bound: see `super::limit_sql`.
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE next_notify_at IS NOT NULL AND \
                     next_notify_at <= ?1 ORDER BY next_notify_at {}",
                    limit_sql(limit)
                ))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![now.as_micros()], alert_row)
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_alert()).collect()
        })
        .await
    }

    async fn enqueue_alert_notifications(
        &self,
        alert_id: i64,
        seen: Timestamp,
        next: Option<Timestamp>,
        now: Timestamp,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError> {
        let deliveries = deliveries.to_vec();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let n = tx
                .prepare_cached(
                    "UPDATE alerts SET notified_at = ?2, next_notify_at = ?3 \
                     WHERE id = ?1 AND next_notify_at = ?4",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        alert_id,
                        now.as_micros(),
                        next.map(Timestamp::as_micros),
                        seen.as_micros()
                    ])
                })
                .map_err(sqlite_err)?;
            if n == 0 {
                return Ok(false);
            }
            for d in &deliveries {
                insert_delivery(&tx, Some(alert_id), d, now.as_micros())?;
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(true)
        })
        .await
    }

    async fn enqueue_delivery(
        &self,
        delivery: &NewDelivery,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let d = delivery.clone();
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            insert_delivery(&conn, None, &d, now.as_micros())
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_channels: &[i64],
    ) -> Result<Vec<Delivery>, StoreError> {
        let skip = serde_json::to_string(skip_channels)
            .map_err(|e| StoreError::Database(format!("channel list: {e}")))?;
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let claimed = {
                // The limit is in the text, not bound: see `super::limit_sql`.
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "UPDATE alert_deliveries SET attempts = attempts + 1, \
                         last_attempt_at = ?1, next_at = ?2 WHERE id IN \
                         (SELECT id FROM alert_deliveries WHERE state = 'pending' AND \
                          next_at <= ?1 AND channel_id NOT IN (SELECT value FROM json_each(?3)) \
                          ORDER BY next_at {}) \
                         RETURNING {DELIVERY_COLUMNS}",
                        limit_sql(limit)
                    ))
                    .map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(
                        params![now.as_micros(), lease_until.as_micros(), skip],
                        delivery_row,
                    )
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err)?.into_delivery())
                    .collect::<Result<Vec<_>, _>>()?
            };
            tx.commit().map_err(sqlite_err)?;
            Ok(claimed)
        })
        .await
    }

    async fn finish_delivery(&self, id: i64, update: &DeliveryUpdate) -> Result<(), StoreError> {
        let u = update.clone();
        self.blocking(move |inner| {
            let delivered =
                (u.state == crate::DeliveryState::Delivered).then_some(u.at.as_micros());
            lock(&inner.writer)
                .prepare_cached(
                    "UPDATE alert_deliveries SET state = ?2, next_at = ?3, last_status = ?4, \
                     last_error = ?5, delivered_at = ?6 WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        u.state.as_str(),
                        u.next_at.as_micros(),
                        u.status,
                        u.error.as_deref().map(clean),
                        delivered
                    ])
                })
                .map_err(sqlite_err)?;
            Ok(())
        })
        .await
    }

    async fn get_delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id], delivery_row).optional())
            .map_err(sqlite_err)?
            .map(DeliveryColumns::into_delivery)
            .transpose()
        })
        .await
    }

    async fn alert_deliveries(&self, alert_id: i64) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE alert_id = ?1 ORDER BY id"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt.query_map([alert_id], delivery_row).map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_delivery()).collect()
        })
        .await
    }

    async fn insert_activity(&self, a: &NewActivity) -> Result<Activity, StoreError> {
        let a = a.clone();
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            let detail = a.detail.to_string();
            conn.prepare_cached(
                "INSERT INTO activities (at, kind, actor, summary, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    a.at.as_micros(),
                    clean(&a.kind),
                    a.actor.as_deref().map(clean),
                    clean(&a.summary),
                    clean(&detail)
                ])
            })
            .map_err(sqlite_err)?;
            let id = conn.last_insert_rowid();
            activity(
                id,
                a.at.as_micros(),
                clean(&a.kind).into_owned(),
                a.actor.as_deref().map(|s| clean(s).into_owned()),
                clean(&a.summary).into_owned(),
                clean(&detail).into_owned(),
            )
        })
        .await
    }

    async fn query_activities(&self, query: &ActivityQuery) -> Result<Page<Activity>, StoreError> {
        let q = query.clone();
        let limit = crate::sqlgen::clamp_limit(q.limit);
        let prefix = q.kind_prefix.as_deref().map(|p| clean(p).into_owned());
        let rows = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE \
                         (?1 IS NULL OR substr(kind, 1, length(?1)) = ?1) AND (?2 IS NULL OR at >= ?2) AND \
                         (?3 IS NULL OR at < ?3) AND \
                         (?4 IS NULL OR at < ?4 OR (at = ?4 AND id < ?5)) \
                         ORDER BY at DESC, id DESC LIMIT ?6"
                    ))
                    .map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(
                        params![
                            prefix,
                            q.from.map(Timestamp::as_micros),
                            q.to.map(Timestamp::as_micros),
                            q.cursor.map(|c| c.ts),
                            q.cursor.map(|c| c.id),
                            limit + 1
                        ],
                        |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                            ))
                        },
                    )
                    .map_err(sqlite_err)?;
                rows.map(|r| {
                    let (id, at, kind, actor, summary, detail) = r.map_err(sqlite_err)?;
                    activity(id, at, kind, actor, summary, detail)
                })
                .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(into_page(rows, query.limit, |a| Cursor {
            ts: a.at.as_micros(),
            id: a.id,
        }))
    }
}

fn insert_delivery(
    conn: &Connection,
    alert_id: Option<i64>,
    d: &NewDelivery,
    now: i64,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO alert_deliveries (alert_id, channel_id, message_id, event, payload, state, \
         attempts, next_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            alert_id,
            d.channel_id,
            clean(&d.message_id),
            clean(&d.event),
            clean(&d.payload),
            now
        ])
    })
    .map_err(sqlite_err)?;
    Ok(conn.last_insert_rowid())
}
