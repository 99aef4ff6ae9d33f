//! Fetching feed pages over HTTP the way the feeds ask to be fetched: within their
//! published rate limits, with retries and exponential backoff (with jitter) on 429,
//! 403-as-rate-limit, 5xx, timeouts, broken connections and truncated bodies, honouring
//! `Retry-After`, with a bounded body, and stopping between attempts when the task is
//! cancelled.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use palisade_core::metrics::{Counter, registry};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::TaskContext;
use crate::error::VulnError;

/// A sliding-window rate limit: at most `max` requests in any `window`.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    sent: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// `max` requests (at least 1) per `window`.
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            max: usize::try_from(max.max(1)).unwrap_or(1),
            window,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more request fits in the window, then counts it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut sent = self.sent.lock().await;
                let now = Instant::now();
                while sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    sent.pop_front();
                }
                if sent.len() < self.max {
                    sent.push_back(now);
                    return;
                }
                sent.front().map_or(Duration::ZERO, |t| {
                    self.window.saturating_sub(now.duration_since(*t))
                })
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The first pause.
    pub first_backoff: Duration,
    /// The longest pause (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// Per-request timeout (a slow answer is a failed attempt).
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_body: usize,
}

/// Counters of feed requests by outcome, looked up once per feed.
struct Outcomes {
    ok: Arc<Counter>,
    retried: Arc<Counter>,
    failed: Arc<Counter>,
}

fn outcomes(feed: &str) -> Outcomes {
    let c = |outcome: &str| {
        registry().counter(
            "palisade_vuln_feed_requests_total",
            "Requests to vulnerability feeds (NVD, CIRCL), by feed and outcome (ok, retried, failed).",
            &["feed", "outcome"],
            &[feed, outcome],
        )
    };
    Outcomes {
        ok: c("ok"),
        retried: c("retried"),
        failed: c("failed"),
    }
}

/// What one attempt gave.
enum Attempt<T> {
    Done(T),
    NotFound,
    /// Worth another try, after at least this long (`Retry-After`).
    Retry(String, Option<Duration>),
    Fatal(VulnError),
}

/// A small xorshift for jitter: no need for a cryptographic generator here.
fn jitter(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    0.5 + (*seed % 1000) as f64 / 2000.0
}

/// GETs `url` with `query` and `headers`, parses the body with `parse` (a body that does
/// not parse, e.g. one cut short, is retried), and returns `None` for 404.
#[allow(clippy::too_many_arguments)]
pub async fn get<T>(
    client: &reqwest::Client,
    feed: &str,
    url: &str,
    query: &[(&str, String)],
    headers: &[(&str, &str)],
    policy: RetryPolicy,
    limiter: Option<&RateLimiter>,
    ctx: &TaskContext<'_>,
    parse: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<Option<T>, VulnError> {
    let counts = outcomes(feed);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
        | 1;
    let mut backoff = policy.first_backoff;
    let attempts = policy.attempts.max(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        ctx.check()?;
        if let Some(l) = limiter {
            l.acquire().await;
        }
        let mut req = client.get(url).query(query).timeout(policy.timeout);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match once(req, policy.max_body, &parse).await {
            Attempt::Done(v) => {
                counts.ok.inc();
                return Ok(Some(v));
            }
            Attempt::NotFound => {
                counts.ok.inc();
                return Ok(None);
            }
            Attempt::Fatal(e) => {
                counts.failed.inc();
                return Err(e);
            }
            Attempt::Retry(why, after) => {
                tracing::warn!(
                    message = "Feed request failed; will retry.",
                    feed,
                    url,
                    attempt,
                    attempts,
                    error = %why
                );
                last = why;
                if attempt == attempts {
                    break;
                }
                counts.retried.inc();
                let pause = after
                    .unwrap_or_else(|| backoff.mul_f64(jitter(&mut seed)))
                    .min(policy.max_backoff);
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(policy.max_backoff);
            }
        }
    }
    counts.failed.inc();
    Err(VulnError::Http {
        url: url.to_owned(),
        why: format!("gave up after {attempts} attempts: {last}"),
    })
}

async fn once<T>(
    req: reqwest::RequestBuilder,
    max_body: usize,
    parse: &impl Fn(&[u8]) -> Result<T, String>,
) -> Attempt<T> {
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Attempt::Retry(describe(&e), None),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match status {
        200..=299 => {}
        404 => return Attempt::NotFound,
        // NVD answers 403 when the rate limit is exceeded.
        403 | 408 | 429 | 500..=599 => {
            return Attempt::Retry(format!("HTTP {status}"), retry_after);
        }
        _ => {
            return Attempt::Fatal(VulnError::Status {
                url: resp.url().to_string(),
                status,
            });
        }
    }
    if resp.content_length().is_some_and(|n| n > max_body as u64) {
        return Attempt::Fatal(VulnError::Http {
            url: resp.url().to_string(),
            why: format!("the answer is larger than {max_body} bytes"),
        });
    }
    let mut body: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_body {
                    return Attempt::Fatal(VulnError::Http {
                        url: resp.url().to_string(),
                        why: format!("the answer is larger than {max_body} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Attempt::Retry(format!("reading the body: {}", describe(&e)), None),
        }
    }
    match parse(&body) {
        Ok(v) => Attempt::Done(v),
        Err(why) => Attempt::Retry(
            format!("unreadable answer ({} bytes): {why}", body.len()),
            None,
        ),
    }
}

/// An error with its causes (reqwest's own message is generic).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_window_holds_at_most_max_requests() {
        let l = RateLimiter::new(2, Duration::from_secs(30));
        let start = tokio::time::Instant::now();
        l.acquire().await;
        l.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(30),
            "the third waits for the window"
        );
    }

    #[test]
    fn jitter_stays_between_half_and_one() {
        let mut seed = 42;
        for _ in 0..1000 {
            let j = jitter(&mut seed);
            assert!((0.5..=1.0).contains(&j));
        }
    }
}
