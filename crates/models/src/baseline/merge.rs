//! Profiles as sums, so that several serving nodes learn one baseline per endpoint.
//!
//! On a scale-out topology every serving node learns from its share of the traffic
//! and saves into the same table. Saving whole profiles would let the last writer win
//! (each node's save erasing what the others learnt), so a node saves *what it learnt
//! since it last synchronised* (its profile [`minus`](EndpointProfile::minus) the
//! profile it last loaded or saved), and the store adds that to the stored row
//! ([`merge_saved`], under a lock held for the read and the write), handing back the
//! sum, which the node adopts (plus what it learnt meanwhile).
//!
//! Every figure of a profile is a count or a sum, merged exactly: request and value
//! counts, character classes, shapes, character-distribution sums, status mix and the
//! calibration counts add up; length mean and variance combine by the parallel form of
//! Welford's update (Chan et al.); the longest value is the larger; an enumeration
//! becomes "not an enumeration" when either side says so or the union outgrows
//! [`ENUM_MAX`]. Two figures are positions in a node's own stream ("when the last new
//! value / parameter name / route was learnt"): a delta carries them relative to its
//! start, and the merge places them after the stored requests (as if the delta came
//! last), which keeps "no new one in the second half" meaningful. A host's endpoint
//! count adds up the endpoints each node found new, so an endpoint first seen on two
//! nodes is counted twice (it only appears in explanations).

use super::params::ParamMap;
use super::profile::{ENUM_MAX, EndpointProfile, HostProfile, ParamProfile};

/// `a + b` element by element (the shorter padded with zeros).
fn add_counts(a: &mut Vec<u64>, b: &[u64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += *y;
    }
}

/// `a - b` element by element, never below zero.
fn sub_counts(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter()
        .enumerate()
        .map(|(i, x)| x.saturating_sub(b.get(i).copied().unwrap_or(0)))
        .collect()
}

/// A position in the current stream made relative to the end of `base_n` (0: none
/// since).
fn relative(position: u64, base_n: u64) -> u64 {
    position.saturating_sub(base_n)
}

/// A delta's relative position placed after `stored_n` requests.
fn placed(stored: u64, stored_n: u64, delta: u64) -> u64 {
    if delta > 0 { stored_n + delta } else { stored }
}

impl ParamProfile {
    /// Adds `other` (another node's learning, or a delta) to this profile.
    pub fn merge(&mut self, other: &ParamProfile) {
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = self.n + other.n;
        if n > 0 && other.n > 0 {
            let delta = other.len_mean - self.len_mean;
            let total = n as f64;
            self.len_mean += delta * nb / total;
            self.len_m2 += other.len_m2 + delta * delta * na * nb / total;
        }
        self.last_new_value_at = placed(self.last_new_value_at, self.n, other.last_new_value_at);
        self.n = n;
        self.len_max = self.len_max.max(other.len_max);
        add_counts(&mut self.classes, &other.classes);
        add_counts(&mut self.shapes, &other.shapes);
        for (s, o) in self.icd.iter_mut().zip(other.icd) {
            *s += o;
        }
        self.icd_n += other.icd_n;
        self.not_enum |= other.not_enum;
        if !self.not_enum {
            for value in &other.values {
                match self.values.iter_mut().find(|v| v.text == value.text) {
                    Some(v) => v.count += value.count,
                    None => self.values.push(value.clone()),
                }
            }
            if self.values.len() > ENUM_MAX {
                self.not_enum = true;
            }
        }
        if self.not_enum {
            self.values = Vec::new();
        }
    }

    /// What this profile learnt since it was `base` (the inverse of [`ParamProfile::merge`]).
    pub fn minus(&self, base: &ParamProfile) -> ParamProfile {
        let nb = self.n.saturating_sub(base.n);
        let mut out = ParamProfile {
            n: nb,
            len_max: self.len_max,
            classes: sub_counts(&self.classes, &base.classes),
            shapes: sub_counts(&self.shapes, &base.shapes),
            icd_n: self.icd_n.saturating_sub(base.icd_n),
            last_new_value_at: relative(self.last_new_value_at, base.n),
            not_enum: self.not_enum,
            ..ParamProfile::default()
        };
        for (o, (s, b)) in out.icd.iter_mut().zip(self.icd.iter().zip(base.icd)) {
            *o = (s - b).max(0.0);
        }
        if nb > 0 {
            let (n, na, nbf) = (self.n as f64, base.n as f64, nb as f64);
            let mean_b = (n * self.len_mean - na * base.len_mean) / nbf;
            let delta = mean_b - base.len_mean;
            out.len_mean = mean_b;
            out.len_m2 = (self.len_m2 - base.len_m2 - delta * delta * na * nbf / n).max(0.0);
        }
        if !self.not_enum {
            out.values = self
                .values
                .iter()
                .filter_map(|v| {
                    let before = base
                        .values
                        .iter()
                        .find(|bv| bv.text == v.text)
                        .map_or(0, |bv| bv.count);
                    let since = v.count.saturating_sub(before);
                    (since > 0).then(|| v.with_count(since))
                })
                .collect();
        }
        out
    }
}

