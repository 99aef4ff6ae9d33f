//! The CrowdSec Local API as bouncers use it, so that any CrowdSec bouncer (firewall,
//! nginx, Traefik, HAProxy…) can enforce Palisade's bans unchanged:
//!
//! - `GET /v1/decisions/stream?startup=true|false`: `{"deleted": [...], "new": [...]}`
//!   (`null` for an empty list, as CrowdSec sends it). `startup=true` gives every ban
//!   in force and resets the bouncer's position; later pulls give what changed since
//!   that bouncer's last pull: bans created or extended go in `new`, bans deleted or
//!   expired in `deleted`.
//! - `GET /v1/decisions?ip=…` (also `range`, `scope`/`value`, `contains`, `type`): the
//!   bans in force covering an address, answered from memory; `null` when none.
//!
//! Authenticated by `X-Api-Key` holding a key with the `bouncer` scope (one key per
//! bouncer: the position is kept per key); a missing or wrong key gets CrowdSec's 403
//! `{"message": "access forbidden"}`. Bouncers only know
//! bans: allow-list entries are never sent, and a ban overlapping an allow-list entry
//! is left out of `new` (and put in `deleted`, for a bouncer that had it already).
//! Origins are named as CrowdSec's: manual decisions are `cscli`, automatic ones
//! `crowdsec`; the scenario field carries Palisade's scenario or the person's reason.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_core::Timestamp;
use palisade_core::decision::{
    Decision, DecisionKind, DecisionOrigin, DecisionScope, DecisionTarget, go_duration,
};
use palisade_core::metrics::registry;
use palisade_core::net::IpNet;
use palisade_store::{DecisionQuery, MAX_LIMIT, StoreError};
use serde::Serialize;

use crate::AppState;
use crate::auth::Principal;

/// Removals older than this are not reported (at startup, or to a bouncer whose last
/// pull is older): a bouncer that has been away that long restarts from `startup`.
pub const REMOVED_HORIZON_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Removals are looked for this far before the last pull, as CrowdSec does, so that a
/// deletion committed while the last pull was being answered is not missed.
const DELETED_OVERLAP_MICROS: i64 = 2_000_000;

/// The remaining duration reported for a ban without an end (ten years).
const FOREVER_MICROS: i64 = 87_600 * 3600 * 1_000_000;

/// Rows read from the store per query while building a pull.
const PAGE: u32 = 1000;

/// One decision in CrowdSec's wire format (`models.Decision`), fields in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LapiDecision {
    /// What remains, as a Go duration (`3h59m58.5s`); negative once removed.
    pub duration: String,
    /// Decision id.
    pub id: i64,
    /// `cscli` (a person) or `crowdsec` (a scenario or the WAF).
    pub origin: String,
    /// The scenario, or the reason a person gave.
    pub scenario: String,
    /// `Ip` or `Range`.
    pub scope: String,
    /// Always `ban`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it ends (RFC 3339), when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The address or CIDR network.
    pub value: String,
}

impl LapiDecision {
    /// The wire form of a ban at `now`.
    pub fn of(d: &Decision, now: Timestamp) -> Self {
        let end = d.deleted_at.or(d.expires_at);
        let remaining = end.map_or(FOREVER_MICROS, |e| {
            e.as_micros().saturating_sub(now.as_micros())
        });
        LapiDecision {
            duration: go_duration(remaining),
            id: d.id,
            origin: lapi_origin(d.origin).to_owned(),
            scenario: d.scenario.clone(),
            scope: lapi_scope(d.scope).to_owned(),
            kind: "ban".to_owned(),
            until: end.map(|e| e.to_string()),
            value: d.value.clone(),
        }
    }
}

fn lapi_origin(o: DecisionOrigin) -> &'static str {
    match o {
        DecisionOrigin::Manual => "cscli",
        DecisionOrigin::Scenario | DecisionOrigin::Waf => "crowdsec",
    }
}

fn lapi_scope(s: DecisionScope) -> &'static str {
    match s {
        DecisionScope::Ip => "Ip",
        DecisionScope::Range => "Range",
    }
}

