//! What one endpoint's traffic looks like, learnt online (Kruegel & Vigna, "Anomaly
//! detection of web-based attacks", CCS 2003): which parameters it takes, and for each
//! parameter the length of its values (mean and variance, judged by Chebyshev's
//! inequality), the character classes and shapes its values have, its character
//! distribution (the "idealised character distribution"), and whether it is an
//! enumeration (a small set of values); plus the endpoint's status mix.
//!
//! Each check yields a [`Deviation`] with points and a sentence a person can act on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::params::ParamMap;

/// Distinct values a parameter may take and still be an enumeration.
pub const ENUM_MAX: usize = 24;
/// Longest value kept in an enumeration.
const ENUM_VALUE_CHARS: usize = 48;
/// A character class or shape seen in at most this share of values is novel.
const RARE: f64 = 0.001;
/// Chebyshev bound under which a length is anomalous (one-sided: longer than usual).
const LENGTH_P: f64 = 0.01;
/// Chi-square statistic (5 degrees of freedom) over which a character distribution is
/// anomalous: p < 0.001.
const CHI2_CRITICAL: f64 = 20.52;
/// Values shorter than this are too short for the character-distribution test.
const ICD_MIN_LEN: usize = 16;

/// Character classes, as a bit set over a value.
const CLASSES: [&str; 14] = [
    "digits",
    "lower-case letters",
    "upper-case letters",
    "spaces",
    "`-`, `_` or `.`",
    "quotes",
    "angle brackets",
    "`;`, `|`, `&` or `$`",
    "brackets",
    "slashes",
    "percent signs",
    "other punctuation",
    "control characters",
    "non-ASCII characters",
];

/// Classes whose first appearance says most about an injection (3 points rather than 2).
const DANGEROUS: u16 = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 12);

/// The class of one byte of a value: an ASCII byte is the class of its character; any
/// byte of a multi-byte UTF-8 sequence is a non-ASCII character's (13), so the classes
/// of a value's bytes are the classes of its characters.
const fn class_of_byte(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => 0,
        b'a'..=b'z' => 1,
        b'A'..=b'Z' => 2,
        b' ' | b'\t' => 3,
        b'-' | b'_' | b'.' => 4,
        b'\'' | b'"' | b'`' => 5,
        b'<' | b'>' => 6,
        b';' | b'|' | b'&' | b'$' => 7,
        b'(' | b')' | b'{' | b'}' | b'[' | b']' => 8,
        b'/' | b'\\' => 9,
        b'%' => 10,
        0..=0x1f | 0x7f => 12,
        0x20..=0x7e => 11,
        _ => 13,
    }
}

/// [`class_of_byte`] for every byte, looked up rather than matched per character.
const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = class_of_byte(b as u8);
        b += 1;
    }
    table
};

/// The bit set of classes in `value`.
pub fn classes(value: &str) -> u16 {
    value
        .bytes()
        .fold(0u16, |set, b| set | (1 << BYTE_CLASS[usize::from(b)]))
}

/// What judging and learning read of one value, computed once per request in one pass
/// over its bytes: both used to count its characters, take its character classes,
/// its shape and (for a long value) its character distribution each on their own.
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    /// The value itself (enumerations compare it, explanations quote it).
    pub text: &'a str,
    /// Its length in characters.
    pub chars: u64,
    /// The bit set of its character classes ([`classes`]).
    pub classes: u16,
    /// Its [`shape`].
    pub shape: Shape,
    /// Its binned character distribution, for a value of at least [`ICD_MIN_LEN`] bytes.
    pub icd: Option<[f64; 6]>,
    /// Where it stands in its parameter's enumeration, when that was looked up
    /// ([`ParamProfile::value_of`]).
    pub member: Member,
}

/// Whether a value is one of its parameter's enumeration, as found when its figures
/// were taken ([`ParamProfile::value_of`]): the judgement then does not look for it
/// again, nor the learning that follows (which checks the slot still holds it: an
/// earlier parameter of the same name in the request may have changed the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// Not looked up ([`Value::new`]).
    Unknown,
    /// The value of this index in [`ParamProfile::values`].
    At(u32),
    /// Not among the values (or the parameter is no enumeration).
    Absent,
}

impl<'a> Value<'a> {
    /// The figures of `text`.
    pub fn new(text: &'a str) -> Value<'a> {
        let scan = Scan::of(text);
        let classes = scan.classes();
        // A value without non-ASCII bytes (nearly all) has a character per byte.
        let chars = if classes & NON_ASCII == 0 {
            text.len() as u64
        } else {
            // UTF-8 continuation bytes (10xxxxxx) do not start a character.
            text.bytes().filter(|b| b & 0xc0 != 0x80).count() as u64
        };
        Value {
            text,
            chars,
            classes,
            shape: scan.shape(text),
            icd: (text.len() >= ICD_MIN_LEN).then(|| icd_bins(text)),
            member: Member::Unknown,
        }
    }
}

/// One value of an enumeration ([`ParamProfile::values`]): its text and count, saved as
/// the pair `[text, count]`, and its figures (those [`Value::new`] takes, a function of
/// the text alone), taken once when it joins the list or is loaded: a request whose
/// value is one of its parameter's enumeration (the common case for the parameters
/// that are one) takes them from here rather than scanning the value again.
#[derive(Debug, Clone)]
pub struct EnumValue {
    /// The value.
    pub text: String,
    /// Requests learnt with it.
    pub count: u64,
    /// Its length in characters (at most [`ENUM_VALUE_CHARS`]).
    chars: u32,
    /// Its character classes.
    classes: u16,
    /// Its shape.
    shape: Shape,
    /// Its character distribution (values of at least [`ICD_MIN_LEN`] bytes), boxed:
    /// most enumerated values are shorter.
    icd: Option<Box<[f64; 6]>>,
}

impl EnumValue {
    /// `value` learnt `count` times.
    pub fn new(value: &Value<'_>, count: u64) -> EnumValue {
        EnumValue {
            text: value.text.to_owned(),
            count,
            chars: u32::try_from(value.chars).unwrap_or(u32::MAX),
            classes: value.classes,
            shape: value.shape,
            icd: value.icd.map(Box::new),
        }
    }

    /// `text` learnt `count` times, its figures taken.
    pub fn of(text: &str, count: u64) -> EnumValue {
        EnumValue::new(&Value::new(text), count)
    }

    /// The same value with another count (its figures kept).
    pub fn with_count(&self, count: u64) -> EnumValue {
        EnumValue {
            count,
            ..self.clone()
        }
    }

    /// The figures of a value equal to this one's text, found at `at`.
    #[inline(always)]
    fn value<'a>(&self, text: &'a str, at: u32) -> Value<'a> {
        Value {
            text,
            chars: u64::from(self.chars),
            classes: self.classes,
            shape: self.shape,
            icd: self.icd.as_deref().copied(),
            member: Member::At(at),
        }
    }
}

