//! Palisade's vulnerability engine: CVE feeds, software inventories, CPE/version
//! matching and reports.
//!
//! ```text
//!  NVD API 2.0 ──► nvd (paged, rate-limited, resumable) ─┐
//!  NVD pages on disk ──► nvd::import_files ──────────────┼─► VulnStore (CVEs + product index)
//!  CIRCL ──► circl (CVE 5 / cve-search records) ─────────┘            │
//!                                                                    ▼
//!  uploads (CycloneDX, SPDX, dpkg, rpm) ─► inventory ─┐        matching: identify
//!  proxy answers, SSH banners, syslog ─► observe ─────┼─► software ─► applicability ─► matches
//!                                                     │      (per asset)      │
//!                                                     └──────────────────────►├─► threats (critical)
//!                                                                             └─► report
//! ```
//!
//! The long-running work is exposed as plain async functions taking a [`TaskContext`]
//! (a progress callback and a cancellation check), so that the job queue can run them
//! as job kinds: [`fetch_nvd`], [`fetch_circl`], [`import_files`], [`run_matching`],
//! [`generate_report`]. [`upload_inventory`] is what the inventory upload endpoint runs.
//!
//! Modules, each one concern: [`version`] (version comparison), [`cpe`], [`purl`],
//! [`identify`] (normalisation to NVD names, distribution versions), [`applicability`]
//! (configuration evaluation, confidence), [`nvd`], [`circl`], [`http`] (rate limits and
//! retries), [`inventory`], [`observe`], [`matching`], [`report`], [`config`].

pub mod applicability;
pub mod circl;
pub mod config;
pub mod cpe;
mod error;
pub mod http;
pub mod identify;
pub mod inventory;
pub mod matching;
pub mod nvd;
pub mod observe;
pub mod purl;
pub mod report;
pub mod version;

pub mod jobs;

use std::path::Path;

use palisade_core::Timestamp;
use palisade_store::{ReportMeta, SharedStore};
use serde::Serialize;

pub use config::{CirclConfig, NvdConfig, VulnConfig};
pub use error::VulnError;
pub use matching::{MatchSummary, ThreatSink};
pub use observe::SoftwareObserver;
pub use report::{ReportKind, ReportRequest};

/// What a long task reports to and asks of whoever runs it (a job, the CLI, a test).
#[derive(Clone, Copy)]
pub struct TaskContext<'a> {
    progress: &'a (dyn Fn(u8, &str) + Send + Sync),
    cancelled: &'a (dyn Fn() -> bool + Send + Sync),
}

fn no_progress(_: u8, _: &str) {}

fn never_cancelled() -> bool {
    false
}

impl<'a> TaskContext<'a> {
    /// A context from a progress callback (percent 0–100 and a message) and a
    /// cancellation check (asked between units of work).
    pub fn new(
        progress: &'a (dyn Fn(u8, &str) + Send + Sync),
        cancelled: &'a (dyn Fn() -> bool + Send + Sync),
    ) -> TaskContext<'a> {
        TaskContext {
            progress,
            cancelled,
        }
    }

    /// Reports progress.
    pub fn report(&self, percent: u8, message: &str) {
        (self.progress)(percent.min(100), message);
    }

    /// `Err(Cancelled)` once the runner asked to stop.
    pub fn check(&self) -> Result<(), VulnError> {
        if (self.cancelled)() {
            Err(VulnError::Cancelled)
        } else {
            Ok(())
        }
    }
}

impl TaskContext<'static> {
    /// A context that reports nowhere and is never cancelled.
    pub fn silent() -> TaskContext<'static> {
        TaskContext {
            progress: &no_progress,
            cancelled: &never_cancelled,
        }
    }
}

/// The HTTP client the feeds use: rustls with the platform-independent web PKI roots,
/// no cookies, a connect timeout.
pub(crate) fn http_client() -> Result<reqwest::Client, VulnError> {
    reqwest::Client::builder()
        .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| VulnError::Client(e.to_string()))
}

