//! Fuzzes the Apache LogFormat compiler and, when the format compiles, a line through
//! it. Input: `<format>\n<line>`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_formats::{FormatSpec, build};

fuzz_target!(|data: &[u8]| {
    let (fmt, line) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(fmt) = std::str::from_utf8(fmt) else {
        return;
    };
    if let Ok(p) = build(&FormatSpec::Apache(fmt.to_owned())) {
        let _ = p.parse(line);
        let _ = p.parse(fmt.as_bytes());
    }
});
