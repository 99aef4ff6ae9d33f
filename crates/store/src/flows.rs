//! [`FlowStore`]: network flows read from packet captures (issue 13).
//!
//! A flow row carries its filter columns (time, addresses as 16-byte keys, ports,
//! protocol, application, state) beside a JSON `detail` with the rest (DNS names, HTTP
//! and TLS details, JA3/JA4, MACs), so the schema stays put while identification grows.

use std::net::IpAddr;

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::net::IpNet;
use serde::Serialize;

use crate::{Cursor, Page, StoreError};

/// A flow to store.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NewFlow {
    /// First packet.
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// Last packet.
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
    /// Where it came from (the capture's name).
    pub source: String,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or the protocol number.
    pub protocol: String,
    /// Originator address.
    #[schema(value_type = String)]
    pub src_ip: IpAddr,
    /// Originator port.
    pub src_port: u16,
    /// Responder address.
    #[schema(value_type = String)]
    pub dst_ip: IpAddr,
    /// Responder port.
    pub dst_port: u16,
    /// Packets originator → responder.
    pub orig_packets: u64,
    /// IP bytes originator → responder.
    pub orig_bytes: u64,
    /// Packets responder → originator.
    pub resp_packets: u64,
    /// IP bytes responder → originator.
    pub resp_bytes: u64,
    /// TCP flags seen from the originator.
    pub orig_flags: u8,
    /// TCP flags seen from the responder.
    pub resp_flags: u8,
    /// Zeek connection state (`S0`, `SF`, `REJ` …).
    pub state: String,
    /// Application protocol.
    pub app: Option<String>,
    /// True when `app` was guessed from the port only.
    pub app_by_port: bool,
    /// Everything else (application details, MACs, why the flow ended), as JSON.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A stored flow.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredFlow {
    /// Row id.
    pub id: i64,
    /// The flow.
    #[serde(flatten)]
    pub flow: NewFlow,
}

/// Filters for listing flows, newest first (keyset on `(start, id)`).
#[derive(Debug, Clone, Default)]
pub struct FlowQuery {
    /// Flows starting at or after.
    pub from: Option<Timestamp>,
    /// Flows starting before.
    pub to: Option<Timestamp>,
    /// Either endpoint inside this network.
    pub ip: Option<IpNet>,
    /// Either endpoint's port.
    pub port: Option<u16>,
    /// Transport protocol.
    pub protocol: Option<String>,
    /// Application protocol.
    pub app: Option<String>,
    /// Connection state.
    pub state: Option<String>,
    /// Flows with either endpoint at one of this device's addresses.
    pub device: Option<i64>,
    /// Only flows some threat was raised over (`true`) or none was (`false`).
    pub has_threat: Option<bool>,
    /// Page position.
    pub cursor: Option<Cursor>,
    /// Page size (clamped to 1..=1000).
    pub limit: u32,
}

/// Flow records.
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// Stores flows in one transaction; returns their ids, in order (flow events and
    /// the live feed point at them).
    async fn insert_flows(&self, flows: &[NewFlow]) -> Result<Vec<i64>, StoreError>;

    /// One page of flows.
    async fn list_flows(&self, q: &FlowQuery) -> Result<Page<StoredFlow>, StoreError>;

    /// One flow by id.
    async fn get_flow(&self, id: i64) -> Result<Option<StoredFlow>, StoreError>;
}