impl PartialEq for EnumValue {
    /// Equal text and count (the figures follow from the text).
    fn eq(&self, other: &EnumValue) -> bool {
        self.count == other.count && self.text == other.text
    }
}

impl Serialize for EnumValue {
    /// As the pair `(text, count)` it was saved as.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.text, self.count).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EnumValue {
    /// From the pair `(text, count)`, taking the figures.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<EnumValue, D::Error> {
        let (text, count) = <(String, u64)>::deserialize(deserializer)?;
        Ok(EnumValue::of(&text, count))
    }
}

/// The class bit of non-ASCII characters (class 13): any byte from 0x80 up.
const NON_ASCII: u16 = 1 << 13;

/// The indexes of the bits set in a class set, lowest first.
fn set_bits(set: u16) -> impl Iterator<Item = usize> {
    let mut rest = set;
    std::iter::from_fn(move || {
        let i = rest.trailing_zeros() as usize;
        rest &= rest.wrapping_sub(1);
        (i < 16).then_some(i)
    })
}

/// What a whole value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Shape {
    /// Empty.
    Empty,
    /// Digits, maybe signed, maybe one decimal point.
    Numeric,
    /// Letters only.
    Alphabetic,
    /// Hexadecimal (digits and a–f).
    Hex,
    /// Letters and digits.
    Alphanumeric,
    /// Letters, digits, `-`, `_`, `.`.
    Word,
    /// Words with spaces and ordinary punctuation.
    Text,
    /// Anything else.
    Other,
}

const SHAPES: usize = 8;
const SHAPE_NAMES: [&str; SHAPES] = [
    "empty",
    "numeric",
    "alphabetic",
    "hexadecimal",
    "alphanumeric",
    "a word",
    "plain text",
    "free-form",
];

/// What [`shape`] asks of every byte of a value, one bit per question.
const DIGIT: u8 = 1;
const ALPHA: u8 = 1 << 1;
const HEX: u8 = 1 << 2;
const ALNUM: u8 = 1 << 3;
/// Letters, digits, `-`, `_`, `.`.
const WORD: u8 = 1 << 4;
/// An ASCII character [`Shape::Text`] allows.
const TEXT: u8 = 1 << 5;
/// A digit or `.`.
const NUMBER: u8 = 1 << 6;

const fn shape_flags(b: u8) -> u8 {
    let mut f = 0;
    if b.is_ascii_digit() {
        f |= DIGIT | NUMBER;
    }
    if b.is_ascii_alphabetic() {
        f |= ALPHA;
    }
    if b.is_ascii_hexdigit() {
        f |= HEX;
    }
    if b.is_ascii_alphanumeric() {
        f |= ALNUM | WORD | TEXT;
    }
    if matches!(b, b'-' | b'_' | b'.') {
        f |= WORD | TEXT;
    }
    if matches!(b, b' ' | b',' | b':' | b'!' | b'?' | b'@') {
        f |= TEXT;
    }
    if b == b'.' {
        f |= NUMBER;
    }
    f
}

/// [`shape_flags`] for every byte (a non-ASCII byte has none).
const SHAPE_FLAGS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = shape_flags(b as u8);
        b += 1;
    }
    table
};

/// A byte's class bit (low 16 bits) and [`shape_flags`] (bits 16–23): what one pass
/// over a value needs of each byte, in one lookup.
const BYTE_FIGURES: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (1u32 << class_of_byte(b as u8)) | ((shape_flags(b as u8) as u32) << 16);
        b += 1;
    }
    table
};

/// One pass over a value's bytes: the union of every byte's [`BYTE_FIGURES`], and
/// the intersection of the shape flags of every byte after the first.
#[derive(Debug, Clone, Copy)]
struct Scan {
    /// The first byte (`None`: the value is empty).
    first: Option<u8>,
    /// Union of the figures of every byte.
    any: u32,
    /// Intersection of the shape flags of the bytes after the first (all set when
    /// there are none).
    all_rest: u8,
}

impl Scan {
    fn of(value: &str) -> Scan {
        let b = value.as_bytes();
        let Some((&first, rest)) = b.split_first() else {
            return Scan {
                first: None,
                any: 0,
                all_rest: u8::MAX,
            };
        };
        let (mut any, mut all) = (BYTE_FIGURES[usize::from(first)], u32::MAX);
        for &c in rest {
            let f = BYTE_FIGURES[usize::from(c)];
            any |= f;
            all &= f;
        }
        Scan {
            first: Some(first),
            any,
            all_rest: (all >> 16) as u8,
        }
    }

    /// The bit set of classes ([`classes`]).
    fn classes(&self) -> u16 {
        self.any as u16
    }

    /// The [`shape`] of the value scanned.
    fn shape(&self, value: &str) -> Shape {
        let Some(first) = self.first else {
            return Shape::Empty;
        };
        let rest_empty = value.len() == 1;
        let head = SHAPE_FLAGS[usize::from(first)];
        let all = head & self.all_rest;
        // Digits with at most one point, after an optional leading minus.
        let number = if first == b'-' {
            !rest_empty && self.all_rest & NUMBER != 0
        } else {
            all & NUMBER != 0
        };
        let has_digit = self.any & 1 != 0;
        // The points are counted only for a value made of digits and points.
        if number && has_digit && value.bytes().filter(|c| *c == b'.').count() <= 1 {
            return Shape::Numeric;
        }
        if all & ALPHA != 0 {
            return Shape::Alphabetic;
        }
        if all & HEX != 0 {
            return Shape::Hex;
        }
        if all & ALNUM != 0 {
            return Shape::Alphanumeric;
        }
        if all & WORD != 0 {
            return Shape::Word;
        }
        let text = if u32::from(NON_ASCII) & self.any == 0 {
            all & TEXT != 0
        } else {
            value.chars().all(|c| {
                c.is_alphanumeric()
                    || matches!(c, ' ' | '-' | '_' | '.' | ',' | ':' | '!' | '?' | '@')
            })
        };
        if text { Shape::Text } else { Shape::Other }
    }
}

/// The shape of `value`, in one pass over its bytes (the questions below each used to
/// scan it: `shapes_in_one_pass_are_those_asked_one_at_a_time`); [`Value::new`] takes
/// it in the pass that takes the value's classes.
pub fn shape(value: &str) -> Shape {
    Scan::of(value).shape(value)
}

/// One parameter of a request as the baselines key it ([`super::parameter_name`]), with
/// its value's figures.
#[derive(Debug, Clone, Copy)]
pub struct Param<'a> {
    /// The parameter's name (digit runs folded, body arguments prefixed `body:`).
    pub name: &'a str,
    /// Its value.
    pub value: Value<'a>,
}

impl<'a> Param<'a> {
    /// The parameter `name` with `value`.
    pub fn new(name: &'a str, value: &'a str) -> Param<'a> {
        Param {
            name,
            value: Value::new(value),
        }
    }
}

