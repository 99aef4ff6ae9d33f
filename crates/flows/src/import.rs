//! `palisade ingest FILE.pcap`: a capture's flows into the store, and into the pipeline
//! as `flow` events (so the behaviour scenarios judge them) plus, for flows carrying an
//! HTTP request, an `http` event (so the signature stage judges the request).
//!
//! Reading and decoding run on a blocking thread; finished flows cross to the async side
//! through a bounded channel (a slow store slows the reader, memory stays bounded by
//! the flow table plus a few batches). Each batch is stored as flow rows
//! ([`FlowStore::insert_flows`]) and handed to the [`BatchWriter`] as events, sorted by
//! start time so the scenarios see them in packet time. Flow events carry their stored
//! flow's id (`flow_id`, so threats point back at flows, see `threat_links`) and, when
//! the flow continues a regular series (see `beacon`), `beacon = "true"`.
//!
//! Devices seen in each batch are merged into the inventory ([`DeviceStore`]); with a
//! live bus, stored flows go out on the `flows` topic and changed devices on `devices`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::Arc;

use palisade_live::{Bus, Topic};
use palisade_sources::BatchWriter;
use palisade_store::{Device, IngestBatch, NewFlow, SharedStore, StoredFlow};

use crate::beacon::BeaconTracker;
use crate::capture::{Stats, read_capture_with_devices};
use crate::config::FlowConfig;
use crate::device::{DeviceTable, Oui};
use crate::error::CaptureError;
use crate::event::{flow_event, http_event};
use crate::flow::FlowRecord;
use crate::judge::FlowJudge;
use crate::reader;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The capture could not be read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The store refused the flows.
    #[error("storing flows: {0}")]
    Store(#[from] palisade_store::StoreError),
    /// The event writer stopped.
    #[error("sending flow events: {0}")]
    Writer(#[from] palisade_sources::WriterError),
    /// The reading thread failed.
    #[error("capture reader failed: {0}")]
    Reader(String),
}

/// What an import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportSummary {
    /// Packet and flow-table counters.
    pub stats: Stats,
    /// Flows stored.
    pub flows: u64,
    /// Devices new or changed in the inventory.
    pub devices_changed: u64,
    /// Flows marked as part of a regular (beacon) series.
    pub beacon_flows: u64,
    /// Seconds taken.
    pub elapsed_s: f64,
}

/// True when the file starts like a capture (pcap, pcapng, or either gzipped).
pub fn is_capture(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 4];
    let mut r = std::io::BufReader::new(file);
    if r.read_exact(&mut head).is_err() {
        return false;
    }
    if head[0] == 0x1f && head[1] == 0x8b {
        let Ok(file) = std::fs::File::open(path) else {
            return false;
        };
        let mut gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
        if gz.read_exact(&mut head).is_err() {
            return false;
        }
    }
    reader::detect(head).is_some()
}

/// The row of a finished flow.
pub fn new_flow(f: &FlowRecord, source: &str) -> NewFlow {
    let mut detail = serde_json::to_value(&f.app).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(map) = detail.as_object_mut() {
        map.remove("protocol");
        map.remove("by_port");
        map.insert("end_reason".into(), f.end_reason.clone().into());
        map.insert("orig_payload_bytes".into(), f.orig.payload_bytes.into());
        map.insert("resp_payload_bytes".into(), f.resp.payload_bytes.into());
        if let Some(m) = &f.src_mac {
            map.insert("src_mac".into(), m.clone().into());
        }
        if let Some(m) = &f.dst_mac {
            map.insert("dst_mac".into(), m.clone().into());
        }
    }
    NewFlow {
        start: palisade_core::Timestamp(f.start_us),
        end: palisade_core::Timestamp(f.end_us),
        source: source.to_string(),
        protocol: f.protocol.clone(),
        src_ip: f.src_ip,
        src_port: f.src_port,
        dst_ip: f.dst_ip,
        dst_port: f.dst_port,
        orig_packets: f.orig.packets,
        orig_bytes: f.orig.bytes,
        resp_packets: f.resp.packets,
        resp_bytes: f.resp.bytes,
        orig_flags: f.orig.flags,
        resp_flags: f.resp.flags,
        state: f.state.clone(),
        app: f.app.protocol.clone(),
        app_by_port: f.app.by_port,
        detail,
    }
}

/// Where finished flows and device observations go, for file imports and live
/// captures alike: flow rows to the store, flow events (with `flow_id`, and `beacon`
/// for regular series) and a flow's HTTP request to the writer, devices merged into the
/// inventory, stored flows and changed devices to the live bus.
pub struct FlowSink {
    source: String,
    store: SharedStore,
    writer: Option<BatchWriter>,
    bus: Option<Arc<Bus>>,
    beacons: BeaconTracker,
    judge: Option<Arc<dyn FlowJudge>>,
    /// Flows stored.
    pub flows: u64,
    /// Devices new or changed.
    pub devices_changed: u64,
    /// Flows marked as part of a beacon series.
    pub beacon_flows: u64,
}

