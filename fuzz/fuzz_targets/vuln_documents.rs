//! Any bytes as an NVD API 2.0 page, a CIRCL record, and an uploaded inventory in each
//! format: errors, never panics; then the items identify without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_vuln::inventory::{self, Format};

fuzz_target!(|data: &[u8]| {
    let _ = palisade_vuln::nvd::parse_page(data);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = palisade_vuln::circl::parse_record(&v);
    }
    for format in [None, Some(Format::CycloneDx), Some(Format::Spdx), Some(Format::Dpkg), Some(Format::Rpm)] {
        if let Ok(inv) = inventory::parse(data, format, 10_000) {
            for item in &inv.items {
                let _ = palisade_vuln::identify::identify(item);
            }
        }
    }
});
