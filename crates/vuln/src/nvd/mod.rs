//! The NVD CVE API 2.0 feed: a client that pages through the API within NVD's published
//! rate limits, a sync that is incremental (by `lastModified` window) and resumable
//! (its position is saved in the store after every page), and the offline import of
//! saved pages.
//!
//! # The sync
//!
//! The first sync pages through everything. Later ones ask for what changed since the
//! last complete sync started (less an `overlap`), in windows of at most 120 days (the
//! API's limit). After each page the records are stored and then the position
//! (window, next `startIndex`) is saved as the `nvd` sync state, so a sync cut off by a
//! crash, a cancellation or an outage resumes at the page it had not stored yet; pages
//! already stored are idempotent upserts. The next `startIndex` is this page's start
//! plus the records it *held*, not `resultsPerPage`: a server that answers smaller pages
//! than asked is followed correctly. `totalResults` of the latest page decides the end.

pub mod parse;

use std::path::Path;
use std::time::Duration;

use palisade_core::Timestamp;
use palisade_store::{CveUpsert, IndexedCve, SharedStore};
use serde::{Deserialize, Serialize};

use crate::TaskContext;
use crate::applicability::vulnerable_products;
use crate::config::NvdConfig;
use crate::error::VulnError;
use crate::http::{self, RateLimiter};

pub use parse::{Page, ParseError, parse_page};

/// The name of the NVD sync state in the store.
pub const SYNC_FEED: &str = "nvd";

/// The longest `lastModified` window the API accepts.
const MAX_WINDOW_DAYS: i64 = 120;

const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// A client of the CVE API 2.0.
pub struct NvdClient {
    http: reqwest::Client,
    config: NvdConfig,
    api_key: Option<String>,
    limiter: RateLimiter,
}

impl std::fmt::Debug for NvdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvdClient")
            .field("url", &self.config.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl NvdClient {
    /// A client; with an API key the higher published rate limit applies.
    pub fn new(config: &NvdConfig, api_key: Option<String>) -> Result<NvdClient, VulnError> {
        let api_key = api_key.filter(|k| !k.trim().is_empty());
        let per_window = if api_key.is_some() {
            config.requests_with_key
        } else {
            config.requests_without_key
        };
        Ok(NvdClient {
            http: crate::http_client()?,
            limiter: RateLimiter::new(per_window, config.rate_window.to_std()),
            config: config.clone(),
            api_key,
        })
    }

    /// One page: `start` into the results, optionally of a `lastModified` window.
    pub async fn page(
        &self,
        start: u64,
        window: Option<(Timestamp, Timestamp)>,
        ctx: &TaskContext<'_>,
    ) -> Result<Page, VulnError> {
        let mut query = vec![
            ("startIndex", start.to_string()),
            ("resultsPerPage", self.config.page_size.to_string()),
        ];
        if let Some((from, to)) = window {
            query.push(("lastModStartDate", api_time(from)));
            query.push(("lastModEndDate", api_time(to)));
        }
        let headers: Vec<(&str, &str)> = self
            .api_key
            .as_deref()
            .map(|k| vec![("apiKey", k)])
            .unwrap_or_default();
        let page = http::get(
            &self.http,
            "nvd",
            &self.config.url,
            &query,
            &headers,
            self.config.retry(),
            Some(&self.limiter),
            ctx,
            |body| parse_page(body).map_err(|e| e.to_string()),
        )
        .await?;
        page.ok_or_else(|| VulnError::Status {
            url: self.config.url.clone(),
            status: 404,
        })
    }
}

/// NVD's date form: `2021-08-04T13:00:00.000` (UTC).
fn api_time(t: Timestamp) -> String {
    let (y, mo, d, h, mi, s, us) = t.to_civil();
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}",
        us / 1000
    )
}

/// Where a sync stands, as saved in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// When the last complete sync started: the next one asks for changes since then.
    pub synced_until: Option<Timestamp>,
    /// The sync in progress, if one was cut off.
    pub running: Option<RunningSync>,
}

