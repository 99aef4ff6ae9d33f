//! Features of one request: signed hashed character n-grams over the parts the
//! detection engine decodes (path, parameter names and values, body leaves, a few
//! headers), plus a handful of structural figures.
//!
//! Why this shape: n-grams see payload fragments (`' or`, `<sc`, `../`, `${`) wherever
//! they sit, hashing bounds memory whatever the vocabulary, the sign bit halves the
//! bias of collisions, digits fold to `0` so numbers do not become vocabulary, and each
//! part kind hashes into its own namespace so `../` in a path and in a value differ.

use palisade_detect::{HttpRequest, Location, ParsedRequest, parse};
use serde::{Deserialize, Serialize};

/// Number of structural features appended after the hashed buckets.
pub const STRUCTURAL: usize = 12;

/// Longest prefix of one part that is turned into n-grams (bounds the cost).
const MAX_PART_BYTES: usize = 512;

/// How features are made; stored in the model file so inference matches training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSettings {
    /// log2 of the number of hash buckets (e.g. 18 → 262,144).
    pub buckets_log2: u8,
    /// Shortest n-gram.
    pub ngram_min: u8,
    /// Longest n-gram.
    pub ngram_max: u8,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        FeatureSettings {
            buckets_log2: 18,
            ngram_min: 1,
            ngram_max: 4,
        }
    }
}

impl FeatureSettings {
    /// Whether these settings are usable (a file could say anything).
    pub fn valid(&self) -> bool {
        (10..=24).contains(&self.buckets_log2)
            && self.ngram_min >= 1
            && self.ngram_min <= self.ngram_max
            && self.ngram_max <= 8
    }

    /// Total feature dimension: buckets plus structural features.
    pub fn dimension(&self) -> usize {
        (1usize << self.buckets_log2) + STRUCTURAL
    }
}

/// A sparse feature vector: `(index, value)` pairs; an index may repeat (the linear
/// heads add them up, so merging is unnecessary).
pub type Features = Vec<(u32, f32)>;

/// Turns requests into features under fixed settings.
#[derive(Debug, Clone, Copy)]
pub struct Featurizer {
    settings: FeatureSettings,
    mask: u32,
}

/// Namespaces of the part kinds.
#[derive(Clone, Copy)]
enum Space {
    Path = 1,
    Name = 2,
    Value = 3,
    Header = 4,
    Body = 5,
    Method = 6,
}

