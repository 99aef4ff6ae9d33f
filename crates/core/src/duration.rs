//! One duration grammar for everything a person writes: configuration keys
//! (`request_timeout = "30s"`), ban durations (`"duration": "4h"`) and scenario files
//! (`capacity_window = "1h30m"`, `leak = "1 per 10s"`).
//!
//! A duration is a whole number of seconds (`3600`) or a sequence of `<number><unit>`
//! parts (`500ms`, `10s`, `5m`, `1h30m`, `1.5h`, `2d`; units `us`/`µs`, `ms`, `s`/`sec`,
//! `m`/`min`, `h`, `d`; parts may be separated by spaces). It is held as whole
//! microseconds (the unit of [`crate::Timestamp`]) so that time arithmetic stays
//! integer-only. A rate is `N per DURATION` or `N/DURATION` (`"20/s"`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Microseconds in one second.
pub const MICROS_PER_SEC: i64 = 1_000_000;

/// The longest span accepted anywhere: a hundred years.
const MAX_MICROS: i64 = 100 * 366 * 86_400 * MICROS_PER_SEC;

/// Why a duration or rate could not be read; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not seconds nor a sequence of `<number><unit>` parts.
    #[error("'{0}' is not a duration: give seconds or a sequence like 500ms, 30s, 5m, 1h30m, 7d")]
    Syntax(String),
    /// Zero or negative.
    #[error("must be positive")]
    NotPositive,
    /// Longer than the use allows.
    #[error("is too long")]
    TooLong,
    /// Not `N per DURATION` (or `N/DURATION`).
    #[error("'{0}' is not a rate: use e.g. \"1 per 10s\", \"20 per 1s\" or \"5/m\"")]
    BadRate(String),
}

/// A positive span of time written in the grammar above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(i64);

impl Span {
    /// A span of whole seconds (at least one microsecond is kept).
    pub const fn from_secs(secs: u64) -> Span {
        Span((secs as i64).saturating_mul(MICROS_PER_SEC))
    }

    /// A span of milliseconds.
    pub const fn from_millis(ms: u64) -> Span {
        Span((ms as i64).saturating_mul(1_000))
    }

    /// A span of microseconds.
    pub const fn from_micros(micros: i64) -> Span {
        Span(micros)
    }

    /// Parses the grammar.
    pub fn parse(text: &str) -> Result<Span, DurationError> {
        parse_micros(text).map(Span)
    }

    /// Whole microseconds.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded down.
    pub const fn as_secs(self) -> u64 {
        (self.0 / MICROS_PER_SEC) as u64
    }

    /// As a standard library duration.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_micros(self.0.max(0) as u64)
    }

    /// Whether it lies within `min..=max` (for validation messages).
    pub fn within(self, min: Span, max: Span) -> bool {
        (min.0..=max.0).contains(&self.0)
    }
}

impl From<Span> for std::time::Duration {
    fn from(s: Span) -> Self {
        s.to_std()
    }
}

impl FromStr for Span {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Span::parse(s)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_micros(self.0))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Seconds as a number, or the text grammar.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(i64),
            Text(String),
        }
        let micros = match Raw::deserialize(d)? {
            Raw::Secs(n) if n <= 0 => Err(DurationError::NotPositive),
            Raw::Secs(n) => n
                .checked_mul(MICROS_PER_SEC)
                .filter(|m| *m <= MAX_MICROS)
                .ok_or(DurationError::TooLong),
            Raw::Text(t) => parse_micros(&t),
        };
        micros.map(Span).map_err(serde::de::Error::custom)
    }
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

/// Parses the grammar into microseconds (> 0, at most a hundred years).
pub fn parse_micros(text: &str) -> Result<i64, DurationError> {
    let s = text.trim();
    let syntax = || DurationError::Syntax(s.chars().take(40).collect());
    if s.is_empty() {
        return Err(syntax());
    }
    if s.starts_with('-') {
        return Err(DurationError::NotPositive);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s.parse().map_err(|_| DurationError::TooLong)?;
        let micros = secs
            .checked_mul(MICROS_PER_SEC)
            .ok_or(DurationError::TooLong)?;
        return check(micros as f64);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(syntax());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| syntax())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        total += value * unit_micros(unit).ok_or_else(syntax)? as f64;
    }
    check(total)
}

fn check(micros: f64) -> Result<i64, DurationError> {
    if micros < 1.0 {
        Err(DurationError::NotPositive)
    } else if micros > MAX_MICROS as f64 {
        Err(DurationError::TooLong)
    } else {
        Ok(micros.round() as i64)
    }
}

/// Parses a rate, `N per DURATION` or `N/DURATION` (`"1 per 10s"`, `"20/s"`), into the
/// interval between two events, in microseconds (at least 1).
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
        None => parse_micros(per).map_err(|_| bad())?,
    };
    let interval = (window as f64 / count).round();
    if interval < 1.0 {
        return Err(bad());
    }
    Ok(interval as i64)
}

/// Renders microseconds in the shortest exact form (`90s` → `1m30s`), for messages,
/// summaries and configuration echoes.
pub fn format_micros(micros: i64) -> String {
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
    fn the_grammar() {
        assert_eq!(parse_micros("3600"), Ok(3600 * MICROS_PER_SEC));
        assert_eq!(parse_micros("10s"), Ok(10 * MICROS_PER_SEC));
        assert_eq!(parse_micros("1h30m"), Ok(5_400 * MICROS_PER_SEC));
        assert_eq!(parse_micros("1h 30m"), Ok(5_400 * MICROS_PER_SEC));
        assert_eq!(parse_micros("500ms"), Ok(500_000));
        assert_eq!(parse_micros("1.5m"), Ok(90 * MICROS_PER_SEC));
        assert_eq!(parse_micros(" 2d "), Ok(172_800 * MICROS_PER_SEC));
        assert_eq!(parse_micros("0"), Err(DurationError::NotPositive));
        assert_eq!(parse_micros("0s"), Err(DurationError::NotPositive));
        assert_eq!(parse_micros("-5m"), Err(DurationError::NotPositive));
        assert_eq!(parse_micros("40000d"), Err(DurationError::TooLong));
        assert_eq!(
            parse_micros("99999999999999999999"),
            Err(DurationError::TooLong)
        );
        for bad in ["", "h", "4x", "4h30", "four hours", "1..5h", "5 m s"] {
            assert!(
                matches!(parse_micros(bad), Err(DurationError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1 per 10s").unwrap(), 10 * MICROS_PER_SEC);
        assert_eq!(parse_rate("20 per 1s").unwrap(), 50_000);
        assert_eq!(parse_rate("20/s").unwrap(), 50_000);
        assert_eq!(parse_rate("6 per m").unwrap(), 10 * MICROS_PER_SEC);
        for bad in ["", "per 10s", "0 per 10s", "1 per", "5 per 1us x"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_read_numbers_and_text_and_print_back() {
        #[derive(Deserialize)]
        struct C {
            a: Span,
            b: Span,
        }
        let c: C = toml::from_str("a = 30\nb = \"1h30m\"").unwrap();
        assert_eq!(c.a, Span::from_secs(30));
        assert_eq!(c.b.to_string(), "1h30m");
        assert_eq!(Span::from_millis(1500).to_string(), "1s500ms");
        let err = toml::from_str::<C>("a = 0\nb = \"x\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("must be positive"), "{err}");
        assert_eq!(format_micros(0), "0s");
    }
}