/// The stream's answer. Keys in CrowdSec's (alphabetical) order; an empty list is `null`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamResponse {
    /// Bans a bouncer must drop.
    pub deleted: Option<Vec<LapiDecision>>,
    /// Bans a bouncer must enforce.
    pub new: Option<Vec<LapiDecision>>,
}

/// CrowdSec's error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LapiError {
    /// What went wrong.
    pub message: String,
}

/// 403 `{"message":"access forbidden"}`: what the Local API answers a bad or missing key.
pub fn forbidden() -> Response {
    lapi_error(StatusCode::FORBIDDEN, "access forbidden")
}

fn lapi_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(LapiError {
            message: message.to_owned(),
        }),
    )
        .into_response()
}

fn store_error(e: &StoreError) -> Response {
    if e.is_transient() {
        lapi_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable",
        )
    } else {
        tracing::error!(message = "Bouncer request failed.", error = %e);
        lapi_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

/// The bouncer-side filters CrowdSec's stream accepts.
#[derive(Debug, Clone)]
struct Filter {
    scopes: Vec<DecisionScope>,
    origins: Option<Vec<String>>,
    containing: Vec<String>,
    not_containing: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            scopes: vec![DecisionScope::Ip, DecisionScope::Range],
            origins: None,
            containing: Vec::new(),
            not_containing: Vec::new(),
        }
    }
}

