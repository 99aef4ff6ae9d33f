//! sniff() on a sample made of the input's lines; whatever it picks must build.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_formats::{build, sniff};

fuzz_target!(|data: &[u8]| {
    let sample: Vec<&[u8]> = data.split(|&b| b == b'\n').take(64).collect();
    if let Some(spec) = sniff(&sample) {
        let p = build(&spec).expect("a detected format builds");
        for line in &sample {
            let _ = p.parse(line);
        }
    }
});
