//! IP decisions at run time: the in-memory [`DecisionSet`] every request is checked
//! against, kept in step with the store.
//!
//! - Writes (the API, the scenario engine through [`Decisions::ban`]) go to the store
//!   first, then into the set at once.
//! - A background task ([`spawn_sync`]) loads the set when the store becomes reachable
//!   (until then nothing is banned: the service starts and answers with the database
//!   down), reloads it every few seconds (so that several instances, and anything
//!   writing to the store directly, converge), and marks expired decisions.
//! - The CrowdSec bouncer stream keeps each bouncer's last pull here (and, once a
//!   minute, in the store's settings, so that a restart does not resend everything).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use palisade_core::Shutdown;
use palisade_core::Timestamp;
use palisade_core::config::ConfigProblem;
use palisade_core::decision::{
    Decision, DecisionKind, DecisionOrigin, DecisionTarget, MAX_DURATION_SECS, NewDecision,
    PutOutcome,
};
use palisade_core::decision_set::{BanInfo, DecisionSet};
use palisade_core::duration::Span;
use palisade_core::metrics::registry;
use palisade_core::net::IpNet;
use palisade_core::supervisor::Supervisor;
use palisade_store::{SharedStore, StoreError};
use tokio::task::JoinHandle;

use crate::ban_policy::{BanPolicy, BanRefused};
use crate::db_monitor::DbHealth;

/// `[decisions]`: how often the set is reloaded from the store and expired decisions
/// are marked, and the guard rails of bans (see [`crate::ban_policy`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "DecisionsSection")]
pub struct DecisionsConfig {
    /// Reload from the store (default 5 s).
    pub resync: Duration,
    /// Mark expired decisions in the store (default 30 s).
    pub expire: Duration,
    /// Addresses and networks nobody may ban, beyond loopback, Palisade's own addresses
    /// and the trusted proxies (which are always protected).
    pub protected: Vec<(IpNet, String)>,
    /// Whether scenario (automatic) bans may hit private ranges (default false).
    pub ban_private: bool,
    /// The widest IPv4 ban, as a prefix length (default 16).
    pub max_prefix_v4: u32,
    /// The widest IPv6 ban, as a prefix length (default 32).
    pub max_prefix_v6: u32,
    /// The sources whose events may cause scenario bans; `None`: every configured
    /// source (file tails, syslog listeners, protecting proxies), never HTTP pushes.
    pub ban_sources: Option<Vec<String>>,
}

impl Default for DecisionsConfig {
    fn default() -> Self {
        DecisionsConfig {
            resync: Duration::from_secs(5),
            expire: Duration::from_secs(30),
            protected: Vec::new(),
            ban_private: false,
            max_prefix_v4: 16,
            max_prefix_v6: 32,
            ban_sources: None,
        }
    }
}

/// `[decisions]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionsSection {
    #[serde(alias = "resync_secs")]
    resync: Option<Span>,
    #[serde(alias = "expire_secs")]
    expire: Option<Span>,
    protected: Option<Vec<String>>,
    ban_private: Option<bool>,
    max_prefix_v4: Option<u32>,
    max_prefix_v6: Option<u32>,
    ban_sources: Option<Vec<String>>,
}

impl TryFrom<DecisionsSection> for DecisionsConfig {
    type Error = ConfigProblem;

    fn try_from(f: DecisionsSection) -> Result<Self, Self::Error> {
        let mut c = DecisionsConfig::default();
        if let Some(r) = f.resync {
            if !r.within(Span::from_secs(1), Span::from_secs(3600)) {
                return Err(ConfigProblem::new("resync", "must be between 1s and 1h"));
            }
            c.resync = r.to_std();
        }
        if let Some(e) = f.expire {
            if !e.within(Span::from_secs(1), Span::from_secs(86_400)) {
                return Err(ConfigProblem::new("expire", "must be between 1s and 1d"));
            }
            c.expire = e.to_std();
        }
        for text in f.protected.into_iter().flatten() {
            let net = text.parse::<IpNet>().map_err(|_| {
                ConfigProblem::new("protected", format!("'{text}' is not an IP or CIDR"))
            })?;
            c.protected.push((net, text));
        }
        c.ban_private = f.ban_private.unwrap_or(false);
        if let Some(p) = f.max_prefix_v4 {
            if !(1..=32).contains(&p) {
                return Err(ConfigProblem::new(
                    "max_prefix_v4",
                    "must be between 1 and 32",
                ));
            }
            c.max_prefix_v4 = p;
        }
        if let Some(p) = f.max_prefix_v6 {
            if !(1..=128).contains(&p) {
                return Err(ConfigProblem::new(
                    "max_prefix_v6",
                    "must be between 1 and 128",
                ));
            }
            c.max_prefix_v6 = p;
        }
        c.ban_sources = f.ban_sources;
        Ok(c)
    }
}

