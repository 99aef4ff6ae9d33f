//! The translation between analytics rows and the domain, and the decisions both
//! backends take alike from the roll-up state (which buckets still match the rows,
//! which hours' top keys can be used).

use std::collections::HashMap;

use palisade_core::net::ip_from_key;

use crate::analytics::{Series, TopDimension, TopPage, Width};
use crate::codec::threats::rule_id_from_i32;
use crate::sqlgen::analytics::{hour_ranges, outside};
use crate::{Count, StoreError};

/// Most ranges a top-key query unions before it counts the whole period from the rows
/// instead (a period riddled with hours still being imported).
const MAX_TOP_RANGES: usize = 200;

/// `analytics_state`, read in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    pub events_id: i64,
    pub threats_id: i64,
    pub events_floor: i64,
    pub threats_floor: i64,
    pub events_min: i64,
    pub threats_min: i64,
    pub minute_horizon: i64,
    pub hour_horizon: i64,
}

impl State {
    /// From `(name, value)` rows; a missing name reads as its initial value.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, i64)>) -> State {
        let map: HashMap<String, i64> = rows.into_iter().collect();
        let get = |n: &str, default: i64| map.get(n).copied().unwrap_or(default);
        State {
            events_id: get("events_id", 0),
            threats_id: get("threats_id", 0),
            events_floor: get("events_floor", 0),
            threats_floor: get("threats_floor", 0),
            events_min: get("events_min", i64::MAX),
            threats_min: get("threats_min", i64::MAX),
            minute_horizon: get("minute_horizon", 0),
            hour_horizon: get("hour_horizon", 0),
        }
    }

    /// The watermark a series follows.
    pub fn watermark(&self, series: Series) -> i64 {
        match series {
            Series::Events => self.events_id,
            _ => self.threats_id,
        }
    }

    /// The oldest bucket of a width the roll-ups still keep (older ones are counted
    /// from the rows).
    pub fn horizon(&self, width: Width) -> i64 {
        match width {
            Width::Minute => self.minute_horizon,
            Width::Hour => self.hour_horizon,
        }
    }

    /// The stored floor and last seen oldest time of a series' rows.
    fn floor_and_min(&self, series: Series) -> (i64, i64) {
        match series {
            Series::Events => (self.events_floor, self.events_min),
            _ => (self.threats_floor, self.threats_min),
        }
    }

    /// The oldest time from which the roll-ups match the rows, given the oldest row
    /// stored now; `None` when no row is stored.
    pub fn floor(&self, series: Series, current_min: Option<i64>) -> Option<i64> {
        let (floor, last_min) = self.floor_and_min(series);
        effective_floor(floor, last_min, current_min)
    }
}

/// Retention deletes rows oldest first: when the oldest stored time has risen since it
/// was last seen, everything before it was deleted and the buckets before it count rows
/// that are gone.
pub(crate) fn effective_floor(floor: i64, last_min: i64, current_min: Option<i64>) -> Option<i64> {
    let current = current_min?;
    Some(if current > last_min {
        floor.max(current)
    } else {
        floor
    })
}

/// The `(floor, last seen oldest time)` to store after a roll-up pass saw `current_min`
/// at `now`. A table emptied by retention trusts nothing before `now`.
pub(crate) fn next_floor(
    floor: i64,
    last_min: i64,
    current_min: Option<i64>,
    now: i64,
) -> (i64, i64) {
    match current_min {
        Some(current) => (
            effective_floor(floor, last_min, Some(current)).unwrap_or(floor),
            current,
        ),
        None if last_min != i64::MAX => (floor.max(now), i64::MAX),
        None => (floor, last_min),
    }
}

/// A stored key as the API shows it: rule ids as unsigned numbers, addresses in text.
pub(crate) fn series_key(series: Series, stored: String) -> String {
    match series {
        Series::Rules => stored
            .parse::<i32>()
            .map(|v| rule_id_from_i32(v).to_string())
            .unwrap_or(stored),
        _ => stored,
    }
}

/// A top key as the API shows it: an address from the hex of its 16-byte key.
pub(crate) fn top_key(dim: TopDimension, stored: String) -> String {
    match dim {
        TopDimension::ClientIp => hex_to_key(&stored)
            .and_then(|k| ip_from_key(&k))
            .map_or(stored, |ip| ip.to_string()),
        TopDimension::Path => stored,
    }
}

fn hex_to_key(hex: &str) -> Option<[u8; 16]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut key = [0u8; 16];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        *key.get_mut(i)? = u8::from_str_radix(text, 16).ok()?;
    }
    Some(key)
}

/// One hour's stored top-key marker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marker {
    pub hour: i64,
    pub key_count: i64,
    pub kept: i64,
}

/// Which hours of `[from, to)` are answered from stored top keys (`clean`, merged
/// ranges) and which from the rows (`raw`), and how many clean hours were cut.
pub(crate) struct TopPlan {
    pub clean: Vec<(i64, i64)>,
    pub raw: Vec<(i64, i64)>,
    pub truncated: u32,
}

