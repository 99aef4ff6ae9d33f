//! The hand-written timestamp parsers in palisade-core: never a panic, and what they
//! accept prints as RFC 3339 that parses back to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    for parsed in [
        Timestamp::parse_clf(data),
        Timestamp::parse_iso8601(data),
        Timestamp::parse_epoch(data),
    ] {
        if let Ok(t) = parsed {
            let back = Timestamp::parse_iso8601(t.to_string().as_bytes());
            if (0..253_402_300_800_000_000).contains(&t.as_micros()) {
                assert_eq!(back, Ok(t));
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Timestamp::parse_api(s);
    }
});
