//! The analytics the API serves: chart series, overviews, trends and top lists, each
//! computed by the store from the roll-ups (exact for stored data, see
//! `palisade_store::AnalyticsStore`), never by loading rows here.

use std::collections::BTreeMap;

use palisade_core::Timestamp;
use palisade_core::metrics::{HistogramSnapshot, LATENCY_BUCKETS};
use palisade_store::{
    Count, CountQuery, Dim, DimFilter, Series, SeriesQuery, SharedStore, StoreError, TopDimension,
    TopQuery, Width,
};
use serde::Serialize;

use crate::realtime::sample::bound_label;

/// Status classes, for filters that want "any status".
const CLASSES: &[&str] = &[
    "0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx",
];

/// A chart metric of `GET /api/v1/analytics/timeseries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Events of every kind stored.
    Events,
    /// HTTP events stored.
    HttpRequests,
    /// HTTP events with a 4xx or 5xx status.
    HttpErrors,
    /// Threats stored.
    Threats,
    /// Threats whose request was refused (blocked or banned).
    Blocked,
    /// Requests judged live by `/api/v1/check` and the protecting proxies.
    Requests,
    /// Of those, refused.
    RequestsBlocked,
    /// Median latency of `/api/v1/check`, in milliseconds.
    CheckLatencyP50,
    /// 99th percentile latency of `/api/v1/check`, in milliseconds.
    CheckLatencyP99,
    /// Median latency of the protecting proxies, in milliseconds.
    ProxyLatencyP50,
    /// 99th percentile latency of the protecting proxies, in milliseconds.
    ProxyLatencyP99,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 11] = [
        Metric::Events,
        Metric::HttpRequests,
        Metric::HttpErrors,
        Metric::Threats,
        Metric::Blocked,
        Metric::Requests,
        Metric::RequestsBlocked,
        Metric::CheckLatencyP50,
        Metric::CheckLatencyP99,
        Metric::ProxyLatencyP50,
        Metric::ProxyLatencyP99,
    ];

    /// The name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Metric::Events => "events",
            Metric::HttpRequests => "http_requests",
            Metric::HttpErrors => "http_errors",
            Metric::Threats => "threats",
            Metric::Blocked => "blocked",
            Metric::Requests => "requests",
            Metric::RequestsBlocked => "requests_blocked",
            Metric::CheckLatencyP50 => "check_latency_p50",
            Metric::CheckLatencyP99 => "check_latency_p99",
            Metric::ProxyLatencyP50 => "proxy_latency_p50",
            Metric::ProxyLatencyP99 => "proxy_latency_p99",
        }
    }

    /// Reads an API name.
    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The series it reads and the conditions on it.
    fn source(self) -> (Series, Vec<DimFilter>) {
        match self {
            Metric::Events => (Series::Events, vec![]),
            Metric::HttpRequests => (Series::Events, vec![DimFilter::one_of(Dim::D1, &["http"])]),
            Metric::HttpErrors => (
                Series::Events,
                vec![
                    DimFilter::one_of(Dim::D1, &["http"]),
                    DimFilter::one_of(Dim::D3, &["4xx", "5xx"]),
                ],
            ),
            Metric::Threats => (Series::Threats, vec![]),
            Metric::Blocked => (
                Series::Threats,
                vec![DimFilter::one_of(Dim::D3, &["block", "ban"])],
            ),
            Metric::Requests => (Series::Requests, vec![]),
            Metric::RequestsBlocked => (
                Series::Requests,
                vec![DimFilter::one_of(Dim::D3, &["block", "ban"])],
            ),
            Metric::CheckLatencyP50 | Metric::CheckLatencyP99 => (
                Series::Latency,
                vec![DimFilter::one_of(Dim::D1, &["check"])],
            ),
            Metric::ProxyLatencyP50 | Metric::ProxyLatencyP99 => (
                Series::Latency,
                vec![DimFilter::one_of(Dim::D1, &["proxy"])],
            ),
        }
    }

    /// The breakdowns `by=` accepts.
    pub fn breakdowns(self) -> &'static [(&'static str, Dim)] {
        match self {
            Metric::Events => &[
                ("kind", Dim::D1),
                ("status", Dim::D2),
                ("status_class", Dim::D3),
            ],
            Metric::HttpRequests | Metric::HttpErrors => {
                &[("status", Dim::D2), ("status_class", Dim::D3)]
            }
            Metric::Threats | Metric::Blocked => &[
                ("category", Dim::D1),
                ("severity", Dim::D2),
                ("decision", Dim::D3),
            ],
            Metric::Requests | Metric::RequestsBlocked => {
                &[("front", Dim::D1), ("proxy", Dim::D2), ("outcome", Dim::D3)]
            }
            _ => &[],
        }
    }

    /// The quantile a latency metric shows.
    fn quantile(self) -> Option<f64> {
        match self {
            Metric::CheckLatencyP50 | Metric::ProxyLatencyP50 => Some(0.5),
            Metric::CheckLatencyP99 | Metric::ProxyLatencyP99 => Some(0.99),
            _ => None,
        }
    }
}

