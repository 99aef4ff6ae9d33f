//! What a protecting proxy sees of its application's answers, for the posture checks:
//! how many responses lacked `Strict-Transport-Security`, a `Content-Security-Policy`
//! (HTML pages) or `X-Content-Type-Options: nosniff`, and which `Server` /
//! `X-Powered-By` banners came back.
//!
//! Observing sits on the response path, so it never waits and never grows: counters are
//! atomic adds, and banners go into a small fixed-size list only when its lock is free
//! at that instant (a busy lock skips the banner; the counters still count).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use http::{HeaderMap, HeaderName, HeaderValue};

/// `X-Powered-By`, parsed once.
pub const X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");

/// Distinct banners kept per proxy; later new ones are counted as dropped.
pub const MAX_BANNERS: usize = 16;
/// Longest banner kept, in bytes (cut at a character boundary).
const MAX_BANNER_BYTES: usize = 128;

/// A banner value seen, with how many responses carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BannerSeen {
    /// `Server` or `X-Powered-By`.
    pub header: &'static str,
    /// The value (lossy UTF-8, capped).
    pub value: String,
    /// Responses that carried it.
    pub seen: u64,
}

/// A copy of the observations at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedResponses {
    /// Responses relayed from the upstream.
    pub responses: u64,
    /// Of those, `text/html` ones.
    pub html_responses: u64,
    /// Without `Strict-Transport-Security`.
    pub missing_hsts: u64,
    /// HTML responses without `Content-Security-Policy`.
    pub missing_csp: u64,
    /// Without `X-Content-Type-Options: nosniff`.
    pub missing_nosniff: u64,
    /// Banners seen (at most [`MAX_BANNERS`]).
    pub banners: Vec<BannerSeen>,
    /// New banners not kept because the list was full.
    pub banners_dropped: u64,
}

/// The live observations of one proxy.
#[derive(Debug, Default)]
pub struct ResponseObservations {
    responses: AtomicU64,
    html: AtomicU64,
    missing_hsts: AtomicU64,
    missing_csp: AtomicU64,
    missing_nosniff: AtomicU64,
    banners: Mutex<Vec<BannerSeen>>,
    banners_dropped: AtomicU64,
}

/// The banner as kept: lossy UTF-8, cut at a character boundary, trimmed. Borrowed
/// when the bytes are UTF-8 (the usual case), so a banner already in the list costs no
/// allocation.
fn capped(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    fn cut(text: &str) -> &str {
        let mut end = text.len().min(MAX_BANNER_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.get(..end).unwrap_or_default().trim()
    }
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(text) => Cow::Borrowed(cut(text)),
        Cow::Owned(text) => Cow::Owned(cut(&text).to_owned()),
    }
}

/// The version banners of one answer (the first value of each, as `HeaderMap::get`
/// gives it), found by [`ResponseObservations::observe`]'s walk over the headers, for
/// the vulnerability engine's software observer: the walk that counts the answer finds
/// them too, so the answer's headers are not looked up again for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Banners<'a> {
    /// `Server`.
    pub server: Option<&'a HeaderValue>,
    /// `X-Powered-By`.
    pub powered_by: Option<&'a HeaderValue>,
}

/// What one walk over an answer's headers finds: the first value of each header the
/// observations read, and whether the two counted by presence alone are there.
#[derive(Default)]
struct Seen<'a> {
    hsts: bool,
    csp: bool,
    nosniff: Option<&'a HeaderValue>,
    content_type: Option<&'a HeaderValue>,
    banners: Banners<'a>,
}

impl<'a> Seen<'a> {
    /// One pass over the names present (a handful) instead of a hashed look-up for each
    /// of six names, present or not. `HeaderMap::iter` gives a name's values together,
    /// first value first, so the first one met is the one `get` returns. Names are
    /// matched by their text (lowercase, as `HeaderMap` keeps them): comparing with
    /// `HeaderName` constants builds and drops one per comparison.
    fn walk(headers: &'a HeaderMap) -> Seen<'a> {
        let mut seen = Seen::default();
        for (name, value) in headers {
            let first = |slot: &mut Option<&'a HeaderValue>| {
                slot.get_or_insert(value);
            };
            match name.as_str() {
                "strict-transport-security" => seen.hsts = true,
                "content-security-policy" => seen.csp = true,
                "x-content-type-options" => first(&mut seen.nosniff),
                "content-type" => first(&mut seen.content_type),
                "server" => first(&mut seen.banners.server),
                "x-powered-by" => first(&mut seen.banners.powered_by),
                _ => {}
            }
        }
        seen
    }
}