impl Featurizer {
    /// A featurizer; settings are assumed [`FeatureSettings::valid`].
    pub fn new(settings: FeatureSettings) -> Featurizer {
        let bits = settings.buckets_log2.clamp(10, 24);
        Featurizer {
            settings,
            mask: (1u32 << bits) - 1,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> FeatureSettings {
        self.settings
    }

    /// The features of one request.
    pub fn features(&self, request: &HttpRequest) -> Features {
        self.features_parsed(request, &parse(request, 1))
    }

    /// [`Featurizer::features`] from the request's parts when they are already parsed
    /// at paranoia 1 or 2 (the same parts: only paranoia 3 and above adds header
    /// values), as the signature engine hands them on: no second parse.
    pub fn features_parsed(&self, request: &HttpRequest, parsed: &ParsedRequest) -> Features {
        let mut codes = Vec::with_capacity(1024);
        let grams = self.grams(request, parsed, &mut codes);
        let mut out: Features = Vec::with_capacity(codes.len() + STRUCTURAL);
        out.extend(grams.iter(&codes));
        out
    }

    /// The request's features in compact form: each n-gram's bucket and sign as one
    /// code in `codes` (cleared first), the normalisation and the structural figures in
    /// the returned [`Grams`]. [`Grams::iter`] yields exactly the pairs of
    /// [`Featurizer::features_parsed`] (which is built on it), without a vector of
    /// pairs: inference reuses `codes` from one request to the next.
    pub fn grams(
        &self,
        request: &HttpRequest,
        parsed: &ParsedRequest,
        codes: &mut Vec<u32>,
    ) -> Grams {
        codes.clear();
        let has_body_args = parsed
            .parts
            .iter()
            .any(|p| p.location == Location::BodyArgValue);
        let mut s = Shape::default();
        for part in &parsed.parts {
            let space = match part.location {
                Location::Path => Space::Path,
                Location::QueryArgName | Location::BodyArgName => Space::Name,
                Location::QueryArgValue | Location::BodyArgValue => Space::Value,
                Location::HeaderValue
                    if part.name.eq_ignore_ascii_case("user-agent")
                        || part.name.eq_ignore_ascii_case("referer") =>
                {
                    Space::Header
                }
                Location::Body if !has_body_args => Space::Body,
                Location::Method => Space::Method,
                Location::Anomaly => {
                    s.anomalies += 1;
                    continue;
                }
                _ => continue,
            };
            if matches!(space, Space::Value | Space::Body) {
                s.observe_value(&part.value);
            }
            if matches!(space, Space::Name) {
                s.args += 1;
            }
            if matches!(space, Space::Path) {
                // '/' is one byte in UTF-8 and no byte of another character.
                s.depth = part.value.bytes().filter(|&b| b == b'/').count();
            }
            if matches!(space, Space::Method) {
                s.odd_method = !matches!(part.value.as_str(), "GET" | "POST" | "HEAD");
            }
            self.codes(space, part.value.as_bytes(), codes);
        }
        let n = codes.len().max(1) as f32;
        Grams {
            norm: 1.0 / n.sqrt(),
            mask: self.mask,
            figures: s.figures(!request.body.is_empty()),
        }
    }

    /// The n-grams of one part as `(bucket, sign)` pairs, before normalisation (tests
    /// hold them against the first implementation).
    #[cfg(test)]
    fn ngrams(&self, space: Space, value: &[u8], out: &mut Features) {
        let mut codes = Vec::new();
        self.codes(space, value, &mut codes);
        out.extend(
            codes
                .iter()
                .map(|&c| (c & self.mask, if c & SIGN == 0 { 1.0 } else { -1.0 })),
        );
    }

    /// Appends the codes of one part's n-grams: the bucket (the hash masked) with the
    /// hash's top bit as [`SIGN`] (buckets are at most 2^24, so bit 31 is free).
    fn codes(&self, space: Space, value: &[u8], out: &mut Vec<u32>) {
        let bytes = value.get(..MAX_PART_BYTES).unwrap_or(value);
        let fold = |b: u8| -> u8 {
            if b.is_ascii_digit() {
                b'0'
            } else {
                b.to_ascii_lowercase()
            }
        };
        let (lo, hi) = (
            usize::from(self.settings.ngram_min),
            usize::from(self.settings.ngram_max),
        );
        // Boundary markers so prefixes and suffixes are their own grams.
        let seed = 0xcbf2_9ce4_8422_2325u64 ^ ((space as u64) << 56);
        // The part folded once, between its boundary markers (each byte used to be
        // folded again for every gram it is in).
        let mut marked = [BOUNDARY; MAX_PART_BYTES + 2];
        for (slot, &b) in marked.iter_mut().skip(1).zip(bytes) {
            *slot = fold(b);
        }
        // The marker after the last byte is the array's own.
        let len = bytes.len() + 2;
        let marked = marked.get(..len).unwrap_or_default();
        let mask = self.mask;
        let code = |h: u64| -> u32 {
            let mixed = h ^ (h >> 29);
            // Bit 63 of the hash is bit 31 of its upper half.
            (mixed as u32 & mask) | ((mixed >> 32) as u32 & SIGN)
        };
        let step = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        out.reserve(len * (hi + 1).saturating_sub(lo));
        // The default 1–4-grams: every start with four bytes after it gives its four
        // grams in straight-line code, written in place (no capacity check per gram);
        // the last starts go through the general loop below, so the order is that of
        // the general loop throughout.
        let mut first = 0;
        if (lo, hi) == (1, 4) && len >= 4 {
            let full = len - 3;
            let old = out.len();
            out.resize(old + 4 * full, 0);
            let (chunks, _) = out.get_mut(old..).unwrap_or_default().as_chunks_mut::<4>();
            for (chunk, w) in chunks.iter_mut().zip(marked.windows(4)) {
                let h1 = step(seed, w[0]);
                let h2 = step(h1, w[1]);
                let h3 = step(h2, w[2]);
                let h4 = step(h3, w[3]);
                *chunk = [code(h1), code(h2), code(h3), code(h4)];
            }
            first = full;
        }
        for start in first..len {
            let mut h = seed;
            let grams = marked.get(start..(start + hi).min(len)).unwrap_or_default();
            for (n, &b) in (1..).zip(grams) {
                h = step(h, b);
                if n >= lo {
                    out.push(code(h));
                }
            }
        }
    }
}

/// The sign bit of an n-gram's code (see [`Featurizer::grams`]).
const SIGN: u32 = 1 << 31;

/// What goes with a request's n-gram codes to make its features.
#[derive(Debug, Clone, Copy)]
pub struct Grams {
    /// `1 / sqrt(number of n-grams)`: every n-gram's value is this or its negation.
    norm: f32,
    mask: u32,
    figures: [f32; STRUCTURAL],
}

impl Grams {
    /// The features, in order: each code's `(bucket, ±norm)`
    /// ([`Grams::grams`]), then the non-zero structural figures ([`Grams::figures`]).
    pub fn iter<'a>(&'a self, codes: &'a [u32]) -> impl Iterator<Item = (u32, f32)> + 'a {
        self.grams(codes).chain(self.figures())
    }

    /// The n-gram features: each code's `(bucket, ±norm)`.
    pub fn grams<'a>(&self, codes: &'a [u32]) -> impl Iterator<Item = (u32, f32)> + 'a {
        let mask = self.mask;
        // `sign * norm` with sign ±1 is exactly `±norm`: the code's sign bit is the
        // float's.
        let bits = self.norm.to_bits();
        codes
            .iter()
            .map(move |&c| (c & mask, f32::from_bits(bits ^ (c & SIGN))))
    }

