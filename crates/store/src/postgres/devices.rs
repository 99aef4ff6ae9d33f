//! [`DeviceStore`] for the PostgreSQL backend.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::net::ip_key;
use tokio_postgres::Row;

use super::{PgStore, corrupt, count, params_of, pg_err};
use crate::devices::{device_columns, device_from_detail, merge_batch};
use crate::sqlgen::{self, Dialect};
use crate::{
    Cursor, Device, DeviceQuery, DeviceStore, FlowAnalytics, FlowAnalyticsQuery, Page, StoreError,
    StoredDevice, TrafficCount,
};

fn traffic(r: &Row, key: String) -> Result<TrafficCount, StoreError> {
    let f: i64 = r.try_get(1).map_err(corrupt)?;
    let p: Option<i64> = r.try_get(2).map_err(corrupt)?;
    let b: Option<i64> = r.try_get(3).map_err(corrupt)?;
    Ok(TrafficCount {
        key,
        flows: count(f)?,
        packets: count(p.unwrap_or(0))?,
        bytes: count(b.unwrap_or(0))?,
    })
}

#[async_trait]
impl DeviceStore for PgStore {
    async fn upsert_devices(&self, seen: &[Device]) -> Result<Vec<StoredDevice>, StoreError> {
        let batch = merge_batch(seen);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let mut changed = Vec::new();
        for d in batch {
            // Make sure the row exists, then lock it: concurrent writers of one device
            // merge one after the other.
            let (mac, vendor, names, os, first, last, json) = device_columns(&d);
            let inserted = tx
                .query_opt(
                    "INSERT INTO devices (dkey, mac, vendor, hostnames, os, first_seen, last_seen, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dkey) DO NOTHING RETURNING id",
                    &[&d.key, &mac, &vendor, &names, &os, &first, &last, &json],
                )
                .await
                .map_err(pg_err)?;
            let (id, merged, is_change) = match inserted {
                Some(row) => (row.try_get::<_, i64>(0).map_err(corrupt)?, d, true),
                None => {
                    let row = tx
                        .query_one(
                            "SELECT id, detail FROM devices WHERE dkey = $1 FOR UPDATE",
                            &[&d.key],
                        )
                        .await
                        .map_err(pg_err)?;
                    let id: i64 = row.try_get(0).map_err(corrupt)?;
                    let detail: String = row.try_get(1).map_err(corrupt)?;
                    let mut stored = device_from_detail(id, &detail)?.device;
                    let c = stored.merge(&d);
                    let (mac, vendor, names, os, first, last, json) = device_columns(&stored);
                    tx.execute(
                        "UPDATE devices SET mac = $1, vendor = $2, hostnames = $3, os = $4, \
                         first_seen = $5, last_seen = $6, detail = $7 WHERE id = $8",
                        &[&mac, &vendor, &names, &os, &first, &last, &json, &id],
                    )
                    .await
                    .map_err(pg_err)?;
                    (id, stored, c)
                }
            };
            for ip in &merged.ips {
                let key = ip_key(*ip).to_vec();
                tx.execute(
                    "INSERT INTO device_addrs (device_id, ip_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&id, &key],
                )
                .await
                .map_err(pg_err)?;
            }
            if is_change {
                changed.push(StoredDevice { id, device: merged });
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(changed)
    }

    async fn list_devices(&self, q: &DeviceQuery) -> Result<Page<StoredDevice>, StoreError> {
        let sql = sqlgen::devices_query(Dialect::Postgres, q);
        let rows = self.query_generated(&sql).await?;
        let items = rows
            .iter()
            .map(|r| {
                let id: i64 = r.try_get(0).map_err(corrupt)?;
                let detail: String = r.try_get(1).map_err(corrupt)?;
                device_from_detail(id, &detail)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, q.limit, |d| Cursor {
            ts: d.device.last_seen.as_micros(),
            id: d.id,
        }))
    }

    async fn get_device(&self, id: i64) -> Result<Option<StoredDevice>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT detail FROM devices WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?;
        match row {
            Some(r) => {
                let detail: String = r.try_get(0).map_err(corrupt)?;
                Ok(Some(device_from_detail(id, &detail)?))
            }
            None => Ok(None),
        }
    }

    async fn link_flow_threats(&self, links: &[(i64, i64)]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for (flow, threat) in links {
            tx.execute(
                "INSERT INTO flow_threats (flow_id, threat_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[flow, threat],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn flow_threat_ids(&self, flow_id: i64) -> Result<Vec<i64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT threat_id FROM flow_threats WHERE flow_id = $1 ORDER BY threat_id DESC",
                &[&flow_id],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| r.try_get::<_, i64>(0).map_err(corrupt))
            .collect()
    }

    async fn device_threat_ids(&self, device_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT ft.threat_id FROM flow_threats ft JOIN flows f ON f.id = ft.flow_id \
                 WHERE f.src_key IN (SELECT ip_key FROM device_addrs WHERE device_id = $1) \
                 OR f.dst_key IN (SELECT ip_key FROM device_addrs WHERE device_id = $1) \
                 ORDER BY ft.threat_id DESC LIMIT $2",
                &[&device_id, &i64::from(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| r.try_get::<_, i64>(0).map_err(corrupt))
            .collect()
    }

    async fn flow_analytics(&self, q: &FlowAnalyticsQuery) -> Result<FlowAnalytics, StoreError> {
        let [talkers, protocols, apps, buckets] = sqlgen::analytics_queries(Dialect::Postgres, q);
        let client = self.client().await?;
        let mut lists = Vec::with_capacity(3);
        for sql in [&talkers, &protocols, &apps] {
            let rows = client
                .query(sql.text.as_str(), &params_of(sql))
                .await
                .map_err(pg_err)?;
            let list = rows
                .iter()
                .map(|r| {
                    let k: Option<String> = r.try_get(0).map_err(corrupt)?;
                    traffic(r, k.unwrap_or_default())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            lists.push(list);
        }
        let rows = client
            .query(buckets.text.as_str(), &params_of(&buckets))
            .await
            .map_err(pg_err)?;
        let over_time = rows
            .iter()
            .map(|r| {
                let k: i64 = r.try_get(0).map_err(corrupt)?;
                traffic(r, Timestamp(k).to_string())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut lists = lists.into_iter();
        Ok(FlowAnalytics {
            top_talkers: lists.next().unwrap_or_default(),
            protocols: lists.next().unwrap_or_default(),
            applications: lists.next().unwrap_or_default(),
            over_time,
        })
    }
}
