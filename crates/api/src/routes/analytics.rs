//! `GET /api/v1/analytics/{timeseries,overview,trends,top}`: chart series, exact
//! totals, this period against the previous one, and top lists, all computed by the
//! store from the roll-ups (`palisade_analytics::query`).

use axum::Json;
use axum::extract::{Query, State};
use palisade_analytics::query::{
    self, Metric, Overview, Timeseries, TimeseriesQuery, TopBy, TopList, TopListQuery, Trends,
};
use palisade_core::Timestamp;
use palisade_store::Width;

use crate::AppState;
use crate::params::Params;
use crate::problem::Problem;

type Pairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// The default period: the last 24 hours.
const DEFAULT_PERIOD_SECS: i64 = 86_400;
/// The longest period one request may cover.
const MAX_PERIOD_SECS: i64 = 400 * 86_400;
/// The most buckets one chart may have.
pub const MAX_BUCKETS: i64 = 10_080;
/// Page size of top lists when `limit` is not given, and the largest.
const TOP_DEFAULT: u32 = 10;
const TOP_MAX: u32 = 100;
/// The deepest a top list pages.
const TOP_MAX_OFFSET: i64 = 10_000;

/// `from`/`to` or `range` as a closed period: `to` defaults to now, `from` to 24 hours
/// before `to`; at most 400 days.
pub fn period(p: &Params<'_>, now: Timestamp) -> Result<(Timestamp, Timestamp), Problem> {
    let (from, to) = p.time_range(now)?;
    let to = to.unwrap_or(now);
    let from = from.unwrap_or_else(|| to.add_micros(-DEFAULT_PERIOD_SECS * 1_000_000));
    if from >= to {
        return Err(Problem::invalid("from", "must be earlier than to"));
    }
    if to.as_micros() - from.as_micros() > MAX_PERIOD_SECS * 1_000_000 {
        return Err(Problem::invalid(
            "from",
            "the period may cover at most 400 days",
        ));
    }
    Ok((from, to))
}

fn pairs(query: Pairs) -> Result<Vec<(String, String)>, Problem> {
    query
        .map(|Query(p)| p)
        .map_err(|e| Problem::invalid("query", e.body_text()))
}

/// Query parameters of a period (documentation; parsing is in [`period`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PeriodParams {
    /// At or after this time (RFC 3339 or epoch seconds; default: 24 hours before `to`).
    from: Option<String>,
    /// Before this time (default: now).
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d (not with from/to).
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
}

/// Query parameters of a chart series.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TimeseriesParams {
    /// events, http_requests, http_errors, threats, blocked, requests, requests_blocked,
    /// check_latency_p50, check_latency_p99, proxy_latency_p50 or proxy_latency_p99.
    metric: String,
    /// minute or hour (default: minute up to 6 hours, hour beyond).
    #[param(pattern = "^(minute|hour)$")]
    bucket: Option<String>,
    /// A breakdown, one line per value: kind, status, status_class (events); status,
    /// status_class (http_*); category, severity, decision (threats, blocked); front,
    /// proxy, outcome (requests*).
    by: Option<String>,
    /// At or after this time (default: 24 hours before `to`).
    from: Option<String>,
    /// Before this time (default: now).
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
}

/// A metric as a chart series, one point per bucket.
#[utoipa::path(get, path = "/api/v1/analytics/timeseries", tag = "analytics", params(TimeseriesParams), responses(
    (status = 200, description = "The series", body = Timeseries),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn timeseries(
    State(state): State<AppState>,
    query: Pairs,
) -> Result<Json<Timeseries>, Problem> {
    let pairs = pairs(query)?;
    let p = Params::new(&pairs, &["metric", "bucket", "by", "from", "to", "range"])?;
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
    let metric = match p.get("metric")? {
        None => {
            return Err(Problem::invalid(
                "metric",
                format!("is required: one of {}", names.join(", ")),
            ));
        }
        Some(m) => Metric::parse(m.trim()).ok_or_else(|| {
            Problem::invalid("metric", format!("must be one of {}", names.join(", ")))
        })?,
    };
    let (from, to) = period(&p, Timestamp::now())?;
    let span = to.as_micros() - from.as_micros();
    let bucket = match p.get("bucket")? {
        Some("minute") => Width::Minute,
        Some("hour") => Width::Hour,
        Some(_) => return Err(Problem::invalid("bucket", "must be minute or hour")),
        None if span <= 6 * 3600 * 1_000_000 => Width::Minute,
        None => Width::Hour,
    };
    if span / bucket.micros() > MAX_BUCKETS {
        return Err(Problem::invalid(
            "bucket",
            format!(
                "the period holds more than {MAX_BUCKETS} buckets of a {}; use bucket=hour or a shorter period",
                if bucket == Width::Minute {
                    "minute"
                } else {
                    "hour"
                }
            ),
        ));
    }
    let by = match p.get("by")? {
        None => None,
        Some(b) => {
            let allowed = metric.breakdowns();
            let found = allowed.iter().find(|(name, _)| *name == b.trim()).copied();
            if found.is_none() {
                let list: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                return Err(Problem::invalid(
                    "by",
                    if list.is_empty() {
                        format!("{} has no breakdown", metric.as_str())
                    } else {
                        format!("must be one of {} for {}", list.join(", "), metric.as_str())
                    },
                ));
            }
            found
        }
    };
    let series = query::timeseries(
        &state.store,
        &TimeseriesQuery {
            metric,
            bucket,
            from,
            to,
            by,
        },
    )
    .await?;
    Ok(Json(series))
}

