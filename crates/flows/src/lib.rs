//! Packet captures → flows (issue 13, SPEC C11).
//!
//! `reader` frames pcap and pcapng files (magic-detected, gzip allowed); `decode` reads
//! link, IP and transport headers without ever panicking; `table` keeps bidirectional
//! flows and finishes each exactly once on packet-time timeouts, a close, or eviction
//! from a bounded table; `app` names the application protocol from the first payload
//! (DNS, HTTP, TLS with JA3/JA3S/JA4, SSH) or, failing that, the port. `event` turns a
//! flow into the pipeline's `Event` so the behaviour scenarios see it.
//!
//! Live capture from an interface is not here: it needs AF_PACKET sockets (unsafe code,
//! which the workspace denies) or libpcap.

pub mod app;
pub mod capture;
pub mod config;
pub mod decode;
pub mod error;
pub mod event;
pub mod flow;
pub mod import;
pub mod reader;
pub mod table;

pub use capture::{FlowBuilder, Stats, read_capture};
pub use config::FlowConfig;
pub use error::CaptureError;
pub use event::{flow_event, http_event};
pub use flow::FlowRecord;