fn words(v: &str) -> Vec<String> {
    v.split(',')
        .map(|w| w.trim().to_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

impl Filter {
    fn from_pairs(pairs: &[(String, String)]) -> Filter {
        let mut f = Filter::default();
        for (k, v) in pairs {
            match k.as_str() {
                "scopes" => {
                    f.scopes = words(v)
                        .iter()
                        .filter_map(|s| DecisionScope::parse(s))
                        .collect();
                }
                "origins" => f.origins = Some(words(v)),
                "scenarios_containing" => f.containing = words(v),
                "scenarios_not_containing" => f.not_containing = words(v),
                _ => {}
            }
        }
        f
    }

    fn keep(&self, d: &Decision) -> bool {
        let scenario = d.scenario.to_ascii_lowercase();
        d.kind == DecisionKind::Ban
            && self.scopes.contains(&d.scope)
            && self
                .origins
                .as_ref()
                .is_none_or(|o| o.iter().any(|o| o == lapi_origin(d.origin)))
            && (self.containing.is_empty() || self.containing.iter().any(|w| scenario.contains(w)))
            && !self.not_containing.iter().any(|w| scenario.contains(w))
    }
}

/// The two lists of a pull, deduplicated by id; a value in `new` is not also in
/// `deleted` (bouncers key bans by value).
#[derive(Debug, Default)]
struct Lists {
    new: HashMap<i64, Decision>,
    deleted: HashMap<i64, Decision>,
}

impl Lists {
    fn finish(self, filter: &Filter, now: Timestamp) -> StreamResponse {
        let mut new: Vec<Decision> = self.new.into_values().filter(|d| filter.keep(d)).collect();
        new.sort_unstable_by_key(|d| d.id);
        let enforced: HashSet<&str> = new.iter().map(|d| d.value.as_str()).collect();
        let mut deleted: Vec<Decision> = self
            .deleted
            .into_values()
            .filter(|d| filter.keep(d) && !enforced.contains(d.value.as_str()))
            .collect();
        deleted.sort_unstable_by_key(|d| d.id);
        let wire = |v: Vec<Decision>| {
            (!v.is_empty()).then(|| v.iter().map(|d| LapiDecision::of(d, now)).collect())
        };
        StreamResponse {
            deleted: wire(deleted),
            new: wire(new),
        }
    }
}

fn overlaps_any(d: &Decision, allows: &[Decision]) -> bool {
    allows.iter().any(|a| a.overlaps(&d.net))
}

/// The startup pull: every ban in force that no allow-list entry overlaps in `new`;
/// bans removed within the horizon, and bans an allow-list entry overlaps, in `deleted`.
fn startup_lists(active: &[Decision], recently_changed: &[Decision], now: Timestamp) -> Lists {
    let allows: Vec<Decision> = active
        .iter()
        .filter(|d| d.kind == DecisionKind::Allow)
        .cloned()
        .collect();
    let mut lists = Lists::default();
    for d in active.iter().filter(|d| d.kind == DecisionKind::Ban) {
        let list = if overlaps_any(d, &allows) {
            &mut lists.deleted
        } else {
            &mut lists.new
        };
        list.insert(d.id, d.clone());
    }
    for d in recently_changed {
        if d.kind == DecisionKind::Ban && !d.is_active(now) {
            lists.deleted.insert(d.id, d.clone());
        }
    }
    lists
}

/// What a delta pull needs from the store beyond the changes themselves.
#[derive(Debug, Default)]
struct DeltaPlan {
    /// Allow-list entries created or extended since the last pull: the bans they
    /// overlap must be dropped.
    allowed: Vec<IpNet>,
    /// Allow-list entries removed since the last pull: the bans they overlapped are
    /// enforceable again.
    unallowed: Vec<IpNet>,
}

/// A delta pull from the changes since the last pull: bans created or extended after
/// `since` go in `new` (unless an allow-list entry overlaps them), bans removed after
/// `removed_since` in `deleted`.
fn delta_lists(
    changes: &[Decision],
    allows: &[Decision],
    since: Timestamp,
    removed_since: Timestamp,
    now: Timestamp,
) -> (Lists, DeltaPlan) {
    let mut lists = Lists::default();
    let mut plan = DeltaPlan::default();
    for d in changes {
        let active = d.is_active(now);
        let removed_in_window = !active
            && d.deleted_at
                .or(d.expires_at)
                .is_some_and(|end| end > removed_since);
        match d.kind {
            DecisionKind::Ban if active => {
                if d.updated_at > since && !overlaps_any(d, allows) {
                    lists.new.insert(d.id, d.clone());
                }
            }
            DecisionKind::Ban => {
                if removed_in_window {
                    lists.deleted.insert(d.id, d.clone());
                }
            }
            DecisionKind::Allow if active => {
                if d.updated_at > since {
                    plan.allowed.push(d.net);
                }
            }
            DecisionKind::Allow => {
                if removed_in_window {
                    plan.unallowed.push(d.net);
                }
            }
        }
    }
    (lists, plan)
}

/// Every change after `since` up to `now`, page by page.
async fn all_changes(
    state: &AppState,
    since: Timestamp,
    now: Timestamp,
) -> Result<Vec<Decision>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = state
            .store
            .decision_changes(since, now, after, PAGE)
            .await?;
        let full = page.len() >= PAGE as usize;
        after = page.last().map_or(after, |d| d.id);
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// Every ban in force overlapping `net`.
async fn bans_overlapping(
    state: &AppState,
    net: IpNet,
    now: Timestamp,
) -> Result<Vec<Decision>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .store
            .query_decisions(&DecisionQuery {
                kind: Some(DecisionKind::Ban),
                overlaps: Some(net),
                active: Some(true),
                now,
                cursor,
                limit: MAX_LIMIT,
                ..DecisionQuery::default()
            })
            .await?;
        out.extend(page.items);
        match page
            .next_cursor
            .as_deref()
            .and_then(palisade_store::Cursor::decode)
        {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

async fn build_pull(
    state: &AppState,
    startup: bool,
    last: Option<Timestamp>,
    now: Timestamp,
) -> Result<Lists, StoreError> {
    let horizon = now.add_micros(-REMOVED_HORIZON_MICROS);
    if startup {
        let active = state.store.active_decisions(now, None).await?;
        let recent = all_changes(state, horizon, now).await?;
        return Ok(startup_lists(&active, &recent, now));
    }
    // A bouncer never seen pulls everything (as CrowdSec does for an empty last pull).
    let since = last.unwrap_or(Timestamp(0));
    let removed_since = since.add_micros(-DELETED_OVERLAP_MICROS).max(horizon);
    let changes = all_changes(state, since.min(removed_since), now).await?;
    let allows = state
        .store
        .active_decisions(now, Some(DecisionKind::Allow))
        .await?;
    let (mut lists, plan) = delta_lists(&changes, &allows, since, removed_since, now);
    for net in plan.allowed {
        for d in bans_overlapping(state, net, now).await? {
            lists.new.remove(&d.id);
            lists.deleted.insert(d.id, d);
        }
    }
    for net in plan.unallowed {
        for d in bans_overlapping(state, net, now).await? {
            if !overlaps_any(&d, &allows) {
                lists.new.insert(d.id, d);
            }
        }
    }
    Ok(lists)
}

/// The bouncer stream: bans to enforce and to drop since this bouncer's last pull.
#[utoipa::path(get, path = "/v1/decisions/stream", tag = "crowdsec", params(
    ("startup" = Option<bool>, Query, description = "true: every ban in force (the bouncer is starting); resets its position"),
    ("scopes" = Option<String>, Query, description = "Comma-separated scopes to send (default ip,range)"),
    ("origins" = Option<String>, Query, description = "Comma-separated origins to send (cscli, crowdsec)"),
    ("scenarios_containing" = Option<String>, Query, description = "Comma-separated words; only scenarios containing one"),
    ("scenarios_not_containing" = Option<String>, Query, description = "Comma-separated words; no scenario containing one"),
), responses(
    (status = 200, description = "New and deleted bans", body = StreamResponse),
    (status = 400, description = "Malformed query", body = LapiError),
    (status = 403, description = "Missing or wrong key", body = LapiError),
))]
pub async fn decisions_stream(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    method: Method,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Principal::ApiKey { id: key_id, .. } = principal else {
        return forbidden();
    };
    let Ok(Query(pairs)) = query else {
        return lapi_error(StatusCode::BAD_REQUEST, "malformed query string");
    };
    if method == Method::HEAD {
        // Nothing is sent, so the bouncer's position does not move.
        return StatusCode::OK.into_response();
    }
    let startup = pairs.iter().any(|(k, v)| k == "startup" && v == "true");
    let now = Timestamp::now();
    let last = if startup {
        None
    } else {
        state.pipeline.decisions.last_pull(key_id).await
    };
    let lists = match build_pull(&state, startup, last, now).await {
        Ok(l) => l,
        Err(e) => return store_error(&e),
    };
    // The position moves only once the answer is built (as CrowdSec does).
    state.pipeline.decisions.record_pull(key_id, now).await;
    registry()
        .counter(
            "palisade_bouncer_pulls_total",
            "Pulls of the CrowdSec bouncer stream, by kind.",
            &["kind"],
            &[if startup { "startup" } else { "delta" }],
        )
        .inc();
    let body = lists.finish(&Filter::from_pairs(&pairs), now);
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Parameters `GET /v1/decisions` accepts.
const LOOKUP_PARAMS: &[&str] = &[
    "ip",
    "range",
    "scope",
    "value",
    "type",
    "contains",
    "origins",
    "scenarios_containing",
    "scenarios_not_containing",
];

/// The bans in force covering an address or a range (or within it with
/// `contains=false`), from memory; `null` when none or when an allow-list entry covers
/// the address.
#[utoipa::path(get, path = "/v1/decisions", tag = "crowdsec", params(
    ("ip" = Option<String>, Query, description = "An address"),
    ("range" = Option<String>, Query, description = "A CIDR network"),
    ("scope" = Option<String>, Query, description = "ip or range (with value)"),
    ("value" = Option<String>, Query, description = "The address or network (with scope)"),
    ("type" = Option<String>, Query, description = "Only ban is known"),
    ("contains" = Option<bool>, Query, description = "true (default): bans containing the value; false: bans within it"),
    ("origins" = Option<String>, Query, description = "Comma-separated origins (cscli, crowdsec)"),
    ("scenarios_containing" = Option<String>, Query, description = "Comma-separated words"),
    ("scenarios_not_containing" = Option<String>, Query, description = "Comma-separated words"),
), responses(
    (status = 200, description = "The bans, or null", body = Option<Vec<LapiDecision>>),
    (status = 400, description = "Unknown or malformed parameter", body = LapiError),
    (status = 403, description = "Missing or wrong key", body = LapiError),
))]
pub async fn decisions_lookup(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(pairs)) = query else {
        return lapi_error(StatusCode::BAD_REQUEST, "malformed query string");
    };
    match lookup(&state, &pairs, Timestamp::now()) {
        Ok(found) => {
            let body = (!found.is_empty()).then_some(found);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(message) => lapi_error(StatusCode::BAD_REQUEST, &message),
    }
}