/// One point of a chart line.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Point {
    /// Start of the bucket.
    #[schema(value_type = String, format = DateTime)]
    pub t: Timestamp,
    /// The count, or the latency in milliseconds (null: no request in the bucket).
    pub v: Option<f64>,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Line {
    /// The breakdown's value (`""` without `by`).
    pub key: String,
    /// One point per bucket of the period, empty buckets included.
    pub points: Vec<Point>,
}

/// A chart series.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Timeseries {
    /// The metric.
    pub metric: Metric,
    /// Bucket width.
    pub bucket: palisade_store::Width,
    /// First bucket.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// End of the period.
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// The breakdown, when asked for.
    pub by: Option<String>,
    /// `count` or `ms`.
    pub unit: &'static str,
    /// One line per breakdown value (one line without `by`).
    pub lines: Vec<Line>,
}

/// A chart series request.
#[derive(Debug, Clone)]
pub struct TimeseriesQuery {
    /// What to chart.
    pub metric: Metric,
    /// Bucket width.
    pub bucket: Width,
    /// Period start.
    pub from: Timestamp,
    /// Period end.
    pub to: Timestamp,
    /// A breakdown of [`Metric::breakdowns`].
    pub by: Option<(&'static str, Dim)>,
}

/// Charts a metric.
pub async fn timeseries(
    store: &SharedStore,
    q: &TimeseriesQuery,
) -> Result<Timeseries, StoreError> {
    let (series, filters) = q.metric.source();
    let first = q.bucket.floor(q.from.as_micros());
    let buckets: Vec<i64> = (0..)
        .map(|i| first + i * q.bucket.micros())
        .take_while(|t| *t < q.to.as_micros())
        .collect();
    let quantile = q.metric.quantile();
    let rows = store
        .rollup_series(&SeriesQuery {
            series,
            width: q.bucket,
            from: q.from,
            to: q.to,
            filters,
            group: if quantile.is_some() {
                Some(Dim::D2)
            } else {
                q.by.map(|(_, d)| d)
            },
        })
        .await?;
    let lines = match quantile {
        Some(qu) => vec![Line {
            key: String::new(),
            points: latency_points(&buckets, &rows, qu),
        }],
        None => count_lines(&buckets, &rows),
    };
    Ok(Timeseries {
        metric: q.metric,
        bucket: q.bucket,
        from: Timestamp(first),
        to: q.to,
        by: q.by.map(|(name, _)| name.to_owned()),
        unit: if quantile.is_some() { "ms" } else { "count" },
        lines,
    })
}

fn count_lines(buckets: &[i64], rows: &[palisade_store::SeriesPoint]) -> Vec<Line> {
    let mut by_key: BTreeMap<&str, BTreeMap<i64, u64>> = BTreeMap::new();
    for r in rows {
        *by_key
            .entry(r.key.as_str())
            .or_default()
            .entry(r.bucket.as_micros())
            .or_default() += r.value;
    }
    if by_key.is_empty() {
        by_key.insert("", BTreeMap::new());
    }
    by_key
        .into_iter()
        .map(|(key, values)| Line {
            key: key.to_owned(),
            points: buckets
                .iter()
                .map(|t| Point {
                    t: Timestamp(*t),
                    v: Some(values.get(t).copied().unwrap_or(0) as f64),
                })
                .collect(),
        })
        .collect()
}

/// Rebuilds each bucket's latency histogram from its stored bucket counts.
fn latency_points(buckets: &[i64], rows: &[palisade_store::SeriesPoint], q: f64) -> Vec<Point> {
    let labels: Vec<String> = LATENCY_BUCKETS
        .iter()
        .map(|b| bound_label(Some(*b)))
        .collect();
    let mut per: BTreeMap<i64, HistogramSnapshot> = BTreeMap::new();
    for r in rows {
        let h = per
            .entry(r.bucket.as_micros())
            .or_insert_with(|| HistogramSnapshot {
                bounds: LATENCY_BUCKETS.to_vec(),
                counts: vec![0; LATENCY_BUCKETS.len()],
                overflow: 0,
                sum_secs: 0.0,
            });
        match labels.iter().position(|l| *l == r.key) {
            Some(i) => {
                if let Some(c) = h.counts.get_mut(i) {
                    *c += r.value;
                }
            }
            None => h.overflow += r.value,
        }
    }
    buckets
        .iter()
        .map(|t| Point {
            t: Timestamp(*t),
            v: per
                .get(t)
                .and_then(|h| h.quantile(q))
                .map(|s| (s * 1e6).round() / 1e3),
        })
        .collect()
}

/// Totals of stored events over a period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventTotals {
    /// Events of every kind.
    pub total: u64,
    /// By kind, most first.
    pub by_kind: Vec<Count>,
}

