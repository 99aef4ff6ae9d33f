//! Reports for a period: a vulnerability report (per asset and per severity) and a
//! security summary (threats by category and severity, top sources and rules,
//! decisions, alerts when alerting exists), generated from the store, stored as JSON,
//! and rendered on request as JSON, CSV ([`csv`]) or one self-contained HTML page
//! ([`html`], no external assets).
//!
//! A report is generated once and kept: fetching it again in another format renders
//! the same document, so the CSV and the HTML of a report always agree with its JSON.

pub mod csv;
pub mod html;

use palisade_core::Timestamp;
use palisade_core::vuln::{Confidence, CvssSeverity, MatchStatus, SeverityCount};
use palisade_store::{Count, MatchQuery, NewReport, ReportMeta, SharedStore};
use serde::{Deserialize, Serialize};

use crate::TaskContext;
use crate::error::VulnError;

/// Most matches a vulnerability report lists (the totals still count all).
pub const MAX_REPORT_MATCHES: usize = 100_000;

/// A count under a label, as reports keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tally {
    /// The label.
    pub key: String,
    /// How many.
    pub count: u64,
}

impl From<Count> for Tally {
    fn from(c: Count) -> Tally {
        Tally {
            key: c.key,
            count: c.count,
        }
    }
}

fn tallies(list: Vec<Count>) -> Vec<Tally> {
    list.into_iter().map(Tally::from).collect()
}

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// Vulnerability matches per asset and severity.
    Vulnerabilities,
    /// Threats, sources, decisions and alerts.
    Security,
}

impl ReportKind {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReportKind::Vulnerabilities => "vulnerabilities",
            ReportKind::Security => "security",
        }
    }

    /// Reads the name back.
    pub fn parse(s: &str) -> Option<ReportKind> {
        match s {
            "vulnerabilities" => Some(ReportKind::Vulnerabilities),
            "security" => Some(ReportKind::Security),
            _ => None,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    /// What about.
    pub kind: ReportKind,
    /// Start of the period.
    pub from: Timestamp,
    /// End of the period (exclusive).
    pub to: Timestamp,
    /// Who asked.
    pub created_by: String,
}

/// A report as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportDoc {
    /// What about.
    pub kind: ReportKind,
    /// When it was generated.
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: Timestamp,
    /// Start of the period.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// End of the period (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// The vulnerability report (kind `vulnerabilities`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<VulnerabilityReport>,
    /// The security summary (kind `security`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySummary>,
}

/// Matches present during the period (last seen at or after its start, first seen
/// before its end), per asset and per severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VulnerabilityReport {
    /// Open matches by severity, most severe first.
    pub open_by_severity: Vec<SeverityCount>,
    /// Matches by status.
    pub by_status: Vec<Tally>,
    /// Matches first seen inside the period.
    pub new_in_period: u64,
    /// All matches in the report.
    pub total: u64,
    /// Whether the listing was cut at the report limit.
    pub truncated: bool,
    /// Per asset, the one with the most severe open matches first.
    pub assets: Vec<AssetSection>,
}

/// One asset's part of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetSection {
    /// The asset.
    pub asset: String,
    /// Open matches by severity.
    pub open_by_severity: Vec<SeverityCount>,
    /// Its matches, most severe first.
    pub matches: Vec<ReportMatch>,
}

/// One match in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportMatch {
    /// The CVE.
    pub cve_id: String,
    /// Its severity.
    pub severity: CvssSeverity,
    /// Its base score.
    pub score: Option<f64>,
    /// Triage status.
    pub status: MatchStatus,
    /// How sure.
    pub confidence: Confidence,
    /// Known exploited (CISA KEV).
    pub kev: bool,
    /// The NVD product.
    pub product: String,
    /// The software as reported.
    pub software: String,
    /// Its version.
    pub version: String,
    /// First matched.
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    /// Last matched.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
}

/// Threats, sources, decisions and alerts in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecuritySummary {
    /// Threats in the period.
    pub threats: u64,
    /// By category, most first.
    pub by_category: Vec<Tally>,
    /// By severity, most first.
    pub by_severity: Vec<Tally>,
    /// The client addresses with the most threats.
    pub top_sources: Vec<Tally>,
    /// The most frequent rules.
    pub top_rules: Vec<Tally>,
    /// Decisions created in the period, by `kind/origin`.
    pub decisions: Vec<Tally>,
    /// Alerts in the period: `None` while this build has no alerting.
    pub alerts: Option<Vec<Tally>>,
}

fn severity_counts(iter: impl Iterator<Item = CvssSeverity>) -> Vec<SeverityCount> {
    let mut counts: Vec<SeverityCount> = Vec::new();
    for s in iter {
        match counts.iter_mut().find(|c| c.severity == s) {
            Some(c) => c.count += 1,
            None => counts.push(SeverityCount {
                severity: s,
                count: 1,
            }),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.severity));
    counts
}

