//! What the pipeline's unit tests share.

/// The profiles `baselines` learnt, sorted: (endpoint, requests, profile), to compare
/// two runs' learning (an import and its replay, threads and one thread).
pub(crate) fn learnt(baselines: &palisade_models::Baselines) -> Vec<(String, u64, String)> {
    let mut out: Vec<_> = baselines
        .snapshot()
        .changed
        .into_iter()
        .map(|s| (s.endpoint, s.requests, s.profile))
        .collect();
    out.sort();
    out
}
