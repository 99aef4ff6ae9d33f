//! Engine state as data, so an attack that straddles a restart is still caught.
//!
//! A snapshot holds every live bucket with its evidence, the hash seed its keys were
//! made under and the engine clock. Buckets are filed by scenario name and restored only
//! into a scenario with the same fingerprint (type, parameters and keys), because a
//! changed scenario's old counts would mean something else. Field names are one or two
//! letters and defaults are omitted: a million buckets is tens of megabytes of JSON.

use std::net::IpAddr;

use palisade_core::Timestamp;
use palisade_core::net::{ip_from_key, ip_key};
use serde::{Deserialize, Serialize};

use crate::bucket::{Bucket, Extra, NO_ID};
use crate::engine::ScenarioEngine;
use crate::hash::Seed;
use crate::table::{GroupKey, Table};

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Why a snapshot could not be restored or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Written by a build with another format.
    #[error(
        "snapshot version {found} is not supported (this build reads version {SNAPSHOT_VERSION})"
    )]
    Version {
        /// The version found.
        found: u32,
    },
    /// Not a snapshot.
    #[error("invalid snapshot: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Serialisable engine state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version ([`SNAPSHOT_VERSION`]).
    pub version: u32,
    /// When it was taken, in log time (the engine clock).
    pub now: Option<Timestamp>,
    /// The hash seed the keys were made under.
    pub seed: [u64; 2],
    /// Buckets by scenario.
    pub scenarios: Vec<ScenarioState>,
}

/// One scenario's buckets, least recently touched first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioState {
    /// The scenario name.
    pub name: String,
    /// Its fingerprint when saved.
    pub fingerprint: u64,
    /// Its buckets.
    pub buckets: Vec<BucketState>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero32(v: &u32) -> bool {
    *v == 0
}

/// One bucket. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketState {
    /// The masked client address of the key, when the scenario groups by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Keyed hash of the other key fields.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub h: u64,
    /// Leaky: theoretical arrival time; counter: window start.
    pub a: i64,
    /// Episode start.
    pub f: i64,
    /// Latest event.
    pub l: i64,
    /// Blackhole end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<i64>,
    /// First event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i: Option<i64>,
    /// Events in the episode.
    pub e: u32,
    /// Counted events or distinct values.
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub c: u32,
    /// Suppressed events.
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub s: u32,
    /// Evidence event ids, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<i64>,
    /// Samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sm: Vec<String>,
    /// Distinct values: (hash, last seen).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub d: Vec<(u64, i64)>,
}

impl Snapshot {
    /// JSON bytes, for a file or the store's settings table.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data into memory cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads JSON bytes written by [`Snapshot::to_json`], checking the version.
    pub fn from_json(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let snap: Snapshot = serde_json::from_slice(bytes)?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: snap.version,
            });
        }
        Ok(snap)
    }

    /// Buckets in the snapshot.
    pub fn buckets(&self) -> usize {
        self.scenarios.iter().map(|s| s.buckets.len()).sum()
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreReport {
    /// Buckets restored.
    pub restored: usize,
    /// Buckets dropped: their scenario is gone or changed, or the cap was reached.
    pub dropped: usize,
}

impl ScenarioEngine {
    /// The engine's state: every live bucket with its evidence.
    pub fn snapshot(&self) -> Snapshot {
        let mut scenarios: Vec<ScenarioState> = self
            .scenarios
            .iter()
            .map(|c| ScenarioState {
                name: c.sc.name.clone(),
                fingerprint: c.fingerprint,
                buckets: Vec::new(),
            })
            .collect();
        for slot in self.table.iter() {
            let Some(c) = self.scenarios.get(usize::from(slot.key.scenario)) else {
                continue;
            };
            let Some(state) = scenarios.get_mut(usize::from(slot.key.scenario)) else {
                continue;
            };
            let b = &slot.bucket;
            let ex = b.extra.as_deref();
            state.buckets.push(BucketState {
                ip: c
                    .sc
                    .ip_field()
                    .and_then(|_| ip_from_key(&u128::from_le_bytes(slot.key.ip).to_be_bytes())),
                h: slot.key.h,
                a: b.anchor,
                f: b.first_ts,
                l: b.last_ts,
                q: (b.quiet_until != i64::MIN).then_some(b.quiet_until),
                i: (b.first_id != NO_ID).then_some(b.first_id),
                e: b.events,
                c: b.counted,
                s: b.suppressed,
                ids: ex.map(Extra::ids_in_order).unwrap_or_default(),
                sm: ex
                    .map(|e| e.samples.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                d: ex.map(|e| e.distinct.clone()).unwrap_or_default(),
            });
        }
        scenarios.retain(|s| !s.buckets.is_empty());
        Snapshot {
            version: SNAPSHOT_VERSION,
            now: self.now(),
            seed: self.seed.0,
            scenarios,
        }
    }

    /// Replaces the engine's state with a snapshot's. Buckets of scenarios that no longer
    /// exist or whose definition changed are dropped; so are the least recently touched
    /// ones beyond the bucket cap.
    pub fn restore(&mut self, snap: Snapshot) -> Result<RestoreReport, SnapshotError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: snap.version,
            });
        }
        self.meters.buckets.add(-(self.table.len() as i64));
        self.seed = Seed(snap.seed);
        self.table = Table::new(self.scenarios.len(), self.seed);
        self.now = snap.now.map_or(i64::MIN, Timestamp::as_micros);
        let mut report = RestoreReport::default();
        let max = self.config.max_buckets.max(1);
        let max_ids = self.config.max_evidence_ids;
        for state in snap.scenarios {
            let target = self
                .scenarios
                .iter()
                .position(|c| c.sc.name == state.name && c.fingerprint == state.fingerprint);
            let Some(si) = target else {
                report.dropped += state.buckets.len();
                continue;
            };
            for bs in state.buckets {
                if self.table.len() >= max
                    && let Some(old) = self.table.oldest()
                {
                    self.table.remove(old);
                    report.dropped += 1;
                    report.restored -= 1;
                }
                let key = GroupKey {
                    ip: bs
                        .ip
                        .map(|ip| u128::from_be_bytes(ip_key(ip)).to_le_bytes())
                        .unwrap_or([0; 16]),
                    h: bs.h,
                    scenario: si as u16,
                };
                let extra = if bs.ids.is_empty() && bs.sm.is_empty() && bs.d.is_empty() {
                    None
                } else {
                    let mut ex = Extra {
                        samples: bs.sm.into_iter().map(Into::into).collect(),
                        distinct: bs.d,
                        ..Extra::default()
                    };
                    for id in bs.ids {
                        ex.push_id(id, max_ids);
                    }
                    Some(Box::new(ex))
                };
                let bucket = Bucket {
                    anchor: bs.a,
                    first_ts: bs.f,
                    last_ts: bs.l,
                    quiet_until: bs.q.unwrap_or(i64::MIN),
                    first_id: bs.i.unwrap_or(NO_ID),
                    events: bs.e,
                    counted: bs.c,
                    suppressed: bs.s,
                    extra,
                };
                if self.table.get(&key).is_some() {
                    report.dropped += 1;
                    continue;
                }
                self.table.insert(key, bucket);
                report.restored += 1;
            }
        }
        self.meters.buckets.add(self.table.len() as i64);
        Ok(report)
    }
}
