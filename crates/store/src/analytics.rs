//! The analytics half of the store: per-minute and per-hour roll-ups, the most frequent
//! keys of each hour, and the exact counts built from them.
//!
//! # How counts stay exact
//!
//! Stored series (events, threats, the rules of threats) are rolled up by id: a
//! worker calls [`AnalyticsStore::roll_up`], which adds every row past the last
//! rolled-up id (the watermark) into the minute and hour buckets of its time and moves
//! the watermark, in one transaction. A row is therefore counted exactly once, however
//! late it arrives (an import of last month's log lands in last month's buckets), and
//! only ids that can no longer be taken by a transaction still in flight are rolled up
//! (PostgreSQL: read under the writers' advisory lock).
//!
//! [`AnalyticsStore::count_exact`] answers a period with whole hours from the hour
//! buckets, the whole minutes at its edges from the minute buckets, the part-minutes
//! and whatever the roll-ups no longer cover from the rows themselves (by the time
//! index), plus the rows past the watermark (by the primary key): the same number a
//! `count(*)` over the rows would give, at the cost of a few hundred index entries.
//! Retention deletes rows by time, oldest first, so buckets older than the oldest row
//! still stored (the "floor") are never used.

use async_trait::async_trait;
use palisade_core::Timestamp;
use serde::Serialize;

use crate::{Count, StoreError};

/// Bucket width of a roll-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Width {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
}

impl Width {
    /// The width in seconds (as stored).
    pub const fn secs(self) -> i64 {
        match self {
            Width::Minute => 60,
            Width::Hour => 3600,
        }
    }

    /// The width in microseconds.
    pub const fn micros(self) -> i64 {
        self.secs() * 1_000_000
    }

    /// The start of the bucket holding `ts` (floor, also before 1970).
    pub const fn floor(self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.micros())
    }

    /// The start of the first bucket at or after `ts`.
    pub const fn ceil(self, ts: i64) -> i64 {
        let f = self.floor(ts);
        if f == ts { f } else { f + self.micros() }
    }
}

/// A series kept in the roll-ups. Each has three dimensions (see [`Dim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Series {
    /// Stored events: (kind, status code, status class such as `4xx`); the status
    /// dimensions are empty for events without a status.
    Events,
    /// Stored threats: (category, severity, decision).
    Threats,
    /// The rules of stored threats, once per threat and rule: (rule id, –, –).
    Rules,
    /// Requests judged live by `/api/v1/check` and the protecting proxies, added by the
    /// sampler of each node: (front `check` or `proxy`, proxy name, outcome).
    Requests,
    /// Latency of live judgements, as histogram buckets: (front, bucket upper bound in
    /// seconds or `+Inf`, –); the value is the number of requests in that bucket.
    Latency,
}

impl Series {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Series::Events => "events",
            Series::Threats => "threats",
            Series::Rules => "rules",
            Series::Requests => "requests",
            Series::Latency => "latency",
        }
    }

    /// Whether the series is rolled up from stored rows (and so can be counted exactly),
    /// rather than added from live metrics.
    pub const fn is_stored(self) -> bool {
        matches!(self, Series::Events | Series::Threats | Series::Rules)
    }
}

/// One of the three dimensions of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// The first (kind, category, rule id, front).
    D1,
    /// The second (status, severity, proxy, bucket bound).
    D2,
    /// The third (status class, decision, outcome).
    D3,
}

impl Dim {
    /// The roll-up column.
    pub(crate) const fn column(self) -> &'static str {
        match self {
            Dim::D1 => "dim1",
            Dim::D2 => "dim2",
            Dim::D3 => "dim3",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Dim::D1 => 0,
            Dim::D2 => 1,
            Dim::D3 => 2,
        }
    }
}

/// Keep rows whose dimension has one of these values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimFilter {
    /// The dimension.
    pub dim: Dim,
    /// Accepted values (at least one).
    pub values: Vec<String>,
}

impl DimFilter {
    /// `dim` ∈ `values`.
    pub fn one_of(dim: Dim, values: &[&str]) -> DimFilter {
        DimFilter {
            dim,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }
}

/// An exact count over `[from, to)`, optionally grouped by one dimension, most first.
#[derive(Debug, Clone)]
pub struct CountQuery {
    /// A stored series ([`Series::is_stored`]); live series are answered from their
    /// minute buckets.
    pub series: Series,
    /// At or after.
    pub from: Timestamp,
    /// Before.
    pub to: Timestamp,
    /// Conditions, all of which must hold.
    pub filters: Vec<DimFilter>,
    /// Group by this dimension (keys as stored; rule ids as their number); `None`: one
    /// total with the key `""`.
    pub group: Option<Dim>,
    /// At most this many groups (`None`: all).
    pub limit: Option<u32>,
    /// Skip this many groups first.
    pub offset: u32,
}

/// A chart series from the roll-ups.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    /// Which series.
    pub series: Series,
    /// Bucket width.
    pub width: Width,
    /// Buckets starting at or after (rounded down to the width).
    pub from: Timestamp,
    /// Buckets starting before.
    pub to: Timestamp,
    /// Conditions, all of which must hold.
    pub filters: Vec<DimFilter>,
    /// Split by this dimension (`None`: one line with the key `""`).
    pub group: Option<Dim>,
}

