//! `palisade eval --protocol b`: a split of the attack samples in which no *payload*
//! value appears on both sides, so that a model trained on one side is judged on
//! payloads it has never seen (random splits of CSIC 2010 leak: the same payload is
//! planted in many requests, GET and POST alike).
//!
//! # Payload values
//!
//! A value (query or body argument, decoded as the baselines see it, or the path) is a
//! *payload value* when it holds a character its parameter never showed in the normal
//! reference traffic (`--baselines-train`, the normal training side): `id=1'--` for an
//! `id` that was always digits, anything in a parameter the reference never had. The
//! other values are *filler*: CSIC 2010 fills every form of an anomalous request with
//! random but ordinary names, e-mail addresses and passwords, reused across the attacks
//! of one made-up user. Joining attacks by filler too chains 16,410 of the 25,065
//! attacks into one group (counted on the raw data), and no split can then be balanced;
//! joined by payload values only, the largest group is the 478 requests that send
//! `Confirmar/`. Filler values may appear on both sides (their count is printed);
//! payload values never do. Without a reference every value joins (the strict rule).
//!
//! # Balance
//!
//! Attacks sharing any payload value are joined (union-find). The groups are shuffled
//! with the seed, ordered largest first (a stable sort, so the seed orders equal
//! sizes), and each goes to the side furthest below its target share (half each), so
//! the sides end within one group of the target. Normal samples are not split: all of
//! them stay on the evaluated (test) side.

use std::collections::{HashMap, HashSet};

use palisade_detect::HttpRequest;
use palisade_models::rng::Rng;

use super::eval::Sample;

/// What the split did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct SplitStats {
    /// Attack samples on the training side.
    pub(crate) train_attacks: usize,
    /// Attack samples on the test side.
    pub(crate) test_attacks: usize,
    /// Groups of attacks linked by a shared payload value.
    pub(crate) groups: usize,
    /// The largest group.
    pub(crate) largest_group: usize,
    /// Distinct payload values (they never appear on both sides).
    pub(crate) payload_values: usize,
    /// Distinct filler values found on both sides.
    pub(crate) shared_filler: usize,
}

/// The characters each parameter showed in normal reference traffic: what tells a
/// payload value from filler.
#[derive(Debug, Default)]
pub(crate) struct Reference {
    chars: HashMap<String, HashSet<char>>,
}

/// The pseudo-parameter name of the path.
const PATH: &str = "(path)";

/// The values of a request that take part in the split: its parameters, and its path
/// when `with_path` (a reference tells whether a path is a payload).
fn values(request: &HttpRequest, with_path: bool) -> Vec<(String, String)> {
    let mut out = palisade_models::baseline::parameters(request);
    if !with_path {
        return out;
    }
    let target = request
        .uri
        .split_once("://")
        .map_or(request.uri.as_str(), |(_, rest)| {
            rest.find('/').map_or("/", |i| &rest[i..])
        });
    let path = target.split(['?', '#']).next().unwrap_or(target);
    out.push((PATH.to_owned(), path.to_owned()));
    out
}

impl Reference {
    /// Learns the characters of every parameter of these normal requests.
    pub(crate) fn learn<'a>(requests: impl IntoIterator<Item = &'a HttpRequest>) -> Reference {
        let mut chars: HashMap<String, HashSet<char>> = HashMap::new();
        for r in requests {
            for (name, value) in values(r, true) {
                chars.entry(name).or_default().extend(value.chars());
            }
        }
        Reference { chars }
    }

    /// Whether `value` of parameter `name` holds a character never seen there.
    fn is_payload(&self, name: &str, value: &str) -> bool {
        match self.chars.get(name) {
            Some(seen) => value.chars().any(|c| !seen.contains(&c)),
            None => true,
        }
    }
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
/// normal sample, figures). `reference`: the normal traffic that tells payload values
/// from filler (see the module documentation); `None` joins attacks by every value.
pub(crate) fn split(
    samples: Vec<Sample>,
    seed: u64,
    reference: Option<&Reference>,
) -> (Vec<Sample>, Vec<Sample>, SplitStats) {
    split_share(samples, seed, reference, 0.5)
}

