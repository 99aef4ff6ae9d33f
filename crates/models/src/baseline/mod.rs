//! Per-endpoint anomaly baselines learnt online from traffic (Kruegel & Vigna,
//! "Anomaly detection of web-based attacks", CCS 2003).
//!
//! Every request is keyed by host + method + route template ([`route`]); each endpoint
//! keeps a [`profile::EndpointProfile`]: its parameter set, and per parameter the value
//! lengths (mean and variance, Chebyshev bound), character classes and shapes, the
//! character distribution and whether the parameter is an enumeration; plus its status
//! mix (from log lines, and from the protecting proxy once the upstream has answered).
//! After a warm-up of `warmup` requests an endpoint is judged:
//! every deviation has points and a plain explanation ("parameter `id` is numeric in
//! 99.8% of 12,004 requests; got 41 characters with quotes").
//!
//! # Fusion
//!
//! The final score of a request is `rules + model part + baseline part`, where the
//! model part is [`crate::fusion`]'s and the baseline part is
//! `min(deviation points, points_<mode>)`: `points_detect` (default 5) in detect-only
//! mode and for log lines, `points_block` (default 0) in block mode, so that by default
//! baselines never block a live request. A request whose deviation points reach
//! `report_points` (default 4) is recorded as an anomaly threat even when its points do
//! not count. Each threat carries one evidence entry per deviation (location `baseline`)
//! and the sum (`rules R + model M + baseline B = S`).
//!
//! # Learning
//!
//! A request is learnt when the rules found nothing in it and its deviation points stay
//! under `learn_below` (5): the attacks the system sees do not teach it, while a change
//! of the application (a new parameter, a new character in a value) costs at most a few
//! points and is learnt, after which that kind of deviation is no longer "never seen"
//! on the endpoint (the calibration below) and counts less.
//!
//! # Sampling
//!
//! Learning every request of a busy endpoint refines figures that no longer move, at a
//! cost on every request. So once an endpoint has learnt `2 × warmup` requests (past
//! its warm-up and a calibration period as long), a request that is learnable and has
//! no deviation at all is learnt with probability 1 in `learn_every` (1 by default:
//! every request; which ones is decided by a hash of the baselines' request counter, so a given
//! sequence of requests is always sampled alike), and when it is, it counts for
//! `learn_every` requests: every count and sum grows by that weight and the length's
//! mean and variance take it as that many equal values (Horvitz–Thompson weighting, an
//! unbiased estimate of what learning every request would give). A request that
//! deviates (under `learn_below`) is always learnt, with weight 1, exactly as before:
//! what makes a baseline change its mind (a new parameter, a new character, a new enum
//! value, a longer value) is never sampled away, and the calibration counts of each
//! kind of deviation stay exact. The explanations' counts ("in 99.8% of 12,004
//! requests") are therefore the requests learnt, estimated in steps of `learn_every`
//! for the clean ones: they may differ from the true number of clean requests by a few
//! times `learn_every` (a binomial estimate), and percentages are of that estimate.
//! `learn_every = 1` (the default) learns every request: measured on CSIC 2010, 8 lost
//! 4 of 25,065 attacks and added 1 false positive of 36,000 to the baselines alone
//! (docs/BENCHMARKS.md), so sampling is offered, not imposed.
//!
//! # Calibration
//!
//! Each deviation has base points (1–3). Once an endpoint has been judged on `warmup`
//! requests of its own learnt traffic, a kind of deviation that traffic never showed
//! earns 2 more (it is rarer than 1 in that many requests there); so one clear
//! deviation on a quiet endpoint is reported, while on an endpoint whose ordinary
//! traffic deviates now and then it takes two. An attacker who sends many harmless-looking requests can still
//! move a baseline (as in any online learner): the baselines are a second opinion beside
//! the rules, not a replacement.
//!
//! # Bounds and persistence
//!
//! At most `max_endpoints` endpoints (16 shards, each with its share; a new endpoint in
//! a full shard evicts the least recently seen endpoint still in warm-up, else the least
//! recently seen one) and `max_parameters` parameter names per endpoint; enumerations
//! keep at most [`profile::ENUM_MAX`] values. [`Baselines::snapshot`] hands what the
//! changed endpoints learnt since they were last synchronised (and the evicted ones) to
//! be saved; the store adds it to the stored row ([`merge`]) and [`Baselines::synced`]
//! adopts the sums, so serving nodes sharing one table add up their learning instead
//! of the last writer winning; [`Baselines::restore`] loads them at start. The profile
//! as last synchronised is kept beside each endpoint (memory: about twice the
//! profiles'). An endpoint one node evicts is deleted for all.
//!
//! # Per-request cost
//!
//! Two things are kept only to judge and learn faster, never saved: each enumeration
//! value's figures ([`profile::EnumValue`]: a request whose value is one of its
//! parameter's enumeration is not scanned), and per endpoint the argument names of a
//! request lately seen with their slots (`ArgNames`: a request with the same names is
//! matched name by name rather than each name folded and looked up).

pub mod config;
mod key_memo;
pub mod merge;
pub mod params;
pub mod profile;
pub mod route;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use palisade_core::Timestamp;
use palisade_detect::{HttpRequest, Location, ParsedRequest, Part};
use profile::Param;
use serde::Serialize;

pub use config::BaselinesConfig;
pub use profile::{Deviation, EndpointProfile, HostProfile};

/// The hasher of the endpoint and host maps: foldhash, seeded per map at random (as
/// std's SipHash `RandomState`, which cost several times as much on every request's
/// two or three lookups); the maps are bounded (`max_endpoints`), so a client who
/// found colliding keys could only make a lookup scan a shard's share of them.
type EndpointHasher = foldhash::fast::RandomState;

/// Shards of the endpoint map (requests to different endpoints rarely wait on each other).
const SHARDS: usize = 16;
/// Parameters of one request that are learnt and judged.
const MAX_REQUEST_PARAMS: usize = 64;
/// Characters kept of a parameter name.
const MAX_NAME_CHARS: usize = 64;
/// Evicted endpoints remembered for deletion from the database.
const MAX_EVICTED: usize = 10_000;

/// What the baselines say about one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observation {
    /// The endpoint key (`host METHOD /template`).
    pub endpoint: String,
    /// Requests its baseline was learnt from before this one.
    pub learnt: u64,
    /// Whether the endpoint was past its warm-up (judged at all).
    pub established: bool,
    /// The deviations found, strongest first.
    pub deviations: Vec<Deviation>,
    /// Their points, summed.
    pub points: u32,
    /// Whether this request was learnt.
    pub learnt_from: bool,
    /// How many requests it counts for in the baseline when learnt: 1, or
    /// `learn_every` for a sampled request (see "Sampling"); 0 when not learnt. Its
    /// status, known later, is learnt with the same weight.
    pub weight: u64,
}

/// One endpoint's baseline as saved to the database.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedBaseline {
    /// The endpoint key.
    pub endpoint: String,
    /// Requests learnt.
    pub requests: u64,
    /// The profile as JSON.
    pub profile: String,
}

/// What changed since the last snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Endpoints to insert or replace.
    pub changed: Vec<SavedBaseline>,
    /// Endpoints forgotten (evicted) since.
    pub evicted: Vec<String>,
}

impl Snapshot {
    /// The changed endpoints as sorted `(endpoint, requests, profile)`: what was
    /// learnt in a stable order, so two runs' learning (threads and one thread, an
    /// import and its replay) compare with `==`.
    pub fn learnt(self) -> Vec<(String, u64, String)> {
        let mut out: Vec<_> = self
            .changed
            .into_iter()
            .map(|s| (s.endpoint, s.requests, s.profile))
            .collect();
        out.sort();
        out
    }
}

#[derive(Debug)]
struct Entry {
    profile: EndpointProfile,
    last_seen: u64,
    dirty: bool,
    /// The profile as last loaded from or merged into the database: what this node
    /// learnt since is `profile.minus(base)` (see [`merge`]).
    base: Option<EndpointProfile>,
    /// The profile when the snapshot being saved was taken.
    at_snapshot: Option<EndpointProfile>,
    /// The argument names of a request lately judged, with their slots.
    seen: ArgNames,
}

