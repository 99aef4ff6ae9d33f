//! The queries of the analytics tables: roll-up passes, exact counts assembled from
//! roll-ups and rows, chart series and top keys, for either SQL dialect.
//!
//! Every query that mixes roll-ups with rows computes each dimension with the same
//! expression in both places ([`Source::dims`]), so a row counted raw and the same row
//! counted in a bucket carry the same key. In PostgreSQL every key is in the "C"
//! collation, so that the union of roll-up columns and row expressions sorts bytewise
//! like SQLite does.

use super::{Builder, Dialect, Param, Sql};
use crate::analytics::{CountQuery, Dim, DimFilter, Series, SeriesQuery, TopDimension, Width};

/// How a stored series is read from its rows.
pub(crate) struct Source {
    /// The table.
    pub table: &'static str,
    /// The ever-growing id the watermark follows.
    pub id: &'static str,
    /// The `analytics_state` names of the oldest row time last seen and of the
    /// deletion floor.
    pub min_name: &'static str,
    /// See `min_name`.
    pub floor_name: &'static str,
    /// The table whose oldest row gives the floor (threat rules follow their threats).
    pub floor_table: &'static str,
    /// The three dimension expressions.
    dims: [String; 3],
    /// Which of them are constants (not grouped by).
    constant: [bool; 3],
}

impl Source {
    /// The expression of a dimension over the rows.
    pub(crate) fn dim(&self, d: Dim) -> &str {
        &self.dims[d.index()]
    }

    /// The non-constant dimension expressions, for GROUP BY.
    fn grouped(&self) -> impl Iterator<Item = &str> {
        self.dims
            .iter()
            .zip(self.constant)
            .filter(|(_, c)| !c)
            .map(|(d, _)| d.as_str())
    }
}

/// A text expression in the collation every key uses.
fn keyed(dialect: Dialect, expr: &str) -> String {
    match dialect {
        Dialect::Sqlite => expr.to_owned(),
        Dialect::Postgres => format!("({expr}) COLLATE \"C\""),
    }
}

/// The empty text constant as a key.
fn empty_key(dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => "''".to_owned(),
        Dialect::Postgres => "(CAST('' AS TEXT) COLLATE \"C\")".to_owned(),
    }
}

/// How a stored series is read from its rows; `None` for live series.
pub(crate) fn source(dialect: Dialect, series: Series) -> Option<Source> {
    let k = |e: &str| keyed(dialect, e);
    let empty = empty_key(dialect);
    Some(match series {
        Series::Events => Source {
            table: "events",
            id: "id",
            min_name: "events_min",
            floor_name: "events_floor",
            floor_table: "events",
            dims: [
                k("kind"),
                k("COALESCE(CAST(status AS TEXT), '')"),
                k("CASE WHEN status IS NULL THEN '' ELSE CAST(status / 100 AS TEXT) || 'xx' END"),
            ],
            constant: [false, false, false],
        },
        Series::Threats => Source {
            table: "threats",
            id: "id",
            min_name: "threats_min",
            floor_name: "threats_floor",
            floor_table: "threats",
            dims: [k("category"), k("severity"), k("decision")],
            constant: [false, false, false],
        },
        Series::Rules => Source {
            table: "threat_rules",
            id: "threat_id",
            min_name: "threats_min",
            floor_name: "threats_floor",
            floor_table: "threats",
            dims: [k("CAST(rule_id AS TEXT)"), empty.clone(), empty],
            constant: [false, true, true],
        },
        Series::Requests | Series::Latency => return None,
    })
}

/// `expr` kept away from SQLite's index choice (a unary `+`): without statistics it
/// may pick the wrong one of two ranges (walking the whole time index to find the few
/// rows past the watermark). PostgreSQL's planner has statistics and needs no hint.
fn unindexed(dialect: Dialect, expr: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("+{expr}"),
        Dialect::Postgres => expr.to_owned(),
    }
}

/// The start of the bucket of `ts` (µs) in SQL, flooring also before 1970.
fn bucket_expr(ts: &str, width: Width) -> String {
    let w = width.micros();
    format!("({ts} - ((({ts} % {w}) + {w}) % {w}))")
}

