//! Packet captures → flows (issue 13, SPEC C11).
//!
//! `reader` frames pcap and pcapng files (magic-detected, gzip allowed); `decode` reads
//! link, IP and transport headers without ever panicking; `table` keeps bidirectional
//! flows and finishes each exactly once on packet-time timeouts, a close, or eviction
//! from a bounded table; `app` names the application protocol from the first payload
//! (DNS, HTTP, TLS with JA3/JA3S/JA4, SSH) or, failing that, the port. `event` turns a
//! flow into the pipeline's `Event` so the behaviour scenarios see it.
//!
//! `device` keeps the inventory of local hosts the packets and flows show (MAC vendor,
//! addresses, names, OS guess, fingerprints, services); `beacon` spots connections
//! repeated at regular intervals; `threat_links` points threats raised over flow events
//! at their flows.
//!
//! `judge` lets a flow model (palisade-models) add its verdict to flow events.
//!
//! `live` captures from an interface (`[[capture]]`, cargo feature `capture`, libpcap).

pub mod app;
pub mod beacon;
pub mod capture;
pub mod config;
pub mod decode;
pub mod device;
pub mod error;
pub mod event;
pub mod flow;
pub mod import;
pub mod judge;
pub mod live;
pub mod reader;
pub mod table;
pub mod threat_links;

pub use capture::{FlowBuilder, Stats, read_capture, read_capture_with_devices};
pub use config::FlowConfig;
pub use error::CaptureError;
pub use event::{flow_event, http_event};
pub use flow::FlowRecord;
pub use judge::FlowJudge;
