//! ML models are loaded (and not stale) when they exist. Palisade has no models
//! component yet: [`PostureFacts::models`](crate::posture::PostureFacts::models)
//! answers `None` and the check is "not applicable" until it lands.

use async_trait::async_trait;
use palisade_core::severity::Severity;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// A model older than this is stale: traffic drifts.
const STALE_DAYS: i64 = 180;

/// The check.
pub struct ModelsLoaded;

#[async_trait]
impl PostureCheck for ModelsLoaded {
    fn id(&self) -> &'static str {
        "models_loaded"
    }

    fn title(&self) -> &'static str {
        "ML models are loaded and fresh"
    }

    fn severity(&self) -> Severity {
        Severity::Error
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let checked = "every configured ML model: loaded, and trained within 180 days";
        let Some(models) = ctx.facts.models() else {
            return Finding::not_applicable(
                checked,
                "this build has no ML models component; the check applies once it ships",
            );
        };
        if models.is_empty() {
            return Finding::not_applicable(checked, "no model is configured");
        }
        let broken: Vec<String> = models
            .iter()
            .filter(|m| !m.loaded)
            .map(|m| {
                format!(
                    "{} ({})",
                    m.name,
                    m.error.as_deref().unwrap_or("not loaded")
                )
            })
            .collect();
        let cutoff = ctx.now.add_micros(-STALE_DAYS * 86_400_000_000);
        let stale: Vec<String> = models
            .iter()
            .filter(|m| m.loaded && m.trained_at.is_some_and(|t| t < cutoff))
            .map(|m| m.name.clone())
            .collect();
        let finding = if !broken.is_empty() {
            Finding::fail(
                checked,
                format!("not loaded: {}", broken.join(", ")),
                "fix the model files named (palisade train writes new ones) and restart",
            )
        } else if !stale.is_empty() {
            Finding::warn(
                checked,
                format!(
                    "trained more than {STALE_DAYS} days ago: {}",
                    stale.join(", ")
                ),
                "retrain on recent labelled traffic (palisade train) and reload",
            )
        } else {
            Finding::pass(
                checked,
                format!("{} model(s) loaded and fresh", models.len()),
            )
        };
        finding.with_detail(&models)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::checks::testing::{Fixed, run};
    use crate::posture::facts::ModelFacts;
    use palisade_core::Timestamp;
    use palisade_core::posture::CheckStatus;

    #[tokio::test]
    async fn not_applicable_until_models_exist_then_checked() {
        let mut f = Fixed::default();
        assert_eq!(
            run(&ModelsLoaded, &f, false).await.status,
            CheckStatus::NotApplicable
        );
        let model = |loaded, days_old: i64| ModelFacts {
            name: "threat".into(),
            version: Some("3".into()),
            loaded,
            trained_at: Some(Timestamp::now().add_micros(-days_old * 86_400_000_000)),
            error: (!loaded).then(|| "bad magic".into()),
        };
        f.models = Some(vec![model(true, 3)]);
        assert_eq!(
            run(&ModelsLoaded, &f, false).await.status,
            CheckStatus::Pass
        );
        f.models = Some(vec![model(true, 400)]);
        assert_eq!(
            run(&ModelsLoaded, &f, false).await.status,
            CheckStatus::Warn
        );
        f.models = Some(vec![model(false, 3)]);
        let x = run(&ModelsLoaded, &f, false).await;
        assert_eq!(x.status, CheckStatus::Fail);
        assert!(x.found.contains("bad magic"));
    }
}
