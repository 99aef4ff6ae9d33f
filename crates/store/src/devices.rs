//! [`DeviceStore`]: the network device inventory built from packet captures (issue 13),
//! the links between flows and the threats raised over them, and flow analytics.
//!
//! A device is keyed by its MAC (`mac:aa:bb:cc:dd:ee:ff`) or, where no MAC was seen, its
//! address (`ip:192.0.2.7`). What a capture saw of a device is a [`Device`] too; storing
//! it merges it into the stored one ([`Device::merge`], the same on both backends): sets
//! grow (bounded), first/last seen widen, newer guesses replace older ones. The full
//! device is kept as JSON beside the columns the filters use, and its addresses in
//! `device_addrs` so that an address or CIDR finds it (and its flows) by index.

use std::net::IpAddr;

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::net::IpNet;
use serde::{Deserialize, Serialize};

use crate::{Cursor, Page, StoreError};

/// Most values kept per set (addresses, host names, fingerprints, services …).
pub const DEVICE_SET_CAP: usize = 32;

/// One device as seen on the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    /// `mac:<mac>` or `ip:<address>`.
    pub key: String,
    /// Its MAC, lower-case with colons, when seen.
    #[serde(default)]
    pub mac: Option<String>,
    /// The MAC's vendor from the IEEE OUI registry (none when the registry is absent or
    /// the MAC is locally administered / randomised).
    #[serde(default)]
    pub vendor: Option<String>,
    /// First packet seen from or to it.
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    /// Last packet seen.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Addresses it used.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub ips: Vec<IpAddr>,
    /// Names from DHCP (options 12 and 81), mDNS, NBNS and DNS answers.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Best operating-system guess (DHCP options first, then the initial TTL).
    #[serde(default)]
    pub os_guess: Option<String>,
    /// What the guess rests on (`dhcp-vendor:MSFT 5.0`, `dhcp-params:1,3,6,…`, `ttl:128`).
    #[serde(default)]
    pub os_hints: Vec<String>,
    /// TLS client fingerprints (JA4) of its connections.
    #[serde(default)]
    pub ja4: Vec<String>,
    /// TLS client fingerprints (JA3).
    #[serde(default)]
    pub ja3: Vec<String>,
    /// SSH client fingerprints (HASSH).
    #[serde(default)]
    pub hassh: Vec<String>,
    /// HTTP User-Agent values it sent.
    #[serde(default)]
    pub user_agents: Vec<String>,
    /// Services it answered, as `tcp/22 ssh` or `udp/53 dns`.
    #[serde(default)]
    pub services: Vec<String>,
    /// Flows it took part in.
    #[serde(default)]
    pub flows: u64,
    /// IP bytes of those flows (both directions).
    #[serde(default)]
    pub bytes: u64,
}

fn union<T: PartialEq + Clone>(into: &mut Vec<T>, from: &[T]) -> bool {
    let mut changed = false;
    for v in from {
        if into.len() >= DEVICE_SET_CAP {
            break;
        }
        if !into.contains(v) {
            into.push(v.clone());
            changed = true;
        }
    }
    changed
}

impl Device {
    /// A device seen for the first time at `ts`.
    pub fn new(key: String, ts: Timestamp) -> Device {
        Device {
            key,
            first_seen: ts,
            last_seen: ts,
            ..Device::default()
        }
    }

