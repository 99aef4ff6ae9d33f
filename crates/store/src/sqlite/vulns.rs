//! [`VulnStore`] for the SQLite backend: writes through the one writer connection in
//! `IMMEDIATE` transactions, reads through the reader pool, values through the shared
//! vulnerability codec.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::vuln::{
    Asset, Cve, FoundMatch, MatchStatus, Software, SoftwareSource, StoredSoftware, VulnMatch,
};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, count, lock, params_of, sqlite_err};
use crate::codec::clean;
use crate::codec::vulns::{
    AssetColumns, CveColumnsIn, FoundColumns, MATCH_SELECT, MatchColumns, REOPENED, RESOLVED,
    SOFTWARE_COLUMNS, SoftwareColumns, SoftwareColumnsIn, cve_from_doc, distinct_found, reopens,
    replaces,
};
use crate::sqlgen::{self, Dialect};
use crate::{
    AssetQuery, Cursor, CveStats, CveUpsert, IndexedCve, MATCHER, MatchQuery, MatchSync, Page,
    SoftwareWrite, StoreError, VulnStore,
};

fn match_from_row(row: &Row<'_>) -> rusqlite::Result<MatchColumns> {
    Ok(MatchColumns {
        id: row.get(0)?,
        asset: row.get(1)?,
        cve_id: row.get(2)?,
        product: row.get(3)?,
        software: row.get(4)?,
        version: row.get(5)?,
        severity: row.get(6)?,
        score: row.get(7)?,
        confidence: row.get(8)?,
        kev: row.get::<_, i64>(9)? != 0,
        status: row.get(10)?,
        status_comment: row.get(11)?,
        status_by: row.get(12)?,
        status_at: row.get(13)?,
        first_seen: row.get(14)?,
        last_seen: row.get(15)?,
    })
}

fn asset_from_row(row: &Row<'_>) -> rusqlite::Result<AssetColumns> {
    Ok(AssetColumns {
        id: row.get(0)?,
        name: row.get(1)?,
        first_seen: row.get(2)?,
        last_seen: row.get(3)?,
        software: row.get(4)?,
    })
}

fn get_match_in(conn: &Connection, id: i64) -> Result<Option<VulnMatch>, StoreError> {
    conn.prepare_cached(&format!("{MATCH_SELECT} WHERE m.id = ?1"))
        .and_then(|mut s| s.query_row([id], match_from_row).optional())
        .map_err(sqlite_err)?
        .map(MatchColumns::into_match)
        .transpose()
}

/// Attaches the open-match counts to a page of asset rows.
fn with_counts(conn: &Connection, rows: Vec<AssetColumns>) -> Result<Vec<Asset>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let sql = sqlgen::open_counts_query(Dialect::Sqlite, &ids);
    let mut stmt = conn.prepare(&sql.text).map_err(sqlite_err)?;
    let mut by_asset: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
    let found = stmt
        .query_map(&params_of(&sql)[..], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(sqlite_err)?;
    for row in found {
        let (id, severity, n) = row.map_err(sqlite_err)?;
        by_asset.entry(id).or_default().push((severity, n));
    }
    rows.into_iter()
        .map(|r| {
            let open = by_asset.remove(&r.id).unwrap_or_default();
            r.into_asset(open)
        })
        .collect()
}

