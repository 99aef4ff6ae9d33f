//! The posture checks, one per file, each implementing
//! [`PostureCheck`](super::PostureCheck). A new check is a new file here and one line
//! in [`all`].

mod detection_mode;
mod key_files;
mod models_loaded;
mod public_listener;
mod retention;
mod rules_loaded;
mod security_headers;
mod stale_credentials;
mod version_banners;
mod vulnerable_software;

use std::sync::Arc;

use super::PostureCheck;

/// Every check, in the order they run and are listed.
pub fn all() -> Vec<Arc<dyn PostureCheck>> {
    vec![
        Arc::new(detection_mode::DetectionMode),
        Arc::new(rules_loaded::RulesLoaded),
        Arc::new(models_loaded::ModelsLoaded),
        Arc::new(stale_credentials::StaleCredentials),
        Arc::new(key_files::KeyFiles),
        Arc::new(public_listener::PublicListener),
        Arc::new(retention::Retention),
        Arc::new(security_headers::SecurityHeaders),
        Arc::new(version_banners::VersionBanners),
        Arc::new(vulnerable_software::VulnerableSoftware),
    ]
}

#[cfg(test)]
pub(crate) mod testing {
    //! Facts to test checks with.

    use std::net::SocketAddr;

    use palisade_core::Timestamp;
    use palisade_core::duration::Span;
    use palisade_core::verdict::Mode;

    use crate::posture::facts::*;
    use crate::posture::{CheckContext, Finding, PostureCheck};

    /// Runs `check` over `facts` with a fresh SQLite store.
    pub async fn run(check: &dyn PostureCheck, facts: &Fixed, tls_in_front: bool) -> Finding {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://t.db", dir.path()).unwrap();
        store.migrate().await.unwrap();
        let ctx = CheckContext {
            facts,
            store: &store,
            now: Timestamp::now(),
            stale_after: Span::from_secs(90 * 86_400),
            tls_in_front,
        };
        check.run(&ctx).await
    }

    /// Facts set field by field.
    #[derive(Clone)]
    pub struct Fixed {
        pub detection: DetectionFacts,
        pub rules: RulesFacts,
        pub models: Option<Vec<ModelFacts>>,
        pub key_files: Vec<KeyFileFacts>,
        pub listeners: Vec<ListenerFacts>,
        pub retention: Vec<RetentionFacts>,
        pub applications: Vec<AppObservation>,
    }

    impl Default for Fixed {
        fn default() -> Self {
            Fixed {
                detection: DetectionFacts {
                    mode: Mode::Block,
                    paranoia: 1,
                    threshold: 5,
                    default_threshold: 5,
                },
                rules: RulesFacts {
                    rules: 120,
                    active: 100,
                    directory: None,
                    error: None,
                },
                models: None,
                key_files: Vec::new(),
                listeners: vec![ListenerFacts {
                    name: "api".into(),
                    address: "127.0.0.1:8080".parse::<SocketAddr>().unwrap(),
                    http: true,
                }],
                retention: Vec::new(),
                applications: Vec::new(),
            }
        }
    }

    impl PostureFacts for Fixed {
        fn detection(&self) -> DetectionFacts {
            self.detection.clone()
        }
        fn rules(&self) -> RulesFacts {
            self.rules.clone()
        }
        fn models(&self) -> Option<Vec<ModelFacts>> {
            self.models.clone()
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
            self.applications.clone()
        }
    }
}
