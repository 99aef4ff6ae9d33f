//! The inspector's judgement of one slice of a large group in two steps (issue 16), so
//! that the per-endpoint baselines learn in event order whichever thread judges which
//! slice: [`judge`] does what reads no learnt state (the request rebuilt, the engine's
//! parse and rules, the model) on any thread, and keeps per request only what the
//! baselines read of it (its endpoint key, a copy of its argument parts, its status);
//! [`settle`] then runs the baselines' observation and builds the threats, slice after
//! slice in order ([`super::in_order::InOrder`]). The baselines' state after a group
//! is then what judging its events one by one in id order gives, which is what the
//! replay of a resumed import does (`resume.rs`), so a killed and resumed import and an
//! uninterrupted one learn, and so judge, alike.

use std::ops::Range;
use std::sync::Mutex;

use palisade_core::Event;
use palisade_core::threat::Threat;
use palisade_detect::{HttpRequest, Part};
use palisade_models::baseline::{Args, argument_parts, parameters, route::endpoint_key};

use super::inspector::judged_live;
use crate::guard::{Front, Inspected, Inspection, Policy, RequestAt};

/// What [`settle`] reads of one request, kept by [`judge`].
struct Pending {
    /// The event's place in the group's events.
    index: usize,
    /// The verdict before the baselines' part.
    inspected: Inspected,
    /// The request's endpoint key.
    endpoint: String,
    /// Its arguments.
    args: KeptArgs,
}

/// A request's arguments as [`judge`] keeps them.
enum KeptArgs {
    /// Its argument parts, copied into the slice's [`Judged::parts`].
    Parts(Range<usize>),
    /// Its parameters, read from the request (the engine's parse was not reusable).
    Read(Vec<(String, String)>),
}

/// One slice judged but for the baselines' part.
pub(crate) struct Judged {
    /// The requests waiting for the baselines, in event order.
    pending: Vec<Pending>,
    /// Their argument parts, one after another (reused from slice to slice: [`PartsPool`];
    /// those past the last request's are left from earlier slices).
    parts: Vec<Part>,
    /// The threats found already (without baselines, every one is found here).
    threats: Vec<Threat>,
}

impl Judged {
    /// A slice whose judgement failed: nothing to settle, no threat.
    pub(crate) fn failed() -> Judged {
        Judged {
            pending: Vec::new(),
            parts: Vec::new(),
            threats: Vec::new(),
        }
    }
}

/// Buffers of copied argument parts, handed from settled slices to the next judged
/// ones, so that a warm inspector copies parts without allocating: each part's strings
/// keep their capacity.
#[derive(Default)]
pub(crate) struct PartsPool {
    kept: Mutex<Vec<Vec<Part>>>,
}

/// Buffers kept in a [`PartsPool`]: about the slices one group has in flight.
const POOLED: usize = 16;
/// A copied part's string longer than this is not kept for reuse (a long value seen
/// once would otherwise keep its memory in every slot it passed through).
const KEPT_CAPACITY: usize = 256;

impl PartsPool {
    fn take(&self) -> Vec<Part> {
        self.lock().pop().unwrap_or_default()
    }

    fn give(&self, mut parts: Vec<Part>) {
        for p in &mut parts {
            if p.name.capacity() > KEPT_CAPACITY {
                p.name = String::new();
            }
            if p.value.capacity() > KEPT_CAPACITY {
                p.value = String::new();
            }
        }
        let mut kept = self.lock();
        if kept.len() < POOLED {
            kept.push(parts);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Part>>> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Judges the events `events[from..to]` but for the baselines' part (see the module
/// documentation); without baselines, judges them wholly.
pub(crate) fn judge(
    policy: &Policy<'_>,
    events: &[(i64, &Event)],
    range: Range<usize>,
    pool: &PartsPool,
) -> Judged {
    let baselines = policy.baselines().is_some();
    let mut judged = Judged {
        pending: Vec::with_capacity(if baselines { range.len() } else { 0 }),
        parts: if baselines { pool.take() } else { Vec::new() },
        threats: Vec::new(),
    };
    let mut used = 0usize;
    let mut request = HttpRequest::default();
    for index in range {
        let Some(&(id, event)) = events.get(index) else {
            break;
        };
        if judged_live(event) || !request.refill_from_log_event(event) {
            continue;
        }
        let front = Front::Log {
            source: &event.source,
            event_id: id,
            ts: event.ts,
        };
        let (inspected, parsed) = match policy.inspect(&request, front) {
            // A log line is never refused (bans apply to live fronts only).
            Inspection::Refused(_) => continue,
            Inspection::Inspected(inspected, parsed) => (inspected, parsed),
        };
        if !baselines {
            let (_, threat) =
                policy.settle(inspected, None, &mut RequestAt::Given(&request), front);
            judged.threats.extend(threat);
            continue;
        }
        let args = match &parsed {
            Some(parsed) => {
                let start = used;
                for p in argument_parts(&parsed.parts) {
                    match judged.parts.get_mut(used) {
                        Some(kept) => {
                            kept.location = p.location;
                            kept.name.clone_from(&p.name);
                            kept.value.clone_from(&p.value);
                        }
                        None => judged.parts.push(p.clone()),
                    }
                    used += 1;
                }
                KeptArgs::Parts(start..used)
            }
            None => KeptArgs::Read(parameters(&request)),
        };
        judged.pending.push(Pending {
            index,
            inspected,
            endpoint: endpoint_key(&request),
            args,
        });
    }
    judged
}

/// The baselines' part of a judged slice, and its threats in event order: to be
/// called for a group's slices one at a time, in slice order. `events` are the
/// group's events as [`judge`] had them. The slice's parts go back to `pool`.
pub(crate) fn settle(
    policy: &Policy<'_>,
    events: &[(i64, &Event)],
    judged: Judged,
    pool: &PartsPool,
) -> Vec<Threat> {
    let Judged {
        pending,
        parts,
        mut threats,
    } = judged;
    let Some(baselines) = policy.baselines() else {
        return threats;
    };
    let mut buffer = HttpRequest::default();
    let mut picked: Vec<&Part> = Vec::new();
    for p in pending {
        let Some(&(id, event)) = events.get(p.index) else {
            continue;
        };
        let learnable = p.inspected.learnable();
        let args = match p.args {
            KeptArgs::Parts(range) => {
                picked.clear();
                picked.extend(parts.get(range).unwrap_or_default());
                Args::Parts(&picked)
            }
            KeptArgs::Read(read) => Args::Read(read),
        };
        let observation = baselines.observe_args(p.endpoint, args, event.status, learnable);
        let front = Front::Log {
            source: &event.source,
            event_id: id,
            ts: event.ts,
        };
        let mut request = RequestAt::Stored {
            event,
            buffer: &mut buffer,
            filled: false,
        };
        let (_, threat) = policy.settle(p.inspected, Some(observation), &mut request, front);
        threats.extend(threat);
    }
    drop(picked);
    if parts.capacity() > 0 {
        pool.give(parts);
    }
    threats
}
