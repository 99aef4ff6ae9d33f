//! The signature rules are loaded without errors: a rule file that fails to load keeps
//! the previous rules in force, silently out of date until someone looks.

use async_trait::async_trait;
use palisade_core::severity::Severity;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// The check.
pub struct RulesLoaded;

#[async_trait]
impl PostureCheck for RulesLoaded {
    fn id(&self) -> &'static str {
        "rules_loaded"
    }

    fn title(&self) -> &'static str {
        "Detection rules load without errors"
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let r = ctx.facts.rules();
        let checked = "the rule set in force and the last reload of the rule directory";
        let source = r.directory.as_deref().map_or_else(
            || "the built-in rules".to_owned(),
            |d| format!("built-in rules and {d}"),
        );
        let finding = if let Some(error) = &r.error {
            Finding::fail(
                checked,
                format!(
                    "the last reload failed ({error}); the {} rules loaded before stay in force",
                    r.rules
                ),
                "fix the rule file named in the error (see GET /api/v1/detection/rules), then \
                 POST /api/v1/detection/rules/reload",
            )
        } else if r.active == 0 {
            Finding::fail(
                checked,
                format!("no rule is active ({} loaded from {source})", r.rules),
                "check [detection] paranoia and the rule files' paranoia levels",
            )
        } else {
            Finding::pass(
                checked,
                format!(
                    "{} rules loaded from {source}, {} active",
                    r.rules, r.active
                ),
            )
        };
        finding.with_detail(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::checks::testing::{Fixed, run};
    use palisade_core::posture::CheckStatus;

    #[tokio::test]
    async fn a_failed_reload_or_no_active_rule_fails() {
        let mut f = Fixed::default();
        assert_eq!(run(&RulesLoaded, &f, false).await.status, CheckStatus::Pass);
        f.rules.error = Some("custom.toml: line 3: unknown field `pattren`".into());
        let x = run(&RulesLoaded, &f, false).await;
        assert_eq!(x.status, CheckStatus::Fail);
        assert!(x.found.contains("pattren"), "{}", x.found);
        f.rules.error = None;
        f.rules.active = 0;
        assert_eq!(run(&RulesLoaded, &f, false).await.status, CheckStatus::Fail);
    }
}