impl ResponseObservations {
    /// Counts one upstream answer's headers, and gives its version banners back for
    /// the software observer. Never blocks.
    pub fn observe<'h>(&self, headers: &'h HeaderMap) -> Banners<'h> {
        let count = |c: &AtomicU64| {
            c.fetch_add(1, Ordering::Relaxed);
        };
        let seen = Seen::walk(headers);
        count(&self.responses);
        if !seen.hsts {
            count(&self.missing_hsts);
        }
        let nosniff = seen
            .nosniff
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"nosniff"));
        if !nosniff {
            count(&self.missing_nosniff);
        }
        let html = seen.content_type.is_some_and(|v| {
            v.as_bytes()
                .get(..9)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"text/html"))
        });
        if html {
            count(&self.html);
            if !seen.csp {
                count(&self.missing_csp);
            }
        }
        let banners = seen.banners;
        for (header, value) in [
            ("Server", banners.server),
            ("X-Powered-By", banners.powered_by),
        ] {
            if let Some(v) = value {
                self.banner(header, v.as_bytes());
            }
        }
        banners
    }

    fn banner(&self, header: &'static str, value: &[u8]) {
        let Ok(mut list) = self.banners.try_lock() else {
            return;
        };
        let value = capped(value);
        if let Some(b) = list
            .iter_mut()
            .find(|b| b.header == header && b.value == *value)
        {
            b.seen += 1;
        } else if list.len() < MAX_BANNERS {
            list.push(BannerSeen {
                header,
                value: value.into_owned(),
                seen: 1,
            });
        } else {
            self.banners_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A copy of what was seen so far.
    pub fn snapshot(&self) -> ObservedResponses {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ObservedResponses {
            responses: get(&self.responses),
            html_responses: get(&self.html),
            missing_hsts: get(&self.missing_hsts),
            missing_csp: get(&self.missing_csp),
            missing_nosniff: get(&self.missing_nosniff),
            banners: self
                .banners
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            banners_dropped: get(&self.banners_dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{
        CONTENT_SECURITY_POLICY, CONTENT_TYPE, SERVER, STRICT_TRANSPORT_SECURITY,
        X_CONTENT_TYPE_OPTIONS,
    };

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// Every header map of up to four entries drawn from the six names the walk reads
    /// (values differing by position), two others and a repeat: the walk finds what
    /// `HeaderMap::get` and `contains_key` find.
    #[test]
    fn the_walk_finds_what_look_ups_find() {
        let names: [&'static str; 9] = [
            "strict-transport-security",
            "content-security-policy",
            "x-content-type-options",
            "content-type",
            "server",
            "x-powered-by",
            "date",
            "x-other",
            "Server",
        ];
        let mut maps = 0;
        for a in 0..names.len() {
            for b in 0..names.len() {
                for c in 0..names.len() {
                    for d in 0..=names.len() {
                        let mut h = HeaderMap::new();
                        for (at, i) in [a, b, c, d].into_iter().enumerate() {
                            if let Some(name) = names.get(i) {
                                let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
                                h.append(name, HeaderValue::from_str(&format!("v{at}")).unwrap());
                            }
                        }
                        let seen = Seen::walk(&h);
                        assert_eq!(seen.hsts, h.contains_key(STRICT_TRANSPORT_SECURITY));
                        assert_eq!(seen.csp, h.contains_key(CONTENT_SECURITY_POLICY));
                        assert_eq!(seen.nosniff, h.get(&X_CONTENT_TYPE_OPTIONS));
                        assert_eq!(seen.content_type, h.get(CONTENT_TYPE));
                        assert_eq!(seen.banners.server, h.get(SERVER));
                        assert_eq!(seen.banners.powered_by, h.get(&X_POWERED_BY));
                        maps += 1;
                    }
                }
            }
        }
        assert_eq!(maps, 9 * 9 * 9 * 10);
    }

    #[test]
    fn observing_gives_the_banners_back() {
        let o = ResponseObservations::default();
        let h = headers(&[
            ("x-powered-by", "PHP/8.1.2"),
            ("server", "nginx/1.18.0"),
            ("server", "second"),
        ]);
        let banners = o.observe(&h);
        assert_eq!(banners.server, h.get(SERVER));
        assert_eq!(
            banners.powered_by.map(HeaderValue::as_bytes),
            Some(&b"PHP/8.1.2"[..])
        );
        assert_eq!(o.observe(&HeaderMap::new()), Banners::default());
    }

    #[test]
    fn headers_are_counted_and_banners_bounded() {
        let o = ResponseObservations::default();
        o.observe(&headers(&[
            ("content-type", "text/html; charset=utf-8"),
            ("server", "nginx/1.18.0"),
            ("x-powered-by", "PHP/8.1.2"),
        ]));
        o.observe(&headers(&[
            ("content-type", "application/json"),
            ("strict-transport-security", "max-age=63072000"),
            ("x-content-type-options", "NoSniff"),
            ("server", "nginx/1.18.0"),
        ]));
        let s = o.snapshot();
        assert_eq!(
            (
                s.responses,
                s.html_responses,
                s.missing_hsts,
                s.missing_csp,
                s.missing_nosniff
            ),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(s.banners[0].value, "nginx/1.18.0");
        assert_eq!(s.banners[0].seen, 2);
        assert_eq!(s.banners[1].header, "X-Powered-By");
        for i in 0..40 {
            o.observe(&headers(&[("server", &format!("srv-{i}"))]));
        }
        let s = o.snapshot();
        assert_eq!(s.banners.len(), MAX_BANNERS);
        assert_eq!(s.banners_dropped, 40 - (MAX_BANNERS as u64 - 2));
        assert_eq!(capped(&[b'a'; 300]).len(), MAX_BANNER_BYTES);
        assert_eq!(capped("é".repeat(100).as_bytes()).len(), 128);
    }
}