/// The parameters a roll-up step takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bind {
    /// None.
    Nothing,
    /// The id range `(lo, hi]`.
    Range,
    /// The id range and the time now (µs).
    RangeNow,
    /// The time now.
    Now,
}

/// The statements of one roll-up pass over the rows of `series` with ids in
/// `(lo, hi]`, run in order in one transaction: the rows are read once, grouped by
/// minute and dimensions, and that small result feeds the minute buckets, the hour
/// buckets and (events) the hours whose top keys must be recomputed. SQLite keeps the
/// grouped chunk in a temporary table; PostgreSQL does it all in one statement with
/// data-modifying CTEs.
pub(crate) fn rollup_steps(dialect: Dialect, series: Series) -> Vec<(String, Bind)> {
    let Some(src) = source(dialect, series) else {
        return Vec::new();
    };
    let minute = bucket_expr("ts", Width::Minute);
    let hour = bucket_expr("bucket", Width::Hour);
    let [d1, d2, d3] = &src.dims;
    let mut group = vec![minute.clone()];
    group.extend(src.grouped().map(str::to_owned));
    let group = group.join(", ");
    let name = series.as_str();
    let events = series == Series::Events;
    let upsert = "ON CONFLICT (width, series, bucket, dim1, dim2, dim3) \
                  DO UPDATE SET value = analytics_counts.value + excluded.value";
    let cols = "analytics_counts (width, series, bucket, dim1, dim2, dim3, value)";
    match dialect {
        Dialect::Sqlite => {
            let mut steps = vec![
                (
                    "CREATE TEMP TABLE IF NOT EXISTS analytics_chunk \
                     (bucket INTEGER, dim1 TEXT, dim2 TEXT, dim3 TEXT, n INTEGER)"
                        .to_owned(),
                    Bind::Nothing,
                ),
                ("DELETE FROM temp.analytics_chunk".to_owned(), Bind::Nothing),
                (
                    format!(
                        "INSERT INTO temp.analytics_chunk SELECT {minute}, {d1}, {d2}, {d3}, count(*) \
                         FROM {table} WHERE {id} > ?1 AND {id} <= ?2 GROUP BY {group}",
                        table = src.table,
                        id = src.id,
                    ),
                    Bind::Range,
                ),
                (
                    format!(
                        "INSERT INTO {cols} SELECT 60, '{name}', bucket, dim1, dim2, dim3, n \
                         FROM temp.analytics_chunk WHERE true {upsert}"
                    ),
                    Bind::Nothing,
                ),
                (
                    format!(
                        "INSERT INTO {cols} SELECT 3600, '{name}', {hour}, dim1, dim2, dim3, sum(n) \
                         FROM temp.analytics_chunk WHERE true GROUP BY 3, 4, 5, 6 {upsert}"
                    ),
                    Bind::Nothing,
                ),
            ];
            if events {
                steps.push((
                    format!(
                        "INSERT INTO analytics_dirty_hours (hour, touched_at) \
                         SELECT DISTINCT {hour}, ?1 FROM temp.analytics_chunk WHERE true \
                         ON CONFLICT (hour) DO UPDATE SET touched_at = excluded.touched_at"
                    ),
                    Bind::Now,
                ));
            }
            steps
        }
        Dialect::Postgres => {
            let last = if events {
                format!(
                    "INSERT INTO analytics_dirty_hours (hour, touched_at) \
                     SELECT DISTINCT {hour}, CAST($3 AS BIGINT) FROM chunk \
                     ON CONFLICT (hour) DO UPDATE SET touched_at = excluded.touched_at"
                )
            } else {
                "SELECT count(*) FROM chunk".to_owned()
            };
            vec![(
                format!(
                    "WITH chunk AS (SELECT {minute} AS bucket, {d1} AS dim1, {d2} AS dim2, \
                     {d3} AS dim3, count(*) AS n FROM {table} WHERE {id} > $1 AND {id} <= $2 \
                     GROUP BY {group}), \
                     minutes AS (INSERT INTO {cols} SELECT 60, '{name}', bucket, dim1, dim2, dim3, n \
                     FROM chunk {upsert}), \
                     hours AS (INSERT INTO {cols} SELECT 3600, '{name}', {hour}, dim1, dim2, dim3, \
                     CAST(sum(n) AS BIGINT) FROM chunk GROUP BY 3, 4, 5, 6 {upsert}) {last}",
                    table = src.table,
                    id = src.id,
                ),
                if events { Bind::RangeNow } else { Bind::Range },
            )]
        }
    }
}

