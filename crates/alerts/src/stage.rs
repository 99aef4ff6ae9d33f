//! The alert rule stage: fed every batch of stored threats by the threat recorder
//! through a bounded channel (the recorder waits when it is full, so no threat is
//! skipped), it matches each threat against the enabled rules, folds the batch into
//! one hit per (rule, group key) and records them in one transaction: a burst of a
//! thousand threats is one alert with a count and first/last seen. Every change goes
//! on the live `alerts` topic; openings and reopenings into the activity feed.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use palisade_core::Shutdown;
use palisade_core::Timestamp;
use palisade_core::metrics::registry;
use palisade_core::supervisor::SharedReceiver;
use palisade_core::threat::StoredThreat;
use palisade_live::Topic;
use palisade_store::{AlertChange, AlertChangeKind, AlertHit};
use serde::Serialize;

use crate::Context;
use crate::rules::{LoadedRule, RuleCache};

/// What the live `alerts` topic carries.
#[derive(Debug, Serialize)]
pub struct AlertMessage<'a> {
    /// `opened`, `updated`, `reopened`, `absorbed`, `acknowledged`, `resolved`, `dismissed`.
    pub change: &'a str,
    /// The alert as it is now.
    pub alert: &'a palisade_store::Alert,
}

/// Folds a batch of threats into hits, one per (rule, group key).
pub fn hits(
    rules: &[LoadedRule],
    threats: &[StoredThreat],
    ctx: &crate::AlertsConfig,
    now: Timestamp,
) -> Vec<AlertHit> {
    let mut out: Vec<AlertHit> = Vec::new();
    let mut index: HashMap<(i64, String), usize> = HashMap::new();
    for st in threats {
        let t = &st.threat;
        for rule in rules.iter().filter(|r| r.spec.matches(t)) {
            let key = rule.spec.group_key(t);
            match index.entry((rule.id, key)) {
                Entry::Occupied(e) => {
                    if let Some(h) = out.get_mut(*e.get()) {
                        h.threat_ids.push(st.id);
                        h.severity = h.severity.max(t.severity);
                        h.first_seen = h.first_seen.min(t.ts);
                        h.last_seen = h.last_seen.max(t.ts);
                    }
                }
                Entry::Vacant(e) => {
                    let group_key = e.key().1.clone();
                    e.insert(out.len());
                    out.push(AlertHit {
                        rule_id: rule.id,
                        rule_name: rule.name.clone(),
                        title: format!("{}: {group_key}", rule.name),
                        group_key,
                        severity: t.severity,
                        category: t.category.clone(),
                        threat_ids: vec![st.id],
                        first_seen: t.ts,
                        last_seen: t.ts,
                        at: now,
                        window_us: rule.spec.window.as_micros(),
                        group_wait_us: rule.spec.group_wait.unwrap_or(ctx.group_wait).as_micros(),
                        group_interval_us: rule
                            .spec
                            .group_interval
                            .unwrap_or(ctx.group_interval)
                            .as_micros(),
                    });
                }
            }
        }
    }
    out
}

