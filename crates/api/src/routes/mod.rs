//! One module per resource. [`routes`] is the single place where paths are bound to
//! handlers; the OpenAPI document lists the same handlers (see `openapi.rs`).

pub mod activities;
pub mod alert_rules;
pub mod alerts;
pub mod analytics;
pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod check;
pub mod dashboard;
pub mod dead_letters;
pub mod decisions;
pub mod detection_config;
pub mod devices;
pub mod docs;
pub mod events;
pub mod flows;
pub mod health;
pub mod ingest;
pub mod job_schedules;
pub mod jobs;
pub mod lapi;
pub mod live;
pub mod metrics;
pub mod models;
pub mod posture;
pub mod realtime;
pub mod reload;
pub mod reports;
pub mod scenarios;
pub mod secrets;
pub mod sources;
pub mod threats;
pub mod users;
pub mod vulnerabilities;

use axum::Router;
use axum::routing::{any, delete, get, patch, post, put};

use crate::AppState;
use crate::problem::Problem;

/// Every route of the service.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(dashboard::index))
        .route("/ui/{file}", get(dashboard::asset))
        .route("/ui/pages/{file}", get(dashboard::page_module))
        .route("/docs", get(docs::docs_page))
        .route("/docs/app.js", get(docs::docs_script))
        .route("/api/v1/openapi.json", get(docs::openapi_json))
        .route("/api/v1/health", get(health::health))
        .route("/api/v1/health/detailed", get(health::health_detailed))
        .route("/api/v1/models", get(models::list_models))
        .route("/api/v1/models/reload", post(models::reload_models))
        .route("/api/v1/events", get(events::list_events))
        .route("/api/v1/events/{id}", get(events::get_event))
        .route("/api/v1/dead-letters", get(dead_letters::list_dead_letters))
        .route("/api/v1/sources", get(sources::list_sources))
        .route("/api/v1/ingest", post(ingest::ingest))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/me", get(auth::me))
        .route("/api/v1/auth/password", post(auth::change_password))
        .route("/api/v1/auth/ws-ticket", post(auth::ws_ticket))
        .route("/api/v1/ws", get(live::ws))
        .route(
            "/api/v1/users",
            get(users::list_users).post(users::create_user),
        )
        .route(
            "/api/v1/users/{id}",
            patch(users::update_user).delete(users::delete_user),
        )
        .route(
            "/api/v1/api-keys",
            get(api_keys::list_api_keys).post(api_keys::create_api_key),
        )
        .route("/api/v1/api-keys/{id}", delete(api_keys::revoke_api_key))
        .route("/api/v1/secrets", get(secrets::list_secrets))
        .route(
            "/api/v1/secrets/{name}",
            put(secrets::put_secret).delete(secrets::delete_secret),
        )
        .route("/api/v1/audit", get(audit::list_audit))
        .route("/api/v1/check", any(check::check))
        .route("/api/v1/check/request", post(check::check_json))
        .route("/api/v1/check/{*path}", any(check::check))
        .route("/api/v1/threats", get(threats::list_threats))
        .route("/api/v1/threats/stats", get(threats::threat_stats))
        .route("/api/v1/threats/{id}", get(threats::get_threat))
        .route(
            "/api/v1/detection/config",
            get(detection_config::get_config).put(detection_config::put_config),
        )
        .route("/api/v1/detection/rules", get(detection_config::get_rules))
        .route("/api/v1/scenarios", get(scenarios::list))
        .route(
            "/api/v1/detection/rules/reload",
            post(detection_config::reload_rules),
        )
        .route(
            "/api/v1/decisions",
            get(decisions::list_decisions).post(decisions::create_decision),
        )
        .route(
            "/api/v1/decisions/{id}",
            get(decisions::get_decision).delete(decisions::delete_decision),
        )
        .route("/api/v1/jobs", get(jobs::list_jobs).post(jobs::submit_job))
        .route("/api/v1/jobs/kinds", get(jobs::list_kinds))
        .route("/api/v1/jobs/logs", delete(jobs::delete_finished_logs))
        .route(
            "/api/v1/jobs/schedules",
            get(job_schedules::list_schedules).post(job_schedules::create_schedule),
        )
        .route(
            "/api/v1/jobs/schedules/{id}",
            get(job_schedules::get_schedule)
                .put(job_schedules::put_schedule)
                .delete(job_schedules::delete_schedule),
        )
        .route("/api/v1/jobs/{id}", get(jobs::get_job))
        .route("/api/v1/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/api/v1/jobs/{id}/retry", post(jobs::retry_job))
        .route(
            "/api/v1/jobs/{id}/logs",
            get(jobs::job_logs).delete(jobs::delete_job_logs),
        )
        .route("/api/v1/jobs/{id}/output", get(jobs::job_output))
        .route("/api/v1/assets", get(assets::list_assets))
        .route("/api/v1/assets/{name}", get(assets::get_asset))
        .route(
            "/api/v1/assets/{name}/inventory",
            post(assets::upload_inventory),
        )
        .route(
            "/api/v1/vulnerabilities",
            get(vulnerabilities::list_vulnerabilities),
        )
        .route(
            "/api/v1/vulnerabilities/{id}",
            get(vulnerabilities::get_vulnerability).patch(vulnerabilities::update_vulnerability),
        )
        .route("/api/v1/cves/{id}", get(vulnerabilities::get_cve))
        .route(
            "/api/v1/reports",
            get(reports::list_reports).post(reports::create_report),
        )
        .route("/api/v1/reports/{id}", get(reports::get_report))
        .route("/v1/decisions/stream", get(lapi::decisions_stream))
        .route("/v1/decisions", get(lapi::decisions_lookup))
        .route("/api/v1/metrics/realtime", get(realtime::realtime))
        .route("/api/v1/analytics/timeseries", get(analytics::timeseries))
        .route("/api/v1/analytics/overview", get(analytics::overview))
        .route("/api/v1/analytics/trends", get(analytics::trends))
        .route("/api/v1/analytics/top", get(analytics::top))
        .route("/api/v1/posture", get(posture::view))
        .route("/api/v1/posture/run", post(posture::run_all))
        .route("/api/v1/posture/checks/{id}/run", post(posture::run_one))
        .route("/api/v1/alerts", get(alerts::list_alerts))
        .route("/api/v1/alerts/{id}", get(alerts::get_alert))
        .route("/api/v1/alerts/{id}/acknowledge", post(alerts::acknowledge))
        .route("/api/v1/alerts/{id}/resolve", post(alerts::resolve))
        .route("/api/v1/alerts/{id}/dismiss", post(alerts::dismiss))
        .route(
            "/api/v1/alert-rules",
            get(alert_rules::list_rules).post(alert_rules::create_rule),
        )
        .route(
            "/api/v1/alert-rules/{id}",
            get(alert_rules::get_rule)
                .put(alert_rules::update_rule)
                .delete(alert_rules::delete_rule),
        )
        .route(
            "/api/v1/channels",
            get(channels::list_channels).post(channels::create_channel),
        )
        .route(
            "/api/v1/channels/{id}",
            get(channels::get_channel)
                .put(channels::update_channel)
                .delete(channels::delete_channel),
        )
        .route("/api/v1/channels/{id}/test", post(channels::test_channel))
        .route("/api/v1/activities", get(activities::list_activities))
        .route("/api/v1/flows", get(flows::list_flows))
        .route("/api/v1/flows/{id}", get(flows::get_flow))
        .route("/api/v1/sources/{name}/pause", post(sources::pause_source))
        .route(
            "/api/v1/sources/{name}/resume",
            post(sources::resume_source),
        )
        .route("/api/v1/flows/analytics", get(flows::flow_analytics))
        .route("/api/v1/devices", get(devices::list_devices))
        .route("/api/v1/devices/{id}", get(devices::get_device))
}

/// Unknown paths get a problem document too, not an empty body.
pub async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("no route for {}", uri.path()))
}

/// A known path with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method) -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on this path"),
    )
}