/// Adds one live delta (`?1` width, `?2` series, `?3` bucket, `?4..?6` dims, `?7` value).
pub(crate) fn delta_upsert(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "INSERT INTO analytics_counts (width, series, bucket, dim1, dim2, dim3, value) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (width, series, bucket, dim1, dim2, dim3) \
             DO UPDATE SET value = analytics_counts.value + excluded.value"
        }
        Dialect::Postgres => {
            "INSERT INTO analytics_counts (width, series, bucket, dim1, dim2, dim3, value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (width, series, bucket, dim1, dim2, dim3) \
             DO UPDATE SET value = analytics_counts.value + excluded.value"
        }
    }
}

/// Which parts of `[from, to)` are answered from which table (see
/// [`crate::AnalyticsStore`]); every range is half-open, in µs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Hour buckets starting in this range.
    pub hours: Option<(i64, i64)>,
    /// Minute buckets starting in these ranges.
    pub minutes: Vec<(i64, i64)>,
    /// Rows (already rolled up) with a time in these ranges.
    pub raw: Vec<(i64, i64)>,
}

/// Splits `[from, to)` into whole hours, whole minutes and the rest.
///
/// `floor`: the oldest time from which the roll-ups match the stored rows (`None`:
/// there are no rows at all); `minute_horizon` and `hour_horizon`: the oldest bucket of
/// each width still kept.
pub(crate) fn plan(
    from: i64,
    to: i64,
    floor: Option<i64>,
    minute_horizon: i64,
    hour_horizon: i64,
) -> Plan {
    let mut p = Plan::default();
    if from >= to {
        return p;
    }
    let Some(floor) = floor else {
        p.raw.push((from, to));
        return p;
    };
    let start = from.max(floor).min(to);
    if from < start {
        p.raw.push((from, start));
    }
    if start >= to {
        return p;
    }
    let hs = Width::Hour.ceil(start).max(Width::Hour.ceil(hour_horizon));
    let he = Width::Hour.floor(to);
    let sides: Vec<(i64, i64)> = if hs < he {
        p.hours = Some((hs, he));
        vec![(start, hs), (he, to)]
    } else {
        vec![(start, to)]
    };
    for (a, b) in sides.into_iter().filter(|(a, b)| a < b) {
        let ms = Width::Minute
            .ceil(a)
            .max(Width::Minute.ceil(minute_horizon));
        let me = Width::Minute.floor(b);
        if ms < me {
            p.minutes.push((ms, me));
            if a < ms {
                p.raw.push((a, ms));
            }
            if me < b {
                p.raw.push((me, b));
            }
        } else {
            p.raw.push((a, b));
        }
    }
    p
}

/// `AND dim IN (…)` for every filter, over roll-up columns or row expressions.
fn filters(b: &mut Builder, fs: &[DimFilter], expr: impl Fn(Dim) -> String) -> String {
    let mut out = String::new();
    for f in fs {
        let list: Vec<String> = f.values.iter().map(|v| b.text(v)).collect();
        if list.is_empty() {
            out.push_str(" AND 1 = 0");
        } else {
            out.push_str(&format!(" AND {} IN ({})", expr(f.dim), list.join(", ")));
        }
    }
    out
}