async fn vulnerability_report(
    store: &SharedStore,
    from: Timestamp,
    to: Timestamp,
    ctx: &TaskContext<'_>,
) -> Result<VulnerabilityReport, VulnError> {
    let mut all = Vec::new();
    let mut cursor = None;
    let mut truncated = false;
    loop {
        ctx.check()?;
        let page = store
            .query_matches(&MatchQuery {
                seen_from: Some(from),
                seen_to: Some(to),
                cursor,
                limit: palisade_store::MAX_LIMIT,
                ..MatchQuery::default()
            })
            .await?;
        all.extend(page.items);
        if all.len() >= MAX_REPORT_MATCHES {
            truncated = page.next_cursor.is_some() || all.len() > MAX_REPORT_MATCHES;
            all.truncate(MAX_REPORT_MATCHES);
            break;
        }
        match page
            .next_cursor
            .as_deref()
            .and_then(palisade_store::Cursor::decode)
        {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let open = || all.iter().filter(|m| m.status == MatchStatus::Open);
    let mut by_status: Vec<Tally> = Vec::new();
    for m in &all {
        match by_status.iter_mut().find(|c| c.key == m.status.as_str()) {
            Some(c) => c.count += 1,
            None => by_status.push(Tally {
                key: m.status.as_str().to_owned(),
                count: 1,
            }),
        }
    }
    by_status.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    let mut assets: Vec<AssetSection> = Vec::new();
    for m in &all {
        let section = match assets.iter_mut().position(|a| a.asset == m.asset) {
            Some(i) => &mut assets[i],
            None => {
                assets.push(AssetSection {
                    asset: m.asset.clone(),
                    open_by_severity: Vec::new(),
                    matches: Vec::new(),
                });
                let last = assets.len() - 1;
                &mut assets[last]
            }
        };
        section.matches.push(ReportMatch {
            cve_id: m.cve_id.clone(),
            severity: m.severity,
            score: m.score,
            status: m.status,
            confidence: m.confidence,
            kev: m.kev,
            product: m.product.clone(),
            software: m.software.clone(),
            version: m.version.clone(),
            first_seen: m.first_seen,
            last_seen: m.last_seen,
        });
    }
    for a in &mut assets {
        a.open_by_severity = severity_counts(
            a.matches
                .iter()
                .filter(|m| m.status == MatchStatus::Open)
                .map(|m| m.severity),
        );
        a.matches.sort_by(|x, y| {
            y.severity
                .cmp(&x.severity)
                .then_with(|| y.score.unwrap_or(0.0).total_cmp(&x.score.unwrap_or(0.0)))
                .then_with(|| x.cve_id.cmp(&y.cve_id))
        });
    }
    let rank = |a: &AssetSection| {
        a.open_by_severity
            .iter()
            .map(|c| (c.severity, c.count))
            .collect::<Vec<_>>()
    };
    assets.sort_by(|a, b| rank(b).cmp(&rank(a)).then_with(|| a.asset.cmp(&b.asset)));
    Ok(VulnerabilityReport {
        open_by_severity: severity_counts(open().map(|m| m.severity)),
        by_status,
        new_in_period: all.iter().filter(|m| m.first_seen >= from).count() as u64,
        total: all.len() as u64,
        truncated,
        assets,
    })
}

async fn security_summary(
    store: &SharedStore,
    from: Timestamp,
    to: Timestamp,
) -> Result<SecuritySummary, VulnError> {
    let span_secs = (to.as_micros() - from.as_micros()) / 1_000_000;
    let stats = store
        .threat_stats(from, to, span_secs.clamp(60, 86_400 * 366))
        .await?;
    Ok(SecuritySummary {
        threats: stats.total,
        by_category: tallies(stats.by_category),
        by_severity: tallies(stats.by_severity),
        top_sources: tallies(store.top_threat_sources(from, to, 20).await?),
        top_rules: tallies(stats.by_rule.into_iter().take(20).collect()),
        decisions: tallies(store.decision_counts(from, to).await?),
        alerts: None,
    })
}

/// Builds a report's document from the store (without storing it).
pub async fn build(
    store: &SharedStore,
    request: &ReportRequest,
    ctx: &TaskContext<'_>,
) -> Result<ReportDoc, VulnError> {
    ctx.report(5, "collecting");
    let mut doc = ReportDoc {
        kind: request.kind,
        generated_at: Timestamp::now(),
        from: request.from,
        to: request.to,
        vulnerabilities: None,
        security: None,
    };
    match request.kind {
        ReportKind::Vulnerabilities => {
            doc.vulnerabilities =
                Some(vulnerability_report(store, request.from, request.to, ctx).await?);
        }
        ReportKind::Security => {
            doc.security = Some(security_summary(store, request.from, request.to).await?);
        }
    }
    Ok(doc)
}

/// Generates a report and stores it; returns its description (fetch it with
/// `ReportStore::get_report` and render it with [`render`]).
pub async fn generate_report(
    store: &SharedStore,
    request: &ReportRequest,
    ctx: &TaskContext<'_>,
) -> Result<ReportMeta, VulnError> {
    let doc = build(store, request, ctx).await?;
    ctx.report(90, "storing");
    let text = serde_json::to_string(&doc)
        .map_err(|e| VulnError::Parse(format!("encoding the report: {e}")))?;
    let meta = store
        .insert_report(
            &NewReport {
                kind: request.kind.as_str().to_owned(),
                from: request.from,
                to: request.to,
                created_by: request.created_by.clone(),
                doc: text,
            },
            doc.generated_at,
        )
        .await?;
    ctx.report(100, &format!("report {}", meta.id));
    Ok(meta)
}

/// A rendering of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The document as stored.
    Json,
    /// One row per match (vulnerabilities) or per count (security).
    Csv,
    /// One self-contained page.
    Html,
}

impl Format {
    /// `json`, `csv` or `html`.
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "html" => Some(Format::Html),
            _ => None,
        }
    }

    /// The media type to answer with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

/// Renders a stored report document.
pub fn render(id: i64, doc_json: &str, format: Format) -> Result<String, VulnError> {
    if format == Format::Json {
        return Ok(doc_json.to_owned());
    }
    let doc: ReportDoc = serde_json::from_str(doc_json)
        .map_err(|e| VulnError::Parse(format!("report {id} cannot be read: {e}")))?;
    Ok(match format {
        Format::Csv => csv::render(&doc),
        Format::Html => html::render(id, &doc),
        Format::Json => doc_json.to_owned(),
    })
}
