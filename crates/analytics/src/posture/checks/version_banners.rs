//! Version banners in `Server` and `X-Powered-By`: an exact version tells an attacker
//! which exploits to try, for free.

use async_trait::async_trait;
use palisade_core::severity::Severity;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// The check.
pub struct VersionBanners;

/// Whether a banner gives a version away (`nginx/1.18.0`, `PHP/8.1.2`, `Express 4`).
fn has_version(value: &str) -> bool {
    value.bytes().any(|b| b.is_ascii_digit())
}

#[async_trait]
impl PostureCheck for VersionBanners {
    fn id(&self) -> &'static str {
        "version_banners"
    }

    fn title(&self) -> &'static str {
        "Protected applications hide their versions"
    }

    fn severity(&self) -> Severity {
        Severity::Notice
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let checked = "the Server and X-Powered-By headers of the responses each protecting \
                       proxy relayed";
        let apps = ctx.facts.applications();
        if apps.is_empty() {
            return Finding::not_applicable(
                checked,
                "no protecting proxy is configured: Palisade sees no application response",
            );
        }
        if apps.iter().all(|a| a.responses == 0) {
            return Finding::not_applicable(checked, "no response relayed yet since the start");
        }
        let leaks: Vec<String> = apps
            .iter()
            .flat_map(|a| {
                a.banners
                    .iter()
                    .filter(|b| has_version(&b.value))
                    .map(move |b| format!("{}: {}: {}", a.application, b.header, b.value))
            })
            .collect();
        let finding = if leaks.is_empty() {
            Finding::pass(checked, "no version in any banner")
        } else {
            Finding::fail(
                checked,
                format!("versions given away: {}", leaks.join("; ")),
                "hide them: nginx server_tokens off; Apache ServerTokens Prod; PHP \
                 expose_php = Off; Express app.disable('x-powered-by')",
            )
        };
        let banners: Vec<_> = apps
            .iter()
            .map(|a| (a.application.as_str(), &a.banners))
            .collect();
        finding.with_detail(&banners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::checks::testing::{Fixed, run};
    use crate::posture::facts::{AppObservation, Banner};
    use palisade_core::posture::CheckStatus;

    #[tokio::test]
    async fn versions_in_banners_fail() {
        let mut f = Fixed::default();
        let banner = |header: &str, value: &str| Banner {
            header: header.into(),
            value: value.into(),
            seen: 3,
        };
        f.applications = vec![AppObservation {
            application: "shop".into(),
            upstream: "127.0.0.1:3000".into(),
            responses: 3,
            html_responses: 0,
            missing_hsts: 0,
            missing_csp: 0,
            missing_nosniff: 0,
            banners: vec![banner("Server", "nginx")],
        }];
        assert_eq!(
            run(&VersionBanners, &f, false).await.status,
            CheckStatus::Pass
        );
        f.applications[0]
            .banners
            .push(banner("X-Powered-By", "PHP/8.1.2"));
        let x = run(&VersionBanners, &f, false).await;
        assert_eq!(x.status, CheckStatus::Fail);
        assert!(
            x.found.contains("shop: X-Powered-By: PHP/8.1.2"),
            "{}",
            x.found
        );
        assert!(!x.found.contains("nginx"));
    }
}
