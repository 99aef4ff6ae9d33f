//! Any bytes as a compressed request body, in every coding the proxy decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_proxy::decode::{Coding, Limits, decode};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_ratio: 100,
        allow_prefix: data.first().is_some_and(|b| b & 1 == 1),
    };
    for codings in [
        &[Coding::Gzip][..],
        &[Coding::Deflate],
        &[Coding::Brotli],
        &[Coding::Gzip, Coding::Brotli],
    ] {
        let _ = decode(codings, bytes::Bytes::copy_from_slice(data), false, limits);
        let _ = decode(codings, bytes::Bytes::copy_from_slice(data), true, limits);
    }
});
