//! Cron schedules in a time zone.
//!
//! Expressions are read by `croner` (5 fields `min hour dom month dow`, or 6 with
//! seconds first; names such as `MON` and `JAN`; `L`, `W`, `#`; `@hourly`, `@daily`,
//! `@weekly`, `@monthly`, `@yearly`; day of month and day of week combine with OR as in
//! Vixie cron). Times are computed in the schedule's zone by `jiff`: `UTC`, a fixed
//! offset (`+02:00`), or an IANA name (`Europe/Paris`) from the system's zoneinfo, with
//! a copy compiled in for systems without one; daylight-saving gaps and overlaps follow
//! croner's rules (a time skipped by a gap fires once, right after it; a repeated hour
//! fires once).

use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Year};
use jiff::tz::{Offset, TimeZone};
use palisade_core::Timestamp;

/// Why a schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error(
        "'{expr}' is not a cron expression: {why} (give 5 fields like \"30 3 * * *\", 6 with seconds first, or @daily)"
    )]
    Cron {
        /// The expression.
        expr: String,
        /// The parser's reason.
        why: String,
    },
    /// The time zone is unknown.
    #[error(
        "'{0}' is not a time zone: give UTC, an offset like +02:00, or an IANA name like Europe/Paris"
    )]
    TimeZone(String),
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    zone: TimeZone,
}

/// Reads a time zone: `UTC`, `±HH:MM`/`±HHMM`/`±HH`, or an IANA name.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    let bad = || ScheduleError::TimeZone(name.to_owned());
    let text = name.trim();
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(TimeZone::UTC);
    }
    if let Some(rest) = text.strip_prefix('+').or_else(|| text.strip_prefix('-')) {
        let sign: i32 = if text.starts_with('-') { -1 } else { 1 };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
            return Err(bad());
        }
        let hours: i32 = digits[..2].parse().map_err(|_| bad())?;
        let minutes: i32 = if digits.len() == 4 {
            digits[2..].parse().map_err(|_| bad())?
        } else {
            0
        };
        if hours > 18 || minutes > 59 {
            return Err(bad());
        }
        let offset =
            Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).map_err(|_| bad())?;
        return Ok(TimeZone::fixed(offset));
    }
    if text.is_empty() || text.len() > 64 {
        return Err(bad());
    }
    TimeZone::get(text).map_err(|_| bad())
}

impl CronSchedule {
    /// Parses an expression and a time zone.
    pub fn parse(expr: &str, zone: &str) -> Result<CronSchedule, ScheduleError> {
        let trimmed = expr.trim();
        if trimmed.is_empty() || trimmed.len() > 256 {
            return Err(ScheduleError::Cron {
                expr: expr.to_owned(),
                why: "empty or too long".into(),
            });
        }
        let parser = CronParser::builder().year(Year::Disallowed).build();
        let cron = parser.parse(trimmed).map_err(|e| ScheduleError::Cron {
            expr: expr.to_owned(),
            why: e.to_string(),
        })?;
        Ok(CronSchedule {
            cron,
            zone: parse_time_zone(zone)?,
        })
    }

    /// The first time strictly after `t`; `None` when there is none (an impossible date
    /// such as 30 February).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let ts = jiff::Timestamp::from_microsecond(t.as_micros()).ok()?;
        let start = ts.to_zoned(self.zone.clone());
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(Timestamp(next.timestamp().as_microsecond()))
    }

    /// The expression in words ("At 03:30").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

impl FromStr for CronSchedule {
    type Err = ScheduleError;

    /// `EXPR` in UTC.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronSchedule::parse(s, "UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_api(s).unwrap()
    }

    #[test]
    fn next_times_in_utc_offsets_and_zones() {
        let daily = CronSchedule::parse("30 3 * * *", "UTC").unwrap();
        assert_eq!(
            daily.next_after(t("2024-05-01T03:29:59Z")),
            Some(t("2024-05-01T03:30:00Z"))
        );
        assert_eq!(
            daily.next_after(t("2024-05-01T03:30:00Z")),
            Some(t("2024-05-02T03:30:00Z")),
            "strictly after"
        );
        let offset = CronSchedule::parse("0 9 * * MON", "+02:00").unwrap();
        // Friday 2024-05-03 → Monday 2024-05-06 09:00+02:00 = 07:00Z.
        assert_eq!(
            offset.next_after(t("2024-05-03T12:00:00Z")),
            Some(t("2024-05-06T07:00:00Z"))
        );
        let paris = CronSchedule::parse("0 12 * * *", "Europe/Paris").unwrap();
        // Summer (UTC+2) and winter (UTC+1).
        assert_eq!(
            paris.next_after(t("2024-07-01T00:00:00Z")),
            Some(t("2024-07-01T10:00:00Z"))
        );
        assert_eq!(
            paris.next_after(t("2024-12-01T00:00:00Z")),
            Some(t("2024-12-01T11:00:00Z"))
        );
        // 02:30 does not exist in Paris on 2024-03-31: it fires once, after the gap.
        let gap = CronSchedule::parse("30 2 * * *", "Europe/Paris").unwrap();
        let fired = gap.next_after(t("2024-03-30T23:00:00Z")).unwrap();
        assert!(fired > t("2024-03-31T00:59:59Z") && fired <= t("2024-03-31T01:30:00Z"));
        let seconds = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(
            seconds.next_after(t("2024-05-01T00:00:01Z")),
            Some(t("2024-05-01T00:00:10Z"))
        );
        let hourly: CronSchedule = "@hourly".parse().unwrap();
        assert_eq!(
            hourly.next_after(t("2024-05-01T00:10:00Z")),
            Some(t("2024-05-01T01:00:00Z"))
        );
        assert!(!daily.describe().is_empty());
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        for bad in ["", "* * *", "61 * * * *", "* * * * * * 2024", "every day"] {
            assert!(
                matches!(
                    CronSchedule::parse(bad, "UTC"),
                    Err(ScheduleError::Cron { .. })
                ),
                "{bad}"
            );
        }
        for bad in [
            "Mars/Olympus",
            "+25:00",
            "+2",
            "UTC+",
            "",
            "../../etc/passwd",
        ] {
            assert!(
                matches!(parse_time_zone(bad), Err(ScheduleError::TimeZone(_))),
                "{bad}"
            );
        }
        assert!(parse_time_zone("-0530").is_ok());
        assert!(parse_time_zone("utc").is_ok());
    }
}
