//! The listing queries of the vulnerability tables.

use super::{Builder, Dialect, Param, Sql, clamp_limit, prefix_upper_bound};
use crate::codec::vulns::{ASSET_COLUMNS, MATCH_SELECT};
use crate::{AssetQuery, MatchQuery};

/// The query listing matches for `q`, newest first (by first match), one row more than
/// the page. Each filter has an index ending in `(first_seen, id)`.
pub(crate) fn matches_query(dialect: Dialect, q: &MatchQuery) -> Sql {
    let mut b = Builder::new(dialect);
    if let Some(asset) = &q.asset {
        let p = b.text(asset);
        b.cond(format!(
            "m.asset_id = (SELECT id FROM vuln_assets WHERE name = {p})"
        ));
    }
    if let Some(cve) = &q.cve {
        let p = b.text(cve);
        b.cond(format!("m.cve_id = {p}"));
    }
    if let Some(severity) = q.severity {
        let p = b.text(severity.as_str());
        b.cond(format!("m.severity = {p}"));
    }
    if let Some(status) = q.status {
        let p = b.text(status.as_str());
        b.cond(format!("m.status = {p}"));
    }
    b.at_or_after("m.last_seen", q.seen_from);
    b.before("m.first_seen", q.seen_to);
    b.older_than("m.first_seen, m.id", q.cursor);
    b.finish(
        MATCH_SELECT,
        "m.first_seen DESC, m.id DESC",
        clamp_limit(q.limit),
    )
}

/// The query listing assets for `q`, newest first, one row more than the page. A name
/// prefix is a range over the unique name index.
pub(crate) fn assets_query(dialect: Dialect, q: &AssetQuery) -> Sql {
    let mut b = Builder::new(dialect);
    if let Some(prefix) = q.name_prefix.as_deref().filter(|p| !p.is_empty()) {
        let lo = b.text(prefix);
        b.cond(format!("a.name >= {lo}"));
        if let Some(hi) = prefix_upper_bound(prefix) {
            let hi = b.text(&hi);
            b.cond(format!("a.name < {hi}"));
        }
    }
    b.older_than("a.first_seen, a.id", q.cursor);
    b.finish(
        &format!("SELECT {ASSET_COLUMNS} FROM vuln_assets a"),
        "a.first_seen DESC, a.id DESC",
        clamp_limit(q.limit),
    )
}

/// Open matches of the given assets by severity: `(asset_id, severity, count)` rows.
/// Takes the asset ids as its parameters.
pub(crate) fn open_counts_query(dialect: Dialect, ids: &[i64]) -> Sql {
    let mut b = Builder::new(dialect);
    let list: Vec<String> = ids.iter().map(|id| b.p(Param::I64(*id))).collect();
    let text = format!(
        "SELECT asset_id, severity, count(*) FROM vuln_matches \
         WHERE status = 'open' AND asset_id IN ({}) GROUP BY asset_id, severity",
        if list.is_empty() {
            "NULL".to_owned()
        } else {
            list.join(", ")
        }
    );
    Sql {
        text,
        params: b.params,
    }
}