/// The branch of roll-up buckets of one width starting in `[lo, hi)`.
fn rollup_branch(
    b: &mut Builder,
    series: Series,
    width: Width,
    (lo, hi): (i64, i64),
    fs: &[DimFilter],
    key: &str,
) -> String {
    let w = b.p(Param::I64(width.secs()));
    let s = b.text(series.as_str());
    let lo = b.p(Param::I64(lo));
    let hi = b.p(Param::I64(hi));
    let cond = filters(b, fs, |d| d.column().to_owned());
    format!(
        "SELECT {key} AS k, value AS n FROM analytics_counts \
         WHERE width = {w} AND series = {s} AND bucket >= {lo} AND bucket < {hi}{cond}"
    )
}

/// The branch counting rows of `src` in `[lo, hi)` on one side of the watermark.
fn raw_branch(
    b: &mut Builder,
    src: &Source,
    (lo, hi): (i64, i64),
    watermark: (bool, i64),
    fs: &[DimFilter],
    group: Option<Dim>,
    dialect: Dialect,
) -> String {
    let lo = b.p(Param::I64(lo));
    let hi = b.p(Param::I64(hi));
    let w = b.p(Param::I64(watermark.1));
    // Past the watermark: few rows, found by id; before it: a short time range, found
    // by time.
    let (ts, id, side) = if watermark.0 {
        (unindexed(dialect, "ts"), src.id.to_owned(), ">")
    } else {
        ("ts".to_owned(), unindexed(dialect, src.id), "<=")
    };
    let cond = filters(b, fs, |d| src.dim(d).to_owned());
    let (key, group_by) = match group {
        Some(d) if !src.constant[d.index()] => {
            (src.dim(d).to_owned(), format!(" GROUP BY {}", src.dim(d)))
        }
        _ => (empty_key(dialect), String::new()),
    };
    format!(
        "SELECT {key} AS k, count(*) AS n FROM {table} \
         WHERE {ts} >= {lo} AND {ts} < {hi} AND {id} {side} {w}{cond}{group_by}",
        table = src.table,
    )
}

/// Sums the branches by key, most first (ties by key, bytewise).
fn sum_by_key(b: &mut Builder, branches: &[String], limit: Option<u32>, offset: u32) -> String {
    let total = match b.dialect {
        Dialect::Sqlite => "SUM(n)",
        Dialect::Postgres => "CAST(SUM(n) AS BIGINT)",
    };
    let mut sql = format!(
        "SELECT k, {total} AS total FROM ({}) AS parts GROUP BY k ORDER BY total DESC, k ASC",
        branches.join(" UNION ALL ")
    );
    if let Some(limit) = limit {
        let l = b.p(Param::I64(i64::from(limit)));
        let o = b.p(Param::I64(i64::from(offset)));
        sql.push_str(&format!(" LIMIT {l} OFFSET {o}"));
    }
    sql
}

/// The exact count of a stored series: roll-ups where the plan allows, rows elsewhere,
/// and every row past the watermark. Returns `(key, total)` rows.
pub(crate) fn count_query(dialect: Dialect, q: &CountQuery, plan: &Plan, watermark: i64) -> Sql {
    let mut b = Builder::new(dialect);
    let mut branches = Vec::new();
    let key = match q.group {
        Some(d) => d.column().to_owned(),
        None => empty_key(dialect),
    };
    if let Some(src) = source(dialect, q.series) {
        if let Some(h) = plan.hours {
            branches.push(rollup_branch(
                &mut b,
                q.series,
                Width::Hour,
                h,
                &q.filters,
                &key,
            ));
        }
        for m in &plan.minutes {
            branches.push(rollup_branch(
                &mut b,
                q.series,
                Width::Minute,
                *m,
                &q.filters,
                &key,
            ));
        }
        for r in &plan.raw {
            branches.push(raw_branch(
                &mut b,
                &src,
                *r,
                (false, watermark),
                &q.filters,
                q.group,
                dialect,
            ));
        }
        branches.push(raw_branch(
            &mut b,
            &src,
            (q.from.as_micros(), q.to.as_micros()),
            (true, watermark),
            &q.filters,
            q.group,
            dialect,
        ));
    } else {
        // A live series: the minute buckets that start in the period.
        let lo = Width::Minute.floor(q.from.as_micros());
        branches.push(rollup_branch(
            &mut b,
            q.series,
            Width::Minute,
            (lo, q.to.as_micros()),
            &q.filters,
            &key,
        ));
    }
    let text = sum_by_key(&mut b, &branches, q.limit, q.offset);
    Sql {
        text,
        params: b.params,
    }
}