impl FlowSink {
    /// A sink naming `source` on every flow and event.
    pub fn new(
        source: String,
        store: SharedStore,
        writer: Option<BatchWriter>,
        bus: Option<Arc<Bus>>,
    ) -> FlowSink {
        FlowSink {
            source,
            store,
            writer,
            bus,
            beacons: BeaconTracker::new(100_000),
            judge: None,
            flows: 0,
            devices_changed: 0,
            beacon_flows: 0,
        }
    }

    /// The sink with a flow model judging every flow before it becomes an event.
    pub fn with_judge(mut self, judge: Option<Arc<dyn FlowJudge>>) -> FlowSink {
        self.judge = judge;
        self
    }

    /// Handles one batch.
    pub async fn handle(
        &mut self,
        mut batch: Vec<FlowRecord>,
        seen: Vec<Device>,
    ) -> Result<(), ImportError> {
        let source = self.source.as_str();
        batch.sort_by_key(|f| f.start_us);
        let rows: Vec<NewFlow> = batch.iter().map(|f| new_flow(f, source)).collect();
        let ids = if rows.is_empty() {
            Vec::new()
        } else {
            self.store.insert_flows(&rows).await?
        };
        self.flows += ids.len() as u64;
        if let Some(bus) = &self.bus {
            for (id, row) in ids.iter().zip(&rows) {
                bus.publish(
                    Topic::Flows,
                    &StoredFlow {
                        id: *id,
                        flow: row.clone(),
                    },
                );
            }
        }
        if let Some(w) = &self.writer
            && !batch.is_empty()
        {
            let mut events = Vec::with_capacity(batch.len());
            let mut verdicts = match &self.judge {
                Some(j) => j.judge(&batch).into_iter(),
                None => Vec::new().into_iter(),
            };
            for (f, id) in batch.iter().zip(&ids) {
                let flow_id = ("flow_id".to_string(), id.to_string());
                let mut e = flow_event(f, source);
                e.extra.push(flow_id.clone());
                e.extra.extend(verdicts.next().unwrap_or_default());
                if let Some(b) = self.beacons.observe(f) {
                    self.beacon_flows += 1;
                    e.extra.push(("beacon".into(), "true".into()));
                    e.extra
                        .push(("beacon_interval_s".into(), format!("{:.0}", b.interval_s)));
                    e.extra.push(("beacon_flows".into(), b.flows.to_string()));
                }
                events.push(e);
                if let Some(mut h) = http_event(f, source) {
                    h.extra.push(flow_id);
                    events.push(h);
                }
            }
            w.send(IngestBatch {
                events,
                dead_letters: Vec::new(),
                checkpoint: None,
                idempotency_key: None,
            })
            .await?;
        }
        if !seen.is_empty() {
            let changed = self.store.upsert_devices(&seen).await?;
            self.devices_changed += changed.len() as u64;
            if let Some(bus) = &self.bus {
                for d in &changed {
                    bus.publish(Topic::Devices, d);
                }
            }
        }
        Ok(())
    }
}

/// Imports one capture: flows to the store, flow events to `writer` (when given),
/// devices to the inventory, and both to the live `bus` (when given).
pub async fn import_capture(
    path: PathBuf,
    source: String,
    config: FlowConfig,
    store: SharedStore,
    writer: Option<BatchWriter>,
    bus: Option<Arc<Bus>>,
) -> Result<ImportSummary, ImportError> {
    import_capture_judged(path, source, config, store, writer, bus, None).await
}

/// [`import_capture`] with a flow model (`judge`) adding its verdict to each flow event.
pub async fn import_capture_judged(
    path: PathBuf,
    source: String,
    config: FlowConfig,
    store: SharedStore,
    writer: Option<BatchWriter>,
    bus: Option<Arc<Bus>>,
    judge: Option<Arc<dyn FlowJudge>>,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<FlowRecord>, Vec<Device>)>(4);
    let reader_path = path.clone();
    let devices = config
        .devices
        .then(|| DeviceTable::new(Oui::shared(), config.max_devices));
    let reading = tokio::task::spawn_blocking(move || {
        read_capture_with_devices(&reader_path, config, devices, |batch, seen| {
            // The receiver only goes away when the import failed; stop feeding it then.
            let _ = tx.blocking_send((batch, seen));
        })
    });
    let mut sink = FlowSink::new(source, store, writer, bus).with_judge(judge);
    while let Some((batch, seen)) = rx.recv().await {
        sink.handle(batch, seen).await?;
    }
    let stats = reading
        .await
        .map_err(|e| ImportError::Reader(e.to_string()))??;
    let elapsed_s = started.elapsed().as_secs_f64();
    let flows = sink.flows;
    tracing::info!(message = "Capture imported.", path = %path.display(), flows, packets = stats.packets, elapsed_s);
    Ok(ImportSummary {
        stats,
        flows,
        devices_changed: sink.devices_changed,
        beacon_flows: sink.beacon_flows,
        elapsed_s,
    })
}
