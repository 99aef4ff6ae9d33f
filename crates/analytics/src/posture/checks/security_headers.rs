//! The protected applications' security headers, as the protecting proxy sees their
//! answers: `Strict-Transport-Security` (browsers keep to HTTPS), a
//! `Content-Security-Policy` on HTML pages (limits what an injected script can do) and
//! `X-Content-Type-Options: nosniff` (no content sniffing into script).

use async_trait::async_trait;
use palisade_core::severity::Severity;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// The check.
pub struct SecurityHeaders;

fn share(n: u64, of: u64) -> String {
    let pct = if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    };
    format!("{n} of {of} ({pct:.0}%)")
}

#[async_trait]
impl PostureCheck for SecurityHeaders {
    fn id(&self) -> &'static str {
        "security_headers"
    }

    fn title(&self) -> &'static str {
        "Protected applications send security headers"
    }

    fn severity(&self) -> Severity {
        Severity::Warning
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let checked = "Strict-Transport-Security, Content-Security-Policy (HTML) and \
                       X-Content-Type-Options on the responses each protecting proxy relayed";
        let apps = ctx.facts.applications();
        if apps.is_empty() {
            return Finding::not_applicable(
                checked,
                "no protecting proxy is configured: Palisade sees no application response",
            );
        }
        if apps.iter().all(|a| a.responses == 0) {
            return Finding::not_applicable(checked, "no response relayed yet since the start")
                .with_detail(&apps);
        }
        let mut missing = Vec::new();
        for a in apps.iter().filter(|a| a.responses > 0) {
            let mut lacks = Vec::new();
            if a.missing_hsts > 0 {
                lacks.push(format!(
                    "Strict-Transport-Security on {}",
                    share(a.missing_hsts, a.responses)
                ));
            }
            if a.missing_csp > 0 {
                lacks.push(format!(
                    "Content-Security-Policy on {} HTML pages",
                    share(a.missing_csp, a.html_responses)
                ));
            }
            if a.missing_nosniff > 0 {
                lacks.push(format!(
                    "X-Content-Type-Options: nosniff on {}",
                    share(a.missing_nosniff, a.responses)
                ));
            }
            if !lacks.is_empty() {
                missing.push(format!("{}: no {}", a.application, lacks.join(", no ")));
            }
        }
        let finding = if missing.is_empty() {
            Finding::pass(checked, "every relayed response carried the headers")
        } else {
            Finding::fail(
                checked,
                missing.join("; "),
                "add the headers in the application or its web server, e.g. nginx: \
                 add_header Strict-Transport-Security \"max-age=31536000\" always; \
                 add_header Content-Security-Policy \"default-src 'self'\" always; \
                 add_header X-Content-Type-Options nosniff always;",
            )
        };
        finding.with_detail(&apps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::checks::testing::{Fixed, run};
    use crate::posture::facts::AppObservation;
    use palisade_core::posture::CheckStatus;

    pub(crate) fn app(responses: u64, hsts: u64, csp: u64, nosniff: u64) -> AppObservation {
        AppObservation {
            application: "shop".into(),
            upstream: "127.0.0.1:3000".into(),
            responses,
            html_responses: responses / 2,
            missing_hsts: hsts,
            missing_csp: csp,
            missing_nosniff: nosniff,
            banners: Vec::new(),
        }
    }

    #[tokio::test]
    async fn missing_headers_are_named_per_application() {
        let mut f = Fixed::default();
        assert_eq!(
            run(&SecurityHeaders, &f, false).await.status,
            CheckStatus::NotApplicable
        );
        f.applications = vec![app(0, 0, 0, 0)];
        assert_eq!(
            run(&SecurityHeaders, &f, false).await.status,
            CheckStatus::NotApplicable
        );
        f.applications = vec![app(10, 0, 0, 0)];
        assert_eq!(
            run(&SecurityHeaders, &f, false).await.status,
            CheckStatus::Pass
        );
        f.applications = vec![app(10, 10, 5, 0)];
        let x = run(&SecurityHeaders, &f, false).await;
        assert_eq!(x.status, CheckStatus::Fail);
        assert!(
            x.found
                .contains("shop: no Strict-Transport-Security on 10 of 10 (100%)")
                && x.found.contains("Content-Security-Policy on 5 of 5"),
            "{}",
            x.found
        );
        assert!(!x.found.contains("nosniff"));
    }
}