/// [`split`] with `test_share` of the attacks (0–1) as the test side's target: each
/// group goes to the side furthest below its target share. `palisade train
/// --calibrate` holds out its validation attacks this way.
pub(crate) fn split_share(
    samples: Vec<Sample>,
    seed: u64,
    reference: Option<&Reference>,
    test_share: f64,
) -> (Vec<Sample>, Vec<Sample>, SplitStats) {
    let test_share = if test_share.is_finite() {
        test_share.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let (attacks, normal): (Vec<Sample>, Vec<Sample>) = samples.into_iter().partition(|s| s.attack);
    let mut parent: Vec<usize> = (0..attacks.len()).collect();
    let mut first: HashMap<String, usize> = HashMap::new();
    // Filler values and the attacks that carry them, to count those on both sides.
    let mut filler: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in attacks.iter().enumerate() {
        for (name, value) in values(&s.request, reference.is_some()) {
            if value.is_empty() {
                continue;
            }
            if reference.is_some_and(|r| !r.is_payload(&name, &value)) {
                filler.entry(value).or_default().push(i);
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
    // A deterministic order before the seeded shuffle (HashMap order is not), then
    // largest first; the stable sort keeps the seed's order among equal sizes.
    groups.sort_by_key(|g| g.first().copied().unwrap_or(0));
    Rng::new(seed).shuffle(&mut groups);
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let largest_group = groups.first().map_or(0, Vec::len);
    let mut side = vec![false; attacks.len()];
    let (mut train_n, mut test_n) = (0usize, 0usize);
    for g in &groups {
        // The side furthest below its share takes the group (half each: the side with
        // fewer attacks so far; ties to the training side).
        let to_train = train_n as f64 * test_share <= test_n as f64 * (1.0 - test_share);
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
    let shared_filler = filler
        .values()
        .filter(|carriers| {
            let on_train = carriers
                .iter()
                .any(|&i| side.get(i).copied().unwrap_or(false));
            let on_test = carriers
                .iter()
                .any(|&i| !side.get(i).copied().unwrap_or(true));
            on_train && on_test
        })
        .count();
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
        payload_values: first.len(),
        shared_filler,
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
        let (train, test, stats) = split(samples, 7, None);
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
            None,
        );
        let other = split(
            (0..40)
                .map(|i| sample(&format!("/a?x=p{}", i / 2), true))
                .collect(),
            8,
            None,
        );
        let uris = |v: &[Sample]| v.iter().map(|s| s.request.uri.clone()).collect::<Vec<_>>();
        let again2 = split(
            (0..40)
                .map(|i| sample(&format!("/a?x=p{}", i / 2), true))
                .collect(),
            7,
            None,
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

    #[test]
    fn filler_does_not_chain_attacks_and_the_sides_are_balanced() {
        // Normal traffic: names of letters, ids of digits.
        let normal: Vec<Sample> = (0..50)
            .map(|i| sample(&format!("/reg?name=user{i}x&id={i}"), false))
            .collect();
        let reference = Reference::learn(normal.iter().map(|s| &s.request));
        // Every attack shares the filler name `ruse` (a made-up user reused; only characters
        // that names showed), and pairs
        // share a payload in `id`.
        let attacks: Vec<Sample> = (0..40)
            .map(|i| sample(&format!("/reg?name=ruse&id={}%27--", i / 2), true))
            .collect();
        let strict = split(
            attacks
                .iter()
                .map(|s| sample(&s.request.uri, true))
                .collect(),
            1,
            None,
        )
        .2;
        assert_eq!(strict.largest_group, 40, "every value joins: one group");
        let (train, test, stats) = split(attacks, 1, Some(&reference));
        assert_eq!(stats.groups, 20, "{stats:?}");
        assert_eq!(stats.largest_group, 2);
        assert_eq!((stats.train_attacks, stats.test_attacks), (20, 20));
        assert_eq!(stats.payload_values, 20);
        assert_eq!(
            stats.shared_filler, 2,
            "`ruse` and the path `/reg` are on both sides"
        );
        let payloads = |side: &[Sample]| -> Vec<String> {
            side.iter()
                .flat_map(|s| palisade_models::baseline::parameters(&s.request))
                .filter(|(n, _)| n == "id")
                .map(|(_, v)| v)
                .collect()
        };
        let (a, b) = (payloads(&train), payloads(&test));
        assert!(a.iter().all(|v| !b.contains(v)), "{a:?} / {b:?}");
    }
}
