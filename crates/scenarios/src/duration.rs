//! Durations and rates as scenario files write them: `"90s"`, `"1h30m"`, `"1 per 10s"`.
//!
//! Parsed by hand into whole microseconds (the unit of [`palisade_core::Timestamp`]) so a
//! bucket's arithmetic is integer-only and a snapshot restores to the same state.

/// Microseconds in one second.
pub const MICROS_PER_SEC: i64 = 1_000_000;

/// Why a duration or rate could not be read; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a sequence of `<number><unit>` parts.
    #[error("'{0}' is not a duration: use e.g. 500ms, 10s, 5m, 1h30m, 2d")]
    BadDuration(String),
    /// Not `N per DURATION` (or `N/DURATION`).
    #[error("'{0}' is not a rate: use e.g. \"1 per 10s\", \"20 per 1s\" or \"5/m\"")]
    BadRate(String),
}

/// Parses `500ms`, `10s`, `5m`, `1h30m`, `2d`, `1.5h` into microseconds (> 0).
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let bad = || DurationError::BadDuration(text.to_owned());
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let scale = unit_micros(unit).ok_or_else(bad)?;
        total += value * scale as f64;
    }
    if !(1.0..=1e16).contains(&total) {
        return Err(bad());
    }
    Ok(total as i64)
}

fn unit_micros(unit: &str) -> Option<i64> {
    Some(match unit {
        "us" | "µs" => 1,
        "ms" => 1_000,
        "s" | "sec" => MICROS_PER_SEC,
        "m" | "min" => 60 * MICROS_PER_SEC,
        "h" => 3_600 * MICROS_PER_SEC,
        "d" => 86_400 * MICROS_PER_SEC,
        _ => return None,
    })
}

/// Parses a leak rate, `N per DURATION` or `N/DURATION` (`"1 per 10s"`, `"20/s"`), into
/// the interval between two leaked events, in microseconds (at least 1).
pub fn parse_rate(text: &str) -> Result<i64, DurationError> {
    let bad = || DurationError::BadRate(text.to_owned());
    let s = text.trim();
    let (count, per) = s
        .split_once(" per ")
        .or_else(|| s.split_once('/'))
        .ok_or_else(bad)?;
    let count: f64 = count.trim().parse().map_err(|_| bad())?;
    if !(count.is_finite() && count > 0.0) {
        return Err(bad());
    }
    let per = per.trim();
    // "20/s" and "1 per m": a bare unit means one of it.
    let window = match unit_micros(per) {
        Some(u) => u,
        None => parse_duration(per).map_err(|_| bad())?,
    };
    let interval = (window as f64 / count).round();
    if interval < 1.0 {
        return Err(bad());
    }
    Ok(interval as i64)
}

/// Renders microseconds back in the shortest exact form (`90s` → `1m30s`), for messages
/// and SCENARIOS.md-style summaries.
pub fn format_duration(micros: i64) -> String {
    if micros <= 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = micros;
    for (unit, scale) in [
        ("d", 86_400 * MICROS_PER_SEC),
        ("h", 3_600 * MICROS_PER_SEC),
        ("m", 60 * MICROS_PER_SEC),
        ("s", MICROS_PER_SEC),
        ("ms", 1_000),
        ("us", 1),
    ] {
        if rest >= scale {
            out.push_str(&format!("{}{unit}", rest / scale));
            rest %= scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), 10 * MICROS_PER_SEC);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400 * MICROS_PER_SEC);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000);
        assert_eq!(parse_duration("1.5m").unwrap(), 90 * MICROS_PER_SEC);
        assert_eq!(parse_duration(" 2d ").unwrap(), 172_800 * MICROS_PER_SEC);
        for bad in ["", "10", "s", "10x", "-5s", "0s", "1e3s", "10 s s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1 per 10s").unwrap(), 10 * MICROS_PER_SEC);
        assert_eq!(parse_rate("20 per 1s").unwrap(), 50_000);
        assert_eq!(parse_rate("20/s").unwrap(), 50_000);
        assert_eq!(parse_rate("6 per m").unwrap(), 10 * MICROS_PER_SEC);
        assert_eq!(parse_rate("10 per 1h").unwrap(), 360 * MICROS_PER_SEC);
        for bad in ["", "10s", "0 per 1s", "x per 1s", "1 per", "3000000 per 1s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_back() {
        assert_eq!(format_duration(90 * MICROS_PER_SEC), "1m30s");
        assert_eq!(format_duration(3_600 * MICROS_PER_SEC), "1h");
        assert_eq!(format_duration(0), "0s");
    }
}