/// The sorted relative character frequencies of a value, in Kruegel & Vigna's six bins
/// (rank 0, 1–3, 4–6, 7–11, 12–15, 16 and after).
fn icd_bins(value: &str) -> [f64; 6] {
    let bytes = value.as_bytes();
    if bytes.len() < 256 {
        return icd_bins_short(bytes);
    }
    let mut counts = [0u32; 256];
    // The distinct bytes in order of first appearance: only those have a rank that adds
    // anything (a zero count adds 0.0), so only their counts are ranked: the same sums,
    // in the same order, without sorting or even scanning all 256 counters.
    let mut distinct = [0u8; 256];
    let mut k = 0;
    for &b in bytes {
        let c = &mut counts[usize::from(b)];
        if *c == 0
            && let Some(slot) = distinct.get_mut(k)
        {
            *slot = b;
            k += 1;
        }
        *c += 1;
    }
    let distinct = distinct.get(..k).unwrap_or_default();
    let mut bins = Bins::new(bytes.len());
    let max = distinct
        .iter()
        .map(|&b| counts[usize::from(b)])
        .max()
        .unwrap_or(0);
    if max as usize <= MAX_HISTOGRAM_COUNT {
        // Ranked by a histogram of the counts (how many bytes occur `c` times), walked
        // from the largest count down: the counts in the order a descending sort
        // gives them (equal counts add equal terms), in `max + k` steps.
        let mut histogram = [0u16; MAX_HISTOGRAM_COUNT + 1];
        for &b in distinct {
            if let Some(h) = histogram.get_mut(counts[usize::from(b)] as usize) {
                *h += 1;
            }
        }
        for (c, &times) in histogram.iter().enumerate().take(max as usize + 1).rev() {
            for _ in 0..times {
                bins.add(c as u32);
            }
        }
    } else {
        let mut present: Vec<u32> = distinct.iter().map(|&b| counts[usize::from(b)]).collect();
        present.sort_unstable_by(|a, b| b.cmp(a));
        for c in present {
            bins.add(c);
        }
    }
    bins.bins
}

/// [`icd_bins`] of a value shorter than 256 bytes (nearly every one): every count, and
/// the number of bytes sharing a count, fits a byte, so the tables are a quarter of
/// the size (zeroing them was a good part of the cost), and the distinct bytes are
/// gathered without a branch.
fn icd_bins_short(bytes: &[u8]) -> [f64; 6] {
    let mut counts = [0u8; 256];
    let mut distinct = [0u8; 256];
    let mut k = 0usize;
    for &b in bytes {
        let c = &mut counts[usize::from(b)];
        // Written at `k` every time, kept (k moves on) at a byte's first appearance;
        // k < 256 as the value is.
        distinct[k & 0xff] = b;
        k += usize::from(*c == 0);
        *c = c.wrapping_add(1);
    }
    let mut histogram = [0u8; 256];
    let mut max = 0u8;
    for &b in distinct.get(..k).unwrap_or_default() {
        let c = counts[usize::from(b)];
        max = max.max(c);
        let h = &mut histogram[usize::from(c)];
        *h = h.wrapping_add(1);
    }
    let mut bins = Bins::new(bytes.len());
    for (c, &times) in histogram
        .iter()
        .enumerate()
        .take(usize::from(max) + 1)
        .rev()
    {
        for _ in 0..times {
            bins.add(c as u32);
        }
    }
    bins.bins
}

/// The six bins filled rank by rank.
struct Bins {
    bins: [f64; 6],
    rank: usize,
    n: f64,
}

impl Bins {
    fn new(len: usize) -> Bins {
        Bins {
            bins: [0.0; 6],
            rank: 0,
            n: len.max(1) as f64,
        }
    }

    /// Adds the count of the next rank.
    fn add(&mut self, c: u32) {
        let bin = match self.rank {
            0 => 0,
            1..=3 => 1,
            4..=6 => 2,
            7..=11 => 3,
            12..=15 => 4,
            _ => 5,
        };
        if let Some(slot) = self.bins.get_mut(bin) {
            *slot += f64::from(c) / self.n;
        }
        self.rank += 1;
    }
}

/// Counts up to which [`icd_bins`] ranks by a histogram rather than a sort (a value
/// with a byte more frequent than this is sorted).
const MAX_HISTOGRAM_COUNT: usize = 256;

/// One parameter's learnt profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamProfile {
    /// Values learnt.
    pub n: u64,
    /// Mean value length (characters).
    pub len_mean: f64,
    /// Sum of squared deviations of the length (Welford), for the variance.
    pub len_m2: f64,
    /// Longest value learnt.
    pub len_max: u64,
    /// Values containing each character class.
    pub classes: Vec<u64>,
    /// Values of each shape.
    pub shapes: Vec<u64>,
    /// Sum over values of the binned sorted character frequencies.
    pub icd: [f64; 6],
    /// Values of at least [`ICD_MIN_LEN`] characters (those that train `icd`).
    pub icd_n: u64,
    /// The distinct values with their counts while there are at most [`ENUM_MAX`].
    pub values: Vec<EnumValue>,
    /// More distinct (or longer) values were seen than an enumeration has.
    pub not_enum: bool,
    /// `n` when the last new distinct value was learnt.
    pub last_new_value_at: u64,
}

/// One finding of a baseline, with its points and explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deviation {
    /// Which model found it (`parameter`, `length`, `characters`, `distribution`,
    /// `enumeration`, `status`).
    pub kind: &'static str,
    /// The parameter concerned (empty for the endpoint's own checks).
    pub parameter: String,
    /// Points it contributes.
    pub points: u32,
    /// The plain explanation.
    pub explanation: String,
}

/// `12004` → `12,004`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A value as an explanation quotes it: at most 40 characters, control characters escaped.
pub fn quote(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(40)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    let p = part as f64 * 100.0 / whole.max(1) as f64;
    if p >= 99.95 && part < whole {
        "99.9".to_owned()
    } else if p < 10.0 {
        format!("{p:.1}")
    } else {
        format!("{p:.1}").trim_end_matches(".0").to_owned()
    }
}

impl ParamProfile {
    fn class_count(&self, i: usize) -> u64 {
        self.classes.get(i).copied().unwrap_or(0)
    }

    /// The variance of the length, floored so that a parameter whose values always had
    /// the same length still allows a little variation.
    fn variance(&self) -> f64 {
        let var = if self.n > 1 {
            self.len_m2 / (self.n - 1) as f64
        } else {
            0.0
        };
        var.max((0.1 * self.len_mean).powi(2)).max(1.0)
    }

    /// Learns one value.
    pub fn learn(&mut self, value: &str) {
        self.learn_value(&Value::new(value), 1);
    }

    /// Learns one value standing for `weight` requests (1, or the sampling interval for a
    /// sampled request: see [`crate::baseline`], "Sampling"): every count grows by
    /// `weight`, and the length's mean and variance take it as `weight` equal values
    /// (Welford's update with frequency weights), so the figures stay in requests.
    #[inline]
    pub fn learn_value(&mut self, value: &Value<'_>, weight: u64) {
        self.learn_member(value, weight, false);
    }

