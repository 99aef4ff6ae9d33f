//! [`AlertStore`] for the PostgreSQL backend. Grouping takes a transaction-scoped
//! advisory lock per (rule, group key), so two nodes recording the same group never
//! open two alerts; claims use `FOR UPDATE SKIP LOCKED`.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use palisade_core::Timestamp;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{PgStore, corrupt, pg_err};
use crate::codec::alerts::{
    ACTIVITY_COLUMNS, ALERT_COLUMNS, AlertColumns, DELIVERY_COLUMNS, DeliveryColumns, Plan,
    SPEC_COLUMNS, action_of, activity, history, name_taken, next_after_transition, plan,
    spec_record, transition_allowed,
};
use crate::codec::clean;
use crate::sqlgen::{clamp_limit, into_page};
use crate::{
    Activity, ActivityQuery, Alert, AlertChange, AlertChangeKind, AlertHistoryEntry, AlertHit,
    AlertQuery, AlertStore, AlertTransition, Cursor, Delivery, DeliveryState, DeliveryUpdate,
    NewActivity, NewDelivery, Page, SpecInput, SpecRecord, SpecTable, StoreError,
    TransitionOutcome,
};

fn alert_row(r: &Row) -> Result<Alert, StoreError> {
    AlertColumns {
        id: r.try_get(0).map_err(corrupt)?,
        rule_id: r.try_get(1).map_err(corrupt)?,
        rule_name: r.try_get(2).map_err(corrupt)?,
        group_key: r.try_get(3).map_err(corrupt)?,
        title: r.try_get(4).map_err(corrupt)?,
        severity: r.try_get(5).map_err(corrupt)?,
        category: r.try_get(6).map_err(corrupt)?,
        state: r.try_get(7).map_err(corrupt)?,
        count: r.try_get(8).map_err(corrupt)?,
        first_seen: r.try_get(9).map_err(corrupt)?,
        last_seen: r.try_get(10).map_err(corrupt)?,
        created_at: r.try_get(11).map_err(corrupt)?,
        updated_at: r.try_get(12).map_err(corrupt)?,
        state_at: r.try_get(13).map_err(corrupt)?,
        state_by: r.try_get(14).map_err(corrupt)?,
        state_comment: r.try_get(15).map_err(corrupt)?,
        notified_at: r.try_get(16).map_err(corrupt)?,
        next_notify_at: r.try_get(17).map_err(corrupt)?,
    }
    .into_alert()
}

fn delivery_row(r: &Row) -> Result<Delivery, StoreError> {
    DeliveryColumns {
        id: r.try_get(0).map_err(corrupt)?,
        alert_id: r.try_get(1).map_err(corrupt)?,
        channel_id: r.try_get(2).map_err(corrupt)?,
        message_id: r.try_get(3).map_err(corrupt)?,
        event: r.try_get(4).map_err(corrupt)?,
        payload: r.try_get(5).map_err(corrupt)?,
        state: r.try_get(6).map_err(corrupt)?,
        attempts: r.try_get(7).map_err(corrupt)?,
        next_at: r.try_get(8).map_err(corrupt)?,
        created_at: r.try_get(9).map_err(corrupt)?,
        last_attempt_at: r.try_get(10).map_err(corrupt)?,
        last_status: r.try_get(11).map_err(corrupt)?,
        last_error: r.try_get(12).map_err(corrupt)?,
        delivered_at: r.try_get(13).map_err(corrupt)?,
    }
    .into_delivery()
}

fn spec_row(r: &Row) -> Result<SpecRecord, StoreError> {
    spec_record(
        r.try_get(0).map_err(corrupt)?,
        r.try_get(1).map_err(corrupt)?,
        r.try_get(2).map_err(corrupt)?,
        r.try_get(3).map_err(corrupt)?,
        r.try_get(4).map_err(corrupt)?,
        r.try_get(5).map_err(corrupt)?,
        r.try_get(6).map_err(corrupt)?,
    )
}

fn spec_err(e: tokio_postgres::Error, name: &str) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        name_taken(name)
    } else {
        pg_err(e)
    }
}

