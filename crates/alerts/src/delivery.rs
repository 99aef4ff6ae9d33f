//! The delivery task: takes due notifications from the durable queue (a claim moves
//! their next attempt past a lease, so a crash mid-send is retried rather than lost),
//! sends them concurrently, each within `delivery_timeout`, and records the result:
//! delivered; retried with exponential backoff and jitter, or after the receiver's
//! `Retry-After`; given up after `delivery_max_age` or on a permanent refusal. A
//! channel whose circuit is open is not tried: its notifications are not claimed and
//! wait for the end of the rest untouched (a rest is not an attempt).

use std::collections::HashMap;
use std::sync::Arc;

use palisade_core::metrics::registry;
use palisade_core::{Shutdown, Timestamp};
use palisade_store::{Delivery, DeliveryState, DeliveryUpdate, SpecRecord, SpecTable, StoreError};
use tokio::task::JoinSet;

use crate::Context;
use crate::backoff::{Schedule, jitter};
use crate::breaker::Breakers;
use crate::channel::{ChannelSpec, Message, SendError};

/// Most notifications claimed per pass.
const BATCH: u32 = 32;

/// The HTTP client every channel shares: no redirects (a receiver answers itself),
/// each attempt within the configured time.
pub fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Palisade/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// The delivery task.
pub(crate) async fn run(ctx: Arc<Context>, mut shutdown: Shutdown) {
    let client = http_client(ctx.config.delivery_timeout.to_std());
    let mut breakers = Breakers::new(
        ctx.config.breaker_failures,
        ctx.config.breaker_cooldown.as_micros(),
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ctx.config.poll_every.to_std()) => {}
            _ = ctx.wake_delivery.notified() => {}
            _ = shutdown.recv() => return,
        }
        loop {
            match pass(&ctx, &client, &mut breakers).await {
                Ok(n) if n >= BATCH as usize && !shutdown.is_shutdown() => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(message = "Cannot take notifications from the queue.", %error);
                    break;
                }
            }
        }
    }
}

fn schedule(ctx: &Context) -> Schedule {
    Schedule {
        base_us: ctx.config.retry_base_delay.as_micros(),
        max_us: ctx.config.retry_max_delay.as_micros(),
        max_age_us: ctx.config.delivery_max_age.as_micros(),
    }
}

/// What to record after an attempt (or a decision not to attempt).
fn outcome(
    ctx: &Context,
    d: &Delivery,
    result: Result<u16, SendError>,
    now: Timestamp,
) -> DeliveryUpdate {
    match result {
        Ok(status) => DeliveryUpdate {
            state: DeliveryState::Delivered,
            next_at: now,
            at: now,
            status: Some(status),
            error: None,
        },
        Err(e) => {
            let next = if e.permanent {
                None
            } else {
                schedule(ctx).next(
                    now.as_micros(),
                    d.created_at.as_micros(),
                    d.attempts,
                    e.retry_after,
                    jitter(),
                )
            };
            match next {
                Some(at) => DeliveryUpdate {
                    state: DeliveryState::Pending,
                    next_at: Timestamp(at),
                    at: now,
                    status: e.status,
                    error: Some(e.message),
                },
                None => DeliveryUpdate {
                    state: DeliveryState::Failed,
                    next_at: now,
                    at: now,
                    status: e.status,
                    error: Some(if e.permanent {
                        e.message
                    } else {
                        format!("gave up after {} attempts: {}", d.attempts, e.message)
                    }),
                },
            }
        }
    }
}

fn count(result: &str) {
    registry()
        .counter(
            "palisade_alert_deliveries_total",
            "Notification delivery attempts, by result.",
            &["result"],
            &[result],
        )
        .inc();
}

