//! Any bytes through the `combined` and `common` parsers: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_formats::{FormatSpec, build};

fuzz_target!(|data: &[u8]| {
    for spec in [FormatSpec::Combined, FormatSpec::Common] {
        let p = build(&spec).expect("presets build");
        if let Ok(ev) = p.parse(data) {
            assert!(ev.source.is_empty());
        }
    }
});