/// Totals of stored HTTP events.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HttpTotals {
    /// HTTP events.
    pub requests: u64,
    /// With a 4xx or 5xx status.
    pub errors: u64,
    /// By status class (`2xx`…; `""` for lines without a status), most first.
    pub by_status_class: Vec<Count>,
}

/// Totals of stored threats.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ThreatTotals {
    /// Threats.
    pub total: u64,
    /// Whose request was refused (blocked or banned).
    pub blocked: u64,
    /// By category, most first.
    pub by_category: Vec<Count>,
    /// By severity, most first.
    pub by_severity: Vec<Count>,
    /// By decision (allow, detect, block, ban), most first.
    pub by_decision: Vec<Count>,
}

/// Requests judged live, from the per-minute roll-ups of the live counters (to the
/// minute: the minutes that start in the period).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiveTotals {
    /// Requests judged by `/api/v1/check` and the protecting proxies.
    pub requests: u64,
    /// Of those, refused.
    pub blocked: u64,
    /// By front (`check`, `proxy`), most first.
    pub by_front: Vec<Count>,
}

/// `GET /api/v1/analytics/overview`: exact totals of the stored data over a period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Overview {
    /// Period start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Period end.
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Stored events.
    pub events: EventTotals,
    /// Stored HTTP events.
    pub http: HttpTotals,
    /// Stored threats.
    pub threats: ThreatTotals,
    /// Live requests.
    pub live: LiveTotals,
}

fn sum_of(counts: &[Count], keys: &[&str]) -> u64 {
    counts
        .iter()
        .filter(|c| keys.is_empty() || keys.contains(&c.key.as_str()))
        .map(|c| c.count)
        .sum()
}

async fn grouped(
    store: &SharedStore,
    series: Series,
    from: Timestamp,
    to: Timestamp,
    filters: Vec<DimFilter>,
    group: Dim,
) -> Result<Vec<Count>, StoreError> {
    store
        .count_exact(&CountQuery {
            series,
            from,
            to,
            filters,
            group: Some(group),
            limit: None,
            offset: 0,
        })
        .await
}