/// The NVD API key from the encrypted secrets store (`None` when the secret is not
/// set). The key never reaches a log.
pub async fn nvd_api_key(
    store: &SharedStore,
    secrets: &palisade_auth::secrets::SecretBox,
    name: &str,
) -> Result<Option<String>, VulnError> {
    let Some(record) = store.secret(name).await? else {
        return Ok(None);
    };
    let plain = secrets
        .open(name, &record.key_id, &record.nonce, &record.ciphertext)
        .map_err(|e| VulnError::Secret(e.to_string()))?;
    let key =
        String::from_utf8(plain).map_err(|_| VulnError::Secret("the secret is not text".into()))?;
    Ok(Some(key.trim().to_owned()).filter(|k| !k.is_empty()))
}

/// The `fetch NVD` task: syncs the CVE records with the NVD API (incremental and
/// resumable, see [`nvd`]) and then matches every asset against what changed.
pub async fn fetch_nvd(
    store: &SharedStore,
    config: &NvdConfig,
    api_key: Option<String>,
    threats: Option<&ThreatSink>,
    ctx: &TaskContext<'_>,
) -> Result<nvd::SyncSummary, VulnError> {
    let client = nvd::NvdClient::new(config, api_key)?;
    let summary = nvd::sync(store, &client, config.overlap.to_std(), ctx).await?;
    if summary.stored.inserted + summary.stored.updated > 0 {
        run_matching(store, threats, &TaskContext::silent()).await?;
    }
    Ok(summary)
}

/// The `fetch CIRCL` task: fetches the given CVE ids from CIRCL vulnerability-lookup
/// (kept only where NVD has no record).
pub async fn fetch_circl(
    store: &SharedStore,
    config: &CirclConfig,
    ids: &[String],
    ctx: &TaskContext<'_>,
) -> Result<circl::CirclSummary, VulnError> {
    let client = circl::CirclClient::new(config)?;
    circl::fetch_ids(store, &client, ids, ctx).await
}

/// The `import CVE files` task: NVD API 2.0 pages saved as files.
pub async fn import_files(
    store: &SharedStore,
    files: &[impl AsRef<Path>],
    ctx: &TaskContext<'_>,
) -> Result<nvd::ImportSummary, VulnError> {
    nvd::import_files(store, files, ctx).await
}

/// The `run CVE matching` task: every asset against every stored CVE.
pub async fn run_matching(
    store: &SharedStore,
    threats: Option<&ThreatSink>,
    ctx: &TaskContext<'_>,
) -> Result<MatchSummary, VulnError> {
    matching::run_matching(store, None, threats, ctx).await
}

/// The `generate report` task.
pub async fn generate_report(
    store: &SharedStore,
    request: &ReportRequest,
    ctx: &TaskContext<'_>,
) -> Result<ReportMeta, VulnError> {
    report::generate_report(store, request, ctx).await
}

/// What an inventory upload did.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UploadSummary {
    /// The asset.
    pub asset: String,
    /// The format found: cyclonedx, spdx, dpkg or rpm.
    pub format: String,
    /// Software items stored.
    pub items: u64,
    /// Components or lines that could not be read.
    pub skipped: u64,
    /// Whether the asset's software changed.
    pub changed: bool,
    /// Matches that became open.
    pub opened: u64,
    /// Open matches no longer found.
    pub resolved: u64,
    /// Open matches of the asset after the upload, by severity.
    #[schema(value_type = Vec<Object>)]
    pub open: Vec<palisade_core::vuln::SeverityCount>,
}

/// Stores an uploaded inventory for `asset` (replacing the previous upload of the same
/// format) and matches the asset.
pub async fn upload_inventory(
    store: &SharedStore,
    asset: &str,
    body: &[u8],
    format: Option<inventory::Format>,
    max_items: usize,
    threats: Option<&ThreatSink>,
) -> Result<UploadSummary, VulnError> {
    let parsed = inventory::parse(body, format, max_items)?;
    let write = store
        .put_software(
            asset,
            parsed.format.source(),
            &parsed.items,
            true,
            Timestamp::now(),
        )
        .await?;
    let mut cache = matching::CveCache::new();
    let sync = matching::match_asset(store, write.asset_id, &mut cache, threats).await?;
    let open = store
        .get_asset(asset)
        .await?
        .map(|a| a.open)
        .unwrap_or_default();
    Ok(UploadSummary {
        asset: asset.to_owned(),
        format: parsed.format.source().as_str().to_owned(),
        items: parsed.items.len() as u64,
        skipped: parsed.skipped as u64,
        changed: write.changed,
        opened: sync.opened.len() as u64,
        resolved: sync.resolved,
        open,
    })
}