async fn get_alert<C: GenericClient>(c: &C, id: i64) -> Result<Option<Alert>, StoreError> {
    c.query_opt(
        &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(pg_err)?
    .as_ref()
    .map(alert_row)
    .transpose()
}

#[allow(clippy::too_many_arguments)]
async fn add_history<C: GenericClient>(
    c: &C,
    alert: i64,
    at: i64,
    action: &str,
    actor: Option<&str>,
    from: Option<&str>,
    to: &str,
    comment: Option<&str>,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO alert_history (alert_id, at, action, actor, from_state, to_state, comment) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&alert, &at, &action, &actor, &from, &to, &comment],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

async fn record_hit<C: GenericClient>(c: &C, hit: &AlertHit) -> Result<AlertChange, StoreError> {
    let group = clean(&hit.group_key).into_owned();
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, $2))",
        &[&group, &hit.rule_id],
    )
    .await
    .map_err(pg_err)?;
    let latest = c
        .query_opt(
            &format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE rule_id = $1 AND group_key = $2 \
                 ORDER BY id DESC LIMIT 1 FOR UPDATE"
            ),
            &[&hit.rule_id, &group],
        )
        .await
        .map_err(pg_err)?
        .as_ref()
        .map(alert_row)
        .transpose()?;
    let at = hit.at.as_micros();
    let n = i64::try_from(hit.threat_ids.len()).unwrap_or(i64::MAX);
    let (first, last) = (hit.first_seen.as_micros(), hit.last_seen.as_micros());
    let (id, kind) = match plan(latest.as_ref(), hit) {
        Plan::Open { notify_at } => {
            let row = c
                .query_one(
                    "INSERT INTO alerts (rule_id, rule_name, group_key, title, severity, category, \
                     state, count, first_seen, last_seen, created_at, updated_at, state_at, \
                     next_notify_at) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10, \
                     $10, $10, $11) RETURNING id",
                    &[
                        &hit.rule_id,
                        &clean(&hit.rule_name).as_ref(),
                        &group,
                        &clean(&hit.title).as_ref(),
                        &hit.severity.as_str(),
                        &clean(&hit.category).as_ref(),
                        &n,
                        &first,
                        &last,
                        &at,
                        &notify_at,
                    ],
                )
                .await
                .map_err(pg_err)?;
            let id: i64 = row.try_get(0).map_err(corrupt)?;
            add_history(c, id, at, "opened", None, None, "active", None).await?;
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
            c.execute(
                "UPDATE alerts SET count = count + $2, first_seen = LEAST(first_seen, $3), \
                 last_seen = GREATEST(last_seen, $4), severity = $5, state = $6, \
                 updated_at = $7, next_notify_at = $8, \
                 state_at = CASE WHEN $9 THEN $7 ELSE state_at END, \
                 state_by = CASE WHEN $9 THEN NULL ELSE state_by END, \
                 state_comment = CASE WHEN $9 THEN NULL ELSE state_comment END \
                 WHERE id = $1",
                &[
                    &id,
                    &n,
                    &first,
                    &last,
                    &severity.as_str(),
                    &state.as_str(),
                    &at,
                    &next_notify_at,
                    &reopened,
                ],
            )
            .await
            .map_err(pg_err)?;
            if let (Some(action), Some(prev)) = (action_of(kind), latest.as_ref()) {
                add_history(
                    c,
                    id,
                    at,
                    action,
                    None,
                    Some(prev.state.as_str()),
                    state.as_str(),
                    None,
                )
                .await?;
            }
            (id, kind)
        }
    };
    c.execute(
        "INSERT INTO alert_threats (alert_id, threat_id) SELECT $1, unnest($2::bigint[]) \
         ON CONFLICT DO NOTHING",
        &[&id, &hit.threat_ids],
    )
    .await
    .map_err(pg_err)?;
    let alert = get_alert(c, id)
        .await?
        .ok_or_else(|| StoreError::Database(format!("alert {id} vanished")))?;
    Ok(AlertChange { kind, alert })
}

