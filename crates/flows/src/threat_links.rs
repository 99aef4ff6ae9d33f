//! Threats → the flows they were raised over.
//!
//! Flow events carry their stored flow's id (`extra.flow_id`), and so do the `http`
//! events made from a flow's request. A threat names the events behind it: a scenario
//! threat lists them in its `events` evidence, a signature threat has its `event_id`.
//! [`link_threats`] watches stored threats (one of the recorder's observers), reads
//! those events back and records `(flow_id, threat_id)` links, which the flow
//! `has_threat` filter, a flow's threats and a device's threats use.

use std::sync::Arc;

use palisade_core::threat::StoredThreat;
use palisade_store::SharedStore;
use tokio::sync::mpsc;

/// Most events read back per threat (scenario evidence keeps at most 50).
const EVENTS_PER_THREAT: usize = 64;

/// The event ids a threat names: its `event_id`, and the ids of its `events` evidence.
pub fn event_ids(t: &StoredThreat) -> Vec<i64> {
    let mut ids: Vec<i64> = t.threat.event_id.into_iter().collect();
    for e in &t.threat.evidence {
        if e.location == "events"
            && let Ok(list) = serde_json::from_str::<Vec<i64>>(&e.decoded_value)
        {
            ids.extend(list);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(EVENTS_PER_THREAT);
    ids
}

/// The flow ids behind one threat.
pub async fn flows_of(store: &SharedStore, t: &StoredThreat) -> Vec<i64> {
    let mut flows = Vec::new();
    for id in event_ids(t) {
        match store.get_event(id).await {
            Ok(Some(e)) => {
                if let Some(f) = e
                    .event
                    .extra
                    .iter()
                    .find(|(k, _)| k == "flow_id")
                    .and_then(|(_, v)| v.parse::<i64>().ok())
                {
                    flows.push(f);
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(message = "Cannot read a threat's event; its flow link is skipped.", %error, event = id);
            }
        }
    }
    flows.sort_unstable();
    flows.dedup();
    flows
}

/// Links every stored threat that came from flow events to its flows, until the
/// sender side closes; returns how many links were made. A store error is logged and
/// that batch's links skipped (the threats themselves are stored already).
pub async fn link_threats(store: SharedStore, mut rx: mpsc::Receiver<Arc<[StoredThreat]>>) -> u64 {
    link_loop(&store, &mut rx).await
}

/// [`link_threats`] as a supervised task of the service (restarted after a panic).
pub fn spawn(
    store: SharedStore,
    rx: mpsc::Receiver<Arc<[StoredThreat]>>,
    supervisor: &palisade_core::supervisor::Supervisor,
) -> tokio::task::JoinHandle<()> {
    let rx = palisade_core::supervisor::SharedReceiver::new(rx);
    supervisor.spawn("threat-flow-links", move || {
        let (store, rx) = (store.clone(), rx.clone());
        async move {
            let mut rx = rx.lock().await;
            link_loop(&store, &mut rx).await;
        }
    })
}

async fn link_loop(store: &SharedStore, rx: &mut mpsc::Receiver<Arc<[StoredThreat]>>) -> u64 {
    let mut linked = 0u64;
    while let Some(batch) = rx.recv().await {
        let mut links = Vec::new();
        for t in batch.iter() {
            for f in flows_of(store, t).await {
                links.push((f, t.id));
            }
        }
        if links.is_empty() {
            continue;
        }
        match store.link_flow_threats(&links).await {
            Ok(()) => linked += links.len() as u64,
            Err(error) => {
                tracing::warn!(message = "Cannot link threats to their flows.", %error, links = links.len());
            }
        }
    }
    linked
}
