//! The notifier: alerts whose next notification is due (the plan the store keeps:
//! `group_wait` after opening, no sooner than `group_interval` after the last one for
//! an update, `repeat_interval` while active and unacknowledged, once more when
//! resolved) become one queued delivery per channel, in the same transaction that
//! plans the next one. Queued deliveries survive restarts; the delivery task sends
//! them.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_core::{Shutdown, Timestamp};
use palisade_store::{AlertState, NewDelivery, SpecTable, StoreError};

use crate::Context;
use crate::payload::{Notification, NotifyEvent};
use crate::rules::RuleCache;

/// Most alerts handled per pass.
const BATCH: u32 = 100;

/// A unique message id (`msg_` + 18 random bytes), the webhook's `webhook-id`.
pub fn message_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 18];
    getrandom::getrandom(&mut b)?;
    Ok(format!("msg_{}", URL_SAFE_NO_PAD.encode(b)))
}

/// The notifier task: a pass at every poll or when the rule stage wakes it.
pub(crate) async fn run(ctx: Arc<Context>, mut shutdown: Shutdown) {
    let mut rules = RuleCache::new(false);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ctx.config.poll_every.to_std()) => {}
            _ = ctx.wake_notifier.notified() => {}
            _ = shutdown.recv() => return,
        }
        loop {
            match pass(&ctx, &mut rules).await {
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(message = "Cannot plan alert notifications.", %error);
                    break;
                }
            }
        }
    }
}

/// One pass; returns how many alerts were due.
pub(crate) async fn pass(ctx: &Context, rules: &mut RuleCache) -> Result<usize, StoreError> {
    let now = Timestamp::now();
    let due = ctx.store.due_alert_notifications(now, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let enabled: Vec<i64> = ctx
        .store
        .list_specs(SpecTable::Channels)
        .await?
        .into_iter()
        .filter(|c| c.input.enabled)
        .map(|c| c.id)
        .collect();
    let rules = rules.get(&ctx.store).await;
    let mut queued = 0;
    for alert in &due {
        let Some(seen) = alert.next_notify_at else {
            continue;
        };
        let rule = rules.iter().find(|r| r.id == alert.rule_id);
        let targets: Vec<i64> = match rule {
            Some(r) if !r.spec.channels.is_empty() => r
                .spec
                .channels
                .iter()
                .filter(|c| enabled.contains(c))
                .copied()
                .collect(),
            _ => enabled.clone(),
        };
        let repeat = rule
            .and_then(|r| r.spec.repeat_interval)
            .unwrap_or(ctx.config.repeat_interval);
        let next = (alert.state == AlertState::Active).then(|| now.add_micros(repeat.as_micros()));
        let event = NotifyEvent::of(alert);
        let payload = serde_json::to_string(&Notification::alert(alert, event, now))
            .map_err(|e| StoreError::Database(format!("notification document: {e}")))?;
        let mut deliveries = Vec::with_capacity(targets.len());
        for channel_id in targets {
            let message_id = message_id()
                .map_err(|e| StoreError::Database(format!("no random message id: {e}")))?;
            deliveries.push(NewDelivery {
                channel_id,
                message_id,
                event: event.as_str().to_owned(),
                payload: payload.clone(),
            });
        }
        let n = deliveries.len();
        if ctx
            .store
            .enqueue_alert_notifications(alert.id, seen, next, now, &deliveries)
            .await?
        {
            tracing::debug!(
                message = "Alert notification queued.",
                alert = alert.id,
                event = event.as_str(),
                channels = n
            );
            queued += n;
        }
    }
    if queued > 0 {
        ctx.wake_delivery.notify_one();
    }
    Ok(due.len())
}