    /// [`ParamProfile::learn_value`]; `fresh`: `value` was taken by
    /// [`ParamProfile::value_of`] from this profile as it still is (no value learnt
    /// into it since), so its [`Member`] is believed without looking again.
    #[inline(always)]
    fn learn_member(&mut self, value: &Value<'_>, weight: u64, fresh: bool) {
        let w = weight.max(1);
        let wf = w as f64;
        self.n += w;
        let len = value.chars;
        let delta = len as f64 - self.len_mean;
        self.len_mean += delta * wf / self.n as f64;
        self.len_m2 += wf * delta * (len as f64 - self.len_mean);
        self.len_max = self.len_max.max(len);
        if self.classes.len() != CLASSES.len() {
            self.classes.resize(CLASSES.len(), 0);
        }
        for i in set_bits(value.classes) {
            if let Some(c) = self.classes.get_mut(i) {
                *c += w;
            }
        }
        if self.shapes.len() != SHAPES {
            self.shapes.resize(SHAPES, 0);
        }
        if let Some(s) = self.shapes.get_mut(value.shape as usize) {
            *s += w;
        }
        if let Some(bins) = value.icd {
            self.icd_n += w;
            for (sum, b) in self.icd.iter_mut().zip(bins) {
                *sum += wf * b;
            }
        }
        if !self.not_enum {
            let room = self.values.len() < ENUM_MAX && len <= ENUM_VALUE_CHARS as u64;
            // Where the value was found when its figures were taken: believed when the
            // list is as it was then, else checked; looked for when not known.
            let at = match (value.member, fresh) {
                (Member::At(i), true) => Some(i as usize),
                (Member::Absent, true) => None,
                (Member::At(i), false)
                    if self
                        .values
                        .get(i as usize)
                        .is_some_and(|e| e.text == value.text) =>
                {
                    Some(i as usize)
                }
                _ => self.values.iter().position(|e| e.text == value.text),
            };
            match at.and_then(|i| self.values.get_mut(i)) {
                Some(e) => e.count += w,
                None if room => {
                    self.values.push(EnumValue::new(value, w));
                    self.last_new_value_at = self.n;
                }
                None => {
                    self.not_enum = true;
                    self.values = Vec::new();
                }
            }
        }
    }

    /// Whether the learnt values form an enumeration: few distinct values, each seen
    /// repeatedly, and no new one in the second half of the learning.
    pub fn is_enum(&self) -> bool {
        !self.not_enum
            && !self.values.is_empty()
            && self.n >= 20 * self.values.len() as u64
            && self.last_new_value_at.saturating_mul(2) <= self.n
    }

    /// The figures of `text`, a value of this parameter: those kept with it when it is
    /// one of the enumeration's values (the same as [`Value::new`]'s), else taken from
    /// the text; with where it stands in the enumeration, for the judgement and the
    /// learning.
    #[inline(always)]
    pub fn value_of<'a>(&self, text: &'a str) -> Value<'a> {
        if self.not_enum {
            return Value {
                member: Member::Absent,
                ..Value::new(text)
            };
        }
        match self.values.iter().position(|e| e.text == text) {
            Some(i) => match (u32::try_from(i), self.values.get(i)) {
                (Ok(at), Some(e)) => e.value(text, at),
                _ => Value::new(text),
            },
            None => Value {
                member: Member::Absent,
                ..Value::new(text)
            },
        }
    }

    /// The dominant shape and its count.
    fn dominant_shape(&self) -> (usize, u64) {
        self.shapes
            .iter()
            .copied()
            .enumerate()
            .max_by_key(|(_, c)| *c)
            .unwrap_or((0, 0))
    }

    /// Judges one value of an established parameter.
    pub fn judge(&self, name: &str, value: &str, out: &mut Vec<Deviation>) {
        self.judge_value(name, &Value::new(value), out);
    }

    /// [`ParamProfile::judge`] with the value's figures already taken: by [`Value::new`],
    /// or by [`ParamProfile::value_of`] on this profile as it is.
    #[inline(always)]
    pub fn judge_value(&self, name: &str, v: &Value<'_>, out: &mut Vec<Deviation>) {
        let value = v.text;
        let n = self.n;
        let len = v.chars;
        // Built only when a deviation needs it: most values judged have none.
        let usual = || {
            let (dominant, dominant_n) = self.dominant_shape();
            format!(
                "parameter `{name}` is {} in {}% of {} requests",
                SHAPE_NAMES.get(dominant).copied().unwrap_or("free-form"),
                percent(dominant_n, n),
                thousands(n)
            )
        };
        // Character classes never (or almost never) seen in this parameter: a bit set,
        // named only when there are some.
        let mut novel = 0u16;
        let rare = RARE * n as f64;
        // Only the classes the value has (a few of the 14), in class order.
        for i in set_bits(v.classes) {
            if (self.class_count(i) as f64) <= rare && i < CLASSES.len() {
                novel |= 1 << i;
            }
        }
        if novel != 0 {
            let dangerous = novel & DANGEROUS != 0;
            let novel: Vec<&str> = set_bits(novel)
                .filter_map(|i| CLASSES.get(i).copied())
                .collect();
            out.push(Deviation {
                kind: "characters",
                parameter: name.to_owned(),
                points: if dangerous { 3 } else { 2 },
                explanation: format!(
                    "{}; got {len} characters with {} (`{}`)",
                    usual(),
                    novel.join(", "),
                    quote(value)
                ),
            });
        }
        // Length: Chebyshev's bound on a value this much longer than the mean.
        let excess = len as f64 - self.len_mean;
        if len > self.len_max && excess > 0.0 {
            let p = self.variance() / (excess * excess);
            if p < LENGTH_P {
                out.push(Deviation {
                    kind: "length",
                    parameter: name.to_owned(),
                    points: if p < LENGTH_P / 10.0 { 3 } else { 2 },
                    explanation: format!(
                        "parameter `{name}` was at most {} characters long (mean {:.1}) in {} requests; got {len} (Chebyshev bound {:.4})",
                        self.len_max,
                        self.len_mean,
                        thousands(n),
                        p
                    ),
                });
            }
        }
        // Enumerations: a value outside the small set.
        let member = || match v.member {
            // Looked up in this profile ([`ParamProfile::value_of`]), which cannot have
            // changed since (`&self`).
            Member::At(i) => (i as usize) < self.values.len(),
            Member::Absent => false,
            Member::Unknown => self.values.iter().any(|e| e.text == value),
        };
        if self.is_enum() && !member() {
            let list: Vec<String> = self
                .values
                .iter()
                .take(5)
                .map(|e| format!("`{}`", quote(&e.text)))
                .collect();
            out.push(Deviation {
                kind: "enumeration",
                parameter: name.to_owned(),
                points: 2,
                explanation: format!(
                    "parameter `{name}` took only {} values in {} requests ({}{}); got `{}`",
                    self.values.len(),
                    thousands(n),
                    list.join(", "),
                    if self.values.len() > 5 { ", …" } else { "" },
                    quote(value)
                ),
            });
        }
        // Character distribution (only for long values, against a trained profile).
        if let Some(observed) = v.icd.filter(|_| self.icd_n >= 50) {
            let total = value.len() as f64;
            // Summed in a loop, in bin order from -0.0 as `Iterator::sum` does (which
            // was not inlined here): the same additions.
            let mut chi2 = -0.0f64;
            for (o, sum) in observed.iter().zip(self.icd) {
                let expected = (sum / self.icd_n as f64) * total;
                let o = o * total;
                chi2 += if expected > 0.0 {
                    (o - expected).powi(2) / expected
                } else if o > 0.0 {
                    o * o
                } else {
                    0.0
                };
            }
            if chi2 > CHI2_CRITICAL {
                out.push(Deviation {
                    kind: "distribution",
                    parameter: name.to_owned(),
                    points: 1,
                    explanation: format!(
                        "parameter `{name}`'s character distribution differs from its {} earlier long values (chi-square {chi2:.1}, p < 0.001)",
                        thousands(self.icd_n)
                    ),
                });
            }
        }
    }
}