/// The overview of `[from, to)`.
pub async fn overview(
    store: &SharedStore,
    from: Timestamp,
    to: Timestamp,
) -> Result<Overview, StoreError> {
    let by_kind = grouped(store, Series::Events, from, to, vec![], Dim::D1).await?;
    let by_class = grouped(
        store,
        Series::Events,
        from,
        to,
        vec![DimFilter::one_of(Dim::D1, &["http"])],
        Dim::D3,
    )
    .await?;
    let by_category = grouped(store, Series::Threats, from, to, vec![], Dim::D1).await?;
    let by_severity = grouped(store, Series::Threats, from, to, vec![], Dim::D2).await?;
    let by_decision = grouped(store, Series::Threats, from, to, vec![], Dim::D3).await?;
    let live = grouped(store, Series::Requests, from, to, vec![], Dim::D3).await?;
    let by_front = grouped(store, Series::Requests, from, to, vec![], Dim::D1).await?;
    Ok(Overview {
        from,
        to,
        events: EventTotals {
            total: sum_of(&by_kind, &[]),
            by_kind,
        },
        http: HttpTotals {
            requests: sum_of(&by_class, &[]),
            errors: sum_of(&by_class, &["4xx", "5xx"]),
            by_status_class: by_class,
        },
        threats: ThreatTotals {
            total: sum_of(&by_category, &[]),
            blocked: sum_of(&by_decision, &["block", "ban"]),
            by_category,
            by_severity,
            by_decision,
        },
        live: LiveTotals {
            requests: sum_of(&live, &[]),
            blocked: sum_of(&live, &["block", "ban"]),
            by_front,
        },
    })
}

/// One figure this period against the one before.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Trend {
    /// The figure (`events`, `http_requests`, `http_errors`, `threats`, `blocked`,
    /// `requests`, `requests_blocked`).
    pub metric: &'static str,
    /// This period.
    pub current: u64,
    /// The period of the same length just before.
    pub previous: u64,
    /// Change in percent; null when the previous period had none.
    pub change_pct: Option<f64>,
}

/// `GET /api/v1/analytics/trends`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Trends {
    /// This period's start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// This period's end.
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// The previous period's start (it ends at `from`).
    #[schema(value_type = String, format = DateTime)]
    pub previous_from: Timestamp,
    /// Each figure.
    pub trends: Vec<Trend>,
}

fn figures(o: &Overview) -> [(&'static str, u64); 7] {
    [
        ("events", o.events.total),
        ("http_requests", o.http.requests),
        ("http_errors", o.http.errors),
        ("threats", o.threats.total),
        ("blocked", o.threats.blocked),
        ("requests", o.live.requests),
        ("requests_blocked", o.live.blocked),
    ]
}

/// This period against the one of the same length before it.
pub async fn trends(
    store: &SharedStore,
    from: Timestamp,
    to: Timestamp,
) -> Result<Trends, StoreError> {
    let previous_from = from.add_micros(-(to.as_micros() - from.as_micros()));
    let now = overview(store, from, to).await?;
    let before = overview(store, previous_from, from).await?;
    let trends = figures(&now)
        .into_iter()
        .zip(figures(&before))
        .map(|((metric, current), (_, previous))| Trend {
            metric,
            current,
            previous,
            change_pct: (previous > 0).then(|| {
                ((current as f64 - previous as f64) / previous as f64 * 1000.0).round() / 10.0
            }),
        })
        .collect();
    Ok(Trends {
        from,
        to,
        previous_from,
        trends,
    })
}

/// What a top list ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopBy {
    /// Client addresses of stored events.
    ClientIp,
    /// Paths of stored HTTP events.
    Path,
    /// Rules of stored threats.
    Rule,
    /// Categories of stored threats.
    Category,
    /// Status codes of stored HTTP events.
    Status,
}

impl TopBy {
    /// Every dimension.
    pub const ALL: [TopBy; 5] = [
        TopBy::ClientIp,
        TopBy::Path,
        TopBy::Rule,
        TopBy::Category,
        TopBy::Status,
    ];

    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TopBy::ClientIp => "client_ip",
            TopBy::Path => "path",
            TopBy::Rule => "rule",
            TopBy::Category => "category",
            TopBy::Status => "status",
        }
    }

    /// Reads an API name.
    pub fn parse(s: &str) -> Option<TopBy> {
        TopBy::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// A page of a top list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TopList {
    /// What is ranked.
    pub dimension: TopBy,
    /// Period start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Period end.
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Keys with their counts, most first.
    pub items: Vec<Count>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Whether every count is exact. Client addresses and paths of closed hours come
    /// from per-hour lists of the most frequent keys; when an hour had more keys than
    /// its list keeps, keys below its cut are not counted for it, and this is false.
    pub exact: bool,
}

