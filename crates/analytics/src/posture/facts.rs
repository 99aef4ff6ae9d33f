//! What the posture checks need to know about the running service, gathered by the
//! binary (which composes every component) behind one trait, so that this crate
//! depends on none of them. A component that does not exist yet answers `None` (the
//! default), and its check says "not applicable" until it lands. What is in the store
//! (credentials, vulnerability matches) the checks read from the store itself.

use std::net::SocketAddr;
use std::path::PathBuf;

use palisade_core::Timestamp;
use palisade_core::duration::Span;
use palisade_core::verdict::Mode;
use serde::Serialize;

/// The signature engine's settings in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetectionFacts {
    /// Block or detect only.
    pub mode: Mode,
    /// Paranoia level, 1 to 4.
    pub paranoia: u8,
    /// Anomaly score that blocks.
    pub threshold: u32,
    /// The threshold Palisade ships with (OWASP CRS's inbound default).
    pub default_threshold: u32,
}

/// The rules loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RulesFacts {
    /// Rules in the loaded set.
    pub rules: usize,
    /// Rules active at the paranoia level.
    pub active: usize,
    /// The user rule directory, if any.
    pub directory: Option<String>,
    /// The last reload's error (the previous rules stay in force).
    pub error: Option<String>,
}

/// One ML model (filled in once the models component exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFacts {
    /// The model's name (`threat`, `classifier`, …).
    pub name: String,
    /// Its version.
    pub version: Option<String>,
    /// Whether it is loaded and answering.
    pub loaded: bool,
    /// When it was trained.
    pub trained_at: Option<Timestamp>,
    /// Why it is not loaded.
    pub error: Option<String>,
}

/// A key file Palisade keeps in its data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFileFacts {
    /// What it holds (`JWT signing key`, `secrets keyring`).
    pub name: String,
    /// Where.
    pub path: PathBuf,
    /// The key comes from the environment instead, and the file is not used.
    pub from_environment: bool,
}

/// An address Palisade listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerFacts {
    /// What listens (`api`, `proxy web`, `syslog edge`).
    pub name: String,
    /// Where.
    pub address: SocketAddr,
    /// Whether it speaks HTTP (TLS in front matters for HTTP listeners).
    pub http: bool,
}

/// How long one kind of data is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionFacts {
    /// The data (`events`, `threats`, `analytics minute roll-ups`, …).
    pub data: String,
    /// How long it is kept; `None`: for good.
    pub period: Option<Span>,
    /// The configuration key that sets it; `None` when nothing can (no retention for
    /// this data exists in this build).
    pub key: Option<String>,
}

/// A response header banner seen from a protected application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Banner {
    /// `Server` or `X-Powered-By`.
    pub header: String,
    /// Its value.
    pub value: String,
    /// Responses that carried it.
    pub seen: u64,
}

/// What one protecting proxy saw of its application's responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppObservation {
    /// The proxy's name (the application).
    pub application: String,
    /// The upstream it protects.
    pub upstream: String,
    /// Responses observed.
    pub responses: u64,
    /// Of those, HTML pages (where a Content-Security-Policy matters).
    pub html_responses: u64,
    /// Responses without `Strict-Transport-Security`.
    pub missing_hsts: u64,
    /// HTML responses without `Content-Security-Policy`.
    pub missing_csp: u64,
    /// Responses without `X-Content-Type-Options: nosniff`.
    pub missing_nosniff: u64,
    /// `Server` and `X-Powered-By` values seen (a bounded set).
    pub banners: Vec<Banner>,
}

/// The facts, as the binary gathers them from every component.
pub trait PostureFacts: Send + Sync {
    /// The detection settings in force.
    fn detection(&self) -> DetectionFacts;
    /// The rules loaded.
    fn rules(&self) -> RulesFacts;
    /// ML models; `None` while Palisade has no models component (hook).
    fn models(&self) -> Option<Vec<ModelFacts>> {
        None
    }
    /// Key files in the data directory.
    fn key_files(&self) -> Vec<KeyFileFacts>;
    /// Every listening address.
    fn listeners(&self) -> Vec<ListenerFacts>;
    /// Retention of each kind of data.
    fn retention(&self) -> Vec<RetentionFacts>;
    /// What the protecting proxies saw of their applications' responses (empty without
    /// proxies).
    fn applications(&self) -> Vec<AppObservation>;
}