/// A chart series: buckets from the roll-ups plus, for stored series, the rows past the
/// watermark in the buckets they belong to, and the rows in buckets older than the
/// roll-ups' `horizon` for the width (their buckets are no longer kept: an imported old
/// log is still charted, from its rows). Returns `(bucket, key, total)` rows.
pub(crate) fn series_query(dialect: Dialect, q: &SeriesQuery, watermark: i64, horizon: i64) -> Sql {
    let mut b = Builder::new(dialect);
    let lo = q.width.floor(q.from.as_micros());
    let hi = q.to.as_micros();
    let key = match q.group {
        Some(d) => d.column().to_owned(),
        None => empty_key(dialect),
    };
    let w = b.p(Param::I64(q.width.secs()));
    let s = b.text(q.series.as_str());
    let plo = b.p(Param::I64(lo));
    let phi = b.p(Param::I64(hi));
    let cond = filters(&mut b, &q.filters, |d| d.column().to_owned());
    // Buckets from the horizon on come from the roll-ups; older ones from the rows.
    let horizon = q.width.ceil(horizon);
    let kept = b.p(Param::I64(horizon));
    let mut branches = vec![format!(
        "SELECT bucket AS t, {key} AS k, value AS n FROM analytics_counts \
         WHERE width = {w} AND series = {s} AND bucket >= {plo} AND bucket < {phi} AND bucket >= {kept}{cond}"
    )];
    if let Some(src) = source(dialect, q.series)
        && lo < horizon
    {
        let bucket = bucket_expr("ts", q.width);
        let rlo = b.p(Param::I64(lo));
        let rhi = b.p(Param::I64(horizon.min(q.width.ceil(hi))));
        let wm = b.p(Param::I64(watermark));
        let cond = filters(&mut b, &q.filters, |d| src.dim(d).to_owned());
        let (rkey, group) = match q.group {
            Some(d) if !src.constant[d.index()] => {
                (src.dim(d).to_owned(), format!("{bucket}, {}", src.dim(d)))
            }
            _ => (empty_key(dialect), bucket.clone()),
        };
        let id = unindexed(dialect, src.id);
        branches.push(format!(
            "SELECT {bucket} AS t, {rkey} AS k, count(*) AS n FROM {table} \
             WHERE ts >= {rlo} AND ts < {rhi} AND {id} <= {wm}{cond} GROUP BY {group}",
            table = src.table,
        ));
    }
    if let Some(src) = source(dialect, q.series) {
        let bucket = bucket_expr("ts", q.width);
        let rlo = b.p(Param::I64(lo));
        let rhi = b.p(Param::I64(q.width.ceil(hi)));
        let wm = b.p(Param::I64(watermark));
        let cond = filters(&mut b, &q.filters, |d| src.dim(d).to_owned());
        let (rkey, group) = match q.group {
            Some(d) if !src.constant[d.index()] => {
                (src.dim(d).to_owned(), format!("{bucket}, {}", src.dim(d)))
            }
            _ => (empty_key(dialect), bucket.clone()),
        };
        let ts = unindexed(dialect, "ts");
        branches.push(format!(
            "SELECT {bucket} AS t, {rkey} AS k, count(*) AS n FROM {table} \
             WHERE {id} > {wm} AND {ts} >= {rlo} AND {ts} < {rhi}{cond} GROUP BY {group}",
            table = src.table,
            id = src.id,
        ));
    }
    let total = match dialect {
        Dialect::Sqlite => "SUM(n)",
        Dialect::Postgres => "CAST(SUM(n) AS BIGINT)",
    };
    Sql {
        text: format!(
            "SELECT t, k, {total} AS total FROM ({}) AS parts \
             WHERE t >= {plo} AND t < {phi} GROUP BY t, k ORDER BY t ASC, k ASC",
            branches.join(" UNION ALL ")
        ),
        params: b.params,
    }
}

