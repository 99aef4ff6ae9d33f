//! Any bytes through the syslog parser and its authentication layer, with a fixed year
//! and with the clock's (year inference), and an Auth event always has an outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_core::EventKind;
use palisade_formats::{FormatSpec, SyslogOptions, build};

fuzz_target!(|data: &[u8]| {
    for year in [None, Some(2000)] {
        let p = build(&FormatSpec::Syslog(SyslogOptions { year })).expect("syslog builds");
        if let Ok(ev) = p.parse(data) {
            assert!(matches!(ev.kind, EventKind::Syslog | EventKind::Auth));
            if ev.kind == EventKind::Auth {
                assert!(ev.extra.iter().any(|(k, _)| k == "outcome"));
            }
        }
    }
});
