//! Software seen in traffic and logs, recorded and matched without anyone uploading
//! anything.
//!
//! Fronts hand what they see to a [`SoftwareObserver`]: the protecting proxy the
//! upstream's `Server` and `X-Powered-By` answers ([`SoftwareObserver::http_answer`]),
//! the syslog stage the software named in log lines ([`SoftwareObserver::items`]),
//! anyone an SSH banner ([`SoftwareObserver::banner`]). A hand-over never waits: it is a
//! `try_send` into a bounded queue (full: dropped and counted), after a check that the
//! same sighting was not handed over within `observe_refresh` (the proxy sees the same
//! `Server` header on every answer). One supervised task ([`spawn`]) takes the queue,
//! parses the text ([`banner`]), records the software for the asset and, when the
//! asset's software changed, matches the asset (raising threats for new critical
//! matches). While the store is down it retries with backoff; the queue absorbs what it
//! can and the rest is dropped, counted, and seen again at the next refresh.

pub mod banner;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use palisade_core::Shutdown;
use palisade_core::metrics::{Counter, registry};
use palisade_core::supervisor::{SharedReceiver, Supervisor};
use palisade_core::vuln::{Software, SoftwareSource};
use palisade_store::SharedStore;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::matching::{CveCache, ThreatSink, match_asset};

/// Most distinct sightings remembered for the refresh check (then forgotten at once).
const MAX_REMEMBERED: usize = 8192;
/// Longest asset name kept.
const MAX_ASSET: usize = 255;

/// One thing seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// An upstream's answer headers.
    Http {
        /// The asset (the upstream's host and port).
        asset: String,
        /// The `Server` value.
        server: Option<String>,
        /// The `X-Powered-By` value.
        powered_by: Option<String>,
    },
    /// An SSH identification string.
    Banner {
        /// The asset.
        asset: String,
        /// The banner.
        text: String,
    },
    /// Software already parsed (from a syslog line).
    Items {
        /// The asset (the host that logged it).
        asset: String,
        /// The software.
        items: Vec<Software>,
    },
}

impl Observation {
    fn asset(&self) -> &str {
        match self {
            Observation::Http { asset, .. }
            | Observation::Banner { asset, .. }
            | Observation::Items { asset, .. } => asset,
        }
    }
}

/// Counters of sightings by outcome.
struct Counts {
    queued: Arc<Counter>,
    repeated: Arc<Counter>,
    dropped: Arc<Counter>,
}

fn counts() -> Counts {
    let c = |outcome: &str| {
        registry().counter(
            "palisade_vuln_sightings_total",
            "Software sightings (proxied answers, banners, log lines) by outcome: queued, repeated (seen within observe_refresh), dropped (queue full).",
            &["outcome"],
            &[outcome],
        )
    };
    Counts {
        queued: c("queued"),
        repeated: c("repeated"),
        dropped: c("dropped"),
    }
}