#[async_trait]
impl VulnStore for SqliteStore {
    async fn upsert_cves(&self, cves: &[IndexedCve]) -> Result<CveUpsert, StoreError> {
        if cves.is_empty() {
            return Ok(CveUpsert::default());
        }
        let cves = cves.to_vec();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let mut out = CveUpsert::default();
            {
                let mut existing = tx
                    .prepare_cached("SELECT modified, origin FROM vuln_cves WHERE id = ?1")
                    .map_err(sqlite_err)?;
                let mut write = tx
                    .prepare_cached(
                        "INSERT INTO vuln_cves (id, published, modified, status, severity, \
                         score, kev, origin, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                         ON CONFLICT (id) DO UPDATE SET published = excluded.published, \
                         modified = excluded.modified, status = excluded.status, \
                         severity = excluded.severity, score = excluded.score, \
                         kev = excluded.kev, origin = excluded.origin, doc = excluded.doc",
                    )
                    .map_err(sqlite_err)?;
                let mut forget = tx
                    .prepare_cached("DELETE FROM vuln_cve_products WHERE cve_id = ?1")
                    .map_err(sqlite_err)?;
                let mut index = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO vuln_cve_products (product, vendor, cve_id) \
                         VALUES (?1, ?2, ?3)",
                    )
                    .map_err(sqlite_err)?;
                for item in &cves {
                    let c = CveColumnsIn::new(&item.cve)?;
                    let stored: Option<(i64, String)> = existing
                        .query_row([&c.id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                        .map_err(sqlite_err)?;
                    match &stored {
                        Some((modified, origin)) if !replaces(&item.cve, *modified, origin) => {
                            out.unchanged += 1;
                            continue;
                        }
                        Some(_) => out.updated += 1,
                        None => out.inserted += 1,
                    }
                    write
                        .execute(params![
                            c.id,
                            c.published,
                            c.modified,
                            c.status,
                            c.severity,
                            c.score,
                            i64::from(c.kev),
                            c.origin,
                            c.doc
                        ])
                        .map_err(sqlite_err)?;
                    forget.execute([&c.id]).map_err(sqlite_err)?;
                    for (vendor, product) in &item.products {
                        index
                            .execute(params![&*clean(product), &*clean(vendor), c.id])
                            .map_err(sqlite_err)?;
                    }
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(out)
        })
        .await
    }

    async fn get_cve(&self, id: &str) -> Result<Option<Cve>, StoreError> {
        let id = clean(id).into_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT doc FROM vuln_cves WHERE id = ?1")
                .and_then(|mut s| s.query_row([&id], |r| r.get::<_, String>(0)).optional())
                .map_err(sqlite_err)?
                .map(|doc| cve_from_doc(&id, &doc))
                .transpose()
        })
        .await
    }

    async fn cves_for_product(&self, product: &str) -> Result<Vec<Cve>, StoreError> {
        let product = clean(product).into_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, doc FROM vuln_cves WHERE id IN \
                     (SELECT cve_id FROM vuln_cve_products WHERE product = ?1) ORDER BY id",
                )
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([&product], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sqlite_err)?;
            rows.map(|r| {
                let (id, doc) = r.map_err(sqlite_err)?;
                cve_from_doc(&id, &doc)
            })
            .collect()
        })
        .await
    }

    async fn cve_stats(&self) -> Result<CveStats, StoreError> {
        self.read(|conn| {
            let (n, latest): (i64, Option<i64>) = conn
                .prepare_cached("SELECT count(*), max(modified) FROM vuln_cves")
                .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(sqlite_err)?;
            Ok(CveStats {
                count: count(n)?,
                latest_modified: latest.map(Timestamp),
            })
        })
        .await
    }

    async fn put_software(
        &self,
        asset: &str,
        source: SoftwareSource,
        items: &[Software],
        replace: bool,
        now: Timestamp,
    ) -> Result<SoftwareWrite, StoreError> {
        let asset = clean(asset).into_owned();
        let rows: Vec<SoftwareColumnsIn> = items
            .iter()
            .map(|i| SoftwareColumnsIn::new(i, replace))
            .collect();
        let now = now.as_micros();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let (asset_id, created): (i64, bool) = {
                let found: Option<i64> = tx
                    .prepare_cached("SELECT id FROM vuln_assets WHERE name = ?1")
                    .and_then(|mut s| s.query_row([&asset], |r| r.get(0)).optional())
                    .map_err(sqlite_err)?;
                match found {
                    Some(id) => {
                        tx.execute(
                            "UPDATE vuln_assets SET last_seen = max(last_seen, ?2) WHERE id = ?1",
                            params![id, now],
                        )
                        .map_err(sqlite_err)?;
                        (id, false)
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO vuln_assets (name, first_seen, last_seen) \
                             VALUES (?1, ?2, ?2)",
                            params![asset, now],
                        )
                        .map_err(sqlite_err)?;
                        (tx.last_insert_rowid(), true)
                    }
                }
            };
            let mut changed = created && !rows.is_empty();
            {
                // key → (id, version) of what this source already has.
                let mut existing: HashMap<String, (i64, String)> = HashMap::new();
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT key, id, version FROM vuln_software \
                         WHERE asset_id = ?1 AND source = ?2",
                    )
                    .map_err(sqlite_err)?;
                let found = stmt
                    .query_map(params![asset_id, source.as_str()], |r| {
                        Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
                    })
                    .map_err(sqlite_err)?;
                for row in found {
                    let (key, v) = row.map_err(sqlite_err)?;
                    existing.insert(key, v);
                }
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO vuln_software (asset_id, source, key, name, version, purl, \
                         cpe, distro, first_seen, last_seen) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                    )
                    .map_err(sqlite_err)?;
                let mut touch = tx
                    .prepare_cached(
                        "UPDATE vuln_software SET last_seen = ?2, purl = ?3, cpe = ?4, \
                         distro = ?5 WHERE id = ?1",
                    )
                    .map_err(sqlite_err)?;
                let mut renew = tx
                    .prepare_cached(
                        "UPDATE vuln_software SET name = ?2, version = ?3, purl = ?4, cpe = ?5, \
                         distro = ?6, first_seen = ?7, last_seen = ?7 WHERE id = ?1",
                    )
                    .map_err(sqlite_err)?;
                let mut kept: HashSet<String> = HashSet::new();
                for r in &rows {
                    if !kept.insert(r.key.clone()) {
                        continue;
                    }
                    match existing.get(&r.key) {
                        Some((id, version)) if *version == r.version => {
                            touch
                                .execute(params![id, now, r.purl, r.cpe, r.distro])
                                .map_err(sqlite_err)?;
                        }
                        Some((id, _)) => {
                            renew
                                .execute(params![
                                    id, r.name, r.version, r.purl, r.cpe, r.distro, now
                                ])
                                .map_err(sqlite_err)?;
                            changed = true;
                        }
                        None => {
                            insert
                                .execute(params![
                                    asset_id,
                                    source.as_str(),
                                    r.key,
                                    r.name,
                                    r.version,
                                    r.purl,
                                    r.cpe,
                                    r.distro,
                                    now
                                ])
                                .map_err(sqlite_err)?;
                            changed = true;
                        }
                    }
                }
                if replace {
                    let mut drop = tx
                        .prepare_cached("DELETE FROM vuln_software WHERE id = ?1")
                        .map_err(sqlite_err)?;
                    for (key, (id, _)) in &existing {
                        if !kept.contains(key) {
                            drop.execute([id]).map_err(sqlite_err)?;
                            changed = true;
                        }
                    }
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(SoftwareWrite { asset_id, changed })
        })
        .await
    }

    async fn get_asset(&self, name: &str) -> Result<Option<Asset>, StoreError> {
        let name = clean(name).into_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM vuln_assets a WHERE a.name = ?1",
                    crate::codec::vulns::ASSET_COLUMNS
                ))
                .and_then(|mut s| s.query_row([&name], asset_from_row).optional())
                .map_err(sqlite_err)?;
            match row {
                None => Ok(None),
                Some(r) => Ok(with_counts(conn, vec![r])?.pop()),
            }
        })
        .await
    }

    async fn query_assets(&self, query: &AssetQuery) -> Result<Page<Asset>, StoreError> {
        let sql = sqlgen::assets_query(Dialect::Sqlite, query);
        let items = self
            .read(move |conn| {
                let rows = {
                    let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                    let rows = stmt
                        .query_map(&params_of(&sql)[..], asset_from_row)
                        .map_err(sqlite_err)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(sqlite_err)?
                };
                with_counts(conn, rows)
            })
            .await?;
        Ok(sqlgen::into_page(items, query.limit, |a| Cursor {
            ts: a.first_seen.as_micros(),
            id: a.id,
        }))
    }

    async fn asset_software(&self, asset_id: i64) -> Result<Vec<StoredSoftware>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SOFTWARE_COLUMNS} FROM vuln_software WHERE asset_id = ?1 \
                     ORDER BY source, name, id"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map([asset_id], |r| {
                    Ok(SoftwareColumns {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        name: r.get(2)?,
                        version: r.get(3)?,
                        purl: r.get(4)?,
                        cpe: r.get(5)?,
                        distro: r.get(6)?,
                        first_seen: r.get(7)?,
                        last_seen: r.get(8)?,
                    })
                })
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_stored()).collect()
        })
        .await
    }

    async fn sync_matches(
        &self,
        asset_id: i64,
        found: &[FoundMatch],
        now: Timestamp,
    ) -> Result<MatchSync, StoreError> {
        let found: Vec<FoundColumns> = distinct_found(found);
        let now = now.as_micros();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let mut out = MatchSync::default();
            let mut opened_ids = Vec::new();
            {
                // (cve, product) → (id, status, status_by, version).
                type Known = (i64, String, Option<String>, String);
                let mut existing: HashMap<(String, String), Known> = HashMap::new();
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT cve_id, product, id, status, status_by, version \
                         FROM vuln_matches WHERE asset_id = ?1",
                    )
                    .map_err(sqlite_err)?;
                let rows = stmt
                    .query_map([asset_id], |r| {
                        Ok((
                            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                            (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
                        ))
                    })
                    .map_err(sqlite_err)?;
                for row in rows {
                    let (k, v) = row.map_err(sqlite_err)?;
                    existing.insert(k, v);
                }
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO vuln_matches (asset_id, cve_id, product, software, version, \
                         severity, score, confidence, kev, status, first_seen, last_seen) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open', ?10, ?10)",
                    )
                    .map_err(sqlite_err)?;
                let mut refresh = tx
                    .prepare_cached(
                        "UPDATE vuln_matches SET software = ?2, version = ?3, severity = ?4, \
                         score = ?5, confidence = ?6, kev = ?7, last_seen = ?8 WHERE id = ?1",
                    )
                    .map_err(sqlite_err)?;
                let mut reopen = tx
                    .prepare_cached(
                        "UPDATE vuln_matches SET status = 'open', status_comment = ?2, \
                         status_by = ?3, status_at = ?4 WHERE id = ?1",
                    )
                    .map_err(sqlite_err)?;
                let mut seen: HashSet<i64> = HashSet::new();
                for f in &found {
                    let key = (f.cve_id.clone(), f.product.clone());
                    match existing.get(&key) {
                        Some((id, status, by, version)) => {
                            refresh
                                .execute(params![
                                    id,
                                    f.software,
                                    f.version,
                                    f.severity,
                                    f.score,
                                    f.confidence,
                                    i64::from(f.kev),
                                    now
                                ])
                                .map_err(sqlite_err)?;
                            seen.insert(*id);
                            if reopens(status, by.as_deref(), version, &f.version) {
                                reopen
                                    .execute(params![id, REOPENED, MATCHER, now])
                                    .map_err(sqlite_err)?;
                                opened_ids.push(*id);
                            } else {
                                out.kept += 1;
                            }
                        }
                        None => {
                            insert
                                .execute(params![
                                    asset_id,
                                    f.cve_id,
                                    f.product,
                                    f.software,
                                    f.version,
                                    f.severity,
                                    f.score,
                                    f.confidence,
                                    i64::from(f.kev),
                                    now
                                ])
                                .map_err(sqlite_err)?;
                            opened_ids.push(tx.last_insert_rowid());
                        }
                    }
                }
                let mut resolve = tx
                    .prepare_cached(
                        "UPDATE vuln_matches SET status = 'fixed', status_comment = ?2, \
                         status_by = ?3, status_at = ?4 WHERE id = ?1",
                    )
                    .map_err(sqlite_err)?;
                for (id, status, _, _) in existing.values() {
                    if !seen.contains(id) && status == MatchStatus::Open.as_str() {
                        resolve
                            .execute(params![id, RESOLVED, MATCHER, now])
                            .map_err(sqlite_err)?;
                        out.resolved += 1;
                    }
                }
                for id in &opened_ids {
                    if let Some(m) = get_match_in(&tx, *id)? {
                        out.opened.push(m);
                    }
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(out)
        })
        .await
    }

    async fn query_matches(&self, query: &MatchQuery) -> Result<Page<VulnMatch>, StoreError> {
        let sql = sqlgen::matches_query(Dialect::Sqlite, query);
        let items = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], match_from_row)
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err)?.into_match())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(items, query.limit, |m| Cursor {
            ts: m.first_seen.as_micros(),
            id: m.id,
        }))
    }

    async fn get_match(&self, id: i64) -> Result<Option<VulnMatch>, StoreError> {
        self.read(move |conn| get_match_in(conn, id)).await
    }

    async fn set_match_status(
        &self,
        id: i64,
        status: MatchStatus,
        comment: Option<&str>,
        by: &str,
        now: Timestamp,
    ) -> Result<Option<VulnMatch>, StoreError> {
        let comment = comment.map(|c| clean(c).into_owned());
        let by = clean(by).into_owned();
        let now = now.as_micros();
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            let n = conn
                .prepare_cached(
                    "UPDATE vuln_matches SET status = ?2, status_comment = ?3, status_by = ?4, \
                     status_at = ?5 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, status.as_str(), comment, by, now]))
                .map_err(sqlite_err)?;
            if n == 0 {
                return Ok(None);
            }
            get_match_in(&conn, id)
        })
        .await
    }

    async fn sync_state(&self, feed: &str) -> Result<Option<String>, StoreError> {
        let feed = clean(feed).into_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT value FROM vuln_sync WHERE feed = ?1")
                .and_then(|mut s| s.query_row([feed], |r| r.get(0)).optional())
                .map_err(sqlite_err)
        })
        .await
    }

    async fn put_sync_state(
        &self,
        feed: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let feed = clean(feed).into_owned();
        let value = clean(value).into_owned();
        let now = now.as_micros();
        self.blocking(move |inner| {
            lock(&inner.writer)
                .prepare_cached(
                    "INSERT INTO vuln_sync (feed, value, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (feed) DO UPDATE SET value = excluded.value, \
                     updated_at = excluded.updated_at",
                )
                .and_then(|mut s| s.execute(params![feed, value, now]))
                .map_err(sqlite_err)?;
            Ok(())
        })
        .await
    }
}