impl palisade_core::config::Validate for DecisionsConfig {
    /// Everything is checked while deserializing.
    fn finish(&mut self) -> Vec<ConfigProblem> {
        Vec::new()
    }
}

/// What [`Decisions::ban`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanOutcome {
    /// A new ban.
    Created(Decision),
    /// The ban in force on that value now lasts longer.
    Extended(Decision),
    /// The ban in force already lasted at least as long.
    Unchanged(Decision),
    /// Not banned: this allow-list entry covers the whole target.
    AllowListed(Arc<Decision>),
}

/// A bouncer's last pull: when, and when it was last written to the store.
#[derive(Debug, Clone, Copy)]
struct Pull {
    at: Timestamp,
    persisted: Option<Timestamp>,
}

/// How often a bouncer's position is written to the store at most.
const PERSIST_PULL_EVERY_MICROS: i64 = 60_000_000;

/// Times a write is retried when another writer raced it to the same decision.
const PUT_ATTEMPTS: usize = 3;

/// Why a decision was not written.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// The ban policy refuses it (protected address, too wide).
    #[error(transparent)]
    Refused(#[from] BanRefused),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decisions: the enforcement set plus the store behind it.
pub struct Decisions {
    set: Arc<DecisionSet>,
    store: SharedStore,
    policy: BanPolicy,
    loaded: AtomicBool,
    fingerprint: Mutex<Option<(i64, i64, i64)>>,
    pulls: Mutex<HashMap<i64, Pull>>,
}

impl Decisions {
    /// An empty set over `store` with the default ban policy; [`spawn_sync`] fills it.
    pub fn new(store: SharedStore) -> Self {
        Decisions::with_policy(store, BanPolicy::default())
    }

    /// An empty set over `store` whose bans must pass `policy`.
    pub fn with_policy(store: SharedStore, policy: BanPolicy) -> Self {
        Decisions {
            set: Arc::new(DecisionSet::new()),
            store,
            policy,
            loaded: AtomicBool::new(false),
            fingerprint: Mutex::new(None),
            pulls: Mutex::new(HashMap::new()),
        }
    }

    /// The enforcement set, for callers that keep their own handle (the inline proxy).
    pub fn set(&self) -> &Arc<DecisionSet> {
        &self.set
    }

    /// The ban to enforce against `ip`, if any: no store round trip, no lock.
    pub fn verdict(&self, ip: IpAddr) -> Option<BanInfo> {
        self.set.verdict(ip)
    }

    /// Whether the set has been loaded from the store at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    /// Writes a decision (extending the one in force on the same value instead of
    /// duplicating it) and puts it into the set at once. A ban must pass the ban
    /// policy first.
    pub async fn put(
        &self,
        decision: NewDecision,
    ) -> Result<(Decision, PutOutcome), DecisionError> {
        if decision.kind == DecisionKind::Ban {
            self.policy.check(&decision.target, decision.origin)?;
        }
        let mut attempt = 0;
        let (stored, outcome) = loop {
            attempt += 1;
            match self.store.put_decision(&decision, Timestamp::now()).await {
                Err(StoreError::Conflict(_)) if attempt < PUT_ATTEMPTS => continue,
                other => break other?,
            }
        };
        self.set.upsert(stored.clone());
        self.publish_counts();
        Ok((stored, outcome))
    }

    /// Bans `target` for `duration` on behalf of a scenario (the scenario engine's
    /// entry point). An allow-listed target is not banned; a target already banned has
    /// its ban extended instead of duplicated. The duration is clamped to 1 s ..= ten
    /// years.
    pub async fn ban(
        &self,
        target: DecisionTarget,
        duration: Duration,
        scenario: &str,
        threat_id: Option<i64>,
    ) -> Result<BanOutcome, DecisionError> {
        self.ban_from(
            DecisionOrigin::Scenario,
            target,
            duration,
            scenario,
            threat_id,
        )
        .await
    }

    /// [`Decisions::ban`] with another origin (e.g. the WAF banning repeat offenders).
    pub async fn ban_from(
        &self,
        origin: DecisionOrigin,
        target: DecisionTarget,
        duration: Duration,
        scenario: &str,
        threat_id: Option<i64>,
    ) -> Result<BanOutcome, DecisionError> {
        let now = Timestamp::now();
        if let Some(allow) = self.set.allow_covering(&target.net(), now) {
            count_bans("allow_listed");
            return Ok(BanOutcome::AllowListed(allow));
        }
        let secs = i64::try_from(duration.as_secs())
            .unwrap_or(i64::MAX)
            .clamp(1, MAX_DURATION_SECS);
        let (decision, outcome) = self
            .put(NewDecision {
                kind: DecisionKind::Ban,
                target,
                origin,
                scenario: scenario.to_owned(),
                created_by: scenario.to_owned(),
                threat_id,
                expires_at: Some(now.add_micros(secs * 1_000_000)),
            })
            .await?;
        Ok(match outcome {
            PutOutcome::Created => {
                count_bans("created");
                BanOutcome::Created(decision)
            }
            PutOutcome::Extended => {
                count_bans("extended");
                BanOutcome::Extended(decision)
            }
            PutOutcome::Unchanged => {
                count_bans("unchanged");
                BanOutcome::Unchanged(decision)
            }
        })
    }

    /// Soft-deletes a decision in force and takes it out of the set; `None` when there
    /// is no decision in force with that id.
    pub async fn delete(&self, id: i64, by: &str) -> Result<Option<Decision>, StoreError> {
        let deleted = self.store.delete_decision(id, Timestamp::now(), by).await?;
        if deleted.is_some() {
            self.set.remove(id);
            self.publish_counts();
        }
        Ok(deleted)
    }

    /// Reloads the set when the store's decisions changed since the last load (or when
    /// `force`); returns how many were loaded, `None` when nothing changed.
    pub async fn refresh(&self, force: bool) -> Result<Option<usize>, StoreError> {
        let fingerprint = self.store.decisions_fingerprint().await?;
        let unchanged = *self
            .fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            == Some(fingerprint);
        if unchanged && !force {
            return Ok(None);
        }
        let n = self.reload().await?;
        // Read before the load: a write in between makes the next refresh load again.
        *self
            .fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(fingerprint);
        Ok(Some(n))
    }

    /// Replaces the set with the decisions in force in the store; returns how many.
    pub async fn reload(&self) -> Result<usize, StoreError> {
        let generation = self.set.generation();
        let live = self.store.active_decisions(Timestamp::now(), None).await?;
        let n = live.len();
        self.set.replace(live, generation);
        self.loaded.store(true, Ordering::Relaxed);
        self.publish_counts();
        Ok(n)
    }

    /// Marks expired decisions in the store and drops them from the set; returns how
    /// many the store marked.
    pub async fn expire(&self) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        let n = self.store.expire_decisions(now).await?;
        if self.set.prune(now) > 0 {
            self.publish_counts();
        }
        if n > 0 {
            registry()
                .counter(
                    "palisade_decisions_expired_total",
                    "Decisions marked expired by the expiry job.",
                    &[],
                    &[],
                )
                .add(n);
        }
        Ok(n)
    }

    /// The last pull of a bouncer (by API key id): from memory, else from the store.
    pub async fn last_pull(&self, key_id: i64) -> Option<Timestamp> {
        if let Some(p) = self.pulls_lock().get(&key_id) {
            return Some(p.at);
        }
        let saved = self
            .store
            .setting(&pull_setting(key_id))
            .await
            .ok()
            .flatten()
            .and_then(|v| v.parse::<i64>().ok())
            .map(Timestamp);
        if let Some(at) = saved {
            self.pulls_lock().entry(key_id).or_insert(Pull {
                at,
                persisted: Some(at),
            });
        }
        saved
    }

    /// Records a bouncer's pull at `at` (its position for the next one); written to
    /// the store at most once a minute.
    pub async fn record_pull(&self, key_id: i64, at: Timestamp) {
        let persist = {
            let mut pulls = self.pulls_lock();
            let pull = pulls.entry(key_id).or_insert(Pull {
                at,
                persisted: None,
            });
            pull.at = at;
            let due = pull
                .persisted
                .is_none_or(|p| at.as_micros() - p.as_micros() >= PERSIST_PULL_EVERY_MICROS);
            if due {
                pull.persisted = Some(at);
            }
            due
        };
        if persist
            && let Err(error) = self
                .store
                .put_setting(&pull_setting(key_id), &at.as_micros().to_string())
                .await
        {
            // Only costs a larger delta after a restart.
            tracing::debug!(message = "Cannot save a bouncer's last pull.", %error);
        }
    }

    fn pulls_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Pull>> {
        self.pulls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish_counts(&self) {
        let (bans, allows) = self.set.counts();
        for (kind, n) in [(DecisionKind::Ban, bans), (DecisionKind::Allow, allows)] {
            registry()
                .gauge(
                    "palisade_decisions_in_memory",
                    "Decisions held by the enforcement set, by kind.",
                    &["kind"],
                    &[kind.as_str()],
                )
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// The settings key a bouncer's last pull is kept under.
fn pull_setting(key_id: i64) -> String {
    format!("lapi.last_pull.{key_id}")
}

fn count_bans(outcome: &'static str) {
    registry()
        .counter(
            "palisade_decision_bans_total",
            "Bans requested through Decisions::ban, by outcome.",
            &["outcome"],
            &[outcome],
        )
        .inc();
}

/// Starts the task that loads, reloads and expires decisions until shutdown, under
/// `supervisor`. A failure is logged, counted (`palisade_decision_sync_failures_total`)
/// and retried with backoff; a panic restarts the task, also with backoff.
pub fn spawn_sync(
    decisions: Arc<Decisions>,
    db: Arc<DbHealth>,
    config: DecisionsConfig,
    supervisor: &Supervisor,
) -> JoinHandle<()> {
    let shutdown = supervisor.shutdown();
    supervisor.spawn("decisions", move || {
        sync_loop(
            decisions.clone(),
            db.clone(),
            config.clone(),
            shutdown.clone(),
        )
    })
}

/// Every this many resync intervals the set is reloaded even if nothing changed.
const FULL_RELOAD_EVERY: u32 = 12;

/// Most time between two attempts while the store fails.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

async fn sync_loop(
    decisions: Arc<Decisions>,
    db: Arc<DbHealth>,
    config: DecisionsConfig,
    mut shutdown: Shutdown,
) {
    let failures = |task: &str| {
        registry().counter(
            "palisade_decision_sync_failures_total",
            "Failed loads, reloads and expiry runs of the decision set (retried).",
            &["task"],
            &[task],
        )
    };
    let mut backoff = Duration::from_millis(200);
    let mut next_expiry = Instant::now();
    let mut healthy = false;
    let mut since_full = 0u32;
    loop {
        if shutdown.is_shutdown() {
            return;
        }
        let wait = if !db.ready() {
            // Not migrated or not reachable yet: the health monitor is on it.
            Duration::from_millis(200)
        } else {
            // A full reload now and then even when nothing seems to have changed (a
            // write from a host whose clock is behind keeps the fingerprint's times).
            since_full += 1;
            let force = since_full >= FULL_RELOAD_EVERY;
            match decisions.refresh(force).await {
                Ok(loaded) => {
                    if force || loaded.is_some() {
                        since_full = 0;
                    }
                    if !healthy {
                        tracing::info!(
                            message = "Decisions loaded.",
                            decisions = loaded.unwrap_or(0)
                        );
                        healthy = true;
                    }
                    backoff = Duration::from_millis(200);
                    if Instant::now() >= next_expiry {
                        if let Err(error) = decisions.expire().await {
                            failures("expire").inc();
                            tracing::warn!(message = "Cannot mark expired decisions; will retry.", %error);
                        }
                        next_expiry = Instant::now() + config.expire;
                    }
                    config.resync
                }
                Err(error) => {
                    healthy = false;
                    failures("reload").inc();
                    tracing::warn!(message = "Cannot load decisions yet; will retry.", %error);
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.recv() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (SharedStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://", dir.path()).unwrap();
        store.migrate().await.unwrap();
        (store, dir)
    }

    fn target(s: &str) -> DecisionTarget {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn scenario_bans_extend_and_skip_allow_listed_addresses() {
        let (store, _dir) = store().await;
        let d = Decisions::new(store.clone());
        let hour = Duration::from_secs(3600);
        let first = d
            .ban(target("192.0.2.1"), hour, "ssh-bf", Some(7))
            .await
            .unwrap();
        let BanOutcome::Created(ban) = first else {
            panic!("{first:?}")
        };
        assert_eq!(ban.origin, DecisionOrigin::Scenario);
        assert_eq!(ban.threat_id, Some(7));
        assert_eq!(
            d.verdict("192.0.2.1".parse().unwrap()).map(|b| b.id),
            Some(ban.id)
        );
        let again = d
            .ban(target("192.0.2.1"), hour * 2, "ssh-bf", None)
            .await
            .unwrap();
        assert!(
            matches!(again, BanOutcome::Extended(ref e) if e.id == ban.id),
            "{again:?}"
        );
        let shorter = d
            .ban(target("192.0.2.1"), Duration::from_secs(5), "ssh-bf", None)
            .await
            .unwrap();
        assert!(matches!(shorter, BanOutcome::Unchanged(_)));

        let (allow, _) = d
            .put(NewDecision {
                kind: DecisionKind::Allow,
                target: target("198.51.100.0/24"),
                origin: DecisionOrigin::Manual,
                scenario: "office".into(),
                created_by: "admin".into(),
                threat_id: None,
                expires_at: None,
            })
            .await
            .unwrap();
        let skipped = d
            .ban(target("198.51.100.9"), hour, "http-probing", None)
            .await
            .unwrap();
        assert!(matches!(skipped, BanOutcome::AllowListed(ref a) if a.id == allow.id));
        assert_eq!(
            store
                .active_decisions(Timestamp::now(), Some(DecisionKind::Ban))
                .await
                .unwrap()
                .len(),
            1
        );

        // Deleting takes it out of the set at once; a reload agrees with the store.
        assert!(d.delete(ban.id, "admin").await.unwrap().is_some());
        assert!(d.verdict("192.0.2.1".parse().unwrap()).is_none());
        assert!(d.delete(ban.id, "admin").await.unwrap().is_none());
        assert_eq!(d.refresh(false).await.unwrap(), Some(1));
        assert_eq!(d.refresh(false).await.unwrap(), None, "nothing changed");
        assert_eq!(d.refresh(true).await.unwrap(), Some(1));
        assert!(d.is_loaded());
        assert_eq!(d.set().counts(), (0, 1));
    }

    #[tokio::test]
    async fn writes_by_another_instance_arrive_with_the_reload() {
        let (store, _dir) = store().await;
        let a = Decisions::new(store.clone());
        let b = Decisions::new(store.clone());
        a.ban(
            target("2001:db8::/48"),
            Duration::from_secs(60),
            "flood",
            None,
        )
        .await
        .unwrap();
        let ip: IpAddr = "2001:db8::77".parse().unwrap();
        assert!(a.verdict(ip).is_some());
        assert!(b.verdict(ip).is_none());
        b.refresh(false).await.unwrap();
        assert!(b.verdict(ip).is_some());
        // A deletion on the other instance: the fingerprint changes, b reloads.
        let id = b.verdict(ip).map(|d| d.id).unwrap_or_default();
        a.delete(id, "admin").await.unwrap();
        assert_eq!(b.refresh(false).await.unwrap(), Some(0));
        assert!(b.verdict(ip).is_none());
    }

    #[tokio::test]
    async fn bouncer_positions_survive_a_restart() {
        let (store, _dir) = store().await;
        let d = Decisions::new(store.clone());
        assert_eq!(d.last_pull(5).await, None);
        d.record_pull(5, Timestamp(1_000_000)).await;
        d.record_pull(5, Timestamp(2_000_000)).await;
        assert_eq!(d.last_pull(5).await, Some(Timestamp(2_000_000)));
        // Only the first was written (less than a minute apart).
        let restarted = Decisions::new(store);
        assert_eq!(restarted.last_pull(5).await, Some(Timestamp(1_000_000)));
    }

    #[tokio::test]
    async fn the_sync_task_loads_and_stops_at_shutdown() {
        let (store, _dir) = store().await;
        let writer = Decisions::new(store.clone());
        writer
            .ban(target("203.0.113.4"), Duration::from_secs(60), "x", None)
            .await
            .unwrap();
        let d = Arc::new(Decisions::new(store.clone()));
        let db = Arc::new(DbHealth::new("sqlite"));
        let trigger = palisade_core::ShutdownTrigger::new();
        let monitor = tokio::spawn(crate::db_monitor::monitor(
            store,
            db.clone(),
            Duration::from_millis(50),
            trigger.subscribe(),
        ));
        let task = spawn_sync(
            d.clone(),
            db,
            DecisionsConfig {
                resync: Duration::from_millis(50),
                expire: Duration::from_millis(50),
                ..DecisionsConfig::default()
            },
            &Supervisor::new(trigger.subscribe()),
        );
        for _ in 0..100 {
            if d.verdict("203.0.113.4".parse().unwrap()).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(d.is_loaded());
        assert!(d.verdict("203.0.113.4".parse().unwrap()).is_some());
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        monitor.await.unwrap();
    }
}