fn lookup(
    state: &AppState,
    pairs: &[(String, String)],
    now: Timestamp,
) -> Result<Vec<LapiDecision>, String> {
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, _)| !LOOKUP_PARAMS.contains(&k.as_str()))
    {
        return Err(format!("'{k}' doesn't exist: invalid filter"));
    }
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let parse = |name: &str, v: &str| -> Result<IpNet, String> {
        v.parse::<DecisionTarget>()
            .map(|t| t.net())
            .map_err(|e| format!("{name}: {e}"))
    };
    let target = match (get("ip"), get("range"), get("scope"), get("value")) {
        (Some(ip), _, _, _) => Some(parse("ip", ip)?),
        (None, Some(range), _, _) => Some(parse("range", range)?),
        (None, None, Some(scope), Some(value)) => {
            match DecisionScope::parse(&scope.to_ascii_lowercase()) {
                Some(_) => Some(parse("value", value)?),
                // A scope Palisade does not decide on (username, country…): nothing.
                None => return Ok(Vec::new()),
            }
        }
        _ => None,
    };
    if get("type").is_some_and(|t| !t.eq_ignore_ascii_case("ban")) {
        return Ok(Vec::new());
    }
    let contains = match get("contains") {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => return Err("contains: must be true or false".into()),
    };
    let filter = Filter::from_pairs(pairs);
    let all: Vec<Arc<Decision>> = state
        .pipeline
        .decisions
        .set()
        .decisions()
        .into_iter()
        .filter(|d| d.is_active(now))
        .collect();
    let allows: Vec<Decision> = all
        .iter()
        .filter(|d| d.kind == DecisionKind::Allow)
        .map(|d| (**d).clone())
        .collect();
    if let Some(net) = target
        && allows.iter().any(|a| a.covers(&net))
    {
        return Ok(Vec::new());
    }
    Ok(all
        .iter()
        .filter(|d| filter.keep(d) && !overlaps_any(d, &allows))
        .filter(|d| match target {
            None => true,
            Some(net) if contains => d.covers(&net),
            Some(net) => net.first <= d.net.first && d.net.last <= net.last,
        })
        .map(|d| LapiDecision::of(d, now))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;
    const T: i64 = 1_700_000_000 * SEC;

    fn at(s: i64) -> Timestamp {
        Timestamp(T + s * SEC)
    }

    fn d(id: i64, kind: DecisionKind, value: &str, updated: i64) -> Decision {
        let t: DecisionTarget = value.parse().unwrap();
        Decision {
            id,
            kind,
            scope: t.scope(),
            value: t.to_string(),
            net: t.net(),
            origin: DecisionOrigin::Scenario,
            scenario: "palisade/http-probing".into(),
            created_by: "x".into(),
            threat_id: None,
            created_at: at(updated),
            updated_at: at(updated),
            expires_at: None,
            deleted_at: None,
            deleted_by: None,
        }
    }

    fn ids(v: &Option<Vec<LapiDecision>>) -> Vec<i64> {
        v.as_ref()
            .map(|v| v.iter().map(|d| d.id).collect())
            .unwrap_or_default()
    }

    #[test]
    fn wire_format_matches_crowdsec() {
        let mut ban = d(7, DecisionKind::Ban, "192.0.2.0/24", 0);
        ban.origin = DecisionOrigin::Manual;
        ban.expires_at = Some(at(4 * 3600));
        let json = serde_json::to_string(&LapiDecision::of(&ban, at(1))).unwrap();
        assert_eq!(
            json,
            "{\"duration\":\"3h59m59s\",\"id\":7,\"origin\":\"cscli\",\"scenario\":\"palisade/http-probing\",\
             \"scope\":\"Range\",\"type\":\"ban\",\"until\":\"2023-11-15T02:13:20Z\",\"value\":\"192.0.2.0/24\"}"
        );
        let forever = LapiDecision::of(&d(8, DecisionKind::Ban, "2001:db8::1", 0), at(0));
        assert_eq!(forever.duration, "87600h0m0s");
        assert_eq!((forever.scope.as_str(), forever.until), ("Ip", None));
        assert_eq!(forever.origin, "crowdsec");
        let empty = Lists::default().finish(&Filter::default(), at(0));
        assert_eq!(
            serde_json::to_string(&empty).unwrap(),
            "{\"deleted\":null,\"new\":null}"
        );
    }

    #[test]
    fn startup_sends_bans_in_force_minus_allow_listed_ones() {
        let mut gone = d(3, DecisionKind::Ban, "192.0.2.3", 0);
        gone.deleted_at = Some(at(5));
        let mut rebanned = d(4, DecisionKind::Ban, "192.0.2.1", 0);
        rebanned.expires_at = Some(at(3));
        let active = vec![
            d(1, DecisionKind::Ban, "192.0.2.1", 0),
            d(2, DecisionKind::Ban, "198.51.100.0/24", 0),
            d(5, DecisionKind::Allow, "198.51.100.7", 0),
        ];
        let r =
            startup_lists(&active, &[gone, rebanned], at(10)).finish(&Filter::default(), at(10));
        assert_eq!(ids(&r.new), vec![1]);
        // The overlapped range is dropped; 192.0.2.1's old ban is not sent as deleted
        // since a ban on that value is in force.
        assert_eq!(ids(&r.deleted), vec![2, 3]);
    }

    #[test]
    fn deltas_follow_changes_and_allow_list_entries() {
        let mut extended = d(1, DecisionKind::Ban, "192.0.2.1", 12);
        extended.created_at = at(0);
        let old = d(2, DecisionKind::Ban, "192.0.2.2", 5);
        let mut deleted = d(3, DecisionKind::Ban, "192.0.2.3", 15);
        deleted.deleted_at = Some(at(15));
        let mut expired = d(4, DecisionKind::Ban, "192.0.2.4", 0);
        expired.expires_at = Some(at(14));
        let shadowed = d(5, DecisionKind::Ban, "203.0.113.0/24", 13);
        let allow = d(6, DecisionKind::Allow, "203.0.113.9", 13);
        let mut unallow = d(7, DecisionKind::Allow, "198.51.100.0/24", 0);
        unallow.deleted_at = Some(at(16));
        let changes = vec![
            extended,
            old,
            deleted,
            expired,
            shadowed,
            allow.clone(),
            unallow,
        ];
        let (lists, plan) = delta_lists(&changes, &[allow], at(10), at(8), at(20));
        let r = lists.finish(&Filter::default(), at(20));
        assert_eq!(ids(&r.new), vec![1]);
        assert_eq!(ids(&r.deleted), vec![3, 4]);
        assert_eq!(plan.allowed.len(), 1);
        assert_eq!(plan.unallowed.len(), 1);
        let deleted = r.deleted.unwrap();
        assert!(
            deleted[0].duration.starts_with("-5s"),
            "{}",
            deleted[0].duration
        );
    }

    #[test]
    fn bouncer_filters() {
        let mut manual = d(1, DecisionKind::Ban, "192.0.2.1", 0);
        manual.origin = DecisionOrigin::Manual;
        manual.scenario = "manual ban by admin".into();
        let range = d(2, DecisionKind::Ban, "10.0.0.0/8", 0);
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect()
        };
        let keep = |f: &Filter| -> Vec<i64> {
            [&manual, &range]
                .iter()
                .filter(|d| f.keep(d))
                .map(|d| d.id)
                .collect()
        };
        assert_eq!(keep(&Filter::from_pairs(&pairs(&[]))), vec![1, 2]);
        assert_eq!(
            keep(&Filter::from_pairs(&pairs(&[("scopes", "Ip")]))),
            vec![1]
        );
        assert_eq!(
            keep(&Filter::from_pairs(&pairs(&[("origins", "crowdsec")]))),
            vec![2]
        );
        assert_eq!(
            keep(&Filter::from_pairs(&pairs(&[(
                "scenarios_containing",
                "probing,x"
            )]))),
            vec![2]
        );
        assert_eq!(
            keep(&Filter::from_pairs(&pairs(&[(
                "scenarios_not_containing",
                "MANUAL"
            )]))),
            vec![2]
        );
    }
}