/// The argument names of a request to an endpoint whose names were all known to its
/// profile, with their slots: requests to an endpoint mostly send the same names in
/// the same order, so the next one's names are compared with these (one comparison
/// per name) rather than each folded ([`parameter_name`]) and looked up. The slots
/// are those of one parameter map ([`ParamMap::generation`](params::ParamMap::generation)):
/// a profile replaced (by a load or a merge) has another, and the names are looked up
/// again.
#[derive(Debug, Default)]
struct ArgNames {
    /// The generation of the parameter map the slots are of (0: none yet).
    generation: u64,
    /// The names as parsed, one after another.
    raw: String,
    /// Where each parsed name ends in `raw`, and whether it is a body argument.
    raw_ends: Vec<(usize, bool)>,
    /// The names as the baselines key them, one after another.
    names: String,
    /// Where each ends in `names`.
    ends: Vec<usize>,
    /// The slot of each.
    slots: Vec<Option<u32>>,
}

impl ArgNames {
    /// The parameters of `args` (argument parts) with their values' figures taken in
    /// `profile` ([`EndpointProfile::value_of`]), the names and slots from here, when
    /// `args` have the names remembered and `profile` the parameter map the slots are
    /// of; `None` otherwise.
    fn params<'a, 'p: 'a>(
        &'a self,
        args: &[&'p Part],
        profile: &EndpointProfile,
    ) -> Option<Vec<Param<'a>>> {
        if self.generation != profile.params.generation() || args.len() != self.raw_ends.len() {
            return None;
        }
        let mut out = Vec::with_capacity(args.len());
        let (mut raw_start, mut start) = (0, 0);
        for (i, p) in args.iter().enumerate() {
            let (&(raw_end, body), &end) = self.raw_ends.get(i).zip(self.ends.get(i))?;
            if (p.location == Location::BodyArgValue) != body
                || self.raw.get(raw_start..raw_end) != Some(p.name.as_str())
            {
                return None;
            }
            out.push(Param {
                name: self.names.get(start..end).unwrap_or_default(),
                value: profile.value_of(self.slots.get(i).copied().flatten(), &p.value),
            });
            (raw_start, start) = (raw_end, end);
        }
        Some(out)
    }

    /// Remembers the names of `args` (argument parts), keyed as in `pairs`, and their
    /// `slots` in `map`, when every one has a slot.
    fn remember(
        &mut self,
        args: &[&Part],
        pairs: &[(&str, &str)],
        slots: &[Option<u32>],
        map: &params::ParamMap,
    ) {
        if slots.iter().any(Option::is_none) {
            return;
        }
        self.generation = map.generation();
        self.raw.clear();
        self.raw_ends.clear();
        for p in args {
            self.raw.push_str(&p.name);
            self.raw_ends
                .push((self.raw.len(), p.location == Location::BodyArgValue));
        }
        self.names.clear();
        self.ends.clear();
        for (name, _) in pairs {
            self.names.push_str(name);
            self.ends.push(self.names.len());
        }
        self.slots.clear();
        self.slots.extend_from_slice(slots);
    }
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<String, Entry, EndpointHasher>,
    evicted: Vec<String>,
}

/// Every endpoint's baseline, shared by the fronts that judge requests.
#[derive(Debug)]
pub struct Baselines {
    config: BaselinesConfig,
    shards: Vec<Mutex<Shard>>,
    hosts: Mutex<HashMap<String, HostEntry, EndpointHasher>>,
    tick: AtomicU64,
    persistence: Mutex<Persistence>,
    /// Set while the saved baselines are still to be loaded: requests seen before then
    /// are neither judged (the profiles are not there yet) nor learnt (they would be
    /// learnt into empty profiles and then merged into the loaded ones, teaching an
    /// established endpoint whatever came first after a restart).
    holding: AtomicBool,
}

/// What the save task last did, for health and `GET /api/v1/models`.
#[derive(Debug, Clone, Default)]
struct Persistence {
    restored: Option<(Timestamp, usize)>,
    last_save: Option<(Timestamp, usize)>,
    last_error: Option<(Timestamp, String)>,
}

/// The baselines as health and `GET /api/v1/models` show them: an operator asks
/// whether they learn, how much of the site is past its warm-up (only those endpoints
/// are judged) and whether what they learnt survives a restart.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BaselineStatus {
    /// Whether baselines are on (`[baselines] enabled`).
    pub enabled: bool,
    /// Endpoints learnt (host + method + route template).
    pub endpoints: usize,
    /// Of those, past their warm-up (judged).
    pub established: usize,
    /// The warm-up: requests an endpoint learns before it is judged.
    pub warmup: u64,
    /// The bound on endpoints.
    pub max_endpoints: usize,
    /// Endpoints loaded from the database at start, and when.
    pub restored: Option<usize>,
    /// When the loaded baselines came from the database.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub restored_at: Option<Timestamp>,
    /// When the last save reached the database.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_save: Option<Timestamp>,
    /// Rows written by that save.
    pub last_save_rows: Option<usize>,
    /// Why the last save failed, when it did after the last good one.
    pub last_save_error: Option<String>,
}

impl BaselineStatus {
    /// The status of baselines turned off.
    pub fn disabled() -> BaselineStatus {
        BaselineStatus {
            enabled: false,
            endpoints: 0,
            established: 0,
            warmup: 0,
            max_endpoints: 0,
            restored: None,
            restored_at: None,
            last_save: None,
            last_save_rows: None,
            last_save_error: None,
        }
    }

    /// The baselines as an entry of the model list (name `baselines`, source `online`
    /// or `disabled`): loaded once enabled (they learn from the first request), and
    /// `error` holding a failed save.
    pub fn as_model(self) -> crate::ModelStatus {
        crate::ModelStatus {
            name: "baselines".to_owned(),
            source: if self.enabled { "online" } else { "disabled" }.to_owned(),
            loaded: self.enabled,
            version: None,
            is_real: self.enabled.then_some(true),
            loaded_at: self.restored_at,
            metadata: None,
            error: self
                .last_save_error
                .as_ref()
                .map(|e| format!("baselines not saved: {e}")),
            baselines: Some(self),
        }
    }
}

#[derive(Debug, Default)]
struct HostEntry {
    profile: HostProfile,
    dirty: bool,
    base: Option<HostProfile>,
    at_snapshot: Option<HostProfile>,
}

/// Saved host profiles are keyed `@host` (endpoint keys always hold spaces).
pub(crate) const HOST_KEY: char = '@';

fn host_of(endpoint: &str) -> &str {
    endpoint.split(' ').next().unwrap_or(endpoint)
}

fn lock_hosts(
    m: &Mutex<HashMap<String, HostEntry, EndpointHasher>>,
) -> std::sync::MutexGuard<'_, HashMap<String, HostEntry, EndpointHasher>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A parameter name as baselines key it: digit runs folded to `#` (`items.0.id` and
/// `items.1.id` are one parameter), at most 64 characters.
pub fn parameter_name(location: Location, name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_NAME_CHARS) + 2);
    push_parameter_name(&mut out, location, name);
    out
}

/// [`parameter_name`] appended to `out`: a request's names share one buffer.
fn push_parameter_name(out: &mut String, location: Location, name: &str) {
    if location == Location::BodyArgValue {
        out.push_str("body:");
    }
    // Nearly every name: short and without digits, so kept as it is in one copy
    // (the digits looked for without an early exit: names are short).
    let digits = name
        .as_bytes()
        .iter()
        .fold(false, |seen, b| seen | b.is_ascii_digit());
    if name.len() <= MAX_NAME_CHARS && !digits {
        out.push_str(name);
        return;
    }
    let mut in_digits = false;
    for c in name.chars().take(MAX_NAME_CHARS) {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
}

/// The request's parameters (query and body arguments), as the baselines see them.
pub fn parameters(request: &HttpRequest) -> Vec<(String, String)> {
    // The parse's parts go back to its kept buffers when it is dropped, so the values
    // are copied out rather than moved.
    let parsed = palisade_detect::parse(request, 1);
    argument_parts(&parsed.parts)
        .map(|p| (parameter_name(p.location, &p.name), p.value.clone()))
        .collect()
}

/// What [`Baselines::observe_args`] reads of a request's arguments.
#[derive(Debug)]
pub enum Args<'a> {
    /// The argument parts of the engine's paranoia-1 or -2 parse, as
    /// [`argument_parts`] picks them, in order.
    Parts(&'a [&'a Part]),
    /// The parameters of a request the engine did not parse so ([`parameters`]).
    Read(Vec<(String, String)>),
}

