//! Every transformation, alone and chained, on arbitrary text: no panic, and the
//! idempotent ones really are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_detect::Transform;
use palisade_detect::transform::apply_chain;

const NAMES: &[&str] = &[
    "url_decode", "url_decode_uni", "html_entity_decode", "lowercase", "normalize_path", "compress_whitespace",
    "remove_nulls", "sql_comment_strip", "fullwidth_fold", "base64_decode", "cmd_line",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let all: Vec<Transform> = NAMES.iter().filter_map(|n| Transform::from_name(n)).collect();
    for t in &all {
        let _ = t.apply(&text);
    }
    let chain: Vec<Transform> = data.iter().take(6).filter_map(|b| all.get(usize::from(*b) % all.len().max(1)).copied()).collect();
    let _ = apply_chain(&chain, &text);
    if let Some(lower) = Transform::from_name("lowercase") {
        let once = lower.apply(&text).into_owned();
        assert_eq!(lower.apply(&once), once.as_str());
    }
});
