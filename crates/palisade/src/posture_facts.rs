//! The facts the posture checks look at, gathered from the components this binary
//! composes (the detection holder, the settings with their retention periods, the key
//! files, the protecting proxies' response observations). The analytics crate only sees the
//! [`PostureFacts`] trait, so it depends on none of them.

use std::sync::Arc;

use palisade_analytics::AnalyticsConfig;
use palisade_analytics::PostureFacts;
use palisade_analytics::posture::facts::{
    AppObservation, Banner, DetectionFacts, KeyFileFacts, ListenerFacts, RetentionFacts, RulesFacts,
};
use palisade_detect::EngineConfig;
use palisade_pipeline::detection::Detection;
use palisade_proxy::ProxyObservations;

use crate::config::Settings;

/// The service's facts, read live at each check run.
pub struct ServiceFacts {
    detection: Arc<Detection>,
    key_files: Vec<KeyFileFacts>,
    listeners: Vec<ListenerFacts>,
    retention: Vec<RetentionFacts>,
    proxies: Vec<ProxyObservations>,
    models: Option<Arc<palisade_models::ModelSlot>>,
}

impl ServiceFacts {
    /// The facts of a service started with `settings`, whose proxies are `proxies`.
    pub fn new(
        settings: &Settings,
        analytics: &AnalyticsConfig,
        detection: Arc<Detection>,
        proxies: Vec<ProxyObservations>,
    ) -> ServiceFacts {
        let auth = &settings.auth;
        let key_files = vec![
            KeyFileFacts {
                name: "JWT signing key".into(),
                path: auth.jwt_key_file.clone(),
                from_environment: auth.jwt_key.is_some(),
            },
            KeyFileFacts {
                name: "secrets keyring".into(),
                path: auth.secrets_key_file.clone(),
                // The keyring file stays in use beside a key from the environment (it
                // holds the older keys).
                from_environment: false,
            },
        ];
        let mut listeners = vec![ListenerFacts {
            name: "api".into(),
            address: settings.listen,
            http: true,
        }];
        for p in &settings.proxies {
            listeners.push(ListenerFacts {
                name: format!("proxy {}", p.name),
                address: p.listen,
                http: true,
            });
        }
        for s in &settings.syslog {
            for address in [s.udp, s.tcp].into_iter().flatten() {
                listeners.push(ListenerFacts {
                    name: format!("syslog {}", s.name),
                    address,
                    http: false,
                });
            }
        }
        // Enforced by the retention_cleanup job (on its schedule); a period left unset
        // keeps that data for good, and the check says so.
        let kept = &settings.jobs.retention;
        let retention = vec![
            RetentionFacts {
                data: "analytics minute roll-ups".into(),
                period: Some(analytics.minute_retention),
                key: Some("analytics.minute_retention".into()),
            },
            RetentionFacts {
                data: "analytics hour roll-ups".into(),
                period: Some(analytics.hour_retention),
                key: Some("analytics.hour_retention".into()),
            },
            RetentionFacts {
                data: "posture history".into(),
                period: Some(analytics.posture_history),
                key: Some("analytics.posture_history".into()),
            },
            RetentionFacts {
                data: "events".into(),
                period: kept.events,
                key: Some("jobs.retention.events".into()),
            },
            RetentionFacts {
                data: "dead letters".into(),
                period: kept.dead_letters,
                key: Some("jobs.retention.dead_letters".into()),
            },
            RetentionFacts {
                data: "threats".into(),
                period: kept.threats,
                key: Some("jobs.retention.threats".into()),
            },
            RetentionFacts {
                data: "audit log".into(),
                period: kept.audit,
                key: Some("jobs.retention.audit".into()),
            },
            RetentionFacts {
                data: "finished jobs".into(),
                period: kept.jobs,
                key: Some("jobs.retention.jobs".into()),
            },
        ];
        ServiceFacts {
            detection,
            key_files,
            listeners,
            retention,
            proxies,
            models: None,
        }
    }
}

impl ServiceFacts {
    /// The facts with the request model slot the guard uses (for `models_loaded`).
    pub fn with_models(mut self, slot: Option<Arc<palisade_models::ModelSlot>>) -> ServiceFacts {
        self.models = slot;
        self
    }
}

impl PostureFacts for ServiceFacts {
    fn models(&self) -> Option<Vec<palisade_analytics::posture::facts::ModelFacts>> {
        let slot = self.models.as_ref()?;
        let st = slot.status();
        if st.source == "disabled" {
            return Some(Vec::new());
        }
        Some(vec![palisade_analytics::posture::facts::ModelFacts {
            name: st.name,
            version: st.version,
            loaded: st.loaded,
            // The model file records no training date (so it is reproducible byte for
            // byte); staleness is not judged.
            trained_at: None,
            error: if st.loaded { None } else { st.error },
        }])
    }

    fn detection(&self) -> DetectionFacts {
        let tuning = self.detection.config();
        DetectionFacts {
            mode: tuning.mode,
            paranoia: tuning.paranoia,
            threshold: tuning.threshold,
            default_threshold: EngineConfig::default().threshold,
        }
    }

    fn rules(&self) -> RulesFacts {
        let status = self.detection.rules_status();
        RulesFacts {
            rules: status.rules,
            active: status.active,
            directory: status.directory,
            error: status.error,
        }
    }

    fn key_files(&self) -> Vec<KeyFileFacts> {
        self.key_files.clone()
    }

    fn listeners(&self) -> Vec<ListenerFacts> {
        self.listeners.clone()
    }

    fn retention(&self) -> Vec<RetentionFacts> {
        self.retention.clone()
    }

    fn applications(&self) -> Vec<AppObservation> {
        self.proxies
            .iter()
            .map(|p| {
                let seen = p.responses.snapshot();
                AppObservation {
                    application: p.name.clone(),
                    upstream: p.upstream.clone(),
                    responses: seen.responses,
                    html_responses: seen.html_responses,
                    missing_hsts: seen.missing_hsts,
                    missing_csp: seen.missing_csp,
                    missing_nosniff: seen.missing_nosniff,
                    banners: seen
                        .banners
                        .into_iter()
                        .map(|b| Banner {
                            header: b.header.to_owned(),
                            value: b.value,
                            seen: b.seen,
                        })
                        .collect(),
                }
            })
            .collect()
    }
}