/// The argument parts the baselines learn and judge (at most [`MAX_REQUEST_PARAMS`]),
/// of a parse's parts: what [`Args::Parts`] holds, for a caller that keeps a copy of
/// them to observe later.
pub fn argument_parts(parts: &[Part]) -> impl Iterator<Item = &Part> {
    parts
        .iter()
        .filter(|p| matches!(p.location, Location::QueryArgValue | Location::BodyArgValue))
        .take(MAX_REQUEST_PARAMS)
}

/// The request's arguments as (name, value): a parsed request's picked parts (their
/// names keyed into `names`), or the parameters read from a request that was not parsed.
fn request_arguments<'a, 'p: 'a>(
    parsed: bool,
    picked: &[&'p Part],
    owned: &'a [(String, String)],
    names: &'a mut String,
) -> Vec<(&'a str, &'a str)> {
    if parsed {
        arguments_of(picked.iter().copied(), names)
    } else {
        owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// [`parameters`] from parts already parsed (at paranoia 1 or 2, which give the same
/// arguments) as (name, value) pairs, borrowing their values; their names are written
/// into `names` (one buffer for the request, not one allocation per name). The values'
/// figures are taken once the endpoint's profile is at hand ([`EndpointProfile::value_of`]).
fn arguments_of<'a, 'p: 'a>(
    args: impl Iterator<Item = &'p Part> + Clone,
    names: &'a mut String,
) -> Vec<(&'a str, &'a str)> {
    // The buffer sized once, and each name's end kept on the stack.
    names.reserve(
        args.clone()
            .map(|p| p.name.len().min(4 * MAX_NAME_CHARS) + "body:".len())
            .sum(),
    );
    let mut ends = [0usize; MAX_REQUEST_PARAMS];
    let mut count = 0;
    for (p, end) in args.clone().zip(ends.iter_mut()) {
        push_parameter_name(names, p.location, &p.name);
        *end = names.len();
        count += 1;
    }
    let names: &'a str = names;
    let mut start = 0;
    let mut out = Vec::with_capacity(count);
    for (p, &end) in args.zip(ends.iter()) {
        out.push((names.get(start..end).unwrap_or_default(), p.value.as_str()));
        start = end;
    }
    out
}

/// The argument parts of `parts` ([`argument_parts`]) picked out once into `picked`
/// (the other parts are headers, the path...); how many.
fn pick<'a>(parts: &'a [Part], picked: &mut [&'a Part; MAX_REQUEST_PARAMS]) -> usize {
    let mut count = 0;
    for (slot, p) in picked.iter_mut().zip(argument_parts(parts)) {
        *slot = p;
        count += 1;
    }
    count
}

/// The request's arguments with the figures of their values taken from `profile` (its
/// enumerations' values keep theirs) where it knows the parameter (`slots`, looked up
/// in it), else from the text.
fn params_in<'a>(
    profile: &EndpointProfile,
    args: &[(&'a str, &'a str)],
    slots: &[Option<u32>],
) -> Vec<Param<'a>> {
    args.iter()
        .enumerate()
        .map(|(i, &(name, text))| Param {
            name,
            value: profile.value_of(slots.get(i).copied().flatten(), text),
        })
        .collect()
}

/// Each argument's slot in `profile`'s parameters, on the stack for a request of at
/// most [`MAX_REQUEST_PARAMS`] (every request here: the arguments are cut there).
fn slots_in<'s>(
    profile: &EndpointProfile,
    args: &[(&str, &str)],
    on_stack: &'s mut [Option<u32>; MAX_REQUEST_PARAMS],
    spilled: &'s mut Vec<Option<u32>>,
) -> &'s [Option<u32>] {
    if args.len() <= MAX_REQUEST_PARAMS {
        for (slot, (name, _)) in on_stack.iter_mut().zip(args) {
            *slot = profile.params.slot(name);
        }
        on_stack.get(..args.len()).unwrap_or_default()
    } else {
        *spilled = args.iter().map(|(n, _)| profile.params.slot(n)).collect();
        spilled
    }
}

/// The sampling draw of one learnable request without deviations (see "Sampling"): a
/// hash of the baselines' request counter, so that a sequence of requests is always
/// sampled alike and traffic with a period does not line up with the interval.
fn sampled(tick: u64, every: u64) -> bool {
    // SplitMix64's finaliser.
    let mut z = tick.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z.is_multiple_of(every.max(1))
}

fn shard_of(key: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % SHARDS as u64) as usize
}

