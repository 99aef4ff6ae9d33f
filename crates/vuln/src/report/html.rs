//! The report as one self-contained HTML page: inline CSS, no scripts, no external
//! assets (it opens offline and can be mailed), every value escaped.

use std::fmt::Write as _;

use super::{ReportDoc, Tally};
use palisade_core::vuln::{CvssSeverity, SeverityCount};

/// HTML text escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
margin:2rem auto;max-width:1100px;color:#1d2430;padding:0 1rem}\
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d8dde6;padding-bottom:.3rem}\
.meta{color:#5b6575}table{border-collapse:collapse;width:100%;margin:.6rem 0}\
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e6e9ef;vertical-align:top}\
th{background:#f3f5f8;font-weight:600}.num{text-align:right}\
.sev{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.8rem;color:#fff}\
.critical{background:#8b0000}.high{background:#c0392b}.medium{background:#d68910}\
.low{background:#2e86c1}.none,.unknown{background:#7f8c8d}.tiles{display:flex;gap:.8rem;flex-wrap:wrap}\
.tile{border:1px solid #d8dde6;border-radius:.4rem;padding:.5rem .9rem;min-width:7rem}\
.tile b{display:block;font-size:1.4rem}footer{margin-top:3rem;color:#5b6575;font-size:.8rem}";

fn sev(s: CvssSeverity) -> String {
    format!("<span class=\"sev {0}\">{0}</span>", s.as_str())
}

fn tiles(out: &mut String, counts: &[SeverityCount]) {
    out.push_str("<div class=\"tiles\">");
    if counts.is_empty() {
        out.push_str("<div class=\"tile\"><b>0</b>open</div>");
    }
    for c in counts {
        let _ = write!(
            out,
            "<div class=\"tile\"><b>{}</b>{}</div>",
            c.count,
            sev(c.severity)
        );
    }
    out.push_str("</div>");
}

fn count_table(out: &mut String, title: &str, head: &str, list: &[Tally]) {
    let _ = write!(out, "<h2>{}</h2>", escape(title));
    if list.is_empty() {
        out.push_str("<p class=\"meta\">None in this period.</p>");
        return;
    }
    let _ = write!(
        out,
        "<table><tr><th>{}</th><th class=\"num\">Count</th></tr>",
        escape(head)
    );
    for c in list {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&c.key),
            c.count
        );
    }
    out.push_str("</table>");
}

/// The page.
pub fn render(id: i64, doc: &ReportDoc) -> String {
    let title = match doc.kind {
        super::ReportKind::Vulnerabilities => "Vulnerability report",
        super::ReportKind::Security => "Security summary",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} #{id}</title><style>{STYLE}</style></head><body>\
         <h1>{title}</h1><p class=\"meta\">Report #{id} · period {} – {} · generated {}</p>",
        escape(&doc.from.to_string()),
        escape(&doc.to.to_string()),
        escape(&doc.generated_at.to_string()),
    );
    if let Some(v) = &doc.vulnerabilities {
        out.push_str("<h2>Open matches by severity</h2>");
        tiles(&mut out, &v.open_by_severity);
        let _ = write!(
            out,
            "<p class=\"meta\">{} matches in the period ({} new){}; by status: {}</p>",
            v.total,
            v.new_in_period,
            if v.truncated { ", list truncated" } else { "" },
            escape(
                &v.by_status
                    .iter()
                    .map(|c| format!("{} {}", c.count, c.key))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        );
        if v.assets.is_empty() {
            out.push_str("<p>No vulnerability matches in this period.</p>");
        }
        for a in &v.assets {
            let _ = write!(out, "<h2>{}</h2>", escape(&a.asset));
            tiles(&mut out, &a.open_by_severity);
            out.push_str(
                "<table><tr><th>CVE</th><th>Severity</th><th class=\"num\">Score</th>\
                 <th>Status</th><th>Confidence</th><th>Software</th><th>Product</th>\
                 <th>KEV</th><th>First seen</th></tr>",
            );
            for m in &a.matches {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td>\
                     <td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&m.cve_id),
                    sev(m.severity),
                    m.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
                    m.status.as_str(),
                    escape(m.confidence.as_str()),
                    escape(&m.software),
                    escape(&m.version),
                    escape(&m.product),
                    if m.kev { "yes" } else { "" },
                    escape(&m.first_seen.to_string()),
                );
            }
            out.push_str("</table>");
        }
    }
    if let Some(s) = &doc.security {
        let _ = write!(
            out,
            "<div class=\"tiles\"><div class=\"tile\"><b>{}</b>threats</div>\
             <div class=\"tile\"><b>{}</b>decisions</div></div>",
            s.threats,
            s.decisions.iter().map(|c| c.count).sum::<u64>()
        );
        count_table(&mut out, "Threats by category", "Category", &s.by_category);
        count_table(&mut out, "Threats by severity", "Severity", &s.by_severity);
        count_table(&mut out, "Top sources", "Client address", &s.top_sources);
        count_table(&mut out, "Top rules", "Rule", &s.top_rules);
        count_table(&mut out, "Decisions", "Kind / origin", &s.decisions);
        match &s.alerts {
            Some(a) => count_table(&mut out, "Alerts", "Alert", a),
            None => out.push_str(
                "<h2>Alerts</h2><p class=\"meta\">Alerting is not part of this build; no alerts to report.</p>",
            ),
        }
    }
    out.push_str("<footer>Generated by Palisade. This report uses data from the NVD API but is not endorsed or certified by the NVD.</footer></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