/// The key expression of a top dimension over events, and the condition that the row
/// has one.
/// (The conditions never use the address or path index: the time range drives.)
pub(crate) fn top_key(dialect: Dialect, dim: TopDimension) -> (String, &'static str) {
    match (dim, dialect) {
        (TopDimension::ClientIp, Dialect::Sqlite) => {
            ("lower(hex(client_ip))".to_owned(), "+client_ip IS NOT NULL")
        }
        (TopDimension::ClientIp, Dialect::Postgres) => (
            keyed(dialect, "encode(client_ip, 'hex')"),
            "client_ip IS NOT NULL",
        ),
        (TopDimension::Path, Dialect::Sqlite) => {
            ("path".to_owned(), "kind = 'http' AND +path IS NOT NULL")
        }
        (TopDimension::Path, Dialect::Postgres) => {
            (keyed(dialect, "path"), "kind = 'http' AND path IS NOT NULL")
        }
    }
}

/// The hours of the events past the watermark in a time range (`?1` watermark, `?2`
/// and `?3` the range), found by id.
pub(crate) fn unrolled_hours(dialect: Dialect) -> String {
    let ts = unindexed(dialect, "ts");
    let (p1, p2, p3) = match dialect {
        Dialect::Sqlite => ("?1", "?2", "?3"),
        Dialect::Postgres => ("$1", "$2", "$3"),
    };
    format!(
        "SELECT DISTINCT {} FROM events WHERE id > {p1} AND {ts} >= {p2} AND {ts} < {p3}",
        bucket_expr("ts", Width::Hour)
    )
}

/// Recomputes one hour's top keys: deletes the old ones (`?1` dimension, `?2` hour) and
/// inserts the `?4` most frequent keys of events in `[?2, ?3)`; then the marker with
/// the number of distinct keys, of keys kept and of rows. The delete takes `?1, ?2`
/// only; the others all four.
pub(crate) struct TopRefreshSql {
    pub delete: String,
    pub insert: String,
    pub marker: String,
}

/// The statements of [`TopRefreshSql`] for `dim`.
pub(crate) fn top_refresh(dialect: Dialect, dim: TopDimension) -> TopRefreshSql {
    let (key, has) = top_key(dialect, dim);
    let p = |n: u8| match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    };
    let (dimension, hour) = match dialect {
        Dialect::Sqlite => (p(1), p(2)),
        Dialect::Postgres => (
            format!("CAST({} AS TEXT)", p(1)),
            format!("CAST({} AS BIGINT)", p(2)),
        ),
    };
    let limit_cast = match dialect {
        Dialect::Sqlite => p(4),
        Dialect::Postgres => format!("CAST({} AS BIGINT)", p(4)),
    };
    TopRefreshSql {
        delete: format!(
            "DELETE FROM analytics_top WHERE dimension = {} AND hour = {}",
            p(1),
            p(2)
        ),
        insert: format!(
            "INSERT INTO analytics_top (dimension, hour, item, value) \
             SELECT {dimension}, {hour}, {key}, count(*) FROM events \
             WHERE ts >= {lo} AND ts < {hi} AND {has} GROUP BY {key} \
             ORDER BY count(*) DESC, {key} ASC LIMIT {limit}",
            lo = p(2),
            hi = p(3),
            limit = p(4),
        ),
        marker: format!(
            "INSERT INTO analytics_top_hours (dimension, hour, key_count, kept, row_count) \
             SELECT {dimension}, {hour}, count(DISTINCT {key}), \
             CASE WHEN count(DISTINCT {key}) > {limit} THEN {limit} ELSE count(DISTINCT {key}) END, \
             count(*) FROM events WHERE ts >= {lo} AND ts < {hi} AND {has} \
             ON CONFLICT (dimension, hour) DO UPDATE SET key_count = excluded.key_count, \
             kept = excluded.kept, row_count = excluded.row_count",
            lo = p(2),
            hi = p(3),
            limit = limit_cast,
        ),
    }
}

