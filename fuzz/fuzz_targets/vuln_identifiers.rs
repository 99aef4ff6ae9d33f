//! Any text as a CPE name and a package URL: errors, never panics; a parsed CPE prints
//! back to a name that parses to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_vuln::cpe::Cpe;
use palisade_vuln::purl::Purl;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(cpe) = Cpe::parse(&text) {
        let again = Cpe::parse(&cpe.to_string()).expect("a printed CPE parses");
        assert_eq!(again.product_key(), cpe.product_key());
    }
    let _ = Purl::parse(&text);
});
