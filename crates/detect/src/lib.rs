//! `palisade-detect`: the signature-rule WAF engine.
//!
//! Requests are parsed into bounded parts ([`request`]), decoded by per-rule
//! transformation chains ([`transform`]), matched against data-driven rules ([`rules`],
//! format in `RULES.md`) with linear-time regex sets, and scored CRS-style ([`engine`]).
//!
//! ```
//! use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};
//! let engine = Engine::new(RuleSet::builtin().unwrap(), EngineConfig::default());
//! let req = HttpRequest {
//!     method: "GET".into(),
//!     uri: "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--".into(),
//!     protocol: "HTTP/1.1".into(),
//!     headers: vec![("Host".into(), "example.com".into())],
//!     ..Default::default()
//! };
//! assert!(engine.inspect(&req).blocked);
//! ```

#![warn(missing_docs)]

mod chains;
pub mod engine;
mod framing;
mod injection;
mod log_request;
mod memo;
mod parallel;
pub mod places;
mod prefilter;
pub mod request;
pub mod rules;
mod scan;
pub mod seclang;
mod split;
pub mod text;
pub mod transform;

pub use engine::{Engine, EngineConfig, Finding, Verdict};
pub use request::{HttpRequest, Location, ParsedRequest, Part, parse};
pub use rules::{Category, Exclusion, Operator, Rule, RuleError, RuleSet, Severity, Target};
pub use transform::Transform;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_context;
#[cfg(test)]
mod tests_coverage;
#[cfg(test)]
mod tests_protocol;