/// An hour's stored keys are used when it has a marker, lies at or after the floor and
/// the hour horizon, and has no rows its list has not seen (not dirty, none past the
/// watermark).
pub(crate) fn top_plan(
    from: i64,
    to: i64,
    floor: Option<i64>,
    hour_horizon: i64,
    markers: &[Marker],
    dirty: &[i64],
    unrolled: &[i64],
) -> TopPlan {
    let first = match floor {
        Some(f) => Width::Hour.ceil(f).max(Width::Hour.ceil(hour_horizon)),
        None => i64::MAX,
    };
    let mut clean: Vec<&Marker> = markers
        .iter()
        .filter(|m| m.hour >= first && m.hour >= from && m.hour + Width::Hour.micros() <= to)
        .filter(|m| !dirty.contains(&m.hour) && !unrolled.contains(&m.hour))
        .collect();
    clean.sort_by_key(|m| m.hour);
    let hours: Vec<i64> = clean.iter().map(|m| m.hour).collect();
    let ranges = hour_ranges(&hours);
    let raw = outside(from, to, &ranges);
    if ranges.len() + raw.len() > MAX_TOP_RANGES {
        return TopPlan {
            clean: Vec::new(),
            raw: vec![(from, to)],
            truncated: 0,
        };
    }
    TopPlan {
        truncated: clean.iter().filter(|m| m.key_count > m.kept).count() as u32,
        clean: ranges,
        raw,
    }
}

fn stored_count(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative count {v}")))
}

/// Rows of a count query as counts (one total without grouping).
pub(crate) fn finish_counts(
    series: Series,
    grouped: bool,
    rows: Vec<(String, i64)>,
) -> Result<Vec<Count>, StoreError> {
    if !grouped {
        let total = rows
            .iter()
            .try_fold(0u64, |a, (_, n)| Ok::<_, StoreError>(a + stored_count(*n)?))?;
        return Ok(vec![Count {
            key: String::new(),
            count: total,
        }]);
    }
    rows.into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| {
            Ok(Count {
                key: series_key(series, k),
                count: stored_count(n)?,
            })
        })
        .collect()
}

/// Rows of a top query (one more than the page) as a page.
pub(crate) fn finish_top(
    dim: TopDimension,
    limit: u32,
    truncated: u32,
    rows: Vec<(String, i64)>,
) -> Result<TopPage, StoreError> {
    let mut items = rows
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| {
            Ok(Count {
                key: top_key(dim, k),
                count: stored_count(n)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > limit;
    items.truncate(limit);
    Ok(TopPage {
        items,
        more,
        truncated_hours: truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    #[test]
    fn floors_rise_only_on_deletion() {
        // First sight: nothing deleted.
        assert_eq!(effective_floor(0, i64::MAX, Some(500)), Some(0));
        // An older import lowers the oldest time: still nothing deleted.
        assert_eq!(effective_floor(0, 500, Some(100)), Some(0));
        // The oldest time rose: retention deleted what was before it.
        assert_eq!(effective_floor(0, 100, Some(900)), Some(900));
        assert_eq!(effective_floor(950, 100, Some(900)), Some(950));
        assert_eq!(effective_floor(0, 100, None), None);
        assert_eq!(next_floor(0, 100, Some(900), 5), (900, 900));
        assert_eq!(next_floor(0, 500, Some(100), 5), (0, 100));
        assert_eq!(next_floor(7, 500, None, 1000), (1000, i64::MAX));
        assert_eq!(next_floor(7, i64::MAX, None, 1000), (7, i64::MAX));
    }

    #[test]
    fn keys_read_back() {
        assert_eq!(series_key(Series::Rules, "-1".into()), u32::MAX.to_string());
        assert_eq!(series_key(Series::Events, "http".into()), "http");
        let k = palisade_core::net::ip_key("10.1.2.3".parse().unwrap());
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(top_key(TopDimension::ClientIp, hex), "10.1.2.3");
        assert_eq!(top_key(TopDimension::ClientIp, "zz".into()), "zz");
    }

    #[test]
    fn only_hours_whose_lists_saw_every_row_are_used() {
        let m = |hour, key_count, kept| Marker {
            hour,
            key_count,
            kept,
        };
        let markers = [m(0, 5, 5), m(H, 500, 100), m(2 * H, 5, 5), m(3 * H, 5, 5)];
        // Hour 2 is dirty, hour 3 has rows past the watermark; the period ends inside
        // hour 4 and starts inside hour 0.
        let p = top_plan(10, 4 * H + 10, Some(0), 0, &markers, &[2 * H], &[3 * H]);
        assert_eq!(p.clean, vec![(H, 2 * H)]);
        assert_eq!(p.raw, vec![(10, H), (2 * H, 4 * H + 10)]);
        assert_eq!(p.truncated, 1);
        // Nothing stored: every hour from the rows.
        let p = top_plan(0, 2 * H, None, 0, &markers, &[], &[]);
        assert!(p.clean.is_empty());
        assert_eq!(p.raw, vec![(0, 2 * H)]);
    }
}