    /// Merges a newer observation of the same device; true when anything but the
    /// counters and last-seen time changed (a change worth announcing).
    pub fn merge(&mut self, o: &Device) -> bool {
        let mut changed = false;
        self.first_seen = self.first_seen.min(o.first_seen);
        self.last_seen = self.last_seen.max(o.last_seen);
        for (mine, theirs) in [(&mut self.mac, &o.mac), (&mut self.vendor, &o.vendor)] {
            if mine.is_none() && theirs.is_some() {
                mine.clone_from(theirs);
                changed = true;
            }
        }
        if o.os_guess.is_some() && self.os_guess != o.os_guess {
            // A DHCP-based guess outranks a TTL-based one; never the other way round.
            let theirs_dhcp = o.os_hints.iter().any(|h| h.starts_with("dhcp"));
            let mine_dhcp = self.os_hints.iter().any(|h| h.starts_with("dhcp"));
            if self.os_guess.is_none() || theirs_dhcp || !mine_dhcp {
                self.os_guess.clone_from(&o.os_guess);
                changed = true;
            }
        }
        changed |= union(&mut self.ips, &o.ips);
        changed |= union(&mut self.hostnames, &o.hostnames);
        changed |= union(&mut self.os_hints, &o.os_hints);
        changed |= union(&mut self.ja4, &o.ja4);
        changed |= union(&mut self.ja3, &o.ja3);
        changed |= union(&mut self.hassh, &o.hassh);
        changed |= union(&mut self.user_agents, &o.user_agents);
        changed |= union(&mut self.services, &o.services);
        self.flows = self.flows.saturating_add(o.flows);
        self.bytes = self.bytes.saturating_add(o.bytes);
        changed
    }
}

/// A stored device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredDevice {
    /// Row id.
    pub id: i64,
    /// The device.
    #[serde(flatten)]
    pub device: Device,
}

/// Filters for listing devices, most recently seen first (keyset on `(last_seen, id)`).
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    /// Seen at or after.
    pub from: Option<Timestamp>,
    /// Seen before (by last seen).
    pub to: Option<Timestamp>,
    /// One of its addresses inside this network.
    pub ip: Option<IpNet>,
    /// Exact MAC (lower-case, colons).
    pub mac: Option<String>,
    /// Vendor containing this text (case-insensitive).
    pub vendor: Option<String>,
    /// A host name containing this text (case-insensitive).
    pub hostname: Option<String>,
    /// OS guess containing this text (case-insensitive).
    pub os: Option<String>,
    /// Page position.
    pub cursor: Option<Cursor>,
    /// Page size (clamped to 1..=1000).
    pub limit: u32,
}

/// Filters of flow analytics.
#[derive(Debug, Clone, Copy)]
pub struct FlowAnalyticsQuery {
    /// Flows starting at or after.
    pub from: Timestamp,
    /// Flows starting before.
    pub to: Timestamp,
    /// Width of a time bucket, seconds (≥ 1).
    pub bucket_secs: i64,
    /// Rows of each top list.
    pub top: u32,
}

/// Traffic under one label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrafficCount {
    /// Address, protocol, application, or bucket start (RFC 3339).
    pub key: String,
    /// Flows.
    pub flows: u64,
    /// Packets, both directions.
    pub packets: u64,
    /// IP bytes, both directions.
    pub bytes: u64,
}

/// Flow analytics over a period, computed in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FlowAnalytics {
    /// Addresses by bytes sent and received, most first.
    pub top_talkers: Vec<TrafficCount>,
    /// Transport protocols by bytes.
    pub protocols: Vec<TrafficCount>,
    /// Application protocols by bytes (`unknown` for unidentified flows).
    pub applications: Vec<TrafficCount>,
    /// Per time bucket (by flow start), oldest first, only buckets with flows.
    pub over_time: Vec<TrafficCount>,
}

/// Devices, flow ↔ threat links and flow analytics.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Merges observations into the inventory (one transaction); returns the merged
    /// devices whose identity, names, fingerprints or services changed (for the live
    /// feed), new ones included.
    async fn upsert_devices(&self, seen: &[Device]) -> Result<Vec<StoredDevice>, StoreError>;

    /// One page of devices.
    async fn list_devices(&self, q: &DeviceQuery) -> Result<Page<StoredDevice>, StoreError>;

    /// One device by id.
    async fn get_device(&self, id: i64) -> Result<Option<StoredDevice>, StoreError>;

    /// Records that threats were raised over flows (`(flow_id, threat_id)`, duplicates
    /// ignored).
    async fn link_flow_threats(&self, links: &[(i64, i64)]) -> Result<(), StoreError>;

    /// Threat ids raised over a flow, newest first.
    async fn flow_threat_ids(&self, flow_id: i64) -> Result<Vec<i64>, StoreError>;

    /// Threat ids raised over flows of a device, newest first, at most `limit`.
    async fn device_threat_ids(&self, device_id: i64, limit: u32) -> Result<Vec<i64>, StoreError>;

    /// Top talkers, protocols, applications and bytes over time.
    async fn flow_analytics(&self, q: &FlowAnalyticsQuery) -> Result<FlowAnalytics, StoreError>;
}

