//! The PostgreSQL free-text index (see [`crate::sqlgen::text`]): a GIN index of the path
//! bucket and the `pg_trgm` trigrams, kept in step with the `[search]` setting at
//! migration. The planner picks it for `q`; the store adds the bucket key for a large
//! path prefix plus `q` (see `postgres::ingest`), which it only does once it knows the
//! index exists ([`sync`]'s answer).

use super::pg_err;
use crate::StoreError;
use crate::sqlgen::text::{self, PG_INDEX, PG_OLD_INDEX};

/// Builds the index, or drops it, so that it exists exactly when `enabled`; an index
/// of the first layout (trigrams only) is replaced. Where `pg_trgm` cannot be
/// installed (not shipped, or no privilege) the store keeps working without the index:
/// `q` stays correct, only slower, and a warning says why. Returns whether the index
/// (of the current layout) exists afterwards.
pub(super) async fn sync(
    client: &deadpool_postgres::Client,
    enabled: bool,
) -> Result<bool, StoreError> {
    let row = client
        .query_one(
            "SELECT to_regclass($1::text) IS NOT NULL, to_regclass($2::text) IS NOT NULL",
            &[&PG_INDEX, &PG_OLD_INDEX],
        )
        .await
        .map_err(pg_err)?;
    let exists: bool = row.try_get(0).map_err(pg_err)?;
    let old_exists: bool = row.try_get(1).map_err(pg_err)?;
    if !enabled {
        if exists || old_exists {
            tracing::info!("dropping the free-text index of stored events ([search] text_index)");
            client
                .batch_execute(&text::pg_drop())
                .await
                .map_err(pg_err)?;
        }
        return Ok(false);
    }
    if exists {
        if old_exists {
            client
                .batch_execute(&format!("DROP INDEX IF EXISTS {PG_OLD_INDEX}"))
                .await
                .map_err(pg_err)?;
        }
        return Ok(true);
    }
    // Installed once per database, in any schema; when missing, into the first schema
    // of the search path.
    let mut schema = extension_schema(client).await?;
    if schema.is_none() {
        if let Err(error) = client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            .await
        {
            return degrade("the pg_trgm extension cannot be installed", error).map(|()| false);
        }
        schema = extension_schema(client).await?;
    }
    let Some(schema) = schema else {
        return Ok(false);
    };
    tracing::info!("building the free-text index of stored events ([search] text_index)");
    match client.batch_execute(&text::pg_create(&schema)).await {
        Ok(()) => Ok(true),
        Err(error) => degrade("the trigram index cannot be built", error).map(|()| false),
    }
}

/// The quoted name of the schema holding `pg_trgm`, `None` when it is not installed.
async fn extension_schema(
    client: &deadpool_postgres::Client,
) -> Result<Option<String>, StoreError> {
    client
        .query_opt(text::PG_EXTENSION_SCHEMA, &[])
        .await
        .map_err(pg_err)?
        .map(|row| row.try_get(0).map_err(pg_err))
        .transpose()
}

/// Logs why the index is missing and carries on without it, unless the database
/// itself is unreachable (then the migration is retried like any other).
fn degrade(what: &str, error: tokio_postgres::Error) -> Result<(), StoreError> {
    match pg_err(error) {
        StoreError::Unavailable(e) => Err(StoreError::Unavailable(e)),
        other => {
            tracing::warn!(
                error = %other,
                "{what}: [search] text_index is on but q is answered without an index"
            );
            Ok(())
        }
    }
}