/// The stage task: until shutdown, then until the recorder has handed over its last
/// batch (the channel closes) or nothing has come for a while.
pub(crate) async fn run(
    ctx: Arc<Context>,
    rx: SharedReceiver<Arc<[StoredThreat]>>,
    mut shutdown: Shutdown,
) {
    let mut rx = rx.lock().await;
    let mut rules = RuleCache::new(ctx.config.builtin_rules);
    // A new install alerts on something sensible from the start: the built-in rules
    // are created as soon as the store answers (the schema may still be migrating).
    // Bounded, so that a store that keeps refusing never holds up the recorder behind
    // this stage: the rules cache tries again at the first batch.
    if ctx.config.builtin_rules {
        let (started, mut wait) = (std::time::Instant::now(), Duration::from_millis(100));
        while let Err(error) = crate::rules::seed_builtin(&ctx.store).await {
            if started.elapsed() > Duration::from_secs(60) || shutdown.is_shutdown() {
                tracing::warn!(message = "Built-in alert rules not created; trying again with the first threats.", %error);
                break;
            }
            tracing::debug!(message = "Built-in alert rules not created yet; retrying.", %error);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.recv() => {}
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
    loop {
        let next = if shutdown.is_shutdown() {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap_or(None)
        } else {
            tokio::select! {
                got = rx.recv() => got,
                _ = shutdown.recv() => continue,
            }
        };
        let Some(batch) = next else { return };
        handle(&ctx, &mut rules, &batch, &mut shutdown).await;
    }
}

async fn handle(
    ctx: &Context,
    rules: &mut RuleCache,
    batch: &[StoredThreat],
    shutdown: &mut Shutdown,
) {
    let now = Timestamp::now();
    let hits = hits(rules.get(&ctx.store).await, batch, &ctx.config, now);
    if hits.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    let changes = loop {
        match ctx.store.record_alert_hits(&hits).await {
            Ok(changes) => break changes,
            Err(error) if error.is_transient() && !shutdown.is_shutdown() => {
                tracing::warn!(message = "Cannot record alerts yet; retrying.", %error, hits = hits.len());
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.recv() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(error) => {
                tracing::error!(message = "Alert hits not recorded; dropping them.", %error, hits = hits.len());
                return;
            }
        }
    };
    publish(ctx, &changes).await;
    ctx.wake_notifier.notify_one();
}

async fn publish(ctx: &Context, changes: &[AlertChange]) {
    for c in changes {
        let change = match c.kind {
            AlertChangeKind::Opened => "opened",
            AlertChangeKind::Updated => "updated",
            AlertChangeKind::Reopened => "reopened",
            AlertChangeKind::Absorbed => "absorbed",
        };
        registry()
            .counter(
                "palisade_alert_changes_total",
                "Alert changes made by the rule stage, by change.",
                &["change"],
                &[change],
            )
            .inc();
        ctx.bus.publish(
            Topic::Alerts,
            &AlertMessage {
                change,
                alert: &c.alert,
            },
        );
        if matches!(c.kind, AlertChangeKind::Opened | AlertChangeKind::Reopened) {
            tracing::info!(message = "Alert raised.", alert = c.alert.id, change, group = %c.alert.group_key);
            ctx.activities
                .note(
                    &format!("alert.{change}"),
                    None,
                    format!("Alert #{} {change}: {}", c.alert.id, c.alert.title),
                    serde_json::json!({
                        "alert_id": c.alert.id,
                        "severity": c.alert.severity,
                        "count": c.alert.count,
                    }),
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::severity::Severity;
    use palisade_core::threat::Threat;
    use palisade_core::verdict::Action;

    fn st(id: i64, ip: &str, cat: &str, sev: Severity, ts: i64) -> StoredThreat {
        StoredThreat {
            id,
            threat: Threat {
                tags: Vec::new(),
                ts: Timestamp(ts),
                category: cat.into(),
                severity: sev,
                score: 5,
                rule_ids: vec![1],
                client_ip: Some(ip.parse().unwrap()),
                method: None,
                uri: None,
                source: "web".into(),
                event_id: None,
                decision: Action::Detect,
                evidence: Vec::new(),
            },
        }
    }

    #[test]
    fn a_batch_folds_into_one_hit_per_rule_and_group() {
        let rules = vec![
            LoadedRule {
                id: 1,
                name: "by client".into(),
                spec: serde_json::from_str(r#"{"min_severity":"warning"}"#).unwrap(),
            },
            LoadedRule {
                id: 2,
                name: "critical".into(),
                spec: serde_json::from_str(r#"{"min_severity":"critical","group_by":[]}"#).unwrap(),
            },
        ];
        let mut batch: Vec<StoredThreat> = (0..1000)
            .map(|i| st(i, "203.0.113.7", "sqli", Severity::Error, 1000 - i))
            .collect();
        batch.push(st(2000, "203.0.113.8", "sqli", Severity::Critical, 5));
        batch.push(st(2001, "203.0.113.8", "sqli", Severity::Notice, 5));
        let cfg = crate::AlertsConfig::default();
        let hits = hits(&rules, &batch, &cfg, Timestamp(9));
        assert_eq!(hits.len(), 3);
        let burst = &hits[0];
        assert_eq!(burst.group_key, "client_ip=203.0.113.7 category=sqli");
        assert_eq!(burst.threat_ids.len(), 1000);
        assert_eq!(
            (burst.first_seen, burst.last_seen),
            (Timestamp(1), Timestamp(1000))
        );
        assert_eq!(burst.group_wait_us, cfg.group_wait.as_micros());
        assert_eq!(hits[1].threat_ids, vec![2000]);
        assert_eq!(hits[2].rule_id, 2);
        assert_eq!(hits[2].severity, Severity::Critical);
        assert!(super::hits(&[], &batch, &cfg, Timestamp(9)).is_empty());
    }
}
