//! What every component's configuration shares (Vector's way: a component owns its
//! config struct, which deserializes itself with defaults and rejects unknown keys, and
//! validates itself with problems that name the key to fix; the binary only composes
//! the sections and applies file < environment < flags).

use std::fmt;

/// One problem in the configuration: the key (dotted path, e.g. `proxy[0].listen`)
/// and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key, relative to the component until [`ConfigProblem::within`] prefixes it.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigProblem {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl fmt::Display) -> ConfigProblem {
        ConfigProblem {
            key: key.into(),
            message: message.to_string(),
        }
    }

    /// The same problem seen from the enclosing section (`http` + `max_body_bytes` →
    /// `http.max_body_bytes`; `proxy[0]` + `listen` → `proxy[0].listen`).
    pub fn within(mut self, section: &str) -> ConfigProblem {
        self.key = if self.key.is_empty() {
            section.to_owned()
        } else {
            format!("{section}.{}", self.key)
        };
        self
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A component configuration that completes and checks itself after deserializing.
pub trait Validate {
    /// Fills defaults that depend on other keys (a source named after its path), then
    /// returns every problem found (empty when valid), keys relative to the component.
    fn finish(&mut self) -> Vec<ConfigProblem>;
}

/// Pushes a problem when `value` is outside `range`.
pub fn check_range<T: PartialOrd + fmt::Display>(
    problems: &mut Vec<ConfigProblem>,
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) {
    if !range.contains(&value) {
        problems.push(ConfigProblem::new(
            key,
            format!(
                "must be between {} and {} (got {value})",
                range.start(),
                range.end()
            ),
        ));
    }
}
