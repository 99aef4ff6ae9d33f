//! [`DeviceStore`] for the SQLite backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::net::ip_key;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, count, lock, params_of, sqlite_err};
use crate::devices::{device_columns, device_from_detail, merge_batch};
use crate::sqlgen::{self, Dialect};
use crate::{
    Cursor, Device, DeviceQuery, DeviceStore, FlowAnalytics, FlowAnalyticsQuery, Page, StoreError,
    StoredDevice, TrafficCount,
};

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn upsert_devices(&self, seen: &[Device]) -> Result<Vec<StoredDevice>, StoreError> {
        let batch = merge_batch(seen);
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            let mut changed = Vec::new();
            for d in batch {
                let existing: Option<(i64, String)> = tx
                    .prepare_cached("SELECT id, detail FROM devices WHERE dkey = ?1")
                    .map_err(sqlite_err)?
                    .query_row(params![d.key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(sqlite_err)?;
                let (id, merged, is_change) = match existing {
                    Some((id, detail)) => {
                        let mut stored = device_from_detail(id, &detail)?.device;
                        let c = stored.merge(&d);
                        let (mac, vendor, names, os, first, last, json) = device_columns(&stored);
                        tx.prepare_cached(
                            "UPDATE devices SET mac = ?1, vendor = ?2, hostnames = ?3, os = ?4, \
                             first_seen = ?5, last_seen = ?6, detail = ?7 WHERE id = ?8",
                        )
                        .map_err(sqlite_err)?
                        .execute(params![mac, vendor, names, os, first, last, json, id])
                        .map_err(sqlite_err)?;
                        (id, stored, c)
                    }
                    None => {
                        let (mac, vendor, names, os, first, last, json) = device_columns(&d);
                        tx.prepare_cached(
                            "INSERT INTO devices (dkey, mac, vendor, hostnames, os, first_seen, \
                             last_seen, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )
                        .map_err(sqlite_err)?
                        .execute(params![d.key, mac, vendor, names, os, first, last, json])
                        .map_err(sqlite_err)?;
                        (tx.last_insert_rowid(), d, true)
                    }
                };
                {
                    let mut addr = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO device_addrs (device_id, ip_key) VALUES (?1, ?2)",
                        )
                        .map_err(sqlite_err)?;
                    for ip in &merged.ips {
                        addr.execute(params![id, ip_key(*ip).to_vec()])
                            .map_err(sqlite_err)?;
                    }
                }
                if is_change {
                    changed.push(StoredDevice { id, device: merged });
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(changed)
        })
        .await
    }

    async fn list_devices(&self, q: &DeviceQuery) -> Result<Page<StoredDevice>, StoreError> {
        let sql = sqlgen::devices_query(Dialect::Sqlite, q);
        let limit = q.limit;
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(sqlite_err)?;
                rows.map(|r| {
                    let (id, detail) = r.map_err(sqlite_err)?;
                    device_from_detail(id, &detail)
                })
                .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(rows, limit, |d| Cursor {
            ts: d.device.last_seen.as_micros(),
            id: d.id,
        }))
    }

    async fn get_device(&self, id: i64) -> Result<Option<StoredDevice>, StoreError> {
        self.read(move |conn| {
            let row: Option<String> = conn
                .prepare_cached("SELECT detail FROM devices WHERE id = ?1")
                .map_err(sqlite_err)?
                .query_row(params![id], |r| r.get(0))
                .optional()
                .map_err(sqlite_err)?;
            row.map(|detail| device_from_detail(id, &detail))
                .transpose()
        })
        .await
    }

    async fn link_flow_threats(&self, links: &[(i64, i64)]) -> Result<(), StoreError> {
        let links = links.to_vec();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO flow_threats (flow_id, threat_id) VALUES (?1, ?2)",
                    )
                    .map_err(sqlite_err)?;
                for (flow, threat) in &links {
                    insert.execute(params![flow, threat]).map_err(sqlite_err)?;
                }
            }
            tx.commit().map_err(sqlite_err)
        })
        .await
    }

    async fn flow_threat_ids(&self, flow_id: i64) -> Result<Vec<i64>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT threat_id FROM flow_threats WHERE flow_id = ?1 ORDER BY threat_id DESC",
                )
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![flow_id], |r| r.get::<_, i64>(0))
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)).collect()
        })
        .await
    }

    async fn device_threat_ids(&self, device_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT ft.threat_id FROM flow_threats ft JOIN flows f ON f.id = ft.flow_id \
                     WHERE f.src_key IN (SELECT ip_key FROM device_addrs WHERE device_id = ?1) \
                     OR f.dst_key IN (SELECT ip_key FROM device_addrs WHERE device_id = ?1) \
                     ORDER BY ft.threat_id DESC LIMIT ?2",
                )
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![device_id, i64::from(limit)], |r| r.get::<_, i64>(0))
                .map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)).collect()
        })
        .await
    }

    async fn flow_analytics(&self, q: &FlowAnalyticsQuery) -> Result<FlowAnalytics, StoreError> {
        let [talkers, protocols, apps, buckets] = sqlgen::analytics_queries(Dialect::Sqlite, q);
        self.read(move |conn| {
            let text_rows = |sql: &sqlgen::Sql| -> Result<Vec<TrafficCount>, StoreError> {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(sql)[..], |r| {
                        Ok((
                            r.get::<_, Option<String>>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                        ))
                    })
                    .map_err(sqlite_err)?;
                rows.map(|r| {
                    let (k, f, p, b) = r.map_err(sqlite_err)?;
                    Ok(TrafficCount {
                        key: k.unwrap_or_default(),
                        flows: count(f)?,
                        packets: count(p.unwrap_or(0))?,
                        bytes: count(b.unwrap_or(0))?,
                    })
                })
                .collect()
            };
            let mut stmt = conn.prepare_cached(&buckets.text).map_err(sqlite_err)?;
            let over_time = stmt
                .query_map(&params_of(&buckets)[..], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                })
                .map_err(sqlite_err)?
                .map(|r| {
                    let (k, f, p, b) = r.map_err(sqlite_err)?;
                    Ok(TrafficCount {
                        key: Timestamp(k).to_string(),
                        flows: count(f)?,
                        packets: count(p.unwrap_or(0))?,
                        bytes: count(b.unwrap_or(0))?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(FlowAnalytics {
                top_talkers: text_rows(&talkers)?,
                protocols: text_rows(&protocols)?,
                applications: text_rows(&apps)?,
                over_time,
            })
        })
        .await
    }
}
