//! `palisade eval --protocol b`: a split of the attack samples in which no parameter
//! value appears on both sides, so that a model trained on one side is judged on
//! payloads it has never seen (random splits of CSIC 2010 leak: the same payload is
//! planted in many requests, GET and POST alike).
//!
//! Attack samples that share any non-empty parameter value (query or body argument,
//! decoded, as the baselines see it) are joined (union-find); the joined groups are
//! shuffled with the seed and each goes to the side that has fewer attacks so far.
//! Normal samples are not split: all of them stay on the evaluated (test) side.

use std::collections::HashMap;

use palisade_models::rng::Rng;

use super::eval::Sample;

/// What the split did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct SplitStats {
    /// Attack samples on the training side.
    pub(crate) train_attacks: usize,
    /// Attack samples on the test side.
    pub(crate) test_attacks: usize,
    /// Groups of attacks linked by a shared value.
    pub(crate) groups: usize,
    /// The largest group.
    pub(crate) largest_group: usize,
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while let Some(&p) = parent.get(x) {
        if p == x {
            break;
        }
        let grand = parent.get(p).copied().unwrap_or(p);
        if let Some(slot) = parent.get_mut(x) {
            *slot = grand;
        }
        x = grand;
    }
    x
}

/// Splits `samples`: returns (training-side attacks, test side = other attacks + every
/// normal sample, figures).
pub(crate) fn split(samples: Vec<Sample>, seed: u64) -> (Vec<Sample>, Vec<Sample>, SplitStats) {
    let (attacks, normal): (Vec<Sample>, Vec<Sample>) = samples.into_iter().partition(|s| s.attack);
    let mut parent: Vec<usize> = (0..attacks.len()).collect();
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, s) in attacks.iter().enumerate() {
        for (_, value) in palisade_models::baseline::parameters(&s.request) {
            if value.is_empty() {
                continue;
            }
            match first.get(&value) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if let Some(slot) = parent.get_mut(a) {
                        *slot = b;
                    }
                }
                None => {
                    first.insert(value, i);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..attacks.len() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    // A deterministic order before the seeded shuffle (HashMap order is not).
    groups.sort_by_key(|g| g.first().copied().unwrap_or(0));
    Rng::new(seed).shuffle(&mut groups);
    let largest_group = groups.iter().map(Vec::len).max().unwrap_or(0);
    let mut side = vec![false; attacks.len()];
    let (mut train_n, mut test_n) = (0usize, 0usize);
    for g in &groups {
        let to_train = train_n <= test_n;
        for &i in g {
            if let Some(s) = side.get_mut(i) {
                *s = to_train;
            }
        }
        if to_train {
            train_n += g.len();
        } else {
            test_n += g.len();
        }
    }
    let mut train = Vec::with_capacity(train_n);
    let mut test = Vec::with_capacity(test_n + normal.len());
    for (s, to_train) in attacks.into_iter().zip(side) {
        if to_train {
            train.push(s);
        } else {
            test.push(s);
        }
    }
    test.extend(normal);
    let stats = SplitStats {
        train_attacks: train_n,
        test_attacks: test_n,
        groups: groups.len(),
        largest_group,
    };
    (train, test, stats)
}

/// One sample as a corpus line (the format `palisade eval` and `palisade train` read).
pub(crate) fn to_json_line(s: &Sample) -> String {
    serde_json::json!({
        "method": s.request.method,
        "uri": s.request.uri,
        "version": s.request.protocol,
        "headers": s.request.headers,
        "body": String::from_utf8_lossy(&s.request.body),
        "label": if s.attack { "attack" } else { "normal" },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_detect::HttpRequest;

    fn sample(uri: &str, attack: bool) -> Sample {
        Sample {
            request: HttpRequest {
                method: "GET".into(),
                uri: uri.into(),
                protocol: "HTTP/1.1".into(),
                headers: Vec::new(),
                body: Vec::new(),
                client_ip: None,
            },
            attack,
            category: None,
            part: None,
        }
    }

    fn values(side: &[Sample]) -> Vec<String> {
        side.iter()
            .filter(|s| s.attack)
            .flat_map(|s| palisade_models::baseline::parameters(&s.request))
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn no_parameter_value_is_on_both_sides_and_the_seed_decides() {
        let mut samples = Vec::new();
        for i in 0..40 {
            // Pairs share a payload; a chain links three.
            samples.push(sample(&format!("/a?x=p{}", i / 2), true));
        }
        samples.push(sample("/a?x=p0&y=q", true));
        samples.push(sample("/a?y=q&z=r", true));
        samples.push(sample("/ok?x=p0", false));
        let (train, test, stats) = split(samples, 7);
        assert_eq!(stats.train_attacks + stats.test_attacks, 42);
        assert_eq!(stats.largest_group, 4);
        assert!(stats.train_attacks.abs_diff(stats.test_attacks) <= 4);
        let (a, b) = (values(&train), values(&test));
        assert!(a.iter().all(|v| !b.contains(v)), "{a:?} / {b:?}");
        assert!(
            test.iter().any(|s| !s.attack),
            "normal samples stay on the test side"
        );
        assert!(train.iter().all(|s| s.attack));
        let again = split(
            (0..40)
                .map(|i| sample(&format!("/a?x=p{}", i / 2), true))
                .collect(),
            7,
        );
        let other = split(
            (0..40)
                .map(|i| sample(&format!("/a?x=p{}", i / 2), true))
                .collect(),
            8,
        );
        let uris = |v: &[Sample]| v.iter().map(|s| s.request.uri.clone()).collect::<Vec<_>>();
        let again2 = split(
            (0..40)
                .map(|i| sample(&format!("/a?x=p{}", i / 2), true))
                .collect(),
            7,
        );
        assert_eq!(uris(&again.0), uris(&again2.0), "deterministic for a seed");
        assert_ne!(
            uris(&again.0),
            uris(&other.0),
            "another seed, another split"
        );
        let line = to_json_line(&test[0]);
        assert!(line.contains("\"label\":\"attack\""), "{line}");
    }
}