/// A top list request.
#[derive(Debug, Clone)]
pub struct TopListQuery {
    /// What to rank.
    pub by: TopBy,
    /// Period start.
    pub from: Timestamp,
    /// Period end.
    pub to: Timestamp,
    /// Page size.
    pub limit: u32,
    /// Keys to skip (from the cursor).
    pub offset: u32,
}

/// A cursor for the page after `offset + limit` keys.
fn next_cursor(q: &TopListQuery, more: bool) -> Option<String> {
    more.then(|| {
        palisade_store::Cursor {
            ts: 0,
            id: i64::from(q.offset.saturating_add(q.limit)),
        }
        .encode()
    })
}

/// Ranks keys over a period.
pub async fn top(store: &SharedStore, q: &TopListQuery) -> Result<TopList, StoreError> {
    let counted = |series, filters, group| CountQuery {
        series,
        from: q.from,
        to: q.to,
        filters,
        group: Some(group),
        limit: Some(q.limit.saturating_add(1)),
        offset: q.offset,
    };
    let (mut items, exact, known_more) = match q.by {
        TopBy::ClientIp | TopBy::Path => {
            let dimension = if q.by == TopBy::ClientIp {
                TopDimension::ClientIp
            } else {
                TopDimension::Path
            };
            let page = store
                .top_keys(&TopQuery {
                    dimension,
                    from: q.from,
                    to: q.to,
                    limit: q.limit,
                    offset: q.offset,
                })
                .await?;
            (page.items, page.truncated_hours == 0, Some(page.more))
        }
        TopBy::Rule => (
            store
                .count_exact(&counted(Series::Rules, vec![], Dim::D1))
                .await?,
            true,
            None,
        ),
        TopBy::Category => (
            store
                .count_exact(&counted(Series::Threats, vec![], Dim::D1))
                .await?,
            true,
            None,
        ),
        TopBy::Status => (
            store
                .count_exact(&counted(
                    Series::Events,
                    vec![
                        DimFilter::one_of(Dim::D1, &["http"]),
                        DimFilter::one_of(Dim::D3, CLASSES),
                    ],
                    Dim::D2,
                ))
                .await?,
            true,
            None,
        ),
    };
    let limit = usize::try_from(q.limit).unwrap_or(usize::MAX);
    let more = known_more.unwrap_or(items.len() > limit);
    items.truncate(limit);
    Ok(TopList {
        dimension: q.by,
        from: q.from,
        to: q.to,
        next_cursor: next_cursor(q, more),
        items,
        exact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_store::SeriesPoint;

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
        for d in TopBy::ALL {
            assert_eq!(TopBy::parse(d.as_str()), Some(d));
        }
        assert_eq!(Metric::parse("cpu"), None);
    }

    #[test]
    fn lines_are_zero_filled_and_latency_rebuilt() {
        let p = |t: i64, key: &str, value| SeriesPoint {
            bucket: Timestamp(t),
            key: key.into(),
            value,
        };
        let lines = count_lines(
            &[0, 60, 120],
            &[p(60, "a", 2), p(60, "b", 1), p(120, "a", 3)],
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].points.iter().map(|p| p.v).collect::<Vec<_>>(),
            vec![Some(0.0), Some(2.0), Some(3.0)]
        );
        let empty = count_lines(&[0, 60], &[]);
        assert_eq!(empty[0].points[1].v, Some(0.0));
        // 9 requests at ≤ 1 ms, 1 over 10 s.
        let points = latency_points(&[0, 60], &[p(0, "0.001", 9), p(0, "+Inf", 1)], 0.5);
        let v = points[0].v.unwrap();
        assert!(v > 0.5 && v <= 1.0, "{v}");
        assert_eq!(points[1].v, None);
        let p99 = latency_points(&[0], &[p(0, "0.001", 9), p(0, "+Inf", 1)], 0.99);
        assert_eq!(p99[0].v, Some(10_000.0));
    }
}
