//! Live capture from a network interface (`[[capture]]`), behind the `capture` cargo
//! feature because it links libpcap (Debian `libpcap-dev` to build, `libpcap0.8` to
//! run); the workspace denies unsafe code, so the unsafe FFI stays inside the `pcap`
//! crate.
//!
//! **Privilege:** opening an interface needs `CAP_NET_RAW` (and `CAP_NET_ADMIN` for
//! promiscuous mode): run as root, or grant the binary
//! `setcap cap_net_raw,cap_net_admin=eip /usr/local/bin/palisade`. Without it the
//! capture reports exactly that (status `failed`, in health and the log) and retries
//! with backoff; the rest of the service runs on.
//!
//! Each capture runs on its own thread: packets → decoders → flow table (expired on the
//! clock every second, so quiet flows end) → batches of finished flows and device
//! observations over a bounded channel to the [`FlowSink`](crate::import::FlowSink)
//! (store, pipeline events, inventory, live bus). A full channel drops the batch and
//! counts the flows (ours); the kernel's drops come from libpcap's statistics. Both are
//! in `/metrics` (`palisade_capture_*`) and in [`statuses`] (health).

#[cfg(feature = "capture")]
mod pcap_source;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use palisade_core::config::{ConfigProblem, Validate, check_range};
use serde::{Deserialize, Serialize};

#[cfg(feature = "capture")]
pub use pcap_source::start;

/// True when this binary was built with live capture.
pub const CAPTURE_BUILT: bool = cfg!(feature = "capture");

/// `[[capture]]`: one interface to capture from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// The interface (`eth0`, `lo`, `any`).
    pub interface: String,
    /// A BPF filter in tcpdump syntax (`not port 22`); empty captures everything.
    #[serde(default)]
    pub filter: Option<String>,
    /// Bytes kept of each packet (headers and the first payload bytes are enough for
    /// flows and application identification).
    #[serde(default = "default_snaplen")]
    pub snap_length: u32,
    /// Put the interface in promiscuous mode (needs CAP_NET_ADMIN).
    #[serde(default)]
    pub promiscuous: bool,
    /// Kernel buffer, MiB: a larger one rides out bursts (fewer kernel drops).
    #[serde(default = "default_buffer")]
    pub buffer_mib: u32,
    /// The source name of its flows and events (default `capture:<interface>`).
    #[serde(default)]
    pub name: Option<String>,
}

fn default_snaplen() -> u32 {
    2048
}

fn default_buffer() -> u32 {
    16
}

impl CaptureConfig {
    /// The source name.
    pub fn source_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("capture:{}", self.interface))
    }
}

impl Validate for CaptureConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.interface.trim().is_empty()
            || self.interface.len() > 64
            || self.interface.chars().any(|c| c.is_control() || c == '/')
        {
            problems.push(ConfigProblem::new(
                "interface",
                "must name a network interface (eth0, lo, any)",
            ));
        }
        check_range(&mut problems, "snap_length", self.snap_length, 64..=262_144);
        check_range(&mut problems, "buffer_mib", self.buffer_mib, 1..=1024);
        if self.filter.as_deref().is_some_and(|f| f.len() > 4096) {
            problems.push(ConfigProblem::new("filter", "longer than 4096 bytes"));
        }
        problems
    }
}

/// One capture as health shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaptureStatus {
    /// The interface.
    pub interface: String,
    /// `starting`, `capturing`, `failed` (see `error`) or `stopped`.
    pub state: String,
    /// Why it failed (for a missing privilege: what to grant).
    pub error: Option<String>,
    /// Packets received.
    pub packets: u64,
    /// Packets per second over the last second.
    pub packets_per_s: f64,
    /// Packets the kernel dropped (buffer full), by libpcap's count.
    pub kernel_drops: u64,
    /// Packets the interface or driver dropped, by libpcap's count.
    pub interface_drops: u64,
    /// Finished flows we dropped because the store side fell behind.
    pub our_drops: u64,
    /// Flows finished.
    pub flows: u64,
}

fn registry() -> &'static Mutex<Vec<Arc<Mutex<CaptureStatus>>>> {
    static STATUSES: OnceLock<Mutex<Vec<Arc<Mutex<CaptureStatus>>>>> = OnceLock::new();
    STATUSES.get_or_init(|| Mutex::new(Vec::new()))
}

/// A new status entry for a capture (listed by [`statuses`]).
pub fn register(interface: &str) -> Arc<Mutex<CaptureStatus>> {
    let status = Arc::new(Mutex::new(CaptureStatus {
        interface: interface.to_string(),
        state: "starting".into(),
        ..CaptureStatus::default()
    }));
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(status.clone());
    status
}

/// Every capture's status, in start order.
pub fn statuses() -> Vec<CaptureStatus> {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
        .collect()
}

/// libpcap's error for an interface, made actionable: a missing privilege says which
/// capability to grant.
pub fn explain_open_error(interface: &str, error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    if lower.contains("permitted") || lower.contains("permission") {
        format!(
            "capturing on {interface} needs the CAP_NET_RAW capability (and CAP_NET_ADMIN for promiscuous mode): \
             run as root or `setcap cap_net_raw,cap_net_admin=eip <palisade binary>` ({error})"
        )
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        format!("there is no interface {interface} ({error}); `ip link` lists them")
    } else {
        format!("cannot capture on {interface}: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_problems_and_clear_errors() {
        let mut c: CaptureConfig = toml::from_str("interface = \"eth0\"").unwrap();
        assert!(c.finish().is_empty());
        assert_eq!(
            (c.snap_length, c.buffer_mib, c.promiscuous),
            (2048, 16, false)
        );
        assert_eq!(c.source_name(), "capture:eth0");
        let mut bad: CaptureConfig = toml::from_str("interface = \"\"\nsnap_length = 10").unwrap();
        let keys: Vec<String> = bad.finish().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            vec!["interface".to_string(), "snap_length".to_string()]
        );
        assert!(toml::from_str::<CaptureConfig>("interface = \"lo\"\nbpf = \"x\"").is_err());
        let e = explain_open_error("eth0", "socket: Operation not permitted");
        assert!(e.contains("CAP_NET_RAW") && e.contains("setcap"), "{e}");
        let e = explain_open_error("nope0", "nope0: No such device exists");
        assert!(e.contains("no interface nope0"), "{e}");
    }
}
