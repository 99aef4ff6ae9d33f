//! Detection mode and paranoia: a WAF in detect-only mode reports attacks and lets
//! every one of them through; a threshold above the shipped default lets more through.

use async_trait::async_trait;
use palisade_core::severity::Severity;
use palisade_core::verdict::Mode;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// The check.
pub struct DetectionMode;

#[async_trait]
impl PostureCheck for DetectionMode {
    fn id(&self) -> &'static str {
        "detection_mode"
    }

    fn title(&self) -> &'static str {
        "Detection blocks attacks"
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let d = ctx.facts.detection();
        let checked = "the detection mode, paranoia level and anomaly threshold in force";
        let settings = format!(
            "mode {}, paranoia {}, threshold {}",
            d.mode.as_str(),
            d.paranoia,
            d.threshold
        );
        let finding = if d.mode == Mode::Detect {
            Finding::fail(
                checked,
                format!("detect-only mode ({settings}): attacks are reported but never blocked"),
                "set [detection] mode = \"block\" (or PUT /api/v1/detection/config with \
                 {\"mode\": \"block\"}) once the threats seen in detect mode are understood",
            )
        } else if d.threshold > d.default_threshold {
            Finding::warn(
                checked,
                format!(
                    "blocking, but the threshold {} is above the default {}: requests that \
                     match fewer or milder rules pass ({settings})",
                    d.threshold, d.default_threshold
                ),
                format!(
                    "lower [detection] threshold towards {} and handle false positives \
                     with rule exclusions instead",
                    d.default_threshold
                ),
            )
        } else {
            Finding::pass(checked, format!("blocking ({settings})"))
        };
        finding.with_detail(&d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::checks::testing::{Fixed, run};
    use palisade_core::posture::CheckStatus;

    #[tokio::test]
    async fn detect_only_fails_a_high_threshold_warns() {
        let mut f = Fixed::default();
        assert_eq!(
            run(&DetectionMode, &f, false).await.status,
            CheckStatus::Pass
        );
        f.detection.threshold = 20;
        let w = run(&DetectionMode, &f, false).await;
        assert_eq!(w.status, CheckStatus::Warn);
        assert!(w.found.contains("threshold 20"), "{}", w.found);
        f.detection.mode = Mode::Detect;
        let x = run(&DetectionMode, &f, false).await;
        assert_eq!(x.status, CheckStatus::Fail);
        assert!(x.fix.unwrap().contains("mode = \"block\""));
        assert_eq!(x.detail["mode"], "detect");
    }
}