/// The top keys of a period: the stored lists of the `clean` hours, and the rows of
/// the `raw` ranges grouped by key. Returns `(key, total)` rows, most first, one more
/// than `limit`.
pub(crate) fn top_query(
    dialect: Dialect,
    dim: TopDimension,
    clean: &[(i64, i64)],
    raw: &[(i64, i64)],
    limit: u32,
    offset: u32,
) -> Sql {
    let mut b = Builder::new(dialect);
    let (key, has) = top_key(dialect, dim);
    let mut branches = Vec::new();
    for (lo, hi) in clean {
        let d = b.text(dim.as_str());
        let lo = b.p(Param::I64(*lo));
        let hi = b.p(Param::I64(*hi));
        branches.push(format!(
            "SELECT item AS k, value AS n FROM analytics_top \
             WHERE dimension = {d} AND hour >= {lo} AND hour < {hi}"
        ));
    }
    for (lo, hi) in raw {
        let lo = b.p(Param::I64(*lo));
        let hi = b.p(Param::I64(*hi));
        branches.push(format!(
            "SELECT {key} AS k, count(*) AS n FROM events \
             WHERE ts >= {lo} AND ts < {hi} AND {has} GROUP BY {key}"
        ));
    }
    if branches.is_empty() {
        branches.push(format!(
            "SELECT {} AS k, 0 AS n FROM analytics_state WHERE 1 = 0",
            empty_key(dialect)
        ));
    }
    let text = sum_by_key(&mut b, &branches, Some(limit.saturating_add(1)), offset);
    Sql {
        text,
        params: b.params,
    }
}

/// Ranges of whole hours: consecutive hour starts merged into `[first, last + 1h)`.
pub(crate) fn hour_ranges(hours: &[i64]) -> Vec<(i64, i64)> {
    let step = Width::Hour.micros();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for h in hours {
        match out.last_mut() {
            Some((_, end)) if *end == *h => *end += step,
            _ => out.push((*h, h + step)),
        }
    }
    out
}