/// A device's column values as written: `(mac, vendor, hostnames, os, first_seen,
/// last_seen, detail)`.
pub(crate) type DeviceColumns = (
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
    String,
);

/// The columns of a device row.
pub(crate) fn device_columns(d: &Device) -> DeviceColumns {
    let clean = |s: &str| crate::codec::clean(s).into_owned();
    (
        d.mac.as_deref().map(clean),
        d.vendor.as_deref().map(clean),
        clean(&d.hostnames.join(" ")),
        d.os_guess.as_deref().map(clean),
        d.first_seen.as_micros(),
        d.last_seen.as_micros(),
        clean(&serde_json::to_string(d).unwrap_or_else(|_| "{}".into())),
    )
}

/// A device read back from its JSON column.
pub(crate) fn device_from_detail(id: i64, detail: &str) -> Result<StoredDevice, StoreError> {
    let device: Device = serde_json::from_str(detail)
        .map_err(|e| StoreError::Corrupt(format!("device {id}: {e}")))?;
    Ok(StoredDevice { id, device })
}

/// The batch with observations of the same device merged, first appearance order.
pub(crate) fn merge_batch(seen: &[Device]) -> Vec<Device> {
    let mut out: Vec<Device> = Vec::with_capacity(seen.len());
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for d in seen {
        match index.get(&d.key) {
            Some(&i) => {
                if let Some(existing) = out.get_mut(i) {
                    existing.merge(d);
                }
            }
            None => {
                index.insert(d.key.clone(), out.len());
                out.push(d.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_widens_times_unions_sets_and_reports_changes() {
        let mut a = Device::new("mac:00:11:32:17:49:f0".into(), Timestamp(100));
        a.ips = vec!["10.0.0.5".parse().unwrap()];
        a.os_guess = Some("Linux".into());
        a.os_hints = vec!["ttl:64".into()];
        a.flows = 2;
        let mut b = Device::new(a.key.clone(), Timestamp(50));
        b.last_seen = Timestamp(500);
        b.ips = vec!["10.0.0.5".parse().unwrap(), "10.0.0.6".parse().unwrap()];
        b.os_guess = Some("Windows".into());
        b.os_hints = vec!["dhcp-vendor:MSFT 5.0".into()];
        b.flows = 3;
        assert!(a.merge(&b));
        assert_eq!(
            (a.first_seen, a.last_seen, a.flows),
            (Timestamp(50), Timestamp(500), 5)
        );
        assert_eq!(a.ips.len(), 2);
        assert_eq!(a.os_guess.as_deref(), Some("Windows"));
        // A TTL-only guess never replaces a DHCP one.
        let mut c = Device::new(a.key.clone(), Timestamp(600));
        c.os_guess = Some("Linux".into());
        c.os_hints = vec!["ttl:64".into()];
        a.merge(&c);
        assert_eq!(a.os_guess.as_deref(), Some("Windows"));
        // Only counters and times: no change worth announcing.
        let mut d = Device::new(a.key.clone(), Timestamp(700));
        d.flows = 1;
        assert!(!a.merge(&d));
        let many: Vec<String> = (0..100).map(|i| format!("h{i}")).collect();
        let e = Device {
            hostnames: many,
            ..Device::new(a.key.clone(), Timestamp(1))
        };
        a.merge(&e);
        assert_eq!(a.hostnames.len(), DEVICE_SET_CAP);
    }
}
