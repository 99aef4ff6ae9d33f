//! CSV renderings (RFC 4180). Cells that a spreadsheet would run as a formula (starting
//! with `=`, `+`, `-`, `@`, tab or CR) get a leading `'`: report data such as software
//! names comes from uploads and traffic, and must not execute when the file is opened.

use std::fmt::Write as _;

use super::ReportDoc;

/// One CSV cell, quoted when needed and defused.
pub fn cell(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn row(out: &mut String, cells: &[&str]) {
    let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    let _ = write!(out, "{}\r\n", line.join(","));
}

/// The report as CSV: one row per match (vulnerabilities) or per count (security).
pub fn render(doc: &ReportDoc) -> String {
    let mut out = String::new();
    if let Some(v) = &doc.vulnerabilities {
        row(
            &mut out,
            &[
                "asset",
                "cve",
                "severity",
                "score",
                "status",
                "confidence",
                "kev",
                "product",
                "software",
                "version",
                "first_seen",
                "last_seen",
            ],
        );
        for a in &v.assets {
            for m in &a.matches {
                let score = m.score.map(|s| format!("{s:.1}")).unwrap_or_default();
                let (first, last) = (m.first_seen.to_string(), m.last_seen.to_string());
                row(
                    &mut out,
                    &[
                        &a.asset,
                        &m.cve_id,
                        m.severity.as_str(),
                        &score,
                        m.status.as_str(),
                        m.confidence.as_str(),
                        if m.kev { "yes" } else { "no" },
                        &m.product,
                        &m.software,
                        &m.version,
                        &first,
                        &last,
                    ],
                );
            }
        }
    }
    if let Some(s) = &doc.security {
        row(&mut out, &["section", "key", "count"]);
        let total = s.threats.to_string();
        row(&mut out, &["threats", "total", &total]);
        for (section, list) in [
            ("category", &s.by_category),
            ("severity", &s.by_severity),
            ("source", &s.top_sources),
            ("rule", &s.top_rules),
            ("decision", &s.decisions),
        ] {
            for c in list {
                let n = c.count.to_string();
                row(&mut out, &[section, &c.key, &n]);
            }
        }
        for c in s.alerts.iter().flatten() {
            let n = c.count.to_string();
            row(&mut out, &["alert", &c.key, &n]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1+2"), "'-1+2");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }
}
