//! Any bytes through the Apache error-log parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_formats::{FormatSpec, build};

fuzz_target!(|data: &[u8]| {
    let p = build(&FormatSpec::ApacheError).expect("apache_error builds");
    let _ = p.parse(data);
});
