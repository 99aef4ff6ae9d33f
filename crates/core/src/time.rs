//! Timestamps: parsed by hand from the formats logs use, because a date library per
//! line costs more than the rest of the parse.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Microseconds since the Unix epoch, UTC. One integer so that storage, indexes and
/// range queries stay cheap on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp: {0}")]
pub struct TimeError(&'static str);

const MICROS: i64 = 1_000_000;

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros().min(i64::MAX as u128) as i64)
    }

    /// From whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(MICROS))
    }

    /// Microseconds since the epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// This time shifted by a signed number of microseconds.
    pub fn add_micros(self, micros: i64) -> Self {
        Timestamp(self.0.saturating_add(micros))
    }

    /// Builds a timestamp from calendar fields in UTC, checking every range.
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        min: u32,
        sec: u32,
        micros: u32,
    ) -> Result<Self, TimeError> {
        if !(1..=12).contains(&month) {
            return Err(TimeError("month out of range"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(TimeError("day out of range"));
        }
        if hour > 23 || min > 59 || sec > 60 || micros >= 1_000_000 {
            return Err(TimeError("time of day out of range"));
        }
        if !(0..=9999).contains(&year) {
            return Err(TimeError("year out of range"));
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
        Ok(Timestamp(secs * MICROS + i64::from(micros)))
    }

    /// Parses the Common Log Format time: `10/Oct/2000:13:55:36 -0700` (brackets
    /// already removed).
    pub fn parse_clf(s: &[u8]) -> Result<Self, TimeError> {
        // dd/Mon/yyyy:HH:MM:SS +zzzz
        if s.len() < 20 {
            return Err(TimeError("too short for dd/Mon/yyyy:HH:MM:SS"));
        }
        let day = digits(s, 0, 2)?;
        expect(s, 2, b'/')?;
        let month = month_from_abbrev(s.get(3..6).unwrap_or_default())
            .ok_or(TimeError("unknown month name"))?;
        expect(s, 6, b'/')?;
        let year = digits(s, 7, 4)?;
        expect(s, 11, b':')?;
        let hour = digits(s, 12, 2)?;
        expect(s, 14, b':')?;
        let min = digits(s, 15, 2)?;
        expect(s, 17, b':')?;
        let sec = digits(s, 18, 2)?;
        let mut pos = 20;
        let mut micros = 0;
        if s.get(pos) == Some(&b'.') {
            let (m, used) = fraction(&s[pos + 1..])?;
            micros = m;
            pos += 1 + used;
        }
        let offset = if pos == s.len() {
            0
        } else {
            expect(s, pos, b' ')?;
            zone_offset(&s[pos + 1..])?
        };
        let t = Self::from_civil(i64::from(year), month, day, hour, min, sec, micros)?;
        Ok(t.add_micros(-offset * MICROS))
    }

    /// Parses ISO 8601 / RFC 3339: `2000-10-10T13:55:36Z`, with optional fraction and
    /// numeric offset; a space is accepted in place of `T`, and no zone means UTC.
    pub fn parse_iso8601(s: &[u8]) -> Result<Self, TimeError> {
        if s.len() < 19 {
            return Err(TimeError("too short for yyyy-mm-ddTHH:MM:SS"));
        }
        let year = digits(s, 0, 4)?;
        expect(s, 4, b'-')?;
        let month = digits(s, 5, 2)?;
        expect(s, 7, b'-')?;
        let day = digits(s, 8, 2)?;
        if !matches!(s.get(10), Some(b'T' | b't' | b' ')) {
            return Err(TimeError("expected 'T' between date and time"));
        }
        let hour = digits(s, 11, 2)?;
        expect(s, 13, b':')?;
        let min = digits(s, 14, 2)?;
        expect(s, 16, b':')?;
        let sec = digits(s, 17, 2)?;
        let mut pos = 19;
        let mut micros = 0;
        if matches!(s.get(pos), Some(b'.' | b',')) {
            let (m, used) = fraction(&s[pos + 1..])?;
            micros = m;
            pos += 1 + used;
        }
        let rest = &s[pos..];
        let offset = match rest {
            [] | [b'Z'] | [b'z'] => 0,
            _ => zone_offset(rest)?,
        };
        let t = Self::from_civil(i64::from(year), month, day, hour, min, sec, micros)?;
        Ok(t.add_micros(-offset * MICROS))
    }

    /// Parses seconds since the epoch with an optional fraction (nginx `$msec`).
    pub fn parse_epoch(s: &[u8]) -> Result<Self, TimeError> {
        let (int, frac) = match memchr_dot(s) {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (s, &b""[..]),
        };
        if int.is_empty() || int.len() > 12 {
            return Err(TimeError("epoch seconds must have 1 to 12 digits"));
        }
        let mut secs: i64 = 0;
        for &b in int {
            if !b.is_ascii_digit() {
                return Err(TimeError("epoch seconds must be digits"));
            }
            secs = secs * 10 + i64::from(b - b'0');
        }
        let micros = if memchr_dot(s).is_none() {
            0
        } else {
            let (m, used) = fraction(frac)?;
            if used != frac.len() {
                return Err(TimeError("trailing characters after epoch fraction"));
            }
            m
        };
        Ok(Timestamp(secs * MICROS + i64::from(micros)))
    }

    /// Parses any of the text forms the API accepts: RFC 3339 or epoch seconds.
    pub fn parse_api(s: &str) -> Result<Self, TimeError> {
        let b = s.trim().as_bytes();
        if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
            Self::parse_epoch(b)
        } else {
            Self::parse_iso8601(b)
        }
    }

    /// Calendar fields (year, month, day, hour, minute, second, microsecond) in UTC.
    pub fn to_civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.0.div_euclid(MICROS);
        let micros = self.0.rem_euclid(MICROS) as u32;
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, tod / 3600, (tod / 60) % 60, tod % 60, micros)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with microseconds only when there are any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, us) = self.to_civil();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if us != 0 {
            write!(f, ".{us:06}")?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Secs(f64),
        }
        match Repr::deserialize(d)? {
            Repr::Text(s) => Timestamp::parse_api(&s).map_err(serde::de::Error::custom),
            Repr::Secs(f) if f.is_finite() && f.abs() < 1e12 => {
                Ok(Timestamp((f * MICROS as f64) as i64))
            }
            Repr::Secs(_) => Err(serde::de::Error::custom("epoch seconds out of range")),
        }
    }
}

