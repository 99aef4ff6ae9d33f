//! Live state of every source, for `/api/v1/sources`, health and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use palisade_core::Timestamp;
use serde::Serialize;
use tokio::sync::broadcast;

/// State changes that may wait for their watchers (the activity feed) before the
/// oldest are lost.
const CHANGES_BUFFER: usize = 256;

/// A source moving from one state to another (only real changes: a source that keeps
/// reporting the same state sends nothing), for whoever watches the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChange {
    /// The source's name.
    pub name: String,
    /// Its kind (`file`, `syslog`, `kafka`, …).
    pub kind: &'static str,
    /// What it reads.
    pub target: String,
    /// The state it left.
    pub from: SourceState,
    /// The state it is in now.
    pub to: SourceState,
    /// Why, for errors and waits.
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// Where a source is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Not yet reading (waiting for its checkpoint or its file).
    Starting,
    /// Reading and keeping up.
    Running,
    /// Waiting for the store to come back; nothing is being lost.
    Waiting,
    /// Stopped on an error it will retry (see `last_error`).
    Error,
    /// Shut down.
    Stopped,
    /// Known only from its stored checkpoint: not running in this process.
    Idle,
    /// Switched off by an operator (`POST /api/v1/sources/{name}/pause`, a stored
    /// setting every node follows); reading resumes where it stopped after `/resume`.
    Paused,
}

impl SourceState {
    /// The stable name (as serialized).
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceState::Starting => "starting",
            SourceState::Running => "running",
            SourceState::Waiting => "waiting",
            SourceState::Error => "error",
            SourceState::Stopped => "stopped",
            SourceState::Idle => "idle",
            SourceState::Paused => "paused",
        }
    }
}

/// Counters and position of one source. Updated by the source, read by the API.
#[derive(Debug)]
pub struct SourceStatus {
    name: String,
    kind: &'static str,
    target: String,
    state: Mutex<(SourceState, Option<String>)>,
    format: Mutex<Option<String>>,
    lines: AtomicU64,
    events: AtomicU64,
    dead_letters: AtomicU64,
    dropped: AtomicU64,
    offset: AtomicU64,
    size: AtomicU64,
    last_event_micros: AtomicU64,
    detail: Mutex<Option<serde_json::Value>>,
    changes: broadcast::Sender<SourceChange>,
}

/// A point-in-time copy of a source's status, as served by the API.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSnapshot {
    /// The source's stable name (used in events and checkpoints).
    pub name: String,
    /// `file`, `syslog`, `import`, `push` or `proxy`.
    pub kind: &'static str,
    /// What it reads (a path, or the route).
    pub target: String,
    /// Current state.
    pub state: SourceState,
    /// The last error, when the state is `error` or `waiting`.
    pub last_error: Option<String>,
    /// The format in use (after auto-detection).
    pub format: Option<String>,
    /// Lines read since start.
    pub lines: u64,
    /// Events parsed since start.
    pub events: u64,
    /// Lines kept as dead letters since start.
    pub dead_letters: u64,
    /// Events given up since start because the store writer's queue was full: only
    /// sources that must never make their clients wait drop (the protecting proxy's
    /// traffic); every other source waits instead.
    pub dropped: u64,
    /// Byte offset read up to in the current file.
    pub offset: u64,
    /// Bytes in the file not yet read (the lag), for file sources.
    pub lag_bytes: u64,
    /// Time of the newest event read, if any.
    pub last_event_at: Option<Timestamp>,
    /// What only this kind of source knows (a Kafka source: brokers, assigned
    /// partitions, lag per partition, last commit), when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl SourceSnapshot {
    /// A source known only from its checkpoint (an earlier import, a tail configured
    /// elsewhere), so that the listing shows every position the store holds.
    pub fn idle(name: &str, offset: u64) -> Self {
        SourceSnapshot {
            name: name.to_owned(),
            kind: "stored",
            target: String::new(),
            state: SourceState::Idle,
            last_error: None,
            format: None,
            lines: 0,
            events: 0,
            dead_letters: 0,
            dropped: 0,
            offset,
            lag_bytes: 0,
            last_event_at: None,
            detail: None,
        }
    }
}

impl SourceStatus {
    /// Records a state change (and its reason, for errors and waits); a change to
    /// another state is told to the registry's watchers ([`SourceRegistry::watch`]).
    pub fn set_state(&self, state: SourceState, reason: Option<String>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let from = s.0;
        *s = (state, reason.clone());
        drop(s);
        if from != state {
            // Nobody watching is fine.
            let _ = self.changes.send(SourceChange {
                name: self.name.clone(),
                kind: self.kind,
                target: self.target.clone(),
                from,
                to: state,
                reason,
                at: Timestamp::now(),
            });
        }
    }

    /// The current state.
    pub fn state(&self) -> SourceState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Records the format chosen for the source.
    pub fn set_format(&self, name: &str) {
        *self.format.lock().unwrap_or_else(|p| p.into_inner()) = Some(name.to_owned());
    }

