//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::OpenApi;

use crate::routes;

/// The API's description. Every route in `routes::routes` is listed here; a test in
/// `tests/openapi.rs` checks that the two agree.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Palisade API",
        description = "Self-hosted security monitoring: ingest, detection, alerts and live views.",
        license(name = "Apache-2.0")
    ),
    paths(
        routes::health::livez,
        routes::dashboard::index,
        routes::dashboard::asset,
        routes::dashboard::page_module,
        routes::health::readyz,
        routes::health::health,
        routes::health::health_detailed,
        routes::metrics::metrics,
        routes::events::list_events,
        routes::events::get_event,
        routes::dead_letters::list_dead_letters,
        routes::sources::list_sources,
        routes::sources::pause_source,
        routes::sources::resume_source,
        routes::ingest::ingest,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::me,
        routes::auth::change_password,
        routes::auth::ws_ticket,
        routes::users::list_users,
        routes::users::create_user,
        routes::users::update_user,
        routes::users::delete_user,
        routes::api_keys::list_api_keys,
        routes::api_keys::create_api_key,
        routes::api_keys::revoke_api_key,
        routes::secrets::list_secrets,
        routes::secrets::put_secret,
        routes::secrets::delete_secret,
        routes::audit::list_audit,
        routes::check::check,
        routes::check::check_json,
        routes::threats::list_threats,
        routes::threats::get_threat,
        routes::threats::threat_stats,
        routes::live::ws,
        routes::detection_config::get_config,
        routes::detection_config::put_config,
        routes::detection_config::get_rules,
        routes::detection_config::reload_rules,
        routes::models::list_models,
        routes::models::reload_models,
        routes::scenarios::list,
        routes::decisions::list_decisions,
        routes::decisions::create_decision,
        routes::decisions::get_decision,
        routes::decisions::delete_decision,
        routes::jobs::list_kinds,
        routes::jobs::submit_job,
        routes::jobs::list_jobs,
        routes::jobs::get_job,
        routes::jobs::cancel_job,
        routes::jobs::retry_job,
        routes::jobs::job_logs,
        routes::jobs::job_output,
        routes::jobs::delete_job_logs,
        routes::jobs::delete_finished_logs,
        routes::job_schedules::list_schedules,
        routes::job_schedules::create_schedule,
        routes::job_schedules::get_schedule,
        routes::job_schedules::put_schedule,
        routes::job_schedules::delete_schedule,
        routes::assets::list_assets,
        routes::assets::get_asset,
        routes::assets::upload_inventory,
        routes::vulnerabilities::list_vulnerabilities,
        routes::vulnerabilities::get_vulnerability,
        routes::vulnerabilities::update_vulnerability,
        routes::vulnerabilities::get_cve,
        routes::reports::create_report,
        routes::reports::list_reports,
        routes::reports::get_report,
        routes::lapi::decisions_stream,
        routes::lapi::decisions_lookup,
        routes::realtime::realtime,
        routes::analytics::timeseries,
        routes::analytics::overview,
        routes::analytics::trends,
        routes::analytics::top,
        routes::posture::view,
        routes::posture::run_all,
        routes::posture::run_one,
        routes::alerts::list_alerts,
        routes::alerts::get_alert,
        routes::alerts::acknowledge,
        routes::alerts::resolve,
        routes::alerts::dismiss,
        routes::alert_rules::list_rules,
        routes::alert_rules::get_rule,
        routes::alert_rules::create_rule,
        routes::alert_rules::update_rule,
        routes::alert_rules::delete_rule,
        routes::channels::list_channels,
        routes::channels::get_channel,
        routes::channels::create_channel,
        routes::channels::update_channel,
        routes::channels::delete_channel,
        routes::channels::test_channel,
        routes::activities::list_activities,
        routes::flows::list_flows,
        routes::flows::get_flow,
        routes::flows::flow_analytics,
        routes::devices::list_devices,
        routes::devices::get_device,
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::problem::Problem, crate::problem::InvalidParam)),
    tags(
        (name = "events", description = "Stored events"),
        (name = "ingest", description = "Getting data in: push, sources, dead letters"),
        (name = "health", description = "Liveness, readiness, health and metrics"),
        (name = "auth", description = "Login, tokens, sessions"),
        (name = "users", description = "User management (admin)"),
        (name = "api-keys", description = "API keys for sensors and proxies (admin)"),
        (name = "secrets", description = "Encrypted secrets (admin)"),
        (name = "audit", description = "Audit log (admin)"),
        (name = "detection", description = "Decisions for reverse proxies"),
        (name = "models", description = "The request models: status and reload"),
        (name = "live", description = "The live feed (WebSocket)"),
        (name = "decisions", description = "IP decisions: bans and allow-list entries"),
        (name = "jobs", description = "The job queue: kinds, jobs, logs, outputs, schedules"),
        (name = "vulnerabilities", description = "Assets, software inventories, CVE matches and their triage"),
        (name = "reports", description = "Vulnerability reports and security summaries (JSON, CSV, HTML)"),
        (name = "crowdsec", description = "CrowdSec Local API for bouncers (X-Api-Key with the bouncer scope)"),
        (name = "analytics", description = "Real-time figures, chart series, overviews, trends and top lists"),
        (name = "posture", description = "Security posture checks and the compliance score"),
        (name = "alerts", description = "Alerts, alert rules, notification channels and the activity feed"),
        (name = "dashboard", description = "The built-in web dashboard (embedded page and modules)"),
        (name = "flows", description = "Network flows read from packet captures, the device inventory and flow analytics"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer scheme (a JWT access token or an API key) and requires it on
/// every operation except the open ones (see `auth::policy`).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or API key")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bouncer_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "An API key with the bouncer scope, as CrowdSec bouncers send it",
            ))),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in [
                ("GET", item.get.as_mut()),
                ("POST", item.post.as_mut()),
                ("PUT", item.put.as_mut()),
                ("PATCH", item.patch.as_mut()),
                ("DELETE", item.delete.as_mut()),
            ] {
                let Some(op) = op else { continue };
                let m = axum::http::Method::from_bytes(method.as_bytes())
                    .unwrap_or(axum::http::Method::GET);
                match crate::auth::policy::access(&m, path) {
                    Some(crate::auth::policy::Access::Open) => {
                        op.security = Some(vec![SecurityRequirement::default()]);
                    }
                    Some(crate::auth::policy::Access::Bouncer) => {
                        op.security = Some(vec![SecurityRequirement::new(
                            "bouncer_key",
                            Vec::<String>::new(),
                        )]);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc.to_json().unwrap_or_else(|_| "{}".to_owned())
    })
}