fn memchr_dot(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'.')
}

fn expect(s: &[u8], pos: usize, want: u8) -> Result<(), TimeError> {
    if s.get(pos) == Some(&want) {
        Ok(())
    } else {
        Err(TimeError("unexpected separator"))
    }
}

fn digits(s: &[u8], pos: usize, len: usize) -> Result<u32, TimeError> {
    let part = s.get(pos..pos + len).ok_or(TimeError("truncated"))?;
    let mut v: u32 = 0;
    for &b in part {
        if !b.is_ascii_digit() {
            return Err(TimeError("expected a digit"));
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Ok(v)
}

/// Reads up to 9 fraction digits (more are skipped), returning microseconds and the
/// number of bytes consumed.
fn fraction(s: &[u8]) -> Result<(u32, usize), TimeError> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return Err(TimeError("empty fraction"));
    }
    let mut micros: u32 = 0;
    for i in 0..6 {
        micros *= 10;
        if let Some(&b) = s.get(i).filter(|_| i < n) {
            micros += u32::from(b - b'0');
        }
    }
    Ok((micros, n))
}

/// `+hhmm`, `-hh:mm`, `+hh` → seconds east of UTC.
fn zone_offset(s: &[u8]) -> Result<i64, TimeError> {
    let sign = match s.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(TimeError("expected a zone offset like +0200")),
    };
    let body = &s[1..];
    let (h, m) = match body.len() {
        2 => (digits(body, 0, 2)?, 0),
        4 => (digits(body, 0, 2)?, digits(body, 2, 2)?),
        5 if body[2] == b':' => (digits(body, 0, 2)?, digits(body, 3, 2)?),
        _ => return Err(TimeError("malformed zone offset")),
    };
    if h > 23 || m > 59 {
        return Err(TimeError("zone offset out of range"));
    }
    Ok(sign * (i64::from(h) * 3600 + i64::from(m) * 60))
}

/// Maps `Jan`..`Dec` (any case) to 1..12.
pub fn month_from_abbrev(s: &[u8]) -> Option<u32> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    if s.len() != 3 {
        return None;
    }
    let lower = [
        s[0].to_ascii_lowercase(),
        s[1].to_ascii_lowercase(),
        s[2].to_ascii_lowercase(),
    ];
    NAMES
        .iter()
        .position(|n| **n == lower)
        .map(|i| i as u32 + 1)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_with_offset() {
        let t = Timestamp::parse_clf(b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(t.to_string(), "2000-10-10T20:55:36Z");
        assert_eq!(t.0, 971_211_336 * MICROS);
    }

    #[test]
    fn iso_forms() {
        let a = Timestamp::parse_iso8601(b"2000-10-10T20:55:36Z").unwrap();
        let b = Timestamp::parse_iso8601(b"2000-10-10T22:55:36+02:00").unwrap();
        let c = Timestamp::parse_iso8601(b"2000-10-10 20:55:36.5").unwrap();
        assert_eq!(a, b);
        assert_eq!(c.0 - a.0, 500_000);
        assert_eq!(c.to_string(), "2000-10-10T20:55:36.500000Z");
    }

    #[test]
    fn epoch_and_api() {
        assert_eq!(
            Timestamp::parse_epoch(b"971211336.250").unwrap().0,
            971_211_336_250_000
        );
        assert_eq!(
            Timestamp::parse_api("2000-10-10T20:55:36Z").unwrap(),
            Timestamp::parse_api("971211336").unwrap()
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            &b""[..],
            b"32/Oct/2000:13:55:36 -0700",
            b"10/Foo/2000:13:55:36 -0700",
            b"10/Oct/2000:25:55:36 -0700",
            b"10/Oct/2000:13:55:36 0700",
            b"29/Feb/2001:00:00:00 +0000",
            "10/Oct/2000:13:55:3\u{e9} -0700".as_bytes(),
        ] {
            assert!(Timestamp::parse_clf(bad).is_err(), "{bad:?}");
        }
        assert!(Timestamp::parse_iso8601(b"2000-13-01T00:00:00Z").is_err());
        assert!(Timestamp::parse_epoch(b"12x").is_err());
        assert!(Timestamp::parse_epoch(b"1.").is_err());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn serde_round_trip() {
        let t = Timestamp::parse_clf(b"10/Oct/2000:13:55:36.123 -0700").unwrap();
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, "\"2000-10-10T20:55:36.123000Z\"");
        let back: Timestamp = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
    }
}
