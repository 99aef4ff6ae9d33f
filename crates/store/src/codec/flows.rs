//! Flow rows to and from [`NewFlow`](crate::NewFlow).

use std::net::IpAddr;

use palisade_core::Timestamp;
use palisade_core::net::ip_key;

use crate::{NewFlow, StoreError, StoredFlow};

/// The columns a listing selects, in [`FlowColumns`] order.
pub(crate) const FLOW_SELECT_COLUMNS: &str = "id, start_ts, end_ts, source, protocol, src_ip, src_port, dst_ip, \
     dst_port, orig_packets, orig_bytes, resp_packets, resp_bytes, orig_flags, resp_flags, state, app, \
     app_by_port, detail";

/// The insert statement's column list (18 values after the id).
pub(crate) const FLOW_INSERT_COLUMNS: &str = "start_ts, end_ts, source, protocol, src_ip, src_key, src_port, dst_ip, \
     dst_key, dst_port, orig_packets, orig_bytes, resp_packets, resp_bytes, orig_flags, resp_flags, state, app, \
     app_by_port, detail";

/// A row as read.
pub(crate) struct FlowColumns {
    pub id: i64,
    pub start_ts: i64,
    pub end_ts: i64,
    pub source: String,
    pub protocol: String,
    pub src_ip: String,
    pub src_port: i64,
    pub dst_ip: String,
    pub dst_port: i64,
    pub counts: [i64; 6],
    pub state: String,
    pub app: Option<String>,
    pub app_by_port: i64,
    pub detail: String,
}

/// A row to write.
pub(crate) struct FlowColumnsIn {
    pub start_ts: i64,
    pub end_ts: i64,
    pub source: String,
    pub protocol: String,
    pub src_ip: String,
    pub src_key: Vec<u8>,
    pub src_port: i64,
    pub dst_ip: String,
    pub dst_key: Vec<u8>,
    pub dst_port: i64,
    pub counts: [i64; 6],
    pub state: String,
    pub app: Option<String>,
    pub app_by_port: i64,
    pub detail: String,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl FlowColumnsIn {
    pub(crate) fn new(f: &NewFlow) -> FlowColumnsIn {
        let clean = |s: &str| crate::codec::clean(s).into_owned();
        FlowColumnsIn {
            start_ts: f.start.as_micros(),
            end_ts: f.end.as_micros(),
            source: clean(&f.source),
            protocol: clean(&f.protocol),
            src_ip: f.src_ip.to_string(),
            src_key: ip_key(f.src_ip).to_vec(),
            src_port: i64::from(f.src_port),
            dst_ip: f.dst_ip.to_string(),
            dst_key: ip_key(f.dst_ip).to_vec(),
            dst_port: i64::from(f.dst_port),
            counts: [
                clamp(f.orig_packets),
                clamp(f.orig_bytes),
                clamp(f.resp_packets),
                clamp(f.resp_bytes),
                i64::from(f.orig_flags),
                i64::from(f.resp_flags),
            ],
            state: clean(&f.state),
            app: f.app.as_deref().map(clean),
            app_by_port: i64::from(f.app_by_port),
            detail: clean(&f.detail.to_string()),
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Database(format!("corrupt flow row: {what}"))
}

impl FlowColumns {
    pub(crate) fn into_flow(self) -> Result<StoredFlow, StoreError> {
        let ip = |s: &str| s.parse::<IpAddr>().map_err(|_| corrupt("address"));
        let port = |v: i64| u16::try_from(v).map_err(|_| corrupt("port"));
        let count = |v: i64| u64::try_from(v).map_err(|_| corrupt("count"));
        let flags = |v: i64| u8::try_from(v).map_err(|_| corrupt("flags"));
        let [op, ob, rp, rb, of, rf] = self.counts;
        Ok(StoredFlow {
            id: self.id,
            flow: NewFlow {
                start: Timestamp(self.start_ts),
                end: Timestamp(self.end_ts),
                source: self.source,
                protocol: self.protocol,
                src_ip: ip(&self.src_ip)?,
                src_port: port(self.src_port)?,
                dst_ip: ip(&self.dst_ip)?,
                dst_port: port(self.dst_port)?,
                orig_packets: count(op)?,
                orig_bytes: count(ob)?,
                resp_packets: count(rp)?,
                resp_bytes: count(rb)?,
                orig_flags: flags(of)?,
                resp_flags: flags(rf)?,
                state: self.state,
                app: self.app,
                app_by_port: self.app_by_port != 0,
                detail: serde_json::from_str(&self.detail).map_err(|_| corrupt("detail"))?,
            },
        })
    }
}