/// One point of a chart series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    /// Start of the bucket.
    pub bucket: Timestamp,
    /// The group's key (`""` without grouping).
    pub key: String,
    /// The sum in the bucket.
    pub value: u64,
}

/// The high-cardinality keys kept per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopDimension {
    /// Client addresses of events.
    ClientIp,
    /// Paths of HTTP events.
    Path,
}

impl TopDimension {
    /// Both, in the order they are computed.
    pub const ALL: [TopDimension; 2] = [TopDimension::ClientIp, TopDimension::Path];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TopDimension::ClientIp => "client_ip",
            TopDimension::Path => "path",
        }
    }
}

/// The most frequent client addresses or paths over `[from, to)`.
#[derive(Debug, Clone)]
pub struct TopQuery {
    /// Which keys.
    pub dimension: TopDimension,
    /// At or after.
    pub from: Timestamp,
    /// Before.
    pub to: Timestamp,
    /// Page size.
    pub limit: u32,
    /// Keys skipped (the page's position).
    pub offset: u32,
}

/// A page of top keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopPage {
    /// Keys (an address in text form, or a path) with their counts, most first.
    pub items: Vec<Count>,
    /// Whether more keys follow.
    pub more: bool,
    /// Hours in the period whose stored list was cut at the per-hour limit: their keys
    /// below the cut are not counted, so counts may be low by at most what each such
    /// hour's last kept key had. Zero means every count is exact.
    pub truncated_hours: u32,
}

/// What one [`AnalyticsStore::roll_up`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RollupProgress {
    /// Events added to the roll-ups.
    pub events: u64,
    /// Threats added to the roll-ups.
    pub threats: u64,
    /// Whether rows that could be rolled up are left (call again at once).
    pub more: bool,
}

/// A live metric's change over a sampling period, added to the minute and hour of
/// `at` by [`AnalyticsStore::add_rollups`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDelta {
    /// A live series ([`Series::Requests`] or [`Series::Latency`]).
    pub series: Series,
    /// Its three dimensions.
    pub dims: [String; 3],
    /// How much it grew.
    pub value: u64,
}

/// Where the roll-ups stand, for health and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RollupStatus {
    /// Last event id rolled up.
    pub events_id: i64,
    /// Last threat id rolled up.
    pub threats_id: i64,
    /// Hours whose top keys wait to be recomputed.
    pub dirty_hours: u64,
}

/// Roll-ups kept per minute for `minutes` and per hour for `hours`: buckets that start
/// before `now - retention` are deleted.
#[derive(Debug, Clone, Copy)]
pub struct RollupRetention {
    /// Oldest minute bucket to keep.
    pub minutes_from: Timestamp,
    /// Oldest hour bucket (and hourly top keys) to keep.
    pub hours_from: Timestamp,
}

/// Storage for analytics roll-ups. Every `Store` implements it.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Rolls up at most `max_rows` events and as many threats past their watermarks
    /// (see the module documentation); marks the hours they touched for a top-key
    /// refresh. Safe to call from several nodes at once (they take turns).
    async fn roll_up(&self, max_rows: u64, now: Timestamp) -> Result<RollupProgress, StoreError>;

    /// Recomputes the top keys of at most `max_hours` closed hours that received rows
    /// since (an hour is closed `grace` after it ends), keeping `per_hour` keys per
    /// hour and dimension; returns how many hours were done.
    async fn refresh_top(
        &self,
        now: Timestamp,
        grace: std::time::Duration,
        per_hour: u32,
        max_hours: u32,
    ) -> Result<u32, StoreError>;

    /// Adds live metric changes to the minute and hour buckets of `at`.
    async fn add_rollups(&self, at: Timestamp, deltas: &[RollupDelta]) -> Result<(), StoreError>;

    /// Deletes buckets (and hourly top keys) older than the retention; returns the
    /// number of rows deleted.
    async fn prune_rollups(&self, retention: RollupRetention) -> Result<u64, StoreError>;

    /// Where the roll-ups stand.
    async fn rollup_status(&self) -> Result<RollupStatus, StoreError>;

    /// An exact count over a period (stored series), or the sum of the minute buckets
    /// starting in it (live series).
    async fn count_exact(&self, query: &CountQuery) -> Result<Vec<Count>, StoreError>;

    /// A chart series from the roll-ups (with the rows not yet rolled up added to the
    /// buckets they belong to, for stored series), oldest bucket first; empty buckets
    /// are left out.
    async fn rollup_series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError>;

    /// The most frequent client addresses or paths over a period.
    async fn top_keys(&self, query: &TopQuery) -> Result<TopPage, StoreError>;
}
