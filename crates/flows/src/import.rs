//! `palisade ingest FILE.pcap`: a capture's flows into the store, and into the pipeline
//! as `flow` events (so the behaviour scenarios judge them) plus, for flows carrying an
//! HTTP request, an `http` event (so the signature stage judges the request).
//!
//! Reading and decoding run on a blocking thread; finished flows cross to the async side
//! through a bounded channel (a slow store slows the reader, memory stays bounded by
//! the flow table plus a few batches). Each batch is stored as flow rows
//! ([`FlowStore::insert_flows`]) and handed to the [`BatchWriter`] as events, sorted by
//! start time so the scenarios see them in packet time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use palisade_sources::BatchWriter;
use palisade_store::{IngestBatch, NewFlow, SharedStore};

use crate::capture::{Stats, read_capture};
use crate::config::FlowConfig;
use crate::error::CaptureError;
use crate::event::{flow_event, http_event};
use crate::flow::FlowRecord;
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

/// Imports one capture: flows to the store, flow events to `writer` (when given).
pub async fn import_capture(
    path: PathBuf,
    source: String,
    config: FlowConfig,
    store: SharedStore,
    writer: Option<BatchWriter>,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<FlowRecord>>(4);
    let reader_path = path.clone();
    let reading = tokio::task::spawn_blocking(move || {
        read_capture(&reader_path, config, |batch| {
            // The receiver only goes away when the import failed; stop feeding it then.
            let _ = tx.blocking_send(batch);
        })
    });
    let mut flows = 0u64;
    while let Some(mut batch) = rx.recv().await {
        batch.sort_by_key(|f| f.start_us);
        let rows: Vec<NewFlow> = batch.iter().map(|f| new_flow(f, &source)).collect();
        flows += store.insert_flows(&rows).await?;
        if let Some(w) = &writer {
            let mut events = Vec::with_capacity(batch.len());
            for f in &batch {
                events.push(flow_event(f, &source));
                events.extend(http_event(f, &source));
            }
            w.send(IngestBatch {
                events,
                dead_letters: Vec::new(),
                checkpoint: None,
                idempotency_key: None,
            })
            .await?;
        }
    }
    let stats = reading
        .await
        .map_err(|e| ImportError::Reader(e.to_string()))??;
    let elapsed_s = started.elapsed().as_secs_f64();
    tracing::info!(message = "Capture imported.", path = %path.display(), flows, packets = stats.packets, elapsed_s);
    Ok(ImportSummary {
        stats,
        flows,
        elapsed_s,
    })
}
