//! Durations and rates as scenario files write them (`"90s"`, `"1h30m"`, `"1 per 10s"`):
//! the one grammar of [`palisade_core::duration`], re-exported here for the scenario
//! code.

pub use palisade_core::duration::{
    DurationError, MICROS_PER_SEC, format_micros as format_duration,
    parse_micros as parse_duration, parse_rate,
};
