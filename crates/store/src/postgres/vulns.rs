//! [`VulnStore`] for the PostgreSQL backend. Writers to one asset are serialised by a
//! lock on its row (taken by the upsert that creates or touches it), so that several
//! Palisade processes matching or observing the same asset cannot interleave.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::vuln::{
    Asset, Cve, FoundMatch, MatchStatus, Software, SoftwareSource, StoredSoftware, VulnMatch,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, corrupt, count, params_of, pg_err};
use crate::codec::clean;
use crate::codec::vulns::{
    ASSET_COLUMNS, AssetColumns, CveColumnsIn, FoundColumns, MATCH_SELECT, MatchColumns, REOPENED,
    RESOLVED, SOFTWARE_COLUMNS, SoftwareColumns, SoftwareColumnsIn, cve_from_doc, distinct_found,
    reopens, replaces,
};
use crate::sqlgen::{self, Dialect};
use crate::{
    AssetQuery, Cursor, CveStats, CveUpsert, IndexedCve, MATCHER, MatchQuery, MatchSync, Page,
    SoftwareWrite, StoreError, VulnStore,
};

fn match_from_row(r: &Row) -> Result<VulnMatch, StoreError> {
    MatchColumns {
        id: r.try_get(0).map_err(corrupt)?,
        asset: r.try_get(1).map_err(corrupt)?,
        cve_id: r.try_get(2).map_err(corrupt)?,
        product: r.try_get(3).map_err(corrupt)?,
        software: r.try_get(4).map_err(corrupt)?,
        version: r.try_get(5).map_err(corrupt)?,
        severity: r.try_get(6).map_err(corrupt)?,
        score: r.try_get(7).map_err(corrupt)?,
        confidence: r.try_get(8).map_err(corrupt)?,
        kev: r.try_get::<_, i32>(9).map_err(corrupt)? != 0,
        status: r.try_get(10).map_err(corrupt)?,
        status_comment: r.try_get(11).map_err(corrupt)?,
        status_by: r.try_get(12).map_err(corrupt)?,
        status_at: r.try_get(13).map_err(corrupt)?,
        first_seen: r.try_get(14).map_err(corrupt)?,
        last_seen: r.try_get(15).map_err(corrupt)?,
    }
    .into_match()
}

fn asset_from_row(r: &Row) -> Result<AssetColumns, StoreError> {
    Ok(AssetColumns {
        id: r.try_get(0).map_err(corrupt)?,
        name: r.try_get(1).map_err(corrupt)?,
        first_seen: r.try_get(2).map_err(corrupt)?,
        last_seen: r.try_get(3).map_err(corrupt)?,
        software: r.try_get(4).map_err(corrupt)?,
    })
}

async fn get_match_in<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    id: i64,
) -> Result<Option<VulnMatch>, StoreError> {
    let stmt = client
        .prepare_cached(&format!("{MATCH_SELECT} WHERE m.id = $1"))
        .await
        .map_err(pg_err)?;
    let row = client.query_opt(&stmt, &[&id]).await.map_err(pg_err)?;
    row.as_ref().map(match_from_row).transpose()
}

/// Attaches the open-match counts to a page of asset rows.
async fn with_counts(
    client: &deadpool_postgres::Client,
    rows: Vec<AssetColumns>,
) -> Result<Vec<Asset>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let sql = sqlgen::open_counts_query(Dialect::Postgres, &ids);
    let found = client
        .query(sql.text.as_str(), &params_of(&sql))
        .await
        .map_err(pg_err)?;
    let mut by_asset: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
    for r in &found {
        by_asset
            .entry(r.try_get(0).map_err(corrupt)?)
            .or_default()
            .push((
                r.try_get(1).map_err(corrupt)?,
                r.try_get(2).map_err(corrupt)?,
            ));
    }
    rows.into_iter()
        .map(|r| {
            let open = by_asset.remove(&r.id).unwrap_or_default();
            r.into_asset(open)
        })
        .collect()
}