async fn insert_delivery<C: GenericClient>(
    c: &C,
    alert_id: Option<i64>,
    d: &NewDelivery,
    now: i64,
) -> Result<i64, StoreError> {
    let row = c
        .query_one(
            "INSERT INTO alert_deliveries (alert_id, channel_id, message_id, event, payload, \
             state, attempts, next_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, \
             $6) RETURNING id",
            &[
                &alert_id,
                &d.channel_id,
                &clean(&d.message_id).as_ref(),
                &clean(&d.event).as_ref(),
                &clean(&d.payload).as_ref(),
                &now,
            ],
        )
        .await
        .map_err(pg_err)?;
    row.try_get(0).map_err(corrupt)
}

#[async_trait]
impl AlertStore for PgStore {
    async fn list_specs(&self, table: SpecTable) -> Result<Vec<SpecRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SPEC_COLUMNS} FROM {} ORDER BY name COLLATE \"C\"",
                    table.table()
                ),
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(spec_row).collect()
    }

    async fn get_spec(&self, table: SpecTable, id: i64) -> Result<Option<SpecRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {SPEC_COLUMNS} FROM {} WHERE id = $1", table.table()),
                &[&id],
            )
            .await
            .map_err(pg_err)?
            .as_ref()
            .map(spec_row)
            .transpose()
    }

    async fn insert_spec(
        &self,
        table: SpecTable,
        spec: &SpecInput,
    ) -> Result<SpecRecord, StoreError> {
        let client = self.client().await?;
        let now = Timestamp::now().as_micros();
        let name = clean(&spec.name).into_owned();
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO {} (name, kind, enabled, spec, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) RETURNING {SPEC_COLUMNS}",
                    table.table()
                ),
                &[
                    &name,
                    &clean(&spec.kind).as_ref(),
                    &spec.enabled,
                    &clean(&spec.spec.to_string()).as_ref(),
                    &now,
                ],
            )
            .await
            .map_err(|e| spec_err(e, &name))?;
        spec_row(&row)
    }

    async fn update_spec(
        &self,
        table: SpecTable,
        id: i64,
        spec: &SpecInput,
    ) -> Result<Option<SpecRecord>, StoreError> {
        let client = self.client().await?;
        let now = Timestamp::now().as_micros();
        let name = clean(&spec.name).into_owned();
        client
            .query_opt(
                &format!(
                    "UPDATE {} SET name = $2, kind = $3, enabled = $4, spec = $5, updated_at = $6 \
                     WHERE id = $1 RETURNING {SPEC_COLUMNS}",
                    table.table()
                ),
                &[
                    &id,
                    &name,
                    &clean(&spec.kind).as_ref(),
                    &spec.enabled,
                    &clean(&spec.spec.to_string()).as_ref(),
                    &now,
                ],
            )
            .await
            .map_err(|e| spec_err(e, &name))?
            .as_ref()
            .map(spec_row)
            .transpose()
    }

    async fn delete_spec(&self, table: SpecTable, id: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                &format!("DELETE FROM {} WHERE id = $1", table.table()),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    async fn record_alert_hits(&self, hits: &[AlertHit]) -> Result<Vec<AlertChange>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let mut changes = Vec::with_capacity(hits.len());
        for hit in hits {
            changes.push(record_hit(&tx, hit).await?);
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(changes)
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        let client = self.client().await?;
        get_alert(&client, id).await
    }

    async fn query_alerts(&self, q: &AlertQuery) -> Result<Page<Alert>, StoreError> {
        let client = self.client().await?;
        let limit = i64::from(clamp_limit(q.limit)) + 1;
        let rows = client
            .query(
                &format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE \
                     ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR severity = $2) AND \
                     ($3::text IS NULL OR category = $3) AND \
                     ($4::bigint IS NULL OR last_seen >= $4) AND \
                     ($5::bigint IS NULL OR first_seen < $5) AND \
                     ($6::bigint IS NULL OR created_at < $6 OR (created_at = $6 AND id < $7)) \
                     ORDER BY created_at DESC, id DESC LIMIT $8"
                ),
                &[
                    &q.state.map(|s| s.as_str()),
                    &q.severity.map(|s| s.as_str()),
                    &q.category,
                    &q.from.map(Timestamp::as_micros),
                    &q.to.map(Timestamp::as_micros),
                    &q.cursor.map(|c| c.ts),
                    &q.cursor.map(|c| c.id),
                    &limit,
                ],
            )
            .await
            .map_err(pg_err)?;
        let items = rows.iter().map(alert_row).collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(items, q.limit, |a| Cursor {
            ts: a.created_at.as_micros(),
            id: a.id,
        }))
    }

    async fn alert_threat_ids(&self, id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT threat_id FROM alert_threats WHERE alert_id = $1 \
                 ORDER BY threat_id DESC LIMIT $2",
                &[&id, &i64::from(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(|r| r.try_get(0).map_err(corrupt)).collect()
    }

    async fn alert_history(&self, id: i64) -> Result<Vec<AlertHistoryEntry>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT at, action, actor, from_state, to_state, comment FROM alert_history \
                 WHERE alert_id = $1 ORDER BY id",
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                history(
                    r.try_get(0).map_err(corrupt)?,
                    r.try_get(1).map_err(corrupt)?,
                    r.try_get(2).map_err(corrupt)?,
                    r.try_get(3).map_err(corrupt)?,
                    r.try_get(4).map_err(corrupt)?,
                    r.try_get(5).map_err(corrupt)?,
                )
            })
            .collect()
    }

    async fn transition_alert(
        &self,
        id: i64,
        change: &AlertTransition,
    ) -> Result<TransitionOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let Some(alert) = tx
            .query_opt(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1 FOR UPDATE"),
                &[&id],
            )
            .await
            .map_err(pg_err)?
            .as_ref()
            .map(alert_row)
            .transpose()?
        else {
            return Ok(TransitionOutcome::NotFound);
        };
        if !transition_allowed(alert.state, change.to) {
            return Ok(TransitionOutcome::NotAllowed(alert.state));
        }
        let at = change.at.as_micros();
        let actor = clean(&change.actor).into_owned();
        let comment = change.comment.as_deref().map(|c| clean(c).into_owned());
        tx.execute(
            "UPDATE alerts SET state = $2, state_at = $3, state_by = $4, state_comment = $5, \
             updated_at = $3, next_notify_at = $6 WHERE id = $1",
            &[
                &id,
                &change.to.as_str(),
                &at,
                &actor,
                &comment,
                &next_after_transition(&alert, change.to, at),
            ],
        )
        .await
        .map_err(pg_err)?;
        add_history(
            &tx,
            id,
            at,
            change.to.as_str(),
            Some(&actor),
            Some(alert.state.as_str()),
            change.to.as_str(),
            comment.as_deref(),
        )
        .await?;
        let alert = get_alert(&tx, id)
            .await?
            .ok_or_else(|| StoreError::Database(format!("alert {id} vanished")))?;
        tx.commit().await.map_err(pg_err)?;
        Ok(TransitionOutcome::Done(Box::new(alert)))
    }

    async fn due_alert_notifications(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE next_notify_at IS NOT NULL AND \
                     next_notify_at <= $1 ORDER BY next_notify_at LIMIT $2"
                ),
                &[&now.as_micros(), &i64::from(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(alert_row).collect()
    }

    async fn enqueue_alert_notifications(
        &self,
        alert_id: i64,
        seen: Timestamp,
        next: Option<Timestamp>,
        now: Timestamp,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "UPDATE alerts SET notified_at = $2, next_notify_at = $3 \
                 WHERE id = $1 AND next_notify_at = $4",
                &[
                    &alert_id,
                    &now.as_micros(),
                    &next.map(Timestamp::as_micros),
                    &seen.as_micros(),
                ],
            )
            .await
            .map_err(pg_err)?;
        if n == 0 {
            return Ok(false);
        }
        for d in deliveries {
            insert_delivery(&tx, Some(alert_id), d, now.as_micros()).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn enqueue_delivery(
        &self,
        delivery: &NewDelivery,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let client = self.client().await?;
        insert_delivery(&client, None, delivery, now.as_micros()).await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_channels: &[i64],
    ) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        let skip: Vec<i64> = skip_channels.to_vec();
        let rows = client
            .query(
                &format!(
                    "UPDATE alert_deliveries SET attempts = attempts + 1, last_attempt_at = $1, \
                     next_at = $2 WHERE id IN (SELECT id FROM alert_deliveries \
                     WHERE state = 'pending' AND next_at <= $1 AND NOT (channel_id = ANY($4)) \
                     ORDER BY next_at LIMIT $3 \
                     FOR UPDATE SKIP LOCKED) RETURNING {DELIVERY_COLUMNS}"
                ),
                &[
                    &now.as_micros(),
                    &lease_until.as_micros(),
                    &i64::from(limit),
                    &skip,
                ],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(delivery_row).collect()
    }

    async fn finish_delivery(&self, id: i64, u: &DeliveryUpdate) -> Result<(), StoreError> {
        let client = self.client().await?;
        let delivered = (u.state == DeliveryState::Delivered).then_some(u.at.as_micros());
        client
            .execute(
                "UPDATE alert_deliveries SET state = $2, next_at = $3, last_status = $4, \
                 last_error = $5, delivered_at = $6 WHERE id = $1",
                &[
                    &id,
                    &u.state.as_str(),
                    &u.next_at.as_micros(),
                    &u.status.map(i64::from),
                    &u.error.as_deref().map(|e| clean(e).into_owned()),
                    &delivered,
                ],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn get_delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?
            .as_ref()
            .map(delivery_row)
            .transpose()
    }

    async fn alert_deliveries(&self, alert_id: i64) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE alert_id = $1 ORDER BY id"
                ),
                &[&alert_id],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(delivery_row).collect()
    }

    async fn insert_activity(&self, a: &NewActivity) -> Result<Activity, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO activities (at, kind, actor, summary, detail) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING {ACTIVITY_COLUMNS}"
                ),
                &[
                    &a.at.as_micros(),
                    &clean(&a.kind).as_ref(),
                    &a.actor.as_deref().map(|s| clean(s).into_owned()),
                    &clean(&a.summary).as_ref(),
                    &clean(&a.detail.to_string()).as_ref(),
                ],
            )
            .await
            .map_err(pg_err)?;
        activity_row(&row)
    }

    async fn query_activities(&self, q: &ActivityQuery) -> Result<Page<Activity>, StoreError> {
        let client = self.client().await?;
        let limit = i64::from(clamp_limit(q.limit)) + 1;
        let prefix = q.kind_prefix.as_deref().map(|p| clean(p).into_owned());
        let rows = client
            .query(
                &format!(
                    "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE \
                     ($1::text IS NULL OR substr(kind, 1, length($1)) = $1) AND \
                     ($2::bigint IS NULL OR at >= $2) AND ($3::bigint IS NULL OR at < $3) AND \
                     ($4::bigint IS NULL OR at < $4 OR (at = $4 AND id < $5)) \
                     ORDER BY at DESC, id DESC LIMIT $6"
                ),
                &[
                    &prefix,
                    &q.from.map(Timestamp::as_micros),
                    &q.to.map(Timestamp::as_micros),
                    &q.cursor.map(|c| c.ts),
                    &q.cursor.map(|c| c.id),
                    &limit,
                ],
            )
            .await
            .map_err(pg_err)?;
        let items = rows
            .iter()
            .map(activity_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(items, q.limit, |a| Cursor {
            ts: a.at.as_micros(),
            id: a.id,
        }))
    }
}

fn activity_row(r: &Row) -> Result<Activity, StoreError> {
    activity(
        r.try_get(0).map_err(corrupt)?,
        r.try_get(1).map_err(corrupt)?,
        r.try_get(2).map_err(corrupt)?,
        r.try_get(3).map_err(corrupt)?,
        r.try_get(4).map_err(corrupt)?,
        r.try_get(5).map_err(corrupt)?,
    )
}