/// A sync in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningSync {
    /// When it started (becomes `synced_until` when it completes).
    pub started: Timestamp,
    /// `lastModified` windows still to fetch, the current one first; empty for a full
    /// sync.
    pub windows: Vec<(Timestamp, Timestamp)>,
    /// Whether this is a full sync (no window).
    pub full: bool,
    /// The next `startIndex` in the current window.
    pub next_index: u64,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncSummary {
    /// Pages fetched.
    pub pages: u64,
    /// Records received.
    pub records: u64,
    /// Records stored as new, updated or unchanged.
    #[schema(inline)]
    pub stored: CveUpsert,
    /// Records that could not be read.
    pub rejected: u64,
    /// Whether it resumed a sync that had been cut off.
    pub resumed: bool,
    /// Whether it was a full sync (else incremental).
    pub full: bool,
}

/// Reads the saved sync state (a state that does not read starts over).
pub async fn load_state(store: &SharedStore) -> Result<SyncState, VulnError> {
    Ok(store
        .sync_state(SYNC_FEED)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

async fn save_state(store: &SharedStore, state: &SyncState) -> Result<(), VulnError> {
    let text = serde_json::to_string(state)
        .map_err(|e| VulnError::Parse(format!("encoding the sync state: {e}")))?;
    store
        .put_sync_state(SYNC_FEED, &text, Timestamp::now())
        .await?;
    Ok(())
}

/// The windows of an incremental sync from `since` to `until`.
fn windows(since: Timestamp, until: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    let mut from = since;
    while from < until {
        let to = Timestamp(
            from.as_micros()
                .saturating_add(MAX_WINDOW_DAYS * DAY_MICROS)
                .min(until.as_micros()),
        );
        out.push((from, to));
        from = to;
    }
    out
}

/// Stores a page's records (with their product index).
pub async fn store_records(
    store: &SharedStore,
    cves: Vec<palisade_core::vuln::Cve>,
) -> Result<CveUpsert, VulnError> {
    let indexed: Vec<IndexedCve> = cves
        .into_iter()
        .map(|cve| IndexedCve {
            products: vulnerable_products(&cve),
            cve,
        })
        .collect();
    let mut total = CveUpsert::default();
    for chunk in indexed.chunks(500) {
        let out = store.upsert_cves(chunk).await?;
        total.inserted += out.inserted;
        total.updated += out.updated;
        total.unchanged += out.unchanged;
    }
    Ok(total)
}

/// Syncs the store with NVD (see the module documentation): resumes a sync that was cut
/// off, else starts an incremental one (or a full one the first time). Progress goes to
/// `ctx`; a cancellation stops between pages with the position saved.
pub async fn sync(
    store: &SharedStore,
    client: &NvdClient,
    overlap: Duration,
    ctx: &TaskContext<'_>,
) -> Result<SyncSummary, VulnError> {
    let mut state = load_state(store).await?;
    let mut summary = SyncSummary {
        resumed: state.running.is_some(),
        ..SyncSummary::default()
    };
    let mut running = match state.running.take() {
        Some(r) => r,
        None => {
            let started = Timestamp::now();
            match state.synced_until {
                None => RunningSync {
                    started,
                    windows: Vec::new(),
                    full: true,
                    next_index: 0,
                },
                Some(since) => {
                    let overlap = i64::try_from(overlap.as_micros()).unwrap_or(i64::MAX);
                    RunningSync {
                        started,
                        windows: windows(
                            Timestamp(since.as_micros().saturating_sub(overlap)),
                            started,
                        ),
                        full: false,
                        next_index: 0,
                    }
                }
            }
        }
    };
    summary.full = running.full;
    state.running = Some(running.clone());
    save_state(store, &state).await?;
    let total_windows = running.windows.len().max(1);
    loop {
        if !running.full && running.windows.is_empty() {
            break;
        }
        ctx.check()?;
        let window = running.windows.first().copied();
        let page = client.page(running.next_index, window, ctx).await?;
        summary.pages += 1;
        summary.records += page.entries as u64;
        summary.rejected += page.rejected.len() as u64;
        for (i, why) in &page.rejected {
            tracing::warn!(
                message = "NVD record skipped: it cannot be read.",
                index = running.next_index + *i as u64,
                error = %why
            );
        }
        let held = page.entries as u64;
        let total = page.total_results;
        let stored = store_records(store, page.cves).await?;
        summary.stored.inserted += stored.inserted;
        summary.stored.updated += stored.updated;
        summary.stored.unchanged += stored.unchanged;
        running.next_index += held;
        let window_done = held == 0 || running.next_index >= total;
        if window_done {
            running.next_index = 0;
            if running.full {
                running.full = false;
                running.windows.clear();
            } else if !running.windows.is_empty() {
                running.windows.remove(0);
            }
        }
        // Progress: windows done, and the position within the current one.
        let done_windows = total_windows - running.windows.len().min(total_windows);
        let within = if total == 0 {
            0.0
        } else {
            running.next_index as f64 / total as f64
        };
        let pct = ((done_windows as f64 + within) / total_windows as f64 * 100.0).min(99.0);
        ctx.report(
            pct as u8,
            &format!(
                "{} records, {} new, {} updated",
                summary.records, summary.stored.inserted, summary.stored.updated
            ),
        );
        if !running.full && running.windows.is_empty() {
            break;
        }
        state.running = Some(running.clone());
        save_state(store, &state).await?;
    }
    state.running = None;
    state.synced_until = Some(running.started);
    save_state(store, &state).await?;
    ctx.report(100, &format!("{} records", summary.records));
    Ok(summary)
}

/// What an import of saved pages did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Files read.
    pub files: u64,
    /// Records read.
    pub records: u64,
    /// Records stored as new, updated or unchanged.
    #[schema(inline)]
    pub stored: CveUpsert,
    /// Records that could not be read.
    pub rejected: u64,
}

/// Imports NVD API 2.0 pages (or bare records) saved as files. A file that is not a
/// page stops the import with an error naming it; records already imported stay.
pub async fn import_files(
    store: &SharedStore,
    files: &[impl AsRef<Path>],
    ctx: &TaskContext<'_>,
) -> Result<ImportSummary, VulnError> {
    let mut summary = ImportSummary::default();
    let n = files.len().max(1);
    for (i, path) in files.iter().enumerate() {
        ctx.check()?;
        let path = path.as_ref();
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| VulnError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let page = tokio::task::spawn_blocking(move || parse_page(&bytes))
            .await
            .map_err(|e| VulnError::Parse(format!("parsing task failed: {e}")))?
            .map_err(|e| VulnError::Parse(format!("{}: {e}", path.display())))?;
        summary.files += 1;
        summary.records += page.entries as u64;
        summary.rejected += page.rejected.len() as u64;
        let stored = store_records(store, page.cves).await?;
        summary.stored.inserted += stored.inserted;
        summary.stored.updated += stored.updated;
        summary.stored.unchanged += stored.unchanged;
        ctx.report(
            ((i + 1) * 100 / n) as u8,
            &format!("{}: {} records", path.display(), page.entries),
        );
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_at_most_120_days_and_cover_the_span() {
        let day = DAY_MICROS;
        let w = windows(Timestamp(0), Timestamp(300 * day));
        assert_eq!(
            w,
            [
                (Timestamp(0), Timestamp(120 * day)),
                (Timestamp(120 * day), Timestamp(240 * day)),
                (Timestamp(240 * day), Timestamp(300 * day)),
            ]
        );
        assert!(windows(Timestamp(5), Timestamp(5)).is_empty());
    }

    #[test]
    fn api_time_is_nvds_form() {
        let t = Timestamp::parse_iso8601(b"2021-08-04T13:00:00.123456Z").unwrap();
        assert_eq!(api_time(t), "2021-08-04T13:00:00.123");
    }
}
