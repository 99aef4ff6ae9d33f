//! Retention is set for every kind of data: without it the database grows until the
//! disk is full, and keeps personal data (addresses, paths) longer than needed.

use async_trait::async_trait;
use palisade_core::severity::Severity;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// The check.
pub struct Retention;

#[async_trait]
impl PostureCheck for Retention {
    fn id(&self) -> &'static str {
        "retention"
    }

    fn title(&self) -> &'static str {
        "Retention is set for stored data"
    }

    fn severity(&self) -> Severity {
        Severity::Warning
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let checked = "the retention period of each kind of stored data";
        let all = ctx.facts.retention();
        if all.is_empty() {
            return Finding::not_applicable(checked, "no stored data is reported");
        }
        let unbounded: Vec<&str> = all
            .iter()
            .filter(|r| r.period.is_none())
            .map(|r| r.data.as_str())
            .collect();
        let finding = if unbounded.is_empty() {
            let kept: Vec<String> = all
                .iter()
                .filter_map(|r| r.period.map(|p| format!("{} {p}", r.data)))
                .collect();
            Finding::pass(checked, format!("kept for: {}", kept.join(", ")))
        } else {
            let keys: Vec<String> = all
                .iter()
                .filter(|r| r.period.is_none())
                .map(|r| match &r.key {
                    Some(k) => format!("set {k}"),
                    None => format!("{}: no retention exists for it in this build", r.data),
                })
                .collect();
            Finding::warn(
                checked,
                format!("kept for good: {}", unbounded.join(", ")),
                format!("{} (e.g. 30d)", keys.join("; ")),
            )
        };
        finding.with_detail(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::checks::testing::{Fixed, run};
    use crate::posture::facts::RetentionFacts;
    use palisade_core::duration::Span;
    use palisade_core::posture::CheckStatus;

    #[tokio::test]
    async fn data_kept_for_good_is_named_with_its_key() {
        let mut f = Fixed::default();
        assert_eq!(
            run(&Retention, &f, false).await.status,
            CheckStatus::NotApplicable
        );
        f.retention = vec![
            RetentionFacts {
                data: "analytics minute roll-ups".into(),
                period: Some(Span::from_secs(7 * 86_400)),
                key: Some("analytics.minute_retention".into()),
            },
            RetentionFacts {
                data: "events".into(),
                period: None,
                key: Some("jobs.retention.events".into()),
            },
        ];
        let x = run(&Retention, &f, false).await;
        assert_eq!(x.status, CheckStatus::Warn);
        assert_eq!(x.found, "kept for good: events");
        assert!(x.fix.unwrap().contains("set jobs.retention.events"));
        f.retention[1].period = Some(Span::from_secs(30 * 86_400));
        let x = run(&Retention, &f, false).await;
        assert_eq!(x.status, CheckStatus::Pass);
        assert!(x.found.contains("events 30d"), "{}", x.found);
    }
}
