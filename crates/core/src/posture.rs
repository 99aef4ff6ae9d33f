//! The vocabulary of security posture checks, shared by the checks (palisade-analytics),
//! the store that keeps their history and the API that serves them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a posture check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Nothing to fix.
    Pass,
    /// Something to look at; counts half in the score.
    Warn,
    /// Something to fix.
    Fail,
    /// The check does not apply here (the component it looks at is absent); left out
    /// of the score.
    NotApplicable,
    /// The check could not run (the database was down…); left out of the score and
    /// shown with the reason.
    Error,
}

impl CheckStatus {
    /// Every status.
    pub const ALL: [CheckStatus; 5] = [
        CheckStatus::Pass,
        CheckStatus::Warn,
        CheckStatus::Fail,
        CheckStatus::NotApplicable,
        CheckStatus::Error,
    ];

    /// The stable name (`pass`, `warn`, `fail`, `not_applicable`, `error`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::NotApplicable => "not_applicable",
            CheckStatus::Error => "error",
        }
    }

    /// The share of the check's weight it earns in the compliance score, `None` when it
    /// does not count.
    pub const fn credit(self) -> Option<f64> {
        match self {
            CheckStatus::Pass => Some(1.0),
            CheckStatus::Warn => Some(0.5),
            CheckStatus::Fail => Some(0.0),
            CheckStatus::NotApplicable | CheckStatus::Error => None,
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`CheckStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown check status '{0}'")]
pub struct UnknownCheckStatus(pub String);

impl FromStr for CheckStatus {
    type Err = UnknownCheckStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCheckStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in CheckStatus::ALL {
            assert_eq!(s.as_str().parse::<CheckStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("passed".parse::<CheckStatus>().is_err());
        assert_eq!(CheckStatus::Warn.credit(), Some(0.5));
        assert_eq!(CheckStatus::NotApplicable.credit(), None);
    }
}