/// Status classes 1xx–5xx.
const STATUS_CLASSES: usize = 5;

/// One endpoint's learnt profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointProfile {
    /// Requests learnt.
    pub n: u64,
    /// The parameters seen, by name (bounded), saved as a name-ordered object.
    pub params: ParamMap,
    /// More parameter names than the bound were seen: unknown names are not judged.
    pub open_params: bool,
    /// `n` when the last new parameter name was learnt.
    pub last_new_param_at: u64,
    /// Responses per status class (1xx..5xx), from log lines and the proxy's upstream.
    pub status: Vec<u64>,
    /// Requests learnt after the warm-up (judged first): the endpoint's own normal
    /// traffic, against which each kind of deviation is calibrated.
    #[serde(default)]
    pub judged: u64,
    /// Of those, how many had a deviation of each kind.
    #[serde(default)]
    pub fired: BTreeMap<String, u64>,
}

/// Points added to a deviation of a kind the endpoint's own normal traffic never
/// showed in at least `warmup` judged requests (it is then rarer than 1 in `judged`).
pub const NEVER_SEEN_BONUS: u32 = 2;

impl EndpointProfile {
    /// Learns one request's parameters (name, value) and, when known, its status;
    /// `judged` holds the deviations it was judged to have when the endpoint was past
    /// its warm-up (`None` before).
    pub fn learn(
        &mut self,
        params: &[(String, &str)],
        status: Option<u16>,
        max_params: usize,
        judged: Option<&[Deviation]>,
    ) {
        let params: Vec<Param<'_>> = params
            .iter()
            .map(|(name, value)| Param::new(name, value))
            .collect();
        self.learn_params(&params, status, max_params, judged, 1);
    }

