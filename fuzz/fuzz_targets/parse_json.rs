//! Any bytes through the JSON access-log parser with the default field map.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_formats::{FormatSpec, JsonFieldMap, build};

fuzz_target!(|data: &[u8]| {
    let p = build(&FormatSpec::Json(JsonFieldMap::default())).expect("json builds");
    let _ = p.parse(data);
});