#[async_trait]
impl VulnStore for PgStore {
    async fn upsert_cves(&self, cves: &[IndexedCve]) -> Result<CveUpsert, StoreError> {
        if cves.is_empty() {
            return Ok(CveUpsert::default());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let existing = tx
            .prepare_cached("SELECT modified, origin FROM vuln_cves WHERE id = $1 FOR UPDATE")
            .await
            .map_err(pg_err)?;
        let write = tx
            .prepare_cached(
                "INSERT INTO vuln_cves (id, published, modified, status, severity, score, kev, \
                 origin, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO UPDATE SET published = excluded.published, \
                 modified = excluded.modified, status = excluded.status, \
                 severity = excluded.severity, score = excluded.score, kev = excluded.kev, \
                 origin = excluded.origin, doc = excluded.doc",
            )
            .await
            .map_err(pg_err)?;
        let forget = tx
            .prepare_cached("DELETE FROM vuln_cve_products WHERE cve_id = $1")
            .await
            .map_err(pg_err)?;
        let index = tx
            .prepare_cached(
                "INSERT INTO vuln_cve_products (product, vendor, cve_id) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(pg_err)?;
        let mut out = CveUpsert::default();
        for item in cves {
            let c = CveColumnsIn::new(&item.cve)?;
            let stored = tx.query_opt(&existing, &[&c.id]).await.map_err(pg_err)?;
            match stored {
                Some(row) => {
                    let modified: i64 = row.try_get(0).map_err(corrupt)?;
                    let origin: String = row.try_get(1).map_err(corrupt)?;
                    if !replaces(&item.cve, modified, &origin) {
                        out.unchanged += 1;
                        continue;
                    }
                    out.updated += 1;
                }
                None => out.inserted += 1,
            }
            let kev = i32::from(c.kev);
            tx.execute(
                &write,
                &[
                    &c.id,
                    &c.published,
                    &c.modified,
                    &c.status,
                    &c.severity,
                    &c.score,
                    &kev,
                    &c.origin,
                    &c.doc,
                ],
            )
            .await
            .map_err(pg_err)?;
            tx.execute(&forget, &[&c.id]).await.map_err(pg_err)?;
            for (vendor, product) in &item.products {
                let (p, v): (&str, &str) = (&clean(product), &clean(vendor));
                tx.execute(&index, &[&p, &v, &c.id]).await.map_err(pg_err)?;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }

    async fn get_cve(&self, id: &str) -> Result<Option<Cve>, StoreError> {
        let id = clean(id).into_owned();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT doc FROM vuln_cves WHERE id = $1")
            .await
            .map_err(pg_err)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(pg_err)?;
        row.map(|r| {
            let doc: String = r.try_get(0).map_err(corrupt)?;
            cve_from_doc(&id, &doc)
        })
        .transpose()
    }

    async fn cves_for_product(&self, product: &str) -> Result<Vec<Cve>, StoreError> {
        let product = clean(product).into_owned();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, doc FROM vuln_cves WHERE id IN \
                 (SELECT cve_id FROM vuln_cve_products WHERE product = $1) \
                 ORDER BY id COLLATE \"C\"",
            )
            .await
            .map_err(pg_err)?;
        let rows = client.query(&stmt, &[&product]).await.map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(corrupt)?;
                let doc: String = r.try_get(1).map_err(corrupt)?;
                cve_from_doc(&id, &doc)
            })
            .collect()
    }

    async fn cve_stats(&self) -> Result<CveStats, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*), max(modified) FROM vuln_cves", &[])
            .await
            .map_err(pg_err)?;
        let n: i64 = row.try_get(0).map_err(corrupt)?;
        let latest: Option<i64> = row.try_get(1).map_err(corrupt)?;
        Ok(CveStats {
            count: count(n)?,
            latest_modified: latest.map(Timestamp),
        })
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
        let source_name = source.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Creates or touches the asset and locks its row until commit.
        let row = tx
            .query_one(
                "INSERT INTO vuln_assets (name, first_seen, last_seen) VALUES ($1, $2, $2) \
                 ON CONFLICT (name) DO UPDATE SET \
                 last_seen = GREATEST(vuln_assets.last_seen, excluded.last_seen) \
                 RETURNING id, (xmax = 0) AS created",
                &[&asset, &now],
            )
            .await
            .map_err(pg_err)?;
        let asset_id: i64 = row.try_get(0).map_err(corrupt)?;
        let created: bool = row.try_get(1).map_err(corrupt)?;
        let mut changed = created && !rows.is_empty();
        let mut existing: HashMap<String, (i64, String)> = HashMap::new();
        for r in tx
            .query(
                "SELECT key, id, version FROM vuln_software WHERE asset_id = $1 AND source = $2",
                &[&asset_id, &source_name],
            )
            .await
            .map_err(pg_err)?
        {
            existing.insert(
                r.try_get(0).map_err(corrupt)?,
                (
                    r.try_get(1).map_err(corrupt)?,
                    r.try_get(2).map_err(corrupt)?,
                ),
            );
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO vuln_software (asset_id, source, key, name, version, purl, cpe, \
                 distro, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .await
            .map_err(pg_err)?;
        let touch = tx
            .prepare_cached(
                "UPDATE vuln_software SET last_seen = $2, purl = $3, cpe = $4, distro = $5 \
                 WHERE id = $1",
            )
            .await
            .map_err(pg_err)?;
        let renew = tx
            .prepare_cached(
                "UPDATE vuln_software SET name = $2, version = $3, purl = $4, cpe = $5, \
                 distro = $6, first_seen = $7, last_seen = $7 WHERE id = $1",
            )
            .await
            .map_err(pg_err)?;
        let mut kept: HashSet<String> = HashSet::new();
        for r in &rows {
            if !kept.insert(r.key.clone()) {
                continue;
            }
            match existing.get(&r.key) {
                Some((id, version)) if *version == r.version => {
                    tx.execute(&touch, &[id, &now, &r.purl, &r.cpe, &r.distro])
                        .await
                        .map_err(pg_err)?;
                }
                Some((id, _)) => {
                    tx.execute(
                        &renew,
                        &[id, &r.name, &r.version, &r.purl, &r.cpe, &r.distro, &now],
                    )
                    .await
                    .map_err(pg_err)?;
                    changed = true;
                }
                None => {
                    let params: [&(dyn ToSql + Sync); 9] = [
                        &asset_id,
                        &source_name,
                        &r.key,
                        &r.name,
                        &r.version,
                        &r.purl,
                        &r.cpe,
                        &r.distro,
                        &now,
                    ];
                    tx.execute(&insert, &params).await.map_err(pg_err)?;
                    changed = true;
                }
            }
        }
        if replace {
            let gone: Vec<i64> = existing
                .iter()
                .filter(|(key, _)| !kept.contains(*key))
                .map(|(_, (id, _))| *id)
                .collect();
            if !gone.is_empty() {
                tx.execute("DELETE FROM vuln_software WHERE id = ANY($1)", &[&gone])
                    .await
                    .map_err(pg_err)?;
                changed = true;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(SoftwareWrite { asset_id, changed })
    }

    async fn get_asset(&self, name: &str) -> Result<Option<Asset>, StoreError> {
        let name = clean(name).into_owned();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {ASSET_COLUMNS} FROM vuln_assets a WHERE a.name = $1"
            ))
            .await
            .map_err(pg_err)?;
        let Some(row) = client.query_opt(&stmt, &[&name]).await.map_err(pg_err)? else {
            return Ok(None);
        };
        Ok(with_counts(&client, vec![asset_from_row(&row)?])
            .await?
            .pop())
    }

    async fn query_assets(&self, query: &AssetQuery) -> Result<Page<Asset>, StoreError> {
        let sql = sqlgen::assets_query(Dialect::Postgres, query);
        let rows = self.query_generated(&sql).await?;
        let rows = rows
            .iter()
            .map(asset_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let items = with_counts(&self.client().await?, rows).await?;
        Ok(sqlgen::into_page(items, query.limit, |a| Cursor {
            ts: a.first_seen.as_micros(),
            id: a.id,
        }))
    }

    async fn asset_software(&self, asset_id: i64) -> Result<Vec<StoredSoftware>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {SOFTWARE_COLUMNS} FROM vuln_software WHERE asset_id = $1 \
                 ORDER BY source COLLATE \"C\", name COLLATE \"C\", id"
            ))
            .await
            .map_err(pg_err)?;
        let rows = client.query(&stmt, &[&asset_id]).await.map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                SoftwareColumns {
                    id: r.try_get(0).map_err(corrupt)?,
                    source: r.try_get(1).map_err(corrupt)?,
                    name: r.try_get(2).map_err(corrupt)?,
                    version: r.try_get(3).map_err(corrupt)?,
                    purl: r.try_get(4).map_err(corrupt)?,
                    cpe: r.try_get(5).map_err(corrupt)?,
                    distro: r.try_get(6).map_err(corrupt)?,
                    first_seen: r.try_get(7).map_err(corrupt)?,
                    last_seen: r.try_get(8).map_err(corrupt)?,
                }
                .into_stored()
            })
            .collect()
    }

    async fn sync_matches(
        &self,
        asset_id: i64,
        found: &[FoundMatch],
        now: Timestamp,
    ) -> Result<MatchSync, StoreError> {
        let found: Vec<FoundColumns> = distinct_found(found);
        let now = now.as_micros();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // One matching run per asset at a time.
        tx.query_opt(
            "SELECT id FROM vuln_assets WHERE id = $1 FOR UPDATE",
            &[&asset_id],
        )
        .await
        .map_err(pg_err)?;
        type Known = (i64, String, Option<String>, String);
        let mut existing: HashMap<(String, String), Known> = HashMap::new();
        for r in tx
            .query(
                "SELECT cve_id, product, id, status, status_by, version \
                 FROM vuln_matches WHERE asset_id = $1",
                &[&asset_id],
            )
            .await
            .map_err(pg_err)?
        {
            existing.insert(
                (
                    r.try_get(0).map_err(corrupt)?,
                    r.try_get(1).map_err(corrupt)?,
                ),
                (
                    r.try_get(2).map_err(corrupt)?,
                    r.try_get(3).map_err(corrupt)?,
                    r.try_get(4).map_err(corrupt)?,
                    r.try_get(5).map_err(corrupt)?,
                ),
            );
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO vuln_matches (asset_id, cve_id, product, software, version, \
                 severity, score, confidence, kev, status, first_seen, last_seen) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $10) RETURNING id",
            )
            .await
            .map_err(pg_err)?;
        let refresh = tx
            .prepare_cached(
                "UPDATE vuln_matches SET software = $2, version = $3, severity = $4, \
                 score = $5, confidence = $6, kev = $7, last_seen = $8 WHERE id = $1",
            )
            .await
            .map_err(pg_err)?;
        let set_status = tx
            .prepare_cached(
                "UPDATE vuln_matches SET status = $2, status_comment = $3, status_by = $4, \
                 status_at = $5 WHERE id = $1",
            )
            .await
            .map_err(pg_err)?;
        let mut out = MatchSync::default();
        let mut opened_ids = Vec::new();
        let mut seen: HashSet<i64> = HashSet::new();
        for f in &found {
            let kev = i32::from(f.kev);
            match existing.get(&(f.cve_id.clone(), f.product.clone())) {
                Some((id, status, by, version)) => {
                    tx.execute(
                        &refresh,
                        &[
                            id,
                            &f.software,
                            &f.version,
                            &f.severity,
                            &f.score,
                            &f.confidence,
                            &kev,
                            &now,
                        ],
                    )
                    .await
                    .map_err(pg_err)?;
                    seen.insert(*id);
                    if reopens(status, by.as_deref(), version, &f.version) {
                        let open = MatchStatus::Open.as_str();
                        tx.execute(&set_status, &[id, &open, &REOPENED, &MATCHER, &now])
                            .await
                            .map_err(pg_err)?;
                        opened_ids.push(*id);
                    } else {
                        out.kept += 1;
                    }
                }
                None => {
                    let params: [&(dyn ToSql + Sync); 10] = [
                        &asset_id,
                        &f.cve_id,
                        &f.product,
                        &f.software,
                        &f.version,
                        &f.severity,
                        &f.score,
                        &f.confidence,
                        &kev,
                        &now,
                    ];
                    let row = tx.query_one(&insert, &params).await.map_err(pg_err)?;
                    opened_ids.push(row.try_get(0).map_err(corrupt)?);
                }
            }
        }
        let fixed = MatchStatus::Fixed.as_str();
        for (id, status, _, _) in existing.values() {
            if !seen.contains(id) && status == MatchStatus::Open.as_str() {
                tx.execute(&set_status, &[id, &fixed, &RESOLVED, &MATCHER, &now])
                    .await
                    .map_err(pg_err)?;
                out.resolved += 1;
            }
        }
        for id in &opened_ids {
            if let Some(m) = get_match_in(&tx, *id).await? {
                out.opened.push(m);
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }

    async fn query_matches(&self, query: &MatchQuery) -> Result<Page<VulnMatch>, StoreError> {
        let sql = sqlgen::matches_query(Dialect::Postgres, query);
        let rows = self.query_generated(&sql).await?;
        let items = rows
            .iter()
            .map(match_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, query.limit, |m| Cursor {
            ts: m.first_seen.as_micros(),
            id: m.id,
        }))
    }

    async fn get_match(&self, id: i64) -> Result<Option<VulnMatch>, StoreError> {
        let client = self.client().await?;
        get_match_in(&client, id).await
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
        let (status, now) = (status.as_str(), now.as_micros());
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE vuln_matches SET status = $2, status_comment = $3, status_by = $4, \
                 status_at = $5 WHERE id = $1",
                &[&id, &status, &comment, &by, &now],
            )
            .await
            .map_err(pg_err)?;
        if n == 0 {
            return Ok(None);
        }
        get_match_in(&client, id).await
    }

    async fn sync_state(&self, feed: &str) -> Result<Option<String>, StoreError> {
        let feed = clean(feed).into_owned();
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT value FROM vuln_sync WHERE feed = $1", &[&feed])
            .await
            .map_err(pg_err)?;
        row.map(|r| r.try_get(0).map_err(corrupt)).transpose()
    }

    async fn put_sync_state(
        &self,
        feed: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (feed, value) = (clean(feed).into_owned(), clean(value).into_owned());
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO vuln_sync (feed, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (feed) DO UPDATE SET value = excluded.value, \
                 updated_at = excluded.updated_at",
                &[&feed, &value, &now.as_micros()],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }
}
