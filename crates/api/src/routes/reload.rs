//! What an operator's reload did, written the same way for every component that can be
//! reloaded without a restart (detection rules, models): one audit entry and one
//! activity, so the audit log and the feed tell the same story whichever file it was.

use std::fmt::Display;

use super::auth::audit;
use crate::AppState;
use crate::auth::Principal;

/// One reload to record.
pub struct Reload<'a> {
    /// Audit action, e.g. `detection.rules.reload`.
    pub audit_action: &'static str,
    /// Activity kind, e.g. `rules.reloaded`.
    pub activity_kind: &'static str,
    /// What was reloaded, as the activity's sentence starts: "Detection rules".
    pub what: &'a str,
    /// What stays in force when the reload fails: "the previous rules".
    pub kept: &'a str,
    /// Extra activity details (the outcome's `ok` and `error` are always added).
    pub details: serde_json::Value,
}

/// Writes the audit entry and the activity of a reload that ended with `outcome`.
pub async fn record<T, E: Display>(
    state: &AppState,
    principal: &Principal,
    ip: &str,
    reload: Reload<'_>,
    outcome: &Result<T, E>,
) {
    let actor = principal.actor();
    let error = outcome.as_ref().err().map(|e| e.to_string());
    audit(
        state,
        Some(actor.clone()),
        reload.audit_action,
        None,
        error.is_none(),
        ip,
        error.clone(),
    )
    .await;
    let text = match &error {
        None => format!("{} reloaded by {actor}", reload.what),
        Some(e) => format!(
            "{} reload by {actor} failed ({} stays in force): {e}",
            reload.what, reload.kept
        ),
    };
    let mut details = match reload.details {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => serde_json::Map::new(),
        other => serde_json::Map::from_iter([("details".to_owned(), other)]),
    };
    details.insert("ok".into(), error.is_none().into());
    details.insert("error".into(), error.into());
    palisade_alerts::Activities::new(state.store.clone(), Some(state.pipeline.live.clone()))
        .note(
            reload.activity_kind,
            Some(&actor),
            text,
            serde_json::Value::Object(details),
        )
        .await;
}
