//! [`MaintenanceStore`] for the PostgreSQL backend: retention deletes in short
//! transactions, and the integrity report (counts, orphans, checkpoints, then the
//! indexes: `amcheck`'s `bt_index_check` on every B-tree index of the schema when the
//! extension is installed, else PostgreSQL's own validity flags).

use async_trait::async_trait;
use palisade_core::Timestamp;

use super::{PgStore, corrupt, pg_err};
use crate::sqlgen::{
    self, BAD_JOBS_QUERY, COUNTED_TABLES, Dialect, ORPHAN_QUERIES, bad_checkpoints_query,
};
use crate::{DataKind, IntegrityCheck, MaintenanceStore, StoreError};

fn count_check(check: String, n: i64, zero_ok: bool, what: &str) -> IntegrityCheck {
    IntegrityCheck {
        check,
        ok: !zero_ok || n == 0,
        count: Some(n),
        detail: format!("{n} {what}"),
    }
}

/// An identifier quoted for SQL (`"a""b"`).
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[async_trait]
impl MaintenanceStore for PgStore {
    async fn delete_older_than(
        &self,
        kind: DataKind,
        before: Timestamp,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let sql = sqlgen::delete_older_query(Dialect::Postgres, kind);
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
        client
            .execute(&stmt, &[&before.as_micros(), &i64::from(batch.max(1))])
            .await
            .map_err(pg_err)
    }

    async fn integrity_checks(&self, now: Timestamp) -> Result<Vec<IntegrityCheck>, StoreError> {
        let client = self.client().await?;
        let mut checks = Vec::new();
        for table in COUNTED_TABLES {
            let row = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .map_err(pg_err)?;
            let n: i64 = row.try_get(0).map_err(corrupt)?;
            checks.push(count_check(format!("count:{table}"), n, false, "rows"));
        }
        for (name, sql) in ORPHAN_QUERIES {
            let row = client.query_one(*sql, &[]).await.map_err(pg_err)?;
            let n: i64 = row.try_get(0).map_err(corrupt)?;
            checks.push(count_check(
                (*name).to_owned(),
                n,
                true,
                "rows point at nothing",
            ));
        }
        let skew = now.add_micros(60_000_000).as_micros();
        let row = client
            .query_one(&bad_checkpoints_query(Dialect::Postgres), &[&skew])
            .await
            .map_err(pg_err)?;
        checks.push(count_check(
            "checkpoints".into(),
            row.try_get(0).map_err(corrupt)?,
            true,
            "checkpoints with a negative position, no file identity or a future time",
        ));
        let row = client
            .query_one(BAD_JOBS_QUERY, &[])
            .await
            .map_err(pg_err)?;
        checks.push(count_check(
            "jobs".into(),
            row.try_get(0).map_err(corrupt)?,
            true,
            "jobs in an impossible state",
        ));

        let invalid: Vec<String> = client
            .query(
                "SELECT c.relname FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready)",
                &[],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| r.try_get(0).map_err(corrupt))
            .collect::<Result<_, _>>()?;
        checks.push(IntegrityCheck {
            check: "index_validity".into(),
            ok: invalid.is_empty(),
            count: Some(invalid.len() as i64),
            detail: if invalid.is_empty() {
                "every index of the schema is valid and ready".into()
            } else {
                format!(
                    "invalid indexes (rebuild with REINDEX): {}",
                    invalid.join(", ")
                )
            },
        });

        let amcheck: Option<String> = client
            .query_opt(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                 WHERE e.extname = 'amcheck'",
                &[],
            )
            .await
            .map_err(pg_err)?
            .map(|r| r.try_get(0).map_err(corrupt))
            .transpose()?;
        let Some(schema) = amcheck else {
            checks.push(IntegrityCheck {
                check: "amcheck".into(),
                ok: true,
                count: None,
                detail: "the amcheck extension is not installed (CREATE EXTENSION amcheck) \
                         so index contents were not verified; validity flags were checked"
                    .into(),
            });
            return Ok(checks);
        };
        let indexes: Vec<(u32, String)> = client
            .query(
                "SELECT c.oid, c.relname FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_am a ON a.oid = c.relam
                 WHERE n.nspname = current_schema() AND a.amname = 'btree'
                   AND i.indisvalid AND i.indisready
                 ORDER BY c.relname",
                &[],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(corrupt)?,
                    r.try_get(1).map_err(corrupt)?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let check = format!(
            "SELECT {}.bt_index_check($1::oid::regclass)",
            quote_ident(&schema)
        );
        let mut broken = Vec::new();
        for (oid, name) in &indexes {
            if let Err(e) = client.query(check.as_str(), &[oid]).await {
                broken.push(format!("{name}: {}", pg_err(e)));
            }
        }
        checks.push(IntegrityCheck {
            check: "amcheck".into(),
            ok: broken.is_empty(),
            count: Some(broken.len() as i64),
            detail: if broken.is_empty() {
                format!("bt_index_check passed on {} B-tree indexes", indexes.len())
            } else {
                broken.join("; ")
            },
        });
        Ok(checks)
    }
}