impl EndpointProfile {
    /// Adds `other` (another node's learning, or a delta) to this profile.
    pub fn merge(&mut self, other: &EndpointProfile) {
        for (name, p) in &other.params {
            match self.params.get_mut(name) {
                Some(mine) => mine.merge(p),
                None => {
                    self.params.insert(name.clone(), p.clone());
                }
            }
        }
        self.last_new_param_at = placed(self.last_new_param_at, self.n, other.last_new_param_at);
        self.n += other.n;
        self.open_params |= other.open_params;
        add_counts(&mut self.status, &other.status);
        self.judged += other.judged;
        for (kind, count) in &other.fired {
            *self.fired.entry(kind.clone()).or_default() += count;
        }
    }

    /// What this profile learnt since it was `base`.
    pub fn minus(&self, base: &EndpointProfile) -> EndpointProfile {
        let params: ParamMap = self
            .params
            .iter()
            .filter_map(|(name, p)| {
                let d = match base.params.get(name) {
                    Some(b) => p.minus(b),
                    None => p.clone(),
                };
                (d.n > 0 || d.not_enum != base.params.get(name).is_some_and(|b| b.not_enum))
                    .then(|| (name.clone(), d))
            })
            .collect();
        EndpointProfile {
            n: self.n.saturating_sub(base.n),
            params,
            open_params: self.open_params,
            last_new_param_at: relative(self.last_new_param_at, base.n),
            status: sub_counts(&self.status, &base.status),
            judged: self.judged.saturating_sub(base.judged),
            fired: self
                .fired
                .iter()
                .filter_map(|(k, c)| {
                    let since = c.saturating_sub(base.fired.get(k).copied().unwrap_or(0));
                    (since > 0).then(|| (k.clone(), since))
                })
                .collect(),
        }
    }
}

impl HostProfile {
    /// Adds `other` (another node's learning, or a delta) to this profile.
    pub fn merge(&mut self, other: &HostProfile) {
        self.last_new_endpoint_at = placed(
            self.last_new_endpoint_at,
            self.n,
            other.last_new_endpoint_at,
        );
        self.n += other.n;
        self.endpoints += other.endpoints;
        self.judged += other.judged;
        self.fired += other.fired;
    }

    /// What this profile learnt since it was `base`.
    pub fn minus(&self, base: &HostProfile) -> HostProfile {
        HostProfile {
            n: self.n.saturating_sub(base.n),
            endpoints: self.endpoints.saturating_sub(base.endpoints),
            last_new_endpoint_at: relative(self.last_new_endpoint_at, base.n),
            judged: self.judged.saturating_sub(base.judged),
            fired: self.fired.saturating_sub(base.fired),
        }
    }
}

/// Adds a saved delta (`delta`, JSON) to the stored row of `endpoint` (`stored`, JSON,
/// `None` when there is none yet): what the store runs under its lock. Returns the
/// merged profile as JSON and its request count.
pub fn merge_saved(
    endpoint: &str,
    stored: Option<&str>,
    delta: &str,
) -> Result<(String, u64), serde_json::Error> {
    if endpoint.starts_with(super::HOST_KEY) {
        let mut sum: HostProfile = match stored {
            Some(s) => serde_json::from_str(s).unwrap_or_default(),
            None => HostProfile::default(),
        };
        sum.merge(&serde_json::from_str(delta)?);
        return Ok((serde_json::to_string(&sum)?, sum.n));
    }
    // A stored row that no longer parses is replaced rather than blocking every save.
    let mut sum: EndpointProfile = match stored {
        Some(s) => serde_json::from_str(s).unwrap_or_default(),
        None => EndpointProfile::default(),
    };
    sum.merge(&serde_json::from_str(delta)?);
    Ok((serde_json::to_string(&sum)?, sum.n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learnt(values: &[&str]) -> ParamProfile {
        let mut p = ParamProfile::default();
        for v in values {
            p.learn(v);
        }
        p
    }

    #[test]
    fn merging_two_halves_equals_learning_the_whole() {
        let a = ["12", "7", "1234", "99", "5"];
        let b = ["3", "45678", "2", "2", "long value with spaces 1"];
        let whole: Vec<&str> = a.iter().chain(b.iter()).copied().collect();
        let mut merged = learnt(&a);
        merged.merge(&learnt(&b));
        let all = learnt(&whole);
        assert_eq!(merged.n, all.n);
        assert!((merged.len_mean - all.len_mean).abs() < 1e-9);
        assert!((merged.len_m2 - all.len_m2).abs() < 1e-6);
        assert_eq!(merged.len_max, all.len_max);
        assert_eq!(merged.classes, all.classes);
        assert_eq!(merged.shapes, all.shapes);
        assert_eq!(merged.icd_n, all.icd_n);
        let pairs = |p: &ParamProfile| {
            let mut v: Vec<(String, u64)> =
                p.values.iter().map(|e| (e.text.clone(), e.count)).collect();
            v.sort();
            v
        };
        let (mv, av) = (pairs(&merged), pairs(&all));
        assert_eq!(mv, av);
        // And the difference gives the second half back.
        let d = all.minus(&learnt(&a));
        assert_eq!(d.n, 5);
        assert!((d.len_mean - learnt(&b).len_mean).abs() < 1e-9);
        assert!((d.len_m2 - learnt(&b).len_m2).abs() < 1e-6);
        assert_eq!(d.classes, learnt(&b).classes);
    }

    #[test]
    fn an_enumeration_outgrown_by_the_union_is_no_longer_one() {
        let a: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
        let b: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
        let mut p = learnt(&a.iter().map(String::as_str).collect::<Vec<_>>());
        p.merge(&learnt(&b.iter().map(String::as_str).collect::<Vec<_>>()));
        assert!(p.not_enum && p.values.is_empty());
    }
}
