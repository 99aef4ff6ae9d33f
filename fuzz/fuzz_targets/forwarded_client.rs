//! Any X-Forwarded-For and X-Real-IP text through the trusted-proxies model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_core::forwarded::{forwarded_client, in_networks, loopback};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (xff, real) = text.split_once('\n').unwrap_or((&text, ""));
    let trusted = loopback();
    let peer = std::net::IpAddr::from([127, 0, 0, 1]);
    let _ = forwarded_client(peer, xff.split('\r'), Some(real), |ip| in_networks(&trusted, ip));
});