    /// The structural features: the non-zero figures at their indexes after the
    /// buckets.
    pub fn figures(&self) -> impl Iterator<Item = (u32, f32)> {
        let base = self.mask + 1;
        (0u32..)
            .zip(self.figures)
            .filter(|&(_, v)| v != 0.0)
            .map(move |(i, v)| (base + i, v))
    }
}

/// The byte that marks the start and the end of a part in its n-grams.
const BOUNDARY: u8 = 0x02;

/// Structural tallies of one request.
#[derive(Default)]
struct Shape {
    value_bytes: usize,
    max_value: usize,
    special: usize,
    non_ascii: usize,
    upper: usize,
    args: usize,
    anomalies: usize,
    depth: usize,
    odd_method: bool,
}

impl Shape {
    fn observe_value(&mut self, v: &str) {
        self.value_bytes += v.len();
        self.max_value = self.max_value.max(v.len());
        for b in v.bytes() {
            if !b.is_ascii() {
                self.non_ascii += 1;
            } else if b.is_ascii_uppercase() {
                self.upper += 1;
            } else if !b.is_ascii_alphanumeric() && b != b' ' {
                self.special += 1;
            }
        }
    }

    fn figures(&self, has_body: bool) -> [f32; STRUCTURAL] {
        let total = self.value_bytes.max(1) as f32;
        let ln = |x: usize| (x as f32).ln_1p();
        [
            1.0, // bias
            ln(self.value_bytes) / 8.0,
            ln(self.max_value) / 8.0,
            self.special as f32 / total,
            self.non_ascii as f32 / total,
            self.upper as f32 / total,
            ln(self.args) / 4.0,
            (self.anomalies.min(3)) as f32 / 3.0,
            if has_body { 1.0 } else { 0.0 },
            if self.odd_method { 1.0 } else { 0.0 },
            (self.depth.min(10)) as f32 / 10.0,
            if self.special * 4 > self.value_bytes && self.value_bytes > 8 {
                1.0
            } else {
                0.0
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![("User-Agent".into(), "Mozilla/5.0".into())],
            ..Default::default()
        }
    }

    #[test]
    fn indexes_stay_in_range_and_bias_is_present() {
        let s = FeatureSettings {
            buckets_log2: 12,
            ..Default::default()
        };
        let f = Featurizer::new(s).features(&get("/a/b?id=1%27%20or%201=1--&q=%E4%BD%A0"));
        assert!(f.iter().all(|(i, _)| (*i as usize) < s.dimension()));
        assert!(f.contains(&(4096, 1.0)), "bias feature");
        assert!(f.iter().any(|(i, v)| *i > 4096 && *v > 0.0 && *i != 4096));
    }

    #[test]
    fn digits_fold_and_namespaces_differ() {
        let z = Featurizer::new(FeatureSettings::default());
        let a = z.features(&get("/p?id=123"));
        let b = z.features(&get("/p?id=987"));
        assert_eq!(a, b, "numbers of one length give the same grams");
        let c = z.features(&get("/..%2f..%2fetc"));
        let d = z.features(&get("/x?f=../../etc"));
        let grams = |f: &Features| {
            f.iter()
                .map(|x| x.0)
                .collect::<std::collections::HashSet<_>>()
        };
        assert_ne!(grams(&c), grams(&d));
    }

    #[test]
    fn features_from_the_engines_parse_are_those_of_a_parse_of_their_own() {
        let z = Featurizer::new(FeatureSettings::default());
        let mut post = get("/login?next=%2Fhome&lang=es");
        post.method = "POST".into();
        post.headers
            .push(("Referer".into(), "https://a.example/x".into()));
        post.headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        post.headers.push(("X-Other".into(), "1' or 1=1".into()));
        post.body = b"user=ana&pass=s3cret%27--".to_vec();
        for r in [get("/a/b?id=1%27%20or%201=1--&q=%E4%BD%A0"), post] {
            for paranoia in [1, 2] {
                let parsed = parse(&r, paranoia);
                assert_eq!(z.features_parsed(&r, &parsed), z.features(&r), "{}", r.uri);
            }
        }
    }

    /// The n-grams as first written: each byte folded for every gram it is in.
    fn ngrams_reference(z: &Featurizer, space: Space, value: &[u8], out: &mut Features) {
        let bytes = value.get(..MAX_PART_BYTES).unwrap_or(value);
        let fold = |b: u8| -> u8 {
            if b.is_ascii_digit() {
                b'0'
            } else {
                b.to_ascii_lowercase()
            }
        };
        let (lo, hi) = (
            usize::from(z.settings.ngram_min),
            usize::from(z.settings.ngram_max),
        );
        let seed = 0xcbf2_9ce4_8422_2325u64 ^ ((space as u64) << 56);
        let len = bytes.len() + 2;
        let at = |i: usize| -> u8 {
            if i == 0 || i == len - 1 {
                0x02
            } else {
                bytes.get(i - 1).copied().map(fold).unwrap_or(0x02)
            }
        };
        for start in 0..len {
            let mut h = seed;
            for n in 1..=hi {
                let Some(i) = start.checked_add(n - 1).filter(|i| *i < len) else {
                    break;
                };
                h ^= u64::from(at(i));
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
                if n >= lo {
                    let mixed = h ^ (h >> 29);
                    let sign = if mixed >> 63 == 0 { 1.0 } else { -1.0 };
                    out.push((mixed as u32, sign));
                }
            }
        }
    }

    #[test]
    fn ngrams_of_the_folded_part_are_those_folded_per_gram() {
        let long = "x".repeat(MAX_PART_BYTES + 40);
        let values: [&[u8]; 9] = [
            b"",
            b"a",
            b"ab",
            b"/tienda1/publico/anadir.jsp",
            b"1' OR '1'='1",
            "ñandú €5 \u{1F600}".as_bytes(),
            &[0x02, 0xff, 0x00, b'A', b'9'],
            long.as_bytes(),
            b"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0",
        ];
        for (lo, hi) in [(1, 4), (2, 3), (3, 3), (1, 8)] {
            let z = Featurizer::new(FeatureSettings {
                buckets_log2: 16,
                ngram_min: lo,
                ngram_max: hi,
            });
            for space in [Space::Path, Space::Value, Space::Method] {
                for v in values {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    z.ngrams(space, v, &mut a);
                    ngrams_reference(&z, space, v, &mut b);
                    // The codes hold the bucket (the hash masked), as the features do.
                    for g in &mut b {
                        g.0 &= z.mask;
                    }
                    assert_eq!(a, b, "{lo}..{hi} {:?}", String::from_utf8_lossy(v));
                }
            }
        }
    }

    #[test]
    fn any_bytes_are_safe() {
        let z = Featurizer::new(FeatureSettings::default());
        let mut r = get("/%ff%00?%=&&==");
        r.body = vec![0xff, 0xfe, 0, 1, 2];
        r.method = "\u{1F600}".into();
        assert!(!z.features(&r).is_empty());
        assert!(!z.features(&HttpRequest::default()).is_empty());
    }
}
