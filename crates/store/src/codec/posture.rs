//! The translation between posture runs and results and column values, shared by both
//! backends.

use palisade_core::Timestamp;
use palisade_core::posture::CheckStatus;
use palisade_core::security::Role;
use palisade_core::severity::Severity;

use crate::codec::clean;
use crate::{CredentialUse, NewPostureRun, PostureResult, PostureRun, StoreError};

/// The run columns every read selects, in the order [`RunColumns`] expects.
pub(crate) const RUN_SELECT_COLUMNS: &str =
    "id, started_at, finished_at, cause, score, passed, warned, failed, skipped";

/// The result columns every read selects (after `run_id`), in the order
/// [`ResultColumns`] expects.
pub(crate) const RESULT_SELECT_COLUMNS: &str =
    "check_id, title, status, severity, checked, found, fix, detail";

/// A run row.
pub(crate) struct RunColumns {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub cause: String,
    pub score: Option<i64>,
    pub passed: i64,
    pub warned: i64,
    pub failed: i64,
    pub skipped: i64,
}

fn small(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("count {v} out of range")))
}

impl RunColumns {
    /// The domain value.
    pub fn into_run(self) -> Result<PostureRun, StoreError> {
        Ok(PostureRun {
            id: self.id,
            started_at: Timestamp(self.started_at),
            finished_at: Timestamp(self.finished_at),
            cause: self.cause,
            score: self
                .score
                .map(|s| u8::try_from(s).map_err(|_| StoreError::Corrupt(format!("score {s}"))))
                .transpose()?,
            passed: small(self.passed)?,
            warned: small(self.warned)?,
            failed: small(self.failed)?,
            skipped: small(self.skipped)?,
        })
    }
}

/// A result row.
pub(crate) struct ResultColumns {
    pub check_id: String,
    pub title: String,
    pub status: String,
    pub severity: String,
    pub checked: String,
    pub found: String,
    pub fix: Option<String>,
    pub detail: String,
}

impl ResultColumns {
    /// The domain value.
    pub fn into_result(self) -> Result<PostureResult, StoreError> {
        Ok(PostureResult {
            status: self
                .status
                .parse::<CheckStatus>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            severity: self
                .severity
                .parse::<Severity>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            detail: serde_json::from_str(&self.detail)
                .map_err(|e| StoreError::Corrupt(format!("posture detail: {e}")))?,
            check_id: self.check_id,
            title: self.title,
            checked: self.checked,
            found: self.found,
            fix: self.fix,
        })
    }
}

/// A result as column values (text cleaned of NUL).
pub(crate) struct ResultColumnsIn {
    pub check_id: String,
    pub title: String,
    pub status: &'static str,
    pub severity: &'static str,
    pub checked: String,
    pub found: String,
    pub fix: Option<String>,
    pub detail: String,
}

impl ResultColumnsIn {
    /// The column values of one result.
    pub fn new(r: &PostureResult) -> ResultColumnsIn {
        ResultColumnsIn {
            check_id: clean(&r.check_id).into_owned(),
            title: clean(&r.title).into_owned(),
            status: r.status.as_str(),
            severity: r.severity.as_str(),
            checked: clean(&r.checked).into_owned(),
            found: clean(&r.found).into_owned(),
            fix: r.fix.as_deref().map(|f| clean(f).into_owned()),
            detail: clean(&r.detail.to_string()).into_owned(),
        }
    }
}

/// The per-status counts of a run: passed, warned, failed, skipped.
pub(crate) fn run_counts(run: &NewPostureRun) -> [i64; 4] {
    let mut c = [0i64; 4];
    for r in &run.results {
        let i = match r.status {
            CheckStatus::Pass => 0,
            CheckStatus::Warn => 1,
            CheckStatus::Fail => 2,
            CheckStatus::NotApplicable | CheckStatus::Error => 3,
        };
        c[i] += 1;
    }
    c
}

/// A credential row.
pub(crate) fn credential(
    kind: String,
    id: i64,
    name: String,
    role: Option<String>,
    created_at: i64,
    last_used_at: Option<i64>,
) -> Result<CredentialUse, StoreError> {
    Ok(CredentialUse {
        kind: if kind == "user" { "user" } else { "api_key" },
        id,
        name,
        role: role
            .map(|r| {
                Role::parse(&r).ok_or_else(|| StoreError::Corrupt(format!("unknown role '{r}'")))
            })
            .transpose()?,
        created_at: Timestamp(created_at),
        last_used_at: last_used_at.map(Timestamp),
    })
}