fn lock(m: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    // A panic while a shard was held leaves counts that are still counts: carry on.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Baselines {
    /// Empty baselines.
    pub fn new(config: BaselinesConfig) -> Baselines {
        Baselines {
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hosts: Mutex::new(HashMap::default()),
            tick: AtomicU64::new(0),
            persistence: Mutex::new(Persistence::default()),
            holding: AtomicBool::new(false),
        }
    }

    fn persistence(&self) -> std::sync::MutexGuard<'_, Persistence> {
        self.persistence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `endpoints` saved baselines were loaded (at start), which ends the
    /// hold of [`Baselines::hold_until_restored`].
    pub fn note_restored(&self, endpoints: usize) {
        self.persistence().restored = Some((Timestamp::now(), endpoints));
        self.holding.store(false, Ordering::Release);
    }

    /// Neither judges nor learns until [`Baselines::note_restored`]: for a service that
    /// loads saved baselines once its database is ready, so that the requests served
    /// meanwhile do not reach endpoints that are about to be loaded.
    pub fn hold_until_restored(&self) {
        self.holding.store(true, Ordering::Release);
    }

    /// Records a save that reached the database (`rows` written or deleted).
    pub fn note_saved(&self, rows: usize) {
        let mut p = self.persistence();
        p.last_save = Some((Timestamp::now(), rows));
        p.last_error = None;
    }

    /// Records a failed save.
    pub fn note_save_failed(&self, error: &str) {
        self.persistence().last_error = Some((Timestamp::now(), error.to_owned()));
    }

    /// What they have learnt and their persistence, for health and the API.
    pub fn status(&self) -> BaselineStatus {
        let p = self.persistence().clone();
        BaselineStatus {
            enabled: true,
            endpoints: self.len(),
            established: self.established(),
            warmup: self.config.warmup,
            max_endpoints: self.config.max_endpoints,
            restored: p.restored.as_ref().map(|(_, n)| *n),
            restored_at: p.restored.map(|(at, _)| at),
            last_save: p.last_save.as_ref().map(|(at, _)| *at),
            last_save_rows: p.last_save.map(|(_, n)| n),
            last_save_error: p.last_error.map(|(_, e)| e),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &BaselinesConfig {
        &self.config
    }

    fn per_shard(&self) -> usize {
        self.config.max_endpoints.div_ceil(SHARDS).max(1)
    }

    /// Judges `request` (with its response `status` when known, from a log line) against
    /// its endpoint's baseline, then learns it when `rules_clean` (the rules found
    /// nothing) and its deviations stay under `learn_below`.
    pub fn observe(
        &self,
        request: &HttpRequest,
        status: Option<u16>,
        rules_clean: bool,
    ) -> Observation {
        self.observe_parsed(request, None, status, rules_clean)
    }

    /// [`Baselines::observe`] with the request's parts when the signature engine has
    /// already parsed it at paranoia 1 or 2 (see `Engine::inspect_parsed`): the same
    /// observation without a second parse.
    pub fn observe_parsed(
        &self,
        request: &HttpRequest,
        parsed: Option<&ParsedRequest>,
        status: Option<u16>,
        rules_clean: bool,
    ) -> Observation {
        let endpoint = route::endpoint_key(request);
        if self.holding.load(Ordering::Acquire) {
            return Observation {
                endpoint,
                ..Observation::default()
            };
        }
        let Some(parsed) = parsed else {
            return self.observe_args(
                endpoint,
                Args::Read(parameters(request)),
                status,
                rules_clean,
            );
        };
        // The argument parts, on the stack (the array filled with any part at first).
        let parts = parsed.parts.as_slice();
        let picked_parts: Option<[&Part; MAX_REQUEST_PARAMS]> =
            parts.first().map(|first| [first; MAX_REQUEST_PARAMS]);
        let mut picked_parts = picked_parts;
        let count = picked_parts
            .as_mut()
            .map_or(0, |picked| pick(parts, picked));
        let picked: &[&Part] = picked_parts
            .as_ref()
            .and_then(|p| p.get(..count))
            .unwrap_or_default();
        self.observe_args(endpoint, Args::Parts(picked), status, rules_clean)
    }

    /// [`Baselines::observe_parsed`] from what it reads of the request, taken beforehand
    /// (`endpoint`: [`route::endpoint_key`]; `args`: see [`Args`]): the only step that
    /// reads and changes what the baselines learnt. Callers that take the arguments on
    /// several threads call this in one fixed order (the ingest inspector: event order),
    /// so that what is learnt, and so judged, does not depend on the threads' timing.
    pub fn observe_args(
        &self,
        endpoint: String,
        args: Args<'_>,
        status: Option<u16>,
        rules_clean: bool,
    ) -> Observation {
        if self.holding.load(Ordering::Acquire) {
            return Observation {
                endpoint,
                ..Observation::default()
            };
        }
        let (parsed, picked, owned): (bool, &[&Part], Vec<(String, String)>) = match args {
            Args::Parts(picked) => (true, picked, Vec::new()),
            Args::Read(owned) => (false, &[], owned),
        };
        let mut names = String::new();
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let Some(shard) = self.shards.get(shard_of(&endpoint)) else {
            return Observation::default();
        };
        let mut shard = lock(shard);
        let warmup = self.config.warmup;
        // One lookup for the judgement and the learning of a known endpoint.
        if let Some(e) = shard.map.get_mut(&endpoint) {
            let learnt = e.profile.n;
            // Each parameter looked up once, for the judgement and the learning (or
            // its slot remembered from an earlier request with the same names), and
            // each value once in its enumeration.
            let (mut on_stack, mut spilled) = ([None; MAX_REQUEST_PARAMS], Vec::new());
            let remembered = if parsed {
                e.seen.params(picked, &e.profile)
            } else {
                None
            };
            let (params, slots): (Vec<Param<'_>>, &[Option<u32>]) = match remembered {
                Some(params) => (params, &e.seen.slots),
                None => {
                    let args = request_arguments(parsed, picked, &owned, &mut names);
                    let slots = slots_in(&e.profile, &args, &mut on_stack, &mut spilled);
                    if parsed {
                        e.seen.remember(picked, &args, slots, &e.profile.params);
                    }
                    (params_in(&e.profile, &args, slots), slots)
                }
            };
            let mut deviations = e
                .profile
                .judge_slots(&endpoint, &params, slots, status, warmup);
            deviations.sort_by_key(|d| std::cmp::Reverse(d.points));
            let points: u32 = deviations.iter().map(|d| d.points).sum();
            let learnable = rules_clean && points < self.config.learn_below;
            let weight = self.weight(learnable, learnt, deviations.is_empty(), tick);
            if weight > 0 {
                let judged = (learnt >= warmup).then_some(deviations.as_slice());
                e.profile.learn_slots(
                    &params,
                    slots,
                    status,
                    self.config.max_parameters,
                    judged,
                    weight,
                );
                e.dirty = true;
            }
            e.last_seen = tick;
            if weight > 0 {
                self.learn_host(&endpoint, false, weight);
            }
            return Observation {
                endpoint,
                learnt,
                established: learnt >= warmup || !deviations.is_empty(),
                deviations,
                points,
                learnt_from: weight > 0,
                weight,
            };
        }
        let deviations: Vec<Deviation> = self.judge_host(&endpoint).into_iter().collect();
        let points: u32 = deviations.iter().map(|d| d.points).sum();
        let learn = rules_clean && points < self.config.learn_below;
        if learn {
            let args = request_arguments(parsed, picked, &owned, &mut names);
            let params: Vec<Param<'_>> = args.iter().map(|&(n, v)| Param::new(n, v)).collect();
            self.learn_new(&mut shard, &endpoint, &params, status, tick);
        }
        Observation {
            established: !deviations.is_empty(),
            endpoint,
            learnt: 0,
            deviations,
            points,
            learnt_from: learn,
            weight: u64::from(learn),
        }
    }

    /// The weight a request is learnt with (0: not learnt); see "Sampling". `learnt`:
    /// the requests its endpoint learnt before it; `clean`: no deviation.
    fn weight(&self, learnable: bool, learnt: u64, clean: bool, tick: u64) -> u64 {
        let every = self.config.learn_every.max(1);
        if !learnable {
            0
        } else if every == 1 || !clean || learnt < self.config.warmup.saturating_mul(2) {
            1
        } else if sampled(tick, every) {
            every
        } else {
            0
        }
    }

    /// Learns `request` unconditionally: for a training phase on traffic known to be
    /// normal (`palisade eval --baselines-train`), where nothing is judged. An
    /// established endpoint samples its requests without deviations as in service
    /// ("Sampling"), so that what is evaluated is what serving learns.
    pub fn train(&self, request: &HttpRequest, status: Option<u16>) {
        let endpoint = route::endpoint_key(request);
        let owned = parameters(request);
        let args: Vec<(&str, &str)> = owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let Some(shard) = self.shards.get(shard_of(&endpoint)) else {
            return;
        };
        let mut shard = lock(shard);
        let warmup = self.config.warmup;
        let Some(e) = shard.map.get_mut(&endpoint) else {
            let params: Vec<Param<'_>> = args.iter().map(|&(n, v)| Param::new(n, v)).collect();
            self.learn_new(&mut shard, &endpoint, &params, status, tick);
            return;
        };
        // Judged first once established, so that its deviations calibrate the endpoint.
        let learnt = e.profile.n;
        let (mut on_stack, mut spilled) = ([None; MAX_REQUEST_PARAMS], Vec::new());
        let slots = slots_in(&e.profile, &args, &mut on_stack, &mut spilled);
        let params = params_in(&e.profile, &args, slots);
        let judged = (learnt >= warmup).then(|| {
            e.profile
                .judge_slots(&endpoint, &params, slots, status, warmup)
        });
        let clean = judged.as_ref().is_none_or(Vec::is_empty);
        let weight = self.weight(true, learnt, clean, tick);
        if weight == 0 {
            e.last_seen = tick;
            return;
        }
        e.profile.learn_slots(
            &params,
            slots,
            status,
            self.config.max_parameters,
            judged.as_deref(),
            weight,
        );
        e.last_seen = tick;
        e.dirty = true;
        self.learn_host(&endpoint, false, weight);
    }

    /// Learns the first request of an endpoint into a locked shard, evicting an
    /// endpoint when the shard is full.
    fn learn_new(
        &self,
        shard: &mut Shard,
        endpoint: &str,
        params: &[Param<'_>],
        status: Option<u16>,
        tick: u64,
    ) {
        if shard.map.len() >= self.per_shard() {
            evict(shard, self.config.warmup);
        }
        self.learn_host(endpoint, true, 1);
        let mut profile = EndpointProfile::default();
        profile.learn_params(params, status, self.config.max_parameters, None, 1);
        shard.map.insert(
            endpoint.to_owned(),
            Entry {
                profile,
                last_seen: tick,
                dirty: true,
                base: None,
                at_snapshot: None,
                seen: ArgNames::default(),
            },
        );
    }

    /// Learns the response `status` of a request that [`Baselines::observe`] learnt
    /// (`endpoint`: its [`Observation::endpoint`]; `weight`: its
    /// [`Observation::weight`]), when the status comes later than the judgement: the
    /// protecting proxy judges a request before its upstream answers. An endpoint
    /// forgotten since is left alone.
    pub fn learn_status(&self, endpoint: &str, status: u16, weight: u64) {
        let Some(shard) = self.shards.get(shard_of(endpoint)) else {
            return;
        };
        if let Some(e) = lock(shard).map.get_mut(endpoint) {
            e.profile.learn_status(status, weight);
            e.dirty = true;
        }
    }

    /// Judges `request` without learning from it (evaluation on held-out data).
    pub fn judge(&self, request: &HttpRequest, status: Option<u16>) -> Observation {
        self.observe(request, status, false)
    }

    /// The deviation of a request to an endpoint its host never had, when the host's
    /// set of endpoints is stable.
    fn judge_host(&self, endpoint: &str) -> Option<Deviation> {
        let host = host_of(endpoint);
        lock_hosts(&self.hosts)
            .get(host)?
            .profile
            .judge_new_endpoint(host, endpoint, self.config.warmup)
    }

    fn learn_host(&self, endpoint: &str, new: bool, weight: u64) {
        let host = host_of(endpoint);
        let warmup = self.config.warmup;
        let mut hosts = lock_hosts(&self.hosts);
        // A known host (nearly every request) is learnt without allocating its key.
        if let Some(h) = hosts.get_mut(host) {
            h.profile.learn(new, warmup, weight);
            h.dirty = true;
            return;
        }
        if hosts.len() >= self.config.max_endpoints {
            // The least learnt host goes (its endpoints age out on their own).
            if let Some(victim) = hosts
                .iter()
                .min_by_key(|(_, h)| h.profile.n)
                .map(|(k, _)| k.clone())
            {
                hosts.remove(&victim);
            }
        }
        let h = hosts.entry(host.to_owned()).or_default();
        h.profile.learn(new, warmup, weight);
        h.dirty = true;
    }

    /// Endpoints known.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// Whether no endpoint is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Endpoints past their warm-up.
    pub fn established(&self) -> usize {
        let warmup = self.config.warmup;
        self.shards
            .iter()
            .map(|s| {
                lock(s)
                    .map
                    .values()
                    .filter(|e| e.profile.n >= warmup)
                    .count()
            })
            .sum()
    }

    /// Takes what the endpoints changed since the last snapshot learnt since they were
    /// last synchronised with the database (deltas, [`merge`]; the whole profile for an
    /// endpoint never saved), and the endpoints evicted; their dirty marks are
    /// cleared. Hand the merged rows the store wrote to [`Baselines::synced`], or the
    /// snapshot back to [`Baselines::unsaved`] when the save failed.
    pub fn snapshot(&self) -> Snapshot {
        let mut out = Snapshot::default();
        for (host, h) in lock_hosts(&self.hosts).iter_mut().filter(|(_, h)| h.dirty) {
            let delta = match &h.base {
                Some(base) => h.profile.minus(base),
                None => h.profile.clone(),
            };
            if let Ok(profile) = serde_json::to_string(&delta) {
                h.dirty = false;
                h.at_snapshot = Some(h.profile.clone());
                out.changed.push(SavedBaseline {
                    endpoint: format!("{HOST_KEY}{host}"),
                    requests: delta.n,
                    profile,
                });
            }
        }
        for s in &self.shards {
            let mut shard = lock(s);
            out.evicted.append(&mut shard.evicted);
            for (key, e) in shard.map.iter_mut().filter(|(_, e)| e.dirty) {
                let delta = match &e.base {
                    Some(base) => e.profile.minus(base),
                    None => e.profile.clone(),
                };
                match serde_json::to_string(&delta) {
                    Ok(profile) => {
                        e.dirty = false;
                        e.at_snapshot = Some(e.profile.clone());
                        out.changed.push(SavedBaseline {
                            endpoint: key.clone(),
                            requests: delta.n,
                            profile,
                        });
                    }
                    Err(error) => {
                        tracing::warn!(message = "A baseline could not be serialised.", endpoint = %key, %error)
                    }
                }
            }
        }
        out
    }

    /// Marks a snapshot's endpoints as changed again (its save failed): their next
    /// delta covers this one too.
    pub fn unsaved(&self, snapshot: Snapshot) {
        for saved in snapshot.changed {
            if let Some(host) = saved.endpoint.strip_prefix(HOST_KEY) {
                if let Some(h) = lock_hosts(&self.hosts).get_mut(host) {
                    h.dirty = true;
                    h.at_snapshot = None;
                }
                continue;
            }
            if let Some(s) = self.shards.get(shard_of(&saved.endpoint))
                && let Some(e) = lock(s).map.get_mut(&saved.endpoint)
            {
                e.dirty = true;
                e.at_snapshot = None;
            }
        }
        for key in snapshot.evicted {
            if let Some(s) = self.shards.get(shard_of(&key)) {
                let mut shard = lock(s);
                if shard.evicted.len() < MAX_EVICTED {
                    shard.evicted.push(key);
                }
            }
        }
    }

    /// Adopts the rows the store wrote for the last snapshot (the stored profile plus
    /// this node's delta, [`merge`]): each endpoint's profile becomes that sum plus
    /// what it learnt since the snapshot, so a node also judges with what the other
    /// nodes learnt. A row that does not parse is skipped (the next save repairs it).
    pub fn synced(&self, merged: impl IntoIterator<Item = SavedBaseline>) {
        for record in merged {
            if let Some(host) = record.endpoint.strip_prefix(HOST_KEY) {
                let Ok(sum) = serde_json::from_str::<HostProfile>(&record.profile) else {
                    continue;
                };
                if let Some(h) = lock_hosts(&self.hosts).get_mut(host)
                    && let Some(at) = h.at_snapshot.take()
                {
                    let since = h.profile.minus(&at);
                    let mut profile = sum.clone();
                    profile.merge(&since);
                    h.profile = profile;
                    h.base = Some(sum);
                }
                continue;
            }
            let Ok(sum) = serde_json::from_str::<EndpointProfile>(&record.profile) else {
                continue;
            };
            if let Some(s) = self.shards.get(shard_of(&record.endpoint))
                && let Some(e) = lock(s).map.get_mut(&record.endpoint)
                && let Some(at) = e.at_snapshot.take()
            {
                let since = e.profile.minus(&at);
                let mut profile = sum.clone();
                profile.merge(&since);
                e.profile = profile;
                e.base = Some(sum);
            }
        }
    }

    /// Loads saved baselines (at start); what an endpoint already learnt in this
    /// process is added to the loaded profile. Returns how many were loaded; a record
    /// that does not parse is skipped with a warning.
    pub fn restore(&self, saved: impl IntoIterator<Item = SavedBaseline>) -> usize {
        let mut loaded = 0;
        for record in saved {
            if let Some(host) = record.endpoint.strip_prefix(HOST_KEY) {
                match serde_json::from_str::<HostProfile>(&record.profile) {
                    Ok(profile) => {
                        let mut hosts = lock_hosts(&self.hosts);
                        let h = hosts.entry(host.to_owned()).or_default();
                        let since = match &h.base {
                            Some(base) => h.profile.minus(base),
                            None => h.profile.clone(),
                        };
                        h.profile = profile.clone();
                        h.profile.merge(&since);
                        h.base = Some(profile);
                        loaded += 1;
                    }
                    Err(error) => {
                        tracing::warn!(message = "A saved host baseline does not parse; it is skipped.", host, %error)
                    }
                }
                continue;
            }
            let profile: EndpointProfile = match serde_json::from_str(&record.profile) {
                Ok(p) => p,
                Err(error) => {
                    tracing::warn!(message = "A saved baseline does not parse; it is skipped.", endpoint = %record.endpoint, %error);
                    continue;
                }
            };
            let Some(s) = self.shards.get(shard_of(&record.endpoint)) else {
                continue;
            };
            let mut shard = lock(s);
            if let Some(e) = shard.map.get_mut(&record.endpoint) {
                let since = match &e.base {
                    Some(base) => e.profile.minus(base),
                    None => e.profile.clone(),
                };
                e.profile = profile.clone();
                e.profile.merge(&since);
                e.base = Some(profile);
                loaded += 1;
                continue;
            }
            if shard.map.len() >= self.per_shard() {
                continue;
            }
            shard.map.insert(
                record.endpoint,
                Entry {
                    profile: profile.clone(),
                    last_seen: 0,
                    dirty: false,
                    base: Some(profile),
                    at_snapshot: None,
                    seen: ArgNames::default(),
                },
            );
            loaded += 1;
        }
        loaded
    }
}

/// Forgets one endpoint: the least recently seen still in warm-up, else the least
/// recently seen.
fn evict(shard: &mut Shard, warmup: u64) {
    let victim = shard
        .map
        .iter()
        .min_by_key(|(_, e)| (e.profile.n >= warmup, e.last_seen))
        .map(|(k, _)| k.clone());
    if let Some(key) = victim {
        shard.map.remove(&key);
        if shard.evicted.len() < MAX_EVICTED {
            shard.evicted.push(key);
        }
    }
}

/// The baseline part of the fusion policy (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselinePolicy {
    /// Points the baseline part may add in block mode.
    pub points_block: u32,
    /// Points it may add in detect-only mode and for log lines.
    pub points_detect: u32,
    /// Deviation points from which an anomaly threat is recorded.
    pub report_points: u32,
}

impl From<&BaselinesConfig> for BaselinePolicy {
    fn from(c: &BaselinesConfig) -> Self {
        BaselinePolicy {
            points_block: c.points_block,
            points_detect: c.points_detect,
            report_points: c.report_points,
        }
    }
}

impl Default for BaselinePolicy {
    fn default() -> Self {
        BaselinePolicy::from(&BaselinesConfig::default())
    }
}

impl BaselinePolicy {
    /// The points the baseline part adds to the score; `detect` is true in detect-only
    /// mode and for log lines.
    pub fn part(&self, observation: &Observation, detect: bool) -> u32 {
        let cap = if detect {
            self.points_detect
        } else {
            self.points_block
        };
        observation.points.min(cap)
    }

    /// Whether the deviations alone make the request an anomaly threat.
    pub fn reports(&self, observation: &Observation) -> bool {
        observation.points >= self.report_points
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profile::ParamProfile;

    fn get(uri: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![("Host".into(), "shop.example".into())],
            body: Vec::new(),
            client_ip: None,
        }
    }

    fn small() -> BaselinesConfig {
        BaselinesConfig {
            warmup: 50,
            ..Default::default()
        }
    }

    #[test]
    fn warm_up_then_judge_with_an_explanation() {
        let b = Baselines::new(small());
        for i in 0..60 {
            let o = b.observe(
                &get(&format!("/items/{i}?id={}&lang=en", i * 7)),
                None,
                true,
            );
            assert!(o.deviations.is_empty(), "warm-up and normal traffic: {o:?}");
        }
        let o = b.observe(
            &get("/items/3?id=1%27%20OR%20%271%27=%271%27--&lang=en"),
            None,
            true,
        );
        assert!(o.established);
        assert_eq!(o.endpoint, "shop.example GET /items/{n}");
        assert!(o.points >= 5, "{o:?}");
        assert!(!o.learnt_from, "an anomaly is not learnt");
        assert!(
            o.deviations[0].explanation.starts_with(
                "parameter `id` is numeric in 100% of 60 requests; got 15 characters with"
            ),
            "{:?}",
            o.deviations
        );
        let fine = b.observe(&get("/items/9?id=12&lang=en"), None, true);
        assert!(fine.deviations.is_empty() && fine.learnt_from);
        let unclean = b.observe(&get("/items/9?id=12&lang=en"), None, false);
        assert!(!unclean.learnt_from, "what the rules flag is not learnt");
    }

    #[test]
    fn requests_before_the_saved_baselines_load_are_neither_judged_nor_learnt() {
        let trained = Baselines::new(small());
        for i in 0..60 {
            trained.observe(&get(&format!("/items/{i}?id={}", i * 7)), None, true);
        }
        // Nothing stored yet: the first snapshot's deltas are the whole profiles.
        let saved: Vec<SavedBaseline> = trained.snapshot().changed;
        let restarted = Baselines::new(small());
        restarted.hold_until_restored();
        let odd = get("/items/3?id=abcdefghijklmnopqrstuvwxyz");
        for _ in 0..60 {
            let o = restarted.observe(&odd, None, true);
            assert!(!o.learnt_from && o.deviations.is_empty(), "{o:?}");
        }
        assert_eq!(
            restarted.status().endpoints,
            0,
            "nothing learnt while holding"
        );
        restarted.note_restored(restarted.restore(saved));
        let o = restarted.observe(&odd, None, true);
        assert!(o.established && o.points > 0, "judged once loaded: {o:?}");
    }

    #[test]
    fn the_engines_parse_gives_the_same_observations_as_a_parse_of_its_own() {
        // Two baselines fed the same traffic, one parsing each request itself and one
        // given the engine's parse, must learn and judge alike, deviations included.
        let (own, shared) = (Baselines::new(small()), Baselines::new(small()));
        let engine = palisade_detect::Engine::new(
            palisade_detect::RuleSet::builtin().unwrap(),
            palisade_detect::EngineConfig::default(),
        );
        let mut requests: Vec<HttpRequest> = (0..70)
            .map(|i| get(&format!("/items/{i}?id={}&lang=en&q=blue+shoes+{i}", i * 7)))
            .collect();
        requests.push(get("/items/3?id=abc%22def&lang=xx&extra=1"));
        let mut post = get("/login");
        post.method = "POST".into();
        post.headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        post.body = b"user=ana&pass=s3cret".to_vec();
        requests.push(post);
        let mut deviated = 0;
        for r in &requests {
            let (verdict, parsed) = engine.inspect_parsed(r);
            let clean = verdict.findings.is_empty();
            assert!(parsed.is_some(), "paranoia 1: the parse is handed on");
            let a = own.observe(r, None, clean);
            let b = shared.observe_parsed(r, parsed.as_ref(), None, clean);
            assert_eq!(a, b, "{}", r.uri);
            deviated += usize::from(!a.deviations.is_empty());
        }
        assert!(deviated >= 1, "the odd request deviates");
    }

    #[test]
    fn observing_a_copy_of_the_arguments_later_judges_and_learns_as_the_parse_itself()
    -> Result<(), Box<dyn std::error::Error>> {
        // What the ingest inspector does: the argument parts copied out of the parse on
        // one thread, the parse dropped, the observation made later (`observe_args`).
        let (direct, later) = (Baselines::new(small()), Baselines::new(small()));
        for i in 0..900 {
            let r = get(&tricky(i));
            let clean = i % 50 != 7;
            let parsed = palisade_detect::parse(&r, 1);
            let kept: Vec<Part> = argument_parts(&parsed.parts).cloned().collect();
            let a = direct.observe_parsed(&r, Some(&parsed), Some(200), clean);
            drop(parsed);
            let picked: Vec<&Part> = kept.iter().collect();
            let b = later.observe_args(
                route::endpoint_key(&r),
                Args::Parts(&picked),
                Some(200),
                clean,
            );
            if a != b {
                return Err(format!("request {i} ({}): {a:?} != {b:?}", r.uri).into());
            }
        }
        if direct.snapshot().learnt() != later.snapshot().learnt() {
            return Err("the profiles learnt differ".into());
        }
        Ok(())
    }

    /// Requests that reach every path of the remembered names and of the figures kept
    /// with an enumeration's values: the same names again, in another order, one more
    /// or one fewer, a name twice (with the same value, known or new, and with
    /// another), an
    /// enumeration outgrown in the middle of a request, and a profile replaced by a
    /// save.
    fn tricky(i: usize) -> String {
        let lang = ["en", "es", "fr"][i % 3];
        match i % 9 {
            0..=3 => format!("/p?id={}&lang={lang}&q=blue+shoes", i % 7),
            4 => format!("/p?lang={lang}&id={}&q=red", i % 7),
            5 if i.is_multiple_of(2) => format!("/p?id={}&lang={lang}&lang={lang}", i % 7),
            5 => format!("/p?id={}&lang=y{}&lang=y{}", i % 7, i / 9, i / 9),
            6 => format!("/p?id={}&lang={lang}&lang=x{}&q=%27", i % 7, i / 9),
            7 => format!("/p?id={}&lang={lang}&q=blue+shoes&new{}=1", i % 7, i % 4),
            _ => format!("/p?id={}&q=a+much+longer+value+than+the+others+{i}", i % 7),
        }
    }

    #[test]
    fn remembered_names_and_kept_figures_judge_and_learn_as_every_value_looked_up() {
        let b = Baselines::new(small());
        let config = b.config().clone();
        let key = "shop.example GET /p";
        let mut reference = EndpointProfile::default();
        let mut table = HashMap::new();
        for i in 0..900 {
            if i % 300 == 299 {
                // Saved and synchronised: the profile is replaced by the sum loaded back
                // (the same figures, another parameter map with other slots), so
                // what was remembered of its slots no longer holds.
                save_into(&b, &mut table);
                // The reference goes on from the profile adopted (the merge's own
                // rounding of the means is not what is compared here).
                reference = profile_of(&b, key);
            }
            let r = get(&tricky(i));
            let parsed = palisade_detect::parse(&r, 1);
            let o = b.observe_parsed(&r, Some(&parsed), None, true);
            // The reference: every name folded and looked up, every value scanned and
            // looked for in its enumeration (`Value::new`).
            let pairs: Vec<(String, String)> = parameters(&r);
            let pairs: Vec<(String, &str)> =
                pairs.iter().map(|(n, v)| (n.clone(), v.as_str())).collect();
            let learnt = reference.n;
            let mut deviations = reference.judge(key, &pairs, None, config.warmup);
            deviations.sort_by_key(|d| std::cmp::Reverse(d.points));
            let points: u32 = deviations.iter().map(|d| d.points).sum();
            assert_eq!(o.deviations, deviations, "request {i}: {}", r.uri);
            if points < config.learn_below {
                let judged = (learnt >= config.warmup).then_some(deviations.as_slice());
                reference.learn(&pairs, None, config.max_parameters, judged);
            }
            assert_eq!(profile_of(&b, key), reference, "request {i}: {}", r.uri);
        }
        let p = profile_of(&b, key);
        assert!(p.params["lang"].not_enum, "outgrown");
        assert!(p.params["id"].is_enum(), "still one");
        assert!(
            p.params.get("new#").is_some(),
            "a new name learnt (digits folded)"
        );
    }

    #[test]
    fn snapshots_restore_and_bounds_hold() {
        let b = Baselines::new(BaselinesConfig {
            max_endpoints: 16,
            ..small()
        });
        for i in 0..100 {
            b.observe(&get(&format!("/a/x{i}?q=1")), None, true);
        }
        assert!(b.len() <= 16, "{} endpoints kept", b.len());
        let snap = b.snapshot();
        assert!(!snap.evicted.is_empty());
        assert!(b.snapshot().changed.is_empty(), "nothing changed since");
        let hosts = snap
            .changed
            .iter()
            .filter(|s| s.endpoint.starts_with('@'))
            .count();
        assert_eq!(hosts, 1, "one host row beside the endpoints");
        let restored = Baselines::new(small());
        assert_eq!(restored.restore(snap.changed.clone()), snap.changed.len());
        assert_eq!(restored.len(), snap.changed.len() - hosts);
        let bad = SavedBaseline {
            endpoint: "x".into(),
            requests: 1,
            profile: "{not json".into(),
        };
        assert_eq!(restored.restore([bad]), 0);
        b.unsaved(snap.clone());
        assert_eq!(b.snapshot().changed.len(), snap.changed.len());
    }

    #[test]
    fn a_restored_baseline_judges_at_once() {
        let b = Baselines::new(small());
        for i in 0..80 {
            b.observe(&get(&format!("/p?page={}", i % 9)), None, true);
        }
        let again = Baselines::new(small());
        again.restore(b.snapshot().changed);
        let o = again.observe(&get("/p?page=%3Cscript%3E"), None, true);
        assert!(o.established && o.points >= 3, "{o:?}");
    }

    #[test]
    fn a_new_route_on_a_stable_host_is_a_deviation_and_not_on_a_growing_one() {
        let b = Baselines::new(small());
        for i in 0..200 {
            b.train(&get(&format!("/page{}", i % 4)), None);
        }
        let o = b.judge(&get("/page1.bak"), None);
        assert_eq!(o.deviations.len(), 1, "{o:?}");
        assert_eq!(o.deviations[0].kind, "endpoint");
        assert_eq!(
            o.deviations[0].points, 4,
            "never seen in its calibrated traffic"
        );
        assert!(
            o.deviations[0]
                .explanation
                .starts_with("GET /page1.bak was never requested on shop.example in 200 requests to its 4 endpoints"),
            "{o:?}"
        );
        let growing = Baselines::new(small());
        for i in 0..200 {
            growing.train(&get(&format!("/post/{}", i * 31 % 97)), None);
            growing.train(&get(&format!("/blog/entry-{i}")), None);
        }
        assert!(
            growing
                .judge(&get("/blog/new-post"), None)
                .deviations
                .is_empty()
        );
    }

    #[test]
    fn generated_ordinary_traffic_is_not_reported_and_planted_payloads_are() {
        use crate::Category;
        use crate::generate;
        use crate::rng::Rng;
        let b = Baselines::new(BaselinesConfig::default());
        let mut rng = Rng::new(1);
        for _ in 0..20_000 {
            b.train(&generate::ordinary(&mut rng), None);
        }
        let policy = BaselinePolicy::default();
        let mut rng = Rng::new(2);
        let n = 5_000;
        let reported: Vec<Observation> = (0..n)
            .map(|_| b.judge(&generate::ordinary(&mut rng), None))
            .filter(|o| policy.reports(o))
            .collect();
        assert!(
            reported.len() * 200 <= n,
            "JSON APIs, GraphQL, non-English text, tracking parameters: {} of {n} reported, e.g. {:?}",
            reported.len(),
            reported.first()
        );
        let mut rng = Rng::new(3);
        let families = [
            Category::Sqli,
            Category::Xss,
            Category::Cmdi,
            Category::Traversal,
        ];
        let attacks = 1_000;
        let caught = (0..attacks)
            .filter(|i| {
                let carrier = generate::ordinary(&mut rng);
                let family = families[i % families.len()];
                let a = generate::attack(&carrier, family, &mut rng);
                b.judge(&a, None).points > 0
            })
            .count();
        assert!(
            caught * 4 >= attacks,
            "{caught} of {attacks} planted payloads deviate"
        );
    }

    fn profile_of(b: &Baselines, endpoint: &str) -> EndpointProfile {
        let shard = lock(&b.shards[shard_of(endpoint)]);
        shard.map[endpoint].profile.clone()
    }

    #[test]
    fn established_endpoints_learn_a_weighted_sample_of_clean_requests() {
        let sampled = Baselines::new(BaselinesConfig {
            learn_every: 8,
            ..small()
        });
        let every = Baselines::new(BaselinesConfig {
            learn_every: 1,
            ..small()
        });
        let key = "shop.example GET /p";
        let langs = ["en", "es", "fr", "de"];
        let request = |i: usize| {
            let q = "a".repeat((i * 7) % 20 + 1);
            get(&format!("/p?page={}&lang={}&q={q}", i % 97, langs[i % 4]))
        };
        let (mut weights, mut learnt) = (Vec::new(), 0u64);
        for i in 0..8_000 {
            let o = sampled.observe(&request(i), None, true);
            every.observe(&request(i), None, true);
            assert!(o.deviations.is_empty(), "{o:?}");
            assert_eq!(o.learnt_from, o.weight > 0);
            if i >= 100 {
                weights.push(o.weight);
            }
            learnt += o.weight;
        }
        // The first 2 × warmup requests are all learnt, then 1 in 8 with weight 8.
        assert!(weights.iter().all(|w| *w == 0 || *w == 8), "{weights:?}");
        let kept = weights.iter().filter(|w| **w == 8).count();
        assert!((850..=1150).contains(&kept), "{kept} of 7,900 sampled");
        let (s, e) = (profile_of(&sampled, key), profile_of(&every, key));
        assert_eq!(s.n, learnt, "n counts the weights");
        assert_eq!(e.n, 8_000);
        // A binomial estimate: standard deviation 8 × √(7,900 × ⅛ × ⅞) ≈ 235.
        assert!(
            s.n.abs_diff(8_000) <= 1_000,
            "an estimate of 8,000: {}",
            s.n
        );
        // The statistics are estimates of the ones learnt from every request.
        let (sp, ep) = (&s.params["q"], &e.params["q"]);
        assert!((sp.len_mean - ep.len_mean).abs() < 1.0, "{sp:?} {ep:?}");
        let var = |p: &ParamProfile| p.len_m2 / (p.n - 1) as f64;
        assert!((var(sp) / var(ep) - 1.0).abs() < 0.15, "{sp:?} {ep:?}");
        assert!(s.params["lang"].is_enum() && e.params["lang"].is_enum());
        // A request that deviates is always learnt, with weight 1.
        let odd = sampled.observe(&get("/p?page=7&lang=en&utm=x"), None, true);
        assert_eq!(odd.deviations.len(), 1, "{odd:?}");
        assert_eq!((odd.learnt_from, odd.weight), (true, 1));
        assert_eq!(profile_of(&sampled, key).n, learnt + 1);
        // ... and not when the rules found something.
        let flagged = sampled.observe(&get("/p?page=7&lang=en&utm=x"), None, false);
        assert_eq!((flagged.learnt_from, flagged.weight), (false, 0));
        // The status known later is learnt with the request's weight.
        let o = (0..64)
            .map(|i| sampled.observe(&request(i), None, true))
            .find(|o| o.weight == 8)
            .expect("one in 64 sampled");
        let before: u64 = profile_of(&sampled, key).status.iter().sum();
        sampled.learn_status(&o.endpoint, 200, o.weight);
        let after: u64 = profile_of(&sampled, key).status.iter().sum();
        assert_eq!(after - before, 8);
    }

    #[test]
    fn sampling_is_the_same_for_the_same_sequence_and_off_with_learn_every_1() {
        let run = |learn_every: u64| {
            let b = Baselines::new(BaselinesConfig {
                learn_every,
                ..small()
            });
            (0..3_000)
                .map(|i| b.observe(&get(&format!("/q?id={i}")), None, true).weight)
                .collect::<Vec<u64>>()
        };
        assert_eq!(run(8), run(8), "deterministic");
        assert!(run(1).iter().all(|w| *w == 1), "every request learnt");
        let trained = Baselines::new(BaselinesConfig {
            learn_every: 8,
            ..small()
        });
        for i in 0..3_000 {
            trained.train(&get(&format!("/q?id={i}")), None);
        }
        let n = profile_of(&trained, "shop.example GET /q").n;
        assert!(
            n != 3_000 && n.abs_diff(3_000) <= 300,
            "train samples too: {n}"
        );
    }

    #[test]
    fn the_policy_caps_the_part_per_mode() {
        let o = Observation {
            points: 7,
            ..Default::default()
        };
        let p = BaselinePolicy::default();
        assert_eq!(p.part(&o, true), 5);
        assert_eq!(p.part(&o, false), 0, "advisory in block mode by default");
        assert!(p.reports(&o));
        assert_eq!(
            parameter_name(Location::BodyArgValue, "items.12.id"),
            "body:items.#.id"
        );
    }

    /// A parameter name as first written: a character at a time.
    fn parameter_name_reference(location: Location, name: &str) -> String {
        let mut out = String::new();
        if location == Location::BodyArgValue {
            out.push_str("body:");
        }
        let mut in_digits = false;
        for c in name.chars().take(MAX_NAME_CHARS) {
            if c.is_ascii_digit() {
                if !in_digits {
                    out.push('#');
                }
                in_digits = true;
            } else {
                in_digits = false;
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn parameter_names_copied_whole_are_those_built_a_character_at_a_time() {
        let long = "n".repeat(MAX_NAME_CHARS + 5);
        let exact = "é".repeat(MAX_NAME_CHARS / 2 + 3);
        let names = [
            "",
            "id",
            "B1",
            "items.12.id",
            "nombre",
            "q[]",
            "ñame",
            long.as_str(),
            exact.as_str(),
            "a\u{0}b",
        ];
        for name in names {
            for location in [Location::QueryArgValue, Location::BodyArgValue] {
                assert_eq!(
                    parameter_name(location, name),
                    parameter_name_reference(location, name),
                    "{name}"
                );
            }
        }
    }

    /// A table shared by nodes, merged as the store does under its lock.
    fn save_into(node: &Baselines, table: &mut HashMap<String, String>) {
        let snap = node.snapshot();
        let merged: Vec<SavedBaseline> = snap
            .changed
            .iter()
            .map(|d| {
                let (profile, requests) = merge::merge_saved(
                    &d.endpoint,
                    table.get(&d.endpoint).map(String::as_str),
                    &d.profile,
                )
                .expect("merge");
                table.insert(d.endpoint.clone(), profile.clone());
                SavedBaseline {
                    endpoint: d.endpoint.clone(),
                    requests,
                    profile,
                }
            })
            .collect();
        node.synced(merged);
    }

    fn stored_n(table: &HashMap<String, String>, endpoint: &str) -> u64 {
        let p: EndpointProfile = serde_json::from_str(&table[endpoint]).expect("profile");
        p.n
    }

    #[test]
    fn nodes_saving_into_one_table_add_up_instead_of_the_last_writer_winning() {
        let config = BaselinesConfig {
            warmup: 200,
            ..BaselinesConfig::default()
        };
        let (a, b) = (
            Baselines::new(config.clone()),
            Baselines::new(config.clone()),
        );
        let mut table = HashMap::new();
        let key = "shop.example GET /p";
        for i in 0..150 {
            a.observe(&get(&format!("/p?page={}", i % 9)), None, true);
        }
        for i in 0..100 {
            b.observe(&get(&format!("/p?page={}", i % 7)), None, true);
        }
        // Neither node alone is past the warm-up.
        assert!(!b.judge(&get("/p?page=%27%20or%201=1"), None).established);
        save_into(&a, &mut table);
        assert_eq!(stored_n(&table, key), 150);
        save_into(&b, &mut table);
        assert_eq!(stored_n(&table, key), 250, "b's save adds to a's");
        // b adopted the sum: it judges with what a learnt.
        let o = b.judge(&get("/p?page=%27%20or%201=1"), None);
        assert!(o.established && o.points > 0, "{o:?}");
        // Learning after a save is saved once, by difference.
        for i in 0..30 {
            a.observe(&get(&format!("/p?page={}", i % 9)), None, true);
        }
        save_into(&a, &mut table);
        save_into(&a, &mut table);
        assert_eq!(stored_n(&table, key), 280);
        b.observe(&get("/p?page=3"), None, true);
        save_into(&b, &mut table);
        assert_eq!(stored_n(&table, key), 281);
        let host: HostProfile =
            serde_json::from_str(&table["@shop.example"]).expect("host profile");
        assert_eq!(host.n, 281);
        // A restarted node loads the sum.
        let c = Baselines::new(config);
        c.restore(table.iter().map(|(k, v)| SavedBaseline {
            endpoint: k.clone(),
            requests: 0,
            profile: v.clone(),
        }));
        assert_eq!(c.status().established, 1);
        // A failed save loses nothing: the next delta covers it.
        for _ in 0..5 {
            c.observe(&get("/p?page=2"), None, true);
        }
        let lost = c.snapshot();
        c.unsaved(lost);
        save_into(&c, &mut table);
        assert_eq!(stored_n(&table, key), 286);
    }
}