/// `[from, to)` without the hours in `clean` (sorted hour ranges inside it).
pub(crate) fn outside(from: i64, to: i64, clean: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut at = from;
    for (lo, hi) in clean {
        if *lo > at {
            out.push((at, (*lo).min(to)));
        }
        at = at.max(*hi);
    }
    if at < to {
        out.push((at, to));
    }
    out.retain(|(a, b)| a < b);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::Timestamp;

    const M: i64 = 60_000_000;
    const H: i64 = 60 * M;

    #[test]
    fn a_period_splits_into_hours_minutes_and_rows() {
        // 10:00:30 → 13:20:10 with everything kept: the whole hours 11–13, the minutes
        // 10:01–11:00 and 13:00–13:20, the part-minutes from the rows.
        let base = 1_000 * H;
        let from = base + 10 * H + 30_000_000;
        let to = base + 13 * H + 20 * M + 10_000_000;
        let p = plan(from, to, Some(0), 0, 0);
        assert_eq!(p.hours, Some((base + 11 * H, base + 13 * H)));
        assert_eq!(
            p.minutes,
            vec![
                (base + 10 * H + M, base + 11 * H),
                (base + 13 * H, base + 13 * H + 20 * M)
            ]
        );
        assert_eq!(
            p.raw,
            vec![(from, base + 10 * H + M), (base + 13 * H + 20 * M, to)]
        );
        // Aligned periods need no rows.
        let p = plan(base, base + 5 * H, Some(0), 0, 0);
        assert_eq!(p.hours, Some((base, base + 5 * H)));
        assert!(p.minutes.is_empty() && p.raw.is_empty());
    }

    #[test]
    fn floors_and_horizons_move_work_to_rows() {
        let base = 1_000 * H;
        // Rows before the floor were deleted by retention: its buckets are not used.
        let floor = base + 2 * H + 5 * M + 7;
        let p = plan(base, base + 4 * H, Some(floor), 0, 0);
        assert_eq!(p.raw[0], (base, floor));
        assert_eq!(p.hours, Some((base + 3 * H, base + 4 * H)));
        assert_eq!(p.minutes, vec![(base + 2 * H + 6 * M, base + 3 * H)]);
        assert_eq!(p.raw[1], (floor, base + 2 * H + 6 * M));
        // Minute buckets before the horizon were pruned: rows instead.
        let p = plan(base + 30 * M, base + 2 * H, Some(0), base + 2 * H, 0);
        assert_eq!(p.hours, Some((base + H, base + 2 * H)));
        assert!(p.minutes.is_empty());
        assert_eq!(p.raw, vec![(base + 30 * M, base + H)]);
        // Hours before their horizon: minutes (or rows).
        let p = plan(base, base + 3 * H, Some(0), 0, base + 2 * H);
        assert_eq!(p.hours, Some((base + 2 * H, base + 3 * H)));
        assert_eq!(p.minutes, vec![(base, base + 2 * H)]);
        // No rows at all: nothing to trust.
        let p = plan(base, base + 3 * H, None, 0, 0);
        assert_eq!(p.raw, vec![(base, base + 3 * H)]);
        assert!(p.hours.is_none());
        // A floor after the period.
        let p = plan(base, base + H, Some(base + 2 * H), 0, 0);
        assert_eq!(p.raw, vec![(base, base + H)]);
        assert_eq!(plan(5, 5, Some(0), 0, 0), Plan::default());
    }

    #[test]
    fn buckets_floor_before_1970_too() {
        assert_eq!(Width::Minute.floor(-1), -M);
        assert_eq!(Width::Minute.ceil(-1), 0);
        assert_eq!(Width::Hour.ceil(H), H);
        assert_eq!(
            bucket_expr("ts", Width::Minute),
            "(ts - (((ts % 60000000) + 60000000) % 60000000))"
        );
    }

    #[test]
    fn hour_lists_merge_and_complement() {
        let r = hour_ranges(&[0, H, 2 * H, 5 * H]);
        assert_eq!(r, vec![(0, 3 * H), (5 * H, 6 * H)]);
        assert_eq!(
            outside(-5, 7 * H, &r),
            vec![(-5, 0), (3 * H, 5 * H), (6 * H, 7 * H)]
        );
        assert_eq!(outside(0, 3 * H, &[(0, 3 * H)]), vec![]);
    }

    #[test]
    fn queries_are_parameterised_and_collated() {
        let q = CountQuery {
            series: Series::Events,
            from: Timestamp(0),
            to: Timestamp(10 * H + 5),
            filters: vec![DimFilter::one_of(Dim::D1, &["ht'tp"])],
            group: Some(Dim::D3),
            limit: Some(5),
            offset: 0,
        };
        let p = plan(0, 10 * H + 5, Some(0), 0, 0);
        let sql = count_query(Dialect::Postgres, &q, &p, 42);
        assert!(!sql.text.contains("ht'tp"), "{}", sql.text);
        assert!(sql.text.contains("COLLATE \"C\""), "{}", sql.text);
        assert!(sql.text.contains("id > $"), "{}", sql.text);
        let lite = count_query(Dialect::Sqlite, &q, &p, 42);
        assert!(
            lite.text.contains("GROUP BY CASE WHEN status IS NULL"),
            "{}",
            lite.text
        );
        let rules = rollup_steps(Dialect::Postgres, Series::Rules);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].1, Bind::Range);
        assert!(rules[0].0.contains("threat_id > $1"), "{}", rules[0].0);
        assert!(
            rules[0].0.ends_with("SELECT count(*) FROM chunk"),
            "{}",
            rules[0].0
        );
        let events = rollup_steps(Dialect::Sqlite, Series::Events);
        assert_eq!(events.last().map(|s| s.1), Some(Bind::Now));
        assert_eq!(
            events
                .iter()
                .filter(|s| s.0.contains("FROM events"))
                .count(),
            1,
            "the rows are read once"
        );
        assert!(rollup_steps(Dialect::Sqlite, Series::Latency).is_empty());
        let top = top_query(Dialect::Sqlite, TopDimension::Path, &[(0, H)], &[], 10, 20);
        assert!(top.text.ends_with("LIMIT ?4 OFFSET ?5"), "{}", top.text);
        assert_eq!(top.params[3], Param::I64(11));
    }
}