    /// [`EndpointProfile::learn`] with the values' figures already taken, for a
    /// request standing for `weight` requests (see [`ParamProfile::learn_value`]).
    pub fn learn_params(
        &mut self,
        params: &[Param<'_>],
        status: Option<u16>,
        max_params: usize,
        judged: Option<&[Deviation]>,
        weight: u64,
    ) {
        let slots = self.slots(params);
        self.learn_slots(params, &slots, status, max_params, judged, weight);
    }

    /// The figures of `text`, a value of the parameter in `slot` of
    /// [`EndpointProfile::params`] (`None`: not learnt yet): see
    /// [`ParamProfile::value_of`].
    #[inline(always)]
    pub fn value_of<'a>(&self, slot: Option<u32>, text: &'a str) -> Value<'a> {
        match slot.and_then(|s| self.params.at(s)) {
            Some(p) => p.value_of(text),
            None => Value::new(text),
        }
    }

    /// The slot of each parameter's name in [`EndpointProfile::params`] (`None`: not
    /// learnt yet): looked up once for the judgement and the learning of a request.
    pub fn slots(&self, params: &[Param<'_>]) -> Vec<Option<u32>> {
        params.iter().map(|p| self.params.slot(p.name)).collect()
    }

    /// [`EndpointProfile::learn_params`] with each parameter's slot already looked up
    /// ([`EndpointProfile::slots`], on this profile as it is now).
    pub fn learn_slots(
        &mut self,
        params: &[Param<'_>],
        slots: &[Option<u32>],
        status: Option<u16>,
        max_params: usize,
        judged: Option<&[Deviation]>,
        weight: u64,
    ) {
        let w = weight.max(1);
        if let Some(deviations) = judged {
            self.judged += w;
            let mut kinds: Vec<&str> = deviations.iter().map(|d| d.kind).collect();
            kinds.sort_unstable();
            kinds.dedup();
            for k in kinds {
                match self.fired.get_mut(k) {
                    Some(c) => *c += w,
                    None => {
                        self.fired.insert(k.to_owned(), w);
                    }
                }
            }
        }
        self.n += w;
        // The slots (under 64) learnt into so far: a value's place in its enumeration,
        // found with its figures, holds until a value is learnt into its slot (a second
        // parameter of the same name in the request).
        let mut touched = 0u64;
        for (i, param) in params.iter().enumerate() {
            // The slot the judgement found, else a lookup: the name may be new, or
            // have been added by an earlier parameter of this request.
            let (slot, fresh) = match slots.get(i).copied().flatten() {
                Some(slot) => {
                    let bit = 1u64.checked_shl(slot).unwrap_or(0);
                    let fresh = bit != 0 && touched & bit == 0;
                    touched |= bit;
                    (Some(slot), fresh)
                }
                None => (self.params.slot(param.name), false),
            };
            let room = self.params.len() < max_params;
            match slot.and_then(|s| self.params.at_mut(s)) {
                Some(p) => p.learn_member(&param.value, w, fresh),
                None if room => {
                    let mut p = ParamProfile::default();
                    p.learn_value(&param.value, w);
                    self.params.insert(param.name.to_owned(), p);
                    self.last_new_param_at = self.n;
                }
                None => self.open_params = true,
            }
        }
        if let Some(status) = status {
            self.learn_status(status, w);
        }
    }

    /// Learns one response status into the status mix (`weight` times, see
    /// [`ParamProfile::learn_value`]): from a log line with its request, or from the
    /// protecting proxy once the upstream has answered a request that was learnt (the
    /// proxy judges before the answer exists).
    pub fn learn_status(&mut self, status: u16, weight: u64) {
        if let Some(class) = status_class(status) {
            if self.status.len() != STATUS_CLASSES {
                self.status.resize(STATUS_CLASSES, 0);
            }
            if let Some(c) = self.status.get_mut(class) {
                *c += weight.max(1);
            }
        }
    }

    /// Judges a request against an established profile (`warmup` requests learnt);
    /// parameters themselves are judged once they have `warmup` values.
    pub fn judge(
        &self,
        endpoint: &str,
        params: &[(String, &str)],
        status: Option<u16>,
        warmup: u64,
    ) -> Vec<Deviation> {
        let params: Vec<Param<'_>> = params
            .iter()
            .map(|(name, value)| Param::new(name, value))
            .collect();
        self.judge_params(endpoint, &params, status, warmup)
    }

    /// [`EndpointProfile::judge`] with the values' figures already taken (shared with
    /// the learning that may follow).
    pub fn judge_params(
        &self,
        endpoint: &str,
        params: &[Param<'_>],
        status: Option<u16>,
        warmup: u64,
    ) -> Vec<Deviation> {
        if self.n < warmup {
            return Vec::new();
        }
        self.judge_slots(endpoint, params, &self.slots(params), status, warmup)
    }

    /// [`EndpointProfile::judge_params`] with each parameter's slot already looked up
    /// ([`EndpointProfile::slots`]), to be handed on to the learning.
    pub fn judge_slots(
        &self,
        endpoint: &str,
        params: &[Param<'_>],
        slots: &[Option<u32>],
        status: Option<u16>,
        warmup: u64,
    ) -> Vec<Deviation> {
        let mut out = Vec::new();
        if self.n < warmup {
            return out;
        }
        // The parameter set is stable when no new name came in the second half.
        let stable = !self.open_params && self.last_new_param_at.saturating_mul(2) <= self.n;
        for (i, param) in params.iter().enumerate() {
            let name = param.name;
            match slots
                .get(i)
                .copied()
                .flatten()
                .and_then(|s| self.params.at(s))
            {
                Some(p) if p.n >= warmup => p.judge_value(name, &param.value, &mut out),
                Some(_) => {}
                None if stable => out.push(Deviation {
                    kind: "parameter",
                    parameter: name.to_owned(),
                    points: 2,
                    explanation: format!(
                        "parameter `{}` was never sent to {endpoint} in {} requests (it takes {})",
                        quote(name),
                        thousands(self.n),
                        self.known_names()
                    ),
                }),
                None => {}
            }
        }
        self.judge_status(endpoint, status, warmup, &mut out);
        // Calibration: a kind of deviation this endpoint's normal traffic never showed
        // is rarer than 1 in `judged` there, and counts more.
        if self.judged >= warmup {
            for d in &mut out {
                if self.fired.get(d.kind).copied().unwrap_or(0) == 0 {
                    d.points += NEVER_SEEN_BONUS;
                }
            }
        }
        out
    }

    fn judge_status(
        &self,
        endpoint: &str,
        status: Option<u16>,
        warmup: u64,
        out: &mut Vec<Deviation>,
    ) {
        if let Some(class) = status.and_then(status_class) {
            let total: u64 = self.status.iter().sum();
            let seen = self.status.get(class).copied().unwrap_or(0);
            if class == 4 && total >= warmup && (seen as f64) <= RARE * total as f64 {
                out.push(Deviation {
                    kind: "status",
                    parameter: String::new(),
                    points: 1,
                    explanation: format!(
                        "{endpoint} answered {}; {} of {} earlier answers were 5xx",
                        status.unwrap_or(500),
                        thousands(seen),
                        thousands(total)
                    ),
                });
            }
        }
    }

    fn known_names(&self) -> String {
        if self.params.is_empty() {
            return "no parameters".to_owned();
        }
        let names: Vec<String> = self
            .params
            .keys()
            .take(6)
            .map(|k| format!("`{}`", quote(k)))
            .collect();
        let more = if self.params.len() > 6 { ", …" } else { "" };
        format!("{}{more}", names.join(", "))
    }
}

/// One host's learnt set of endpoints: whether it is stable (no new endpoint in the
/// second half of its learning), so that a never-seen route there is a deviation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostProfile {
    /// Requests learnt.
    pub n: u64,
    /// Endpoints learnt.
    pub endpoints: u64,
    /// `n` when the last new endpoint was learnt.
    pub last_new_endpoint_at: u64,
    /// Requests learnt while the host was stable.
    pub judged: u64,
    /// Of those, how many went to a new endpoint.
    pub fired: u64,
}

impl HostProfile {
    fn stable(&self, warmup: u64) -> bool {
        self.n >= warmup && self.last_new_endpoint_at.saturating_mul(2) <= self.n
    }

    /// Judges a request to an endpoint this host never had.
    pub fn judge_new_endpoint(&self, host: &str, endpoint: &str, warmup: u64) -> Option<Deviation> {
        if !self.stable(warmup) {
            return None;
        }
        let calibrated = self.judged >= warmup && self.fired == 0;
        Some(Deviation {
            kind: "endpoint",
            parameter: String::new(),
            points: 2 + if calibrated { NEVER_SEEN_BONUS } else { 0 },
            explanation: format!(
                "{} was never requested on {host} in {} requests to its {} endpoints",
                quote(endpoint.split_once(' ').map_or(endpoint, |(_, rest)| rest)),
                thousands(self.n),
                thousands(self.endpoints)
            ),
        })
    }

    /// Learns one request (`new`: to an endpoint it did not have) standing for `weight`
    /// requests (see [`ParamProfile::learn_value`]; a request to a new endpoint is never
    /// sampled, so it stands for itself).
    pub fn learn(&mut self, new: bool, warmup: u64, weight: u64) {
        let w = weight.max(1);
        if self.stable(warmup) {
            self.judged += w;
            if new {
                self.fired += w;
            }
        }
        self.n += w;
        if new {
            self.endpoints += 1;
            self.last_new_endpoint_at = self.n;
        }
    }
}

fn status_class(status: u16) -> Option<usize> {
    match status {
        100..=599 => Some(usize::from(status / 100) - 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained(values: impl Iterator<Item = String>) -> ParamProfile {
        let mut p = ParamProfile::default();
        for v in values {
            p.learn(&v);
        }
        p
    }

    /// Kruegel & Vigna's bins as first written: all 256 counters sorted.
    fn icd_bins_reference(value: &str) -> [f64; 6] {
        let mut counts = [0u32; 256];
        for &b in value.as_bytes() {
            counts[usize::from(b)] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let n = value.len().max(1) as f64;
        let mut bins = [0.0; 6];
        for (rank, c) in counts.iter().enumerate() {
            let bin = match rank {
                0 => 0,
                1..=3 => 1,
                4..=6 => 2,
                7..=11 => 3,
                12..=15 => 4,
                _ => 5,
            };
            bins[bin] += f64::from(*c) / n;
        }
        bins
    }

    /// A character's class as first written, by `char`.
    fn class_of_reference(c: char) -> usize {
        match c {
            '0'..='9' => 0,
            'a'..='z' => 1,
            'A'..='Z' => 2,
            ' ' | '\t' => 3,
            '-' | '_' | '.' => 4,
            '\'' | '"' | '`' => 5,
            '<' | '>' => 6,
            ';' | '|' | '&' | '$' => 7,
            '(' | ')' | '{' | '}' | '[' | ']' => 8,
            '/' | '\\' => 9,
            '%' => 10,
            c if c.is_ascii_control() => 12,
            c if c.is_ascii() => 11,
            _ => 13,
        }
    }

    #[test]
    fn a_values_figures_in_one_pass_are_those_taken_apart() {
        let all: String = (0u32..=0x2ff).filter_map(char::from_u32).collect();
        for v in [
            "",
            "4711",
            "Vino Rioja",
            "jacinta.delgado@correo.example",
            "1' OR '1'='1 -- <script>",
            "Jamón Ibérico, 2 kg — ¡olé! 你好 😀",
            "tab\there\u{7f}\u{1}",
            all.as_str(),
        ] {
            let value = Value::new(v);
            let set = v
                .chars()
                .fold(0u16, |set, c| set | (1 << class_of_reference(c)));
            assert_eq!(value.classes, set, "{v:?}");
            assert_eq!(classes(v), set, "{v:?}");
            assert_eq!(value.chars, v.chars().count() as u64, "{v:?}");
            assert_eq!(value.shape, shape_reference(v), "{v:?}");
            let icd = (v.len() >= ICD_MIN_LEN).then(|| icd_bins_reference(v));
            assert_eq!(value.icd, icd, "{v:?}");
        }
    }

    #[test]
    fn an_enumerations_kept_figures_are_those_of_its_values_and_it_saves_as_pairs() {
        let values = [
            "en",
            "",
            "4711",
            "Vino+Rioja de la casa",
            "jacinta.delgado@correo.example",
            "Jamón Ibérico, 2 kg",
            "1' OR '1'='1",
        ];
        let mut p = ParamProfile::default();
        for (i, v) in values.iter().enumerate() {
            for _ in 0..=i {
                p.learn(v);
            }
        }
        assert_eq!(p.values.len(), values.len());
        let loaded: ParamProfile =
            serde_json::from_str(&serde_json::to_string(&p).expect("json")).expect("loads");
        for profile in [&p, &loaded] {
            for (i, v) in values.iter().enumerate() {
                let (kept, scanned) = (profile.value_of(v), Value::new(v));
                assert_eq!(kept.member, Member::At(i as u32), "{v:?}");
                assert_eq!(
                    (kept.chars, kept.classes, kept.shape, kept.icd),
                    (scanned.chars, scanned.classes, scanned.shape, scanned.icd),
                    "{v:?}"
                );
            }
            assert_eq!(profile.value_of("de").member, Member::Absent);
        }
        // Saved as the (text, count) pairs they were.
        let pairs: Vec<(String, u64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.to_string(), i as u64 + 1))
            .collect();
        let json = serde_json::to_value(&p).expect("json");
        assert_eq!(json["values"], serde_json::to_value(&pairs).expect("json"));
        assert_eq!(loaded, p);
        // A parameter that is no enumeration scans its values.
        let free = trained((0..100).map(|i| format!("user{i}")));
        assert_eq!(free.value_of("user1").member, Member::Absent);
        assert_eq!(free.value_of("user1").chars, 5);
    }

    #[test]
    fn a_weighted_value_is_learnt_as_that_many_equal_values() {
        let values = ["12", "7", "Vino Rioja de la casa", "31337", "x"];
        let (mut weighted, mut repeated) = (ParamProfile::default(), ParamProfile::default());
        for (i, v) in values.iter().enumerate() {
            let w = [1u64, 8, 3, 8, 1][i];
            weighted.learn_value(&Value::new(v), w);
            for _ in 0..w {
                repeated.learn(v);
            }
        }
        assert_eq!(weighted.n, repeated.n);
        assert_eq!(weighted.classes, repeated.classes);
        assert_eq!(weighted.shapes, repeated.shapes);
        assert_eq!(weighted.values, repeated.values);
        assert_eq!(weighted.icd_n, repeated.icd_n);
        assert_eq!(weighted.last_new_value_at, repeated.last_new_value_at);
        for (a, b) in weighted.icd.iter().zip(repeated.icd) {
            assert!((a - b).abs() < 1e-9, "{a} {b}");
        }
        assert!((weighted.len_mean - repeated.len_mean).abs() < 1e-9);
        assert!((weighted.len_m2 - repeated.len_m2).abs() < 1e-9);
        // Weight 1 is Welford's update as it was first written, bit for bit.
        let mut one = ParamProfile::default();
        let (mut n, mut mean, mut m2) = (0u64, 0.0f64, 0.0f64);
        for v in values {
            one.learn_value(&Value::new(v), 1);
            n += 1;
            let len = v.chars().count() as f64;
            let delta = len - mean;
            mean += delta / n as f64;
            m2 += delta * (len - mean);
        }
        assert_eq!(one.len_mean.to_bits(), mean.to_bits());
        assert_eq!(one.len_m2.to_bits(), m2.to_bits());
    }

    #[test]
    fn character_distribution_bins_are_those_of_a_full_sort() {
        let all: String = (1u8..=255).map(char::from).collect();
        // Counts at and past the histogram's bound (ranked by a sort past it).
        let many = format!("{}{}b{all}", "a".repeat(255), "c".repeat(7));
        let most = format!("{}{}", "x".repeat(MAX_HISTOGRAM_COUNT), "y".repeat(300));
        let beyond = format!("{}{all}{all}", "z".repeat(MAX_HISTOGRAM_COUNT + 1));
        for v in [
            "",
            "a",
            "aaaa",
            "Vino+Rioja",
            "jacinta.delgado%40correo.example",
            "1' OR '1'='1",
            "Entrega+por+la+tarde+preferiblemente+entre+las+cinco+y+las+ocho+gracias",
            all.as_str(),
            many.as_str(),
            most.as_str(),
            beyond.as_str(),
        ] {
            // Bit for bit: the same sums in the same order.
            assert_eq!(icd_bins(v), icd_bins_reference(v), "{v:?}");
        }
        // Around the short path's bound (255 bytes: one count of 255, or 192 distinct
        // bytes), and random values of every length up to 300 over alphabets small
        // and large.
        let ascii: String = (1u8..=127).map(char::from).collect();
        let wide = format!("{ascii}{}", "é".repeat(64));
        assert_eq!(wide.len(), 255);
        let mut rng = crate::rng::Rng::new(11);
        let mut values = vec![
            "q".repeat(255),
            "q".repeat(256),
            format!("{}r", "q".repeat(254)),
            wide.clone(),
            format!("{wide}x"),
        ];
        for len in 0..=300 {
            for alphabet in [3usize, 20, 95] {
                values.push(
                    (0..len)
                        .map(|_| char::from(b' ' + rng.below(alphabet) as u8))
                        .collect(),
                );
            }
        }
        for v in &values {
            assert_eq!(icd_bins(v), icd_bins_reference(v), "{v:?}");
        }
    }

    /// The shape as first written: one scan of the value per question.
    fn shape_reference(value: &str) -> Shape {
        let b = value.as_bytes();
        if b.is_empty() {
            return Shape::Empty;
        }
        let body = b.strip_prefix(b"-").unwrap_or(b);
        let dots = body.iter().filter(|c| **c == b'.').count();
        if !body.is_empty()
            && dots <= 1
            && body.iter().any(u8::is_ascii_digit)
            && body.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        {
            return Shape::Numeric;
        }
        if b.iter().all(u8::is_ascii_alphabetic) {
            return Shape::Alphabetic;
        }
        if b.iter().all(u8::is_ascii_hexdigit) {
            return Shape::Hex;
        }
        if b.iter().all(u8::is_ascii_alphanumeric) {
            return Shape::Alphanumeric;
        }
        if b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        {
            return Shape::Word;
        }
        if value.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ',' | ':' | '!' | '?' | '@')
        }) {
            return Shape::Text;
        }
        Shape::Other
    }

    #[test]
    fn shapes_in_one_pass_are_those_asked_one_at_a_time() {
        let fixed = [
            "",
            "-",
            "--",
            "-5",
            "--5",
            "5-",
            ".",
            "..",
            "-.",
            "-.5",
            "1.2.3",
            "1.5",
            "-4.2",
            "0x1F",
            "abc",
            "ABCdef",
            "deadBEEF01",
            "a1b2z",
            "my-file_1.txt",
            "a b",
            "a\tb",
            "Jamón Ibérico, 2 kg",
            "日本語",
            "١٢٣",
            "1' or '1'='1",
            "a@b.c",
            "x?y!z:w",
            "é",
            "-é",
            "Ω5",
            "foo#bar",
            "\u{0}",
            "ß.",
        ];
        for v in fixed {
            assert_eq!(shape(v), shape_reference(v), "{v:?}");
        }
        // Every short string over an alphabet that reaches each branch.
        let alphabet = ['1', '.', '-', 'a', 'F', 'g', '_', ' ', ',', '\'', 'é', '\t'];
        let mut values = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = values
                .iter()
                .filter(|v| v.chars().count() == values.last().map_or(0, |l| l.chars().count()))
                .flat_map(|v| alphabet.iter().map(move |c| format!("{v}{c}")))
                .collect();
            values.extend(longer);
        }
        for v in values.iter().map(String::as_str).chain(fixed) {
            assert_eq!(shape(v), shape_reference(v), "{v:?}");
            let value = Value::new(v);
            assert_eq!(value.shape, shape_reference(v), "{v:?}");
            assert_eq!(value.chars, v.chars().count() as u64, "{v:?}");
        }
    }

    #[test]
    fn shapes_and_classes() {
        assert_eq!(shape("42"), Shape::Numeric);
        assert_eq!(shape("-4.2"), Shape::Numeric);
        assert_eq!(shape("abc"), Shape::Alphabetic);
        assert_eq!(shape("deadbeef01"), Shape::Hex);
        assert_eq!(shape("a1b2z"), Shape::Alphanumeric);
        assert_eq!(shape("my-file_1.txt"), Shape::Word);
        assert_eq!(shape("Jamón Ibérico, 2 kg"), Shape::Text);
        assert_eq!(shape("1' or '1'='1"), Shape::Other);
        assert_eq!(shape(""), Shape::Empty);
        let c = classes("a'<");
        assert_ne!(c & (1 << 5), 0);
        assert_ne!(c & (1 << 6), 0);
        assert_eq!(c & 1, 0);
        assert_eq!(thousands(12004), "12,004");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn a_numeric_parameter_explains_a_quoted_payload() {
        let p = trained((0..12_004u64).map(|i| (i % 5000).to_string()));
        let mut out = Vec::new();
        p.judge("id", "1' UNION SELECT password FROM users --x", &mut out);
        let kinds: Vec<&str> = out.iter().map(|d| d.kind).collect();
        assert!(kinds.contains(&"characters"), "{out:?}");
        assert!(kinds.contains(&"length"), "{out:?}");
        let text = &out
            .iter()
            .find(|d| d.kind == "characters")
            .unwrap()
            .explanation;
        assert!(
            text.starts_with(
                "parameter `id` is numeric in 100% of 12,004 requests; got 39 characters with"
            ),
            "{text}"
        );
        assert!(text.contains("quotes"), "{text}");
        let mut ok = Vec::new();
        p.judge("id", "4711", &mut ok);
        assert!(ok.is_empty(), "an ordinary id: {ok:?}");
    }

    #[test]
    fn enumerations_are_learnt_and_enforced() {
        let langs = ["en", "es", "fr"];
        let p = trained((0..600).map(|i| langs[i % 3].to_owned()));
        assert!(p.is_enum());
        let mut out = Vec::new();
        p.judge("lang", "de", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, "enumeration");
        assert!(out[0].explanation.contains("took only 3 values"));
        let free = trained((0..600).map(|i| format!("user{i}")));
        assert!(!free.is_enum(), "600 distinct values are no enumeration");
    }

    #[test]
    fn long_values_are_judged_by_chebyshev_and_variation_is_tolerated() {
        let p = trained((0..1000).map(|i| format!("{i:0w$}", w = 5 + i % 20)));
        let mut out = Vec::new();
        p.judge("q", &"7".repeat(30), &mut out);
        assert!(out.is_empty(), "a little longer than seen is fine: {out:?}");
        p.judge("q", &"7".repeat(400), &mut out);
        assert_eq!(out[0].kind, "length", "{out:?}");
        assert_eq!(out[0].points, 3, "far beyond the bound");
        assert!(
            out.iter().all(|d| d.kind != "characters"),
            "digits were seen: {out:?}"
        );
    }

    #[test]
    fn endpoints_flag_unknown_parameters_only_once_the_set_is_stable() {
        let mut e = EndpointProfile::default();
        for i in 0..300 {
            let v = i.to_string();
            e.learn(&[("id".to_owned(), v.as_str())], Some(200), 8, None);
        }
        let d = e.judge("h GET /x", &[("debug".to_owned(), "1")], None, 100);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, "parameter");
        assert!(
            d[0].explanation
                .contains("never sent to h GET /x in 300 requests")
        );
        assert!(e.judge("h GET /x", &[], Some(200), 100).is_empty());
        let s = e.judge("h GET /x", &[], Some(503), 100);
        assert_eq!(s[0].kind, "status");
        assert!(
            e.judge("e", &[("debug".into(), "1")], None, 1000)
                .is_empty(),
            "in warm-up nothing is judged"
        );
        // An endpoint whose names keep changing is not judged on names.
        let mut open = EndpointProfile::default();
        for i in 0..300 {
            open.learn(&[(format!("k{i}"), "v")], None, 8, None);
        }
        assert!(open.open_params);
        assert!(
            open.judge("e", &[("new".into(), "v")], None, 100)
                .is_empty()
        );
    }
}