/// One pass; returns how many notifications were claimed.
pub(crate) async fn pass(
    ctx: &Context,
    client: &reqwest::Client,
    breakers: &mut Breakers,
) -> Result<usize, StoreError> {
    let now = Timestamp::now();
    let lease = now.add_micros(ctx.config.claim_lease.as_micros());
    // A channel resting after failures is not even claimed: its notifications keep
    // their place and their attempt count until the rest is over.
    let resting = breakers.resting(now.as_micros());
    let claimed = ctx
        .store
        .claim_deliveries(now, lease, BATCH, &resting)
        .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let n = claimed.len();
    let channels: HashMap<i64, SpecRecord> = ctx
        .store
        .list_specs(SpecTable::Channels)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut sending = JoinSet::new();
    for d in claimed {
        let not_sent = |message: String, permanent: bool| SendError {
            permanent,
            ..SendError::transport(message)
        };
        let Some(record) = channels.get(&d.channel_id) else {
            finish(
                ctx,
                &d,
                outcome(
                    ctx,
                    &d,
                    Err(not_sent("the channel was deleted".into(), true)),
                    now,
                ),
            )
            .await;
            continue;
        };
        if !record.input.enabled {
            finish(
                ctx,
                &d,
                outcome(
                    ctx,
                    &d,
                    Err(not_sent("the channel is disabled".into(), true)),
                    now,
                ),
            )
            .await;
            continue;
        }
        let channel = match build(ctx, d.channel_id, &record.input.spec).await {
            Ok(c) => c,
            Err(e) => {
                finish(ctx, &d, outcome(ctx, &d, Err(e), now)).await;
                continue;
            }
        };
        let client = client.clone();
        let timeout = ctx.config.delivery_timeout.to_std();
        sending.spawn(async move {
            let message = Message {
                id: &d.message_id,
                timestamp: Timestamp::now().as_micros() / 1_000_000,
                payload: &d.payload,
            };
            let result = match tokio::time::timeout(timeout, channel.send(&client, message)).await {
                Ok(r) => r,
                Err(_) => Err(SendError::transport("timed out")),
            };
            (d, result)
        });
    }
    while let Some(joined) = sending.join_next().await {
        let Ok((d, result)) = joined else { continue };
        let end = Timestamp::now();
        let ok = result.is_ok();
        if breakers.record(d.channel_id, ok, end.as_micros()) {
            tracing::warn!(
                message = "Channel failing: circuit opened.",
                channel = d.channel_id
            );
        }
        let update = outcome(ctx, &d, result, end);
        count(update.state.as_str());
        match update.state {
            DeliveryState::Delivered => {
                tracing::debug!(message = "Notification delivered.", delivery = d.id, channel = d.channel_id, alert = ?d.alert_id)
            }
            _ => tracing::warn!(
                message = "Notification not delivered.",
                delivery = d.id,
                channel = d.channel_id,
                attempts = d.attempts,
                error = update.error.as_deref().unwrap_or_default(),
                state = update.state.as_str()
            ),
        }
        finish(ctx, &d, update).await;
    }
    Ok(n)
}

async fn build(
    ctx: &Context,
    channel_id: i64,
    spec: &serde_json::Value,
) -> Result<Box<dyn crate::channel::Channel>, SendError> {
    let spec: ChannelSpec = serde_json::from_value(spec.clone()).map_err(|e| SendError {
        permanent: true,
        ..SendError::transport(format!("unreadable channel spec: {e}"))
    })?;
    let secret = match (&spec, &ctx.secrets) {
        (spec, Some(secrets)) if spec.uses_secret() => secrets
            .reveal(&ChannelSpec::secret_name(channel_id))
            .await
            .map_err(|e| SendError::transport(format!("cannot open the channel secret: {e}")))?,
        _ => None,
    };
    spec.build(secret.as_deref())
}

/// Records a result; a store failure leaves the claim's lease to bring it back.
async fn finish(ctx: &Context, d: &Delivery, update: DeliveryUpdate) {
    if let Err(error) = ctx.store.finish_delivery(d.id, &update).await {
        tracing::warn!(message = "Cannot record a delivery result; it will be retried after its lease.", delivery = d.id, %error);
    }
}
