//! What is done about a request: the enforcement [`Mode`] a front runs in and the
//! [`Action`] taken on one request (served by `/api/v1/check`, counted by the proxy,
//! kept in each threat).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a verdict over the threshold does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Answer 403.
    #[default]
    Block,
    /// Answer 200 and only report (`X-Palisade-Decision: detect`).
    Detect,
}

impl Mode {
    /// Reads `block` or `detect`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "block" => Some(Mode::Block),
            "detect" => Some(Mode::Detect),
            _ => None,
        }
    }

    /// The stable name: `block` or `detect`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Detect => "detect",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a request (and, in a threat, what was done).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let it through.
    Allow,
    /// Over the threshold in detect-only mode (or seen in a log): let it through, report.
    Detect,
    /// Over the threshold in block mode: refuse.
    Block,
    /// Refused by an IP ban before inspection.
    Ban,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 4] = [Action::Allow, Action::Detect, Action::Block, Action::Ban];

    /// The wire and stored name: `allow`, `detect`, `block`, `ban`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Detect => "detect",
            Action::Block => "block",
            Action::Ban => "ban",
        }
    }

    /// Whether the request is refused.
    pub fn refuses(self) -> bool {
        matches!(self, Action::Block | Action::Ban)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}: must be allow, detect, block or ban")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    /// Reads a stable name back (exact, lowercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
            assert_eq!(
                serde_json::from_str::<Action>(&format!("\"{a}\"")).unwrap(),
                a
            );
        }
        assert!("BLOCK".parse::<Action>().is_err());
        for m in [Mode::Block, Mode::Detect] {
            assert_eq!(Mode::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(Mode::parse("ban"), None);
        assert_eq!(Mode::default(), Mode::Block);
    }

    #[test]
    fn only_block_and_ban_refuse() {
        assert!(Action::Block.refuses() && Action::Ban.refuses());
        assert!(!Action::Allow.refuses() && !Action::Detect.refuses());
    }
}