    /// Counts lines read, events parsed and dead letters.
    pub fn count(&self, lines: u64, events: u64, dead_letters: u64) {
        self.lines.fetch_add(lines, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        self.dead_letters.fetch_add(dead_letters, Ordering::Relaxed);
    }

    /// Counts events given up because the writer's queue was full.
    pub fn count_dropped(&self, events: u64) {
        self.dropped.fetch_add(events, Ordering::Relaxed);
    }

    /// Records the read position and the file size, from which lag is derived.
    pub fn set_position(&self, offset: u64, size: u64) {
        self.offset.store(offset, Ordering::Relaxed);
        self.size.store(size, Ordering::Relaxed);
    }

    /// Records the time of the newest event seen.
    pub fn saw_event_at(&self, ts: Timestamp) {
        self.last_event_micros
            .fetch_max(ts.as_micros().max(0) as u64, Ordering::Relaxed);
    }

    /// Replaces the kind-specific detail shown with the status.
    pub fn set_detail(&self, detail: serde_json::Value) {
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = Some(detail);
    }

    /// The source's kind (`file`, `kafka`, …).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A consistent-enough copy for the API.
    pub fn snapshot(&self) -> SourceSnapshot {
        let (state, last_error) = self.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let offset = self.offset.load(Ordering::Relaxed);
        let size = self.size.load(Ordering::Relaxed);
        let last = self.last_event_micros.load(Ordering::Relaxed);
        SourceSnapshot {
            name: self.name.clone(),
            kind: self.kind,
            target: self.target.clone(),
            state,
            last_error,
            format: self
                .format
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            lines: self.lines.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            offset,
            lag_bytes: size.saturating_sub(offset),
            last_event_at: (last > 0).then_some(Timestamp(last as i64)),
            detail: self
                .detail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// All sources of this process.
#[derive(Debug, Clone)]
pub struct SourceRegistry {
    inner: Arc<Mutex<Vec<Arc<SourceStatus>>>>,
    changes: broadcast::Sender<SourceChange>,
}

impl Default for SourceRegistry {
    fn default() -> Self {
        SourceRegistry {
            inner: Arc::default(),
            changes: broadcast::channel(CHANGES_BUFFER).0,
        }
    }
}

impl SourceRegistry {
    /// Every state change of every source from now on (a watcher that falls more
    /// than a few hundred changes behind is told how many it missed).
    pub fn watch(&self) -> broadcast::Receiver<SourceChange> {
        self.changes.subscribe()
    }

    /// Registers a source and returns the handle it updates.
    pub fn register(&self, name: &str, kind: &'static str, target: &str) -> Arc<SourceStatus> {
        let status = Arc::new(SourceStatus {
            name: name.to_owned(),
            kind,
            target: target.to_owned(),
            state: Mutex::new((SourceState::Starting, None)),
            format: Mutex::new(None),
            lines: AtomicU64::new(0),
            events: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            offset: AtomicU64::new(0),
            size: AtomicU64::new(0),
            last_event_micros: AtomicU64::new(0),
            detail: Mutex::new(None),
            changes: self.changes.clone(),
        });
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(status.clone());
        status
    }

    /// Snapshots of every source, in registration order.
    pub fn snapshot(&self) -> Vec<SourceSnapshot> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.snapshot())
            .collect()
    }

    /// The named source's handle, registering it with `kind` and `target` on first
    /// use (HTTP push sources appear when they first push).
    pub fn get_or_register(
        &self,
        name: &str,
        kind: &'static str,
        target: &str,
    ) -> Arc<SourceStatus> {
        if let Some(s) = self.get(name) {
            return s;
        }
        let status = self.register(name, kind, target);
        status.set_state(SourceState::Running, None);
        status
    }

    /// The named source's kind (`file`, `syslog`, `push`, …), if registered.
    pub fn kind_of(&self, name: &str) -> Option<&'static str> {
        self.get(name).map(|s| s.kind)
    }

    /// The named source's handle, if registered.
    pub fn get(&self, name: &str) -> Option<Arc<SourceStatus>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|s| s.name == name)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_state_changes_reach_the_watchers() {
        let registry = SourceRegistry::default();
        let mut changes = registry.watch();
        let s = registry.register("web", "file", "/var/log/x.log");
        s.set_state(SourceState::Running, None);
        s.set_state(SourceState::Running, None);
        s.set_state(SourceState::Error, Some("gone".into()));
        s.set_state(SourceState::Error, Some("still gone".into()));
        s.set_state(SourceState::Running, None);
        let mut seen = Vec::new();
        while let Ok(c) = changes.try_recv() {
            assert_eq!((c.name.as_str(), c.kind), ("web", "file"));
            seen.push((c.from, c.to, c.reason));
        }
        assert_eq!(
            seen,
            [
                (SourceState::Starting, SourceState::Running, None),
                (
                    SourceState::Running,
                    SourceState::Error,
                    Some("gone".into())
                ),
                (SourceState::Error, SourceState::Running, None),
            ]
        );
        assert_eq!(SourceState::Error.as_str(), "error");
    }
}