/// Exact totals of the stored events and threats over a period (and the live requests
/// of its minutes).
#[utoipa::path(get, path = "/api/v1/analytics/overview", tag = "analytics", params(PeriodParams), responses(
    (status = 200, description = "Totals", body = Overview),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    query: Pairs,
) -> Result<Json<Overview>, Problem> {
    let pairs = pairs(query)?;
    let p = Params::new(&pairs, &["from", "to", "range"])?;
    let (from, to) = period(&p, Timestamp::now())?;
    Ok(Json(query::overview(&state.store, from, to).await?))
}

/// This period's totals against the period of the same length just before.
#[utoipa::path(get, path = "/api/v1/analytics/trends", tag = "analytics", params(PeriodParams), responses(
    (status = 200, description = "Trends", body = Trends),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn trends(State(state): State<AppState>, query: Pairs) -> Result<Json<Trends>, Problem> {
    let pairs = pairs(query)?;
    let p = Params::new(&pairs, &["from", "to", "range"])?;
    let (from, to) = period(&p, Timestamp::now())?;
    Ok(Json(query::trends(&state.store, from, to).await?))
}

/// Query parameters of a top list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TopParams {
    /// client_ip, path, status (stored events), rule or category (stored threats).
    #[param(pattern = "^(client_ip|path|rule|category|status)$")]
    dimension: String,
    /// At or after this time (default: 24 hours before `to`).
    from: Option<String>,
    /// Before this time (default: now).
    to: Option<String>,
    /// A window ending now: 15m, 1h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|24h|7d|30d)$")]
    range: Option<String>,
    /// Page size, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
}

/// The most frequent keys over a period, most first, a page at a time.
#[utoipa::path(get, path = "/api/v1/analytics/top", tag = "analytics", params(TopParams), responses(
    (status = 200, description = "A page of the list", body = TopList),
    (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
), security(("bearer" = [])))]
pub async fn top(State(state): State<AppState>, query: Pairs) -> Result<Json<TopList>, Problem> {
    let pairs = pairs(query)?;
    let p = Params::new(
        &pairs,
        &["dimension", "from", "to", "range", "limit", "cursor"],
    )?;
    let names: Vec<&str> = TopBy::ALL.iter().map(|d| d.as_str()).collect();
    let by = match p.get("dimension")? {
        None => {
            return Err(Problem::invalid(
                "dimension",
                format!("is required: one of {}", names.join(", ")),
            ));
        }
        Some(d) => TopBy::parse(d.trim()).ok_or_else(|| {
            Problem::invalid("dimension", format!("must be one of {}", names.join(", ")))
        })?,
    };
    let (from, to) = period(&p, Timestamp::now())?;
    let limit = match p.get("limit")? {
        None => TOP_DEFAULT,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=TOP_MAX).contains(n))
            .ok_or_else(|| {
                Problem::invalid("limit", format!("must be an integer from 1 to {TOP_MAX}"))
            })?,
    };
    let offset = match p.cursor()? {
        None => 0,
        Some(c) if c.ts == 0 && (0..=TOP_MAX_OFFSET).contains(&c.id) => {
            u32::try_from(c.id).unwrap_or(0)
        }
        Some(_) => {
            return Err(Problem::invalid(
                "cursor",
                "not a cursor returned by this endpoint (use next_cursor as given)",
            ));
        }
    };
    let list = query::top(
        &state.store,
        &TopListQuery {
            by,
            from,
            to,
            limit,
            offset,
        },
    )
    .await?;
    Ok(Json(list))
}