/// The sending side, held by the fronts. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct SoftwareObserver {
    tx: mpsc::Sender<Observation>,
    recent: Arc<Mutex<HashMap<u64, Instant>>>,
    refresh: Duration,
    hasher: std::collections::hash_map::RandomState,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for SoftwareObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareObserver")
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl SoftwareObserver {
    /// An observer feeding `tx`, handing the same sighting over at most every `refresh`.
    pub fn new(tx: mpsc::Sender<Observation>, refresh: Duration) -> SoftwareObserver {
        SoftwareObserver {
            tx,
            recent: Arc::new(Mutex::new(HashMap::new())),
            refresh,
            hasher: std::collections::hash_map::RandomState::new(),
            counts: Arc::new(counts()),
        }
    }

    /// An observer and the receiving end of its queue (for embedding and tests).
    pub fn channel(
        capacity: usize,
        refresh: Duration,
    ) -> (SoftwareObserver, mpsc::Receiver<Observation>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (SoftwareObserver::new(tx, refresh), rx)
    }

    /// Whether this sighting was handed over within the refresh interval (and, if not,
    /// remembers it now).
    fn seen_recently(&self, key: u64) -> bool {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = recent.get(&key)
            && now.duration_since(*at) < self.refresh
        {
            return true;
        }
        if recent.len() >= MAX_REMEMBERED {
            recent.clear();
        }
        recent.insert(key, now);
        false
    }

    /// Hands the observation `make` builds over, unless the same sighting was handed
    /// over recently: then nothing is built (a proxy offers every answer's banners).
    fn offer(&self, key: u64, make: impl FnOnce() -> Observation) {
        if self.seen_recently(key) {
            self.counts.repeated.inc();
            return;
        }
        match self.tx.try_send(make()) {
            Ok(()) => self.counts.queued.inc(),
            Err(_) => {
                self.counts.dropped.inc();
                // Not handed over: let the next sighting try again.
                self.recent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&key);
            }
        }
    }

    fn key(&self, parts: &[&[u8]]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for p in parts {
            p.hash(&mut h);
        }
        h.finish()
    }

    /// An upstream answered with these headers (raw bytes, as the proxy has them).
    /// Does nothing when neither is present.
    pub fn http_answer(&self, asset: &str, server: Option<&[u8]>, powered_by: Option<&[u8]>) {
        if server.is_none() && powered_by.is_none() {
            return;
        }
        let key = self.key(&[
            asset.as_bytes(),
            server.unwrap_or_default(),
            b"\0",
            powered_by.unwrap_or_default(),
        ]);
        let text = |b: Option<&[u8]>| {
            b.map(|b| String::from_utf8_lossy(&b[..b.len().min(1024)]).into_owned())
        };
        self.offer(key, || Observation::Http {
            asset: asset_name(asset),
            server: text(server),
            powered_by: text(powered_by),
        });
    }

    /// A service of `asset` identified itself with this SSH banner.
    pub fn banner(&self, asset: &str, text: &str) {
        let key = self.key(&[b"ssh", asset.as_bytes(), text.as_bytes()]);
        self.offer(key, || Observation::Banner {
            asset: asset_name(asset),
            text: crate::inventory::cap(text, 1024),
        });
    }

    /// Software already identified (from a log line) on `asset`.
    pub fn items(&self, asset: &str, items: Vec<Software>) {
        if items.is_empty() {
            return;
        }
        let mut parts: Vec<&[u8]> = vec![b"items", asset.as_bytes()];
        for i in &items {
            parts.push(i.name.as_bytes());
            parts.push(i.version.as_bytes());
        }
        let key = self.key(&parts);
        self.offer(key, || Observation::Items {
            asset: asset_name(asset),
            items,
        });
    }
}

fn asset_name(asset: &str) -> String {
    crate::inventory::cap(&asset.replace(char::is_control, ""), MAX_ASSET)
}

/// The software an observation names, with its source.
pub fn software_of(o: &Observation) -> Vec<(SoftwareSource, Vec<Software>)> {
    match o {
        Observation::Http {
            server, powered_by, ..
        } => {
            let mut items: Vec<Software> = Vec::new();
            for v in [server, powered_by].into_iter().flatten() {
                for s in banner::http_header(v) {
                    if !items.iter().any(|i| i.name == s.name && i.cpe == s.cpe) {
                        items.push(s);
                    }
                }
            }
            vec![(SoftwareSource::Http, items)]
        }
        Observation::Banner { text, .. } => vec![(SoftwareSource::Ssh, banner::ssh_banner(text))],
        Observation::Items { items, .. } => {
            let mut by: Vec<(SoftwareSource, Vec<Software>)> = Vec::new();
            for s in items {
                match by.iter_mut().find(|(src, _)| *src == s.source) {
                    Some((_, list)) => list.push(s.clone()),
                    None => by.push((s.source, vec![s.clone()])),
                }
            }
            by
        }
    }
}

