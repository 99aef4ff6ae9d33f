//! Any two texts as versions: comparison never panics and is a total order (reflexive,
//! antisymmetric), and range checks never panic.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use palisade_vuln::version::{Bound, Version, compare, in_range};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\n').unwrap_or((&text, ""));
    assert_eq!(compare(a, a), Ordering::Equal);
    assert_eq!(compare(a, b), compare(b, a).reverse());
    let v = Version::parse(a);
    let _ = in_range(
        &v,
        Some(Bound { version: b, inclusive: true }),
        Some(Bound { version: a, inclusive: false }),
    );
});