/// Records one observation and matches the asset when its software changed. Returns
/// whether the asset was matched.
pub async fn record(
    store: &SharedStore,
    observation: &Observation,
    threats: Option<&ThreatSink>,
) -> Result<bool, crate::VulnError> {
    let mut changed_asset = None;
    for (source, items) in software_of(observation) {
        if items.is_empty() {
            continue;
        }
        let w = store
            .put_software(
                observation.asset(),
                source,
                &items,
                false,
                palisade_core::Timestamp::now(),
            )
            .await?;
        if w.changed {
            changed_asset = Some(w.asset_id);
        }
    }
    let Some(asset_id) = changed_asset else {
        return Ok(false);
    };
    let mut cache = CveCache::new();
    let sync = match_asset(store, asset_id, &mut cache, threats).await?;
    tracing::info!(
        message = "Software seen; asset matched.",
        asset = %observation.asset(),
        opened = sync.opened.len(),
        resolved = sync.resolved,
    );
    Ok(true)
}

/// Starts the recording task under `supervisor`; returns the observer to hand to the
/// fronts.
pub fn spawn(
    store: SharedStore,
    threats: Option<ThreatSink>,
    queue: usize,
    refresh: Duration,
    supervisor: &Supervisor,
) -> (SoftwareObserver, JoinHandle<()>) {
    let (observer, rx) = SoftwareObserver::channel(queue, refresh);
    let rx = SharedReceiver::new(rx);
    let shutdown = supervisor.shutdown();
    let task = supervisor.spawn("software-observer", move || {
        run(store.clone(), rx.clone(), threats.clone(), shutdown.clone())
    });
    (observer, task)
}

async fn run(
    store: SharedStore,
    rx: SharedReceiver<Observation>,
    threats: Option<ThreatSink>,
    mut shutdown: Shutdown,
) {
    let mut rx = rx.lock().await;
    loop {
        let next = tokio::select! {
            got = rx.recv() => got,
            _ = shutdown.recv() => return,
        };
        let Some(observation) = next else { return };
        let mut backoff = Duration::from_millis(200);
        loop {
            match record(&store, &observation, threats.as_ref()).await {
                Ok(_) => break,
                Err(crate::VulnError::Store(e)) if e.is_transient() => {
                    tracing::warn!(message = "Cannot record seen software; will retry.", error = %e);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.recv() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(error) => {
                    tracing::warn!(
                        message = "Cannot record seen software; dropped.",
                        asset = %observation.asset(),
                        %error
                    );
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_refresh_are_not_queued_and_a_full_queue_drops() {
        let (o, mut rx) = SoftwareObserver::channel(1, Duration::from_secs(600));
        o.http_answer("app:80", Some(b"Apache/2.4.49"), None);
        o.http_answer("app:80", Some(b"Apache/2.4.49"), None);
        assert!(matches!(rx.try_recv(), Ok(Observation::Http { .. })));
        assert!(rx.try_recv().is_err(), "the repeat was not queued");
        o.http_answer("app:80", None, None);
        assert!(rx.try_recv().is_err(), "nothing to report");
        o.http_answer("app:80", Some(b"Apache/2.4.51"), None);
        o.http_answer("app:80", Some(b"nginx/1.20.0"), None);
        assert!(rx.try_recv().is_ok());
        assert!(
            rx.try_recv().is_err(),
            "the queue held one; the other was dropped"
        );
        // The dropped one is offered again at the next sighting.
        o.http_answer("app:80", Some(b"nginx/1.20.0"), None);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn observations_name_their_software() {
        let o = Observation::Http {
            asset: "a".into(),
            server: Some("Apache/2.4.49 (Unix)".into()),
            powered_by: Some("PHP/8.1.2".into()),
        };
        let sw = software_of(&o);
        assert_eq!(sw[0].1.len(), 2);
    }
}
